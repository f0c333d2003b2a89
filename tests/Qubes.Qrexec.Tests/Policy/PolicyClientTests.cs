using System;
using System.Diagnostics;
using System.Globalization;
using System.IO;
using System.Text;
using Qubes.Qrexec.Policy;
using Xunit;

namespace Qubes.Qrexec.Tests.Policy;

[Collection(PolicyProcessCollection.Name)]
public sealed class PolicyClientTests : IDisposable
{
    private const string SocketAllow = "result=allow\nuser=DEFAULT\ntarget=from-socket\nrequested_target=vault\nautostart=False\n";
    private const string ProgramAllow = "result=allow\nuser=DEFAULT\ntarget=from-program\nrequested_target=vault\nautostart=True\n";
    private static readonly TimeSpan s_timeout = TimeSpan.FromSeconds(10);
    private static readonly PolicyQuery s_query = new("work", "disp7", "vault", "qubes.Gpg+key");

    private readonly TempDirectory _dir = new();

    public void Dispose() => _dir.Dispose();

    private string SocketPath => _dir.File("policy.sock");

    private string MissingProgram => _dir.File("no-such-program");

    /// <summary>A policy program that records that it ran and prints <paramref name="answer"/>.</summary>
    private string Program(string answer, int status = 0) =>
        _dir.Script("policy", $"touch '{_dir.File("ran")}'\nprintf '%s' '{answer}'\nexit {status}\n");

    private bool ProgramRan => File.Exists(_dir.File("ran"));

    [Fact]
    public void Socket_answer_is_used_and_the_request_is_sent_as_specified()
    {
        using var server = new FakePolicySocket(SocketPath, SocketAllow);
        PolicyOutcome outcome = PolicyClient.Ask(s_query, SocketPath, Program(ProgramAllow), s_timeout);

        Assert.True(outcome.Allowed, outcome.Error);
        Assert.Null(outcome.Error);
        Assert.Equal("from-socket", outcome.Decision!.Target);
        Assert.Equal(0, outcome.ExitCode);
        Assert.False(ProgramRan);
        Assert.True(server.Requests.TryDequeue(out byte[]? request));
        Assert.Equal("source=work\nrequested_source=disp7\nintended_target=vault\nservice_and_arg=qubes.Gpg+key\n\n", Encoding.ASCII.GetString(request));
    }

    [Fact]
    public void Socket_deny_is_final()
    {
        using var server = new FakePolicySocket(SocketPath, "result=deny\n");
        PolicyOutcome outcome = PolicyClient.Ask(s_query, SocketPath, Program(ProgramAllow), s_timeout);

        Assert.False(outcome.Allowed);
        Assert.NotNull(outcome.Decision);
        Assert.False(outcome.Decision.Allowed);
        Assert.Equal(QrexecProtocol.ExitRequestRefused, outcome.ExitCode);
        Assert.False(ProgramRan);
    }

    [Theory]
    [InlineData("result=maybe\n")]
    [InlineData("result=deny\nuser=root\n")]
    [InlineData("")]
    public void Malformed_socket_answer_falls_back_to_the_program(string socketAnswer)
    {
        using var server = new FakePolicySocket(SocketPath, socketAnswer);
        PolicyOutcome outcome = PolicyClient.Ask(s_query, SocketPath, Program(ProgramAllow), s_timeout);

        Assert.True(outcome.Allowed, outcome.Error);
        Assert.Equal("from-program", outcome.Decision!.Target);
        Assert.True(outcome.Decision.Autostart);
        Assert.True(ProgramRan);
        Assert.Single(server.Requests);
    }

    [Fact]
    public void Socket_answer_of_4095_bytes_is_read_and_one_of_4096_falls_back()
    {
        string prefix = SocketAllow + "pad=";
        string full = prefix + new string('p', 4095 - prefix.Length - 1) + "\n";
        using (var server = new FakePolicySocket(SocketPath, full))
        {
            PolicyOutcome outcome = PolicyClient.Ask(s_query, SocketPath, MissingProgram, s_timeout);
            Assert.True(outcome.Allowed, outcome.Error);
            Assert.Equal("from-socket", outcome.Decision!.Target);
        }

        string tooLong = prefix + new string('p', 4096 - prefix.Length - 1) + "\n";
        using (var server = new FakePolicySocket(SocketPath, tooLong))
        {
            PolicyOutcome outcome = PolicyClient.Ask(s_query, SocketPath, Program(ProgramAllow), s_timeout);
            Assert.True(outcome.Allowed, outcome.Error);
            Assert.Equal("from-program", outcome.Decision!.Target);
        }
    }

    [Fact]
    public void No_socket_asks_the_program()
    {
        PolicyOutcome outcome = PolicyClient.Ask(s_query, SocketPath, Program(ProgramAllow), s_timeout);
        Assert.True(outcome.Allowed, outcome.Error);
        Assert.Equal("from-program", outcome.Decision!.Target);
        Assert.Equal("vault", outcome.Decision.RequestedTarget);
    }

    [Fact]
    public void Program_deny_is_a_decision()
    {
        PolicyOutcome outcome = PolicyClient.Ask(s_query, SocketPath, Program("result=deny\n"), s_timeout);
        Assert.NotNull(outcome.Decision);
        Assert.False(outcome.Allowed);
        Assert.Null(outcome.Error);
        Assert.Equal(QrexecProtocol.ExitRequestRefused, outcome.ExitCode);
    }

    [Fact]
    public void No_socket_and_no_program_is_an_error()
    {
        PolicyOutcome outcome = PolicyClient.Ask(s_query, SocketPath, MissingProgram, s_timeout);
        Assert.False(outcome.Allowed);
        Assert.Null(outcome.Decision);
        Assert.Contains("ENOENT", outcome.Error, StringComparison.Ordinal);
        Assert.Equal(QrexecProtocol.ExitProblem, outcome.ExitCode);
    }

    [Fact]
    public void Program_exiting_non_zero_is_refused_even_with_a_valid_answer()
    {
        PolicyOutcome outcome = PolicyClient.Ask(s_query, SocketPath, Program(ProgramAllow, status: 3), s_timeout);
        Assert.False(outcome.Allowed);
        Assert.Null(outcome.Decision);
        Assert.Contains("status 3", outcome.Error, StringComparison.Ordinal);
        Assert.Equal(QrexecProtocol.ExitProblem, outcome.ExitCode);
    }

    [Fact]
    public void Program_killed_by_a_signal_is_refused()
    {
        string program = _dir.Script("policy", $"printf '%s' '{ProgramAllow}'\nkill -9 $$\n");
        PolicyOutcome outcome = PolicyClient.Ask(s_query, SocketPath, program, s_timeout);
        Assert.False(outcome.Allowed);
        Assert.Contains("signal 9", outcome.Error, StringComparison.Ordinal);
    }

    [Theory]
    [InlineData("result=allow\n")]
    [InlineData("garbage")]
    [InlineData("")]
    public void Program_malformed_answer_is_refused(string answer)
    {
        PolicyOutcome outcome = PolicyClient.Ask(s_query, SocketPath, Program(answer), s_timeout);
        Assert.False(outcome.Allowed);
        Assert.Null(outcome.Decision);
        Assert.Contains("malformed", outcome.Error, StringComparison.Ordinal);
    }

    [Fact]
    public void Program_answer_longer_than_4095_bytes_is_refused()
    {
        // Once the reader has its 4096 bytes it closes its end: the rest of the writes fail, and
        // the program still exits 0 so that only the length can be the reason for refusing.
        string program = _dir.Script("policy", $"trap '' PIPE\nprintf '%s' '{ProgramAllow}'\nhead -c 5000 /dev/zero | tr '\\0' x\nexit 0\n");
        PolicyOutcome outcome = PolicyClient.Ask(s_query, SocketPath, program, s_timeout);
        Assert.False(outcome.Allowed);
        Assert.Contains("4095", outcome.Error, StringComparison.Ordinal);
    }

    [Fact]
    public void Program_gets_double_dash_source_target_and_service_but_not_the_requested_source()
    {
        string args = _dir.File("args");
        string program = _dir.Script("policy", $"echo $# > '{args}'\nfor a in \"$@\"; do echo \"$a\" >> '{args}'; done\nprintf '%s' '{ProgramAllow}'\n");
        PolicyOutcome outcome = PolicyClient.Ask(s_query, SocketPath, program, s_timeout);
        Assert.True(outcome.Allowed, outcome.Error);
        Assert.Equal("4\n--\nwork\nvault\nqubes.Gpg+key\n", File.ReadAllText(args));
    }

    [Fact]
    public void Program_runs_with_argv0_qrexec_policy_exec()
    {
        // A #! script loses argv[0] to the interpreter, so /bin/sh is the program itself and the
        // "source" argument names the script it runs; /proc/$$/cmdline shows the argv it was given.
        string script = _dir.File("argv0.sh");
        File.WriteAllText(script,
            "argv0=$(tr '\\0' '\\n' < /proc/$$/cmdline | head -n 1)\n" +
            "printf 'result=allow\\nuser=%s\\ntarget=t\\nrequested_target=t\\nautostart=False\\n' \"$argv0\"\n");
        PolicyOutcome outcome = PolicyClient.Ask(s_query with { Source = script }, SocketPath, "/bin/sh", s_timeout);
        Assert.True(outcome.Allowed, outcome.Error);
        Assert.Equal(PolicyClient.ProgramArgv0, outcome.Decision!.User);
        Assert.Equal("qrexec-policy-exec", outcome.Decision.User);
    }

    [Fact]
    public void Program_stdin_and_stdout_are_one_socket()
    {
        string program = _dir.Script("policy",
            "in=$(readlink /proc/$$/fd/0); out=$(readlink /proc/$$/fd/1)\n" +
            "printf 'result=allow\\nuser=%s\\ntarget=%s\\nrequested_target=t\\nautostart=False\\n' \"$in\" \"$out\"\n");
        PolicyOutcome outcome = PolicyClient.Ask(s_query, SocketPath, program, s_timeout);
        Assert.True(outcome.Allowed, outcome.Error);
        Assert.StartsWith("socket:[", outcome.Decision!.User, StringComparison.Ordinal);
        Assert.Equal(outcome.Decision.User, outcome.Decision.Target);
    }

    [Fact]
    public void Program_starts_with_default_signal_handling()
    {
        // The runtime ignores SIGPIPE; an ignored signal would survive exec without the reset.
        string program = _dir.Script("policy",
            "ign=$(sed -n 's/^SigIgn:[[:space:]]*//p' /proc/$$/status)\n" +
            "printf 'result=allow\\nuser=%s\\ntarget=t\\nrequested_target=t\\nautostart=False\\n' \"$ign\"\n");
        PolicyOutcome outcome = PolicyClient.Ask(s_query, SocketPath, program, s_timeout);
        Assert.True(outcome.Allowed, outcome.Error);
        ulong ignored = ulong.Parse(outcome.Decision!.User!, NumberStyles.HexNumber, CultureInfo.InvariantCulture);
        const ulong SigPipeBit = 1UL << (13 - 1);
        Assert.Equal(0UL, ignored & SigPipeBit);
    }

    [Fact]
    public void Program_that_does_not_finish_is_killed_at_the_timeout()
    {
        string pidFile = _dir.File("pid");
        string program = _dir.Script("policy", $"echo $$ > '{pidFile}'\nexec sleep 30\n");
        var clock = Stopwatch.StartNew();
        PolicyOutcome outcome = PolicyClient.Ask(s_query, SocketPath, program, TimeSpan.FromMilliseconds(300));
        clock.Stop();
        Assert.False(outcome.Allowed);
        Assert.Contains("timed out", outcome.Error, StringComparison.Ordinal);
        Assert.InRange(clock.ElapsedMilliseconds, 250, 10000);
        int pid = int.Parse(File.ReadAllText(pidFile).Trim(), CultureInfo.InvariantCulture);
        Assert.False(Directory.Exists($"/proc/{pid}"), "the program was not killed and reaped");
    }

    [Fact]
    public void Socket_that_does_not_answer_in_time_falls_back_to_the_program()
    {
        using var server = new HangingPolicySocket(SocketPath);
        var clock = Stopwatch.StartNew();
        PolicyOutcome outcome = PolicyClient.Ask(s_query, SocketPath, Program(ProgramAllow), TimeSpan.FromMilliseconds(500));
        Assert.True(outcome.Allowed, outcome.Error);
        Assert.Equal("from-program", outcome.Decision!.Target);
        Assert.True(clock.ElapsedMilliseconds < 10000);
    }

    /// <summary>A listener that never accepts: connecting works (backlog), no answer ever comes.</summary>
    private sealed class HangingPolicySocket : IDisposable
    {
        private readonly Qubes.Interop.Linux.SafeFd _listener;

        public HangingPolicySocket(string path) => _listener = Qubes.Interop.Linux.UnixSocket.Listen(path, 4);

        public void Dispose() => _listener.Dispose();
    }
}
