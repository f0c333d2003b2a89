using System;
using System.Buffers.Binary;
using System.Collections.Concurrent;
using System.Collections.Generic;
using System.Globalization;
using System.IO;
using System.Threading;
using Qubes.Interop.Linux;
using Qubes.Qrexec.Transport;
using Qubes.Vchan;

namespace Qubes.Qrexec.Runtime;

/// <summary>Options of qrexec-agent (spec §14.2).</summary>
public sealed record AgentOptions(string AgentSocket);

/// <summary>
/// qrexec-agent: the vchan server on port 512 for dom0, the trigger socket for qrexec-client-vm,
/// and a thread per call running the service (or, for our descriptor-passing trigger, the caller's
/// end). One thread owns the control channel and every socket; call threads report their end
/// through a queue and an eventfd.
/// </summary>
public sealed class QrexecAgent : IDisposable
{
    private const int TriggerReadTimeoutMs = 2000;
    private static readonly TimeSpan s_dataConnectTimeout = TimeSpan.FromSeconds(120);

    /// <summary>
    /// Most requests sent to dom0 and not answered yet: the daemon's table of pending requests
    /// (spec §12.1 item 5), which refuses a request when full. Further requests wait here, in order,
    /// until an answer frees a place: many callers at once are served, none refused for the number.
    /// </summary>
    public const int MaxUnansweredRequests = QrexecProtocol.MaxFds;

    /// <summary>Ring size of the channel that ends a call whose caller left before dom0 answered.</summary>
    private const int AbandonedCallRingSize = 1024;

    private readonly IChannelFactory _factory;
    private readonly AgentOptions _options;
    private readonly SafeFd _wake = EventFd.Create();
    private readonly CallThreads _threads = new("qrexec call");
    private readonly ConcurrentQueue<(uint Domain, uint Port, TriggerClient? Client)> _finished = new();
    // trigger clients by descriptor: waiting for SERVICE_CONNECT/REFUSED, or running (then with domain/port)
    private readonly Dictionary<int, TriggerClient> _clients = [];
    // requests waiting for a place among the unanswered ones, oldest first
    private readonly Queue<TriggerClient> _held = new();
    private int _unanswered;
    private IQrexecChannel? _control;
    private SafeFd? _listener;
    private uint _version;

    private sealed class TriggerClient(SafeFd socket, SafeFd[]? stdio)
    {
        public SafeFd Socket { get; } = socket;
        public SafeFd[]? Stdio { get; } = stdio;
        public bool Running { get; set; }
        /// <summary>A descriptor-passing client that hung up while its call thread still runs.</summary>
        public bool HungUp { get; set; }
        /// <summary>The request, while it waits to be sent to dom0 (null once sent).</summary>
        public byte[]? HeldRequest { get; set; }
        /// <summary>
        /// The client hung up after its request went to dom0 and before the answer. Its socket stays
        /// open so that its ident (<c>SOCKET&lt;fd&gt;</c>) names no other request until dom0 answers.
        /// </summary>
        public bool Abandoned { get; set; }
        public bool Closed { get; set; }
        public uint Domain { get; set; }
        public uint Port { get; set; }
    }

    public QrexecAgent(IChannelFactory factory, AgentOptions options)
    {
        ArgumentNullException.ThrowIfNull(factory);
        ArgumentNullException.ThrowIfNull(options);
        _factory = factory;
        _options = options;
    }

    /// <summary>Log sink (stderr by default).</summary>
    public Action<string> Log { get; set; } = static line => Console.Error.WriteLine(line);

    /// <summary>Becomes the control vchan server, completes the handshake with dom0 and creates the trigger socket. False when the handshake failed.</summary>
    public bool Start()
    {
        _control = _factory.Listen(0, QrexecProtocol.ControlPort, QrexecProtocol.ControlRingSize, QrexecProtocol.ControlRingSize);
        if (!_control.WaitConnected(Timeout.InfiniteTimeSpan))
        {
            Log("qrexec-agent: dom0 did not connect");
            return false;
        }
        if (!Io.WriteAll(_control, Messages.Hello(QrexecProtocol.AgentVersion)))
        {
            return false;
        }
        Span<byte> raw = stackalloc byte[QrexecProtocol.HeaderSize + 4];
        if (!Io.ReadExact(_control, raw[..QrexecProtocol.HeaderSize]))
        {
            return false;
        }
        MessageHeader header = MessageHeader.Read(raw);
        if (header.Type != MessageType.Hello || header.Length != 4 || !Io.ReadExact(_control, raw[QrexecProtocol.HeaderSize..]))
        {
            Log("qrexec-agent: dom0 did not answer with HELLO");
            return false;
        }
        _version = Messages.CheckHello(header, raw[QrexecProtocol.HeaderSize..], QrexecProtocol.MinAgentVersion, out uint peer);
        if (_version == 0)
        {
            Log($"qrexec-agent: incompatible protocol version {peer}");
            return false;
        }
        string? directory = Path.GetDirectoryName(_options.AgentSocket);
        if (!string.IsNullOrEmpty(directory))
        {
            Directory.CreateDirectory(directory);
        }
        _listener = Io.ListenWorldConnectable(_options.AgentSocket, 64);
        return true;
    }

    /// <summary>Serves until dom0 closes the control channel or sends something invalid. Returns the exit status.</summary>
    public unsafe int Run()
    {
        IQrexecChannel control = _control ?? throw new InvalidOperationException("not started");
        control.Blocking = false;
        List<int> clientFds = [];
        Libc.pollfd[] pollSet = new Libc.pollfd[16];
        while (true)
        {
            while (_finished.TryDequeue(out (uint Domain, uint Port, TriggerClient? Client) done))
            {
                if (done.Client != null)
                {
                    _clients.Remove(done.Client.Socket.Fd);
                    done.Client.Socket.Dispose();
                }
                if (!Terminated(done.Domain, done.Port))
                {
                    return 1;
                }
            }
            while (control.Ready() >= QrexecProtocol.HeaderSize)
            {
                int r = HandleControlMessage(control);
                if (r >= 0)
                {
                    return r;
                }
            }
            if (control.State == VchanState.Disconnected)
            {
                Log("qrexec-agent: dom0 closed the control channel");
                return 0;
            }
            clientFds.Clear();
            foreach (KeyValuePair<int, TriggerClient> entry in _clients)
            {
                if (!entry.Value.HungUp && !entry.Value.Abandoned)
                {
                    clientFds.Add(entry.Key);
                }
            }
            int n = 3 + clientFds.Count;
            if (pollSet.Length < n)
            {
                pollSet = new Libc.pollfd[n * 2];
            }
            fixed (Libc.pollfd* fds = pollSet)
            {
            fds[0] = new Libc.pollfd { fd = control.Fd, events = control.PollEvents };
            fds[1] = new Libc.pollfd { fd = _listener!.Fd, events = Libc.POLLIN };
            fds[2] = new Libc.pollfd { fd = _wake.Fd, events = Libc.POLLIN };
            for (int i = 0; i < clientFds.Count; i++)
            {
                // a client that is waiting or running is watched for hang-up only
                fds[3 + i] = new Libc.pollfd { fd = clientFds[i], events = Libc.POLLIN };
            }
                if (Libc.poll(fds, (nuint)n, 10_000) < 0)
                {
                    continue;
                }
            }
            if (pollSet[0].revents != 0)
            {
                control.Service();
            }
            if (pollSet[2].revents != 0)
            {
                EventFd.Drain(_wake.Fd);
            }
            if (pollSet[1].revents != 0)
            {
                AcceptTrigger(control);
            }
            for (int i = 0; i < clientFds.Count; i++)
            {
                if (pollSet[3 + i].revents != 0)
                {
                    ClientActivity(clientFds[i]);
                }
            }
        }
    }

    /// <summary>One message from dom0. Returns −1 to go on, or the exit status for a fatal one.</summary>
    private int HandleControlMessage(IQrexecChannel control)
    {
        Span<byte> raw = stackalloc byte[QrexecProtocol.HeaderSize];
        if (!Io.ReadExact(control, raw))
        {
            return 0;
        }
        MessageHeader header = MessageHeader.Read(raw);
        switch (header.Type)
        {
            case MessageType.ExecCmdline:
            case MessageType.JustExec:
            case MessageType.ServiceConnect:
                if (header.Length <= QrexecProtocol.ExecParamsSize || header.Length > int.MaxValue)
                {
                    Log($"qrexec-agent: bad length {header.Length} for message 0x{(uint)header.Type:x}");
                    return 1;
                }
                break;
            case MessageType.ServiceRefused:
                if (header.Length != QrexecProtocol.IdentSize)
                {
                    Log("qrexec-agent: SERVICE_REFUSED of the wrong length");
                    return 1;
                }
                break;
            default:
                Log($"qrexec-agent: unexpected message 0x{(uint)header.Type:x} from dom0");
                return 1;
        }
        byte[]? body = Io.ReadBody(control, header);
        if (body == null)
        {
            return 0;
        }
        (uint domain, uint port) = Io.ExecParams(body);
        switch (header.Type)
        {
            case MessageType.ServiceRefused:
                if (TryClientFromIdent(body, out TriggerClient? refused))
                {
                    Answered(control);
                    CloseClient(refused!);
                }
                break;
            case MessageType.ServiceConnect:
                if (TryClientFromIdent(body.AsSpan(QrexecProtocol.ExecParamsSize), out TriggerClient? client))
                {
                    Answered(control);
                    if (client!.Abandoned)
                    {
                        EndAbandonedCall(client, domain, port);
                    }
                    else
                    {
                        Connect(client, domain, port);
                    }
                }
                break;
            default:
                body[^1] = 0; // force-terminate the command line
                string commandLine = Messages.CString(body.AsSpan(QrexecProtocol.ExecParamsSize));
                bool justExec = header.Type == MessageType.JustExec;
                _threads.Run(() => ServeCall(domain, port, commandLine, justExec));
                break;
        }
        return -1;
    }

    /// <summary>
    /// A call from dom0 or another qube: find the service while the caller sets its end up, connect
    /// the data channel as client, run the service, report the end.
    /// </summary>
    private void ServeCall(uint domain, uint port, string commandLine, bool justExec)
    {
        try
        {
            PreparedService service = ServiceRunner.Prepare(commandLine);
            using IQrexecChannel? channel = _factory.Connect((int)domain, (int)port, s_dataConnectTimeout, out string? error);
            if (channel == null)
            {
                Log($"qrexec-agent: data connection to {domain}:{port}: {error}");
                return;
            }
            uint version = Io.DataHandshake(channel, sendFirst: true);
            if (version == 0)
            {
                Log($"qrexec-agent: data handshake with {domain}:{port} failed");
                return;
            }
            ServiceRunner.Run(channel, version, service, justExec, dom0: false);
        }
        catch (Exception e) when (e is LinuxException or IOException or Platform.PlatformException or VchanException)
        {
            Log($"qrexec-agent: call {domain}:{port}: {e.Message}");
        }
        finally
        {
            Finished(domain, port, null);
        }
    }

    /// <summary>A trigger socket client: read its one message, give it an ident, forward it to dom0.</summary>
    private void AcceptTrigger(IQrexecChannel control)
    {
        int fd = UnixSocket.Accept(_listener!.Fd);
        if (fd < 0)
        {
            return;
        }
        SafeFd socket = new(fd);
        Span<byte> raw = stackalloc byte[QrexecProtocol.HeaderSize];
        Span<int> passed = stackalloc int[3];
        int got = FdPassing.Receive(fd, raw, passed, out int passedCount);
        SafeFd[]? stdio = null;
        if (passedCount > 0)
        {
            stdio = new SafeFd[passedCount];
            for (int i = 0; i < passedCount; i++)
            {
                stdio[i] = new SafeFd(passed[i]);
            }
        }
        if (got > 0 && got < raw.Length && Io.ReadExact(fd, raw[got..], TriggerReadTimeoutMs) == raw.Length - got)
        {
            got = raw.Length;
        }
        MessageHeader header = MessageHeader.Read(raw);
        // with the caller's stdin, stdout and stderr attached, the call is handed over (HandedOverReply)
        if (got != raw.Length
            || header.Type != MessageType.TriggerService4
            || header.Length <= QrexecProtocol.TriggerV4Fixed
            || header.Length > QrexecProtocol.TriggerV4Fixed + QrexecProtocol.MaxServiceNameLength
            || stdio is not (null or { Length: 3 }))
        {
            Log("qrexec-agent: invalid request on the trigger socket");
            Dispose(stdio);
            socket.Dispose();
            return;
        }
        byte[] body = new byte[header.Length];
        if (Io.ReadExact(fd, body, TriggerReadTimeoutMs) != body.Length)
        {
            Dispose(stdio);
            socket.Dispose();
            return;
        }
        // the ident names the client's socket, so that dom0's answer finds it
        body.AsSpan(2 * QrexecProtocol.DomainFieldSize, QrexecProtocol.IdentSize).Clear();
        System.Text.Encoding.ASCII.GetBytes("SOCKET" + fd.ToString(CultureInfo.InvariantCulture), body.AsSpan(2 * QrexecProtocol.DomainFieldSize));
        byte[] message;
        if (_version >= 4)
        {
            message = Messages.Build(MessageType.TriggerService4, body);
        }
        else
        {
            // a version-3 daemon: the same request without the requested source
            message = Messages.Build(MessageType.TriggerService3, body.AsSpan(QrexecProtocol.DomainFieldSize));
        }
        TriggerClient client = new(socket, stdio);
        _clients[fd] = client;
        if (_unanswered >= MaxUnansweredRequests)
        {
            client.HeldRequest = message;
            _held.Enqueue(client);
            return;
        }
        SendRequest(control, client, message);
    }

    private void SendRequest(IQrexecChannel control, TriggerClient client, byte[] message)
    {
        _unanswered++;
        if (!Io.WriteAll(control, message))
        {
            CloseClient(client);
        }
    }

    /// <summary>dom0 answered a request: the oldest held ones go out, as far as there is room.</summary>
    private void Answered(IQrexecChannel control)
    {
        _unanswered--;
        while (_unanswered < MaxUnansweredRequests && _held.TryDequeue(out TriggerClient? next))
        {
            if (!next.Closed)
            {
                byte[] message = next.HeldRequest!;
                next.HeldRequest = null;
                SendRequest(control, next, message);
            }
        }
    }

    /// <summary>
    /// dom0 set up a call whose caller has gone: its service end is connecting (and its daemon holds
    /// the port) until it meets a caller. Meet it and close at once, so that the service end ends
    /// and the port is free again now rather than at the service end's connect timeout.
    /// </summary>
    private void EndAbandonedCall(TriggerClient client, uint domain, uint port)
    {
        client.Running = true;
        client.Domain = domain;
        client.Port = port;
        _threads.Run(() =>
        {
            try
            {
                using IQrexecChannel channel = _factory.Listen((int)domain, (int)port, AbandonedCallRingSize, AbandonedCallRingSize);
                channel.WaitConnected(s_dataConnectTimeout);
            }
            catch (Exception e) when (e is LinuxException or IOException or Platform.PlatformException or VchanException)
            {
                Log($"qrexec-agent: ending abandoned call {domain}:{port}: {e.Message}");
            }
            finally
            {
                Finished(domain, port, client);
            }
        });
    }

    /// <summary>dom0 allocated the data channel for a trigger: tell the client, or run the caller's end for it.</summary>
    private void Connect(TriggerClient client, uint domain, uint port)
    {
        client.Running = true;
        client.Domain = domain;
        client.Port = port;
        if (client.Stdio == null)
        {
            Span<byte> parameters = stackalloc byte[QrexecProtocol.ExecParamsSize];
            BinaryPrimitives.WriteUInt32LittleEndian(parameters, domain);
            BinaryPrimitives.WriteUInt32LittleEndian(parameters[4..], port);
            if (!Io.WriteAll(client.Socket.Fd, parameters))
            {
                CloseClient(client);
            }
            return;
        }
        _threads.Run(() => RunCallerFor(client, domain, port));
    }

    /// <summary>
    /// The caller's end of a VM-initiated call, on the descriptors a client handed over. What went
    /// wrong goes to the client's stderr too, as the full client would print it: the fast client
    /// itself only passes the status on.
    /// </summary>
    private void RunCallerFor(TriggerClient client, uint domain, uint port)
    {
        int status = QrexecProtocol.ExitProblem;
        IQrexecChannel? channel = null;
        string? problem = null;
        try
        {
            channel = _factory.Listen((int)domain, (int)port, QrexecProtocol.FastPathDataRingSize, QrexecProtocol.FastPathDataRingSize);
            uint version = Io.ServerHandshake(channel, s_dataConnectTimeout, out bool connected);
            if (!connected)
            {
                problem = $"the service side did not connect within {s_dataConnectTimeout.TotalSeconds:0} s";
                return;
            }
            if (version == 0)
            {
                problem = "data handshake failed";
                return;
            }
            CallerIo io = new() { Input = client.Stdio![0].Fd, Output = client.Stdio[1].Fd, Error = client.Stdio[2].Fd };
            // a pipe to or from the caller holds as much as the service's sockets do, so that bulk
            // data moves in large steps; not a pipe (a file, a terminal, a socket): nothing changes
            Libc.fcntl(io.Input, Libc.F_SETPIPE_SZ, ServiceRunner.ServicePipeSize);
            Libc.fcntl(io.Output, Libc.F_SETPIPE_SZ, ServiceRunner.ServicePipeSize);
            status = DataPump.RunCaller(channel, version, io, out problem);
        }
        catch (Exception e) when (e is LinuxException or IOException or Platform.PlatformException or VchanException)
        {
            problem = e.Message;
        }
        finally
        {
            if (problem != null)
            {
                Log($"qrexec-agent: call {domain}:{port}: {problem}");
                Io.WriteAll(client.Stdio![2].Fd, System.Text.Encoding.UTF8.GetBytes($"qrexec-client-vm: {problem}\n"));
            }
            // the client learns the end first; closing the channel (hypervisor requests) is not its wait
            Dispose(client.Stdio);
            byte[] answer = new byte[QrexecProtocol.ExecParamsSize];
            BinaryPrimitives.WriteUInt32LittleEndian(answer, QrexecProtocol.HandedOverReply);
            BinaryPrimitives.WriteInt32LittleEndian(answer.AsSpan(4), status);
            Io.WriteAll(client.Socket.Fd, answer);
            channel?.Dispose();
            Finished(domain, port, client); // the main thread closes the socket and reports the end
        }
    }

    /// <summary>A trigger client became readable: it hung up (or sent stray bytes, which end it too).</summary>
    private void ClientActivity(int fd)
    {
        if (!_clients.TryGetValue(fd, out TriggerClient? client))
        {
            return;
        }
        if (client.Stdio != null && client.Running)
        {
            // descriptor-passing client: its call thread owns the end; stop watching a hung-up socket
            Span<byte> probe = stackalloc byte[1];
            if (Qubes.Interop.Linux.Fd.Read(fd, probe) <= 0)
            {
                client.HungUp = true;
            }
            return;
        }
        if (!client.Running && client.HeldRequest == null)
        {
            // sent to dom0, not answered: the answer still comes (see EndAbandonedCall)
            client.Abandoned = true;
            Dispose(client.Stdio);
            return;
        }
        CloseClient(client);
    }

    private void CloseClient(TriggerClient client)
    {
        int fd = client.Socket.Fd;
        _clients.Remove(fd);
        client.Closed = true;
        bool running = client.Running;
        if (client.Stdio != null && !running)
        {
            Dispose(client.Stdio);
        }
        client.Socket.Dispose();
        if (running)
        {
            Terminated(client.Domain, client.Port);
        }
    }

    private bool TryClientFromIdent(ReadOnlySpan<byte> ident, out TriggerClient? client)
    {
        client = null;
        string text = Messages.CString(ident[..Math.Min(ident.Length, QrexecProtocol.IdentSize)]);
        if (!text.StartsWith("SOCKET", StringComparison.Ordinal)
            || !int.TryParse(text.AsSpan(6), NumberStyles.None, CultureInfo.InvariantCulture, out int fd)
            || !_clients.TryGetValue(fd, out client) || client.Running)
        {
            Log($"qrexec-agent: answer for an unknown request '{text}'");
            client = null;
            return false;
        }
        return true;
    }

    private bool Terminated(uint domain, uint port)
        => Io.WriteAll(_control!, Messages.ExecParams(MessageType.ConnectionTerminated, domain, port));

    private void Finished(uint domain, uint port, TriggerClient? client)
    {
        _finished.Enqueue((domain, port, client));
        EventFd.Signal(_wake.Fd);
    }

    private static void Dispose(SafeFd[]? fds)
    {
        if (fds != null)
        {
            foreach (SafeFd fd in fds)
            {
                fd.Dispose();
            }
        }
    }

    public void Dispose()
    {
        if (_listener != null)
        {
            _listener.Dispose();
            try
            {
                File.Delete(_options.AgentSocket);
            }
            catch (IOException)
            {
            }
        }
        foreach (TriggerClient client in _clients.Values)
        {
            client.Socket.Dispose();
        }
        _control?.Dispose();
        _wake.Dispose();
        _factory.Dispose();
    }
}
