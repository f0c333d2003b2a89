using System;
using System.Collections.Generic;
using System.IO;
using System.Linq;
using System.Text;
using System.Threading;
using Qubes.Core.Api;
using Xunit;

namespace Qubes.Core.Tests;

/// <summary>qvm-start, qvm-shutdown, qvm-kill, qvm-remove and qvm-clone against a scripted qubesd.</summary>
public sealed class LifecycleTests
{
    private const string Qubes =
        "dom0 class=AdminVM state=Running\n" +
        "debian-12 class=TemplateVM state=Halted\n" +
        "disp7 class=DispVM state=Running\n" +
        "sys-firewall class=AppVM state=Running\n" +
        "sys-net class=AppVM state=Running\n" +
        "work class=AppVM state=Halted\n";

    // argparse's layout in 80 columns: the options wrapped after the name, the positional arguments on a line of their own
    private const string StartUsage = """
        usage: qvm-start [--verbose] [--quiet] [--help] [--all] [--exclude EXCLUDE]
                         [--skip-if-running]
                         [VMNAME ...]

        """;
    private const string CloneUsage = """
        usage: qvm-clone [--verbose] [--quiet] [--help] [--class CLS]
                         [--ignore-errors] [-P POOL | -p VOLUME=POOL]
                         VMNAME NEWVM

        """;

    private readonly FakeQubesd _qubesd = new();
    private readonly ManualTime _time = new();

    public LifecycleTests() => _qubesd.On("dom0", "admin.vm.List", "", Ok(Qubes));

    private (int Status, string Stdout, string Stderr) Answer(string stdin, string prog, params string[] args)
    {
        StringWriter stdout = new(), stderr = new();
        int status = Lifecycle.Run(prog, args, new AdminClient(_qubesd), new StringReader(stdin), stdout, stderr, _time);
        return (status, stdout.ToString(), stderr.ToString());
    }

    private (int Status, string Stdout, string Stderr) Run(string prog, params string[] args) => Answer("", prog, args);

    private static byte[] Ok(string content) => Encoding.UTF8.GetBytes("0\0" + content);

    private static byte[] Error(string type, string message) => Encoding.UTF8.GetBytes($"2\0{type}\0\0{message}\0");

    private static byte[] State(string power) => Ok($"mem=0 mem_static_max=0 cputime=0 power_state={power}");

    private void Halted(params string[] qubes)
    {
        foreach (string q in qubes)
        {
            _qubesd.On(q, "admin.vm.CurrentState", "", State("Halted"));
        }
    }

    private void Running(params string[] qubes)
    {
        foreach (string q in qubes)
        {
            _qubesd.On(q, "admin.vm.CurrentState", "", State("Running"));
        }
    }

    [Fact]
    public void Start_starts_each_halted_qube_in_the_order_given()
    {
        Halted("work", "sys-net");
        _qubesd.On("work", "admin.vm.Start", "", Ok(""));
        _qubesd.On("sys-net", "admin.vm.Start", "", Ok(""));

        Assert.Equal((0, "", ""), Run("qvm-start", "work", "sys-net"));
        Assert.Equal(
            ["dom0 admin.vm.List", "work admin.vm.CurrentState", "work admin.vm.Start", "sys-net admin.vm.CurrentState", "sys-net admin.vm.Start"],
            _qubesd.Calls);
    }

    [Fact]
    public void Start_of_a_running_qube_is_an_error_that_stops_the_tool_unless_skipped()
    {
        Running("sys-net");
        Halted("work");
        _qubesd.On("work", "admin.vm.Start", "", Ok(""));

        Assert.Equal((1, "", "domain sys-net is already running\n"), Run("qvm-start", "sys-net", "work"));
        Assert.DoesNotContain(_qubesd.Calls, static c => c.EndsWith("admin.vm.Start", StringComparison.Ordinal));

        _qubesd.Calls.Clear();
        Assert.Equal((0, "", ""), Run("qvm-start", "--skip-if-running", "sys-net", "work"));
        Assert.Equal(["dom0 admin.vm.List", "sys-net admin.vm.CurrentState", "work admin.vm.CurrentState", "work admin.vm.Start"], _qubesd.Calls);
    }

    [Fact]
    public void Start_failure_is_printed_and_the_other_qubes_still_start()
    {
        Halted("work", "sys-net");
        _qubesd.On("work", "admin.vm.Start", "", Error("QubesMemoryError", "Not enough memory to start domain 'work'"));
        _qubesd.On("sys-net", "admin.vm.Start", "", Ok(""));

        Assert.Equal((1, "", "Not enough memory to start domain 'work'\n"), Run("qvm-start", "work", "sys-net"));
        Assert.Contains("sys-net admin.vm.Start", _qubesd.Calls);
    }

    [Fact]
    public void Start_all_takes_every_qube_but_dom0_less_the_excluded()
    {
        Halted("debian-12", "disp7", "sys-firewall", "sys-net", "work");
        foreach (string q in new[] { "debian-12", "disp7", "sys-firewall", "sys-net", "work" })
        {
            _qubesd.On(q, "admin.vm.Start", "", Ok(""));
        }

        Assert.Equal((0, "", ""), Run("qvm-start", "--all", "--exclude", "work", "--exclude=disp7"));
        Assert.Equal(["debian-12", "sys-firewall", "sys-net"],
            _qubesd.Calls.Where(static c => c.EndsWith(" admin.vm.Start", StringComparison.Ordinal)).Select(static c => c.Split(' ')[0]));
    }

    [Fact]
    public void Start_usage_errors()
    {
        Assert.Equal((2, "", StartUsage + "qvm-start: error: no such domain: 'ghost'\n"), Run("qvm-start", "work", "ghost"));
        Assert.Equal((2, "", StartUsage + "qvm-start: error: one of the arguments --all VMNAME is required\n"), Run("qvm-start"));
        Assert.Equal((2, "", StartUsage + "qvm-start: error: --exclude can only be used with --all\n"), Run("qvm-start", "--exclude", "work", "sys-net"));
        Assert.Equal((2, "", StartUsage + "qvm-start: error: argument VMNAME: not allowed with argument --all\n"), Run("qvm-start", "--all", "work"));
        Assert.Equal((2, "", StartUsage + "qvm-start: error: argument --all: not allowed with argument VMNAME\n"), Run("qvm-start", "work", "--all"));
        Assert.Equal((2, "", StartUsage + "qvm-start: error: unrecognized arguments: --drive=x\n"), Run("qvm-start", "--drive=x", "work"));
        Assert.Equal((2, "", StartUsage + "qvm-start: error: unrecognized arguments: sys-net\n"), Run("qvm-start", "work", "-q", "sys-net"));
        Assert.Equal((2, "", StartUsage + "qvm-start: error: argument --exclude: expected one argument\n"), Run("qvm-start", "--all", "--exclude"));
        Assert.DoesNotContain(_qubesd.Calls, static c => c.EndsWith("admin.vm.Start", StringComparison.Ordinal));
        (int status, string help, string stderr) = Run("qvm-start", "--help");
        Assert.Equal((0, Lifecycle.CommandFor("qvm-start").Help, ""), (status, help, stderr));
        Assert.StartsWith(StartUsage + "\nstart a domain\n", help, StringComparison.Ordinal);
    }

    [Fact]
    public void Shutdown_without_wait_asks_once_and_ignores_halted_qubes()
    {
        _qubesd.On("work", "admin.vm.Shutdown", "", Error("QubesVMNotStartedError", "Domain is powered off: 'work'"));
        _qubesd.On("sys-net", "admin.vm.Shutdown", "", Ok(""));

        Assert.Equal((0, "", ""), Run("qvm-shutdown", "work", "sys-net"));
        Assert.Equal(["dom0 admin.vm.List", "sys-net admin.vm.Shutdown", "work admin.vm.Shutdown"], _qubesd.Calls);
    }

    [Fact]
    public void Shutdown_force_and_all_send_the_force_argument()
    {
        _qubesd.On("sys-net", "admin.vm.Shutdown", "force", Ok(""));
        Assert.Equal((0, "", ""), Run("qvm-shutdown", "--force", "sys-net"));
        Assert.Equal("sys-net admin.vm.Shutdown+force", _qubesd.Calls[^1]);

        foreach (string q in new[] { "debian-12", "disp7", "sys-firewall", "sys-net", "work" })
        {
            _qubesd.On(q, "admin.vm.Shutdown", "force", Ok(""));
            _qubesd.On(q, "admin.vm.Shutdown", "", Ok(""));
        }
        _qubesd.Calls.Clear();
        Assert.Equal(0, Run("qvm-shutdown", "--all").Status);
        Assert.Equal(5, _qubesd.Calls.Count(static c => c.EndsWith("admin.vm.Shutdown+force", StringComparison.Ordinal)));
        _qubesd.Calls.Clear();
        Assert.Equal(0, Run("qvm-shutdown", "--all", "--exclude", "work").Status);
        Assert.Equal(4, _qubesd.Calls.Count(static c => c.EndsWith("admin.vm.Shutdown", StringComparison.Ordinal)));
        Assert.DoesNotContain(_qubesd.Calls, static c => c.Contains("force", StringComparison.Ordinal) || c.StartsWith("work ", StringComparison.Ordinal));
    }

    [Fact]
    public void Shutdown_refused_is_logged_and_counted_in_the_exit_code()
    {
        _qubesd.On("sys-net", "admin.vm.Shutdown", "", Error("QubesVMInUseError", "There are other VMs connected to this VM: sys-firewall"));
        _qubesd.On("work", "admin.vm.Shutdown", "", Error("QubesVMError", "boom"));

        Assert.Equal((2, "", "sys-net: Shutdown error: There are other VMs connected to this VM: sys-firewall\nwork: Shutdown error: boom\nqvm-shutdown: error: Failed to shut down: sys-net, work\n"),
            Run("qvm-shutdown", "work", "sys-net"));
        Assert.Equal((2, "", "Shutdown error: There are other VMs connected to this VM: sys-firewall\nShutdown error: boom\nqvm-shutdown: error: Failed to shut down: sys-net, work\n"),
            Run("qvm-shutdown", "-q", "work", "sys-net"));
    }

    [Fact]
    public void Shutdown_wait_polls_the_power_state_until_halted()
    {
        _qubesd.On("sys-net", "admin.vm.Shutdown", "", Ok(""));
        _qubesd.On("sys-net", "admin.vm.CurrentState", "", State("Running"), State("Halting"), State("Halted"));

        Assert.Equal((0, "", ""), Run("qvm-shutdown", "--wait", "sys-net"));
        Assert.Equal(
            ["dom0 admin.vm.List", "sys-net admin.vm.Shutdown", "sys-net admin.vm.CurrentState", "sys-net admin.vm.CurrentState", "sys-net admin.vm.CurrentState", "sys-net admin.vm.CurrentState"],
            _qubesd.Calls);
        Assert.Equal(TimeSpan.FromSeconds(0.2), _time.Elapsed);
    }

    [Fact]
    public void Shutdown_wait_kills_what_is_still_running_after_the_timeout()
    {
        _qubesd.On("sys-net", "admin.vm.Shutdown", "", Ok(""));
        Running("sys-net");
        _qubesd.On("sys-net", "admin.vm.Kill", "", Ok(""));
        _qubesd.AfterCall = (dest, method) =>
        {
            if (method == "admin.vm.Kill")
            {
                Halted(dest);
            }
        };

        Assert.Equal((0, "", "app: Killing remaining qubes: sys-net\n"), Run("qvm-shutdown", "--wait", "--timeout", "1.5", "sys-net"));
        Assert.Equal(TimeSpan.FromSeconds(1.5), _time.Elapsed);
        Assert.Equal(["sys-net admin.vm.CurrentState", "sys-net admin.vm.Kill", "sys-net admin.vm.CurrentState"], _qubesd.Calls.TakeLast(3));
        Assert.Equal(18, _qubesd.Calls.Count(static c => c == "sys-net admin.vm.CurrentState"));
    }

    [Fact]
    public void Shutdown_wait_default_timeout_is_sixty_seconds()
    {
        _qubesd.On("work", "admin.vm.Shutdown", "", Ok(""));
        Running("work");
        _qubesd.On("work", "admin.vm.Kill", "", Ok(""));

        Assert.Equal((1, "", "app: Killing remaining qubes: work\nqvm-shutdown: error: Failed to shut down: work\n"), Run("qvm-shutdown", "--wait", "work"));
        Assert.Equal(TimeSpan.FromSeconds(60), _time.Elapsed);
    }

    [Fact]
    public void Shutdown_wait_retries_a_qube_in_use_once_its_users_are_down()
    {
        _qubesd.On("sys-net", "admin.vm.Shutdown", "", Error("QubesVMInUseError", "There are other VMs connected to this VM: sys-firewall"), Ok(""));
        _qubesd.On("sys-firewall", "admin.vm.Shutdown", "", Ok(""));
        Halted("sys-firewall", "sys-net");

        Assert.Equal((0, "", ""), Run("qvm-shutdown", "--wait", "sys-net", "sys-firewall"));
        Assert.Equal(
            ["dom0 admin.vm.List",
             "sys-firewall admin.vm.Shutdown", "sys-net admin.vm.Shutdown", "sys-firewall admin.vm.CurrentState",
             "sys-net admin.vm.Shutdown", "sys-net admin.vm.CurrentState",
             "sys-net admin.vm.CurrentState", "sys-firewall admin.vm.CurrentState"],
            _qubesd.Calls);
    }

    [Fact]
    public void Shutdown_wait_accepts_a_disposable_that_is_gone()
    {
        _qubesd.On("disp7", "admin.vm.Shutdown", "", Ok(""));
        _qubesd.On("disp7", "admin.vm.CurrentState", "", Error("QubesVMNotFoundError", "No such domain: 'disp7'"));

        Assert.Equal((0, "", ""), Run("qvm-shutdown", "--wait", "disp7"));
    }

    [Fact]
    public void Shutdown_kill_failure_and_bad_timeout()
    {
        _qubesd.On("work", "admin.vm.Shutdown", "", Ok(""));
        Running("work");
        _qubesd.On("work", "admin.vm.Kill", "", Error("QubesVMError", "Failed to kill"));

        Assert.Equal((1, "", "qvm-shutdown: error: Failed to kill\n"), Run("qvm-shutdown", "-q", "--wait", "--timeout", "0", "work"));
        Assert.EndsWith("qvm-shutdown: error: argument --timeout: invalid float value: 'soon'\n", Run("qvm-shutdown", "--timeout", "soon", "work").Stderr, StringComparison.Ordinal);
        Assert.Equal(2, Run("qvm-shutdown", "--timeout", "soon", "work").Status);
    }

    [Fact]
    public void Kill_ignores_halted_qubes_and_reports_failures()
    {
        _qubesd.On("work", "admin.vm.Kill", "", Error("QubesVMNotStartedError", "Domain is powered off: 'work'"));
        _qubesd.On("sys-net", "admin.vm.Kill", "", Error("QubesVMError", "xl failed"));
        _qubesd.On("sys-firewall", "admin.vm.Kill", "", Ok(""));

        Assert.Equal((1, "", "Failed to kill 'sys-net': xl failed\n"), Run("qvm-kill", "work", "sys-net", "sys-firewall"));
        Assert.Equal(["dom0 admin.vm.List", "work admin.vm.Kill", "sys-net admin.vm.Kill", "sys-firewall admin.vm.Kill"], _qubesd.Calls);

        _qubesd.Calls.Clear();
        Assert.Equal((0, "", ""), Run("qvm-kill", "work", "sys-firewall"));
        Assert.Equal(2, Run("qvm-kill", "nope").Status);
    }

    [Fact]
    public void Remove_asks_before_removing()
    {
        _qubesd.On("work", "admin.vm.Remove", "", Ok(""));
        _qubesd.On("debian-12", "admin.vm.Remove", "", Ok(""));

        Assert.Equal((0, "This will completely remove the selected VM(s)...\n  work\n  debian-12\nAre you sure? [y/N] ", ""), Answer("y\n", "qvm-remove", "work", "debian-12"));
        Assert.Equal(["dom0 admin.vm.List", "work admin.vm.Remove", "debian-12 admin.vm.Remove"], _qubesd.Calls);

        _qubesd.Calls.Clear();
        Assert.Equal((1, "This will completely remove the selected VM(s)...\n  work\nAre you sure? [y/N] Remove cancelled.\n", ""), Answer("n\n", "qvm-remove", "work"));
        Assert.Equal(1, Answer("", "qvm-remove", "work").Status);
        Assert.Equal(1, Answer("yes\n", "qvm-remove", "work").Status);
        Assert.DoesNotContain("work admin.vm.Remove", _qubesd.Calls);

        Assert.Equal((0, "", ""), Run("qvm-remove", "-f", "work"));
        Assert.Contains("work admin.vm.Remove", _qubesd.Calls);
    }

    [Fact]
    public void Remove_refused_in_use_lists_the_users_and_stops()
    {
        _qubesd.On("debian-12", "admin.vm.Remove", "", Error("QubesVMInUseError", "Domain is in use: 'debian-12';  see 'journalctl -u qubesd -e' in dom0 for details"));
        _qubesd.On("work", "admin.vm.Remove", "", Ok(""));
        _qubesd.On("dom0", "admin.property.GetAll", "", Ok("clockvm default=False type=vm sys-net\ndefault_template default=False type=vm debian-12\nupdatevm default=False type=vm debian-12\n"));
        _qubesd.On("dom0", "admin.vm.property.GetAll", "", Ok("default_dispvm default=True type=vm \n"));
        _qubesd.On("disp7", "admin.vm.property.GetAll", "", Ok("netvm default=True type=vm sys-firewall\ntemplate default=False type=vm debian-12\n"));
        _qubesd.On("sys-firewall", "admin.vm.property.GetAll", "", Ok("netvm default=False type=vm sys-net\ntemplate default=True type=vm debian-12\n"));
        _qubesd.On("sys-net", "admin.vm.property.GetAll", "", Ok("label default=False type=label red\ntemplate default=False type=vm debian-12\n"));
        _qubesd.On("work", "admin.vm.property.GetAll", "", Ok("default_dispvm default=False type=vm debian-12\nnetvm default=False type=vm \n"));

        Assert.Equal((1,
            "VM debian-12 cannot be removed. It is in use as:\n - global property default_template\n - global property updatevm\n - template for disp7\n - template for sys-net\n - default_dispvm for work\n",
            "qvm-remove: error: Domain is in use: 'debian-12';  see 'journalctl -u qubesd -e' in dom0 for details\n"),
            Run("qvm-remove", "--force", "debian-12", "work"));
        Assert.DoesNotContain("work admin.vm.Remove", _qubesd.Calls);

        _qubesd.On("work", "admin.vm.Remove", "", Error("QubesException", "VM installed by package manager: work"));
        Assert.Equal((1, "", "qvm-remove: error: VM installed by package manager: work\n"), Run("qvm-remove", "-f", "work"));
    }

    [Fact]
    public void Remove_never_takes_dom0_and_all_needs_the_long_answer()
    {
        Assert.Equal((1, "", "Domain 'dom0' cannot be removed.\n"), Run("qvm-remove", "-f", "dom0"));
        Assert.Equal((1, "WARNING!!! Removing all domains may leave your system in an unrecoverable state!\nAre you certain? [N/IKNOWWHATIAMDOING]Remove cancelled.\n", ""),
            Answer("y\n", "qvm-remove", "--all"));
        Assert.DoesNotContain(_qubesd.Calls, static c => c.EndsWith("admin.vm.Remove", StringComparison.Ordinal));

        foreach (string q in new[] { "debian-12", "disp7", "sys-firewall", "sys-net" })
        {
            _qubesd.On(q, "admin.vm.Remove", "", Ok(""));
        }
        Assert.Equal(0, Answer("y\n", "qvm-remove", "--all", "--exclude", "work").Status);
        Assert.Equal(4, _qubesd.Calls.Count(static c => c.EndsWith("admin.vm.Remove", StringComparison.Ordinal)));
    }

    [Fact]
    public void Remove_through_the_real_admin_api()
    {
        QubesApp app = ModelTests.System();
        AdminClient client = new(new InProcessTransport(new AdminApi(app)));
        StringWriter stdout = new(), stderr = new();

        Assert.Equal(1, Lifecycle.Run("qvm-remove", ["--force", "debian-12"], client, new StringReader(""), stdout, stderr));
        Assert.Equal("VM debian-12 cannot be removed. It is in use as:\n - template for default-dvm\n - template for sys-net\n - template for work\n", stdout.ToString());
        Assert.StartsWith("qvm-remove: error: ", stderr.ToString(), StringComparison.Ordinal);
        Assert.NotNull(app.Find("debian-12"));

        stdout = new();
        stderr = new();
        Assert.Equal(0, Lifecycle.Run("qvm-remove", ["work"], client, new StringReader("y\n"), stdout, stderr));
        Assert.Null(app.Find("work"));
        Assert.Equal("", stderr.ToString());
    }

    private void CloneSource(string features = "menu-items\n")
    {
        _qubesd.On("work", "admin.vm.property.GetAll", "", Ok(
            "label default=False type=label blue\n" +
            "memory default=False type=int 800\n" +
            "name default=False type=str work\n" +
            "netvm default=False type=vm \n" +
            "qid default=False type=int 7\n" +
            "template default=False type=vm debian-12\n" +
            "uuid default=False type=str 6f1c1ab4-6f7e-4b5e-9f0e-0a6f1a7b5c3d\n" +
            "vcpus default=True type=int 2\n" +
            "kernelopts default=False type=str a\\\\b\\nc\n"));
        _qubesd.On("work", "admin.vm.tag.List", "", Ok("created-by-dom0\nproject-x\n"));
        _qubesd.On("work", "admin.vm.feature.List", "", Ok(features));
        _qubesd.On("work", "admin.vm.feature.Get", "menu-items", Ok("firefox.desktop"));
        _qubesd.On("work2", "admin.vm.volume.List", "", Ok("root\nvolatile\nprivate\nkernel\n"));
        foreach ((string volume, bool persistent) in new[] { ("root", false), ("volatile", false), ("private", true), ("kernel", false) })
        {
            _qubesd.On("work2", "admin.vm.volume.Info", volume, Ok($"pool=default\nvid=x\nrw=True\nsave_on_stop={persistent}\nsnap_on_start={!persistent}\n"));
        }
        _qubesd.On("work", "admin.vm.volume.CloneFrom", "private", Ok("c0ffee"));
        _qubesd.On("work2", "admin.vm.volume.CloneTo", "private", Ok(""));
        _qubesd.On("work2", "admin.vm.Remove", "", Ok(""));
        _qubesd.On("dom0", "admin.vm.Create.AppVM", "debian-12", Ok(""));
        foreach (string call in new[] { "memory", "netvm", "kernelopts" })
        {
            _qubesd.On("work2", "admin.vm.property.Set", call, Ok(""));
        }
        _qubesd.On("work2", "admin.vm.tag.Set", "project-x", Ok(""));
        _qubesd.On("work2", "admin.vm.feature.Set", "menu-items", Ok(""));
    }

    [Fact]
    public void Clone_creates_the_copy_with_properties_tags_features_and_persistent_volumes()
    {
        CloneSource();

        Assert.Equal((0, "", "work2: Cloning private volume\n"), Run("qvm-clone", "work", "work2"));
        Assert.Equal(
            ["dom0 admin.vm.List",
             "work admin.vm.property.GetAll",
             "dom0 admin.vm.Create.AppVM+debian-12 <- name=work2 label=blue",
             "work2 admin.vm.property.Set+memory <- 800",
             "work2 admin.vm.property.Set+netvm",
             "work2 admin.vm.property.Set+kernelopts <- a\\b\nc",
             "work admin.vm.tag.List",
             "work2 admin.vm.tag.Set+project-x",
             "work admin.vm.feature.List",
             "work admin.vm.feature.Get+menu-items",
             "work2 admin.vm.feature.Set+menu-items <- firefox.desktop",
             "work2 admin.vm.volume.List",
             "work2 admin.vm.volume.Info+kernel",
             "work2 admin.vm.volume.Info+private",
             "work admin.vm.volume.CloneFrom+private",
             "work2 admin.vm.volume.CloneTo+private <- c0ffee",
             "work2 admin.vm.volume.Info+root",
             "work2 admin.vm.volume.Info+volatile"],
            _qubesd.Calls);
        Assert.Equal((0, "", ""), Run("qvm-clone", "-q", "work", "work2"));
    }

    [Fact]
    public void Clone_into_pools_and_of_a_template()
    {
        CloneSource();
        _qubesd.On("dom0", "admin.vm.CreateInPool.AppVM", "debian-12", Ok(""));
        Assert.Equal(0, Run("qvm-clone", "-q", "-P", "vm-pool", "work", "work2").Status);
        Assert.Contains("dom0 admin.vm.CreateInPool.AppVM+debian-12 <- name=work2 label=blue pool=vm-pool", _qubesd.Calls);
        Assert.Equal(0, Run("qvm-clone", "-q", "work", "work2", "--pool", "root=b", "-pprivate=a").Status);
        Assert.Contains("dom0 admin.vm.CreateInPool.AppVM+debian-12 <- name=work2 label=blue pool:private=a pool:root=b", _qubesd.Calls);
        _qubesd.On("dom0", "admin.vm.Create.StandaloneVM", "debian-12", Ok(""));
        Assert.Equal(0, Run("qvm-clone", "-q", "-C", "StandaloneVM", "work", "work2").Status);
        Assert.Contains("dom0 admin.vm.Create.StandaloneVM+debian-12 <- name=work2 label=blue", _qubesd.Calls);

        _qubesd.On("debian-12", "admin.vm.property.GetAll", "", Ok("label default=False type=label black\ninstalled_by_rpm default=False type=bool True\n"));
        _qubesd.On("debian-12", "admin.vm.tag.List", "", Ok(""));
        _qubesd.On("debian-12", "admin.vm.feature.List", "", Ok(""));
        _qubesd.On("dom0", "admin.vm.Create.TemplateVM", "", Ok(""));
        _qubesd.On("my-template", "admin.vm.volume.List", "", Ok(""));
        _qubesd.Calls.Clear();
        Assert.Equal((0, "", ""), Run("qvm-clone", "debian-12", "my-template"));
        Assert.Contains("dom0 admin.vm.Create.TemplateVM <- name=my-template label=black", _qubesd.Calls);
        Assert.DoesNotContain(_qubesd.Calls, static c => c.Contains("property.Set", StringComparison.Ordinal));
    }

    [Fact]
    public void Clone_removes_the_new_qube_when_copying_a_property_fails()
    {
        CloneSource();
        _qubesd.On("work2", "admin.vm.property.Set", "memory", Error("QubesPropertyValueError", "Invalid value 800 for property 'memory' of work2"));

        Assert.Equal((1, "", "work2: Failed to set memory property: Invalid value 800 for property 'memory' of work2\nqvm-clone: error: Invalid value 800 for property 'memory' of work2\n"),
            Run("qvm-clone", "work", "work2"));
        Assert.Equal(["work2 admin.vm.property.Set+memory <- 800", "work2 admin.vm.Remove"], _qubesd.Calls.TakeLast(2));
    }

    [Fact]
    public void Clone_removes_the_new_qube_when_a_volume_does_not_copy()
    {
        CloneSource();
        _qubesd.On("work2", "admin.vm.volume.CloneTo", "private", Error("StoragePoolException", "disk full"));

        Assert.Equal((1, "", "work2: Cloning private volume\nqvm-clone: error: disk full\n"), Run("qvm-clone", "work", "work2"));
        Assert.Equal(["work2 admin.vm.volume.CloneTo+private <- c0ffee", "work2 admin.vm.Remove"], _qubesd.Calls.TakeLast(2));
    }

    [Fact]
    public void Clone_ignore_errors_logs_metadata_failures_and_keeps_going()
    {
        CloneSource();
        _qubesd.On("work2", "admin.vm.tag.Set", "project-x", Error("QubesException", "no tags today"));

        Assert.Equal((0, "", "work2: Failed to add project-x tag: no tags today\nwork2: Cloning private volume\n"), Run("qvm-clone", "--ignore-errors", "work", "work2"));
        Assert.DoesNotContain("work2 admin.vm.Remove", _qubesd.Calls);
        Assert.Contains("work2 admin.vm.volume.CloneTo+private <- c0ffee", _qubesd.Calls);
    }

    [Fact]
    public void Clone_creation_refused_leaves_nothing_to_remove()
    {
        CloneSource();
        _qubesd.On("dom0", "admin.vm.Create.AppVM", "debian-12", Error("QubesVMAlreadyExistsError", "Qube already exists: work2"));

        Assert.Equal((1, "", "qvm-clone: error: Qube already exists: work2\n"), Run("qvm-clone", "work", "work2"));
        Assert.Equal("dom0 admin.vm.Create.AppVM+debian-12 <- name=work2 label=blue", _qubesd.Calls[^1]);
    }

    [Fact]
    public void Clone_usage_errors()
    {
        Assert.Equal((2, "", CloneUsage + "qvm-clone: error: the following arguments are required: NEWVM\n"), Run("qvm-clone", "work"));
        Assert.Equal((2, "", CloneUsage + "qvm-clone: error: the following arguments are required: VMNAME, NEWVM\n"), Run("qvm-clone"));
        Assert.Equal((2, "", CloneUsage + "qvm-clone: error: no such domain: 'ghost'\n"), Run("qvm-clone", "ghost", "x"));
        Assert.Equal((2, "", CloneUsage + "qvm-clone: error: unrecognized arguments: z\n"), Run("qvm-clone", "work", "x", "z"));
        Assert.Equal((2, "", CloneUsage + "qvm-clone: error: argument -p/--pool: not allowed with argument -P\n"), Run("qvm-clone", "-P", "a", "-p", "private=b", "work", "x"));
        Assert.Equal((2, "", CloneUsage + "qvm-clone: error: Pool argument must be of form: -p volume_name=pool_name\n"), Run("qvm-clone", "-p", "private", "work", "x"));
        Assert.Equal((2, "", CloneUsage + "qvm-clone: error: argument --class/-C: expected one argument\n"), Run("qvm-clone", "work", "x", "-C"));
        Assert.Equal((2, "", CloneUsage + "qvm-clone: error: unrecognized arguments: --x\n"), Run("qvm-clone", "--x", "work", "y"));
        Assert.EndsWith("qvm-remove: error: ambiguous option: --f could match --force-root, --force\n", Run("qvm-remove", "--f", "work").Stderr, StringComparison.Ordinal);
        Assert.DoesNotContain(_qubesd.Calls, static c => c.Contains("Create", StringComparison.Ordinal));
    }

    /// <summary>qubesd scripted per (destination, method, argument): replies in turn, the last one repeated; every call recorded.</summary>
    private sealed class FakeQubesd : IAdminTransport
    {
        private readonly Dictionary<string, Queue<byte[]>> _replies = new(StringComparer.Ordinal);

        public List<string> Calls { get; } = [];

        public Action<string, string>? AfterCall { get; set; }

        public void On(string destination, string method, string argument, params byte[][] replies)
            => _replies[$"{destination} {method}+{argument}"] = new Queue<byte[]>(replies);

        public byte[] Call(string method, string argument, string destination, byte[] payload)
        {
            string text = Encoding.UTF8.GetString(payload);
            Calls.Add($"{destination} {method}{(argument.Length > 0 ? "+" + argument : "")}{(text.Length > 0 ? " <- " + text : "")}");
            byte[] reply = _replies.TryGetValue($"{destination} {method}+{argument}", out Queue<byte[]>? queue)
                ? (queue.Count > 1 ? queue.Dequeue() : queue.Peek())
                : Error("ProtocolError", $"unexpected call {method}+{argument} to {destination}");
            AfterCall?.Invoke(destination, method);
            return reply;
        }
    }

    /// <summary>A clock that moves only when the tool sleeps: each timer fires at once and advances the time by its due time.</summary>
    private sealed class ManualTime : TimeProvider
    {
        private long _ticks;

        public TimeSpan Elapsed => TimeSpan.FromTicks(Interlocked.Read(ref _ticks));

        public override long TimestampFrequency => TimeSpan.TicksPerSecond;

        public override long GetTimestamp() => Interlocked.Read(ref _ticks);

        public override ITimer CreateTimer(TimerCallback callback, object? state, TimeSpan dueTime, TimeSpan period)
        {
            Interlocked.Add(ref _ticks, dueTime.Ticks);
            callback(state);
            return new Fired();
        }

        private sealed class Fired : ITimer
        {
            public bool Change(TimeSpan dueTime, TimeSpan period) => false;

            public void Dispose()
            {
            }

            public System.Threading.Tasks.ValueTask DisposeAsync() => default;
        }
    }
}
