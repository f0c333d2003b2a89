using System;
using System.Buffers.Binary;
using System.Runtime.CompilerServices;
using Qubes.Interop.Linux;
using Qubes.Qrexec.Transport;

namespace Qubes.Qrexec;

/// <summary>Local descriptors of the caller side of a call (qrexec-client, qrexec-client-vm).</summary>
public struct CallerIo
{
    /// <summary>Read and sent as STDIN (−1: none, EOF at once).</summary>
    public int Input;
    /// <summary>Receives the remote STDOUT (−1: discarded).</summary>
    public int Output;
    /// <summary>Receives the remote STDERR (−1: discarded).</summary>
    public int Error;
    /// <summary>Bytes sent as STDIN before anything read from <see cref="Input"/> (<c>--prefix-data</c>).</summary>
    public byte[]? PrefixData;
    /// <summary>Replace unsafe bytes in the remote stdout / stderr (spec §10 rule 11).</summary>
    public bool FilterOutput;
    public bool FilterError;
    /// <summary>A local process whose status counts when the remote status is 0 (§10 rule 13).</summary>
    public SpawnedProcess? LocalProcess;
}

/// <summary>Local side of the service end of a call: a process's pipes, or one socket.</summary>
public struct ServiceIo
{
    /// <summary>Receives STDIN (the process's stdin pipe, or the socket).</summary>
    public int Input;
    /// <summary>Read and sent as STDOUT (the process's stdout pipe, or the same socket).</summary>
    public int Output;
    /// <summary>Read and sent as STDERR (−1: none; an empty STDERR is sent at once).</summary>
    public int Error;
    /// <summary>The executable's process (null for socket services, whose status is 0).</summary>
    public SpawnedProcess? Process;
    /// <summary><see cref="Input"/> and <see cref="Output"/> are one socket: shut down halves instead of closing.</summary>
    public bool IsSocket;
    /// <summary>
    /// <see cref="Input"/> is a socket of its own (a socket pair to the process's stdin): what the
    /// process writes into it is sent as STDOUT too, and STDOUT ends when both it and
    /// <see cref="Output"/> have ended (upstream's services may switch to their stdin socket for output).
    /// </summary>
    public bool InputIsSocket;
    public bool ExitOnClientEof;
    public bool ExitOnServiceEof;
}

/// <summary>
/// The data phase of a call (spec §10) for either end, over one channel and a few local descriptors,
/// driven by poll(2). Chunks move between descriptors and the channel with no intermediate buffer
/// where the transport allows (<see cref="IQrexecChannel.SendChunkFromFd"/>,
/// <see cref="IQrexecChannel.ReceiveToFd"/>). Nothing is allocated per chunk.
///
/// Receiving: an 8-byte header is taken once at least 8 bytes are ready; its body is then streamed
/// to its destination as bytes arrive, so a chunk never needs to fit anywhere at once. A
/// destination that is full (EAGAIN) pauses the receiving side until poll says it is writable; the
/// sending side goes on meanwhile, so neither end of a local process can deadlock the other.
/// </summary>
public sealed unsafe class DataPump
{
    private const int NoStream = -1;
    private const int StreamStdin = 0;
    private const int StreamStdout = 1;
    private const int StreamStderr = 2;
    private const int StreamExitCode = 3;
    private const int StreamDiscard = 4;
    private const int PollTimeoutMs = 10_000;

    private readonly IQrexecChannel _channel;
    private readonly int _maxChunk;
    private readonly int _sendChunk;
    private readonly bool _isCaller;

    // receive state: the chunk being streamed
    private int _rxStream = NoStream;
    private int _rxRemaining;
    private int _rxExitBytes;
    private int _blockedFd = -1;      // destination that answered EAGAIN

    // local descriptors, indexed by stream: _sinks receive, _sources are read
    private readonly int[] _sinks = [-1, -1, -1];
    private readonly int[] _sources = [-1, -1, -1];
    private readonly bool[] _filter = new bool[3];
    private byte[]? _filterBuffer;
    private byte[]? _prefix;

    private bool _stdinEofSent;      // these three: the EOF is decided (queued, then sent as space allows)
    private bool _stdoutEofSent;
    private bool _stderrEofSent;
    private readonly int[] _pendingEof = new int[3]; // EOF headers waiting for channel space: streams, in the order they ended
    private int _pendingEofCount;
    private int _pendingExit = -1;   // the service's exit code, waiting for the EOFs and for space
    private bool _exitSent;
    private bool _remoteStdinEof;
    private int _stdoutAlt = -1;     // the service's stdin socket, read as a second STDOUT source
    private int _inputSocket = -1;   // the same descriptor, closed when the run ends
    private bool _stdoutPrimaryEof;  // the service's stdout ended; STDOUT ends once its stdin socket has too
    private bool _stdoutAltUsed;     // the service wrote into its stdin socket
    private readonly int _signalsAtStart = Runtime.ServiceRunner.StdioSocketSignals;
    private bool _stdinGone;         // the service's local stdin is closed (remote EOF, the process exited, the socket hung up)
    private bool _haveExitCode;
    private int _remoteStatus;
    private bool _ownsDescriptors;   // the service side's process pipes (not sockets, not the caller's stdio)

    private DataPump(IQrexecChannel channel, uint version, bool isCaller)
    {
        _channel = channel;
        _maxChunk = version >= 3 ? QrexecProtocol.MaxDataChunk : QrexecProtocol.MaxDataChunkV2;
        _sendChunk = SendChunk(channel, _maxChunk);
        _isCaller = isCaller;
    }

    /// <summary>
    /// The largest chunk read from a local source at once. Over a vchan ring, a quarter of the ring:
    /// a chunk as large as the ring (64 KiB chunks, 64 KiB ring) makes the two ends take turns, the
    /// writer waiting until the reader has written the whole chunk out; smaller chunks let the
    /// reader drain one while the writer fills the next (the ring's own writes publish in 16 KiB
    /// steps for the same reason). Other transports buffer locally and take whole chunks.
    /// </summary>
    private static int SendChunk(IQrexecChannel channel, int maxChunk)
        => channel is VchanChannel vchan ? Math.Clamp(vchan.Endpoint.WriteRingSize / 4, 1, maxChunk) : maxChunk;

    /// <summary>Why the last run ended abnormally (null when it ended by the protocol).</summary>
    public string? Failure { get; private set; }

    /// <summary>
    /// Runs the caller end: local input to STDIN, STDOUT/STDERR to local descriptors, until EXIT_CODE.
    /// Returns the call's result (§10 rule 13): the remote status if non-zero, else the local
    /// process's, else 0; 255 when the channel ended without an exit code.
    /// </summary>
    public static int RunCaller(IQrexecChannel channel, uint version, CallerIo io, out string? failure)
    {
        ArgumentNullException.ThrowIfNull(channel);
        DataPump pump = new(channel, version, isCaller: true);
        pump._sources[StreamStdin] = io.Input;
        pump._sinks[StreamStdout] = io.Output;
        pump._sinks[StreamStderr] = io.Error;
        pump._filter[StreamStdout] = io.FilterOutput;
        pump._filter[StreamStderr] = io.FilterError;
        pump._prefix = io.PrefixData is { Length: > 0 } ? io.PrefixData : null;
        int result = pump.Run(io.LocalProcess, isSocket: false, exitOnClientEof: false, exitOnServiceEof: false);
        failure = pump.Failure;
        return result;
    }

    /// <summary>
    /// Runs the service end: STDIN to the local input, local output/error to STDOUT/STDERR, then
    /// EXIT_CODE once everything is closed and the process has exited. Returns the status sent, or
    /// −1 when the channel failed first.
    /// </summary>
    public static int RunService(IQrexecChannel channel, uint version, ServiceIo io, out string? failure)
    {
        ArgumentNullException.ThrowIfNull(channel);
        DataPump pump = new(channel, version, isCaller: false);
        pump._sinks[StreamStdin] = io.Input;
        pump._sources[StreamStdout] = io.Output;
        pump._sources[StreamStderr] = io.Error;
        if (io.InputIsSocket && !io.IsSocket)
        {
            pump._stdoutAlt = pump._inputSocket = io.Input;
        }
        int result = pump.Run(io.Process, io.IsSocket, io.ExitOnClientEof, io.ExitOnServiceEof);
        failure = pump.Failure;
        return result;
    }

    /// <summary>
    /// Sends the launch-failure sequence of the service side (§10 rule 6): STDOUT EOF, STDERR EOF
    /// (the reverse in dom0), then EXIT_CODE.
    /// </summary>
    public static bool SendLaunchFailure(IQrexecChannel channel, int status, bool dom0Order)
    {
        ArgumentNullException.ThrowIfNull(channel);
        Span<byte> message = stackalloc byte[3 * QrexecProtocol.HeaderSize + 4];
        new MessageHeader(dom0Order ? MessageType.DataStderr : MessageType.DataStdout, 0).Write(message);
        new MessageHeader(dom0Order ? MessageType.DataStdout : MessageType.DataStderr, 0).Write(message[8..]);
        new MessageHeader(MessageType.DataExitCode, 4).Write(message[16..]);
        BinaryPrimitives.WriteInt32LittleEndian(message[24..], status);
        bool blocking = channel.Blocking;
        channel.Blocking = true;
        bool ok = channel.Send(message) == message.Length;
        channel.Blocking = blocking;
        return ok;
    }

    /// <summary>Copies <paramref name="from"/> to <paramref name="to"/> until its end, with terminal escapes replaced (<see cref="FilterEscapes"/>).</summary>
    public static void CopyFiltered(int from, int to)
    {
        byte[] buffer = new byte[4096];
        int n;
        while ((n = Fd.Read(from, buffer)) > 0)
        {
            FilterEscapes(buffer.AsSpan(0, n));
            Fd.WriteAll(to, buffer.AsSpan(0, n));
        }
    }

    /// <summary>§10 rule 11: every byte outside 0x20–0x7E except TAB, LF, CR, BS and BEL becomes '_'.</summary>
    public static void FilterEscapes(Span<byte> data)
    {
        for (int i = 0; i < data.Length; i++)
        {
            byte b = data[i];
            if ((b < 0x20 || b > 0x7e) && b is not ((byte)'\t' or (byte)'\n' or (byte)'\r' or 0x08 or 0x07))
            {
                data[i] = (byte)'_';
            }
        }
    }

    private int Run(SpawnedProcess? process, bool isSocket, bool exitOnClientEof, bool exitOnServiceEof)
    {
        // The caller's descriptors may be shared with other processes (a terminal, the shell's
        // pipes): their flags are put back afterwards. The service side's pipes are our own.
        _ownsDescriptors = !_isCaller && !isSocket;
        int[] fds = [_sinks[0], _sinks[1], _sinks[2], _sources[0], _sources[1], _sources[2]];
        int[] savedFlags = new int[fds.Length];
        for (int i = 0; i < fds.Length; i++)
        {
            savedFlags[i] = Array.IndexOf(fds, fds[i]) < i ? -1 : MakeNonBlocking(fds[i]);
        }
        try
        {
            return Loop(process, isSocket, exitOnClientEof, exitOnServiceEof);
        }
        finally
        {
            if (_isCaller)
            {
                for (int i = 0; i < fds.Length; i++)
                {
                    Restore(fds[i], savedFlags[i]);
                }
            }
            else if (!isSocket)
            {
                // the process's pipes are the pump's: close what the streams left open
                if (_inputSocket >= 0)
                {
                    _sinks[StreamStdin] = -1;
                    CloseOwned(ref _inputSocket);
                }
                for (int i = 0; i < 3; i++)
                {
                    CloseOwned(ref _sinks[i]);
                    CloseOwned(ref _sources[i]);
                }
            }
        }
    }

    private int Loop(SpawnedProcess? process, bool isSocket, bool exitOnClientEof, bool exitOnServiceEof)
    {
        _channel.Blocking = false;
        Libc.pollfd* fds = stackalloc Libc.pollfd[8];
        if (!_isCaller && _sources[StreamStderr] < 0)
        {
            QueueEof(StreamStderr); // no stderr to forward (a socket, or dom0's service): its EOF first
        }
        if (_isCaller && _sources[StreamStdin] < 0 && _prefix == null)
        {
            QueueEof(StreamStdin);
        }
        bool processExited = process == null;
        bool checkProcess = true; // reaped once at the start, then when its pidfd polls readable
        while (true)
        {
            // 1. drain what the peer sent, as far as destinations take it
            int drained = Drain();
            if (drained < 0)
            {
                return ChannelFailed("receiving");
            }
            if (_isCaller && _haveExitCode)
            {
                // the service is done: our input's end goes out if there is room, nothing waits for it
                if (!_stdinEofSent)
                {
                    QueueEof(StreamStdin);
                }
                FlushPending();
                int local = 0;
                if (process != null)
                {
                    process.TryReap(block: true);
                    local = process.ExitCode ?? 0;
                }
                return _remoteStatus != 0 ? _remoteStatus : local;
            }
            if (!_isCaller && _pendingExit < 0)
            {
                if (_remoteStdinEof && _sinks[StreamStdin] >= 0)
                {
                    if (isSocket && exitOnClientEof)
                    {
                        Libc.shutdown(_sinks[StreamStdin], 1); // SHUT_WR
                        _sinks[StreamStdin] = -1;
                        if (!_stdoutEofSent)
                        {
                            QueueEof(StreamStdout);
                            _sources[StreamStdout] = -1;
                        }
                        _pendingExit = 0;
                        continue;
                    }
                    CloseServiceStdin(isSocket);
                }
                if (!processExited && checkProcess)
                {
                    checkProcess = false;
                    processExited = process!.TryReap(block: false);
                    if (processExited && _sinks[StreamStdin] >= 0 && !isSocket)
                    {
                        CloseServiceStdin(isSocket); // nobody reads it any more: what comes is dropped
                    }
                }
                if (_stdoutEofSent && _stderrEofSent && processExited
                    && (!isSocket || _remoteStdinEof || _stdinGone || exitOnServiceEof))
                {
                    _pendingExit = process?.ExitCode ?? 0;
                }
            }
            if (!FlushPending())
            {
                return ChannelFailed("sending the end of a stream or the exit code");
            }
            if (_exitSent)
            {
                return _pendingExit;
            }

            // 2. send: prefix data first, then local sources while the channel has room
            int space = _channel.Space();
            if (_prefix != null && space > QrexecProtocol.HeaderSize)
            {
                if (!SendPrefix(space) && !StopSendingToClosedPeer())
                {
                    return ChannelFailed("sending the prefix");
                }
                space = _channel.Space();
            }

            // 3. build the poll set
            int n = 0;
            fds[n++] = new Libc.pollfd { fd = _channel.Fd, events = _channel.PollEvents };
            int sourceBase = n;
            bool room = space > QrexecProtocol.HeaderSize && _prefix == null;
            for (int s = 0; s < 3; s++)
            {
                int fd = _sources[s];
                fds[n++] = new Libc.pollfd { fd = room && fd >= 0 ? fd : -1, events = Libc.POLLIN };
            }
            int blockedIndex = n;
            fds[n++] = new Libc.pollfd { fd = _blockedFd, events = Libc.POLLOUT };
            // a service's socket that hangs up (both directions shut) ends its stdin; polled with no
            // event asked, POLLHUP and POLLERR come anyway
            int altIndex = n;
            fds[n++] = new Libc.pollfd { fd = room && _stdoutAlt >= 0 ? _stdoutAlt : -1, events = Libc.POLLIN };
            int hangupIndex = n;
            fds[n++] = new Libc.pollfd { fd = !_isCaller && isSocket && _sinks[StreamStdin] >= 0 && _blockedFd < 0 ? _sinks[StreamStdin] : -1, events = 0 };
            int processIndex = n;
            fds[n++] = new Libc.pollfd { fd = processExited || process == null ? -1 : process.PidFd.Fd, events = Libc.POLLIN };

            // a source already known readable is served without sleeping
            int r = Libc.poll(fds, (nuint)n, PollTimeoutMs);
            if (r < 0)
            {
                if (LastError.Get() == Errno.EINTR)
                {
                    continue;
                }
                Failure = "poll: " + LastError.Get();
                return _isCaller ? 255 : -1;
            }
            if (fds[0].revents != 0)
            {
                _channel.Service();
            }
            if (fds[blockedIndex].revents != 0)
            {
                _blockedFd = -1;
            }
            if (fds[processIndex].revents != 0)
            {
                checkProcess = true;
            }
            if ((fds[hangupIndex].revents & (Libc.POLLHUP | Libc.POLLERR)) != 0 && _sinks[StreamStdin] >= 0)
            {
                CloseServiceStdin(isSocket);
            }
            if (fds[altIndex].revents != 0 && SendFromStdinSocket() == int.MinValue)
            {
                return ChannelFailed("relaying the stdin socket");
            }
            if (r == 0 && _channel.State == Vchan.VchanState.Disconnected && _channel.Ready() == 0)
            {
                return PeerGone();
            }
            for (int s = 0; s < 3; s++)
            {
                // a source polled readable waits when an earlier one filled the channel meanwhile
                if (fds[sourceBase + s].revents == 0 || _channel.Space() <= QrexecProtocol.HeaderSize)
                {
                    continue;
                }
                int moved = SendFromSource(s, isSocket);
                // a full chunk says more is likely waiting: go on reading while the channel has
                // room, without a poll per chunk (bounded, so the other directions get their turn)
                for (int more = 0; more < 8 && moved == _sendChunk && _sources[s] >= 0 && _channel.Space() > _sendChunk + QrexecProtocol.HeaderSize; more++)
                {
                    moved = SendFromSource(s, isSocket);
                }
                if (moved == int.MinValue)
                {
                    if (!StopSendingToClosedPeer())
                    {
                        return ChannelFailed("sending");
                    }
                    break;
                }
                if (!_isCaller && isSocket && exitOnServiceEof && _stdoutEofSent && _pendingExit < 0)
                {
                    _pendingExit = 0;
                }
            }
            if (_channel.State == Vchan.VchanState.Disconnected && _channel.Ready() == 0)
            {
                return PeerGone();
            }
        }
    }

    /// <summary>Reads one chunk from source stream <paramref name="s"/> into the channel; EOF sends the empty chunk.</summary>
    private int SendFromSource(int s, bool isSocket)
    {
        int fd = _sources[s];
        MessageType type = s switch
        {
            StreamStdin => MessageType.DataStdin,
            StreamStdout => MessageType.DataStdout,
            _ => MessageType.DataStderr,
        };
        int moved = _channel.SendChunkFromFd(type, fd, _sendChunk);
        if (moved > 0 || moved == -(int)Errno.EAGAIN || moved == -(int)Errno.EINTR)
        {
            return Math.Max(moved, 0);
        }
        if (moved == int.MinValue)
        {
            return moved;
        }
        // end of file (or a read error, which ends the stream the same way)
        if (s == StreamStdout && _stdoutAlt >= 0 && (_stdoutAltUsed || Runtime.ServiceRunner.StdioSocketSignals != _signalsAtStart))
        {
            // the service uses its stdin socket for its output (it wrote there, or a SIGUSR1 came
            // since the call began: the signal does not say from which service): STDOUT goes on
            // from that socket until it ends too
            _stdoutPrimaryEof = true;
        }
        else
        {
            QueueEof(s);
        }
        if (isSocket)
        {
            Libc.shutdown(fd, 0); // SHUT_RD
        }
        else if (!_isCaller)
        {
            Libc.close(fd);     // the process's pipe is ours; the caller's descriptors are not
        }
        _sources[s] = -1;
        return 0;
    }

    /// <summary>Reads what the service wrote into its stdin socket and sends it as STDOUT; at its end, STDOUT ends if the stdout socket has.</summary>
    private int SendFromStdinSocket()
    {
        int moved = _channel.SendChunkFromFd(MessageType.DataStdout, _stdoutAlt, _sendChunk);
        _stdoutAltUsed |= moved > 0;
        if (moved > 0 || moved == -(int)Errno.EAGAIN || moved == -(int)Errno.EINTR || moved == int.MinValue)
        {
            return moved;
        }
        _stdoutAlt = -1; // the descriptor stays the stdin sink (shut for writing when stdin ends)
        if (_stdoutPrimaryEof)
        {
            QueueEof(StreamStdout);
        }
        return 0;
    }

    private bool SendPrefix(int space)
    {
        byte[] prefix = _prefix!;
        int n = Math.Min(Math.Min(space - QrexecProtocol.HeaderSize, _maxChunk), prefix.Length);
        Span<byte> header = stackalloc byte[QrexecProtocol.HeaderSize];
        new MessageHeader(MessageType.DataStdin, (uint)n).Write(header);
        if (_channel.Send(header) != header.Length || _channel.Send(prefix.AsSpan(0, n)) != n)
        {
            return false;
        }
        _prefix = n == prefix.Length ? null : prefix[n..];
        if (_prefix == null && _sources[StreamStdin] < 0)
        {
            QueueEof(StreamStdin);
        }
        return true;
    }

    /// <summary>Moves ready bytes to their destinations until the channel is empty or a destination is full. −1 on a protocol violation or channel failure.</summary>
    private int Drain()
    {
        Span<byte> header = stackalloc byte[QrexecProtocol.HeaderSize];
        while (_blockedFd < 0)
        {
            if (_rxStream == NoStream)
            {
                if (_channel.Ready() < QrexecProtocol.HeaderSize)
                {
                    return 0;
                }
                if (_channel.Recv(header) != header.Length)
                {
                    return -1;
                }
                MessageHeader h = MessageHeader.Read(header);
                if (h.Length > (uint)_maxChunk)
                {
                    Failure = $"peer sent a {h.Length}-byte chunk, more than the {_maxChunk} allowed";
                    return -1;
                }
                if (!StartChunk(h))
                {
                    return -1;
                }
                continue;
            }
            if (_rxRemaining == 0)
            {
                _rxStream = NoStream;
                continue;
            }
            int ready = _channel.Ready();
            if (ready == 0)
            {
                return 0;
            }
            int want = Math.Min(ready, _rxRemaining);
            int moved = _rxStream == StreamExitCode ? ReceiveExitCode(want) : Deliver(_rxStream, want);
            if (moved == int.MinValue)
            {
                return -1;
            }
            if (moved < 0)
            {
                return 0; // destination full; poll for it
            }
            _rxRemaining -= moved;
        }
        return 0;
    }

    /// <summary>Applies a header: EOF handling, or where the body goes. False on a fatal type.</summary>
    private bool StartChunk(MessageHeader h)
    {
        int stream;
        switch (h.Type)
        {
            case MessageType.DataStdin:
                stream = _isCaller ? StreamStdout : StreamStdin; // a caller treats STDIN as STDOUT (warned upstream)
                break;
            case MessageType.DataStdout:
                stream = _isCaller ? StreamStdout : StreamStdin; // a service treats STDOUT from its caller as STDIN (logged upstream)
                break;
            case MessageType.DataStderr:
                stream = _isCaller ? StreamStderr : NoStream;
                break;
            case MessageType.DataExitCode:
                stream = _isCaller ? StreamExitCode : NoStream;
                break;
            default:
                Failure = $"unknown message type 0x{(uint)h.Type:x} in the data phase";
                return false;
        }
        if (stream == StreamExitCode)
        {
            _rxStream = StreamExitCode;
            _rxRemaining = (int)h.Length;
            _rxExitBytes = 0;
            _remoteStatus = 0;
            if (h.Length == 0)
            {
                CompleteExitCode();
            }
            return true;
        }
        if (h.Length == 0)
        {
            StreamEnded(stream);
            _rxStream = NoStream;
            return true;
        }
        _rxStream = stream == NoStream ? StreamDiscard : stream;
        _rxRemaining = (int)h.Length;
        return true;
    }

    private void StreamEnded(int stream)
    {
        switch (stream)
        {
            case StreamStdin:
                _remoteStdinEof = true;
                break;
            case StreamStdout:
                CloseSink(StreamStdout);
                break;
            case StreamStderr:
                CloseSink(StreamStderr);
                break;
        }
    }

    /// <summary>
    /// The remote ended a stream the caller writes out. Its remote STDOUT's end reaches whoever
    /// reads the caller's output at once, not when the call is over: one socket that is both our
    /// input and output is shut for writing; any other descriptor is replaced by /dev/null, with
    /// every copy of it this process holds, which drops this process's references to the file
    /// without freeing the descriptor numbers for reuse (the descriptors may be owned elsewhere and
    /// closed later). An output socket of its own is not shut down, as upstream's client does not
    /// shut down the standard descriptors it inherited: other processes may write to the same
    /// socket after the call (the shell that ran the client, say). Stderr stays open: errors are
    /// still written there.
    /// </summary>
    private void CloseSink(int stream)
    {
        int fd = _sinks[stream];
        _sinks[stream] = -1;
        if (!_isCaller || stream != StreamStdout || fd < 0 || fd == _sinks[StreamStderr])
        {
            return;
        }
        if (fd == _sources[StreamStdin])
        {
            Libc.shutdown(fd, 1); // SHUT_WR
            return;
        }
        Fd.DetachFile(fd);
    }

    /// <summary>The service's local stdin ends: a pipe is closed, a socket shut for writing; what the caller still sends is dropped.</summary>
    private void CloseServiceStdin(bool isSocket)
    {
        int fd = _sinks[StreamStdin];
        if (fd >= 0)
        {
            if (isSocket || fd == _inputSocket)
            {
                Libc.shutdown(fd, 1); // SHUT_WR
            }
            else
            {
                Libc.close(fd);
            }
        }
        _sinks[StreamStdin] = -1;
        _stdinGone = true;
        if (_blockedFd == fd)
        {
            _blockedFd = -1;
        }
    }

    /// <summary>Streams up to <paramref name="count"/> body bytes to the stream's sink. Returns moved, −1 for EAGAIN, int.MinValue on channel failure.</summary>
    private int Deliver(int stream, int count)
    {
        int fd = stream is >= 0 and < 3 ? _sinks[stream] : -1;
        if (fd < 0)
        {
            return _channel.Skip(count);
        }
        if (_filter[stream])
        {
            return DeliverFiltered(fd, count);
        }
        int moved = _channel.ReceiveToFd(fd, count);
        if (moved > 0 || moved == int.MinValue)
        {
            return moved;
        }
        if (moved == -(int)Errno.EAGAIN)
        {
            _blockedFd = fd;
            return -1;
        }
        if (moved == -(int)Errno.EINTR)
        {
            return 0;
        }
        // the destination is gone (EPIPE: the process closed its stdin; our stdout closed): discard the rest of this stream
        if (!_isCaller && stream == StreamStdin)
        {
            CloseServiceStdin(isSocket: false);
        }
        else if (_ownsDescriptors)
        {
            CloseOwned(ref _sinks[stream]);
        }
        _sinks[stream] = -1;
        return _channel.Skip(count);
    }

    /// <summary>Filtered streams go through a private buffer (the ring is the peer's memory) and are written out whole.</summary>
    private int DeliverFiltered(int fd, int count)
    {
        _filterBuffer ??= new byte[QrexecProtocol.MaxDataChunk];
        int n = _channel.Read(_filterBuffer.AsSpan(0, Math.Min(count, _filterBuffer.Length)));
        if (n <= 0)
        {
            return n < 0 ? int.MinValue : 0;
        }
        Span<byte> data = _filterBuffer.AsSpan(0, n);
        FilterEscapes(data);
        int done = 0;
        while (done < n)
        {
            nint w;
            fixed (byte* p = data[done..])
            {
                w = Libc.write(fd, p, (nuint)(n - done));
            }
            if (w > 0)
            {
                done += (int)w;
                continue;
            }
            Errno e = LastError.Get();
            if (e == Errno.EAGAIN)
            {
                Libc.pollfd p = new() { fd = fd, events = Libc.POLLOUT };
                Libc.poll(&p, 1, -1);
                continue;
            }
            if (e != Errno.EINTR)
            {
                break;
            }
        }
        return n;
    }

    private int ReceiveExitCode(int count)
    {
        Span<byte> tmp = stackalloc byte[4];
        int take = Math.Min(count, 4 - _rxExitBytes);
        if (take > 0)
        {
            int n = _channel.Read(tmp[..take]);
            if (n <= 0)
            {
                return n < 0 ? int.MinValue : 0;
            }
            for (int i = 0; i < n; i++)
            {
                _remoteStatus |= tmp[i] << (8 * (_rxExitBytes + i));
            }
            _rxExitBytes += n;
            if (_rxRemaining - n == 0)
            {
                CompleteExitCode();
            }
            return n;
        }
        int skipped = _channel.Skip(count);
        if (_rxRemaining - skipped == 0)
        {
            CompleteExitCode();
        }
        return skipped;
    }

    private void CompleteExitCode()
    {
        if (_rxExitBytes < 4)
        {
            _remoteStatus = 255; // a body shorter than 4 bytes
        }
        _haveExitCode = true;
    }


    /// <summary>Sends EXIT_CODE with <paramref name="status"/>, waiting for room. False when the channel failed.</summary>
    public static bool SendExitCode(IQrexecChannel channel, int status)
    {
        ArgumentNullException.ThrowIfNull(channel);
        Span<byte> message = stackalloc byte[QrexecProtocol.HeaderSize + 4];
        new MessageHeader(MessageType.DataExitCode, 4).Write(message);
        BinaryPrimitives.WriteInt32LittleEndian(message[8..], status);
        bool blocking = channel.Blocking;
        channel.Blocking = true;
        bool ok = channel.Send(message) == message.Length;
        channel.Blocking = blocking;
        return ok;
    }

    /// <summary>
    /// Decides the end of stream <paramref name="s"/>: its empty chunk goes out as soon as the
    /// channel has room (<see cref="FlushPending"/>). No send in the data phase waits for room:
    /// a sender that waited could stop draining its input while its peer waits the same way for
    /// it (two-way bulk calls would deadlock).
    /// </summary>
    private void QueueEof(int s)
    {
        ref bool sent = ref s == StreamStdin ? ref _stdinEofSent : ref s == StreamStdout ? ref _stdoutEofSent : ref _stderrEofSent;
        if (sent)
        {
            return; // one EOF per stream
        }
        sent = true;
        _pendingEof[_pendingEofCount++] = s;
    }

    /// <summary>Sends the queued EOFs, then the service's exit code, as far as the channel has room. False when the channel failed.</summary>
    private bool FlushPending()
    {
        Span<byte> message = stackalloc byte[QrexecProtocol.HeaderSize + 4];
        while (_pendingEofCount > 0)
        {
            int s = _pendingEof[0];
            if (_channel.Space() < QrexecProtocol.HeaderSize)
            {
                return true;
            }
            MessageType type = s switch
            {
                StreamStdin => MessageType.DataStdin,
                StreamStdout => MessageType.DataStdout,
                _ => MessageType.DataStderr,
            };
            new MessageHeader(type, 0).Write(message);
            int sent = _channel.Send(message[..QrexecProtocol.HeaderSize]);
            if (sent < 0)
            {
                return StopSendingToClosedPeer();
            }
            if (sent == 0)
            {
                return true;
            }
            _pendingEof.AsSpan(1, --_pendingEofCount).CopyTo(_pendingEof);
        }
        if (_pendingExit >= 0 && _pendingEofCount == 0 && _channel.Space() >= message.Length)
        {
            new MessageHeader(MessageType.DataExitCode, 4).Write(message);
            BinaryPrimitives.WriteInt32LittleEndian(message[QrexecProtocol.HeaderSize..], _pendingExit);
            if (_channel.Send(message) != message.Length)
            {
                return false;
            }
            _exitSent = true;
        }
        return true;
    }

    /// <summary>
    /// A send failed. For a caller whose peer has closed, that is not the end yet: the service may
    /// have sent everything, its exit code last, and closed while this end still had input to
    /// send (a short service and a caller's stdin EOF cross). The caller stops sending and goes on
    /// draining; the loop then ends with the exit code, or without one as the peer gone. True when
    /// the caller goes on; false when the send failure is fatal.
    /// </summary>
    private bool StopSendingToClosedPeer()
    {
        if (!_isCaller || _channel.State != Vchan.VchanState.Disconnected)
        {
            return false;
        }
        for (int s = 0; s < 3; s++)
        {
            _sources[s] = -1; // the caller's descriptors are not ours to close
        }
        _prefix = null;
        _stdinEofSent = true;
        return true;
    }

    [MethodImpl(MethodImplOptions.NoInlining)]
    private int PeerGone()
    {
        if (_isCaller)
        {
            if (_haveExitCode)
            {
                return _remoteStatus;
            }
            Failure ??= "the remote end closed the connection without an exit code";
            return 255;
        }
        Failure ??= "the caller closed the connection";
        return -1;
    }

    [MethodImpl(MethodImplOptions.NoInlining)]
    private int ChannelFailed(string doing)
    {
        Failure ??= $"the connection failed ({doing}, {_channel.State})";
        return _isCaller ? 255 : -1;
    }

    private static void CloseOwned(ref int fd)
    {
        if (fd >= 0)
        {
            Libc.close(fd);
            fd = -1;
        }
    }

    private static int MakeNonBlocking(int fd)
    {
        if (fd < 0)
        {
            return -1;
        }
        int flags = Libc.fcntl(fd, Libc.F_GETFL, 0);
        if (flags >= 0 && (flags & Libc.O_NONBLOCK) == 0)
        {
            Libc.fcntl(fd, Libc.F_SETFL, flags | Libc.O_NONBLOCK);
            return flags;
        }
        return -1;
    }

    private static void Restore(int fd, int flags)
    {
        if (fd >= 0 && flags >= 0)
        {
            Libc.fcntl(fd, Libc.F_SETFL, flags);
        }
    }
}
