using System.Collections.Generic;
using Qubes.Qrexec.Policy;
using Xunit;

namespace Qubes.Qrexec.Tests.Policy;

/// <summary>
/// What an <c>ask</c> offers and preselects, what it accepts and how assume-yes decides (spec
/// qrexec-policy §10), with the answers upstream's engine gives for the same policy and system.
/// </summary>
public sealed class PolicyAskTests
{
    private static readonly PolicyEngine s_engine = WorkedExample.Engine(WorkedExample.Lines(
        "a.Svc * work @anyvm ask target=vault autostart=no",
        "b.Svc * work @anyvm ask target=@dispvm:work-dvm autostart=no",
        "c.Svc * work @anyvm ask target=personal autostart=no",
        "d.Svc * work @anyvm ask target=@adminvm autostart=no",
        "e.Svc * work @anyvm ask autostart=no",
        "f.Svc * work @anyvm ask target=uuid:33333333-3333-4333-8333-333333333333",
        "g.Svc * personal @anyvm ask default_target=uuid:11111111-1111-4111-8111-111111111111",
        "h.Svc * personal @anyvm ask target=uuid:11111111-1111-4111-8111-111111111111 default_target=uuid:11111111-1111-4111-8111-111111111111",
        "i.Svc * personal @anyvm ask default_target=@dispvm:uuid:66666666-6666-4666-8666-666666666666",
        "j.Svc * personal @anyvm ask target=@adminvm default_target=uuid:00000000-0000-0000-0000-000000000000",
        "k.Svc * personal @anyvm ask target=ghost default_target=ghost",
        "l.Svc * work @anyvm ask",
        "m.Svc * work * ask target=@adminvm",
        "n.Svc * dom0 @anyvm ask",
        "o.Svc * work @anyvm ask target=@dispvm",
        "p.Svc * work @default ask",
        "p.Svc * work @dispvm:ghost allow",
        "q.Svc * work @anyvm ask target=mgmt-dvm",
        "r.Svc * work @anyvm ask target=work notify=yes"));

    private static PolicyResult Ask(string service, string source = "work", string target = "@default")
    {
        PolicyResult r = s_engine.Evaluate(service, source, target);
        Assert.Equal(Resolution.Ask, r.Resolution);
        return r;
    }

    private static PolicyResult AssumeYes(string service, string target, string source = "work", bool justEvaluate = false)
        => s_engine.Evaluate(service, source, target, null, EvaluationMode.AssumeYesForAsk | (justEvaluate ? EvaluationMode.JustEvaluate : EvaluationMode.Normal));

    private static string Answer(in PolicyResult r) => WorkedExample.Answer(s_engine, r);

    [Theory]
    [InlineData("a.Svc")] // vault is halted
    [InlineData("b.Svc")] // a new disposable always starts
    public void Autostart_no_applies_to_the_target_parameter_too(string service)
    {
        PolicyResult ask = Ask(service);
        Assert.Empty(s_engine.AskChoices(ask));
        PolicyResult r = s_engine.Resolve(ask, new ScriptedPrompt("vault"));
        Assert.Equal(DenyReason.NoChoices, r.Reason);
        Assert.Equal(Notifications.Denied, r.Notifications);
        Assert.Equal(DenyReason.NoChoices, AssumeYes(service, service == "a.Svc" ? "vault" : "@dispvm:work-dvm").Reason);
    }

    [Fact]
    public void Autostart_no_keeps_a_running_target_parameter_and_dom0()
    {
        Assert.Equal(["personal"], s_engine.AskChoices(Ask("c.Svc")));
        Assert.Equal("user=DEFAULT/result=allow/target=personal/target_uuid=uuid:33333333-3333-4333-8333-333333333333/autostart=False/requested_target=personal",
            Answer(AssumeYes("c.Svc", "personal")));
        Assert.Equal(["dom0"], s_engine.AskChoices(Ask("d.Svc")));
    }

    [Theory]
    [InlineData("personal", true)]
    [InlineData("vault", false)]
    [InlineData("work-email", false)]
    [InlineData("@dispvm:work-dvm", false)]
    [InlineData("@dispvm", false)]
    public void Assume_yes_with_autostart_no_never_allows_a_halted_target_or_a_new_disposable(string target, bool allowed)
    {
        PolicyResult r = AssumeYes("e.Svc", target);
        Assert.Equal(allowed, r.IsAllowed);
        Assert.Equal(allowed ? DenyReason.None : DenyReason.NotAmongChoices, r.Reason);
        Assert.Equal(allowed, AssumeYes("e.Svc", target, justEvaluate: true).IsAllowed);
        if (allowed)
        {
            Assert.EndsWith("/autostart=False/requested_target=personal", Answer(r), System.StringComparison.Ordinal);
        }
    }

    [Fact]
    public void A_uuid_target_parameter_is_offered_and_approved_exactly_as_written()
    {
        PolicyResult ask = Ask("f.Svc");
        Assert.Equal(["uuid:33333333-3333-4333-8333-333333333333"], s_engine.AskChoices(ask));
        Assert.Equal("user=DEFAULT/result=allow/target=uuid:33333333-3333-4333-8333-333333333333/target_uuid=uuid:33333333-3333-4333-8333-333333333333/autostart=True/requested_target=@default",
            Answer(s_engine.Approve(ask, "uuid:33333333-3333-4333-8333-333333333333")));
        Assert.Equal(DenyReason.NotAmongChoices, s_engine.Approve(ask, "personal").Reason);
        Assert.Equal(DenyReason.NotAmongChoices, s_engine.Resolve(ask, new ScriptedPrompt("personal")).Reason);
        Assert.Equal("user=DEFAULT/result=allow/target=uuid:33333333-3333-4333-8333-333333333333/target_uuid=uuid:33333333-3333-4333-8333-333333333333/autostart=True/requested_target=uuid:33333333-3333-4333-8333-333333333333",
            Answer(AssumeYes("f.Svc", "uuid:33333333-3333-4333-8333-333333333333")));
        Assert.Equal(DenyReason.NotAmongChoices, AssumeYes("f.Svc", "personal").Reason);
    }

    [Theory]
    [InlineData("g.Svc", null)] // collected choices are names: a uuid: default is none of them
    [InlineData("h.Svc", "uuid:11111111-1111-4111-8111-111111111111")]
    [InlineData("i.Svc", null)]
    [InlineData("j.Svc", "dom0")] // a name of dom0 becomes dom0
    public void A_default_target_is_kept_as_written_and_preselected_only_when_offered_so(string service, string? preselected)
    {
        PolicyResult ask = Ask(service, "personal");
        ScriptedPrompt prompt = new(null);
        s_engine.Resolve(ask, prompt);
        Assert.Equal(preselected, Assert.Single(prompt.Requests).DefaultTarget);
        Assert.Equal(preselected, s_engine.AskDefault(ask, s_engine.AskChoices(ask)));
    }

    [Fact]
    public void A_default_target_the_system_does_not_know_is_kept_when_offered()
    {
        PolicyResult ask = Ask("k.Svc", "personal");
        IReadOnlyList<string> choices = s_engine.AskChoices(ask);
        Assert.Equal(["ghost"], choices);
        Assert.Equal("ghost", s_engine.AskDefault(ask, choices));
        // choosing it leaves no qube to allow the call to: upstream fails the call
        PolicyResult r = s_engine.Resolve(ask, new ScriptedPrompt("ghost"));
        Assert.Equal(DenyReason.UnknownQube, r.Reason);
        Assert.Equal(Notifications.None, r.Notifications);
    }

    [Theory]
    [InlineData("l.Svc", "personal", true)]
    [InlineData("l.Svc", "uuid:33333333-3333-4333-8333-333333333333", false)] // offered by name only
    [InlineData("m.Svc", "dom0", true)]
    [InlineData("m.Svc", "@adminvm", false)] // offered as dom0
    [InlineData("m.Svc", "uuid:00000000-0000-0000-0000-000000000000", false)]
    public void Assume_yes_compares_the_requested_target_with_the_choices_as_text(string service, string target, bool allowed)
    {
        PolicyResult r = AssumeYes(service, target);
        Assert.Equal(allowed, r.IsAllowed);
        Assert.Equal(allowed ? Notifications.None : Notifications.Denied, r.Notifications);
    }

    [Fact]
    public void An_ask_from_a_source_without_a_gui_qube_asks_nobody()
    {
        PolicyResult ask = Ask("n.Svc", "dom0");
        ScriptedPrompt prompt = new("work");
        PolicyResult r = s_engine.Resolve(ask, prompt);
        Assert.Equal(DenyReason.NoGuiVm, r.Reason);
        Assert.Empty(prompt.Requests);
        Assert.Equal("result=deny", s_engine.FormatAnswer(r));
    }

    [Fact]
    public void A_target_parameter_is_offered_unchecked_and_dispvm_cannot_be_allowed_when_chosen()
    {
        PolicyResult dispvm = Ask("o.Svc");
        Assert.Equal(["@dispvm"], s_engine.AskChoices(dispvm));
        Assert.Equal(DenyReason.UnknownQube, s_engine.Resolve(dispvm, new ScriptedPrompt("@dispvm")).Reason);
        Assert.Equal(DenyReason.UnknownQube, AssumeYes("o.Svc", "@dispvm").Reason);
        // evaluate-only allows what is offered before looking it up
        Assert.Equal("result=allow", s_engine.FormatAnswer(AssumeYes("o.Svc", "@dispvm", justEvaluate: true)));

        // neither the internal qube nor the source itself is taken out of a target= choice
        Assert.Equal("user=DEFAULT/result=allow/target=mgmt-dvm/target_uuid=uuid:88888888-8888-4888-8888-888888888888/autostart=True/requested_target=@default",
            Answer(s_engine.Resolve(Ask("q.Svc"), new ScriptedPrompt("mgmt-dvm"))));
        PolicyResult loopback = s_engine.Resolve(Ask("r.Svc"), new ScriptedPrompt("work"));
        Assert.Equal(DenyReason.Loopback, loopback.Reason);
        // notify=yes: upstream tells of the approval before it finds the loopback, then of the denial
        Assert.Equal(Notifications.Allowed | Notifications.Denied, loopback.Notifications);
    }

    [Fact]
    public void A_disposable_template_that_is_no_qube_among_the_collected_rules_fails_the_ask()
    {
        PolicyResult ask = Ask("p.Svc");
        Assert.Empty(s_engine.AskChoices(ask));
        PolicyResult r = s_engine.Resolve(ask, new ScriptedPrompt("personal"));
        Assert.Equal(DenyReason.UnknownQube, r.Reason);
        Assert.Equal(Notifications.None, r.Notifications);
    }
}

/// <summary>A prompt that answers with a fixed target and remembers what it was asked.</summary>
internal sealed class ScriptedPrompt(string? answer) : IAskPrompt
{
    public List<AskRequest> Requests { get; } = [];

    public string? Ask(AskRequest request)
    {
        Requests.Add(request);
        return answer;
    }
}
