using System;
using System.IO.Hashing;
using System.Runtime.InteropServices;
using System.Threading;
using Qubes.Interop.Linux;

namespace Qubes.FileCopy;

/// <summary>Which entry types a receiver takes (spec filecopy §9); regular files always.</summary>
[Flags]
public enum EntryTypes
{
    /// <summary>Regular files only (dom0's <c>--only-regular-files</c>).</summary>
    RegularFiles = 0,

    /// <summary>Directories too.</summary>
    Directories = 1,

    /// <summary>Symbolic links too.</summary>
    SymbolicLinks = 2,

    /// <summary>Everything the stream carries.</summary>
    All = Directories | SymbolicLinks,
}

/// <summary>What a receiver accepts and how much.</summary>
/// <param name="Types">The entry types taken besides regular files.</param>
/// <param name="Rules">What names and link targets may hold.</param>
/// <param name="BytesLimit">Total of file sizes, link target lengths and re-sent directories' sizes; 0 for none.</param>
/// <param name="FilesLimit">Number of records; 0 for none.</param>
/// <param name="WaitForSpace">Before a file's data, wait (polling once a second) until its file system has the file's length and this many bytes more free; 0 not to wait.</param>
/// <param name="Verbose">Print the name of each file and link received, a line each, on standard error.</param>
public readonly record struct UnpackOptions(EntryTypes Types, NameRules Rules, ulong BytesLimit = 0, ulong FilesLimit = 0, ulong WaitForSpace = 0, bool Verbose = false)
{
    /// <summary>A qube's <c>qfile-unpacker</c>: everything, names restricted, non-canonical link targets tolerated, no limits.</summary>
    public static UnpackOptions Qube => new(EntryTypes.All, NameRules.AllowNonCanonicalSymlinks);
}

/// <summary>How a transfer ended.</summary>
/// <param name="Code">The reply's error code: 0, an errno, or <see cref="FileCopyProtocol.LegalEof"/>.</param>
/// <param name="Crc">CRC-32 of every byte read from the stream.</param>
/// <param name="Replied">False when the transfer was aborted without a reply (an invalid nanoseconds field).</param>
public readonly record struct UnpackResult(uint Code, uint Crc, bool Replied);

/// <summary>
/// The receiving side of qubes.Filecopy (spec filecopy §7, §8): reads records from an untrusted
/// stream and creates them under a root directory, which nothing it does can leave:
/// <list type="bullet">
/// <item>every name is checked (§6) before it is used, and a link's target with it;</item>
/// <item>parent directories are opened one component at a time relative to the root, each without
/// following a symbolic link (§8.1), so no link, planted or sent, is ever followed;</item>
/// <item>a file is written unnamed (<c>O_TMPFILE</c>, with its own permissions) and linked in by
/// name only once complete, by its descriptor or through the caller's <c>/proc/self/fd</c>
/// descriptor; without that (or where the file system cannot) it is created exclusively with mode
/// 0000 until complete; an existing name is never overwritten;</item>
/// <item>the file system is flushed (<c>syncfs</c>) before the reply says success.</item>
/// </list>
/// Unnamed files are linked in, in order, by a second thread (<see cref="Linker"/>) while the next
/// ones arrive. One instance serves one transfer at a time and allocates nothing per record;
/// disposing of it ends that thread.
/// </summary>
public sealed unsafe class Unpacker : IDisposable
{
    private const int DataBufferSize = 256 * 1024;

    /// <summary>
    /// A file of at least this length is written in chunks of this size past the page cache
    /// (<c>O_DIRECT</c>), from buffers aligned for it: the data is copied once less, and it is on
    /// the device when the write returns instead of waiting for the write-back the reply needs. The
    /// linker's thread writes each chunk while the next of <see cref="DirectBuffers"/> is filled.
    /// </summary>
    internal const int DirectChunk = 1 << 20;
    private const int DirectBuffers = 4;
    private const int DirectAlignment = 4096;

    private readonly int _root;
    private readonly int _procFds;
    private readonly UnpackOptions _options;
    private readonly byte[] _header = new byte[FileCopyProtocol.HeaderSize];
    private readonly byte[] _name = new byte[FileCopyProtocol.MaxPathLength + 1];
    private readonly byte[] _components = new byte[FileCopyProtocol.MaxPathLength + 1];
    private readonly byte[] _target = new byte[FileCopyProtocol.MaxPathLength + 1];
    /// <summary>What was read from the stream and not yet taken: [_inStart, _inEnd).</summary>
    private readonly byte[] _in = new byte[DataBufferSize];
    private readonly byte[] _parentPath = new byte[FileCopyProtocol.MaxPathLength + 1];
    private int _inStart;
    private int _inEnd;
    private int _input;

    /// <summary>The parent directory last opened (a descriptor, or -1) and its path, kept for the next entry in it.</summary>
    private int _parent = -1;
    private int _parentPathLength;
    private readonly Crc32 _crc = new();
    private readonly uint _umask;
    private bool _useTemporaryFiles;
    private readonly Linker _linker;
    /// <summary><see cref="DirectBuffers"/> chunks aligned for <c>O_DIRECT</c>, allocated with the first large file.</summary>
    private byte* _direct;
    /// <summary>For each chunk buffer, the linker's ticket for its last write (−1: none).</summary>
    private readonly long[] _directTickets = new long[DirectBuffers];
    /// <summary>Whether the file system took <c>O_DIRECT</c> so far (once refused, files go through the page cache).</summary>
    private bool _directWrites = true;
    private ulong _totalBytes;
    private ulong _totalFiles;
    private readonly WriteBack _writeBack;

    /// <summary>
    /// A receiver into the directory <paramref name="root"/> (a descriptor the caller keeps open);
    /// <paramref name="procFds"/> is this process's <c>/proc/self/fd</c> opened as a directory, or
    /// -1 to create files exclusively by name instead of unnamed.
    /// </summary>
    public Unpacker(int root, int procFds, UnpackOptions options)
    {
        _root = root;
        _procFds = procFds;
        _options = options;
        _writeBack = new WriteBack(root);
        _linker = new Linker(procFds, options.Verbose);
        _umask = Libc.umask(0x12);
        Libc.umask(_umask);
    }

    /// <summary>How many flushes ran during transfers, beside the final one of each (<see cref="WriteBack"/>).</summary>
    internal int WriteBackFlushes => _writeBack.Flushes;

    /// <summary>How many ranges of large files were handed to the disk during transfers (<see cref="WriteBack"/>).</summary>
    internal int WriteBackRanges => _writeBack.Ranges;

    /// <summary>Whether a complete unnamed file is linked in by its descriptor (else through /proc/self/fd); found out on the first file.</summary>
    internal bool LinkByDescriptor
    {
        get => _linker.LinkByDescriptor;
        set => _linker.LinkByDescriptor = value;
    }

    /// <summary>Bytes the thread that links files in had allocated after its last file (<see cref="Linker"/>).</summary>
    internal long LinkerAllocatedBytes => _linker.LinkerAllocatedBytes;

    /// <summary>How many bytes of files were written past the page cache (<see cref="DirectChunk"/>).</summary>
    internal long DirectBytes => _linker.DirectBytes;

    /// <summary>Whether large files are written past the page cache (as long as the file system takes it).</summary>
    internal bool DirectWrites
    {
        get => _directWrites;
        set => _directWrites = value;
    }

    /// <summary>Ends the thread that links files in, and lets go of the aligned buffer.</summary>
    public void Dispose()
    {
        _linker.Dispose();
        NativeMemory.AlignedFree(_direct);
        _direct = null;
    }

    /// <summary>
    /// Receives one transfer from <paramref name="input"/> and writes the one reply to
    /// <paramref name="output"/> (spec §3), unless the transfer is aborted. The caller closes the
    /// input after a failure, so that the sender stops.
    /// </summary>
    public UnpackResult Run(int input, int output)
    {
        _input = input;
        _inStart = _inEnd = 0;
        Outcome outcome;
        try
        {
            outcome = Receive();
        }
        finally
        {
            // no file of this transfer is linked, and no flush runs, after it (the caller closes the directory next)
            _linker.Drain();
            ForgetParent();
            _writeBack.Quiesce();
        }
        uint crc = outcome.Name == NameKind.Linked ? _linker.FailedCrc : _crc.GetCurrentHashAsUInt32();
        if (outcome.Code == Abort)
        {
            return new(1, crc, false);
        }
        ReadOnlySpan<byte> lastName = outcome.Name switch
        {
            NameKind.Entry => UntilNul(_name),
            NameKind.Target => UntilNul(_target),
            NameKind.Component => UntilNul(_components.AsSpan(outcome.ComponentStart)),
            NameKind.Linked => UntilNul(_linker.FailedName),
            _ => default,
        };
        bool withName = outcome.Name != NameKind.None;
        Span<byte> head = stackalloc byte[FileCopyProtocol.ReplySize + 4];
        int length = FileCopyProtocol.WriteReplyHead(head, outcome.Code, crc, withName ? lastName.Length : null);
        if (Fd.WriteAll(output, head[..length]) == Errno.None && withName)
        {
            Fd.WriteAll(output, lastName);
        }
        return new(outcome.Code, crc, true);
    }

    /// <summary>The outcome of an invalid nanoseconds field: the transfer ends without a reply, as upstream's does.</summary>
    private const uint Abort = uint.MaxValue;

    private enum NameKind
    {
        None,
        Entry,
        Target,
        Component,
        /// <summary>The file whose link failed (<see cref="Linker.FailedName"/>).</summary>
        Linked,
    }

    /// <summary>A transfer's end: the code and which name the reply carries.</summary>
    private readonly record struct Outcome(uint Code, NameKind Name, int ComponentStart = 0);

    private Outcome Receive()
    {
        _linker.Reset();
        Outcome outcome = ReceiveRecords();
        // files handed over for linking come first: a failure among them is the transfer's
        if (!_linker.Drain())
        {
            return new(_linker.Failure, NameKind.Linked);
        }
        if (outcome.Code != 0)
        {
            return outcome;
        }
        // what was received reaches the disk before the sender is told it arrived (most of it already
        // has, through the write-back during the transfer)
        _writeBack.Quiesce();
        uint code = Libc.syncfs(_root) == 0 ? 0 : (uint)LastError.Get();
        return new(code, NameKind.Entry);
    }

    /// <summary>Records until the end marker (code 0) or the first failure seen here.</summary>
    private Outcome ReceiveRecords()
    {
        _crc.Reset();
        _totalBytes = 0;
        _totalFiles = 0;
        _useTemporaryFiles = _procFds >= 0;
        _name[0] = 0;
        while (true)
        {
            int read = ReadExact(_header);
            if (read != _header.Length)
            {
                // no end marker: the stream broke off (or could not be read)
                return new(read < 0 ? (uint)-read : (uint)Errno.EREMOTEIO, NameKind.Entry);
            }
            _crc.Append(_header);
            FileHeader header = FileHeader.Read(_header);
            if (header.IsEnd)
            {
                return default;
            }
            _totalFiles++;
            if (_options.FilesLimit != 0 && _totalFiles > _options.FilesLimit)
            {
                return new((uint)Errno.EDQUOT, NameKind.Entry);
            }
            if (header.NameLength > FileCopyProtocol.MaxPathLength - 1)
            {
                return new((uint)Errno.ENAMETOOLONG, NameKind.None);
            }
            Span<byte> name = _name.AsSpan(0, (int)header.NameLength);
            if (ReadExact(name) != name.Length)
            {
                return new(FileCopyProtocol.LegalEof, NameKind.None);
            }
            _crc.Append(name);
            _name[name.Length] = 0;
            Outcome outcome = header.Type switch
            {
                FileCopyProtocol.Regular => ReceiveFile(header),
                FileCopyProtocol.SymbolicLink when (_options.Types & EntryTypes.SymbolicLinks) != 0 => ReceiveLink(header),
                FileCopyProtocol.Directory when (_options.Types & EntryTypes.Directories) != 0 => ReceiveDirectory(header),
                _ => new((uint)Errno.EINVAL, NameKind.Entry),
            };
            if (outcome.Code != 0)
            {
                return outcome;
            }
            // (the linker prints the name of a file it links in, once it has)
            if (_options.Verbose && header.Type != FileCopyProtocol.Directory && !(header.Type == FileCopyProtocol.Regular && _useTemporaryFiles))
            {
                int length = UntilNul(_name).Length;
                _name[length] = (byte)'\n';
                Fd.WriteAll(2, _name.AsSpan(0, length + 1));
                _name[length] = 0;
            }
        }
    }

    private Outcome ReceiveFile(in FileHeader header)
    {
        if (PathValidator.ValidateEntryName(_name, _options.Rules) is int invalid and not 0)
        {
            return new((uint)invalid, NameKind.Entry);
        }
        Outcome opened = OpenParent(out int parent, out int leaf);
        if (opened.Code != 0)
        {
            return opened;
        }
        int file = -1;
        bool handedWrites = false;
        try
        {
            fixed (byte* components = _components)
            {
                if (_useTemporaryFiles)
                {
                    fixed (byte* dot = ".\0"u8)
                    {
                        // unnamed until complete, so it may have its own permissions from the start
                        file = Libc.openat(parent, dot, Libc.O_WRONLY | Libc.O_TMPFILE | Libc.O_CLOEXEC | Libc.O_NOCTTY, header.Mode & 0x1FF);
                    }
                    if (file < 0)
                    {
                        Errno error = LastError.Get();
                        if (error is not (Errno.ENOENT or Errno.ENOTSUP))
                        {
                            return new((uint)error, NameKind.Entry);
                        }
                        // the kernel or the file system has no unnamed files: create by name from now on
                        // (after the files made unnamed so far are in place)
                        if (!_linker.Drain())
                        {
                            return new(_linker.Failure, NameKind.Linked);
                        }
                        _useTemporaryFiles = false;
                    }
                }
                if (file < 0)
                {
                    file = Libc.openat(parent, components + leaf, Libc.O_WRONLY | Libc.O_CREAT | Libc.O_EXCL | Libc.O_NOFOLLOW | Libc.O_CLOEXEC | Libc.O_NOCTTY, 0);
                    if (file < 0)
                    {
                        return new((uint)LastError.Get(), NameKind.Entry);
                    }
                }
                // the limits, once the file is made (§8.2; an unnamed file vanishes when closed)
                ulong length = header.FileLength, limit = _options.BytesLimit;
                if (length > long.MaxValue || (limit != 0 && (length > limit || _totalBytes > limit - length)))
                {
                    return new((uint)Errno.EDQUOT, NameKind.Entry);
                }
                if (_options.WaitForSpace != 0 && WaitForSpace(file, header.FileLength) is var statError and not Errno.None)
                {
                    return new((uint)statError, NameKind.Entry);
                }
                _totalBytes += header.FileLength;
                uint copied = CopyData(file, header.FileLength, out handedWrites);
                if (copied != 0)
                {
                    return new(copied, NameKind.Entry);
                }
                if (_linker.Failure != 0)
                {
                    return new(_linker.Failure, NameKind.Linked);
                }
                if (!ValidTimes(header))
                {
                    return RefuseTimes(parent, leaf);
                }
                _writeBack.Completed();
                if (!_useTemporaryFiles)
                {
                    // the chunks handed over are written before the file gets its mode and times
                    return handedWrites && !_linker.Drain() ? new(_linker.Failure, NameKind.Linked) : ApplyModeAndTimes(file, header);
                }
                // an unnamed file was made with its permissions unless the umask took some or it has set-id or sticky bits
                bool modeSet = (header.Mode & FileCopyProtocol.PermissionMask) == (header.Mode & 0x1FF & ~_umask);
                int handedOver = file;
                file = -1;
                return _linker.Add(handedOver, parent, UntilNul(_name), leaf, header, modeSet, _crc.GetCurrentHashAsUInt32())
                    ? default
                    : new(_linker.Failure, NameKind.Linked);
            }
        }
        finally
        {
            if (file >= 0)
            {
                if (handedWrites)
                {
                    // no chunk is written into a descriptor closed, or reused, meanwhile
                    _linker.Drain();
                }
                Libc.close(file);
            }
            CloseParent(parent);
        }
    }

    /// <summary>Waits until the file system of <paramref name="file"/> has room for <paramref name="length"/> bytes and the margin.</summary>
    private Errno WaitForSpace(int file, ulong length)
    {
        ulong wanted = length > ulong.MaxValue - _options.WaitForSpace ? ulong.MaxValue : length + _options.WaitForSpace;
        for (bool first = true; ; first = false)
        {
            if (!first)
            {
                Thread.Sleep(1000);
            }
            if (Libc.fstatvfs(file, out Libc.statvfs fs) != 0)
            {
                return LastError.Get();
            }
            if ((UInt128)fs.f_bsize * fs.f_bavail >= wanted)
            {
                return Errno.None;
            }
        }
    }

    /// <summary>
    /// Copies exactly <paramref name="length"/> bytes of the stream into the file; 0, LEGAL_EOF
    /// when the stream ends or fails, or the write's errno. <paramref name="handedWrites"/> tells
    /// whether chunks were handed to the linker to write (their failure is the linker's).
    /// </summary>
    private uint CopyData(int file, ulong length, out bool handedWrites)
    {
        handedWrites = false;
        _directWrites &= !_linker.DirectRefused;
        if (length >= DirectChunk && _directWrites)
        {
            int flags = Libc.fcntl(file, Libc.F_GETFL, 0);
            if (flags >= 0 && Libc.fcntl(file, Libc.F_SETFL, flags | Libc.O_DIRECT) == 0)
            {
                handedWrites = true;
                return CopyDataDirect(file, flags, length);
            }
            // the file system has no direct writes
            _directWrites = false;
        }
        long written = 0;
        while (length > 0)
        {
            ReadOnlySpan<byte> chunk = ReadSome((int)Math.Min(length, (ulong)_in.Length));
            if (chunk.IsEmpty)
            {
                return FileCopyProtocol.LegalEof;
            }
            _crc.Append(chunk);
            if (Fd.WriteAll(file, chunk) is Errno error and not Errno.None)
            {
                return (uint)error;
            }
            written += chunk.Length;
            _writeBack.Wrote(file, written, (ulong)chunk.Length);
            length -= (ulong)chunk.Length;
        }
        return 0;
    }

    /// <summary>
    /// <see cref="CopyData"/> for a file open with <c>O_DIRECT</c> (its flags before were
    /// <paramref name="flags"/>): each chunk is filled from what was read ahead and then by reads,
    /// of no more than the file's bytes, into a free aligned buffer, and handed to the linker to
    /// write whole; the last one, unless a multiple of the alignment, through the page cache.
    /// </summary>
    private uint CopyDataDirect(int file, int flags, ulong length)
    {
        if (_direct == null)
        {
            _direct = (byte*)NativeMemory.AlignedAlloc(DirectChunk * DirectBuffers, DirectAlignment);
            _directTickets.AsSpan().Fill(-1);
        }
        ReadOnlySpan<byte> name = UntilNul(_name);
        long offset = 0;
        for (int chunkIndex = 0; length > 0; chunkIndex++)
        {
            int buffer = chunkIndex % DirectBuffers;
            _linker.WaitFor(_directTickets[buffer]);
            byte* chunk = _direct + ((nint)buffer * DirectChunk);
            int want = (int)Math.Min(length, DirectChunk), filled = 0;
            while (filled < want)
            {
                Span<byte> free = new(chunk + filled, want - filled);
                if (_inStart < _inEnd)
                {
                    int count = Math.Min(free.Length, _inEnd - _inStart);
                    _in.AsSpan(_inStart, count).CopyTo(free);
                    _inStart += count;
                    filled += count;
                    continue;
                }
                int n = Fd.Read(_input, free);
                if (n <= 0)
                {
                    // the reply's CRC covers every byte of data that came, as it does on the buffered path
                    _crc.Append(new ReadOnlySpan<byte>(chunk, filled));
                    return FileCopyProtocol.LegalEof;
                }
                filled += n;
            }
            _crc.Append(new ReadOnlySpan<byte>(chunk, filled));
            long ticket = _linker.Write(file, chunk, filled, offset, flags, filled % DirectAlignment != 0, name, _crc.GetCurrentHashAsUInt32());
            if (ticket < 0)
            {
                // an earlier chunk failed: the linker has the error
                return 0;
            }
            _directTickets[buffer] = ticket;
            offset += filled;
            length -= (ulong)filled;
        }
        return 0;
    }

    /// <summary>
    /// Up to <paramref name="max"/> bytes of the stream, from what was read ahead or else from one
    /// read of as much as the stream holds; empty at its end (or a read error).
    /// </summary>
    private ReadOnlySpan<byte> ReadSome(int max)
    {
        if (_inStart == _inEnd)
        {
            _linker.Nudge();
            int n = Fd.Read(_input, _in);
            if (n <= 0)
            {
                return default;
            }
            _inStart = 0;
            _inEnd = n;
        }
        int count = Math.Min(max, _inEnd - _inStart);
        ReadOnlySpan<byte> chunk = _in.AsSpan(_inStart, count);
        _inStart += count;
        return chunk;
    }

    /// <summary>Fills <paramref name="buffer"/> from the stream: its length, fewer at the stream's end, or −errno when a read failed first.</summary>
    private int ReadExact(Span<byte> buffer)
    {
        int done = 0;
        while (done < buffer.Length)
        {
            if (_inStart == _inEnd)
            {
                _linker.Nudge();
                int n = Fd.Read(_input, _in);
                if (n <= 0)
                {
                    return n < 0 && done == 0 ? n : done;
                }
                _inStart = 0;
                _inEnd = n;
            }
            int count = Math.Min(buffer.Length - done, _inEnd - _inStart);
            _in.AsSpan(_inStart, count).CopyTo(buffer[done..]);
            _inStart += count;
            done += count;
        }
        return done;
    }

    private Outcome ReceiveLink(in FileHeader header)
    {
        if (header.FileLength > FileCopyProtocol.MaxPathLength - 1)
        {
            return new((uint)Errno.ENAMETOOLONG, NameKind.Entry);
        }
        int length = (int)header.FileLength;
        _totalBytes += (ulong)length;
        if (_options.BytesLimit != 0 && _totalBytes > _options.BytesLimit)
        {
            return new((uint)Errno.EDQUOT, NameKind.Entry);
        }
        Span<byte> target = _target.AsSpan(0, length);
        if (ReadExact(target) != length)
        {
            return new(FileCopyProtocol.LegalEof, NameKind.Entry);
        }
        _crc.Append(target);
        _target[length] = 0;
        if (PathValidator.ValidateSymbolicLink(_name, _target, _options.Rules) is int invalid and not 0)
        {
            return new((uint)invalid, NameKind.Target);
        }
        // a file of the same name handed over for linking is in place (or failed) first
        if (!_linker.Drain())
        {
            return new(_linker.Failure, NameKind.Linked);
        }
        Outcome opened = OpenParent(out int parent, out int leaf);
        if (opened.Code != 0)
        {
            return opened;
        }
        try
        {
            fixed (byte* targetText = _target)
            fixed (byte* components = _components)
            {
                return Libc.symlinkat(targetText, parent, components + leaf) == 0 ? default : new((uint)LastError.Get(), NameKind.Entry);
            }
        }
        finally
        {
            CloseParent(parent);
        }
    }

    private Outcome ReceiveDirectory(in FileHeader header)
    {
        if (PathValidator.ValidateEntryName(_name, _options.Rules) is int invalid and not 0)
        {
            return new((uint)invalid, NameKind.Entry);
        }
        // the directory's files are in place before it is made or given its mode and times
        if (!_linker.Drain())
        {
            return new(_linker.Failure, NameKind.Linked);
        }
        Outcome opened = OpenParent(out int parent, out int leaf);
        if (opened.Code != 0)
        {
            return opened;
        }
        int directory = -1;
        try
        {
            fixed (byte* components = _components)
            {
                // first seen: made owner-writable so its contents can be added; its own mode and
                // times come with the record sent after them
                if (Libc.mkdirat(parent, components + leaf, 0x1C0) == 0)
                {
                    return default;
                }
                Errno error = LastError.Get();
                if (error != Errno.EEXIST)
                {
                    return new((uint)error, NameKind.Entry);
                }
                directory = Libc.openat(parent, components + leaf, Libc.O_RDONLY | Libc.O_NOFOLLOW | Libc.O_CLOEXEC | Libc.O_DIRECTORY, 0);
                Libc.stat status;
                if (directory < 0 || Libc.fstat(directory, &status) < 0)
                {
                    return new((uint)LastError.Get(), NameKind.Entry);
                }
                // counted after the fact, as the sender's total does: not checked against the limit here
                _totalBytes += (ulong)status.st_size;
                if (!ValidTimes(header))
                {
                    return new(Abort, NameKind.None);
                }
                return ApplyModeAndTimes(directory, header);
            }
        }
        finally
        {
            if (directory >= 0)
            {
                Libc.close(directory);
            }
            CloseParent(parent);
        }
    }

    /// <summary>
    /// A complete file whose nanoseconds are out of range. Upstream links it, then refuses its
    /// times and ends without a reply; here it is never linked (closed unnamed, it vanishes), but
    /// the outcome is the same: a failure of the link (a name taken) is the reply, else none.
    /// </summary>
    private Outcome RefuseTimes(int parent, int leaf)
    {
        if (!_linker.Drain())
        {
            return new(_linker.Failure, NameKind.Linked);
        }
        if (_useTemporaryFiles)
        {
            Libc.stat status;
            fixed (byte* name = &_components[leaf])
            {
                if (Libc.fstatat(parent, name, &status, Libc.AT_SYMLINK_NOFOLLOW) == 0)
                {
                    return new((uint)Errno.EEXIST, NameKind.Entry);
                }
            }
        }
        return new(Abort, NameKind.None);
    }

    private static bool ValidTimes(in FileHeader header)
        => header.ATimeNanoseconds <= FileCopyProtocol.MaxNanoseconds && header.MTimeNanoseconds <= FileCopyProtocol.MaxNanoseconds;

    private static Outcome ApplyModeAndTimes(int fd, in FileHeader header, bool modeSet = false)
    {
        Libc.timespec* times = stackalloc Libc.timespec[2];
        times[0] = new() { tv_sec = header.ATime, tv_nsec = header.ATimeNanoseconds };
        times[1] = new() { tv_sec = header.MTime, tv_nsec = header.MTimeNanoseconds };
        if ((!modeSet && Libc.fchmod(fd, header.Mode & FileCopyProtocol.PermissionMask) != 0) || Libc.futimens(fd, times) != 0)
        {
            return new((uint)LastError.Get(), NameKind.Entry);
        }
        return default;
    }

    /// <summary>
    /// Opens the parent directory of the (validated) entry name one component at a time from the
    /// root, none followed if it is a symbolic link (§8.1). <paramref name="leaf"/> is the offset of
    /// the last component, NUL-terminated, in <see cref="_components"/>. A failure names the
    /// component that failed.
    /// </summary>
    private Outcome OpenParent(out int parent, out int leaf)
    {
        ReadOnlySpan<byte> name = UntilNul(_name);
        name.CopyTo(_components);
        _components[name.Length] = 0;
        int lastSlash = name.LastIndexOf((byte)'/');
        if (lastSlash < 0)
        {
            parent = _root;
            leaf = 0;
            return default;
        }
        // the entries of one directory come one after another: its descriptor serves them all
        if (_parent >= 0 && name[..lastSlash].SequenceEqual(_parentPath.AsSpan(0, _parentPathLength)))
        {
            parent = _parent;
            leaf = lastSlash + 1;
            return default;
        }
        // a component may be a file handed over for linking: it is in place (or failed) before the walk
        if (!_linker.Drain())
        {
            parent = -1;
            leaf = 0;
            return new(_linker.Failure, NameKind.Linked);
        }
        parent = _root;
        int start = 0;
        fixed (byte* components = _components)
        {
            while (true)
            {
                int slash = _components.AsSpan(start, name.Length - start).IndexOf((byte)'/');
                if (slash < 0)
                {
                    leaf = start;
                    ForgetParent();
                    _parent = parent;
                    name[..lastSlash].CopyTo(_parentPath);
                    _parentPathLength = lastSlash;
                    return default;
                }
                components[start + slash] = 0;
                int next = Libc.openat(parent, components + start, Libc.O_RDONLY | Libc.O_DIRECTORY | Libc.O_NOFOLLOW | Libc.O_NOCTTY | Libc.O_CLOEXEC, 0);
                if (next < 0)
                {
                    Errno error = LastError.Get();
                    CloseParent(parent);
                    parent = -1;
                    leaf = 0;
                    return new((uint)error, NameKind.Component, start);
                }
                CloseParent(parent);
                parent = next;
                start += slash + 1;
            }
        }
    }

    /// <summary>Closes a parent directory opened for one entry (the root and the kept one stay open).</summary>
    private void CloseParent(int parent)
    {
        if (parent >= 0 && parent != _root && parent != _parent)
        {
            Libc.close(parent);
        }
    }

    private void ForgetParent()
    {
        if (_parent >= 0)
        {
            Libc.close(_parent);
            _parent = -1;
        }
    }

    private static ReadOnlySpan<byte> UntilNul(ReadOnlySpan<byte> text)
    {
        int end = text.IndexOf((byte)0);
        return end < 0 ? text : text[..end];
    }
}
