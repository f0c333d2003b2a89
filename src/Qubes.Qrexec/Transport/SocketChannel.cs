using System;
using System.Buffers.Binary;
using System.Diagnostics;
using System.Numerics;
using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using Qubes.Interop.Linux;
using Qubes.Vchan;

namespace Qubes.Qrexec.Transport;

/// <summary>
/// One qrexec channel over the vchan-socket convention (spec vchan.md §8): a single AF_UNIX stream
/// connection carrying raw bytes both ways, no framing; EOF is the only end-of-channel signal.
/// </summary>
/// <remarks>
/// <para>
/// The socket itself is always non-blocking. Two local buffers, allocated once per channel on the
/// pinned object heap, stand in for the vchan rings so that <see cref="Write"/> never blocks and
/// <see cref="Ready"/>/<see cref="Space"/> report what a ring would:
/// </para>
/// <code>
///   outgoing:  [ sent | pending (_outStart.._outEnd) | free ]   Space() = capacity − pending
///   incoming:  [ read | ready   (_inStart.._inEnd)   | free ]   Ready() = ready
/// </code>
/// <para>
/// Both keep their bytes contiguous: a buffer that runs out of tail room is compacted to its start
/// (a memmove), so the full free count is always usable in one piece, which lets
/// <see cref="SendChunkFromFd"/> read straight behind its header and <see cref="ReceiveToFd"/>
/// write straight from the buffer.
/// </para>
/// <para>
/// A server channel starts Waiting with <see cref="Fd"/> the listening socket; the first poll
/// readiness (<see cref="Service"/>, <see cref="WaitConnected"/>, or any blocking call) accepts the one
/// connection, closes the listener (its file stays, as upstream), and flushes what was written
/// meanwhile. EOF, ECONNRESET or EPIPE make the channel Disconnected: bytes already received stay
/// readable, queued output is dropped, and writes return −1.
/// </para>
/// <para>
/// Unlike a ring, bytes in the outgoing buffer reach the peer only when this side moves them, so a
/// poller must wait for <see cref="PollEvents"/> (POLLOUT while output is queued) and call
/// <see cref="Service"/>; blocking <see cref="Send"/>/<see cref="Write"/> return only once their
/// bytes are in the socket.
/// </para>
/// <para>Nothing here allocates after set-up; the steady-state calls are syscalls and copies.</para>
/// </remarks>
public sealed unsafe partial class SocketChannel : IQrexecChannel
{
    /// <summary>Size of each direction's local buffer unless a larger minimum was requested.</summary>
    public const int DefaultBufferSize = 64 * 1024;

    /// <summary>Largest buffer a caller may request (a sanity bound on a set-up argument).</summary>
    public const int MaxBufferSize = 16 * 1024 * 1024;

    /// <summary>How long <see cref="Dispose"/> keeps trying to deliver queued output.</summary>
    private const int CloseFlushMilliseconds = 1000;

    private const int HeaderSize = QrexecProtocol.HeaderSize;
    private const int ECONNABORTED = 103;

    private readonly byte[] _in;
    private readonly byte* _inBase;
    private int _inStart;
    private int _inEnd;

    private readonly byte[] _out;
    private readonly byte* _outBase;
    private int _outStart;
    private int _outEnd;

    private SafeFd? _listener;
    private SafeFd? _socket;
    private int _fd;
    private VchanState _state;
    private bool _blocking;
    private bool _disposed;

    private SocketChannel(SafeFd? listener, SafeFd? socket, int readSize, int writeSize)
    {
        _in = GC.AllocateUninitializedArray<byte>(readSize, pinned: true);
        _inBase = (byte*)Unsafe.AsPointer(ref MemoryMarshal.GetArrayDataReference(_in));
        _out = GC.AllocateUninitializedArray<byte>(writeSize, pinned: true);
        _outBase = (byte*)Unsafe.AsPointer(ref MemoryMarshal.GetArrayDataReference(_out));
        _listener = listener;
        _socket = socket;
        if (listener is not null)
        {
            _fd = listener.Fd;
            _state = VchanState.Waiting;
        }
        else
        {
            _fd = socket!.Fd;
            _state = VchanState.Connected;
        }
    }

    /// <summary>A server channel on a listening, non-blocking socket; it takes ownership of <paramref name="listener"/>.</summary>
    internal static SocketChannel ForListener(SafeFd listener, int readSize, int writeSize)
        => new(listener, null, readSize, writeSize);

    /// <summary>A connected channel on a non-blocking stream socket; it takes ownership of <paramref name="socket"/>.</summary>
    internal static SocketChannel ForConnected(SafeFd socket, int readSize, int writeSize)
        => new(null, socket, readSize, writeSize);

    /// <summary>Buffer size for a requested minimum: a power of two, at least <see cref="DefaultBufferSize"/>.</summary>
    internal static int BufferSizeFor(int requestedMinimum)
    {
        if (requestedMinimum > MaxBufferSize)
        {
            throw new ArgumentOutOfRangeException(nameof(requestedMinimum), requestedMinimum, "larger than the channel buffer limit");
        }
        return requestedMinimum <= DefaultBufferSize ? DefaultBufferSize : (int)BitOperations.RoundUpToPowerOf2((uint)requestedMinimum);
    }

    /// <inheritdoc/>
    /// <remarks>The listening socket while Waiting, then the connected socket; −1 once disposed or when the accept failed.</remarks>
    public int Fd => _fd;

    /// <inheritdoc/>
    /// <remarks>
    /// POLLIN is left out while the incoming buffer is full, so that a poller whose consumer is
    /// stalled does not spin on a socket it cannot read from yet.
    /// </remarks>
    public short PollEvents
    {
        get
        {
            if (_state == VchanState.Waiting)
            {
                return Libc.POLLIN;
            }
            short events = 0;
            if (_inEnd - _inStart < _in.Length)
            {
                events |= Libc.POLLIN;
            }
            if (_state == VchanState.Connected && _outEnd != _outStart)
            {
                events |= Libc.POLLOUT;
            }
            return events;
        }
    }

    /// <inheritdoc/>
    public bool Blocking
    {
        get => _blocking;
        set => _blocking = value;
    }

    /// <inheritdoc/>
    public VchanState State => _state;

    /// <summary>Bytes written but not yet handed to the socket.</summary>
    public int PendingOutput => _outEnd - _outStart;

    /// <inheritdoc/>
    public void Service()
    {
        if (_state == VchanState.Waiting && !TryAccept())
        {
            return;
        }
        if (_state == VchanState.Connected)
        {
            Flush();
        }
        if (_state == VchanState.Connected)
        {
            Fill();
        }
    }

    /// <inheritdoc/>
    public int Ready()
    {
        if (_state == VchanState.Waiting)
        {
            TryAccept();
        }
        if (_state == VchanState.Connected)
        {
            Fill();
        }
        return _inEnd - _inStart;
    }

    /// <inheritdoc/>
    public int Space()
    {
        if (_state == VchanState.Waiting)
        {
            TryAccept();
        }
        if (_state == VchanState.Connected && _outEnd != _outStart)
        {
            Flush();
        }
        return _out.Length - (_outEnd - _outStart);
    }

    /// <inheritdoc/>
    public int Read(Span<byte> buffer)
    {
        if (buffer.IsEmpty)
        {
            return 0;
        }
        while (true)
        {
            int available = _inEnd - _inStart;
            if (available == 0)
            {
                available = Ready();
            }
            if (available > 0)
            {
                return TakeInput(buffer);
            }
            if (_state == VchanState.Disconnected)
            {
                return -1;
            }
            if (!_blocking)
            {
                return 0;
            }
            WaitForEvents(-1);
        }
    }

    /// <inheritdoc/>
    /// <remarks>
    /// In blocking mode this writes all of <paramref name="data"/>, as libvchan does, and returns once
    /// it is in the socket (or buffered, on a server still Waiting for its client).
    /// </remarks>
    public int Write(ReadOnlySpan<byte> data)
    {
        if (_blocking)
        {
            return SendBlocking(data);
        }
        if (_state == VchanState.Disconnected)
        {
            return -1;
        }
        int free = Space();
        int n = Math.Min(data.Length, free);
        if (_state == VchanState.Disconnected)
        {
            return -1;
        }
        if (n == 0)
        {
            return 0;
        }
        QueueOutput(data[..n]);
        return _state == VchanState.Disconnected ? -1 : n;
    }

    /// <inheritdoc/>
    /// <remarks>
    /// Non-blocking, a request larger than the incoming buffer can never complete (as with a vchan
    /// ring); in blocking mode the bytes are copied out as they arrive, so any size works.
    /// </remarks>
    public int Recv(Span<byte> buffer)
    {
        if (buffer.IsEmpty)
        {
            return _state == VchanState.Disconnected && _inEnd == _inStart ? -1 : 0;
        }
        if (!_blocking)
        {
            int available = _inEnd - _inStart;
            if (available < buffer.Length)
            {
                available = Ready();
            }
            if (available >= buffer.Length)
            {
                return TakeInput(buffer);
            }
            return _state == VchanState.Disconnected ? -1 : 0;
        }
        int done = 0;
        while (done < buffer.Length)
        {
            int available = _inEnd - _inStart;
            if (available == 0)
            {
                available = Ready();
            }
            if (available > 0)
            {
                done += TakeInput(buffer[done..]);
                continue;
            }
            if (_state == VchanState.Disconnected)
            {
                return -1;
            }
            WaitForEvents(-1);
        }
        return done;
    }

    /// <inheritdoc/>
    /// <remarks>In blocking mode, returns once the bytes are in the socket (or buffered, on a server still Waiting).</remarks>
    public int Send(ReadOnlySpan<byte> data)
    {
        if (_blocking)
        {
            return SendBlocking(data);
        }
        if (_state == VchanState.Disconnected)
        {
            return -1;
        }
        int free = Space();
        if (_state == VchanState.Disconnected)
        {
            return -1;
        }
        if (data.Length > free)
        {
            return 0;
        }
        if (data.IsEmpty)
        {
            return 0;
        }
        QueueOutput(data);
        return _state == VchanState.Disconnected ? -1 : data.Length;
    }

    /// <inheritdoc/>
    /// <remarks>
    /// The data is read from <paramref name="fd"/> straight into the outgoing buffer behind the
    /// header slot. A caller that did not check <see cref="Space"/> and finds no room for a header
    /// and one byte gets −EAGAIN: nothing was read, nothing queued, no stream ended.
    /// </remarks>
    public int SendChunkFromFd(MessageType type, int fd, int maxChunk)
    {
        if (_state == VchanState.Disconnected)
        {
            return int.MinValue;
        }
        int free = Space();
        if (_state == VchanState.Disconnected)
        {
            return int.MinValue;
        }
        int room = Math.Min(free - HeaderSize, maxChunk);
        if (room <= 0)
        {
            return -(int)Errno.EAGAIN;
        }
        MakeTailRoom(HeaderSize + room);
        byte* payload = _outBase + _outEnd + HeaderSize;
        nint n;
        while (true)
        {
            n = Libc.read(fd, payload, (nuint)room);
            if (n >= 0)
            {
                break;
            }
            Errno error = LastError.Get();
            if (error != Errno.EINTR)
            {
                return -(int)error;
            }
        }
        if (n == 0)
        {
            return 0;
        }
        Span<byte> header = new(_outBase + _outEnd, HeaderSize);
        BinaryPrimitives.WriteUInt32LittleEndian(header, (uint)type);
        BinaryPrimitives.WriteUInt32LittleEndian(header[4..], (uint)n);
        _outEnd += HeaderSize + (int)n;
        if (_state == VchanState.Connected)
        {
            Flush();
        }
        return _state == VchanState.Disconnected ? int.MinValue : (int)n;
    }

    /// <inheritdoc/>
    /// <remarks>
    /// When, against the contract, nothing is ready: <see cref="int.MinValue"/> on a disconnected
    /// channel, −EAGAIN on a live one (nothing consumed; a caller retries after the next poll).
    /// </remarks>
    public int ReceiveToFd(int fd, int count)
    {
        int available = _inEnd - _inStart;
        if (available == 0)
        {
            available = Ready();
        }
        if (available == 0)
        {
            return _state == VchanState.Disconnected ? int.MinValue : -(int)Errno.EAGAIN;
        }
        int n = Math.Min(count, available);
        if (n <= 0)
        {
            return 0;
        }
        while (true)
        {
            nint written = Libc.write(fd, _inBase + _inStart, (nuint)n);
            if (written > 0)
            {
                ConsumeInput((int)written);
                return (int)written;
            }
            if (written == 0)
            {
                return 0;
            }
            Errno error = LastError.Get();
            if (error != Errno.EINTR)
            {
                return -(int)error;
            }
        }
    }

    /// <inheritdoc/>
    public int Skip(int count)
    {
        int available = _inEnd - _inStart;
        if (available == 0)
        {
            available = Ready();
        }
        int n = Math.Min(count, available);
        if (n <= 0)
        {
            return 0;
        }
        ConsumeInput(n);
        return n;
    }

    /// <inheritdoc/>
    public bool WaitConnected(TimeSpan timeout)
    {
        if (_state != VchanState.Waiting)
        {
            return _state == VchanState.Connected;
        }
        long start = Stopwatch.GetTimestamp();
        while (true)
        {
            if (TryAccept() || _state != VchanState.Waiting)
            {
                return _state == VchanState.Connected;
            }
            int waitMs = RemainingMilliseconds(start, timeout);
            if (waitMs == 0)
            {
                return false;
            }
            PollOnce(_fd, Libc.POLLIN, waitMs);
        }
    }

    /// <summary>
    /// Delivers queued output (bounded: at most about a second, and only while the peer is there
    /// or may still connect), then closes the socket. The socket file is left in place, as upstream does.
    /// </summary>
    public void Dispose()
    {
        if (_disposed)
        {
            return;
        }
        if (_state != VchanState.Disconnected && _outEnd != _outStart)
        {
            FlushForClose();
        }
        _disposed = true;
        _listener?.Dispose();
        _listener = null;
        _socket?.Dispose();
        _socket = null;
        _fd = -1;
        _state = VchanState.Disconnected;
        _inStart = _inEnd = 0;
        _outStart = _outEnd = 0;
    }

    // ---- internals ---------------------------------------------------------------------------

    /// <summary>Accepts the one connection if it is there. True when the channel just became connected.</summary>
    private bool TryAccept()
    {
        while (true)
        {
            int fd = Libc.accept4(_listener!.Fd, null, null, Libc.SOCK_CLOEXEC | Libc.SOCK_NONBLOCK);
            if (fd >= 0)
            {
                OnAccepted(fd);
                return true;
            }
            Errno error = LastError.Get();
            if (error == Errno.EINTR)
            {
                continue;
            }
            if (error == Errno.EAGAIN || (int)error == ECONNABORTED)
            {
                return false;
            }
            FailAccept();
            return false;
        }
    }

    [MethodImpl(MethodImplOptions.NoInlining)]
    private void OnAccepted(int fd)
    {
        _socket = new SafeFd(fd);
        _listener!.Dispose();
        _listener = null;
        _fd = fd;
        _state = VchanState.Connected;
        Flush();
    }

    [MethodImpl(MethodImplOptions.NoInlining)]
    private void FailAccept()
    {
        _listener!.Dispose();
        _listener = null;
        _fd = -1;
        MarkDisconnected();
    }

    private void MarkDisconnected()
    {
        _state = VchanState.Disconnected;
        _outStart = _outEnd = 0;
    }

    /// <summary>Sends queued output until the socket is full. Connected only.</summary>
    private void Flush()
    {
        while (_outEnd != _outStart)
        {
            nint n = send(_fd, _outBase + _outStart, (nuint)(_outEnd - _outStart), Libc.MSG_NOSIGNAL | Libc.MSG_DONTWAIT);
            if (n > 0)
            {
                _outStart += (int)n;
                continue;
            }
            if (n == 0)
            {
                break;
            }
            Errno error = LastError.Get();
            if (error == Errno.EINTR)
            {
                continue;
            }
            if (error != Errno.EAGAIN)
            {
                // EPIPE, ECONNRESET, or anything else the socket cannot recover from
                MarkDisconnected();
                return;
            }
            break;
        }
        if (_outStart == _outEnd)
        {
            _outStart = _outEnd = 0;
        }
    }

    /// <summary>Receives what the socket holds into the incoming buffer's free room. Connected only.</summary>
    private void Fill()
    {
        int count = _inEnd - _inStart;
        if (count == 0)
        {
            _inStart = _inEnd = 0;
        }
        else if ((_in.Length - _inEnd) * 2 < _in.Length - count)
        {
            // the tail is under half of the free room: move the ready bytes to the start
            _in.AsSpan(_inStart, count).CopyTo(_in);
            _inStart = 0;
            _inEnd = count;
        }
        int room = _in.Length - _inEnd;
        if (room == 0)
        {
            return;
        }
        while (true)
        {
            nint n = recv(_fd, _inBase + _inEnd, (nuint)room, Libc.MSG_DONTWAIT);
            if (n > 0)
            {
                _inEnd += (int)n;
                return;
            }
            if (n == 0)
            {
                MarkDisconnected();
                return;
            }
            Errno error = LastError.Get();
            if (error == Errno.EINTR)
            {
                continue;
            }
            if (error != Errno.EAGAIN)
            {
                MarkDisconnected();
            }
            return;
        }
    }

    private int TakeInput(Span<byte> destination)
    {
        int n = Math.Min(destination.Length, _inEnd - _inStart);
        _in.AsSpan(_inStart, n).CopyTo(destination);
        ConsumeInput(n);
        return n;
    }

    private void ConsumeInput(int n)
    {
        _inStart += n;
        if (_inStart == _inEnd)
        {
            _inStart = _inEnd = 0;
        }
    }

    /// <summary>Appends to the outgoing buffer (the caller checked the room) and flushes when connected.</summary>
    private void QueueOutput(ReadOnlySpan<byte> data)
    {
        MakeTailRoom(data.Length);
        data.CopyTo(_out.AsSpan(_outEnd));
        _outEnd += data.Length;
        if (_state == VchanState.Connected)
        {
            Flush();
        }
    }

    private void MakeTailRoom(int needed)
    {
        if (_out.Length - _outEnd < needed)
        {
            int count = _outEnd - _outStart;
            _out.AsSpan(_outStart, count).CopyTo(_out);
            _outStart = 0;
            _outEnd = count;
        }
    }

    private int SendBlocking(ReadOnlySpan<byte> data)
    {
        int done = 0;
        while (true)
        {
            if (_state == VchanState.Disconnected)
            {
                return -1;
            }
            int n = Math.Min(data.Length - done, Space());
            if (_state == VchanState.Disconnected)
            {
                return -1;
            }
            if (n > 0)
            {
                QueueOutput(data.Slice(done, n));
                done += n;
            }
            if (done == data.Length)
            {
                return DrainAfterBlockingSend() ? done : -1;
            }
            if (n == 0)
            {
                WaitForEvents(-1);
            }
        }
    }

    /// <summary>
    /// A blocking send returns only once its bytes are in the socket: a ring's reader sees them
    /// without the writer's help, but bytes left in our buffer would wait for a later call on this
    /// channel that a caller which sent and then blocked elsewhere might never make. A server still
    /// Waiting keeps them buffered until the accept, as the spec requires.
    /// </summary>
    private bool DrainAfterBlockingSend()
    {
        while (_state == VchanState.Connected && _outEnd != _outStart)
        {
            WaitForEvents(-1);
        }
        return _state != VchanState.Disconnected;
    }

    /// <summary>Waits for this channel's poll events (or <paramref name="timeoutMs"/>), then services it.</summary>
    private void WaitForEvents(int timeoutMs)
    {
        PollOnce(_fd, PollEvents, timeoutMs);
        Service();
    }

    [MethodImpl(MethodImplOptions.NoInlining)]
    private void FlushForClose()
    {
        long start = Stopwatch.GetTimestamp();
        TimeSpan limit = TimeSpan.FromMilliseconds(CloseFlushMilliseconds);
        while (true)
        {
            Service();
            if (_state == VchanState.Disconnected || _outEnd == _outStart)
            {
                return;
            }
            int waitMs = RemainingMilliseconds(start, limit);
            if (waitMs == 0)
            {
                return;
            }
            PollOnce(_fd, _state == VchanState.Waiting ? Libc.POLLIN : Libc.POLLOUT, waitMs);
        }
    }

    private static void PollOnce(int fd, short events, int timeoutMs)
    {
        Libc.pollfd pfd = new() { fd = fd, events = events };
        // EINTR or a spurious wake-up: the caller re-checks its condition and waits again
        Libc.poll(&pfd, 1, timeoutMs);
    }

    /// <summary>Milliseconds left of <paramref name="timeout"/> since <paramref name="start"/> (rounded up); −1 for infinite.</summary>
    internal static int RemainingMilliseconds(long start, TimeSpan timeout)
    {
        if (timeout == System.Threading.Timeout.InfiniteTimeSpan)
        {
            return -1;
        }
        TimeSpan left = timeout - Stopwatch.GetElapsedTime(start);
        if (left <= TimeSpan.Zero)
        {
            return 0;
        }
        double ms = Math.Ceiling(left.TotalMilliseconds);
        return ms >= int.MaxValue ? int.MaxValue : (int)ms;
    }

    // send(2)/recv(2) are not in the shared interop; declared here with blittable signatures.
    [LibraryImport("libc.so.6", SetLastError = true)]
    private static partial nint send(int fd, void* buf, nuint len, int flags);

    [LibraryImport("libc.so.6", SetLastError = true)]
    private static partial nint recv(int fd, void* buf, nuint len, int flags);
}
