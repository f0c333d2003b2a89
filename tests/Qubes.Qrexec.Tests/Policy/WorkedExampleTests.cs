using System.Collections.Generic;
using Qubes.Qrexec.Policy;
using Xunit;

namespace Qubes.Qrexec.Tests.Policy;

/// <summary>The decisions of spec qrexec-policy §13.3, and the answer lines of §12.</summary>
public sealed class WorkedExampleTests
{
    private static readonly PolicyEngine s_engine = WorkedExample.Engine();

    private static PolicyResult Evaluate(string service, string source, string target, EvaluationMode mode = EvaluationMode.Normal)
        => s_engine.Evaluate(service, source, target, null, mode);

    private static void AssertRule(int number, in PolicyResult result)
        => Assert.Equal(number, s_engine.RuleOf(result)?.Line);

    [Fact]
    public void Filecopy_between_work_qubes_is_allowed_by_R1()
    {
        PolicyResult r = Evaluate("qubes.Filecopy", "work", "work-email");
        AssertRule(1, r);
        Assert.Equal("user=DEFAULT/result=allow/target=work-email/target_uuid=uuid:22222222-2222-4222-8222-222222222222/autostart=True/requested_target=work-email",
            WorkedExample.Answer(s_engine, r));
    }

    [Theory]
    [InlineData("personal")]
    [InlineData("@default")]
    [InlineData("")]
    public void Filecopy_from_work_to_anything_else_is_denied_by_R2(string target)
    {
        PolicyResult r = Evaluate("qubes.Filecopy", "work", target);
        AssertRule(2, r);
        Assert.Equal(DenyReason.DeniedByRule, r.Reason);
        Assert.Equal("result=deny", s_engine.FormatAnswer(r));
    }

    [Fact]
    public void Filecopy_from_work_to_itself_matches_R1_and_is_denied_as_loopback()
    {
        PolicyResult r = Evaluate("qubes.Filecopy", "work", "work");
        AssertRule(1, r);
        Assert.Equal(DenyReason.Loopback, r.Reason);
        Assert.Equal("result=deny", s_engine.FormatAnswer(r));
    }

    [Theory]
    [InlineData("@default")]
    [InlineData("no-such-vm")]
    public void Filecopy_from_personal_asks_with_the_choices_of_the_spec(string target)
    {
        PolicyResult r = Evaluate("qubes.Filecopy", "personal", target);
        AssertRule(4, r);
        Assert.Equal(Resolution.Ask, r.Resolution);
        Assert.Equal("@default", r.RequestedTarget);
        IReadOnlyList<string> choices = s_engine.AskChoices(r);
        Assert.Equal(["default-dvm", "work", "work-dvm", "work-email", "work-printing", "@dispvm:default-dvm", "@dispvm:work-dvm", "@dispvm:work-printing"], choices);
        Assert.Equal("work", s_engine.AskDefault(r, choices));
    }

    [Fact]
    public void Filecopy_from_personal_to_vault_is_denied_by_R3()
    {
        PolicyResult r = Evaluate("qubes.Filecopy", "personal", "vault");
        AssertRule(3, r);
        Assert.False(r.IsAllowed);
    }

    [Fact]
    public void PrintFile_to_dispvm_from_work_takes_R6_because_works_default_dispvm_is_not_work_printing()
    {
        PolicyResult r = Evaluate("qubes.PrintFile", "work", "@dispvm");
        AssertRule(6, r);
        Assert.Equal("user=DEFAULT/result=allow/target=@dispvm:work-printing/target_uuid=@dispvm:uuid:55555555-5555-4555-8555-555555555555/autostart=True/requested_target=@dispvm",
            WorkedExample.Answer(s_engine, r));
    }

    [Fact]
    public void PrintFile_to_the_named_dispvm_template_is_allowed_by_R5()
    {
        PolicyResult r = Evaluate("qubes.PrintFile", "work", "@dispvm:work-printing");
        AssertRule(5, r);
        Assert.Equal("user=DEFAULT/result=allow/target=@dispvm:work-printing/target_uuid=@dispvm:uuid:55555555-5555-4555-8555-555555555555/autostart=True/requested_target=@dispvm:work-printing",
            WorkedExample.Answer(s_engine, r));
    }

    [Theory]
    [InlineData("personal", "@dispvm:work-printing")]
    [InlineData("work", "@dispvm:default-dvm")]
    public void PrintFile_other_dispvm_calls_are_denied_by_R7(string source, string target)
    {
        PolicyResult r = Evaluate("qubes.PrintFile", source, target);
        AssertRule(7, r);
        Assert.False(r.IsAllowed);
    }

    [Fact]
    public void A_dispvm_of_a_qube_that_is_no_dispvm_template_is_an_invalid_request()
    {
        PolicyResult r = Evaluate("qubes.PrintFile", "work", "@dispvm:work");
        Assert.Equal(DenyReason.NotADispVmTemplate, r.Reason);
        Assert.Equal(-1, r.RuleIndex);
        Assert.Equal("result=deny", s_engine.FormatAnswer(r));
    }

    [Fact]
    public void OpenURL_to_dispvm_resolves_through_the_sources_default_dispvm()
    {
        PolicyResult r = Evaluate("qubes.OpenURL", "personal", "@dispvm");
        AssertRule(9, r);
        Assert.Equal("user=DEFAULT/result=allow/target=@dispvm:default-dvm/target_uuid=@dispvm:uuid:77777777-7777-4777-8777-777777777777/autostart=True/requested_target=@dispvm",
            WorkedExample.Answer(s_engine, r));
    }

    [Fact]
    public void OpenURL_to_dispvm_from_a_qube_without_default_dispvm_is_denied()
    {
        PolicyResult r = Evaluate("qubes.OpenURL", "vault", "@dispvm");
        AssertRule(9, r);
        Assert.Equal(DenyReason.NoDefaultDispVm, r.Reason);
    }

    [Fact]
    public void OpenURL_from_personal_asks_with_only_the_resolved_dispvm()
    {
        PolicyResult r = Evaluate("qubes.OpenURL", "personal", "@default");
        AssertRule(8, r);
        IReadOnlyList<string> choices = s_engine.AskChoices(r);
        Assert.Equal(["@dispvm:default-dvm"], choices);
        Assert.Equal("@dispvm:default-dvm", s_engine.AskDefault(r, choices));
    }

    [Fact]
    public void OpenURL_from_work_to_default_is_denied_by_R10()
    {
        PolicyResult r = Evaluate("qubes.OpenURL", "work", "@default");
        AssertRule(10, r);
        Assert.False(r.IsAllowed);
    }

    [Fact]
    public void GetDate_is_redirected_to_dom0_without_a_target_uuid()
    {
        PolicyResult r = Evaluate("qubes.GetDate", "work", "@default");
        AssertRule(11, r);
        Assert.Equal("user=DEFAULT/result=allow/target=dom0/autostart=True/requested_target=@default", WorkedExample.Answer(s_engine, r));
    }

    [Fact]
    public void GetDate_to_dom0_by_name_matches_no_rule()
    {
        PolicyResult r = Evaluate("qubes.GetDate", "work", "dom0");
        Assert.Equal(DenyReason.NoMatchingRule, r.Reason);
        Assert.Null(s_engine.RuleOf(r));
    }

    [Fact]
    public void Backup_to_a_halted_qube_with_autostart_no_is_denied()
    {
        PolicyResult r = Evaluate("qubes.Backup", "work", "vault");
        AssertRule(12, r);
        Assert.Equal(DenyReason.TargetNotRunning, r.Reason);
    }

    [Fact]
    public void Backup_to_a_running_qube_names_the_rules_user_and_autostart_false()
    {
        PolicyResult r = Evaluate("qubes.Backup", "work", "personal");
        AssertRule(13, r);
        Assert.Equal("user=root/result=allow/target=personal/target_uuid=uuid:33333333-3333-4333-8333-333333333333/autostart=False/requested_target=personal",
            WorkedExample.Answer(s_engine, r));
    }

    [Fact]
    public void A_service_without_rules_is_denied()
    {
        PolicyResult r = Evaluate("Other.Service", "work", "personal");
        Assert.Equal(DenyReason.NoMatchingRule, r.Reason);
        Assert.Equal("result=deny", s_engine.FormatAnswer(r));
    }

    [Fact]
    public void Evaluate_only_allow_is_the_bare_result_line()
    {
        PolicyResult r = Evaluate("qubes.Filecopy", "work", "work-email", EvaluationMode.JustEvaluate);
        Assert.True(r.IsAllowed);
        Assert.Equal("result=allow", s_engine.FormatAnswer(r));
    }

    [Fact]
    public void Ask_in_evaluate_only_mode_is_a_denial()
    {
        PolicyResult r = Evaluate("qubes.Filecopy", "personal", "work", EvaluationMode.JustEvaluate);
        Assert.Equal(DenyReason.AskWhileEvaluating, r.Reason);
        Assert.Equal("result=deny", s_engine.FormatAnswer(r));
    }

    [Theory]
    [InlineData("work", true)]
    [InlineData("@dispvm:work-dvm", true)]
    [InlineData("vault", false)]
    [InlineData("@default", false)]
    public void Evaluate_only_with_assume_yes_allows_an_ask_whose_requested_target_is_offered(string target, bool allowed)
    {
        // what policy.EvalSimple asks: would the call go through if the user said yes to it?
        PolicyResult r = Evaluate("qubes.Filecopy", "personal", target, EvaluationMode.JustEvaluate | EvaluationMode.AssumeYesForAsk);
        Assert.Equal(allowed ? "result=allow" : "result=deny", s_engine.FormatAnswer(r));
        Assert.Equal(Notifications.None, r.Notifications);
    }

    [Fact]
    public void Assume_yes_allows_a_requested_target_among_the_choices()
    {
        PolicyResult r = Evaluate("qubes.Filecopy", "personal", "work-email", EvaluationMode.AssumeYesForAsk);
        AssertRule(4, r);
        Assert.Equal("user=DEFAULT/result=allow/target=work-email/target_uuid=uuid:22222222-2222-4222-8222-222222222222/autostart=True/requested_target=work-email",
            WorkedExample.Answer(s_engine, r));
    }

    [Theory]
    [InlineData("@default")]
    [InlineData("mgmt-dvm")]
    [InlineData("dom0")]
    public void Assume_yes_denies_a_requested_target_not_offered(string target)
    {
        PolicyResult r = Evaluate("qubes.Filecopy", "personal", target, EvaluationMode.AssumeYesForAsk);
        Assert.False(r.IsAllowed);
        Assert.Equal("result=deny", s_engine.FormatAnswer(r));
    }
}
