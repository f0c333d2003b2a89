using System;
using System.Linq;
using Qubes.Qrexec.Runtime;
using Qubes.Qrexec.Services;
using Xunit;

namespace Qubes.Qrexec.Tests.Runtime;

public sealed class ServiceRunnerPrepareTests
{
    private static readonly string s_user = Environment.UserName;

    [Fact]
    public void A_command_line_without_a_user_is_a_problem_to_report()
    {
        PreparedService prepared = ServiceRunner.Prepare("QUBESRPC qubes.Nothing dom0");
        Assert.Null(prepared.Command);
        Assert.Equal(QrexecProtocol.ExitProblem, prepared.FailureStatus);
    }

    [Fact]
    public void A_missing_service_is_reported_as_not_found()
    {
        PreparedService prepared = ServiceRunner.Prepare($"{s_user}:QUBESRPC test.NoSuchService{Guid.NewGuid():N}+ dom0");
        Assert.Null(prepared.Command);
        Assert.Equal(QrexecProtocol.ExitServiceNotFound, prepared.FailureStatus);
    }

    [Fact]
    public void A_plain_command_runs_under_the_users_shell_with_only_the_agent_pid_of_the_reserved_variables()
    {
        // as upstream's agent: the account's shell (bash's builtins work in a command), QREXEC_AGENT_PID set
        string shell = UserAccount.Find(s_user)?.Shell is ['/', ..] own && System.IO.File.Exists(own) ? own : "/bin/sh";
        PreparedService prepared = ServiceRunner.Prepare($"{s_user}:echo hi");
        Assert.NotNull(prepared.Command);
        Assert.Equal(ServiceKind.Executable, prepared.Kind);
        Assert.Equal(shell, prepared.Path);
        Assert.Equal([shell, "-c", "echo hi"], prepared.Argv);
        Assert.Equal([$"{ServiceEnvironment.AgentPidVariable}={Environment.ProcessId}"],
            prepared.Environment.Where(v => v.StartsWith(ServiceEnvironment.ReservedPrefix, StringComparison.Ordinal) && !v.StartsWith(ServiceEnvironment.ServicePathVariable + "=", StringComparison.Ordinal)));
        Assert.Contains(prepared.Environment, v => v.StartsWith("PATH=", StringComparison.Ordinal));
        Assert.Equal(0, prepared.FailureStatus);
    }
}
