using System;
using System.Buffers.Binary;
using System.Collections.Concurrent;
using System.Collections.Generic;
using System.Globalization;
using System.IO;
using System.Text;
using System.Threading;
using Qubes.Interop.Linux;
using Qubes.Qrexec.Policy;
using Qubes.Qrexec.Transport;
using Qubes.Vchan;

namespace Qubes.Qrexec.Runtime;

/// <summary>Options of qrexec-daemon (spec §14.1), plus the paths our test setups need to move.</summary>
public sealed record DaemonOptions(
    int DomainId,
    string DomainName,
    string DefaultUser,
    string Uuid,
    string SocketDirectory,
    string PolicyProgram,
    string PolicySocket,
    string QubesdSocket);

/// <summary>
/// qrexec-daemon: dom0's end of one qube's control channel. It serves local clients on
/// <c>qrexec.&lt;domid&gt;</c>, forwards their commands to the agent with a data port allocated,
/// and answers the qube's service requests by asking the policy on a thread per request (the
/// upstream "policy child"). The agent is untrusted: its messages pass the checks of spec §12.1;
/// one that breaks the protocol ends this daemon only.
/// </summary>
public sealed class QrexecDaemon : IDisposable
{
    private const int ClientReadTimeoutMs = 5000;
    private static readonly TimeSpan s_policyTimeout = TimeSpan.FromSeconds(60);
    private static readonly TimeSpan s_dom0ConnectTimeout = TimeSpan.FromSeconds(5);

    /// <summary>
    /// How long a policy thread waits for a daemon to allocate the data port of an allowed call
    /// (every port of the pair may be in use: the call then waits for one). As long as either end of
    /// a VM call waits for the other (spec §3, the agent-side data connection timeout).
    /// </summary>
    public static readonly TimeSpan PortWaitTimeout = TimeSpan.FromSeconds(120);

    private readonly IChannelFactory _factory;
    private readonly DaemonOptions _options;
    private readonly PortAllocator _ports;
    private readonly SafeFd _wake = EventFd.Create();
    private readonly CallThreads _policyThreads = new("qrexec policy");
    private readonly ConcurrentQueue<(string Ident, Pending Request, int Status)> _policyDone = new();
    // SERVICE_CONNECT messages from policy threads, for the main loop to send to our agent
    private readonly ConcurrentQueue<byte[]> _serviceConnects = new();
    private readonly Dictionary<int, Client> _clients = [];
    // clients whose command waits for a free data port, oldest first
    private readonly List<Client> _portWaiters = [];
    private readonly Dictionary<string, Pending> _pending = new(StringComparer.Ordinal);
    private IQrexecChannel? _control;
    private SafeFd? _listener;
    private uint _version;
    // accept(2) ran out of descriptors: the listener rests until a client closes
    private bool _acceptPaused;

    private enum ClientState { AwaitHello, AwaitCommand, AwaitPort, Running }

    private sealed class Client(SafeFd socket)
    {
        public SafeFd Socket { get; } = socket;
        public ClientState State { get; set; }
        public uint AllocatedPort { get; set; }
        public uint AllocatedFor { get; set; }
        /// <summary>While <see cref="ClientState.AwaitPort"/>: the command that waits, and the domain its port is for.</summary>
        public MessageType WaitingType { get; set; }
        public byte[]? WaitingBody { get; set; }
        public uint WaitingFor { get; set; }
    }

    private sealed class Pending(byte[] ident)
    {
        public byte[] Ident { get; } = ident;
        public bool Answered { get; private set; }
        /// <summary>Set once the main loop took the policy child's SERVICE_CONNECT, so the child does not end before it.</summary>
        public ManualResetEventSlim AnsweredEvent { get; } = new();

        public void Answer()
        {
            Answered = true;
            AnsweredEvent.Set();
        }
    }

    public QrexecDaemon(IChannelFactory factory, DaemonOptions options)
    {
        ArgumentNullException.ThrowIfNull(factory);
        ArgumentNullException.ThrowIfNull(options);
        _factory = factory;
        _options = options;
        _ports = new PortAllocator(options.DomainId);
    }

    public Action<string> Log { get; set; } = static line => Console.Error.WriteLine(line);

    /// <summary>Connects to the agent (waiting as long as it takes, or until <paramref name="timeout"/>), handshakes and creates the sockets. 0 on success, else the exit status.</summary>
    public int Start(TimeSpan timeout)
    {
        _control = _factory.Connect(_options.DomainId, QrexecProtocol.ControlPort, timeout, out string? error);
        if (_control == null)
        {
            Log($"qrexec-daemon: cannot connect to the agent of domain {_options.DomainId}: {error}");
            return 3;
        }
        Span<byte> raw = stackalloc byte[QrexecProtocol.HeaderSize + 4];
        if (!Io.ReadExact(_control, raw[..QrexecProtocol.HeaderSize]))
        {
            return 1;
        }
        MessageHeader header = MessageHeader.Read(raw);
        if (header.Type != MessageType.Hello || header.Length != 4 || !Io.ReadExact(_control, raw[QrexecProtocol.HeaderSize..]))
        {
            Log("qrexec-daemon: the agent did not start with HELLO");
            return 1;
        }
        _version = Messages.CheckHello(header, raw[QrexecProtocol.HeaderSize..], QrexecProtocol.MinAgentVersion, out uint peer);
        if (_version == 0)
        {
            Log($"qrexec-daemon: incompatible agent protocol version {peer}");
            return 1;
        }
        // the answer echoes the agent's own version
        if (!Io.WriteAll(_control, Messages.Hello(peer)))
        {
            return 1;
        }
        CreateSockets();
        return 0;
    }

    private void CreateSockets()
    {
        Directory.CreateDirectory(_options.SocketDirectory);
        string name = "qrexec." + _options.DomainId.ToString(CultureInfo.InvariantCulture);
        string path = Path.Combine(_options.SocketDirectory, name);
        _listener = Io.ListenWorldConnectable(path, 5);
        Link("qrexec." + _options.DomainName, name);
        if (!string.IsNullOrEmpty(_options.Uuid))
        {
            Link("qrexec.uuid:" + _options.Uuid, name);
        }
    }

    private void Link(string link, string target)
    {
        string path = Path.Combine(_options.SocketDirectory, link);
        File.Delete(path);
        File.CreateSymbolicLink(path, target);
    }

    private void RemoveSockets()
    {
        _listener?.Dispose();
        _listener = null;
        foreach (string n in new[] { _options.DomainId.ToString(CultureInfo.InvariantCulture), _options.DomainName, "uuid:" + _options.Uuid })
        {
            try
            {
                File.Delete(Path.Combine(_options.SocketDirectory, "qrexec." + n));
            }
            catch (IOException)
            {
            }
        }
    }

    /// <summary>Serves until the agent breaks the protocol or cannot be reconnected. Returns the exit status.</summary>
    public unsafe int Run()
    {
        List<int> clientFds = [];
        Libc.pollfd[] pollSet = new Libc.pollfd[16];
        while (true)
        {
            IQrexecChannel control = _control!;
            control.Blocking = false;
            while (_serviceConnects.TryDequeue(out byte[]? message))
            {
                ReadOnlySpan<byte> ident = message.AsSpan(QrexecProtocol.HeaderSize + QrexecProtocol.ExecParamsSize);
                if (AnswerPending(Messages.CString(ident)))
                {
                    Io.WriteAll(control, message);
                }
            }
            while (_policyDone.TryDequeue(out (string Ident, Pending Request, int Status) done))
            {
                PolicyFinished(done.Ident, done.Request, done.Status);
            }
            while (control.Ready() >= QrexecProtocol.HeaderSize)
            {
                if (!HandleAgentMessage(control))
                {
                    return 1;
                }
            }
            if (control.State == VchanState.Disconnected)
            {
                int r = Reconnect();
                if (r != 0)
                {
                    return r;
                }
                continue;
            }
            clientFds.Clear();
            clientFds.AddRange(_clients.Keys);
            int n = 3 + clientFds.Count;
            if (pollSet.Length < n)
            {
                pollSet = new Libc.pollfd[n * 2];
            }
            pollSet[0] = new Libc.pollfd { fd = control.Fd, events = control.PollEvents };
            pollSet[1] = new Libc.pollfd { fd = _acceptPaused ? -1 : _listener!.Fd, events = Libc.POLLIN };
            pollSet[2] = new Libc.pollfd { fd = _wake.Fd, events = Libc.POLLIN };
            for (int i = 0; i < clientFds.Count; i++)
            {
                pollSet[3 + i] = new Libc.pollfd { fd = clientFds[i], events = Libc.POLLIN };
            }
            fixed (Libc.pollfd* fds = pollSet)
            {
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
                Accept();
            }
            for (int i = 0; i < clientFds.Count; i++)
            {
                if (pollSet[3 + i].revents != 0 && _clients.TryGetValue(clientFds[i], out Client? client))
                {
                    ClientReadable(client);
                }
            }
        }
    }

    /// <summary>
    /// A new local client. Unlike upstream, whose table of clients ends at descriptor 256 (it exits
    /// there, spec §12.2 item 5), clients are limited only by the descriptors this process may open:
    /// calls waiting for a data port keep their clients, and many callers at once must not end the
    /// daemon. Out of descriptors, the listener rests (connections wait in its backlog) until a
    /// client closes.
    /// </summary>
    private void Accept()
    {
        int fd = UnixSocket.Accept(_listener!.Fd);
        if (fd == -(int)Errno.EMFILE || fd == -(int)Errno.ENFILE)
        {
            Log("qrexec-daemon: out of descriptors; new clients wait until one closes");
            _acceptPaused = true;
            return;
        }
        if (fd < 0)
        {
            return;
        }
        Client client = new(new SafeFd(fd));
        _clients[fd] = client;
        if (!Io.WriteAll(fd, Messages.Hello(QrexecProtocol.ClientVersion)))
        {
            CloseClient(client);
        }
    }

    /// <summary>The agent went away: drop everything tied to it, reconnect, handshake, recreate the sockets (§8.3).</summary>
    private int Reconnect()
    {
        Log("qrexec-daemon: the agent disconnected; waiting for it to come back");
        RemoveSockets();
        foreach (Client c in new List<Client>(_clients.Values))
        {
            CloseClient(c);
        }
        _pending.Clear();
        _control!.Dispose();
        _control = null;
        return Start(Timeout.InfiniteTimeSpan) == 0 ? 0 : 1;
    }

    // ------------------------------------------------------------------ agent messages (untrusted)

    /// <summary>One message from the agent. False when it broke the protocol: the daemon ends.</summary>
    private bool HandleAgentMessage(IQrexecChannel control)
    {
        Span<byte> raw = stackalloc byte[QrexecProtocol.HeaderSize];
        if (!Io.ReadExact(control, raw))
        {
            return true; // closed: the loop reconnects
        }
        MessageHeader header = MessageHeader.Read(raw);
        if (!Messages.IsAcceptableFromAgent(header, _version))
        {
            Log($"qrexec-daemon: invalid message 0x{(uint)header.Type:x} (length {header.Length}) from the agent");
            return false;
        }
        byte[]? body = Io.ReadBody(control, header);
        if (body == null)
        {
            return true;
        }
        if (header.Type == MessageType.ConnectionTerminated)
        {
            (uint domain, uint port) = Io.ExecParams(body);
            if (port < QrexecProtocol.FirstDataPort || port >= QrexecProtocol.DataPortEnd)
            {
                Log($"qrexec-daemon: CONNECTION_TERMINATED for invalid port {port}");
                return false;
            }
            if (_ports.Release(domain, port))
            {
                foreach (Client c in new List<Client>(_clients.Values))
                {
                    if (c.AllocatedPort == port && c.AllocatedFor == domain)
                    {
                        CloseClient(c);
                    }
                }
                GivePortsToWaiters();
            }
            return true;
        }
        if (!Messages.TryParseTrigger(header.Type, body, out TriggerRequest? request, out byte[] ident, out string? reason))
        {
            Log($"qrexec-daemon: refused request: {reason}");
            return Refuse(ident);
        }
        string key = request!.IdentText;
        if (_pending.Count >= QrexecProtocol.MaxFds || _pending.ContainsKey(key))
        {
            return Refuse(ident);
        }
        Pending pending = new(ident);
        _pending[key] = pending;
        _policyThreads.Run(() =>
        {
            _policyDone.Enqueue((key, pending, RunPolicyChild(request, pending)));
            WakeMainLoop();
        });
        return true;
    }

    /// <summary>From a policy thread: wakes the main loop to take its result (the daemon may be disposed already).</summary>
    private void WakeMainLoop()
    {
        bool added = false;
        try
        {
            _wake.DangerousAddRef(ref added);
            EventFd.Signal(_wake.Fd);
        }
        catch (ObjectDisposedException)
        {
        }
        finally
        {
            if (added)
            {
                _wake.DangerousRelease();
            }
        }
    }

    private bool Refuse(byte[] ident)
    {
        Io.WriteAll(_control!, Messages.Build(MessageType.ServiceRefused, ident));
        return true;
    }

    private void PolicyFinished(string ident, Pending pending, int status)
    {
        pending.AnsweredEvent.Dispose();
        // an answered request left the table already, and its ident may name a newer one now
        if (!_pending.TryGetValue(ident, out Pending? current) || !ReferenceEquals(current, pending))
        {
            return;
        }
        _pending.Remove(ident);
        if (status != 0 && !pending.Answered)
        {
            Refuse(pending.Ident);
        }
        EventFd.Signal(_wake.Fd);
    }

    // ------------------------------------------------------------------ local clients

    private void ClientReadable(Client client)
    {
        int fd = client.Socket.Fd;
        if (client.State is ClientState.Running or ClientState.AwaitPort)
        {
            // any byte from a running or waiting client is unexpected; EOF ends it too (a waiting
            // call whose client gave up leaves the queue)
            CloseClient(client);
            return;
        }
        if (client.State == ClientState.AwaitHello)
        {
            (MessageHeader Header, byte[] Body)? hello = Io.ReadMessage(fd, 4, ClientReadTimeoutMs);
            if (hello is not { } h || Messages.CheckHello(h.Header, h.Body, QrexecProtocol.MinClientVersion, out _) == 0)
            {
                CloseClient(client);
                return;
            }
            client.State = ClientState.AwaitCommand;
            return;
        }
        (MessageHeader Header, byte[] Body)? message = Io.ReadMessage(fd, QrexecProtocol.MaxCommandLength, ClientReadTimeoutMs);
        if (message is not { } m || !HandleCommand(client, m.Header, m.Body))
        {
            CloseClient(client);
        }
    }

    /// <summary>A client command (§6, checks of §12.2). False closes the client.</summary>
    private bool HandleCommand(Client client, MessageHeader header, byte[] body)
    {
        if (header.Type is not (MessageType.ExecCmdline or MessageType.JustExec or MessageType.ServiceConnect)
            || header.Length <= QrexecProtocol.ExecParamsSize || header.Length > QrexecProtocol.MaxCommandLength
            || body.Length != header.Length || body[^1] != 0)
        {
            return false;
        }
        (uint domain, uint port) = Io.ExecParams(body);
        if (port != 0 && (port < QrexecProtocol.FirstDataPort || port >= QrexecProtocol.DataPortEnd))
        {
            return false;
        }
        if (header.Type == MessageType.ServiceConnect)
        {
            // the ident as sent, NUL-terminated (padded to 32 bytes or not): forwarded to the agent as it came, as upstream does
            if (!AnswerPending(Messages.CString(body.AsSpan(QrexecProtocol.ExecParamsSize))))
            {
                return false;
            }
        }
        if (port == 0)
        {
            port = _ports.Allocate(domain);
            if (port == 0)
            {
                // every port this call could take is in use: it waits for one, in order of arrival,
                // as long as its client waits (upstream closes the client: the call fails)
                if (!_portWaiters.Exists(w => w.WaitingFor == domain))
                {
                    Log($"qrexec-daemon: no free data port for domain {domain}; calls wait for one");
                }
                client.State = ClientState.AwaitPort;
                client.WaitingType = header.Type;
                client.WaitingBody = body;
                client.WaitingFor = domain;
                _portWaiters.Add(client);
                return true;
            }
            return StartWithPort(client, header.Type, body, port);
        }
        if (header.Type != MessageType.ServiceConnect)
        {
            Log($"qrexec-daemon: client asked for port {port}");
        }
        return Forward(client, header.Type, body);
    }

    /// <summary>
    /// <paramref name="port"/> was allocated for the client's command: the client learns it, then the
    /// agent gets the command. False closes the client; a port the agent never heard of is free again.
    /// </summary>
    private bool StartWithPort(Client client, MessageType type, byte[] body, uint port)
    {
        (uint domain, _) = Io.ExecParams(body);
        client.AllocatedPort = port;
        client.AllocatedFor = domain;
        BinaryPrimitives.WriteUInt32LittleEndian(body.AsSpan(4), port);
        if (!Io.WriteAll(client.Socket.Fd, Messages.ExecParams(type, (uint)_options.DomainId, port)))
        {
            // the client is gone: nothing will ever report this port's end
            _ports.Release(domain, port);
            client.AllocatedPort = 0;
            return false;
        }
        return Forward(client, type, body);
    }

    /// <summary>Sends a client's command to the agent (with <c>DEFAULT:</c> replaced by the default user); the client runs from then on.</summary>
    private bool Forward(Client client, MessageType type, byte[] body)
    {
        byte[] forward = body;
        if (type != MessageType.ServiceConnect && body.AsSpan(QrexecProtocol.ExecParamsSize).StartsWith("DEFAULT:"u8))
        {
            byte[] user = Encoding.UTF8.GetBytes(_options.DefaultUser);
            forward = new byte[body.Length - "DEFAULT".Length + user.Length];
            body.AsSpan(0, QrexecProtocol.ExecParamsSize).CopyTo(forward);
            user.CopyTo(forward.AsSpan(QrexecProtocol.ExecParamsSize));
            body.AsSpan(QrexecProtocol.ExecParamsSize + "DEFAULT".Length).CopyTo(forward.AsSpan(QrexecProtocol.ExecParamsSize + user.Length));
        }
        client.State = ClientState.Running;
        return Io.WriteAll(_control!, Messages.Build(type, forward));
    }

    /// <summary>A port was released: the oldest waiting commands that can take a free port start.</summary>
    private void GivePortsToWaiters()
    {
        for (int i = 0; i < _portWaiters.Count;)
        {
            Client waiter = _portWaiters[i];
            uint port = _ports.Allocate(waiter.WaitingFor);
            if (port == 0)
            {
                i++; // a port of the other parity, or for dom0, may still serve a later waiter
                continue;
            }
            _portWaiters.RemoveAt(i);
            byte[] body = waiter.WaitingBody!;
            waiter.WaitingBody = null;
            waiter.State = ClientState.Running;
            if (!StartWithPort(waiter, waiter.WaitingType, body, port))
            {
                CloseClient(waiter);
                i = 0; // its port is free again, maybe for a waiter passed over above
            }
        }
    }

    /// <summary>A SERVICE_CONNECT is about to go to the agent: its request is answered. False when no such request waits.</summary>
    private bool AnswerPending(string key)
    {
        if (!_pending.TryGetValue(key, out Pending? pending) || pending.Answered)
        {
            Log($"qrexec-daemon: SERVICE_CONNECT for no pending request '{key}'");
            return false;
        }
        pending.Answer();
        // answered: the ident (SOCKET<fd> in the agent) may be reused by the agent's next request
        // before this policy thread's end is taken from the queue
        _pending.Remove(key);
        return true;
    }

    private void CloseClient(Client client)
    {
        if (client.State == ClientState.AwaitPort)
        {
            _portWaiters.Remove(client);
            Log($"qrexec-daemon: a call for domain {client.WaitingFor} stopped waiting for a data port");
        }
        _clients.Remove(client.Socket.Fd);
        client.Socket.Dispose();
        _acceptPaused = false;
    }

    // ------------------------------------------------------------------ the policy child (§8.2 steps 4-5)

    /// <summary>Asks the policy and, when allowed, sets the call up. Returns 0 on success, 125/126 otherwise.</summary>
    private int RunPolicyChild(TriggerRequest request, Pending pending)
    {
        try
        {
            PolicyQuery query = new(_options.DomainName, request.RequestedSource, request.Target, request.ServiceName);
            PolicyOutcome outcome = PolicyClient.Ask(query, _options.PolicySocket, _options.PolicyProgram, s_policyTimeout);
            if (!outcome.Allowed)
            {
                Log($"qrexec-daemon: {request.ServiceName} from {_options.DomainName} to {request.Target} denied{(outcome.Error != null ? ": " + outcome.Error : string.Empty)}");
                return outcome.Decision == null ? QrexecProtocol.ExitProblem : QrexecProtocol.ExitRequestRefused;
            }
            PolicyDecision decision = outcome.Decision!;
            string service = decision.Service ?? request.ServiceName;
            string source = decision.PolicySource ?? _options.DomainName;
            string target = decision.Target!;
            if (target is "dom0" or "@adminvm" or "uuid:00000000-0000-0000-0000-000000000000")
            {
                string requested = decision.RequestedTarget ?? target;
                string targetType = requested.StartsWith('@') ? "keyword" : "name";
                string command = $"QUBESRPC {service} {source} {targetType} {requested.TrimStart('@')}";
                return RunDom0Service(request.Ident, command);
            }
            string commandLine = $"{decision.User}:QUBESRPC {service}{(service.Contains('+', StringComparison.Ordinal) ? string.Empty : "+")} {source}";
            return ExecuteInVm(request.Ident, decision, target, commandLine, pending);
        }
        catch (Exception e) when (e is IOException or LinuxException or Platform.PlatformException or VchanException)
        {
            Log($"qrexec-daemon: {request.ServiceName}: {e.Message}");
            return QrexecProtocol.ExitProblem;
        }
    }

    /// <summary>A VM target: start it if needed, have its daemon start the service, then connect our agent's caller to it.</summary>
    private int ExecuteInVm(byte[] ident, PolicyDecision decision, string target, string commandLine, Pending pending)
    {
        string? dispvm = null;
        string address = decision.TargetUuid ?? target;
        if (target.StartsWith("@dispvm:", StringComparison.Ordinal))
        {
            if (!decision.Autostart)
            {
                return QrexecProtocol.ExitProblem;
            }
            string template = target["@dispvm:".Length..];
            string payload = template.StartsWith("uuid:", StringComparison.Ordinal) ? "uuid" : string.Empty;
            dispvm = QubesdCall.Call(_options.QubesdSocket, "admin.vm.CreateDisposable", template, payload, out string? createError);
            if (dispvm == null)
            {
                Log($"qrexec-daemon: cannot create a disposable from {template}: {createError}");
                return QrexecProtocol.ExitProblem;
            }
            address = dispvm;
        }
        else if (address.StartsWith("@dispvm:uuid:", StringComparison.Ordinal))
        {
            address = address["@dispvm:".Length..];
        }
        try
        {
            DaemonConnection? targetDaemon = DaemonConnection.Open(_options.SocketDirectory, address, out string? error);
            if (targetDaemon == null && decision.Autostart)
            {
                string? started = QubesdCall.Call(_options.QubesdSocket, "admin.vm.Start", address, string.Empty, out string? startError);
                if (started == null && startError?.StartsWith("QubesVMNotHaltedError", StringComparison.Ordinal) != true)
                {
                    Log($"qrexec-daemon: cannot start {address}: {startError}");
                    return QrexecProtocol.ExitProblem;
                }
                targetDaemon = DaemonConnection.Open(_options.SocketDirectory, address, out error);
            }
            if (targetDaemon == null)
            {
                Log($"qrexec-daemon: {error}");
                return QrexecProtocol.ExitProblem;
            }
            using (targetDaemon)
            {
                (uint Domain, uint Port)? allocated = targetDaemon.Command(
                    Messages.ExecCommand(MessageType.ExecCmdline, (uint)_options.DomainId, 0, commandLine), PortWaitTimeout, out error);
                if (allocated is not { } a)
                {
                    Log($"qrexec-daemon: call to {address}: {error}");
                    return QrexecProtocol.ExitProblem;
                }
                // our own main loop tells the agent where to connect (an outside policy program would
                // send the same SERVICE_CONNECT through our socket)
                _serviceConnects.Enqueue(Messages.ServiceConnect(a.Domain, a.Port, ident));
                WakeMainLoop();
                if (!pending.AnsweredEvent.Wait(TimeSpan.FromSeconds(ClientReadTimeoutMs / 1000)))
                {
                    return QrexecProtocol.ExitProblem;
                }
                if (dispvm != null)
                {
                    targetDaemon.WaitClosed(); // the call ended: the disposable goes
                }
            }
            return 0;
        }
        finally
        {
            if (dispvm != null)
            {
                QubesdCall.Call(_options.QubesdSocket, "admin.vm.Kill", dispvm, string.Empty, out _);
            }
        }
    }

    /// <summary>A dom0 target: get a port from our own daemon loop, connect to the caller as vchan client and run the service here.</summary>
    private int RunDom0Service(byte[] ident, string command)
    {
        using DaemonConnection? own = DaemonConnection.Open(_options.SocketDirectory, _options.DomainId.ToString(CultureInfo.InvariantCulture), out string? error);
        (uint Domain, uint Port)? allocated = own?.Command(Messages.ServiceConnect(0, 0, ident), PortWaitTimeout, out error);
        if (allocated is not { } a)
        {
            Log($"qrexec-daemon: dom0 service: {error}");
            return QrexecProtocol.ExitProblem;
        }
        using IQrexecChannel? channel = _factory.Connect((int)a.Domain, (int)a.Port, s_dom0ConnectTimeout, out error);
        if (channel == null)
        {
            Log($"qrexec-daemon: dom0 service data connection: {error}");
            return QrexecProtocol.ExitProblem;
        }
        uint version = Io.DataHandshake(channel, sendFirst: false);
        if (version == 0)
        {
            return QrexecProtocol.ExitProblem;
        }
        // dom0's services run as this daemon, the command names no user (as upstream's qrexec-client -c)
        return ServiceRunner.Run(channel, version, ServiceRunner.PrepareDom0(command), justExec: false, dom0: true);
    }

    public void Dispose()
    {
        RemoveSockets();
        foreach (Client c in _clients.Values)
        {
            c.Socket.Dispose();
        }
        _clients.Clear();
        _control?.Dispose();
        _wake.Dispose();
        _factory.Dispose();
    }
}
