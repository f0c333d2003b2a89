using System.IO;
using Qubes.Qrexec.Policy;
using Xunit;

namespace Qubes.Qrexec.Tests.Policy;

/// <summary>
/// Which decisions notify the user, and through which GUI qube (spec qrexec-policy §10.3). Every
/// kind of denial notifies as upstream's: a denial that comes from the rule (deny, autostart=no,
/// the user's refusal) follows the rule's <c>notify</c>; every other denial notifies, except a
/// requested target that is not even a token and a call upstream fails on; evaluate-only never does.
/// </summary>
public sealed class PolicyNotificationTests
{
    private static readonly PolicyEngine s_engine = WorkedExample.Engine(WorkedExample.Lines(
        "a.Svc * work @anyvm allow autostart=no",
        "b.Svc * work @anyvm allow autostart=no notify=yes",
        "c.Svc * vault @anyvm allow target=@dispvm",
        "d.Svc * work @anyvm allow",
        "e.Svc * work @anyvm allow notify=yes",
        "f.Svc * work @default ask",
        "g.Svc * work @anyvm ask",
        "h.Svc * work @anyvm ask notify=yes",
        "i.Svc * work @anyvm allow target=@dispvm:vault",
        "j.Svc * work @anyvm deny notify=no",
        "k.Svc * * @anyvm deny"));

    [Theory]
    [InlineData("a.Svc", "work", "vault", DenyReason.TargetNotRunning, false)] // the allow's notify=no
    [InlineData("b.Svc", "work", "vault", DenyReason.TargetNotRunning, true)]
    [InlineData("c.Svc", "vault", "personal", DenyReason.NoDefaultDispVm, true)]
    [InlineData("d.Svc", "work", "@default", DenyReason.NoTarget, true)]
    [InlineData("d.Svc", "work", "work", DenyReason.Loopback, true)]
    [InlineData("i.Svc", "work", "personal", DenyReason.NotADispVmTemplate, true)]
    [InlineData("j.Svc", "work", "personal", DenyReason.DeniedByRule, false)]
    [InlineData("k.Svc", "work", "personal", DenyReason.DeniedByRule, true)]
    [InlineData("x.Svc", "work", "personal", DenyReason.NoMatchingRule, true)]
    [InlineData("x.Svc", "work", "@dispvm:vault", DenyReason.NotADispVmTemplate, true)]
    [InlineData("x.Svc", "work", "@anyvm", DenyReason.InvalidTarget, false)] // a syntax error upstream
    public void Denials_of_allow_and_deny_rules_and_of_the_request_notify_as_upstream(string service, string source, string target, DenyReason reason, bool notifies)
    {
        PolicyResult r = s_engine.Evaluate(service, source, target);
        Assert.Equal(reason, r.Reason);
        Assert.Equal(notifies ? Notifications.Denied : Notifications.None, r.Notifications);
        Assert.Equal(notifies, s_engine.ShouldNotify(r));
        Assert.Equal(Notifications.None, s_engine.Evaluate(service, source, target, null, EvaluationMode.JustEvaluate).Notifications);
    }

    [Fact]
    public void Denials_of_an_ask_notify_unless_the_user_refused_under_notify_no()
    {
        Assert.Equal(Notifications.Denied, s_engine.Resolve(s_engine.Evaluate("f.Svc", "work", ""), new ScriptedPrompt("personal")).Notifications);
        Assert.Equal(Notifications.None, s_engine.Resolve(s_engine.Evaluate("g.Svc", "work", ""), new ScriptedPrompt(null)).Notifications);
        Assert.Equal(Notifications.Denied, s_engine.Resolve(s_engine.Evaluate("h.Svc", "work", ""), new ScriptedPrompt(null)).Notifications);
        // a choice that was not offered (the prompt's, or the requested target with assume-yes)
        Assert.Equal(Notifications.Denied, s_engine.Resolve(s_engine.Evaluate("g.Svc", "work", ""), new ScriptedPrompt("mgmt-dvm")).Notifications);
        Assert.Equal(Notifications.Denied, s_engine.Evaluate("g.Svc", "work", "mgmt-dvm", null, EvaluationMode.AssumeYesForAsk).Notifications);
    }

    [Fact]
    public void An_allow_with_notify_yes_notifies_its_approval_even_when_it_is_then_denied()
    {
        Assert.Equal(Notifications.Allowed, s_engine.Evaluate("e.Svc", "work", "personal").Notifications);
        Assert.Equal(Notifications.Allowed | Notifications.Denied, s_engine.Evaluate("e.Svc", "work", "work").Notifications);
        Assert.Equal(Notifications.Allowed, s_engine.Resolve(s_engine.Evaluate("h.Svc", "work", ""), new ScriptedPrompt("personal")).Notifications);
        Assert.Equal(Notifications.None, s_engine.Resolve(s_engine.Evaluate("g.Svc", "work", ""), new ScriptedPrompt("personal")).Notifications);
        Assert.Equal(Notifications.None, s_engine.Evaluate("e.Svc", "work", "personal", null, EvaluationMode.JustEvaluate).Notifications);
    }

    [Fact]
    public void An_unusable_policy_notifies_for_an_invalid_file_name_and_not_for_a_syntax_error()
    {
        using TempDirectory dir = new();
        string policyDir = Directory.CreateDirectory(dir.File("policy.d")).FullName;
        File.WriteAllText(dir.File("system.json"), WorkedExample.SystemJson);
        PolicyHost host = new(new PolicyLoader([dir.File("run"), policyDir], dir.File("legacy")), new SystemInfoFile(dir.File("system.json")));

        File.WriteAllText(Path.Combine(policyDir, "30-user.policy"), "test.Svc * work\n");
        PolicyResult syntax = host.Current.Evaluate("test.Svc", "work", "personal");
        Assert.Equal(DenyReason.PolicyUnusable, syntax.Reason);
        Assert.Equal(Notifications.None, syntax.Notifications);

        // upstream refuses a bad file name as an access denial, which notifies
        File.Delete(Path.Combine(policyDir, "30-user.policy"));
        File.WriteAllText(Path.Combine(policyDir, "30-User.policy"), "test.Svc * work personal allow\n");
        PolicyResult name = host.Current.Evaluate("test.Svc", "work", "personal");
        Assert.Equal(DenyReason.PolicyUnusable, name.Reason);
        Assert.Equal(Notifications.Denied, name.Notifications);
        Assert.Equal(Notifications.None, host.Current.Evaluate("test.Svc", "work", "personal", null, EvaluationMode.JustEvaluate).Notifications);
    }

    [Fact]
    public void Notifications_go_to_a_gui_qube_and_reach_nobody_without_one()
    {
        // dom0 has no GUI qube in the system information: the denial is decided to notify, but nobody is told
        PolicyResult fromDom0 = s_engine.Evaluate("k.Svc", "dom0", "personal");
        Assert.Equal(Notifications.Denied, fromDom0.Notifications);
        Assert.Equal(Notifications.None, s_engine.Notify(fromDom0));
        Assert.False(s_engine.ShouldNotify(fromDom0));
        Assert.Null(s_engine.NotifyGuiVm(fromDom0, Notifications.Denied));
        PolicyResult fromWork = s_engine.Evaluate("k.Svc", "work", "personal");
        Assert.Equal("dom0", s_engine.NotifyGuiVm(fromWork, Notifications.Denied));
        Assert.Equal(Notifications.Denied, s_engine.Notify(fromWork));
    }

    [Fact]
    public void A_relayed_call_notifies_its_denial_to_the_caller_and_its_approval_to_the_remote_qube()
    {
        SystemInfo system = new([
            new QubeInfo("relay", "AppVM", [], null, false, "Running", "aaaaaaaa-0000-4000-8000-000000000000", false, GuiVm: "relay-gui"),
            new QubeInfo("remote-a", "RemoteVM", [], null, false, "NA", "bbbbbbbb-0000-4000-8000-000000000000", false, GuiVm: "remote-gui",
                RelayVm: "relay", TransportRpc: "qubesair.SSHProxy"),
            new QubeInfo("local", "AppVM", [], null, false, "Running", "cccccccc-0000-4000-8000-000000000000", false),
        ]);
        PolicyEngine engine = WorkedExample.Engine("test.Svc * remote-a local allow notify=yes\ntest.Svc * remote-a @anyvm deny", system);
        PolicyResult allowed = engine.Evaluate("test.Svc", "relay", "local", "remote-a");
        Assert.Equal(Notifications.Allowed, engine.Notify(allowed));
        Assert.Equal("remote-gui", engine.NotifyGuiVm(allowed, Notifications.Allowed));
        PolicyResult denied = engine.Evaluate("test.Svc", "relay", "relay", "remote-a");
        Assert.Equal(Notifications.Denied, engine.Notify(denied));
        Assert.Equal("relay-gui", engine.NotifyGuiVm(denied, Notifications.Denied));
    }
}
