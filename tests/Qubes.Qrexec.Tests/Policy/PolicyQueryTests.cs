using System;
using System.Text;
using Qubes.Qrexec.Policy;
using Xunit;

namespace Qubes.Qrexec.Tests.Policy;

public sealed class PolicyQueryTests
{
    [Fact]
    public void Request_without_requested_source()
    {
        byte[] request = new PolicyQuery("work", null, "@default", "qubes.Filecopy+").ToSocketRequest();
        Assert.Equal("source=work\nintended_target=@default\nservice_and_arg=qubes.Filecopy+\n\n", Encoding.ASCII.GetString(request));
    }

    [Fact]
    public void Request_with_requested_source_puts_it_after_the_source()
    {
        byte[] request = new PolicyQuery("sys-usb", "disp12", "vault", "qubes.Gpg+x").ToSocketRequest();
        Assert.Equal("source=sys-usb\nrequested_source=disp12\nintended_target=vault\nservice_and_arg=qubes.Gpg+x\n\n", Encoding.ASCII.GetString(request));
    }

    [Fact]
    public void An_empty_requested_source_is_still_sent()
    {
        byte[] request = new PolicyQuery("work", "", "vault", "a+b").ToSocketRequest();
        Assert.Equal("source=work\nrequested_source=\nintended_target=vault\nservice_and_arg=a+b\n\n", Encoding.ASCII.GetString(request));
    }

    [Theory]
    [InlineData("wo\nrk", null, "vault", "s")]
    [InlineData("work", "x\ny", "vault", "s")]
    [InlineData("work", null, "va\0ult", "s")]
    [InlineData("work", null, "vault", "s\n")]
    public void A_value_that_would_forge_lines_is_refused(string source, string? requested, string target, string service)
    {
        var query = new PolicyQuery(source, requested, target, service);
        Assert.Throws<InvalidOperationException>(() => query.ToSocketRequest());
        PolicyOutcome outcome = PolicyClient.Ask(query, "/nonexistent/policy.sock", "/nonexistent/policy", TimeSpan.FromSeconds(5));
        Assert.False(outcome.Allowed);
        Assert.Null(outcome.Decision);
        Assert.Contains("newline", outcome.Error, StringComparison.Ordinal);
    }

    [Fact]
    public void Outcome_exit_codes_follow_the_policy_child()
    {
        var allow = new PolicyOutcome(new PolicyDecision { Allowed = true }, null);
        var deny = new PolicyOutcome(new PolicyDecision { Allowed = false }, null);
        var failed = new PolicyOutcome(null, "no policy");
        Assert.True(allow.Allowed);
        Assert.Equal(0, allow.ExitCode);
        Assert.False(deny.Allowed);
        Assert.Equal(QrexecProtocol.ExitRequestRefused, deny.ExitCode);
        Assert.False(failed.Allowed);
        Assert.Equal(QrexecProtocol.ExitProblem, failed.ExitCode);
    }
}
