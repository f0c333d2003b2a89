using System;
using System.Globalization;
using System.IO;
using System.Linq;
using System.Net.Sockets;
using Xunit;

namespace Qubes.Core.Tests;

/// <summary>
/// One whole system on the loopback hypervisor (<c>qubes up</c> in a temporary state directory),
/// shared by the tests of this class: qubes as sandboxes, their lifecycle, disposables, the Admin
/// API from a qube under the policy, policy.EvalSimple and policy.EvalGUI from a qube, and events.
/// The tests run one at a time (xunit runs the methods of a class sequentially).
/// </summary>
public sealed class SandboxSystemTests : IClassFixture<SandboxSystemTests.RunningSystem>
{
    private readonly LoopbackSystem _system;

    public SandboxSystemTests(RunningSystem system) => _system = system.System;

    /// <summary>The system, up for the whole class; down and deleted after.</summary>
    public sealed class RunningSystem : IDisposable
    {
        public LoopbackSystem System { get; } = new("system-test");

        public void Dispose() => System.Dispose();
    }

    /// <summary>
    /// A service that writes much and ends its stderr as it finishes, read slowly by dom0 with its
    /// own input already at its end: every byte and the exit code arrive. (The service's side once
    /// read its stderr's end while its stdout had just filled the ring, took the full ring for a
    /// failed channel and dropped the rest of the call.)
    /// </summary>
    [Fact]
    public async System.Threading.Tasks.Task A_long_output_read_slowly_arrives_whole_with_its_exit_code()
    {
        (int status, string output) = _system.RunAsRoot("personal", "mkdir -p /usr/local/etc/qubes-rpc && cat > /usr/local/etc/qubes-rpc/test.Flood && chmod +x /usr/local/etc/qubes-rpc/test.Flood",
            "#!/bin/sh\nyes 0123456789abcdef0123456789abcdef | head -n 100000\nexit 7\n");
        Assert.True(status == 0, output);
        for (int round = 0; round < 10; round++)
        {
            System.Diagnostics.ProcessStartInfo start = new(Path.Combine(_system.Bin, "qrexec-client"),
                ["--socket-dir=" + Path.Combine(_system.State, "run", "qrexec"), "-d", "personal", "DEFAULT:QUBESRPC test.Flood dom0"])
            {
                RedirectStandardInput = true,
                RedirectStandardOutput = true,
                RedirectStandardError = true,
            };
            start.Environment["QUBES_LOHV_DIR"] = Path.Combine(_system.State, "lohv");
            using System.Diagnostics.Process client = System.Diagnostics.Process.Start(start)!;
            client.StandardInput.Close();
            System.Threading.Tasks.Task<string> errors = client.StandardError.ReadToEndAsync();
            Stream stdout = client.StandardOutput.BaseStream;
            byte[] buffer = new byte[1024];
            long total = 0;
            int n;
            while ((n = stdout.Read(buffer)) > 0)
            {
                total += n;
                if (total % (256 * 1024) < n)
                {
                    System.Threading.Thread.Sleep(2); // a slow reader: the ring fills
                }
            }
            await client.WaitForExitAsync();
            string messages = await errors;
            Assert.True(total == 100000L * 33 && client.ExitCode == 7, $"round {round}: {total} bytes, exit {client.ExitCode}: {messages}");
        }
    }

    [Fact]
    public void A_qube_sees_neither_another_qubes_files_nor_its_processes_and_has_no_network()
    {
        Assert.Equal(0, _system.Run("personal", "echo secret > ~/diary.txt && (sleep 30 > /dev/null 2>&1 &)").Status);
        (int status, string output) = _system.Run("work", string.Join("; ",
            "hostname", "ls /home/user", $"ls {_system.State} 2>&1 | head -n 1", "ps -e -o comm= | sort -u | tr '\\n' ' '; echo", "tail -n +3 /proc/net/dev | cut -d: -f1 | tr -d ' '",
            "cat /sys/class/net/*/address 2>/dev/null | wc -l"));
        string[] lines = output.Split('\n');
        Assert.True(status == 0, output);
        Assert.Equal("work", lines[0]);
        Assert.DoesNotContain("diary.txt", output, StringComparison.Ordinal);
        Assert.Contains("No such file or directory", lines[^5], StringComparison.Ordinal); // the state directory is not there
        Assert.DoesNotContain("sleep", lines[^4], StringComparison.Ordinal); // personal's sleep is not among work's processes
        Assert.DoesNotContain("qubesd", lines[^4], StringComparison.Ordinal);
        Assert.Equal("lo", lines[^3]);
        Assert.Equal("diary.txt\n", _system.Run("personal", "ls /home/user").Output);
    }

    [Fact]
    public void An_app_qube_reads_its_templates_root_but_cannot_write_it_and_its_private_volume_persists()
    {
        Assert.Equal(0, _system.RunAsRoot("debian-12", "echo from-the-template > /etc/qubes-template-mark").Status);
        Assert.Equal(0, _system.Tool("qvm-shutdown", "--wait", "debian-12").Status);
        Assert.Equal("Halted", _system.PowerState("debian-12"));
        Assert.Equal("from-the-template\n", _system.Run("untrusted", "cat /etc/qubes-template-mark").Output);
        (int status, string output) = _system.RunAsRoot("untrusted", "echo x > /etc/qubes-template-mark; echo y > /usr/bin/qubes-x");
        Assert.NotEqual(0, status);
        Assert.Contains("Read-only file system", output, StringComparison.Ordinal);
        Assert.Equal(0, _system.Run("untrusted", "echo kept > /home/user/note").Status);
        Assert.Equal(0, _system.Tool("qvm-kill", "untrusted").Status);
        Assert.Equal("Halted", _system.PowerState("untrusted"));
        Assert.Equal("kept\n", _system.Run("untrusted", "cat /home/user/note").Output);
        Assert.Equal("Running", _system.PowerState("untrusted"));
    }

    [Fact]
    public void Shutdown_and_kill_stop_every_process_of_a_qube()
    {
        Assert.Equal(0, _system.Run("personal", "(sleep 4242 > /dev/null 2>&1 &)").Status);
        int Processes() => Directory.EnumerateDirectories("/proc").Count(d => File.Exists(Path.Combine(d, "cmdline"))
            && SafeRead(Path.Combine(d, "cmdline")).Contains("sleep\0" + "4242", StringComparison.Ordinal));
        Assert.Equal(1, Processes());
        Assert.Equal(0, _system.Tool("qvm-shutdown", "--wait", "personal").Status);
        Assert.Equal("Halted", _system.PowerState("personal"));
        Assert.Equal(0, Processes());
        (int status, string output) = _system.Tool("qvm-kill", "personal");
        Assert.Equal(0, status); // a halted qube: nothing to do
        Assert.Equal(string.Empty, output);
    }

    [Fact]
    public void A_qubes_cpu_time_counts_what_runs_in_it_and_nothing_outside()
    {
        Api.AdminClient admin = new(new Api.SocketTransport(new SystemLayout(_system.State).QubesdSocket));
        long CpuTime() => long.Parse(admin.Call("admin.vm.CurrentState", "work").Split(' ').Single(f => f.StartsWith("cputime=", StringComparison.Ordinal))[8..]);
        Assert.Equal(0, _system.Run("work", "true").Status);

        // busy in dom0 for a second: not the qube's
        long before = CpuTime();
        System.Diagnostics.Stopwatch busy = System.Diagnostics.Stopwatch.StartNew();
        while (busy.ElapsedMilliseconds < 1000)
        {
        }
        long idle = CpuTime() - before;
        Assert.True(idle < 300_000_000, $"{idle} ns counted while only dom0 was busy");

        // busy in the qube for two to three seconds, in a shell and the programs it starts and
        // reaps; the shell's `times` says how much CPU that took (its own and its children's)
        before = CpuTime();
        (int status, string output) = _system.Run("work", "end=$(( $(date +%s) + 3 )); while [ $(date +%s) -lt $end ]; do :; done; times");
        long used = CpuTime() - before;
        Assert.Equal(0, status);
        long reported = 0;
        foreach (System.Text.RegularExpressions.Match m in System.Text.RegularExpressions.Regex.Matches(output, @"(\d+)m([0-9.]+)s"))
        {
            reported += (long)((60 * double.Parse(m.Groups[1].Value, CultureInfo.InvariantCulture) + double.Parse(m.Groups[2].Value, CultureInfo.InvariantCulture)) * 1e9);
        }
        Assert.True(reported >= 300_000_000, $"the busy loop took too little CPU to tell: {output}");
        Assert.True(used >= reported * 9 / 10 - 50_000_000, $"{used} ns counted; the qube's shell reports {reported} ns ({output.Trim()})");
    }

    private static string SafeRead(string path)
    {
        try
        {
            return File.ReadAllText(path);
        }
        catch (IOException)
        {
            return string.Empty;
        }
    }

    [Fact]
    public void A_disposable_is_made_per_call_from_a_disposable_template_and_removed_after()
    {
        (int status, string output) = _system.Tool("qvm-run", "--dispvm=default-dvm", "-p", "hostname; qubesdb-read /name 2>/dev/null; echo done");
        Assert.True(status == 0, output);
        Assert.StartsWith("disp", output, StringComparison.Ordinal);
        string disp = output.Split('\n')[0];
        Assert.DoesNotContain(disp, _system.Tool("qvm-ls", "--raw-list").Output, StringComparison.Ordinal);
        Assert.DoesNotContain(disp, File.ReadAllText(Path.Combine(_system.State, "qubes.xml")), StringComparison.Ordinal);
        Assert.False(Directory.Exists(Path.Combine(_system.State, "vm", disp)));
        (status, output) = _system.Tool("qvm-run", "--dispvm=work", "--service", "qubes.VMShell");
        Assert.Equal(255, status);
        Assert.Contains("@dispvm:work: Refusing to create DispVM out of this AppVM, because template_for_dispvms=False", output, StringComparison.Ordinal);
    }

    [Fact]
    public void A_VM_to_VM_call_by_either_client_is_handed_over_to_the_agent()
    {
        File.WriteAllText(Path.Combine(_system.State, "policy.d", "20-vm-to-vm.policy"), "qubes.VMShell  *  work  personal  allow\n");
        string native = Path.Combine(_system.Bin, "qrexec-client-vm");
        // the C client on PATH, then the native C# client, then a call with a local program; each
        // writes to qvm-run's output (a socket), which the shell writes to again after the call:
        // the end of the remote output closes the client's copy, as upstream's does, and does not
        // shut the shell's socket down
        (int status, string output) = _system.Run("work", string.Join("; ",
            "echo 'echo plain; exit 3' | qrexec-client-vm personal qubes.VMShell; echo \"status $?\"",
            $"echo 'echo csharp; exit 4' | {native} personal qubes.VMShell; echo \"status $?\"",
            "qrexec-client-vm personal qubes.VMShell /bin/sh -c 'echo \"echo local; exit 5\"; cat > /tmp/local.out'; s=$?; cat /tmp/local.out; echo \"status $s\""));
        Assert.True(status == 0, output);
        Assert.Equal("plain\nstatus 3\ncsharp\nstatus 4\nlocal\nstatus 5\n", output);
    }

    [Fact]
    public void A_management_qube_manages_only_the_qubes_it_created()
    {
        Assert.Equal(0, _system.Tool("qvm-create", "admin-q", "-l", "green").Status);
        File.WriteAllText(Path.Combine(_system.State, "policy.d", "20-admin-q.policy"), string.Join('\n',
            "admin.vm.Create.AppVM  *  admin-q  @adminvm                 allow  target=dom0",
            "admin.vm.List          *  admin-q  @adminvm                 allow  target=dom0",
            "admin.label.List       *  admin-q  @adminvm                 allow  target=dom0",
            "admin.vm.List          *  admin-q  @tag:created-by-admin-q  allow  target=dom0",
            "admin.vm.property.Get  *  admin-q  @tag:created-by-admin-q  allow  target=dom0",
            "admin.vm.property.Set  *  admin-q  @tag:created-by-admin-q  allow  target=dom0",
            "admin.vm.property.List *  admin-q  @tag:created-by-admin-q  allow  target=dom0",
            "") + "\n");
        (int status, string output) = _system.Run("admin-q", "qvm-create child -l red && qvm-prefs child label orange && qvm-prefs child label && qvm-ls --raw-list");
        Assert.True(status == 0, output);
        Assert.Equal("orange\nchild\ndom0\n", output); // qvm-ls sorts by name
        (status, output) = _system.Run("admin-q", "printf red | qrexec-client-vm work admin.vm.property.Set+label; printf red | qrexec-client-vm @adminvm admin.vm.Remove");
        Assert.Equal(126, status);
        Assert.Contains("Request refused", output, StringComparison.Ordinal);
        Assert.Equal("blue\n", _system.Tool("qvm-prefs", "work", "label").Output);
        Assert.Equal("created-by-admin-q\n", _system.Tool("qvm-tags", "child").Output);
    }

    [Fact]
    public void A_qube_allowed_policy_EvalSimple_learns_the_policys_decision_and_a_qube_without_a_rule_is_refused()
    {
        File.WriteAllText(Path.Combine(_system.State, "policy.d", "20-eval-simple.policy"), string.Join('\n',
            "policy.EvalSimple  *  work    @adminvm  allow  target=dom0",
            "eval.Simple        *  work    personal  allow",
            "eval.Simple        *  @anyvm  @anyvm    deny",
            ""));
        // the service is a socket of the policy daemon among dom0's qrexec services
        Assert.True(File.Exists(Path.Combine(_system.State, "dom0", "rpc", "policy.EvalSimple")));
        (int Status, string Output) Ask(string qube, string source, string target)
            => _system.Run(qube, $"printf '{source}\\0{target}' | qrexec-client-vm dom0 policy.EvalSimple+eval.Simple");
        (int status, string output) = Ask("work", "work", "personal");
        Assert.True(status == 0, output);
        Assert.Equal("result=allow\n", output);
        Assert.Equal((0, "result=deny\n"), Ask("work", "work", "untrusted"));
        Assert.Equal((0, "result=deny\n"), Ask("work", "personal", "work")); // the rule allows one direction only
        (status, output) = Ask("personal", "work", "personal");
        Assert.Equal(126, status);
        Assert.Contains("Request refused", output, StringComparison.Ordinal);
        Assert.DoesNotContain("result=", output, StringComparison.Ordinal);
    }

    [Fact]
    public void Policy_EvalGUI_answers_only_about_qubes_the_caller_provides_GUI_to()
    {
        File.WriteAllText(Path.Combine(_system.State, "policy.d", "20-eval-gui.policy"), string.Join('\n',
            "policy.EvalGUI  *  untrusted  @adminvm   allow  target=dom0",
            "eval.Gui        *  work       personal   allow",
            "eval.Gui        *  @anyvm     @anyvm     deny",
            ""));
        (int Status, string Output) Ask(string source, string target)
            => _system.Run("untrusted", $"printf '{source}\\0{target}' | qrexec-client-vm dom0 policy.EvalGUI+eval.Gui");
        Assert.Equal((0, string.Empty), Ask("work", "personal")); // untrusted is no GUI qube of theirs: no answer
        try
        {
            foreach (string qube in (string[])["work", "personal"])
            {
                Assert.Equal(0, _system.Tool("qvm-tags", qube, "add", "guivm-untrusted").Status);
            }
            Assert.Equal((0, "result=allow\n"), Ask("work", "personal"));
            Assert.Equal((0, "result=deny\n"), Ask("personal", "work"));
            Assert.Equal((0, string.Empty), Ask("work", "untrusted")); // untrusted carries no guivm-untrusted tag
        }
        finally
        {
            foreach (string qube in (string[])["work", "personal"])
            {
                _system.Tool("qvm-tags", qube, "del", "guivm-untrusted");
            }
        }
    }

    [Fact]
    public void Events_stream_the_changes_to_a_subscriber()
    {
        using Socket events = AdminEvents.Subscribe(Path.Combine(_system.State, "run", "qubesd.sock"));
        System.Threading.Thread.Sleep(1500); // a while without events: the half-closed subscriber stays subscribed
        Assert.Equal(0, _system.Tool("qvm-prefs", "work", "memory", "512").Status);
        // events of the other tests' qubes (a stop noticed late) may come first
        string frame;
        do
        {
            frame = AdminEvents.Receive(events, "\0\0");
        }
        while (frame.Length > 0 && !frame.Contains("property-set:memory", StringComparison.Ordinal));
        Assert.Equal("1\0work\0property-set:memory\0name\0memory\0newvalue\0512\0oldvalue\0400\0\0", frame);
        Assert.Equal(0, _system.Tool("qvm-prefs", "--default", "work", "memory").Status);
    }

    [Fact]
    public void The_supervisor_restarts_a_dom0_daemon_that_dies_and_qubes_status_shows_it()
    {
        Assert.Equal(0, _system.Run("work", "true").Status);
        foreach (string daemon in (string[])["qrexec-policy-daemon", "qubesd"])
        {
            string pid = _system.Pid(daemon);
            Assert.Equal(0, _system.Exec("kill", null, "-9", pid).Status);
            Assert.True(LoopbackSystem.Eventually(() =>
                _system.Tool("qubes", "status").Output.Contains($"{daemon,-22}running (pid ", StringComparison.Ordinal)
                && _system.Pid(daemon) != pid, 30_000), $"{daemon} did not come back");
            Assert.Contains($"{daemon} (pid {pid}) was killed by signal 9; restarting it (restart 1)", File.ReadAllText(Path.Combine(_system.State, "log", "supervisor.log")), StringComparison.Ordinal);
            Assert.Contains("restarted 1 time)", _system.Tool("qubes", "status").Output, StringComparison.Ordinal);
            Assert.Equal("ok\n", _system.Run("work", "echo ok").Output); // the system serves again (after qubesd's death, work starts anew)
        }
    }
}
