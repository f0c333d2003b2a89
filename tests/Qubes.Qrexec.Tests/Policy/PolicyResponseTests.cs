using System;
using System.Text;
using Qubes.Qrexec.Policy;
using Xunit;

namespace Qubes.Qrexec.Tests.Policy;

public sealed class PolicyResponseTests
{
    private const string Allow = "result=allow\nuser=DEFAULT\ntarget=work\nrequested_target=@default\nautostart=False\n";

    private static PolicyDecision Valid(string answer)
    {
        bool ok = PolicyResponse.TryParse(Encoding.UTF8.GetBytes(answer), out PolicyDecision? decision, out string? error);
        Assert.True(ok, $"rejected: {error}");
        Assert.Null(error);
        Assert.NotNull(decision);
        return decision;
    }

    private static string Malformed(byte[] answer)
    {
        bool ok = PolicyResponse.TryParse(answer, out PolicyDecision? decision, out string? error);
        Assert.False(ok);
        Assert.Null(decision);
        Assert.False(string.IsNullOrEmpty(error));
        return error;
    }

    private static string Malformed(string answer) => Malformed(Encoding.UTF8.GetBytes(answer));

    [Fact]
    public void Valid_allow_fills_every_field()
    {
        PolicyDecision d = Valid(Allow);
        Assert.True(d.Allowed);
        Assert.Equal("DEFAULT", d.User);
        Assert.Equal("work", d.Target);
        Assert.Equal("@default", d.RequestedTarget);
        Assert.False(d.Autostart);
        Assert.Null(d.TargetUuid);
        Assert.Null(d.Service);
        Assert.Null(d.PolicySource);
        Assert.Empty(d.IgnoredKeys);
    }

    [Fact]
    public void Allow_with_autostart_true_and_the_optional_keys()
    {
        PolicyDecision d = Valid("policy_source=sys-usb\nservice=qubes.Relay+x\ntarget_uuid=uuid:6a9c5d3e-0000-4000-8000-000000000001\n"
            + "autostart=True\nrequested_target=@dispvm:tpl\ntarget=@dispvm:tpl\nuser=root\nresult=allow\n");
        Assert.True(d.Allowed);
        Assert.True(d.Autostart);
        Assert.Equal("root", d.User);
        Assert.Equal("@dispvm:tpl", d.Target);
        Assert.Equal("@dispvm:tpl", d.RequestedTarget);
        Assert.Equal("uuid:6a9c5d3e-0000-4000-8000-000000000001", d.TargetUuid);
        Assert.Equal("qubes.Relay+x", d.Service);
        Assert.Equal("sys-usb", d.PolicySource);
    }

    [Fact]
    public void Trailing_newline_is_optional()
    {
        Assert.True(Valid(Allow.TrimEnd('\n')).Allowed);
        Assert.False(Valid("result=deny").Allowed);
    }

    [Fact]
    public void Value_keeps_everything_after_the_first_equals_sign()
    {
        PolicyDecision d = Valid(Allow.Replace("user=DEFAULT", "user=a=b", StringComparison.Ordinal));
        Assert.Equal("a=b", d.User);
    }

    [Fact]
    public void Valid_deny()
    {
        PolicyDecision d = Valid("result=deny\n");
        Assert.False(d.Allowed);
        Assert.Null(d.User);
        Assert.Null(d.Target);
        Assert.Null(d.RequestedTarget);
        Assert.False(d.Autostart);
    }

    [Fact]
    public void Deny_accepts_the_keys_that_are_not_checked_for_deny()
    {
        PolicyDecision d = Valid("result=deny\ntarget_uuid=uuid:x\nservice=s+a\npolicy_source=src\n");
        Assert.False(d.Allowed);
        Assert.Equal("uuid:x", d.TargetUuid);
        Assert.Equal("s+a", d.Service);
        Assert.Equal("src", d.PolicySource);
    }

    [Theory]
    [InlineData("user=DEFAULT")]
    [InlineData("target=work")]
    [InlineData("requested_target=work")]
    [InlineData("autostart=False")]
    [InlineData("autostart=True")]
    public void Deny_with_an_allow_only_key_is_malformed(string line)
    {
        string error = Malformed($"result=deny\n{line}\n");
        Assert.Contains(line[..line.IndexOf('=', StringComparison.Ordinal)], error, StringComparison.Ordinal);
    }

    [Theory]
    [InlineData("user")]
    [InlineData("target")]
    [InlineData("requested_target")]
    [InlineData("autostart")]
    public void Allow_without_a_required_key_is_malformed(string key)
    {
        string answer = string.Join('\n', Array.FindAll(Allow.Split('\n'), l => !l.StartsWith(key + "=", StringComparison.Ordinal)));
        Assert.NotEqual(Allow, answer);
        string error = Malformed(answer);
        Assert.Contains(key, error, StringComparison.Ordinal);
    }

    [Fact]
    public void Missing_result_is_malformed()
    {
        Malformed("user=DEFAULT\ntarget=work\nrequested_target=work\nautostart=False\n");
        Malformed("target_uuid=uuid:x\n");
    }

    [Theory]
    [InlineData("Allow")]
    [InlineData("DENY")]
    [InlineData("allow ")]
    [InlineData(" deny")]
    [InlineData("allow\r")]
    [InlineData("")]
    [InlineData("ask")]
    public void Result_other_than_allow_or_deny_is_malformed(string value)
    {
        Malformed($"result={value}\n");
        Malformed(Allow.Replace("result=allow", "result=" + value, StringComparison.Ordinal));
    }

    [Theory]
    [InlineData("true")]
    [InlineData("false")]
    [InlineData("1")]
    [InlineData("yes")]
    [InlineData("")]
    [InlineData("True ")]
    public void Autostart_other_than_True_or_False_is_malformed(string value)
    {
        Malformed(Allow.Replace("autostart=False", "autostart=" + value, StringComparison.Ordinal));
    }

    [Fact]
    public void Empty_answer_is_malformed()
    {
        Malformed(Array.Empty<byte>());
    }

    [Theory]
    [InlineData(0)]
    [InlineData(7)]
    [InlineData(20)]
    [InlineData(-1)]
    public void A_nul_byte_anywhere_is_malformed(int position)
    {
        byte[] answer = Encoding.UTF8.GetBytes(Allow);
        answer[position < 0 ? answer.Length - 1 : position] = 0;
        Assert.Contains("NUL", Malformed(answer), StringComparison.Ordinal);
        Malformed("result=deny\n\0"u8.ToArray());
    }

    [Fact]
    public void A_4095_byte_answer_is_accepted_and_a_4096_byte_one_is_not()
    {
        string prefix = Allow + "padding=";
        string answer4095 = prefix + new string('x', 4095 - prefix.Length - 1) + "\n";
        Assert.Equal(4095, answer4095.Length);
        Assert.Equal(PolicyResponse.MaxLength, answer4095.Length);
        PolicyDecision d = Valid(answer4095);
        Assert.True(d.Allowed);
        Assert.Equal(["padding"], d.IgnoredKeys);

        string answer4096 = prefix + new string('x', 4096 - prefix.Length - 1) + "\n";
        Assert.Equal(4096, answer4096.Length);
        Malformed(answer4096);
    }

    [Theory]
    [InlineData("result=allow")]
    [InlineData("user=root")]
    [InlineData("target=other")]
    [InlineData("requested_target=other")]
    [InlineData("autostart=False")]
    [InlineData("target_uuid=uuid:x")]
    [InlineData("service=s")]
    [InlineData("policy_source=p")]
    public void A_recognised_key_twice_is_malformed(string line)
    {
        string answer = Allow + "target_uuid=uuid:y\nservice=t\npolicy_source=q\n" + line + "\n";
        Assert.Contains("duplicate", Malformed(answer), StringComparison.Ordinal);
    }

    [Fact]
    public void A_duplicate_key_is_malformed_for_deny_too()
    {
        Malformed("result=deny\nresult=deny\n");
        Malformed("result=deny\nservice=a\nservice=a\n");
    }

    [Fact]
    public void Unknown_keys_are_ignored_and_listed()
    {
        PolicyDecision d = Valid("extra=1\n" + Allow + "x-info=a=b\n=no key\nextra=2\n");
        Assert.True(d.Allowed);
        Assert.Equal("work", d.Target);
        Assert.Equal(["extra", "x-info", "", "extra"], d.IgnoredKeys);
        Assert.Equal(["note"], Valid("result=deny\nnote=\n").IgnoredKeys);
    }

    [Fact]
    public void An_unknown_line_without_equals_is_malformed()
    {
        Assert.Contains("'='", Malformed(Allow + "garbage\n"), StringComparison.Ordinal);
        Malformed("result=deny\nresult\n");
    }

    [Theory]
    [InlineData("result=deny\n\n")]
    [InlineData("\nresult=deny\n")]
    [InlineData("result=deny\n\nservice=x\n")]
    [InlineData("\n")]
    [InlineData("\n\n")]
    public void An_empty_line_is_malformed_and_only_one_trailing_newline_is_stripped(string answer)
    {
        Malformed(answer);
    }

    [Fact]
    public void Carriage_returns_are_not_line_ends()
    {
        Malformed(Allow.Replace("\n", "\r\n", StringComparison.Ordinal));
    }
}
