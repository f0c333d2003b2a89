using System;
using System.Diagnostics;
using System.Globalization;
using System.IO;
using System.Linq;
using System.Threading.Tasks;
using Xunit;

namespace Qubes.Core.Tests;

/// <summary>
/// A hostile qube on the loopback hypervisor: from inside a running qube, as its root, every class of
/// attack on the host, dom0 and the other qubes is tried (native/qube-attack.c) and must fail. Each
/// attack is first run as host root outside any qube, where it must work (or, where that cannot be
/// done safely, against dom0's unprotected side): a pass means the sandbox held, not that the probe
/// was blind. The system is started with a marker in its environment and an extra descriptor, which
/// must reach no qube.
/// </summary>
public sealed class HostileQubeTests : IClassFixture<HostileQubeTests.HostileSystem>
{
    private readonly HostileSystem _system;

    public HostileQubeTests(HostileSystem system) => _system = system;

    /// <summary>A system of its own, started from a shell holding a marker variable and descriptor; the attack tool's path.</summary>
    public sealed class HostileSystem : IDisposable
    {
        public const string Marker = "QUBES_LEAK_MARKER_5f3a";

        private readonly LoopbackSystem _system;

        public HostileSystem()
        {
            Scratch = Directory.CreateTempSubdirectory("qubes-hostile-").FullName;
            MarkerFile = Path.Combine(Scratch, Marker + ".file");
            File.WriteAllText(MarkerFile, "dom0's shell");
            // the shell that starts the system holds the marker file open on descriptor 9 and the marker in its environment
            _system = new LoopbackSystem("hostile-test", $"exec 9<'{MarkerFile}'; {Marker}=secret exec {{qubes}}");
            Attack = Path.Combine(_system.Root, "artifacts", "native", "qube-attack");
        }

        public string Root => _system.Root;

        public string State => _system.State;

        public string Attack { get; }

        public string Scratch { get; }

        public string MarkerFile { get; }

        /// <summary>A tool of the system as dom0.</summary>
        public (int Status, string Output) Tool(string tool, params string[] args) => _system.Tool(tool, args);

        /// <summary>A shell command in a qube as its root.</summary>
        public (int Status, string Output) AsRoot(string qube, string command) => _system.RunAsRoot(qube, command);

        /// <summary>A shell command in a qube as its user.</summary>
        public (int Status, string Output) AsUser(string qube, string command) => _system.Run(qube, command);

        /// <summary>A program on the host, as host root outside any qube.</summary>
        public (int Status, string Output) Host(string file, params string[] args) => _system.Exec(file, null, args);

        public (int Status, string Output) Exec(string file, string? input, params string[] args) => _system.Exec(file, input, args);

        public string Pid(string daemon) => _system.Pid(daemon);

        public void Dispose()
        {
            _system.Dispose();
            Host("rm", "-rf", "--one-file-system", Scratch);
        }
    }

    /// <summary>Runs a probe inside <paramref name="qube"/> as its root; asserts it was refused.</summary>
    private string RefusedInside(string qube, string probe)
    {
        (int status, string output) = _system.AsRoot(qube, $"mkdir -p /tmp/probe; {_system.Attack} {probe}");
        Assert.True(status == 1 && output.Contains(": REFUSED ", StringComparison.Ordinal), $"inside {qube}: {probe}: {output}");
        return output;
    }

    /// <summary>Runs a probe as host root outside any qube (in a private mount namespace); asserts it worked.</summary>
    private void WorksOutside(string probe)
    {
        Directory.CreateDirectory(Path.Combine(_system.Scratch, "probe"));
        (int status, string output) = _system.Host("unshare", "-m", "--propagation", "private", "sh", "-c", $"{_system.Attack} {probe}");
        Assert.True(status == 0 && output.Contains(": WORKED ", StringComparison.Ordinal), $"outside: {probe}: {output}");
    }

    /// <summary>major:minor of the device holding the host's root file system (from mountinfo).</summary>
    private static string RootDevice()
    {
        string line = File.ReadLines("/proc/self/mountinfo").First(static l => l.Split(' ')[4] == "/");
        return line.Split(' ')[2].Replace(':', ' ');
    }

    [Fact]
    public void A_qubes_root_is_a_range_of_host_ids_of_its_own_and_services_run_as_the_user_asked()
    {
        Assert.Equal("0 0\n", _system.AsRoot("work", "echo $(id -u) $(id -g)").Output);
        Assert.Equal("1000 user\n", _system.AsUser("work", "echo $(id -u) $(id -un)").Output);
        // seen from the host: the qube's root and user are ids of its own range, far from host root's
        string map = _system.AsRoot("work", "cat /proc/self/uid_map").Output.Trim();
        string[] fields = map.Split(' ', StringSplitOptions.RemoveEmptyEntries);
        Assert.Equal("0", fields[0]);
        Assert.Equal("65536", fields[2]);
        long base0 = long.Parse(fields[1], CultureInfo.InvariantCulture);
        Assert.True(base0 >= 1L << 30, map);
        string personal = _system.AsRoot("personal", "cat /proc/self/uid_map").Output.Trim();
        Assert.NotEqual(map, personal); // another qube, another range
        // the agent's process, as the host sees it; a host-root process of the same name that is not
        // this system's (as another system's could be) is left out
        string decoyPath = Path.Combine(_system.Scratch, "decoy", "qrexec-agent");
        Directory.CreateDirectory(Path.GetDirectoryName(decoyPath)!);
        File.Copy("/bin/sleep", decoyPath, overwrite: true);
        using Process decoy = Process.Start(decoyPath, "120");
        try
        {
            Assert.True(LoopbackSystem.Eventually(() => ProcessFile(decoy.Id, "comm") == "qrexec-agent\n", 5000));
            string[] agentUids = AgentUids();
            Assert.Contains(base0.ToString(CultureInfo.InvariantCulture), agentUids);
            Assert.DoesNotContain("0", agentUids); // no agent of any qube is host root
        }
        finally
        {
            decoy.Kill();
            decoy.WaitForExit();
        }
        string caps = _system.AsRoot("work", "grep CapEff /proc/self/status").Output;
        Assert.Contains("CapEff:\t00000000800cadff", caps, StringComparison.Ordinal); // no CAP_SYS_ADMIN, CAP_MKNOD, CAP_SYS_TIME...
        Assert.Contains("NoNewPrivs:\t1", _system.AsRoot("work", "grep NoNewPrivs /proc/self/status").Output, StringComparison.Ordinal);
        Assert.Contains("Seccomp:\t2", _system.AsRoot("work", "grep Seccomp: /proc/self/status").Output, StringComparison.Ordinal);
    }

    /// <summary>A file of /proc/PID, or null when the process is gone or the file cannot be read.</summary>
    private static string? ProcessFile(int pid, string name)
    {
        try
        {
            return File.ReadAllText($"/proc/{pid}/{name}");
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            return null;
        }
    }

    /// <summary>
    /// The host uids (real) of this system's qrexec agents: the processes named qrexec-agent with one of
    /// this system's sandbox launchers among their ancestors, a qube-sandbox whose <c>--staging</c>
    /// directory is in this system's state directory.
    /// </summary>
    private string[] AgentUids()
    {
        string staging = "\0--staging\0" + _system.State + "/";
        bool OfThisSystem(int pid)
        {
            for (int depth = 0; depth < 64 && pid > 1; depth++)
            {
                if (ProcessFile(pid, "comm") == "qube-sandbox\n" && ProcessFile(pid, "cmdline") is { } cmdline && cmdline.Contains(staging, StringComparison.Ordinal))
                {
                    return true;
                }
                string? parent = Status(pid, "PPid");
                if (parent == null || !int.TryParse(parent, CultureInfo.InvariantCulture, out pid))
                {
                    return false;
                }
            }
            return false;
        }
        static string? Status(int pid, string field) => ProcessFile(pid, "status")?.Split('\n')
            .FirstOrDefault(l => l.StartsWith(field + ":", StringComparison.Ordinal))?[(field.Length + 1)..].Trim().Split('\t')[0];
        return [.. Directory.EnumerateDirectories("/proc")
            .Select(static d => int.TryParse(Path.GetFileName(d), CultureInfo.InvariantCulture, out int pid) ? pid : 0)
            .Where(pid => pid > 0 && ProcessFile(pid, "comm") == "qrexec-agent\n" && OfThisSystem(pid))
            .Select(pid => Status(pid, "Uid"))
            .OfType<string>()];
    }

    [Fact]
    public void Device_nodes_and_block_mounts_are_refused()
    {
        // the host's kernel log device (its disk, where the host lets root open it, is refused the same way)
        WorksOutside($"mknod-read c 1 11 {Path.Combine(_system.Scratch, "probe")}");
        RefusedInside("work", "mknod-read c 1 11 /tmp/probe");
        RefusedInside("work", $"mknod-read b {RootDevice()} /tmp/probe");
        RefusedInside("work", $"mknod-read b {RootDevice()} /rw");
        WorksOutside($"mount-tmpfs {Path.Combine(_system.Scratch, "probe")}");
        RefusedInside("work", "mount-tmpfs /tmp/probe");
        // the host's disk is not reachable under another name either
        Assert.Equal("fd full null ptmx pts random shm stderr stdin stdout tty urandom zero", _system.AsRoot("work", "ls /dev | tr '\\n' ' '").Output.Trim());
    }

    [Fact]
    public void Handle_based_opens_do_not_reach_the_hosts_file_systems()
    {
        string tools = Path.Combine(_system.Root, "artifacts", "native");
        WorksOutside($"handle-open {tools}");
        RefusedInside("work", $"handle-open {tools}"); // dom0's executables, bound from the host's disk
        RefusedInside("work", "handle-open /etc"); // the template's layer, a directory on the host's disk
        RefusedInside("debian-12", "handle-open /etc");
    }

    [Fact]
    public void Cgroup_hierarchies_and_their_release_agents_are_out_of_reach()
    {
        WorksOutside($"cgroup-agent {Path.Combine(_system.Scratch, "probe")}");
        RefusedInside("work", "cgroup-agent /tmp/probe");
        Assert.False(_system.AsRoot("work", "test -e /sys/fs/cgroup").Status == 0, "/sys/fs/cgroup is visible in the qube");
        Assert.Equal("0::/\n", _system.AsRoot("work", "grep '^0::' /proc/self/cgroup").Output); // its own cgroup namespace
    }

    [Fact]
    public void Read_only_binds_stay_read_only()
    {
        string ro = Path.Combine(_system.Scratch, "ro");
        Directory.CreateDirectory(ro);
        File.WriteAllText(Path.Combine(ro, "file"), "x");
        (int status, string output) = _system.Host("unshare", "-m", "--propagation", "private", "sh", "-c",
            $"mount --bind {ro} {ro} && mount -o remount,bind,ro {ro} && {_system.Attack} remount-rw {ro} {ro}/file");
        Assert.True(status == 0 && output.Contains(": WORKED ", StringComparison.Ordinal), output);
        RefusedInside("work", $"remount-rw {Path.Combine(_system.Root, "artifacts", "native")} {_system.Attack}");
        RefusedInside("work", "remount-rw /etc /etc/passwd");
        RefusedInside("work", "remount-rw /usr /usr/bin/ls");
        RefusedInside("work", "remount-rw / /.probe");
        Assert.Contains("Read-only file system", _system.AsRoot("work", $"touch {_system.Attack} /etc/passwd /usr/bin/ls").Output, StringComparison.Ordinal);
    }

    [Fact]
    public void Sysctls_the_clock_scheduling_the_kernel_log_and_kernel_facilities_are_refused()
    {
        string printk = "/proc/sys/kernel/printk";
        WorksOutside($"sysctl-write {printk}");
        RefusedInside("work", $"sysctl-write {printk}");
        RefusedInside("work", "sysctl-write /proc/sys/net/ipv4/ip_forward");
        foreach (string probe in (string[])["clock-set", "rt-sched", "kernel-log", "userns", "keyring", "bpf", "perf", "userfaultfd"])
        {
            WorksOutside(probe);
            RefusedInside("work", probe);
        }
        // and as the qube's user, too
        (int status, string output) = _system.AsUser("work", $"{_system.Attack} rt-sched");
        Assert.True(status == 1, output);
    }

    [Fact]
    public void Processes_outside_the_qube_cannot_be_traced_or_signalled()
    {
        using Process sleeper = Process.Start(new ProcessStartInfo("sleep", "60"))!;
        try
        {
            WorksOutside($"ptrace {sleeper.Id}");
            RefusedInside("work", $"ptrace {sleeper.Id}");
            RefusedInside("work", $"ptrace {_system.Pid("qubesd")}");
            Assert.NotEqual(0, _system.AsRoot("work", $"kill -0 {_system.Pid("qubesd")}").Status);
            // the qube sees its own processes only
            string pids = _system.AsRoot("work", "ls /proc | grep -c '^[0-9]'").Output.Trim();
            Assert.InRange(int.Parse(pids, CultureInfo.InvariantCulture), 2, 20);
        }
        finally
        {
            sleeper.Kill();
        }
    }

    [Fact]
    public void A_link_planted_in_the_private_volume_leads_the_next_start_nowhere()
    {
        Assert.Equal(0, _system.Tool("qvm-create", "linker", "-l", "red").Status);
        Assert.Equal(0, _system.AsRoot("linker", "mv /rw/home /rw/home.orig && ln -s / /rw/home && mv /rw/usrlocal /rw/usrlocal.orig && ln -s /etc /rw/usrlocal && sync").Status);
        Assert.Equal(0, _system.Tool("qvm-shutdown", "--wait", "linker").Status);

        // followed, as a path-based bind of the volume's home would, the link is the host's root
        string image = Path.Combine(_system.State, "vm", "linker", "private.img");
        string raw = Path.Combine(_system.Scratch, "raw"), at = Path.Combine(_system.Scratch, "at");
        Directory.CreateDirectory(raw);
        Directory.CreateDirectory(at);
        (int status, string output) = _system.Host("unshare", "-m", "--propagation", "private", "sh", "-c",
            $"mount -o loop,ro {image} {raw} && mount --bind {raw}/home {at} && ls {at}");
        Assert.True(status == 0 && output.Contains("proc", StringComparison.Ordinal) && output.Contains("usr", StringComparison.Ordinal), output);

        // the launcher does not follow it: /home and /usr/local are left empty, the qube runs
        (status, output) = _system.AsRoot("linker", "ls -A /home; echo --; ls -A /usr/local; echo --; ls -A /rw");
        Assert.True(status == 0, output);
        Assert.StartsWith("--\n", output, StringComparison.Ordinal);
        Assert.Contains("home.orig", output, StringComparison.Ordinal);
        Assert.Contains("private volume: home is not a directory; /home is left empty", File.ReadAllText(Path.Combine(_system.State, "log", "linker.log")), StringComparison.Ordinal);
        // and a disposable made from such a volume inherits the link, and the same refusal
        Assert.Equal(0, _system.Tool("qvm-prefs", "linker", "template_for_dispvms", "True").Status);
        (status, output) = _system.Tool("qvm-run", "--dispvm=linker", "-u", "root", "-p", "ls -A /home | wc -l; ls /rw");
        Assert.True(status == 0, output);
        Assert.StartsWith("0\n", output, StringComparison.Ordinal);
        Assert.Equal(0, _system.Tool("qvm-kill", "linker").Status);
        Assert.Equal(0, _system.Tool("qvm-remove", "-f", "linker").Status);
        Assert.True(Directory.Exists("/usr/bin") && Directory.Exists("/etc"), "the host's directories are still there");
    }

    [Fact]
    public void Links_planted_in_a_templates_root_survive_a_clone_and_a_removal_as_links()
    {
        Assert.Equal(0, _system.Tool("qvm-create", "--class", "TemplateVM", "tpl-evil", "-l", "black").Status);
        string canary = Path.Combine(_system.Scratch, "canary");
        File.WriteAllText(canary, "still here");
        Assert.Equal(0, _system.AsRoot("tpl-evil", $"ln -s / /etc/host-root && ln -s {_system.Scratch} /usr/scratch && mkdir -p /usr/share/x && ln -s {canary} /usr/share/x/canary").Status);
        Assert.Equal(0, _system.Tool("qvm-shutdown", "--wait", "tpl-evil").Status);
        string layer = Path.Combine(_system.State, "vm", "tpl-evil", "root");
        // followed, the links lead to the host
        Assert.True(File.Exists(Path.Combine(layer, "usr", "scratch", "canary")));

        Assert.Equal(0, _system.Tool("qvm-clone", "tpl-evil", "tpl-copy").Status);
        string copy = Path.Combine(_system.State, "vm", "tpl-copy", "root");
        Assert.Equal("/", new FileInfo(Path.Combine(copy, "etc", "host-root")).LinkTarget);
        Assert.Equal(_system.Scratch, new FileInfo(Path.Combine(copy, "usr", "scratch")).LinkTarget);
        Assert.Equal(canary, new FileInfo(Path.Combine(copy, "usr", "share", "x", "canary")).LinkTarget);
        Assert.Equal(0, _system.Tool("qvm-remove", "-f", "tpl-copy").Status);
        Assert.Equal(0, _system.Tool("qvm-remove", "-f", "tpl-evil").Status);
        Assert.False(Directory.Exists(layer));
        Assert.Equal("still here", File.ReadAllText(canary));
        Assert.True(File.Exists("/etc/passwd"));
    }

    [Fact]
    public void Memory_processes_scratch_space_and_the_private_volume_are_bounded()
    {
        Assert.Equal(0, _system.Tool("qvm-create", "hog", "-l", "red").Status);
        Assert.Equal(0, _system.Tool("qvm-prefs", "hog", "memory", "256").Status);
        Assert.Equal(0, _system.Tool("qvm-prefs", "hog", "maxmem", "256").Status);

        // memory: 700 MiB held in one process works on the host, and is killed in a 256 MiB qube, which goes on
        (int status, string output) = _system.Host("sh", "-c", "head -c 700M /dev/zero | tail > /dev/null && echo held");
        Assert.Equal("held\n", output);
        (status, output) = _system.AsUser("hog", "head -c 700M /dev/zero | tail > /dev/null; echo status $?");
        Assert.Contains("status 137", output, StringComparison.Ordinal);
        Assert.Equal("alive\n", _system.AsUser("hog", "echo alive").Output);

        // processes: at most the qube's pids limit (4096), while the host starts more (in a qube with
        // the default memory: 4096 processes' kernel memory would not fit in 256 MiB, and the
        // memory limit would end the qube first, as a fork bomb fills a virtual machine's memory)
        (status, output) = _system.Host(_system.Attack, "processes", "5000");
        Assert.True(status == 0, output);
        (status, output) = _system.AsUser("personal", $"{_system.Attack} processes 5000");
        Assert.True(status == 1, output);
        int started = int.Parse(output.Split("REFUSED after ")[1].Split(' ')[0], CultureInfo.InvariantCulture);
        Assert.InRange(started, 100, 4096);
        Assert.Equal("alive\n", _system.AsUser("personal", "echo alive").Output);

        // scratch space: /tmp holds half the qube's memory at most; the host's own temporary directory takes more
        (status, output) = _system.Host("sh", "-c", $"fallocate -l 1G {_system.Scratch}/big && echo fits; rm -f {_system.Scratch}/big");
        Assert.Contains("fits", output, StringComparison.Ordinal);
        (status, output) = _system.AsUser("hog", "fallocate -l 1G /tmp/big; echo status $?; df -k /tmp | tail -n 1");
        Assert.Contains("No space left on device", output, StringComparison.Ordinal);
        // the private volume: 2 GiB
        (status, output) = _system.AsUser("hog", "fallocate -l 3G ~/big; echo status $?; rm -f ~/big; fallocate -l 1G ~/fits && echo fits; rm -f ~/fits");
        Assert.Contains("No space left on device", output, StringComparison.Ordinal);
        Assert.Contains("fits", output, StringComparison.Ordinal);
        Assert.True(new FileInfo(Path.Combine(_system.State, "vm", "hog", "private.img")).Length == 2L << 30);
        Assert.Equal(0, _system.Tool("qvm-kill", "hog").Status);
    }

    [Fact]
    public void Open_transactions_cannot_grow_the_broker_and_the_store_keeps_a_qubes_identity()
    {
        string dom0Socket = Path.Combine(_system.State, "lohv", "dom0.sock");
        (int status, string output) = _system.Host(_system.Attack, "broker-tx", dom0Socket);
        Assert.True(status == 0 && Held(output) > 16L << 20, $"as dom0 (no quota) the transactions grow: {output}");
        (status, output) = _system.AsRoot("work", $"{_system.Attack} broker-tx");
        Assert.InRange(Held(output), 1, 1L << 20);
        RefusedInside("work", "broker-rm-home");
        Assert.Equal("ok\n", _system.AsUser("work", "echo ok").Output); // the qube still works
    }

    private static long Held(string output) => long.Parse(output.Split("HELD ")[1].Split(' ')[0], CultureInfo.InvariantCulture);

    [Fact]
    public async Task A_watch_on_the_store_root_sees_nothing_of_other_qubes()
    {
        string dom0Socket = Path.Combine(_system.State, "lohv", "dom0.sock");
        Assert.Equal(0, _system.AsUser("personal", "true").Status);
        Task<(int, string)> spy = Task.Run(() => _system.AsRoot("untrusted", $"{_system.Attack} broker-watch 6"));
        Task<(int, string)> dom0 = Task.Run(() => _system.Host(_system.Attack, "broker-watch", "6", dom0Socket));
        await Task.Delay(2500);
        for (int i = 0; i < 3; i++)
        {
            Assert.Equal(0, _system.AsUser("work", "true").Status); // calls between dom0 and work: vchan entries published and removed
        }
        (_, string seen) = await spy;
        (_, string seenByDom0) = await dom0;
        Assert.Contains("/data/vchan/", seenByDom0, StringComparison.Ordinal); // the events exist
        // the spy: its watch's own first event, and at most its own qube's entries (its GUI agent's channel)
        Assert.Contains("EVENT /\n", seen, StringComparison.Ordinal);
        string own = $"/local/domain/{_system.Tool("qvm-prefs", "untrusted", "xid").Output.Trim()}/";
        foreach (string line in seen.Split('\n'))
        {
            Assert.True(!line.StartsWith("EVENT ", StringComparison.Ordinal) || line == "EVENT /" || line.StartsWith("EVENT " + own, StringComparison.Ordinal), $"the spy in untrusted ({own}) saw {line}");
        }
    }

    [Fact]
    public void Nothing_of_dom0s_environment_or_descriptors_reaches_a_qube()
    {
        string environment = _system.AsRoot("work", "cat /proc/[0-9]*/environ 2>/dev/null | tr '\\0' '\\n' | sort -u").Output;
        Assert.DoesNotContain(HostileSystem.Marker, environment, StringComparison.Ordinal);
        string agent = _system.AsRoot("work", "tr '\\0' '\\n' < /proc/$(pgrep -x qrexec-agent)/environ | cut -d= -f1 | sort | tr '\\n' ' '").Output;
        Assert.Equal("HOME LANG PATH QREXEC_SERVICE_PATH QUBES_GUI_DOMAIN_XID QUBES_LOHV_FD ", agent); // the native agent needs no runtime settings
        string descriptors = _system.AsRoot("work", "ls -l /proc/[0-9]*/fd/ 2>/dev/null").Output;
        Assert.DoesNotContain(HostileSystem.Marker, descriptors, StringComparison.Ordinal);
        Assert.DoesNotContain(".log", descriptors, StringComparison.Ordinal);
        // nor of dom0's daemons' children: qubesd and the qrexec daemons have neither
        foreach (string pid in _system.Host("pgrep", "-f", "qrexec-daemon --direct").Output.Split('\n', StringSplitOptions.RemoveEmptyEntries).Append(_system.Pid("qubesd")))
        {
            Assert.DoesNotContain(HostileSystem.Marker, File.ReadAllText($"/proc/{pid}/environ"), StringComparison.Ordinal);
            Assert.DoesNotContain(Directory.EnumerateFileSystemEntries($"/proc/{pid}/fd"), fd => (new FileInfo(fd).LinkTarget ?? "").Contains(HostileSystem.Marker, StringComparison.Ordinal));
        }
    }

    [Fact]
    public void The_console_log_is_dom0s_capped_and_escaped_and_dom0_logs_are_capped()
    {
        string log = Path.Combine(_system.State, "log", "work.log");
        (int status, string output) = _system.Exec("sh", null, "-c", $"{_system.Attack} truncate-stdout > {_system.Scratch}/stdout-file");
        Assert.True(status == 0, output); // a process whose standard output is a file can truncate it
        // the qube's console (its agent's standard output and error) is a pipe to dom0's logger: written, never truncated
        long before = new FileInfo(log).Length;
        output = RefusedInside("work", "console 100000");
        Assert.Contains("ftruncate: Invalid argument", output, StringComparison.Ordinal);
        System.Threading.Thread.Sleep(500);
        string text = File.ReadAllText(log);
        Assert.True(new FileInfo(log).Length >= before, "the log lost what it had");
        Assert.InRange(new FileInfo(log).Length - before, 4096, 4096 + 512);
        Assert.Contains("...(line cut)", text, StringComparison.Ordinal);
        Assert.Contains("\\x1b[2Jescape", text, StringComparison.Ordinal);
        Assert.DoesNotContain("\u001b", text, StringComparison.Ordinal);

        // a 60 KB service argument costs dom0's logs a few KB at most
        string daemonLog = Path.Combine(_system.State, "log", "qrexec.work.log");
        string policyLog = Path.Combine(_system.State, "log", "qrexec-policy-daemon.log");
        long daemonBefore = new FileInfo(daemonLog).Length, policyBefore = new FileInfo(policyLog).Length;
        string argument = new('A', 60_000);
        _system.AsUser("work", $"qrexec-client-vm personal test.Nothing+{argument} < /dev/null");
        System.Threading.Thread.Sleep(500);
        Assert.InRange(new FileInfo(daemonLog).Length - daemonBefore + new FileInfo(policyLog).Length - policyBefore, 1, 6000);
    }

    [Fact]
    public void Every_target_a_qube_names_gets_an_answer_and_the_policy_daemon_lives_on()
    {
        string pid = _system.Pid("qrexec-policy-daemon");
        foreach (string target in (string[])["@dispvm:no-such-qube", "@dispvm:@tag:x", "no-such-qube", "@dispvm:work", "uuid:00000000-0000-0000-0000-000000000000"])
        {
            (int status, string output) = _system.AsUser("work", $"qrexec-client-vm '{target}' test.Anything < /dev/null");
            Assert.True(status == 126, $"{target}: {status} {output}");
        }
        Assert.Equal(pid, _system.Pid("qrexec-policy-daemon"));
        Assert.DoesNotContain("restarted", _system.Tool("qubes", "status").Output, StringComparison.Ordinal);
        Assert.Equal("ok\n", _system.AsUser("work", "echo ok").Output);
    }
}
