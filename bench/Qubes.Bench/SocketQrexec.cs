using System;
using System.Collections.Generic;
using System.Diagnostics;
using System.IO;
using System.Threading;

namespace Qubes.Bench;

/// <summary>
/// qrexec over upstream's vchan-socket transport (every vchan a Unix socket in one directory, a
/// domain's id in <c>VCHAN_DOMAIN</c>), as upstream's socket test suite runs it, with no hypervisor
/// and no sandbox: for qubes <c>work</c> (domain 42) and <c>personal</c> (43) an agent and a
/// qrexec-daemon, and a policy program that allows every call as root. The same layout runs
/// upstream's C executables or ours, so that the two are measured on equal terms.
/// </summary>
internal sealed class SocketQrexec : IQrexecBench
{
    private static readonly (string Name, int Domain)[] s_qubes = [("work", 42), ("personal", 43)];
    private readonly List<Process> _processes = [];
    private readonly Dictionary<string, Process> _agents = [];
    private readonly Binaries _binaries;

    /// <summary>Where the daemon, qrexec-client, the agent and qrexec-client-vm are, and LD_LIBRARY_PATH for upstream's shared libraries (or null).</summary>
    public sealed record Binaries(string Daemon, string Client, string Agent, string ClientVm, string? LibraryPath)
    {
        /// <summary>Upstream's, as tests/upstream/build-upstream.sh lays them out.</summary>
        public static Binaries Upstream(string directory)
        {
            string dir = Path.GetFullPath(directory);
            Binaries b = new(Path.Combine(dir, "daemon/qrexec-daemon"), Path.Combine(dir, "daemon/qrexec-client"), Path.Combine(dir, "agent/qrexec-agent"),
                Path.Combine(dir, "agent/qrexec-client-vm"), Path.Combine(dir, "libqrexec") + ":" + Path.Combine(dir, "lib"));
            foreach (string p in new[] { b.Daemon, b.Client, b.Agent, b.ClientVm })
            {
                if (!File.Exists(p))
                {
                    throw new FileNotFoundException($"{p} is missing: build upstream's qrexec with tests/upstream/build-upstream.sh");
                }
            }
            return b;
        }

        /// <summary>Ours, from the front command's tool directory (the native qrexec-client-vm, as qubes use).</summary>
        public static Binaries Ours(string tools)
            => new(Path.Combine(tools, "qrexec-daemon"), Path.Combine(tools, "qrexec-client"), Path.Combine(tools, "qrexec-agent"), Qubes.Front.Tools.NativeClientVmFor(tools), null);
    }

    public SocketQrexec(string directory, Binaries binaries)
    {
        _binaries = binaries;
        Directory = directory;
        System.IO.Directory.CreateDirectory(ServiceDirectory);
        string policy = Path.Combine(directory, "policy-program");
        File.WriteAllText(policy, "#!/bin/sh\n# -- SOURCE TARGET SERVICE: allow, as root\n"
            + "printf 'result=allow\\nautostart=True\\nuser=root\\ntarget=%s\\nrequested_target=%s\\n' \"$3\" \"$3\"\n");
        MakeExecutable(policy);
        try
        {
            foreach ((string name, int domain) in s_qubes)
            {
                _agents[name] = Start(binaries.Agent, domain, "--no-fork-server", "--agent-socket=" + AgentSocket(name));
            }
            foreach ((string name, int domain) in s_qubes)
            {
                Start(binaries.Daemon, 0, $"--uuid=00000000-0000-0000-0000-0000000000{domain}", "--socket-dir=" + directory,
                    "--policy-program=" + policy, "--direct", domain.ToString(System.Globalization.CultureInfo.InvariantCulture), name);
            }
            foreach ((string name, _) in s_qubes)
            {
                WaitFor(Path.Combine(directory, "qrexec." + name));
            }
        }
        catch
        {
            Dispose();
            throw;
        }
    }

    public string Directory { get; }

    private string ServiceDirectory => Path.Combine(Directory, "rpc");

    private string AgentSocket(string qube) => Path.Combine(Directory, $"agent-{qube}.sock");

    public Process Agent(string qube) => _agents[qube];

    /// <summary>Writes an executable service; both qubes share one service directory.</summary>
    public void AddService(string qube, string name, string script)
    {
        string path = Path.Combine(ServiceDirectory, name);
        File.WriteAllText(path, script);
        MakeExecutable(path);
    }

    public ProcessStartInfo ClientVm(string qube, string target, string service)
    {
        ProcessStartInfo psi = new(_binaries.ClientVm) { UseShellExecute = false };
        psi.ArgumentList.Add("--agent-socket=" + AgentSocket(qube));
        psi.ArgumentList.Add(target);
        psi.ArgumentList.Add(service);
        SetEnvironment(psi, Array.Find(s_qubes, q => q.Name == qube).Domain);
        return psi;
    }

    public ProcessStartInfo Dom0Client(string target, string command)
    {
        ProcessStartInfo psi = new(_binaries.Client, ["--socket-dir=" + Directory, "-d", target, command]) { UseShellExecute = false };
        SetEnvironment(psi, 0);
        return psi;
    }

    private void SetEnvironment(ProcessStartInfo psi, int domain)
    {
        psi.Environment["VCHAN_DOMAIN"] = domain.ToString(System.Globalization.CultureInfo.InvariantCulture);
        psi.Environment["VCHAN_SOCKET_DIR"] = Directory;
        psi.Environment["QREXEC_SERVICE_PATH"] = ServiceDirectory; // where the agents find the services
        if (_binaries.LibraryPath != null)
        {
            psi.Environment["LD_LIBRARY_PATH"] = _binaries.LibraryPath;
        }
    }

    private Process Start(string program, int domain, params string[] args)
    {
        ProcessStartInfo psi = new(program, args) { UseShellExecute = false, RedirectStandardError = true };
        SetEnvironment(psi, domain);
        Process p = Process.Start(psi)!;
        p.ErrorDataReceived += (_, _) => { }; // upstream logs every call on stderr: drained, not kept
        p.BeginErrorReadLine();
        _processes.Add(p);
        return p;
    }

    private void WaitFor(string path)
    {
        Stopwatch sw = Stopwatch.StartNew();
        while (!File.Exists(path))
        {
            foreach (Process p in _processes)
            {
                if (p.HasExited)
                {
                    throw new InvalidOperationException($"{p.StartInfo.FileName} exited with {p.ExitCode} while starting");
                }
            }
            if (sw.Elapsed > TimeSpan.FromSeconds(30))
            {
                throw new TimeoutException($"{path} did not appear in 30 s");
            }
            Thread.Sleep(10);
        }
    }

    private static void MakeExecutable(string path)
    {
        if (!OperatingSystem.IsWindows())
        {
            File.SetUnixFileMode(path, UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute);
        }
    }

    public void Dispose()
    {
        Teardown.Stop(_processes); // daemons before their agents
        Teardown.Delete(Directory);
    }
}
