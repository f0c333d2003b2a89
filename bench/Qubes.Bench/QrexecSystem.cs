using System;
using System.Collections.Concurrent;
using System.Collections.Generic;
using System.Diagnostics;
using System.Globalization;
using System.IO;
using System.Text.Json;
using System.Threading;
using Qubes.Interop.Linux;
using Qubes.Platform.Loopback;

namespace Qubes.Front;

/// <summary>
/// qrexec on the loopback hypervisor: the broker, the policy daemon, and for each qube its agent (in
/// the qube's domain) and its qrexec-daemon (in dom0). Everything lives under one directory:
/// <c>qrexec/</c> holds the daemon sockets, <c>&lt;qube&gt;/</c> a qube's agent socket and its
/// services (<c>rpc/</c>), <c>policy.d/</c> the policy and <c>system-info.json</c> the qubes as the
/// policy sees them (rewritten as qubes are added). The executables come from one tool directory:
/// by default the one this program was built into.
/// </summary>
internal sealed class QrexecSystem : Qubes.Bench.IQrexecBench
{
    private readonly List<Process> _processes = [];
    private readonly Dictionary<string, Process> _agents = [];
    private readonly Dictionary<string, string> _uuids = [];
    private readonly ConcurrentQueue<string> _policyLog = new();
    private readonly Process _broker;
    private readonly LoopbackPlatform _dom0;
    private readonly string _tools;

    /// <param name="directory">Where the system's sockets, services and policy live (created; deleted on dispose).</param>
    /// <param name="policy">The policy, in the policy.d format (written to <c>policy.d/50-system.policy</c>).</param>
    /// <param name="toolDirectory">Where qubes-lohv and the qrexec executables were built (default: beside this program).</param>
    public QrexecSystem(string directory, string policy, string? toolDirectory = null)
    {
        _tools = toolDirectory ?? AppContext.BaseDirectory;
        Directory = directory;
        System.IO.Directory.CreateDirectory(PolicyDirectory);
        File.WriteAllText(Path.Combine(PolicyDirectory, "50-system.policy"), policy);
        WriteSystemInfo();
        ProcessStartInfo broker = Tools.StartInfoIn(_tools, "qubes-lohv", "--dir", directory);
        broker.RedirectStandardOutput = true;
        _broker = Process.Start(broker)!;
        if (_broker.StandardOutput.ReadLine() == null)
        {
            throw new InvalidOperationException("the loopback hypervisor did not start");
        }
        _dom0 = LoopbackPlatform.ConnectDom0(directory);
        ProcessStartInfo policyDaemon = Tools.StartInfoIn(_tools, "qrexec-policy-daemon", "--socket-path", PolicySocket);
        PointAtPolicy(policyDaemon);
        policyDaemon.RedirectStandardError = true;
        Process policyProcess = Process.Start(policyDaemon)!;
        policyProcess.ErrorDataReceived += (_, e) =>
        {
            if (e.Data != null)
            {
                _policyLog.Enqueue(e.Data);
            }
        };
        policyProcess.BeginErrorReadLine();
        _processes.Add(policyProcess);
        WaitFor(PolicySocket);
    }

    public string Directory { get; }

    public string SocketDirectory => Path.Combine(Directory, "qrexec");

    public string PolicyDirectory => Path.Combine(Directory, "policy.d");

    public string SystemInfoFile => Path.Combine(Directory, "system-info.json");

    public string PolicySocket => Path.Combine(Directory, "policy.sock");

    public Dictionary<string, int> Qubes { get; } = [];

    public string AgentSocket(string qube) => Path.Combine(Directory, qube, "agent.sock");

    public string ServiceDirectory(string qube) => Path.Combine(Directory, qube, "rpc");

    /// <summary>Creates a qube, starts its agent inside it and its daemon in dom0, and waits until the daemon socket is up.</summary>
    public int AddQube(string name)
    {
        System.IO.Directory.CreateDirectory(ServiceDirectory(name));
        (int id, SafeFd connection) = _dom0.CreateDomain(name);
        using (connection)
        {
            ProcessStartInfo agent = Tools.StartInfoIn(_tools, "qrexec-agent", "--no-fork-server", "--agent-socket=" + AgentSocket(name));
            agent.Environment["QREXEC_SERVICE_PATH"] = ServiceDirectory(name);
            agent.Environment.Remove(LoopbackPlatform.DirectoryVariable);
            Process started = LoopbackPlatform.StartInDomain(connection, agent);
            _processes.Add(started);
            _agents[name] = started;
        }
        string id10 = id.ToString(CultureInfo.InvariantCulture);
        string uuid = Guid.NewGuid().ToString();
        _uuids.Add(name, uuid);
        WriteSystemInfo();
        ProcessStartInfo daemon = Tools.StartInfoIn(_tools, "qrexec-daemon", "--direct", "--uuid=" + uuid,
            "--socket-dir=" + SocketDirectory, "--policy-socket=" + PolicySocket,
            // the agents run as root outside any sandbox: their services run as root too (an agent
            // that is root runs a call as the user it names, and the host has no user "user")
            "--policy-program=" + Tools.PathIn(_tools, "qrexec-policy-exec"), id10, name, "root");
        daemon.Environment[LoopbackPlatform.DirectoryVariable] = Directory;
        PointAtPolicy(daemon);
        daemon.Environment["QREXEC_SERVICE_PATH"] = Path.Combine(Directory, "dom0", "rpc");
        _processes.Add(Process.Start(daemon)!);
        WaitFor(AgentSocket(name));
        WaitFor(Path.Combine(SocketDirectory, "qrexec." + name));
        Qubes[name] = id;
        return id;
    }

    /// <summary>The policy daemon's log lines (one per decision, and every reload) since the last call.</summary>
    public List<string> TakePolicyLog()
    {
        List<string> lines = [];
        while (_policyLog.TryDequeue(out string? line))
        {
            lines.Add(line);
        }
        return lines;
    }

    /// <summary>The agent process of a qube added with <see cref="AddQube"/>.</summary>
    public Process Agent(string qube) => _agents[qube];

    /// <summary>Writes an executable service into a qube.</summary>
    public void AddService(string qube, string name, string script)
    {
        string path = Path.Combine(ServiceDirectory(qube), name);
        File.WriteAllText(path, script);
        if (OperatingSystem.IsWindows())
        {
            throw new PlatformNotSupportedException();
        }
        File.SetUnixFileMode(path, UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute | UnixFileMode.GroupRead | UnixFileMode.GroupExecute);
    }

    /// <summary>qrexec-client-vm in <paramref name="qube"/> (the native client, which hands the call to the qube's agent).</summary>
    public ProcessStartInfo ClientVm(string qube, string target, string service)
    {
        ProcessStartInfo psi = new(Tools.NativeClientVmFor(_tools));
        psi.ArgumentList.Add("--agent-socket=" + AgentSocket(qube));
        psi.ArgumentList.Add(target);
        psi.ArgumentList.Add(service);
        psi.UseShellExecute = false;
        return psi;
    }

    public ProcessStartInfo Dom0Client(string target, string command) => Client("-d", target, command);

    /// <summary>qrexec-client in dom0.</summary>
    public ProcessStartInfo Client(params string[] args)
    {
        ProcessStartInfo psi = Tools.StartInfoIn(_tools, "qrexec-client", ["--socket-dir=" + SocketDirectory, .. args]);
        psi.Environment[LoopbackPlatform.DirectoryVariable] = Directory;
        return psi;
    }

    /// <summary>Points a policy tool (the daemon, or the policy program through the qrexec daemon's environment) at this system's policy.</summary>
    private void PointAtPolicy(ProcessStartInfo psi)
    {
        psi.Environment["QREXEC_POLICY_DIR"] = PolicyDirectory;
        psi.Environment["QREXEC_POLICY_RUNTIME_DIR"] = Path.Combine(Directory, "run-policy.d");
        psi.Environment["QREXEC_POLICY_LEGACY_DIR"] = Path.Combine(Directory, "legacy-policy");
        psi.Environment["QREXEC_SYSTEM_INFO"] = SystemInfoFile;
    }

    /// <summary>dom0 and every qube added, running AppVMs, as qubesd's internal.GetSystemInfo describes them; replaced atomically.</summary>
    private void WriteSystemInfo()
    {
        string temporary = SystemInfoFile + ".tmp";
        using (FileStream file = File.Create(temporary))
        using (Utf8JsonWriter json = new(file, new JsonWriterOptions { Indented = true }))
        {
            json.WriteStartObject();
            json.WriteStartObject("domains");
            WriteQube(json, "dom0", "AdminVM", "00000000-0000-0000-0000-000000000000");
            foreach ((string name, string uuid) in _uuids)
            {
                WriteQube(json, name, "AppVM", uuid);
            }
            json.WriteEndObject();
            json.WriteEndObject();
        }
        File.Move(temporary, SystemInfoFile, overwrite: true);
    }

    private static void WriteQube(Utf8JsonWriter json, string name, string type, string uuid)
    {
        json.WriteStartObject(name);
        json.WriteString("type", type);
        json.WriteStartArray("tags");
        json.WriteEndArray();
        json.WriteNull("default_dispvm");
        json.WriteBoolean("template_for_dispvms", false);
        json.WriteString("power_state", "Running");
        json.WriteString("uuid", uuid);
        json.WriteEndObject();
    }

    private static void WaitFor(string path)
    {
        Stopwatch clock = Stopwatch.StartNew();
        while (!File.Exists(path))
        {
            if (clock.Elapsed > TimeSpan.FromSeconds(30))
            {
                throw new TimeoutException($"{path} did not appear");
            }
            Thread.Sleep(10);
        }
    }

    public void Dispose()
    {
        global::Qubes.Bench.Teardown.Stop(_processes); // daemons before their agents, the policy daemon last
        _dom0.Dispose();
        global::Qubes.Bench.Teardown.Stop(_broker);
        global::Qubes.Bench.Teardown.Delete(Directory);
    }
}
