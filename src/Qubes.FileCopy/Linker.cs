using System;
using System.Threading;
using Qubes.Interop.Linux;

namespace Qubes.FileCopy;

/// <summary>
/// The second half of receiving a regular file (spec filecopy §8.2 steps 6 and 7), on a thread of
/// its own: a complete unnamed file is linked into place by name, gets its permissions and times,
/// and is closed. The receiving thread reads, checks, creates and writes the next files meanwhile;
/// the two halves cost about the same, so a transfer of many small files takes both cores. A large
/// file's chunks are written here too (<see cref="Write"/>), so that the receiver reads the next
/// chunk while one is written.
/// <para>
/// Files are linked strictly in the order they were handed over, and nothing after a failed link
/// is linked (its unnamed files are closed, so they vanish): what the transfer leaves is what a
/// receiver doing one record after the other would leave. The receiving thread calls
/// <see cref="Drain"/> before anything whose outcome could depend on a name not linked yet (a
/// directory, a symbolic link, a parent directory opened anew, the end of the transfer) and before
/// it reports a failure of its own, so that an earlier record's failure is the one reported.
/// </para>
/// <para>
/// Hand-over is a ring of <see cref="Capacity"/> slots. The linker sleeps only when the ring is
/// empty and is woken when <see cref="Batch"/> files wait, for a chunk to write, or when the
/// receiver waits for it, so a wake-up (tens of microseconds across cores) is shared by a batch of
/// small files. Nothing is allocated per file or chunk, on either side.
/// </para>
/// </summary>
internal sealed unsafe class Linker : IDisposable
{
    public const int Capacity = 32;
    public const int Batch = 8;
    private const int NameSize = FileCopyProtocol.MaxPathLength + 1;

    private enum Kind : byte
    {
        Link,
        Write,
    }

    private struct Slot
    {
        public Kind Kind;
        public int File;
        public int Parent;
        public int Leaf;
        public int NameLength;
        public uint Mode;
        public bool ModeSet;
        public uint ATime;
        public uint ATimeNanoseconds;
        public uint MTime;
        public uint MTimeNanoseconds;
        public uint Crc;
        /// <summary>A chunk to write: where, how long, at which offset, with the file's flags (without O_DIRECT).</summary>
        public nint Data;
        public int Length;
        public long Offset;
        public int Flags;
        /// <summary>Whether the chunk goes through the page cache (the tail): the flags are set back first.</summary>
        public bool Tail;
    }

    private readonly int _procFds;
    private readonly bool _verbose;
    private readonly Slot[] _slots = new Slot[Capacity];
    /// <summary>Each slot's entry name, NUL-terminated, at <c>slot * NameSize</c>.</summary>
    private readonly byte[] _names = new byte[Capacity * NameSize];
    private readonly byte[] _failedName = new byte[NameSize];
    private readonly object _gate = new();
    private Thread? _thread;

    /// <summary>Slots handed over (written by the receiving thread only).</summary>
    private long _head;
    /// <summary>Slots done (written by the linker only).</summary>
    private long _tail;
    private int _linkerSleeping;
    private int _receiverWaiting;
    private bool _nudged;
    private bool _stopping;
    private bool _linkByDescriptor = true;

    /// <summary>The first failure's errno (0 for none), set by the linker; <see cref="FailedName"/> and <see cref="FailedCrc"/> go with it.</summary>
    private volatile uint _failure;
    private uint _failedCrc;
    private long _linkerAllocated;
    private long _directBytes;
    private volatile bool _directRefused;

    /// <param name="procFds">This process's <c>/proc/self/fd</c> opened as a directory, for kernels that link only through it.</param>
    /// <param name="verbose">Print each linked file's name on standard error.</param>
    public Linker(int procFds, bool verbose)
    {
        _procFds = procFds;
        _verbose = verbose;
    }

    /// <summary>Whether files are linked by their descriptor (else through /proc/self/fd); found out on the first file.</summary>
    public bool LinkByDescriptor
    {
        get => _linkByDescriptor;
        set => _linkByDescriptor = value;
    }

    /// <summary>The errno of the first link (or mode, or times) that failed in this transfer; 0 for none.</summary>
    public uint Failure => _failure;

    /// <summary>The name of the entry whose link failed, NUL-terminated.</summary>
    public ReadOnlySpan<byte> FailedName => _failedName;

    /// <summary>The stream's CRC after the record whose link failed, which is what the reply carries.</summary>
    public uint FailedCrc => _failedCrc;

    /// <summary>Bytes the linker thread had allocated when it last completed a file (for tests).</summary>
    internal long LinkerAllocatedBytes => Volatile.Read(ref _linkerAllocated);

    /// <summary>Bytes written past the page cache so far.</summary>
    public long DirectBytes => Volatile.Read(ref _directBytes);

    /// <summary>Whether the file system took O_DIRECT at open but refused a direct write: later files should go through the page cache.</summary>
    public bool DirectRefused => _directRefused;

    /// <summary>
    /// Hands over the complete unnamed <paramref name="file"/> (owned by the linker from now on) to
    /// be linked as <paramref name="name"/>[<paramref name="leaf"/>..] in <paramref name="parent"/>
    /// (kept open by the caller until the next <see cref="Drain"/>), then given its mode and times.
    /// False when an earlier link failed: the file is closed and the transfer should end.
    /// </summary>
    public bool Add(int file, int parent, ReadOnlySpan<byte> name, int leaf, in FileHeader header, bool modeSet, uint crc)
    {
        if (_failure != 0)
        {
            Libc.close(file);
            return false;
        }
        ref Slot slot = ref Claim(Kind.Link, name, crc);
        slot.File = file;
        slot.Parent = parent;
        slot.Leaf = leaf;
        slot.NameLength = name.Length;
        slot.Mode = header.Mode & FileCopyProtocol.PermissionMask;
        slot.ModeSet = modeSet;
        slot.ATime = header.ATime;
        slot.ATimeNanoseconds = header.ATimeNanoseconds;
        slot.MTime = header.MTime;
        slot.MTimeNanoseconds = header.MTimeNanoseconds;
        Publish(urgent: false);
        return true;
    }

    /// <summary>
    /// Hands over the write of <paramref name="length"/> bytes at <paramref name="data"/> to
    /// <paramref name="file"/> (open with O_DIRECT; its flags without it are
    /// <paramref name="flags"/>, set back first for the <paramref name="tail"/>) at
    /// <paramref name="offset"/>. The caller leaves the buffer alone, and the file open, until
    /// <see cref="WaitFor"/> the returned ticket; −1 when something handed over before failed.
    /// </summary>
    public long Write(int file, byte* data, int length, long offset, int flags, bool tail, ReadOnlySpan<byte> name, uint crc)
    {
        if (_failure != 0)
        {
            return -1;
        }
        long ticket = _head;
        ref Slot slot = ref Claim(Kind.Write, name, crc);
        slot.File = file;
        slot.Data = (nint)data;
        slot.Length = length;
        slot.Offset = offset;
        slot.Flags = flags;
        slot.Tail = tail;
        Publish(urgent: true);
        return ticket;
    }

    /// <summary>Waits until what was handed over with <paramref name="ticket"/> (and all before it) is done; nothing for −1.</summary>
    public void WaitFor(long ticket)
    {
        if (ticket >= Volatile.Read(ref _tail))
        {
            WaitUntil((int)(_head - ticket - 1));
        }
    }

    /// <summary>The next free slot, its name and CRC filled in (waits while the ring is full).</summary>
    private ref Slot Claim(Kind kind, ReadOnlySpan<byte> name, uint crc)
    {
        _thread ??= Start();
        if (_head - Volatile.Read(ref _tail) == Capacity)
        {
            WaitUntil(Capacity - 1);
        }
        int index = (int)(_head % Capacity);
        ref Slot slot = ref _slots[index];
        slot.Kind = kind;
        slot.NameLength = name.Length;
        slot.Crc = crc;
        Span<byte> slotName = _names.AsSpan(index * NameSize, NameSize);
        name.CopyTo(slotName);
        slotName[name.Length] = 0;
        return ref slot;
    }

    /// <summary>Makes the claimed slot the linker's, and wakes it when a batch waits or when <paramref name="urgent"/>.</summary>
    private void Publish(bool urgent)
    {
        Volatile.Write(ref _head, _head + 1);
        // a full fence between publishing the slot and reading the linker's flag (it sets the flag, then reads _head)
        Interlocked.MemoryBarrier();
        if (Volatile.Read(ref _linkerSleeping) != 0 && (urgent || _head - Volatile.Read(ref _tail) >= Batch))
        {
            lock (_gate)
            {
                Monitor.PulseAll(_gate);
            }
        }
    }

    /// <summary>Waits until every file handed over is linked (or closed after a failure); true when none failed.</summary>
    public bool Drain()
    {
        if (Volatile.Read(ref _tail) != _head)
        {
            WaitUntil(0);
        }
        return _failure == 0;
    }

    /// <summary>
    /// Before the receiving thread may block (reading the stream), wakes a sleeping linker for the
    /// files that wait, fewer than a batch, so none waits on a slow sender.
    /// </summary>
    public void Nudge()
    {
        if (Volatile.Read(ref _tail) != _head)
        {
            lock (_gate)
            {
                _nudged = true;
                if (_linkerSleeping != 0)
                {
                    Monitor.PulseAll(_gate);
                }
            }
        }
    }

    /// <summary>Starts a transfer afresh: no failure known. Call after <see cref="Drain"/>.</summary>
    public void Reset()
    {
        _failure = 0;
        _failedName[0] = 0;
    }

    /// <summary>The receiving thread waits until at most <paramref name="pending"/> slots wait for the linker (which works, meanwhile, whatever their number).</summary>
    private void WaitUntil(int pending)
    {
        lock (_gate)
        {
            Interlocked.Exchange(ref _receiverWaiting, 1);
            Monitor.PulseAll(_gate);
            while (_head - Volatile.Read(ref _tail) > pending)
            {
                Monitor.Wait(_gate);
            }
            _receiverWaiting = 0;
        }
    }

    private Thread Start()
    {
        Thread thread = new(Run) { IsBackground = true, Name = "qfile linker" };
        thread.Start();
        return thread;
    }

    private void Run()
    {
        long tail = 0;
        while (true)
        {
            if (tail == Volatile.Read(ref _head))
            {
                lock (_gate)
                {
                    Interlocked.Exchange(ref _linkerSleeping, 1);
                    while (!_stopping && !(_receiverWaiting != 0 || _nudged ? _head != tail : _head - tail >= Batch))
                    {
                        Monitor.Wait(_gate);
                    }
                    _nudged = false;
                    _linkerSleeping = 0;
                    if (_stopping && tail == _head)
                    {
                        return;
                    }
                }
            }
            int index = (int)(tail % Capacity);
            Complete(ref _slots[index], index);
            Volatile.Write(ref _linkerAllocated, GC.GetAllocatedBytesForCurrentThread());
            Volatile.Write(ref _tail, ++tail);
            Interlocked.MemoryBarrier();
            if (Volatile.Read(ref _receiverWaiting) != 0)
            {
                lock (_gate)
                {
                    Monitor.PulseAll(_gate);
                }
            }
        }
    }

    /// <summary>Links, sets mode and times, closes: one file, unless an earlier one failed; or writes a chunk of one.</summary>
    private void Complete(ref Slot slot, int index)
    {
        fixed (byte* name = &_names[index * NameSize])
        {
            if (slot.Kind == Kind.Write)
            {
                if (_failure == 0 && WriteChunk(ref slot) is Errno writeError and not Errno.None)
                {
                    Fail(ref slot, name, writeError);
                }
                return;
            }
            Errno error = _failure != 0 ? Errno.None : Link(slot.File, slot.Parent, name + slot.Leaf);
            if (_failure == 0 && error == Errno.None)
            {
                Libc.timespec* times = stackalloc Libc.timespec[2];
                times[0] = new() { tv_sec = slot.ATime, tv_nsec = slot.ATimeNanoseconds };
                times[1] = new() { tv_sec = slot.MTime, tv_nsec = slot.MTimeNanoseconds };
                if ((!slot.ModeSet && Libc.fchmod(slot.File, slot.Mode) != 0) || Libc.futimens(slot.File, times) != 0)
                {
                    error = LastError.Get();
                }
            }
            Libc.close(slot.File);
            if (_failure != 0)
            {
                return;
            }
            if (error != Errno.None)
            {
                Fail(ref slot, name, error);
            }
            else if (_verbose)
            {
                name[slot.NameLength] = (byte)'\n';
                Fd.WriteAll(2, new ReadOnlySpan<byte>(name, slot.NameLength + 1));
            }
        }
    }

    private void Fail(ref Slot slot, byte* name, Errno error)
    {
        new ReadOnlySpan<byte>(name, slot.NameLength + 1).CopyTo(_failedName);
        _failedCrc = slot.Crc;
        _failure = (uint)error;
    }

    /// <summary>
    /// One chunk of a large file, past the page cache, or through it for the tail or where the file
    /// system refuses the direct write (the flags set back, and later files told).
    /// </summary>
    private Errno WriteChunk(ref Slot slot)
    {
        bool direct = !slot.Tail;
        if (!direct && Libc.fcntl(slot.File, Libc.F_SETFL, slot.Flags) != 0)
        {
            return LastError.Get();
        }
        Errno error = Fd.WriteAllAt(slot.File, new ReadOnlySpan<byte>((byte*)slot.Data, slot.Length), slot.Offset);
        if (error == Errno.EINVAL && direct)
        {
            direct = false;
            _directRefused = true;
            if (Libc.fcntl(slot.File, Libc.F_SETFL, slot.Flags) != 0)
            {
                return LastError.Get();
            }
            error = Fd.WriteAllAt(slot.File, new ReadOnlySpan<byte>((byte*)slot.Data, slot.Length), slot.Offset);
        }
        if (error == Errno.None && direct)
        {
            Volatile.Write(ref _directBytes, _directBytes + slot.Length);
        }
        return error;
    }

    /// <summary>
    /// Gives the complete unnamed file its name: linkat of the descriptor itself (Linux 6.10 lets
    /// the opener do that), else of /proc/self/fd/N, following only that magic link.
    /// </summary>
    private Errno Link(int file, int parent, byte* leaf)
    {
        if (_linkByDescriptor)
        {
            fixed (byte* empty = "\0"u8)
            {
                if (Libc.linkat(file, empty, parent, leaf, Libc.AT_EMPTY_PATH) == 0)
                {
                    return Errno.None;
                }
            }
            Errno error = LastError.Get();
            if (error is not (Errno.ENOENT or Errno.EPERM))
            {
                return error;
            }
            // an older kernel: only with CAP_DAC_READ_SEARCH
            _linkByDescriptor = false;
        }
        byte* number = stackalloc byte[12];
        bool formatted = file.TryFormat(new Span<byte>(number, 11), out int digits, provider: System.Globalization.CultureInfo.InvariantCulture);
        number[formatted ? digits : 0] = 0;
        return Libc.linkat(_procFds, number, parent, leaf, Libc.AT_SYMLINK_FOLLOW) == 0 ? Errno.None : LastError.Get();
    }

    /// <summary>Links what is still handed over, then ends the thread.</summary>
    public void Dispose()
    {
        if (_thread is null)
        {
            return;
        }
        lock (_gate)
        {
            _stopping = true;
            Monitor.PulseAll(_gate);
        }
        _thread.Join();
        _thread = null;
    }
}
