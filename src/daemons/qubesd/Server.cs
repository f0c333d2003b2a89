using System;
using System.Collections.Concurrent;
using System.Collections.Generic;
using System.IO;
using System.Linq;
using System.Runtime.InteropServices;
using System.Text;
using System.Threading;
using Qubes.Core;
using Qubes.Core.Api;
using Qubes.Interop.Linux;
using Qubes.Qrexec.Policy;

namespace Qubes.Tools.Qubesd;

/// <summary>
/// Accepts connections and runs each request on its own thread, one request at a time against the
/// system; <c>admin.Events</c> subscribers stay connected and get every event they may see. With a
/// state directory it also runs the qubes (<see cref="LoopbackRuntime"/>), keeps
/// <c>system-info.json</c> current for the policy daemon, and checks what qubes other than dom0 may
/// see against the policy.
/// </summary>
internal sealed class Server(string store, SystemLayout? layout)
{
    private readonly Lock _lock = new();
    private readonly List<Subscriber> _subscribers = [];
    private QubesApp _app = null!;
    private AdminApi _api = null!;
    private LoopbackRuntime? _runtime;
    private string _systemInfo = string.Empty;
    private PosixSignalRegistration? _termination;

    /// <summary>Loads qubes.xml (with the runtime, when there is a state directory).</summary>
    public void Load()
    {
        if (layout != null)
        {
            foreach ((string name, string value) in layout.PolicyVariables)
            {
                Environment.SetEnvironmentVariable(name, value); // for the qrexec daemons and their policy program too
            }
            Directory.CreateDirectory(layout.QrexecSockets);
            _runtime = new LoopbackRuntime(layout, _lock, Stopped);
        }
        _app = QubesXml.Load(store, _runtime);
        _api = new AdminApi(_app);
        _api.Fired += Deliver;
        if (layout != null)
        {
            PolicyHost policy = new PolicyPaths().Host();
            _api.Visibility = (service, source, target) => policy.Current.Evaluate(service, source, target).IsAllowed;
        }
    }

    /// <summary>With a state directory: the Admin API as dom0's qrexec services, the system information, the autostart qubes.</summary>
    public void StartSystem()
    {
        if (layout == null || _runtime == null)
        {
            return;
        }
        Directory.CreateDirectory(layout.Dom0Services);
        foreach (string method in AdminApi.Methods.Where(static m => m.StartsWith("admin.", StringComparison.Ordinal)))
        {
            string link = Path.Combine(layout.Dom0Services, method);
            File.Delete(link);
            File.CreateSymbolicLink(link, layout.QubesdSocket);
        }
        // dom0's other services (app menus, updates), shipped beside the programs in dom0-rpc/
        string shipped = Path.Combine(AppContext.BaseDirectory, "dom0-rpc");
        foreach (string service in Directory.Exists(shipped) ? Directory.GetFiles(shipped) : [])
        {
            string link = Path.Combine(layout.Dom0Services, Path.GetFileName(service));
            File.Delete(link);
            File.CreateSymbolicLink(link, service);
        }
        LoopbackRuntime runtime = _runtime;
        _termination = PosixSignalRegistration.Create(PosixSignal.SIGTERM, _ =>
        {
            Console.Error.WriteLine("qubesd: stopping every qube");
            runtime.Dispose();
            Environment.Exit(0);
        });
        lock (_lock)
        {
            UpdateSystemInfo();
            foreach (Qube qube in _app.Qubes.Where(static q => q.Has("autostart") && (bool)q.Properties.Get("autostart")! && q.IsHalted))
            {
                Console.Error.WriteLine(Handle(new AdminRequest("admin.vm.Start", string.Empty, "dom0", qube.Name, [])).Length > 2
                    ? $"qubesd: autostart of {qube.Name} failed" : $"qubesd: started {qube.Name}");
            }
        }
    }

    public void Serve(SafeFd listener)
    {
        while (true)
        {
            int fd = UnixSocket.Accept(listener.Fd);
            if (fd < 0)
            {
                Thread.Sleep(fd == -(int)Errno.EINTR ? 0 : 10);
                continue;
            }
            SafeFd connection = new(fd);
            new Thread(() => Answer(connection)) { IsBackground = true, Name = "call" }.Start();
        }
    }

    private void Answer(SafeFd connection)
    {
        byte[] buffer = new byte[AdminRequest.MaxLength + 1];
        int length = 0;
        while (length < buffer.Length)
        {
            int n = Fd.Read(connection.Fd, buffer.AsSpan(length));
            if (n <= 0)
            {
                break;
            }
            length += n;
        }
        if (!AdminRequest.TryParse(buffer.AsSpan(0, length), out AdminRequest? request, out string? error))
        {
            Console.Error.WriteLine($"qubesd: dropped a request: {error}");
            connection.Dispose();
            return;
        }
        if (request.Method == "admin.Events")
        {
            Subscribe(connection, request);
            return;
        }
        using (connection)
        {
            byte[] reply;
            lock (_lock)
            {
                reply = Handle(request);
            }
            if (reply.Length > 0)
            {
                Fd.WriteAll(connection.Fd, reply);
            }
        }
    }

    /// <summary>Runs one call under the lock and saves what it changed before its reply is sent; an empty reply drops the connection.</summary>
    private byte[] Handle(AdminRequest request)
    {
        byte[] reply;
        bool changed;
        int stateChanges = _runtime?.StateChanges ?? 0;
        try
        {
            (reply, changed) = _api.Handle(request);
        }
        catch (Exception e) when (e is not OutOfMemoryException)
        {
            // not a Qubes error: no frame at all, the client reports an empty response (spec §9.3)
            Console.Error.WriteLine($"qubesd: {request.Method} from {request.Source}: {e}");
            return [];
        }
        if (changed)
        {
            Save();
        }
        if (changed || (_runtime?.StateChanges ?? 0) != stateChanges)
        {
            UpdateSystemInfo();
        }
        return reply;
    }

    /// <summary>Saves qubes.xml; when that fails memory differs from the disk, so qubesd stops and the next start reloads what was last acknowledged.</summary>
    private void Save()
    {
        try
        {
            QubesXml.Save(_app, store);
        }
        catch (IOException e)
        {
            Console.Error.WriteLine($"qubesd: saving {store}: {e.Message}; exiting");
            Environment.Exit(1);
        }
    }

    /// <summary>Rewrites system-info.json (atomically) when what the policy sees of the system changed.</summary>
    private void UpdateSystemInfo()
    {
        if (layout == null)
        {
            return;
        }
        string text = AdminApi.SystemInfo(_app);
        if (text != _systemInfo)
        {
            DurableFile.Replace(layout.SystemInfo, layout.SystemInfo + ".tmp", Encoding.UTF8.GetBytes(text));
            _systemInfo = text;
        }
    }

    /// <summary>A qube stopped (under the lock): its events, and a disposable that cleans up after itself goes.</summary>
    private void Stopped(Qube qube, string how)
    {
        _api.Fire(qube.Name, "domain-shutdown");
        _api.Fire(qube.Name, "domain-stopped");
        if (qube.Class == "DispVM" && (bool)qube.Properties.Get("auto_cleanup")! && _app.Find(qube.Name) == qube)
        {
            Handle(new AdminRequest("admin.vm.Remove", string.Empty, "dom0", qube.Name, []));
        }
        UpdateSystemInfo();
        Console.Error.WriteLine($"qubesd: {qube.Name} {how}");
    }

    // ------------------------------------------------------------------ admin.Events

    /// <summary>How long a subscriber waits for an event before it checks whether its client hung up.</summary>
    private const int HangUpCheckMs = 250;

    private sealed class Subscriber(SafeFd connection, Qube source, Qube destination)
    {
        public SafeFd Connection { get; } = connection;
        public Qube Source { get; } = source;
        public Qube Destination { get; } = destination;
        public BlockingCollection<byte[]> Frames { get; } = new(boundedCapacity: 4096);
    }

    /// <summary>
    /// Checks the request like any other, then streams: <c>connection-established</c>, then the
    /// events, until the client goes. The client has shut down its write side to end its request
    /// (that is how the request was read), so its socket stays readable at EOF for as long as it
    /// listens: that says nothing. It has gone when a write to it fails (EPIPE, ECONNRESET) or,
    /// between events, when its socket reports a hang-up or an error, which a client that closed
    /// it (or shut down both directions) gives within <see cref="HangUpCheckMs"/>.
    /// </summary>
    private void Subscribe(SafeFd connection, AdminRequest request)
    {
        Subscriber subscriber;
        lock (_lock)
        {
            (byte[] reply, _) = _api.Handle(request);
            if (reply[0] != (byte)'0')
            {
                Fd.WriteAll(connection.Fd, reply);
                connection.Dispose();
                return;
            }
            subscriber = new Subscriber(connection, _app.Get(request.Source), _app.Get(request.Destination == "dom0" ? "dom0" : request.Destination));
            _subscribers.Add(subscriber);
        }
        try
        {
            Write(subscriber, AdminEvent.ConnectionEstablished.Frame());
            while (true)
            {
                if (subscriber.Frames.TryTake(out byte[]? frame, HangUpCheckMs))
                {
                    Write(subscriber, frame);
                }
                else if (Fd.HungUp(connection.Fd) != 0)
                {
                    return; // the client closed its socket
                }
            }
        }
        catch (IOException)
        {
            // the client went away
        }
        finally
        {
            lock (_lock)
            {
                _subscribers.Remove(subscriber);
            }
            connection.Dispose();
        }
    }

    private static void Write(Subscriber subscriber, byte[] frame)
    {
        if (Fd.WriteAll(subscriber.Connection.Fd, frame) != Errno.None)
        {
            throw new IOException("subscriber gone");
        }
    }

    /// <summary>Queues an event for each subscriber that may see it; one that has fallen 4096 events behind is dropped.</summary>
    private void Deliver(AdminEvent e)
    {
        byte[]? frame = null;
        foreach (Subscriber s in _subscribers)
        {
            if (_api.Delivers(s.Source, s.Destination, e) && !s.Frames.TryAdd(frame ??= e.Frame()))
            {
                Libc.shutdown(s.Connection.Fd, Libc.SHUT_RDWR);
            }
        }
    }
}
