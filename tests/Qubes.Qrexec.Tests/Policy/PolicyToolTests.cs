using System;
using System.Collections.Concurrent;
using System.Diagnostics;
using System.IO;
using System.Linq;
using System.Text;
using Qubes.Qrexec.Policy;
using Xunit;

namespace Qubes.Qrexec.Tests.Policy;

/// <summary>qrexec-policy-exec, qrexec-policy-daemon and qubes-policy on the worked example's system and policy.</summary>
[Collection(PolicyProcessCollection.Name)]
public sealed class PolicyToolTests : IDisposable
{
    private const string R1Allow = "user=DEFAULT\nresult=allow\ntarget=work-email\ntarget_uuid=uuid:22222222-2222-4222-8222-222222222222\nautostart=True\nrequested_target=work-email";

    private static readonly TimeSpan s_timeout = TimeSpan.FromSeconds(10);

    private readonly TempDirectory _dir = new();

    public PolicyToolTests()
    {
        Directory.CreateDirectory(PolicyDir);
        File.WriteAllText(Path.Combine(PolicyDir, "50-example.policy"), WorkedExample.Policy);
        File.WriteAllText(SystemInfo, WorkedExample.SystemJson);
    }

    private string PolicyDir => _dir.File("policy.d");

    private string SystemInfo => _dir.File("system.json");

    private string[] Paths => ["--policy-path", PolicyDir, "--runtime-policy-path", _dir.File("run"), "--legacy-policy-path", _dir.File("legacy"), "--system-info", SystemInfo];

    public void Dispose() => _dir.Dispose();

    private (int Status, string Stdout, string Stderr) Exec(params string[] args) => PolicyTool.Exec.Run([.. Paths, .. args]);

    private (int Status, string Stdout, string Stderr) QubesPolicy(string? stdin, params string[] args) => PolicyTool.QubesPolicy.Run([.. Paths, .. args], stdin);

    [Fact]
    public void Exec_prints_the_answer_lines_and_exits_0_only_when_allowed()
    {
        Assert.Equal((0, R1Allow + "\n"), Pick(Exec("--", "work", "work-email", "qubes.Filecopy")));
        (int status, string stdout, string stderr) = Exec("--", "work", "personal", "qubes.Filecopy");
        Assert.Equal((1, "result=deny\n"), (status, stdout));
        // the notification the GUI qube would show, in the log
        Assert.Contains("notify dom0: denied qubes.Filecopy from work to personal", stderr, StringComparison.Ordinal);
        Assert.Equal((0, "user=DEFAULT\nresult=allow\ntarget=dom0\nautostart=True\nrequested_target=@default\n"), Pick(Exec("work", "", "qubes.GetDate+x")));
    }

    [Fact]
    public void Exec_takes_upstreams_five_arguments_and_the_evaluation_modes()
    {
        Assert.Equal((0, R1Allow + "\n"), Pick(Exec("12", "work", "work-email", "qubes.Filecopy", "SOCKET12")));
        Assert.Equal((0, "result=allow\n"), Pick(Exec("--just-evaluate", "--", "work", "work-email", "qubes.Filecopy")));
        Assert.Equal((1, "result=deny\n"), Pick(Exec("--just-evaluate", "--", "personal", "work", "qubes.Filecopy")));
        // both modes: would the call be allowed if the user said yes to the target it asks for (policy.EvalSimple's question)
        Assert.Equal((0, "result=allow\n"), Pick(Exec("--just-evaluate", "--assume-yes-for-ask", "--", "personal", "work", "qubes.Filecopy")));
        Assert.Equal((1, "result=deny\n"), Pick(Exec("--just-evaluate", "--assume-yes-for-ask", "--", "personal", "", "qubes.Filecopy")));
        (int status, string stdout, _) = Exec("--assume-yes-for-ask", "--", "personal", "work", "qubes.Filecopy");
        Assert.Equal(0, status);
        Assert.Contains("\ntarget=work\n", stdout, StringComparison.Ordinal);
    }

    [Fact]
    public void Exec_denies_an_ask_when_there_is_no_terminal_to_prompt_on()
    {
        // setsid: no controlling terminal, as for a policy program started by a daemon
        using Process process = Process.Start(new ProcessStartInfo("setsid", [PolicyTool.Exec.Path, .. Paths, "--", "personal", "@default", "qubes.Filecopy"])
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            RedirectStandardInput = true,
        })!;
        string stdout = process.StandardOutput.ReadToEnd();
        string stderr = process.StandardError.ReadToEnd();
        Assert.True(process.WaitForExit(30000));
        Assert.Equal(1, process.ExitCode);
        Assert.Equal("result=deny\n", stdout);
        Assert.Contains("the user refused", stderr, StringComparison.Ordinal);
    }

    [Theory]
    [InlineData("work", "work-email")]
    [InlineData("--bogus", "a", "b", "c")]
    [InlineData("--policy-path")]
    public void Exec_refuses_bad_usage(params string[] args)
    {
        (int status, string stdout, string stderr) = PolicyTool.Exec.Run(args);
        Assert.Equal(2, status);
        Assert.Empty(stdout);
        Assert.Contains("usage:", stderr, StringComparison.Ordinal);
    }

    [Fact]
    public void Exec_with_a_broken_policy_denies_and_names_the_place()
    {
        File.WriteAllText(Path.Combine(PolicyDir, "10-broken.policy"), "# fine\nqubes.Filecopy * work\n");
        (int status, string stdout, string stderr) = Exec("--", "work", "work-email", "qubes.Filecopy");
        Assert.Equal(1, status);
        Assert.Equal("result=deny\n", stdout);
        Assert.Contains("10-broken.policy:2: wrong number of fields", stderr, StringComparison.Ordinal);
    }

    [Fact]
    public void Exec_is_the_policy_program_of_the_qrexec_daemons_client()
    {
        string[] variables = ["QREXEC_POLICY_DIR", "QREXEC_POLICY_RUNTIME_DIR", "QREXEC_POLICY_LEGACY_DIR", "QREXEC_SYSTEM_INFO"];
        string?[] saved = [.. variables.Select(Environment.GetEnvironmentVariable)];
        string[] values = [PolicyDir, _dir.File("run"), _dir.File("legacy"), SystemInfo];
        try
        {
            for (int i = 0; i < variables.Length; i++)
            {
                Environment.SetEnvironmentVariable(variables[i], values[i]);
            }
            PolicyOutcome allowed = PolicyClient.Ask(new PolicyQuery("work", null, "work-email", "qubes.Filecopy"), _dir.File("none.sock"), PolicyTool.Exec.Path, s_timeout);
            Assert.True(allowed.Allowed, allowed.Error);
            Assert.Equal("uuid:22222222-2222-4222-8222-222222222222", allowed.Decision!.TargetUuid);
            PolicyOutcome denied = PolicyClient.Ask(new PolicyQuery("work", null, "personal", "qubes.Filecopy"), _dir.File("none.sock"), PolicyTool.Exec.Path, s_timeout);
            Assert.Equal(QrexecProtocol.ExitProblem, denied.ExitCode);
        }
        finally
        {
            for (int i = 0; i < variables.Length; i++)
            {
                Environment.SetEnvironmentVariable(variables[i], saved[i]);
            }
        }
    }

    [Fact]
    public void Daemon_answers_the_qrexec_daemons_client_without_a_trailing_newline()
    {
        string socket = _dir.File("policy.sock");
        File.WriteAllText(socket, "stale");
        ConcurrentQueue<string> log = new();
        Process server = PolicyTool.Daemon.StartServer(socket, log, Paths);
        try
        {
            string noProgram = _dir.File("no-program");
            PolicyOutcome allowed = PolicyClient.Ask(new PolicyQuery("work", "", "@dispvm", "qubes.PrintFile+doc"), socket, noProgram, s_timeout);
            Assert.True(allowed.Allowed, allowed.Error);
            Assert.Equal("@dispvm:work-printing", allowed.Decision!.Target);
            Assert.Equal("@dispvm:uuid:55555555-5555-4555-8555-555555555555", allowed.Decision.TargetUuid);
            Assert.Equal("@dispvm", allowed.Decision.RequestedTarget);

            Assert.Equal(R1Allow, Encoding.ASCII.GetString(RawPolicySocket.Exchange(socket, "source=work\nintended_target=work-email\nservice_and_arg=qubes.Filecopy\n\n")));
            PolicyOutcome denied = PolicyClient.Ask(new PolicyQuery("personal", null, "vault", "qubes.Filecopy"), socket, noProgram, s_timeout);
            Assert.NotNull(denied.Decision);
            Assert.False(denied.Allowed);
            // an ask with nobody to prompt is a denial
            Assert.Equal("result=deny", Encoding.ASCII.GetString(RawPolicySocket.Exchange(socket, "source=personal\nintended_target=work\nservice_and_arg=qubes.Filecopy\n\n")));
            // the daemon's log reaches this process through a pipe and an event: wait for it to arrive
            Assert.True(Platform.Tests.TestBroker.Eventually(() => log.Any(l => l.Contains("notify dom0: denied qubes.Filecopy from personal to vault", StringComparison.Ordinal))),
                "no notification in the log");
            Assert.Contains(log, l => l.Contains("qubes.Filecopy: personal -> vault: deny (", StringComparison.Ordinal));
        }
        finally
        {
            PolicyTool.Stop(server);
        }
    }

    [Theory]
    [InlineData("source=work\nsource=work\nintended_target=vault\nservice_and_arg=qubes.Gpg\n\n")]
    [InlineData("source=work\ncolour=red\nintended_target=vault\nservice_and_arg=qubes.Gpg\n\n")]
    [InlineData("source=work\nintended_target=vault\nservice_and_arg=qubes.Gpg\ngarbage\n\n")]
    [InlineData("source=work\nintended_target=vault\nservice_and_arg=qubes.Gpg\njust_evaluate=true\n\n")]
    [InlineData("source=work\nintended_target=vault\nservice_and_arg=qubes.Gpg\nassume_yes_for_ask=\n\n")]
    [InlineData("source=work\nintended_target=vault\n\n")]
    [InlineData("intended_target=vault\nservice_and_arg=qubes.Gpg\n\n")]
    [InlineData("source=work\nservice_and_arg=qubes.Gpg\n\n")]
    [InlineData("\n")]
    [InlineData("source=work\nintended_target=vault\nservice_and_arg=qubes.Gpg\n")]
    public void Daemon_closes_an_invalid_request_without_an_answer(string request)
    {
        string socket = _dir.File("policy.sock");
        Process server = PolicyTool.Daemon.StartServer(socket, null, Paths);
        try
        {
            Assert.Empty(RawPolicySocket.Exchange(socket, request, timeoutMs: 10000));
            // The server is still serving.
            Assert.Equal(R1Allow, Encoding.ASCII.GetString(RawPolicySocket.Exchange(socket, "source=work\nintended_target=work-email\nservice_and_arg=qubes.Filecopy\n\n")));
        }
        finally
        {
            PolicyTool.Stop(server);
        }
    }

    [Fact]
    public void Daemon_answers_every_target_a_qube_can_name_and_keeps_serving()
    {
        string socket = _dir.File("policy.sock");
        ConcurrentQueue<string> log = new();
        Process server = PolicyTool.Daemon.StartServer(socket, log, Paths);
        try
        {
            // targets that name nothing: each gets a denial, in every mode, and the daemon lives on
            foreach (string target in (string[])["@dispvm:no-such-qube", "@dispvm:work", "@dispvm:uuid:00000000-0000-0000-0000-000000000000", "no-such-qube", "uuid:no-such",
                "@dispvm:@tag:x", "@default", "@adminvm", "@anyvm", "*", "@dispvm:", "@tag:work"])
            {
                foreach (string mode in (string[])["", "assume_yes_for_ask=yes\n", "just_evaluate=yes\n", "assume_yes_for_ask=yes\njust_evaluate=yes\n"])
                {
                    foreach (string service in (string[])["qubes.PrintFile+x", "qubes.OpenURL", "qubes.Filecopy"])
                    {
                        string answer = Encoding.ASCII.GetString(RawPolicySocket.Exchange(socket, $"source=personal\nintended_target={target}\nservice_and_arg={service}\n{mode}\n"));
                        Assert.False(string.IsNullOrEmpty(answer), $"no answer for {target} {service} {mode}");
                    }
                }
                Assert.Equal("result=deny", Encoding.ASCII.GetString(RawPolicySocket.Exchange(socket, $"source=work\nintended_target={target}\nservice_and_arg=qubes.PrintFile\n\n")));
            }
            Assert.False(server.HasExited);
            Assert.Equal(R1Allow, Encoding.ASCII.GetString(RawPolicySocket.Exchange(socket, "source=work\nintended_target=work-email\nservice_and_arg=qubes.Filecopy\n\n")));
            Assert.True(Platform.Tests.TestBroker.Eventually(() => log.Any(l => l.Contains("@dispvm:no-such-qube is not a template for dispvm", StringComparison.Ordinal))),
                "the denial of an unknown disposable template is not in the log");
        }
        finally
        {
            PolicyTool.Stop(server);
        }
    }

    [Fact]
    public void Daemon_takes_the_optional_keys()
    {
        string socket = _dir.File("policy.sock");
        Process server = PolicyTool.Daemon.StartServer(socket, null, Paths);
        try
        {
            Assert.Equal("result=allow", Encoding.ASCII.GetString(RawPolicySocket.Exchange(socket,
                "just_evaluate=yes\nservice_and_arg=qubes.Filecopy\nrequested_source=\nintended_target=work-email\nsource=work\n\n")));
            string approved = Encoding.ASCII.GetString(RawPolicySocket.Exchange(socket,
                "source=personal\nintended_target=work-dvm\nservice_and_arg=qubes.Filecopy\nassume_yes_for_ask=yes\njust_evaluate=no\n\n"));
            Assert.Contains("\ntarget=work-dvm\n", approved, StringComparison.Ordinal);
            Assert.Equal("result=allow", Encoding.ASCII.GetString(RawPolicySocket.Exchange(socket,
                "source=personal\nintended_target=work-dvm\nservice_and_arg=qubes.Filecopy\nassume_yes_for_ask=yes\njust_evaluate=yes\n\n")));
            Assert.Equal("result=deny", Encoding.ASCII.GetString(RawPolicySocket.Exchange(socket,
                "source=personal\nintended_target=mgmt-dvm\nservice_and_arg=qubes.Filecopy\nassume_yes_for_ask=yes\njust_evaluate=yes\n\n")));
            Assert.Equal("result=deny", Encoding.ASCII.GetString(RawPolicySocket.Exchange(socket,
                "source=personal\nintended_target=work-dvm\nservice_and_arg=qubes.Filecopy\njust_evaluate=yes\n\n")));
        }
        finally
        {
            PolicyTool.Stop(server);
        }
    }

    [Fact]
    public void Daemon_takes_policy_and_system_changes_without_a_restart()
    {
        string socket = _dir.File("policy.sock");
        Process server = PolicyTool.Daemon.StartServer(socket, null, Paths);
        const string Request = "source=work\nintended_target=personal\nservice_and_arg=test.Svc\n\n";
        try
        {
            Assert.Equal("result=deny", Encoding.ASCII.GetString(RawPolicySocket.Exchange(socket, Request)));
            File.WriteAllText(Path.Combine(PolicyDir, "30-user.policy"), "test.Svc * work personal allow user=u\n");
            Assert.StartsWith("user=u\nresult=allow\ntarget=personal\n", Encoding.ASCII.GetString(RawPolicySocket.Exchange(socket, Request)), StringComparison.Ordinal);

            // a runtime file of the same name wins
            Directory.CreateDirectory(_dir.File("run"));
            File.WriteAllText(Path.Combine(_dir.File("run"), "30-user.policy"), "test.Svc * work personal deny\n");
            Assert.Equal("result=deny", Encoding.ASCII.GetString(RawPolicySocket.Exchange(socket, Request)));
            File.Delete(Path.Combine(_dir.File("run"), "30-user.policy"));

            // an invalid file name denies everything until it is removed
            File.WriteAllText(Path.Combine(PolicyDir, "40-Bad.policy"), "\n");
            Assert.Equal("result=deny", Encoding.ASCII.GetString(RawPolicySocket.Exchange(socket, Request)));
            File.Delete(Path.Combine(PolicyDir, "40-Bad.policy"));
            Assert.StartsWith("user=u\n", Encoding.ASCII.GetString(RawPolicySocket.Exchange(socket, Request)), StringComparison.Ordinal);

            // a qube stopped being known
            File.WriteAllText(SystemInfo, WorkedExample.SystemJson.Replace("\"personal\": {", "\"personal-2\": {", StringComparison.Ordinal));
            File.SetLastWriteTimeUtc(SystemInfo, DateTime.UtcNow.AddSeconds(5));
            Assert.Equal("result=deny", Encoding.ASCII.GetString(RawPolicySocket.Exchange(socket, Request)));
        }
        finally
        {
            PolicyTool.Stop(server);
        }
    }

    [Fact]
    public void QubesPolicy_lists_gets_replaces_and_removes_files()
    {
        Assert.Equal((0, "50-example\n"), Pick(QubesPolicy(null, "--list")));
        Assert.Equal((0, WorkedExample.Policy), Pick(QubesPolicy(null, "-g", "50-example")));
        Assert.Equal(0, QubesPolicy("test.Svc * work personal allow\n", "--replace", "30-user").Status);
        Assert.Equal((0, "30-user\n50-example\n"), Pick(QubesPolicy(null, "-l")));
        Assert.Equal((0, "test.Svc * work personal allow\n"), Pick(QubesPolicy(null, "--get", "30-user")));

        (int status, _, string stderr) = QubesPolicy("test.Svc * work personal allow\ntest.Svc * @bogus personal allow\n", "-r", "30-user");
        Assert.Equal(1, status);
        Assert.Contains("30-user.policy:2: invalid token '@bogus'", stderr, StringComparison.Ordinal);
        Assert.Equal((0, "test.Svc * work personal allow\n"), Pick(QubesPolicy(null, "--get", "30-user")));
        Assert.Empty(Directory.GetFiles(PolicyDir, ".*"));

        Assert.Equal(0, QubesPolicy("work vault allow\n", "-i", "--replace", "legacy-gpg").Status);
        Assert.Equal((0, "legacy-gpg\n"), Pick(QubesPolicy(null, "--include", "--list")));

        Assert.Equal(0, QubesPolicy(null, "--remove", "30-user").Status);
        Assert.Equal(1, QubesPolicy(null, "--remove", "30-user").Status);
        Assert.Equal(1, QubesPolicy(null, "--get", "30-user").Status);
        Assert.Equal(2, QubesPolicy(null, "--get", "../etc/passwd").Status);
        Assert.Equal(2, QubesPolicy(null, "--get", "Upper").Status);
    }

    [Fact]
    public void QubesPolicy_show_prints_the_effective_rules_with_their_places()
    {
        File.WriteAllText(Path.Combine(PolicyDir, "30-user.policy"), "!include-service qubes.Gpg * ../legacy-gpg\n");
        File.WriteAllText(_dir.File("legacy-gpg"), "$tag:work vault allow,user=gpg\n");
        (int status, string stdout, _) = QubesPolicy(null, "--show");
        Assert.Equal(0, status);
        string[] lines = stdout.Split('\n', StringSplitOptions.RemoveEmptyEntries);
        Assert.Equal(14, lines.Length);
        Assert.StartsWith("qubes.Gpg * @tag:work vault allow user=gpg    # ", lines[0], StringComparison.Ordinal);
        Assert.EndsWith("legacy-gpg:1", lines[0], StringComparison.Ordinal);
        Assert.Equal("qubes.Filecopy * @anyvm @anyvm ask default_target=work    # " + Path.Combine(PolicyDir, "50-example.policy") + ":4", lines[4]);
    }

    [Fact]
    public void QubesPolicy_lint_names_every_broken_file_and_line()
    {
        Assert.Equal(0, QubesPolicy(null, "--lint").Status);
        File.WriteAllText(Path.Combine(PolicyDir, "10-a.policy"), "test.Svc * work personal allow\ntest.Svc * work personal maybe\n");
        File.WriteAllText(Path.Combine(PolicyDir, "20-b.policy"), "!include missing.policy\n");
        (int status, string stdout, string stderr) = QubesPolicy(null, "--lint");
        Assert.Equal(1, status);
        Assert.Equal([Path.Combine(PolicyDir, "10-a.policy") + ":2: invalid action 'maybe'", Path.Combine(PolicyDir, "20-b.policy") + ":1: !include missing.policy: not a file"],
            stdout.Split('\n', StringSplitOptions.RemoveEmptyEntries));
        Assert.Contains("2 errors in 3 files", stderr, StringComparison.Ordinal);
        Assert.Equal(0, QubesPolicy(null, "--lint", Path.Combine(PolicyDir, "50-example.policy")).Status);
    }

    [Fact]
    public void QubesPolicy_eval_explains_a_decision()
    {
        (int status, string stdout, _) = QubesPolicy(null, "--eval", "personal", "@default", "qubes.Filecopy");
        Assert.Equal(0, status);
        Assert.Equal("offers: default-dvm work* work-dvm work-email work-printing @dispvm:default-dvm @dispvm:work-dvm @dispvm:work-printing",
            stdout.Split('\n')[1]);
        (status, stdout, _) = QubesPolicy(null, "--eval", "work", "vault", "qubes.Backup");
        Assert.Equal(1, status);
        Assert.Contains("deny: target not running and autostart=no", stdout, StringComparison.Ordinal);
        Assert.Contains("50-example.policy:12", stdout, StringComparison.Ordinal);
    }

    [Fact]
    public void TerminalPrompt_lists_the_targets_preselects_the_default_and_reads_a_number_or_name()
    {
        AskRequest request = new("personal", "qubes.Filecopy", "+", ["work", "work-email", "@dispvm:work-dvm"], "work-email");
        StringWriter screen = new();
        Assert.Equal("work-email", new TerminalPrompt(new StringReader("\n"), screen).Ask(request));
        Assert.Contains("  *  2) work-email", screen.ToString(), StringComparison.Ordinal);
        Assert.Contains("[work-email]", screen.ToString(), StringComparison.Ordinal);
        Assert.Equal("@dispvm:work-dvm", new TerminalPrompt(new StringReader("3\n"), new StringWriter()).Ask(request));
        Assert.Equal("work", new TerminalPrompt(new StringReader("vault\n9\nwork\n"), new StringWriter()).Ask(request));
        Assert.Null(new TerminalPrompt(new StringReader("n\n"), new StringWriter()).Ask(request));
        Assert.Null(new TerminalPrompt(new StringReader(""), new StringWriter()).Ask(request));
        Assert.Null(new TerminalPrompt(new StringReader("x\ny\nz\n1\n"), new StringWriter()).Ask(request));
        Assert.Null(new TerminalPrompt(new StringReader("\n\n\n"), new StringWriter()).Ask(request with { DefaultTarget = null }));
    }

    private static (int, string) Pick((int Status, string Stdout, string Stderr) run) => (run.Status, run.Stdout);
}
