using System;
using System.Collections.Concurrent;
using System.Collections.Generic;
using System.Diagnostics;
using System.Globalization;
using System.IO;
using System.Threading;
using System.Threading.Tasks;
using Qubes.Core;
using Qubes.Interop.Linux;
using Qubes.Platform;
using Qubes.Platform.Loopback;

namespace Qubes.Tools.Qubesd;

/// <summary>
/// Runs qubes on the loopback hypervisor as sandboxes (native/qube-sandbox.c): a domain from the
/// broker, the qube's qrexec agent inside its own namespaces with its template's root read-only and
/// its private volume, and its qrexec-daemon in dom0. Volumes are directories under the state
/// directory (<see cref="SystemLayout"/>). Every method runs under qubesd's lock; a qube that stops
/// by itself is noticed by a watcher thread, which takes the same lock.
/// </summary>
internal sealed class LoopbackRuntime : IQubeRuntime, IDisposable
{
    /// <summary>The services a fresh template has in /etc/qubes-rpc (shipped beside qubesd in template-root/).</summary>
    private static readonly string s_templateImage = Path.Combine(AppContext.BaseDirectory, "template-root");

    private readonly SystemLayout _layout;
    private readonly Lock _lock;
    private readonly Action<Qube, string> _stopped;
    private readonly LoopbackPlatform _dom0;
    private readonly Dictionary<Qube, Running> _running = [];
    private readonly SpawnThread _spawner = new();
    private readonly string _tools = AppContext.BaseDirectory;
    private readonly string _native = Path.GetFullPath(Path.Combine(AppContext.BaseDirectory, "../../../native"));

    /// <param name="layout">The state directory.</param>
    /// <param name="serverLock">qubesd's lock, taken by the watcher threads.</param>
    /// <param name="stopped">Called under the lock when a qube has stopped, with how (<c>shutdown</c> or <c>killed</c>), after its processes are gone.</param>
    public LoopbackRuntime(SystemLayout layout, Lock serverLock, Action<Qube, string> stopped)
    {
        _layout = layout;
        _lock = serverLock;
        _stopped = stopped;
        _dom0 = LoopbackPlatform.ConnectDom0(layout.Broker);
    }

    private sealed class Running(Process sandbox, int domainId)
    {
        public Process Sandbox { get; } = sandbox;
        public int DomainId { get; } = domainId;
        public Process? Daemon { get; set; }
        public string State { get; set; } = "Transient";
        public string StartTime { get; } = DateTimeOffset.UtcNow.ToUnixTimeSeconds().ToString(CultureInfo.InvariantCulture);
    }

    public int DomainId(Qube qube) => _running.TryGetValue(qube, out Running? r) ? r.DomainId : -1;

    public string StartTime(Qube qube) => _running.TryGetValue(qube, out Running? r) ? r.StartTime : string.Empty;

    public string PowerState(Qube qube) => _running.TryGetValue(qube, out Running? r) ? r.State : "Halted";

    /// <summary>How many power-state changes there have been (qubesd compares it around a call).</summary>
    public int StateChanges { get; private set; }

    public long CpuTimeNs(Qube qube) => _running.TryGetValue(qube, out Running? r) ? ProcessTree.CpuTimeNs(r.Sandbox.Id) : 0;

    public void Start(Qube qube)
    {
        string name = qube.Name;
        (string root, bool writable) = RootOf(qube);
        string staging = _layout.Staging(name);
        Directory.CreateDirectory(staging);
        Directory.CreateDirectory(_layout.Logs);
        (int domainId, SafeFd connection) = _dom0.CreateDomain(name);
        Running running;
        using (connection)
        {
            ProcessStartInfo sandbox = new(Path.Combine(_native, "qube-sandbox")) { UseShellExecute = false };
            foreach (string a in (string[])["--name", name, "--staging", staging, "--root", root, "--private", _layout.Volume(name, "private"),
                "--log", _layout.Log(name), "--die-with-parent", "--bind-ro", _tools, "--bind-ro", _native])
            {
                sandbox.ArgumentList.Add(a);
            }
            if (writable)
            {
                sandbox.ArgumentList.Add("--root-work");
                sandbox.ArgumentList.Add(_layout.Volume(name, "root-work"));
            }
            if (!s_dotnetRoot.StartsWith("/usr/", StringComparison.Ordinal))
            {
                sandbox.ArgumentList.Add("--bind-ro");
                sandbox.ArgumentList.Add(s_dotnetRoot);
            }
            sandbox.ArgumentList.Add("--");
            sandbox.ArgumentList.Add(Path.Combine(_tools, "qrexec-agent"));
            sandbox.ArgumentList.Add("--no-fork-server");
            sandbox.Environment.Remove(LoopbackPlatform.DirectoryVariable);
            sandbox.Environment["QREXEC_SERVICE_PATH"] = "/usr/local/etc/qubes-rpc:/etc/qubes-rpc";
            sandbox.Environment["PATH"] = $"{_native}:{_tools}:/usr/local/bin:/usr/bin:/bin";
            sandbox.Environment["HOME"] = "/home";
            sandbox.Environment["DOTNET_EnableDiagnostics"] = "0";
            sandbox.Environment["DOTNET_ROOT"] = s_dotnetRoot;
            // --die-with-parent ties the qube to the thread that starts it: a thread that lives as long as qubesd
            running = new Running(_spawner.Run(() => LoopbackPlatform.StartInDomain(connection, sandbox)), domainId);
        }
        _running.Add(qube, running);
        StateChanges++;
        try
        {
            running.Daemon = StartDaemon(qube, domainId);
            WaitUntilConnected(qube, running);
        }
        catch
        {
            Stop(qube, running, kill: true);
            throw;
        }
        running.State = "Running";
        StateChanges++;
        Thread watcher = new(() => Watch(qube, running)) { IsBackground = true, Name = "watch " + name };
        watcher.Start();
    }

    /// <summary>The root layer a qube runs on, and whether it writes to it (its own) or not (its template's).</summary>
    private (string Root, bool Writable) RootOf(Qube qube)
    {
        Qube owner = qube;
        while (owner.Has("template") && owner.Ref("template") is { } template)
        {
            owner = template;
        }
        if (owner == qube && !qube.Has("template"))
        {
            return (_layout.Volume(qube.Name, "root"), true);
        }
        if (owner.Has("template"))
        {
            throw new QubesException("QubesNoTemplateError", $"Template for the domain '{qube.Name}' not found");
        }
        return (_layout.Volume(owner.Name, "root"), false);
    }

    private Process StartDaemon(Qube qube, int domainId)
    {
        ProcessStartInfo daemon = new(Path.Combine(_tools, "qrexec-daemon")) { UseShellExecute = false, RedirectStandardError = true };
        foreach (string a in (string[])["--direct", "--uuid=" + qube.Uuid, "--socket-dir=" + _layout.QrexecSockets,
            "--policy-socket=" + _layout.PolicySocket, "--policy-program=" + Path.Combine(_tools, "qrexec-policy-exec"),
            "--qubesd-socket=" + _layout.QubesdSocket, domainId.ToString(CultureInfo.InvariantCulture), qube.Name,
            (string?)qube.Properties.GetOrDefault("default_user") ?? "user"])
        {
            daemon.ArgumentList.Add(a);
        }
        daemon.Environment[LoopbackPlatform.DirectoryVariable] = _layout.Broker;
        daemon.Environment["QREXEC_SERVICE_PATH"] = _layout.Dom0Services;
        Process process = Process.Start(daemon)!;
        StreamWriter log = new(new FileStream(_layout.Log("qrexec." + qube.Name), FileMode.Append, FileAccess.Write, FileShare.ReadWrite)) { AutoFlush = true };
        process.ErrorDataReceived += (_, e) =>
        {
            if (e.Data != null)
            {
                lock (log)
                {
                    log.WriteLine(e.Data);
                }
            }
        };
        process.Exited += (_, _) => log.Dispose();
        process.EnableRaisingEvents = true;
        process.BeginErrorReadLine();
        return process;
    }

    /// <summary>Waits for the qrexec daemon's socket (it appears once the agent has connected), up to the qube's qrexec_timeout.</summary>
    private void WaitUntilConnected(Qube qube, Running running)
    {
        string socket = Path.Combine(_layout.QrexecSockets, "qrexec." + qube.Name);
        int timeout = (int)qube.Properties.Get("qrexec_timeout")!;
        Stopwatch clock = Stopwatch.StartNew();
        while (!File.Exists(socket))
        {
            if (running.Sandbox.HasExited || running.Daemon!.HasExited)
            {
                throw new QubesException("QubesVMError", $"Start failed: the qube '{qube.Name}' stopped while starting; see {_layout.Log(qube.Name)} and {_layout.Log("qrexec." + qube.Name)}");
            }
            if (clock.Elapsed.TotalSeconds > timeout)
            {
                throw new QubesException("QubesVMError", $"Cannot connect to qrexec agent for {timeout} seconds, see {_layout.Log(qube.Name)} for details");
            }
            Thread.Sleep(2);
        }
    }

    private void Watch(Qube qube, Running running)
    {
        running.Sandbox.WaitForExit();
        lock (_lock)
        {
            if (_running.TryGetValue(qube, out Running? current) && current == running)
            {
                Stop(qube, running, kill: false);
                _stopped(qube, "shutdown");
            }
        }
    }

    public void Shutdown(Qube qube, bool wait)
    {
        Running running = _running[qube];
        running.State = "Halting";
        StateChanges++;
        Libc.kill(running.Sandbox.Id, Libc.SIGTERM);
        if (!wait)
        {
            return;
        }
        int timeout = (int)qube.Properties.Get("shutdown_timeout")!;
        if (!running.Sandbox.WaitForExit(TimeSpan.FromSeconds(timeout)))
        {
            throw new QubesException("QubesVMShutdownTimeoutError", $"Domain shutdown timed out: '{qube.Name}'");
        }
        Stop(qube, running, kill: false);
        _stopped(qube, "shutdown");
    }

    public void Kill(Qube qube)
    {
        Stop(qube, _running[qube], kill: true);
        _stopped(qube, "killed");
    }

    /// <summary>Ends a qube's processes (the sandbox first, killed when <paramref name="kill"/>), its daemon and its domain.</summary>
    private void Stop(Qube qube, Running running, bool kill)
    {
        _running.Remove(qube);
        StateChanges++;
        if (kill)
        {
            KillAndWait(running.Sandbox);
        }
        running.Sandbox.WaitForExit();
        running.Sandbox.Dispose();
        if (running.Daemon != null)
        {
            KillAndWait(running.Daemon);
            running.Daemon.Dispose();
        }
        try
        {
            _dom0.DestroyDomain(running.DomainId);
        }
        catch (PlatformException)
        {
            // the domain went with its last connection
        }
        foreach (string socket in (string[])[qube.Name, "uuid:" + qube.Uuid, running.DomainId.ToString(CultureInfo.InvariantCulture)])
        {
            File.Delete(Path.Combine(_layout.QrexecSockets, "qrexec." + socket)); // a killed daemon leaves them
        }
    }

    private static void KillAndWait(Process process)
    {
        try
        {
            process.Kill();
        }
        catch (InvalidOperationException)
        {
            // already gone
        }
        process.WaitForExit();
    }

    public void CreateStorage(Qube qube)
    {
        string directory = _layout.Qube(qube.Name);
        if (Directory.Exists(directory))
        {
            Directory.Delete(directory, recursive: true); // left over from a qube of the same name whose removal was cut short
        }
        Directory.CreateDirectory(directory);
        if (qube.Class == "DispVM" && qube.Ref("template") is { } template)
        {
            CopyTree(_layout.Volume(template.Name, "private"), _layout.Volume(qube.Name, "private"));
        }
        else
        {
            Directory.CreateDirectory(_layout.Volume(qube.Name, "private"));
        }
        if (qube.Class is "TemplateVM" or "StandaloneVM")
        {
            CopyTree(s_templateImage, _layout.Volume(qube.Name, "root"));
        }
    }

    public void RemoveStorage(Qube qube)
    {
        string directory = _layout.Qube(qube.Name);
        if (Directory.Exists(directory))
        {
            Directory.Delete(directory, recursive: true);
        }
    }

    public IReadOnlyList<string> Volumes(Qube qube) => qube.Class switch
    {
        "TemplateVM" or "StandaloneVM" => ["private", "root"],
        "AppVM" or "DispVM" => ["private"],
        _ => [],
    };

    public void CloneVolume(Qube source, Qube destination, string volume)
    {
        string target = _layout.Volume(destination.Name, volume);
        if (Directory.Exists(target))
        {
            Directory.Delete(target, recursive: true);
        }
        CopyTree(_layout.Volume(source.Name, volume), target);
    }

    /// <summary>Copies a directory tree with modes, owners, links and times (<c>cp -a</c>).</summary>
    private static void CopyTree(string source, string target)
    {
        using Process cp = Process.Start(new ProcessStartInfo("cp", ["-a", "--", source, target]) { UseShellExecute = false, RedirectStandardError = true })!;
        string error = cp.StandardError.ReadToEnd();
        cp.WaitForExit();
        if (cp.ExitCode != 0)
        {
            throw new QubesException("StoragePoolException", $"copying {source}: {error.Trim()}");
        }
    }

    /// <summary>The .NET installation the qube's agent runs on (visible inside the sandbox at the same path).</summary>
    private static readonly string s_dotnetRoot = Path.GetFullPath(Path.Combine(Path.GetDirectoryName(typeof(object).Assembly.Location)!, "../../.."));

    /// <summary>Kills every running qube (qubesd is stopping).</summary>
    public void Dispose()
    {
        lock (_lock)
        {
            foreach ((Qube qube, Running running) in new List<KeyValuePair<Qube, Running>>(_running))
            {
                Stop(qube, running, kill: true);
            }
        }
        _dom0.Dispose();
    }

    /// <summary>
    /// One thread, alive as long as qubesd, that starts the sandboxes: the kernel's parent-death
    /// signal follows the thread that forked, and a request's thread ends with the request.
    /// </summary>
    private sealed class SpawnThread
    {
        private readonly BlockingCollection<Action> _work = [];

        public SpawnThread() => new Thread(() =>
        {
            foreach (Action action in _work.GetConsumingEnumerable())
            {
                action();
            }
        }) { IsBackground = true, Name = "spawner" }.Start();

        public T Run<T>(Func<T> start)
        {
            TaskCompletionSource<T> done = new();
            _work.Add(() =>
            {
                try
                {
                    done.SetResult(start());
                }
                catch (Exception e)
                {
                    done.SetException(e);
                }
            });
            return done.Task.GetAwaiter().GetResult();
        }
    }
}
