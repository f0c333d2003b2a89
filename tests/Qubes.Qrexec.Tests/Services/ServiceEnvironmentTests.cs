using System.Collections.Generic;
using Qubes.Qrexec.Services;
using Xunit;

namespace Qubes.Qrexec.Tests.Services;

public sealed class ServiceEnvironmentTests
{
    private static ServiceCommand Parse(string commandLine)
    {
        Assert.True(ServiceCommand.TryParse(commandLine, out ServiceCommand? command, out string? error), error);
        return command;
    }

    private static KeyValuePair<string, string> Var(string name, string value) => new(name, value);

    private static readonly KeyValuePair<string, string>[] s_none = [];

    [Fact]
    public void Qrexec_variables_are_dropped_except_the_service_path_and_agent_pid()
    {
        KeyValuePair<string, string>[] inherited =
        [
            Var("PATH", "/usr/bin"),
            Var("QREXEC_SERVICE_PATH", "/x"),
            Var("QREXEC_AGENT_PID", "77"),
            Var("QREXEC_REMOTE_DOMAIN", "spoofed"),
            Var("QREXEC_SERVICE_ARGUMENT", "spoofed"),
            Var("QREXECFOO", "1"),
            Var("QREXEC", "1"),
            Var("qrexec_lowercase", "kept"),
            Var("MY_QREXEC", "kept"),
        ];
        string[] environment = ServiceEnvironment.Build(inherited, Parse("u:QUBESRPC svc src"), agentPid: null);

        Assert.Contains("PATH=/usr/bin", environment);
        Assert.Contains("QREXEC_SERVICE_PATH=/x", environment);
        Assert.Contains("QREXEC_AGENT_PID=77", environment);
        Assert.Contains("qrexec_lowercase=kept", environment);
        Assert.Contains("MY_QREXEC=kept", environment);
        Assert.DoesNotContain("QREXEC_REMOTE_DOMAIN=spoofed", environment);
        Assert.DoesNotContain("QREXEC_SERVICE_ARGUMENT=spoofed", environment);
        Assert.DoesNotContain("QREXECFOO=1", environment);
        Assert.DoesNotContain("QREXEC=1", environment);
        Assert.Single(environment, v => v.StartsWith("QREXEC_REMOTE_DOMAIN=", System.StringComparison.Ordinal));
    }

    [Fact]
    public void Full_name_is_the_descriptor_as_received()
    {
        Assert.Contains("QREXEC_SERVICE_FULL_NAME=qubes.Svc", ServiceEnvironment.Build(s_none, Parse("u:QUBESRPC qubes.Svc src"), null));
        Assert.Contains("QREXEC_SERVICE_FULL_NAME=qubes.Svc+a", ServiceEnvironment.Build(s_none, Parse("u:QUBESRPC qubes.Svc+a src"), null));
    }

    [Fact]
    public void Remote_domain_is_the_source()
    {
        Assert.Contains("QREXEC_REMOTE_DOMAIN=work-vm", ServiceEnvironment.Build(s_none, Parse("u:QUBESRPC svc work-vm"), null));
    }

    [Fact]
    public void The_argument_is_set_only_when_the_descriptor_had_a_plus()
    {
        string[] none = ServiceEnvironment.Build(s_none, Parse("u:QUBESRPC svc src"), null);
        Assert.DoesNotContain(none, v => v.StartsWith("QREXEC_SERVICE_ARGUMENT=", System.StringComparison.Ordinal));

        Assert.Contains("QREXEC_SERVICE_ARGUMENT=", ServiceEnvironment.Build(s_none, Parse("u:QUBESRPC svc+ src"), null));
        Assert.Contains("QREXEC_SERVICE_ARGUMENT=a+b", ServiceEnvironment.Build(s_none, Parse("u:QUBESRPC svc+a+b src"), null));
    }

    [Fact]
    public void The_target_type_is_empty_with_two_tokens()
    {
        string[] environment = ServiceEnvironment.Build(s_none, Parse("u:QUBESRPC svc src"), null);
        Assert.Contains("QREXEC_REQUESTED_TARGET_TYPE=", environment);
        Assert.DoesNotContain(environment, v => v.StartsWith("QREXEC_REQUESTED_TARGET=", System.StringComparison.Ordinal));
        Assert.DoesNotContain(environment, v => v.StartsWith("QREXEC_REQUESTED_TARGET_KEYWORD=", System.StringComparison.Ordinal));
    }

    [Fact]
    public void A_name_target_sets_the_requested_target()
    {
        string[] environment = ServiceEnvironment.Build(s_none, Parse("u:QUBESRPC svc src name personal"), null);
        Assert.Contains("QREXEC_REQUESTED_TARGET_TYPE=name", environment);
        Assert.Contains("QREXEC_REQUESTED_TARGET=personal", environment);
        Assert.DoesNotContain(environment, v => v.StartsWith("QREXEC_REQUESTED_TARGET_KEYWORD=", System.StringComparison.Ordinal));
    }

    [Fact]
    public void A_keyword_target_sets_the_keyword_without_the_at_sign()
    {
        string[] environment = ServiceEnvironment.Build(s_none, Parse("u:QUBESRPC svc src keyword @default"), null);
        Assert.Contains("QREXEC_REQUESTED_TARGET_TYPE=keyword", environment);
        Assert.Contains("QREXEC_REQUESTED_TARGET_KEYWORD=default", environment);
        Assert.DoesNotContain(environment, v => v.StartsWith("QREXEC_REQUESTED_TARGET=", System.StringComparison.Ordinal));
    }

    [Fact]
    public void Another_target_type_is_passed_through_without_a_target_variable()
    {
        string[] environment = ServiceEnvironment.Build(s_none, Parse("u:QUBESRPC svc src uuid 1234"), null);
        Assert.Contains("QREXEC_REQUESTED_TARGET_TYPE=uuid", environment);
        Assert.DoesNotContain(environment, v => v.StartsWith("QREXEC_REQUESTED_TARGET=", System.StringComparison.Ordinal));
        Assert.DoesNotContain(environment, v => v.StartsWith("QREXEC_REQUESTED_TARGET_KEYWORD=", System.StringComparison.Ordinal));
    }

    [Fact]
    public void A_given_agent_pid_replaces_the_inherited_one()
    {
        string[] environment = ServiceEnvironment.Build([Var("QREXEC_AGENT_PID", "1")], Parse("u:QUBESRPC svc src"), 4242);
        Assert.Contains("QREXEC_AGENT_PID=4242", environment);
        Assert.DoesNotContain("QREXEC_AGENT_PID=1", environment);

        string[] without = ServiceEnvironment.Build(s_none, Parse("u:QUBESRPC svc src"), null);
        Assert.DoesNotContain(without, v => v.StartsWith("QREXEC_AGENT_PID=", System.StringComparison.Ordinal));
    }

    [Fact]
    public void The_call_variables_come_in_a_fixed_set()
    {
        string[] environment = ServiceEnvironment.Build(s_none, Parse("u:QUBESRPC svc+arg src name tgt"), 9);
        Assert.Equal(
            [
                "QREXEC_SERVICE_FULL_NAME=svc+arg",
                "QREXEC_REMOTE_DOMAIN=src",
                "QREXEC_SERVICE_ARGUMENT=arg",
                "QREXEC_REQUESTED_TARGET_TYPE=name",
                "QREXEC_REQUESTED_TARGET=tgt",
                "QREXEC_AGENT_PID=9",
            ],
            environment);
    }

    [Fact]
    public void A_plain_command_gets_only_the_filtered_environment()
    {
        string[] environment = ServiceEnvironment.Build([Var("HOME", "/root"), Var("QREXEC_X", "1")], Parse("u:ls"), null);
        Assert.Equal(["HOME=/root"], environment);
    }

    [Fact]
    public void Names_that_cannot_be_passed_are_dropped()
    {
        string[] environment = ServiceEnvironment.Build([Var("", "x"), Var("A=B", "c"), Var("OK", "a=b")], Parse("u:ls"), null);
        Assert.Equal(["OK=a=b"], environment);
    }

    [Fact]
    public void Argv_is_the_path_then_a_non_empty_argument()
    {
        Assert.Equal(["/etc/qubes-rpc/svc"], ServiceEnvironment.BuildArgv("/etc/qubes-rpc/svc", Parse("u:QUBESRPC svc src")));
        Assert.Equal(["/etc/qubes-rpc/svc"], ServiceEnvironment.BuildArgv("/etc/qubes-rpc/svc", Parse("u:QUBESRPC svc+ src")));
        Assert.Equal(
            ["/etc/qubes-rpc/svc", "a+b"],
            ServiceEnvironment.BuildArgv("/etc/qubes-rpc/svc", Parse("u:QUBESRPC svc+a+b src name tgt")));
    }
}
