using System;
using System.Diagnostics;
using System.IO;
using System.Text;
using Qubes.Qrexec.Policy;
using Xunit;

namespace Qubes.Qrexec.Tests.Policy;

[Collection(PolicyProcessCollection.Name)]
public sealed class AllowlistToolTests : IDisposable
{
    private const string Rules = """
        # service      source   target    action  options
        qubes.Deny     *        *         deny
        qubes.Gpg      work     vault     allow   user=gpg
        qubes.Gpg      *        *         deny              # only work may reach vault
        qubes.Open+pdf *        *         allow   target=viewer
        qubes.Open     sys-usb  @default  allow
        qubes.Open     *        vault     deny
        *              dom0     *         allow
        """;

    private static readonly TimeSpan s_timeout = TimeSpan.FromSeconds(10);

    private readonly TempDirectory _dir = new();
    private readonly string _rules;

    public AllowlistToolTests()
    {
        _rules = _dir.File("rules");
        File.WriteAllText(_rules, Rules);
    }

    public void Dispose() => _dir.Dispose();

    private static string AllowAnswer(string user, string target, string requested) =>
        $"result=allow\nuser={user}\ntarget={target}\nrequested_target={requested}\nautostart=False\n";

    private string Program(string source, string target, string service)
    {
        (int status, string stdout, string stderr) = AllowlistTool.Run(null, "--rules", _rules, "--", source, target, service);
        Assert.True(status == 0, stderr);
        return stdout;
    }

    [Fact]
    public void Program_mode_allows_with_the_rule_user()
    {
        Assert.Equal(AllowAnswer("gpg", "vault", "vault"), Program("work", "vault", "qubes.Gpg+key"));
    }

    [Fact]
    public void Program_mode_first_match_wins()
    {
        Assert.Equal("result=deny\n", Program("other", "vault", "qubes.Gpg"));
        Assert.Equal("result=deny\n", Program("dom0", "vault", "qubes.Deny"));
        Assert.Equal(AllowAnswer("DEFAULT", "vault", "vault"), Program("dom0", "vault", "qubes.Anything+x"));
    }

    [Fact]
    public void Program_mode_service_without_argument_matches_every_argument_but_not_a_longer_name()
    {
        Assert.Equal(AllowAnswer("gpg", "vault", "vault"), Program("work", "vault", "qubes.Gpg"));
        Assert.Equal(AllowAnswer("gpg", "vault", "vault"), Program("work", "vault", "qubes.Gpg+"));
        Assert.Equal("result=deny\n", Program("work", "vault", "qubes.Gpg2"));
    }

    [Fact]
    public void Program_mode_exact_argument_and_redirect()
    {
        Assert.Equal(AllowAnswer("DEFAULT", "viewer", "@dispvm"), Program("work", "@dispvm", "qubes.Open+pdf"));
        Assert.Equal("result=deny\n", Program("work", "vault", "qubes.Open+txt"));
        Assert.Equal(AllowAnswer("DEFAULT", "@default", "@default"), Program("sys-usb", "@default", "qubes.Open+txt"));
    }

    [Fact]
    public void Program_mode_no_match_denies()
    {
        Assert.Equal("result=deny\n", Program("work", "work", "qubes.Unknown"));
    }

    [Fact]
    public void Program_mode_reads_the_rules_named_by_the_environment()
    {
        (int status, string stdout, _) = AllowlistTool.Run(_rules, "--", "work", "vault", "qubes.Gpg");
        Assert.Equal(0, status);
        Assert.Equal(AllowAnswer("gpg", "vault", "vault"), stdout);
    }

    [Theory]
    [InlineData("qubes.Foo * *\n")]
    [InlineData("qubes.Foo * * maybe\n")]
    [InlineData("qubes.Foo * * allow colour=red\n")]
    [InlineData("qubes.Foo * * deny user=root\n")]
    public void Program_mode_refuses_an_invalid_rules_file(string rules)
    {
        string path = _dir.File("bad-rules");
        File.WriteAllText(path, rules);
        (int status, string stdout, string stderr) = AllowlistTool.Run(null, "--rules", path, "--", "a", "b", "qubes.Foo");
        Assert.Equal(1, status);
        Assert.Empty(stdout);
        Assert.Contains("line 1", stderr, StringComparison.Ordinal);
    }

    [Fact]
    public void Program_mode_without_rules_is_a_usage_error()
    {
        (int status, string stdout, _) = AllowlistTool.Run(null, "--", "a", "b", "c");
        Assert.Equal(2, status);
        Assert.Empty(stdout);
    }

    [Fact]
    public void Tool_is_a_policy_program_for_the_client()
    {
        string? saved = Environment.GetEnvironmentVariable("QREXEC_ALLOWLIST");
        Environment.SetEnvironmentVariable("QREXEC_ALLOWLIST", _rules);
        try
        {
            PolicyOutcome allowed = PolicyClient.Ask(new PolicyQuery("work", null, "vault", "qubes.Gpg+k"), _dir.File("none.sock"), AllowlistTool.Path, s_timeout);
            Assert.True(allowed.Allowed, allowed.Error);
            Assert.Equal("gpg", allowed.Decision!.User);

            PolicyOutcome denied = PolicyClient.Ask(new PolicyQuery("other", null, "vault", "qubes.Gpg"), _dir.File("none.sock"), AllowlistTool.Path, s_timeout);
            Assert.NotNull(denied.Decision);
            Assert.False(denied.Allowed);
        }
        finally
        {
            Environment.SetEnvironmentVariable("QREXEC_ALLOWLIST", saved);
        }
    }

    [Fact]
    public void Socket_mode_answers_through_the_client()
    {
        string socket = _dir.File("policy.sock");
        File.WriteAllText(socket, "stale");
        Process server = AllowlistTool.StartServer(_rules, socket);
        try
        {
            string noProgram = _dir.File("no-program");
            PolicyOutcome allowed = PolicyClient.Ask(new PolicyQuery("work", "", "vault", "qubes.Gpg+k"), socket, noProgram, s_timeout);
            Assert.True(allowed.Allowed, allowed.Error);
            Assert.Equal("gpg", allowed.Decision!.User);
            Assert.Equal("vault", allowed.Decision.Target);

            PolicyOutcome redirected = PolicyClient.Ask(new PolicyQuery("work", null, "@dispvm", "qubes.Open+pdf"), socket, noProgram, s_timeout);
            Assert.True(redirected.Allowed, redirected.Error);
            Assert.Equal("viewer", redirected.Decision!.Target);
            Assert.Equal("@dispvm", redirected.Decision.RequestedTarget);

            PolicyOutcome denied = PolicyClient.Ask(new PolicyQuery("other", null, "vault", "qubes.Gpg"), socket, noProgram, s_timeout);
            Assert.NotNull(denied.Decision);
            Assert.False(denied.Allowed);
        }
        finally
        {
            AllowlistTool.Stop(server);
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
    public void Socket_mode_closes_an_invalid_request_without_an_answer(string request)
    {
        string socket = _dir.File("policy.sock");
        Process server = AllowlistTool.StartServer(_rules, socket);
        try
        {
            byte[] answer = RawPolicySocket.Exchange(socket, request, timeoutMs: 10000);
            Assert.Empty(answer);
            // The server is still serving.
            Assert.Equal("result=allow\nuser=gpg\ntarget=vault\nrequested_target=vault\nautostart=False\n",
                Encoding.ASCII.GetString(RawPolicySocket.Exchange(socket, "source=work\nintended_target=vault\nservice_and_arg=qubes.Gpg\n\n")));
        }
        finally
        {
            AllowlistTool.Stop(server);
        }
    }

    [Fact]
    public void Socket_mode_accepts_the_optional_keys()
    {
        string socket = _dir.File("policy.sock");
        Process server = AllowlistTool.StartServer(_rules, socket);
        try
        {
            byte[] answer = RawPolicySocket.Exchange(socket,
                "just_evaluate=no\nservice_and_arg=qubes.Gpg+x\nrequested_source=\nintended_target=vault\nassume_yes_for_ask=yes\nsource=work\n\n");
            Assert.Equal(AllowAnswer("gpg", "vault", "vault"), Encoding.ASCII.GetString(answer));
            Assert.Equal("result=deny\n", Encoding.ASCII.GetString(RawPolicySocket.Exchange(socket,
                "source=nobody\nintended_target=vault\nservice_and_arg=qubes.Gpg\njust_evaluate=yes\n\n")));
        }
        finally
        {
            AllowlistTool.Stop(server);
        }
    }

    [Fact]
    public void Socket_mode_rereads_the_rules_when_they_change()
    {
        string socket = _dir.File("policy.sock");
        string rules = _dir.File("changing-rules");
        File.WriteAllText(rules, "qubes.Svc work vault allow\n");
        DateTime stamp = File.GetLastWriteTimeUtc(rules);
        Process server = AllowlistTool.StartServer(rules, socket);
        try
        {
            var query = new PolicyQuery("work", null, "vault", "qubes.Svc");
            string noProgram = _dir.File("no-program");
            Assert.True(PolicyClient.Ask(query, socket, noProgram, s_timeout).Allowed);

            // Same length, so only the modification time tells the change.
            File.WriteAllText(rules, "qubes.Svc work vault deny \n");
            File.SetLastWriteTimeUtc(rules, stamp.AddSeconds(10));
            PolicyOutcome denied = PolicyClient.Ask(query, socket, noProgram, s_timeout);
            Assert.NotNull(denied.Decision);
            Assert.False(denied.Allowed);

            // An invalid file denies everything until it is fixed.
            File.WriteAllText(rules, "qubes.Svc work vault maybe\n");
            File.SetLastWriteTimeUtc(rules, stamp.AddSeconds(20));
            Assert.False(PolicyClient.Ask(new PolicyQuery("work", null, "vault", "qubes.Svc"), socket, noProgram, s_timeout).Allowed);

            File.WriteAllText(rules, "qubes.Svc * * allow user=u\n");
            File.SetLastWriteTimeUtc(rules, stamp.AddSeconds(30));
            PolicyOutcome allowed = PolicyClient.Ask(new PolicyQuery("any", null, "vault", "qubes.Svc"), socket, noProgram, s_timeout);
            Assert.True(allowed.Allowed, allowed.Error);
            Assert.Equal("u", allowed.Decision!.User);
        }
        finally
        {
            AllowlistTool.Stop(server);
        }
    }

    [Fact]
    public void Socket_mode_answers_in_well_under_a_millisecond()
    {
        string socket = _dir.File("policy.sock");
        Process server = AllowlistTool.StartServer(_rules, socket);
        try
        {
            var query = new PolicyQuery("work", null, "vault", "qubes.Gpg+k");
            string noProgram = _dir.File("no-program");
            for (int i = 0; i < 50; i++)
            {
                Assert.True(PolicyClient.Ask(query, socket, noProgram, s_timeout).Allowed);
            }
            const int Rounds = 300;
            double[] micros = new double[Rounds];
            for (int i = 0; i < Rounds; i++)
            {
                long start = Stopwatch.GetTimestamp();
                PolicyOutcome outcome = PolicyClient.Ask(query, socket, noProgram, s_timeout);
                micros[i] = Stopwatch.GetElapsedTime(start).TotalMicroseconds;
                Assert.True(outcome.Allowed, outcome.Error);
            }
            Array.Sort(micros);
            double median = micros[Rounds / 2];
            Assert.True(median < 1000, $"median round trip {median:F0} µs");
        }
        finally
        {
            AllowlistTool.Stop(server);
        }
    }
}
