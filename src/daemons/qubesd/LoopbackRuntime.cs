using System;
using System.Collections.Concurrent;
using System.Collections.Generic;
using System.Diagnostics;
using System.Globalization;
using System.IO;
using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using System.Threading;
using System.Threading.Tasks;
using Qubes.Core;
using Qubes.Interop.Linux;
using Qubes.Platform;
using Qubes.Platform.Loopback;

namespace Qubes.Tools.Qubesd;

/// <summary>
/// Runs qubes on the loopback hypervisor as sandboxes (native/qube-sandbox.c): a domain from the
/// broker, the qube's qrexec agent inside its own user and other namespaces and its own cgroup,
/// with its template's root layer and its private volume, and its qrexec-daemon in dom0. Each
/// qube's ids are a range of host ids of its own (<see cref="IdBase"/>). Volumes live under the
/// state directory (<see cref="SystemLayout"/>): <c>private.img</c>, an ext4 image of a fixed
/// size, and for a template or standalone qube <c>root/</c>, its root layer; both hold the qube's
/// own ids, so a copy for another qube needs no change of owners. Volumes are copied and removed
/// without following anything a qube wrote (<see cref="DirectoryTree"/>). Every method runs under
/// qubesd's lock; a qube that stops by itself is noticed by a watcher thread, which takes the same
/// lock.
/// </summary>
internal sealed class LoopbackRuntime : IQubeRuntime, IDisposable
{
    /// <summary>Size of a new private volume (upstream's default).</summary>
    public const long DefaultPrivateSize = 2L << 30;

    /// <summary>Most processes (and threads) a qube may run at once.</summary>
    public const int PidsLimit = 4096;

    /// <summary>The first host id of the ranges given to qubes; qube Q gets 65536 ids from IdBase(Q).</summary>
    private const long FirstIdBase = 1L << 30;

    /// <summary>How long a launcher may take to tear its qube down after it was told to kill it.</summary>
    private static readonly TimeSpan s_killGrace = TimeSpan.FromSeconds(10);

    private readonly SystemLayout _layout;
    private readonly Lock _lock;
    private readonly Action<Qube, string> _stopped;
    private readonly LoopbackPlatform _dom0;
    private readonly Dictionary<Qube, Running> _running = [];
    private readonly SpawnThread _spawner = new();
    private readonly string _tools = AppContext.BaseDirectory;
    private readonly string _native = Path.GetFullPath(Path.Combine(AppContext.BaseDirectory, "../../../native"));

    /// <summary>dom0's display, where the qubes' windows go; none: the qubes run without a GUI.</summary>
    private readonly string? _display = Environment.GetEnvironmentVariable("DISPLAY") is { Length: > 0 } display ? display : null;

    /// <summary>The first of the 65536 host ids of a qube: ids no host user owns, a range for each qid.</summary>
    public static long IdBase(Qube qube) => FirstIdBase + ((long)qube.Qid << 16);

    /// <summary>The memory limit of a running qube, in bytes: its <c>maxmem</c> (what the balancer could give it), at least its <c>memory</c>.</summary>
    public static long MemoryLimit(Qube qube)
        => Math.Max((int)qube.Properties.Get("memory")!, (int)qube.Properties.Get("maxmem")!) * (1L << 20);

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
        public Process? Gui { get; set; }
        public string State { get; set; } = "Transient";
        public string StartTime { get; } = DateTimeOffset.UtcNow.ToUnixTimeSeconds().ToString(CultureInfo.InvariantCulture);
    }

    public int DomainId(Qube qube) => _running.TryGetValue(qube, out Running? r) ? r.DomainId : -1;

    public string StartTime(Qube qube) => _running.TryGetValue(qube, out Running? r) ? r.StartTime : string.Empty;

    public string PowerState(Qube qube) => _running.TryGetValue(qube, out Running? r) ? r.State : "Halted";

    /// <summary>How many power-state changes there have been (qubesd compares it around a call).</summary>
    public int StateChanges { get; private set; }

    public long CpuTimeNs(Qube qube) => _running.TryGetValue(qube, out Running? r) ? ProcessTree.CpuTimeNs(qube.Name, r.Sandbox.Id) : 0;

    public void Start(Qube qube)
    {
        string name = qube.Name;
        (string root, bool writable) = RootOf(qube);
        string staging = _layout.Staging(name);
        Directory.CreateDirectory(staging);
        Directory.CreateDirectory(_layout.Logs);
        bool gui = HasGui(qube);
        (int domainId, SafeFd connection) = _dom0.CreateDomain(name);
        Running running;
        using (connection)
        {
            ProcessStartInfo sandbox = new(Path.Combine(_native, "qube-sandbox")) { UseShellExecute = false };
            long memory = MemoryLimit(qube);
            foreach (string a in (string[])["--name", name, "--id-base", IdBase(qube).ToString(CultureInfo.InvariantCulture),
                "--staging", staging, "--root", root, "--private", PrivateImage(name),
                "--memory", memory.ToString(CultureInfo.InvariantCulture), "--pids", PidsLimit.ToString(CultureInfo.InvariantCulture),
                "--cpus", ((int)qube.Properties.Get("vcpus")!).ToString(CultureInfo.InvariantCulture),
                "--log", _layout.Log(name), "--die-with-parent", "--bind-ro", _tools, "--bind-ro", _native])
            {
                sandbox.ArgumentList.Add(a);
            }
            if (writable)
            {
                sandbox.ArgumentList.Add("--root-writable");
            }
            string[] runtime = s_dotnetRoot == null ? [] : ["DOTNET_ROOT=" + s_dotnetRoot, "DOTNET_EnableDiagnostics=0", "DOTNET_CLI_TELEMETRY_OPTOUT=1"];
            if (s_dotnetRoot != null && !s_dotnetRoot.StartsWith("/usr/", StringComparison.Ordinal))
            {
                sandbox.ArgumentList.Add("--bind-ro");
                sandbox.ArgumentList.Add(s_dotnetRoot);
            }
            // the whole environment of the qube: nothing of dom0's reaches it
            foreach (string variable in (string[])[$"PATH={_native}:{_tools}:/usr/local/bin:/usr/bin:/bin:/usr/local/sbin:/usr/sbin:/sbin",
                "HOME=/root", "LANG=C.UTF-8", "QREXEC_SERVICE_PATH=/usr/local/etc/qubes-rpc:/etc/qubes-rpc", .. runtime,
                .. gui ? (string[])[LoopbackPlatform.GuiDomainVariable + "=0"] : []])
            {
                sandbox.ArgumentList.Add("--env");
                sandbox.ArgumentList.Add(variable);
            }
            sandbox.ArgumentList.Add("--");
            sandbox.ArgumentList.Add(Path.Combine(_tools, "qrexec-agent"));
            sandbox.ArgumentList.Add("--no-fork-server");
            // --die-with-parent ties the qube to the thread that starts it: a thread that lives as long as qubesd
            running = new Running(_spawner.Run(() => LoopbackPlatform.StartInDomain(connection, sandbox)), domainId);
        }
        _running.Add(qube, running);
        StateChanges++;
        try
        {
            running.Daemon = StartDaemon(qube, domainId);
            WaitUntilConnected(qube, running);
            if (gui)
            {
                running.Gui = StartGuiDaemon(qube, domainId);
            }
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

    /// <summary>
    /// Whether the qube shows its windows on dom0's display: dom0 has one, dom0 is the qube's
    /// <c>guivm</c>, and its <c>gui</c> feature (or its template's) is not false, as upstream decides.
    /// </summary>
    private bool HasGui(Qube qube)
        => _display != null && qube.Has("guivm") && qube.Ref("guivm") is { IsAdmin: true } && qube.FeatureWithTemplate("gui") is not "";

    /// <summary>qubes-guid for the qube, upstream's command line, its messages in <c>guid.NAME.log</c>.</summary>
    private Process StartGuiDaemon(Qube qube, int domainId)
    {
        Label label = qube.Label;
        ProcessStartInfo guid = new(Path.Combine(_tools, "qubes-guid"), ["-d", domainId.ToString(CultureInfo.InvariantCulture), "-N", qube.Name,
            "-c", label.Color, "-l", label.Index.ToString(CultureInfo.InvariantCulture), "-f"])
        {
            UseShellExecute = false,
            RedirectStandardError = true,
        };
        guid.Environment[LoopbackPlatform.DirectoryVariable] = _layout.Broker;
        guid.Environment["DISPLAY"] = _display;
        guid.Environment["QUBES_CLIPBOARD_DIR"] = _layout.Run;
        return StartLogged(guid, "guid." + qube.Name);
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
            return (RootLayer(qube.Name), true);
        }
        if (owner.Has("template"))
        {
            throw new QubesException("QubesNoTemplateError", $"Template for the domain '{qube.Name}' not found");
        }
        return (RootLayer(owner.Name), false);
    }

    private string PrivateImage(string qube) => _layout.Volume(qube, "private.img");

    private string RootLayer(string qube) => _layout.Volume(qube, "root");

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
        // dom0's services it starts (qubes.SyncAppMenus, qubes.ReceiveUpdates) work on this system
        daemon.Environment["QUBES_STATE_DIR"] = _layout.State;
        return StartLogged(daemon, "qrexec." + qube.Name);
    }

    /// <summary>Starts a dom0 daemon of a qube with its stderr in a log of its own (it carries what the qube sends: each line capped, the file rotated).</summary>
    private Process StartLogged(ProcessStartInfo start, string logName)
    {
        Process process = Process.Start(start)!;
        RotatingLog log = new(_layout.Log(logName));
        process.ErrorDataReceived += (_, e) =>
        {
            if (e.Data != null)
            {
                log.WriteLine(e.Data);
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
            // the launcher kills the qube and removes its cgroup; SIGKILL only if it does not
            Libc.kill(running.Sandbox.Id, Libc.SIGUSR2);
            if (!running.Sandbox.WaitForExit(s_killGrace))
            {
                KillAndWait(running.Sandbox);
            }
        }
        running.Sandbox.WaitForExit();
        running.Sandbox.Dispose();
        foreach (Process? daemon in (Process?[])[running.Gui, running.Daemon])
        {
            if (daemon != null)
            {
                KillAndWait(daemon);
                daemon.Dispose();
            }
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

    public void CreateStorage(Qube qube) => Storage(qube, () =>
    {
        string directory = _layout.Qube(qube.Name);
        DirectoryTree.Remove(directory); // left over from a qube of the same name whose removal was cut short
        Directory.CreateDirectory(Path.GetDirectoryName(directory)!, UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute);
        Directory.CreateDirectory(directory, UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute);
        if (qube.Class == "DispVM" && qube.Ref("template") is { } template)
        {
            CopyPrivate(template, PrivateImage(qube.Name));
        }
        else
        {
            MakeImage(PrivateImage(qube.Name), DefaultPrivateSize);
        }
        if (qube.Class is "TemplateVM" or "StandaloneVM")
        {
            TemplateImage.Create(RootLayer(qube.Name), qube.Name);
        }
    });

    /// <summary>A storage operation: a file system error is the caller's StoragePoolException.</summary>
    private static void Storage(Qube qube, Action action)
    {
        try
        {
            action();
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            throw new QubesException("StoragePoolException", $"storage of {qube.Name}: {e.Message}");
        }
    }

    /// <summary>An empty ext4 image of <paramref name="size"/> bytes (sparse: it takes what is written), its root owned by 0, the qube's root.</summary>
    private static void MakeImage(string path, long size)
    {
        using (FileStream image = new(path, FileMode.CreateNew, FileAccess.Write))
        {
            image.SetLength(size);
        }
        using Process mkfs = Process.Start(new ProcessStartInfo("mkfs.ext4", ["-q", "-F", "-m", "0", "-J", "size=4", "-E", "lazy_itable_init=1,nodiscard", "-L", "private", path])
        {
            UseShellExecute = false,
            RedirectStandardError = true,
            RedirectStandardOutput = true,
        })!;
        string error = mkfs.StandardError.ReadToEnd();
        mkfs.StandardOutput.ReadToEnd();
        mkfs.WaitForExit();
        if (mkfs.ExitCode != 0)
        {
            File.Delete(path);
            throw new QubesException("StoragePoolException", $"mkfs.ext4 {path}: {error.Trim()}");
        }
    }

    /// <summary>
    /// Copies a qube's private volume. While the qube runs, its file system is frozen for the copy
    /// (FIFREEZE on its /rw, reached through its init's root: everything written is on the image,
    /// and nothing is written during the copy), so the copy is consistent, as of now.
    /// </summary>
    private void CopyPrivate(Qube source, string target)
    {
        if (!_running.TryGetValue(source, out Running? running) || ProcessTree.ChildOf(running.Sandbox.Id) is not int init)
        {
            DirectoryTree.CopyFile(PrivateImage(source.Name), target);
            return;
        }
        using SafeFd volume = new(Libc.open($"/proc/{init}/root/rw", Libc.O_RDONLY | Libc.O_DIRECTORY | Libc.O_CLOEXEC, 0));
        if (volume.Fd < 0 || !FileSystemFreeze.Freeze(volume.Fd))
        {
            throw new IOException($"cannot freeze the private volume of the running qube {source.Name}: {LastError.Get()}");
        }
        try
        {
            DirectoryTree.CopyFile(PrivateImage(source.Name), target);
        }
        finally
        {
            FileSystemFreeze.Thaw(volume.Fd);
        }
    }

    public void RemoveStorage(Qube qube) => Storage(qube, () => DirectoryTree.Remove(_layout.Qube(qube.Name)));

    public IReadOnlyList<string> Volumes(Qube qube) => qube.Class switch
    {
        "TemplateVM" or "StandaloneVM" => ["private", "root"],
        "AppVM" or "DispVM" => ["private"],
        _ => [],
    };

    public void CloneVolume(Qube source, Qube destination, string volume) => Storage(destination, () =>
    {
        if (volume == "private")
        {
            string target = PrivateImage(destination.Name);
            File.Delete(target);
            CopyPrivate(source, target);
        }
        else
        {
            string target = RootLayer(destination.Name);
            DirectoryTree.Remove(target);
            DirectoryTree.Copy(RootLayer(source.Name), target);
        }
    });

    /// <summary>
    /// The .NET installation the qube's agent runs on (visible inside the sandbox at the same path);
    /// null when qubesd and the agent beside it are native executables, which need none.
    /// </summary>
    private static readonly string? s_dotnetRoot = RuntimeFeature.IsDynamicCodeSupported
        ? Path.GetFullPath(Path.Combine(RuntimeEnvironment.GetRuntimeDirectory(), "../../.."))
        : null;

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
