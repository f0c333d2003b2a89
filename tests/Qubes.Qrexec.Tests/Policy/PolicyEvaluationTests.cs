using System;
using System.Collections.Generic;
using System.IO;
using Qubes.Qrexec.Policy;
using Xunit;

namespace Qubes.Qrexec.Tests.Policy;

/// <summary>Matching of every token in its columns, request preparation, allow, ask and the answer lines (spec qrexec-policy §3, §7-§12).</summary>
public sealed class PolicyEvaluationTests
{
    private static PolicyResult Decide(string rule, string source, string target, string service = "test.Svc")
    {
        PolicyEngine engine = WorkedExample.Engine(rule);
        return engine.Evaluate(service, source, target);
    }

    private static bool Matches(string rule, string source, string target, string service = "test.Svc")
        => Decide(rule, source, target, service).RuleIndex == 0;

    [Theory]
    // SOURCE column
    [InlineData("test.Svc * work personal allow", "work", "personal", true)]
    [InlineData("test.Svc * uuid:11111111-1111-4111-8111-111111111111 personal allow", "work", "personal", true)]
    [InlineData("test.Svc * work personal allow", "uuid:11111111-1111-4111-8111-111111111111", "personal", true)]
    [InlineData("test.Svc * personal personal allow", "work", "personal", false)]
    [InlineData("test.Svc * * personal allow", "dom0", "personal", true)]
    [InlineData("test.Svc * @anyvm personal allow", "dom0", "personal", false)]
    [InlineData("test.Svc * @anyvm personal allow", "vault", "personal", true)]
    [InlineData("test.Svc * @adminvm personal allow", "dom0", "personal", true)]
    [InlineData("test.Svc * dom0 personal allow", "dom0", "personal", true)]
    [InlineData("test.Svc * uuid:00000000-0000-0000-0000-000000000000 personal allow", "dom0", "personal", true)]
    [InlineData("test.Svc * @adminvm personal allow", "work", "personal", false)]
    [InlineData("test.Svc * @type:AppVM personal allow", "work", "personal", true)]
    [InlineData("test.Svc * @type:AdminVM personal allow", "dom0", "personal", true)]
    [InlineData("test.Svc * @type:TemplateVM personal allow", "work", "personal", false)]
    [InlineData("test.Svc * @tag:secure personal allow", "vault", "personal", true)]
    [InlineData("test.Svc * @tag:secure personal allow", "work", "personal", false)]
    [InlineData("test.Svc * @tag:no-such-tag personal allow", "work", "personal", false)]
    [InlineData("test.Svc * @dispvm:work-dvm personal allow", "work-dvm", "personal", false)]
    [InlineData("test.Svc * @dispvm:@tag:work personal allow", "work-dvm", "personal", false)]
    [InlineData("test.Svc * no-such-vm personal allow", "work", "personal", false)]
    // TARGET column
    [InlineData("test.Svc * work * allow", "work", "dom0", true)]
    [InlineData("test.Svc * work * allow", "work", "@dispvm", true)]
    [InlineData("test.Svc * work @anyvm allow", "work", "dom0", false)]
    [InlineData("test.Svc * work @anyvm allow", "work", "@adminvm", false)]
    [InlineData("test.Svc * work @anyvm allow", "work", "@default", true)]
    [InlineData("test.Svc * work @anyvm allow", "work", "@dispvm:work-dvm", true)]
    [InlineData("test.Svc * work @adminvm allow", "work", "dom0", true)]
    [InlineData("test.Svc * work @adminvm allow", "work", "uuid:00000000-0000-0000-0000-000000000000", true)]
    [InlineData("test.Svc * work dom0 allow", "work", "@adminvm", true)]
    [InlineData("test.Svc * work @default allow target=personal", "work", "@default", true)]
    [InlineData("test.Svc * work @default allow target=personal", "work", "personal", false)]
    [InlineData("test.Svc * work @type:AppVM allow", "work", "personal", true)]
    [InlineData("test.Svc * work @type:AppVM allow", "work", "@dispvm", false)]
    [InlineData("test.Svc * work @tag:personal allow", "work", "personal", true)]
    [InlineData("test.Svc * work @tag:personal allow", "work", "@default", false)]
    [InlineData("test.Svc * work @dispvm allow", "work", "@dispvm", true)]
    [InlineData("test.Svc * work @dispvm allow", "work", "@dispvm:work-dvm", false)]
    [InlineData("test.Svc * work @dispvm:work-dvm allow", "work", "@dispvm:work-dvm", true)]
    [InlineData("test.Svc * work @dispvm:work-dvm allow", "work", "@dispvm:uuid:66666666-6666-4666-8666-666666666666", true)]
    [InlineData("test.Svc * work @dispvm:work-dvm allow", "work", "@dispvm", true)]
    [InlineData("test.Svc * personal @dispvm:work-dvm allow", "personal", "@dispvm", false)]
    [InlineData("test.Svc * work @dispvm:@tag:work allow", "work", "@dispvm:work-printing", true)]
    [InlineData("test.Svc * work @dispvm:@tag:work allow", "work", "@dispvm", true)]
    [InlineData("test.Svc * work @dispvm:@tag:work allow", "work", "@dispvm:default-dvm", false)]
    [InlineData("test.Svc * work @dispvm:@tag:printing allow", "work", "@dispvm", false)]
    [InlineData("test.Svc * work uuid:33333333-3333-4333-8333-333333333333 allow", "work", "personal", true)]
    [InlineData("test.Svc * work personal allow", "work", "uuid:33333333-3333-4333-8333-333333333333", true)]
    public void Tokens_match_as_the_spec_says(string rule, string source, string target, bool matches)
        => Assert.Equal(matches, Matches(rule, source, target));

    [Theory]
    [InlineData("test.Svc +arg work personal allow", "test.Svc+arg", true)]
    [InlineData("test.Svc +arg work personal allow", "test.Svc+other", false)]
    [InlineData("test.Svc +arg work personal allow", "test.Svc", false)]
    [InlineData("test.Svc + work personal allow", "test.Svc", true)]
    [InlineData("test.Svc + work personal allow", "test.Svc+", true)]
    [InlineData("test.Svc + work personal allow", "test.Svc+x", false)]
    [InlineData("test.Svc * work personal allow", "test.Svc+a+b", true)]
    [InlineData("test.Svc +a+b work personal allow", "test.Svc+a+b", true)]
    [InlineData("* * work personal allow", "any.Service+x", true)]
    [InlineData("test.Svc * work personal allow", "test.SvcX", false)]
    public void Service_and_argument_are_split_at_the_first_plus_and_compared_exactly(string rule, string serviceAndArg, bool matches)
        => Assert.Equal(matches, Matches(rule, "work", "personal", serviceAndArg));

    [Fact]
    public void Rules_for_every_service_keep_their_place_among_the_rules_of_one_service()
    {
        PolicyEngine engine = WorkedExample.Engine(WorkedExample.Lines(
            "a.Svc * work personal deny",
            "* * work personal allow",
            "b.Svc * work personal deny",
            "a.Svc * work vault allow"));
        Assert.Equal(0, engine.Evaluate("a.Svc", "work", "personal").RuleIndex);
        Assert.Equal(1, engine.Evaluate("b.Svc", "work", "personal").RuleIndex);
        Assert.Equal(1, engine.Evaluate("c.Svc", "work", "personal").RuleIndex);
        Assert.Equal(3, engine.Evaluate("a.Svc", "work", "vault").RuleIndex);
        Assert.Equal(DenyReason.NoMatchingRule, engine.Evaluate("c.Svc", "work", "vault").Reason);
    }

    [Theory]
    [InlineData("@anyvm", DenyReason.InvalidTarget)]
    [InlineData("*", DenyReason.InvalidTarget)]
    [InlineData("@tag:work", DenyReason.InvalidTarget)]
    [InlineData("@type:AppVM", DenyReason.InvalidTarget)]
    [InlineData("@dispvm:@tag:work", DenyReason.InvalidTarget)]
    [InlineData("@dispvm:", DenyReason.InvalidTarget)]
    [InlineData("@bogus", DenyReason.InvalidTarget)]
    [InlineData("@dispvm:no-such-vm", DenyReason.NotADispVmTemplate)]
    [InlineData("@dispvm:vault", DenyReason.NotADispVmTemplate)]
    public void A_requested_target_that_cannot_be_one_is_denied_before_any_rule(string target, DenyReason reason)
    {
        PolicyResult r = Decide("* * @anyvm * allow", "work", target);
        Assert.Equal(reason, r.Reason);
        Assert.Equal(-1, r.RuleIndex);
    }

    [Fact]
    public void An_unknown_source_is_denied_and_an_empty_service_is_evaluated_as_any_other()
    {
        Assert.Equal(DenyReason.UnknownSource, Decide("* * * * allow", "ghost", "personal").Reason);
        Assert.Equal(DenyReason.UnknownSource, Decide("* * * * allow", "@adminvm", "personal").Reason);
        // the qrexec daemon refuses an empty service name before asking; the policy itself has no such rule
        Assert.True(Decide("* * * * allow", "work", "personal", "+arg").IsAllowed);
        Assert.Equal(DenyReason.NoMatchingRule, Decide("test.Svc * * * allow", "work", "personal", "+arg").Reason);
    }

    [Fact]
    public void An_allow_to_default_without_redirect_is_denied_and_a_redirect_to_an_unknown_qube_too()
    {
        Assert.Equal(DenyReason.NoTarget, Decide("test.Svc * work @anyvm allow", "work", "@default").Reason);
        Assert.Equal(DenyReason.NoTarget, Decide("test.Svc * work @anyvm allow target=gone", "work", "personal").Reason);
        Assert.Equal(DenyReason.NotADispVmTemplate, Decide("test.Svc * work @anyvm allow target=@dispvm:vault", "work", "personal").Reason);
    }

    [Fact]
    public void A_redirect_replaces_the_target_as_written_and_the_requested_target_is_kept()
    {
        PolicyEngine engine = WorkedExample.Engine(WorkedExample.Lines(
            "test.Svc * work @anyvm allow target=uuid:33333333-3333-4333-8333-333333333333 user=alice notify=yes",
            "other.Svc * work @anyvm allow target=personal"));
        PolicyResult r = engine.Evaluate("test.Svc+x", "work", "vault");
        // upstream writes target= as the rule wrote it: a uuid: form stays one
        Assert.Equal("user=alice/result=allow/target=uuid:33333333-3333-4333-8333-333333333333/target_uuid=uuid:33333333-3333-4333-8333-333333333333/autostart=True/requested_target=vault",
            WorkedExample.Answer(engine, r));
        Assert.True(engine.ShouldNotify(r));
        Assert.Equal("user=DEFAULT/result=allow/target=personal/target_uuid=uuid:33333333-3333-4333-8333-333333333333/autostart=True/requested_target=vault",
            WorkedExample.Answer(engine, engine.Evaluate("other.Svc", "work", "vault")));
    }

    [Fact]
    public void A_target_requested_by_uuid_is_answered_by_uuid_also_for_a_disposable()
    {
        PolicyEngine engine = WorkedExample.Engine("test.Svc * work * allow");
        Assert.Equal("user=DEFAULT/result=allow/target=uuid:33333333-3333-4333-8333-333333333333/target_uuid=uuid:33333333-3333-4333-8333-333333333333/autostart=True/requested_target=uuid:33333333-3333-4333-8333-333333333333",
            WorkedExample.Answer(engine, engine.Evaluate("test.Svc", "work", "uuid:33333333-3333-4333-8333-333333333333")));
        Assert.Equal("user=DEFAULT/result=allow/target=@dispvm:uuid:66666666-6666-4666-8666-666666666666/target_uuid=@dispvm:uuid:66666666-6666-4666-8666-666666666666/autostart=True/requested_target=@dispvm:uuid:66666666-6666-4666-8666-666666666666",
            WorkedExample.Answer(engine, engine.Evaluate("test.Svc", "work", "@dispvm:uuid:66666666-6666-4666-8666-666666666666")));
        // @dispvm becomes the default template by name
        Assert.Equal("user=DEFAULT/result=allow/target=@dispvm:work-dvm/target_uuid=@dispvm:uuid:66666666-6666-4666-8666-666666666666/autostart=True/requested_target=@dispvm",
            WorkedExample.Answer(engine, engine.Evaluate("test.Svc", "work", "@dispvm")));
    }

    [Fact]
    public void Loopback_is_the_target_written_as_the_source_is()
    {
        PolicyEngine engine = WorkedExample.Engine("test.Svc * * * allow");
        Assert.Equal(DenyReason.Loopback, engine.Evaluate("test.Svc", "work", "work").Reason);
        Assert.Equal(DenyReason.Loopback, engine.Evaluate("test.Svc", "uuid:11111111-1111-4111-8111-111111111111", "uuid:11111111-1111-4111-8111-111111111111").Reason);
        Assert.Equal(DenyReason.Loopback, engine.Evaluate("test.Svc", "dom0", "@adminvm").Reason);
        // upstream compares the two names as text: another name of the same qube passes
        Assert.True(engine.Evaluate("test.Svc", "work", "uuid:11111111-1111-4111-8111-111111111111").IsAllowed);
        Assert.True(engine.Evaluate("test.Svc", "dom0", "uuid:00000000-0000-0000-0000-000000000000").IsAllowed);
    }

    [Fact]
    public void Evaluate_only_allows_without_the_loopback_and_relay_tests()
    {
        SystemInfo system = new([
            new QubeInfo("local", "AppVM", [], null, false, "Running", "cccccccc-0000-4000-8000-000000000000", false, GuiVm: "dom0"),
            new QubeInfo("remote-b", "RemoteVM", [], null, false, "Running", "bbbbbbbb-0000-4000-8000-000000000000", false, TransportRpc: "x"),
        ]);
        PolicyEngine engine = WorkedExample.Engine("* * @anyvm @anyvm allow", system);
        Assert.Equal(DenyReason.Loopback, engine.Evaluate("test.Svc", "local", "local").Reason);
        Assert.Equal(DenyReason.NoRelay, engine.Evaluate("test.Svc", "local", "remote-b").Reason);
        // upstream's evaluate-only answer is written before the target is looked at
        Assert.Equal("result=allow", engine.FormatAnswer(engine.Evaluate("test.Svc", "local", "local", null, EvaluationMode.JustEvaluate)));
        Assert.Equal("result=allow", engine.FormatAnswer(engine.Evaluate("test.Svc", "local", "remote-b", null, EvaluationMode.JustEvaluate)));
    }

    [Fact]
    public void A_redirect_to_dispvm_uses_the_sources_default_dispvm()
    {
        PolicyEngine engine = WorkedExample.Engine("test.Svc * @anyvm @anyvm allow target=@dispvm");
        Assert.Equal("@dispvm:work-dvm", engine.TargetName(engine.Evaluate("test.Svc", "work", "personal")));
        Assert.Equal("@dispvm:default-dvm", engine.TargetName(engine.Evaluate("test.Svc", "personal", "work")));
        Assert.Equal(DenyReason.NoDefaultDispVm, engine.Evaluate("test.Svc", "vault", "work").Reason);
    }

    [Fact]
    public void Dom0_is_answered_as_dom0_however_it_was_named()
    {
        PolicyEngine engine = WorkedExample.Engine(WorkedExample.Lines(
            "test.Svc * work @adminvm allow",
            "other.Svc * work @anyvm allow target=uuid:00000000-0000-0000-0000-000000000000"));
        Assert.Equal("user=DEFAULT/result=allow/target=dom0/autostart=True/requested_target=@adminvm",
            WorkedExample.Answer(engine, engine.Evaluate("test.Svc", "work", "@adminvm")));
        Assert.Equal("user=DEFAULT/result=allow/target=dom0/autostart=True/requested_target=dom0",
            WorkedExample.Answer(engine, engine.Evaluate("test.Svc", "work", "dom0")));
        // the requested target keeps the uuid form; the target is dom0, with no target_uuid line
        Assert.Equal("user=DEFAULT/result=allow/target=dom0/autostart=True/requested_target=uuid:00000000-0000-0000-0000-000000000000",
            WorkedExample.Answer(engine, engine.Evaluate("test.Svc", "work", "uuid:00000000-0000-0000-0000-000000000000")));
        Assert.Equal("user=DEFAULT/result=allow/target=dom0/autostart=True/requested_target=personal",
            WorkedExample.Answer(engine, engine.Evaluate("other.Svc", "work", "personal")));
    }

    [Fact]
    public void Type_and_tag_targets_never_match_a_requested_adminvm()
    {
        SystemInfo system = new([
            new QubeInfo("dom0", "AdminVM", ["admin"], null, false, "Running", PolicyToken.AdminUuid, false),
            new QubeInfo("work", "AppVM", [], null, false, "Running", "11111111-1111-4111-8111-111111111111", false, GuiVm: "dom0"),
        ]);
        PolicyEngine engine = WorkedExample.Engine(WorkedExample.Lines(
            "a.Svc * work @type:AdminVM allow",
            "b.Svc * work @tag:admin allow",
            "c.Svc * work @dispvm:@tag:admin allow",
            "* * work @adminvm allow user=fallback"), system);
        foreach ((string service, int rule) in (ReadOnlySpan<(string, int)>)[("a.Svc", 0), ("b.Svc", 1)])
        {
            Assert.Equal(rule, engine.Evaluate(service, "work", "dom0").RuleIndex);
            Assert.Equal(rule, engine.Evaluate(service, "work", "uuid:00000000-0000-0000-0000-000000000000").RuleIndex);
            // upstream looks @adminvm up among the qubes' names, and it is not one: the fallback rule decides
            Assert.Equal(3, engine.Evaluate(service, "work", "@adminvm").RuleIndex);
        }
        Assert.Equal(3, engine.Evaluate("c.Svc", "work", "@adminvm").RuleIndex);
    }

    [Fact]
    public void Autostart_no_accepts_dom0_and_running_qubes_and_refuses_new_disposables()
    {
        PolicyEngine engine = WorkedExample.Engine("test.Svc * work * allow autostart=no");
        Assert.True(engine.Evaluate("test.Svc", "work", "dom0").IsAllowed);
        Assert.True(engine.Evaluate("test.Svc", "work", "personal").IsAllowed);
        Assert.Equal(DenyReason.TargetNotRunning, engine.Evaluate("test.Svc", "work", "vault").Reason);
        Assert.Equal(DenyReason.TargetNotRunning, engine.Evaluate("test.Svc", "work", "@dispvm:work-dvm").Reason);
    }

    [Fact]
    public void Loopback_is_denied_also_through_a_redirect()
    {
        Assert.Equal(DenyReason.Loopback, Decide("test.Svc * work @default allow target=work", "work", "").Reason);
        Assert.Equal(DenyReason.Loopback, Decide("test.Svc * dom0 @adminvm allow", "dom0", "@adminvm").Reason);
    }

    [Fact]
    public void Deny_notifies_by_default_allow_does_not_and_evaluate_only_never_does()
    {
        PolicyEngine engine = WorkedExample.Engine(WorkedExample.Lines(
            "a.Svc * work @anyvm deny",
            "b.Svc * work @anyvm deny notify=no",
            "c.Svc * work @anyvm allow"));
        Assert.True(engine.ShouldNotify(engine.Evaluate("a.Svc", "work", "personal")));
        Assert.False(engine.ShouldNotify(engine.Evaluate("b.Svc", "work", "personal")));
        Assert.False(engine.ShouldNotify(engine.Evaluate("c.Svc", "work", "personal")));
        Assert.True(engine.ShouldNotify(engine.Evaluate("d.Svc", "work", "personal")));
        Assert.False(engine.ShouldNotify(engine.Evaluate("a.Svc", "work", "personal", null, EvaluationMode.JustEvaluate)));
    }

    [Fact]
    public void Ask_with_a_target_offers_only_that_target()
    {
        PolicyEngine engine = WorkedExample.Engine(WorkedExample.Lines(
            "a.Svc * work @anyvm ask target=vault",
            "b.Svc * work @anyvm ask target=@adminvm"));
        PolicyResult a = engine.Evaluate("a.Svc", "work", "personal");
        Assert.Equal(["vault"], engine.AskChoices(a));
        Assert.Equal(["dom0"], engine.AskChoices(engine.Evaluate("b.Svc", "work", "personal")));
        Assert.Equal("user=DEFAULT/result=allow/target=vault/target_uuid=uuid:44444444-4444-4444-8444-444444444444/autostart=True/requested_target=personal",
            WorkedExample.Answer(engine, engine.Approve(a, "vault")));
        Assert.Equal(DenyReason.NotAmongChoices, engine.Approve(a, "personal").Reason);
    }

    [Fact]
    public void Ask_choices_subtract_later_denials_walking_backwards_and_use_type_and_tag_expansions()
    {
        PolicyEngine engine = WorkedExample.Engine(WorkedExample.Lines(
            "test.Svc * work @default ask",
            "test.Svc * work @tag:work deny",
            "test.Svc * work @type:AppVM allow",
            "test.Svc * work @tag:personal deny",
            "test.Svc * work * allow"));
        PolicyResult r = engine.Evaluate("test.Svc", "work", "@default");
        Assert.Equal(0, r.RuleIndex);
        // R5 adds everything; R4 removes personal; R3 adds the AppVMs back (personal included); R2 removes the work-tagged ones;
        // @dispvm becomes work's default, work-dvm; work itself and the internal mgmt-dvm go.
        Assert.Equal(["default-dvm", "dom0", "personal", "vault", "@dispvm:default-dvm", "@dispvm:work-dvm", "@dispvm:work-printing"], engine.AskChoices(r));
    }

    [Fact]
    public void Ask_choices_follow_autostart_no_and_keep_dom0()
    {
        PolicyEngine engine = WorkedExample.Engine(WorkedExample.Lines(
            "test.Svc * work @default ask autostart=no",
            "test.Svc * work * allow"));
        PolicyResult r = engine.Evaluate("test.Svc", "work", "");
        Assert.Equal(["dom0", "personal"], engine.AskChoices(r));
    }

    [Fact]
    public void Ask_choices_of_dispvm_tag_and_adminvm_keywords()
    {
        PolicyEngine engine = WorkedExample.Engine(WorkedExample.Lines(
            "test.Svc * personal @default ask default_target=dom0",
            "test.Svc * personal @dispvm:@tag:work allow",
            "test.Svc * personal @adminvm allow",
            "test.Svc * personal @dispvm:vault allow"));
        PolicyResult r = engine.Evaluate("test.Svc", "personal", "");
        IReadOnlyList<string> choices = engine.AskChoices(r);
        Assert.Equal(["dom0", "@dispvm:work-dvm", "@dispvm:work-printing"], choices);
        Assert.Equal("dom0", engine.AskDefault(r, choices));
    }

    [Fact]
    public void A_default_target_that_is_not_offered_is_dropped()
    {
        PolicyEngine engine = WorkedExample.Engine(WorkedExample.Lines(
            "test.Svc * personal @default ask default_target=vault",
            "test.Svc * personal work allow"));
        PolicyResult r = engine.Evaluate("test.Svc", "personal", "");
        IReadOnlyList<string> choices = engine.AskChoices(r);
        Assert.Equal(["work"], choices);
        Assert.Null(engine.AskDefault(r, choices));
    }

    [Fact]
    public void An_ask_with_nothing_to_offer_or_nobody_to_ask_is_denied()
    {
        PolicyEngine engine = WorkedExample.Engine(WorkedExample.Lines(
            "a.Svc * work @default ask",
            "b.Svc * work @default ask",
            "b.Svc * work personal allow"));
        PolicyResult empty = engine.Evaluate("a.Svc", "work", "");
        Assert.Equal(Resolution.Ask, empty.Resolution);
        Assert.Equal(DenyReason.NoChoices, engine.Resolve(empty, new ScriptedPrompt("personal")).Reason);
        Assert.Equal(DenyReason.UserDenied, engine.Resolve(engine.Evaluate("b.Svc", "work", ""), null).Reason);
    }

    [Fact]
    public void An_approved_ask_is_allowed_as_chosen_including_a_new_disposable()
    {
        PolicyEngine engine = WorkedExample.Engine("qubes.Filecopy * personal @anyvm ask default_target=work");
        PolicyResult ask = engine.Evaluate("qubes.Filecopy", "personal", "");
        ScriptedPrompt prompt = new("@dispvm:work-dvm");
        PolicyResult r = engine.Resolve(ask, prompt);
        Assert.Equal("user=DEFAULT/result=allow/target=@dispvm:work-dvm/target_uuid=@dispvm:uuid:66666666-6666-4666-8666-666666666666/autostart=True/requested_target=@default",
            WorkedExample.Answer(engine, r));
        AskRequest asked = Assert.Single(prompt.Requests);
        Assert.Equal("personal", asked.Source);
        Assert.Equal("qubes.Filecopy", asked.Service);
        Assert.Equal("+", asked.Argument);
        Assert.Equal("work", asked.DefaultTarget);
        Assert.DoesNotContain("personal", asked.Targets);
        Assert.Equal(DenyReason.UserDenied, engine.Resolve(ask, new ScriptedPrompt(null)).Reason);
        Assert.Equal(DenyReason.NotAmongChoices, engine.Resolve(ask, new ScriptedPrompt("mgmt-dvm")).Reason);
    }

    [Fact]
    public void A_relayed_call_speaks_for_its_remote_qube_and_the_answer_names_it()
    {
        SystemInfo system = new([
            new QubeInfo("relay", "AppVM", [], null, false, "Running", "aaaaaaaa-0000-4000-8000-000000000000", false),
            new QubeInfo("remote-a", "RemoteVM", [], null, false, "NA", "bbbbbbbb-0000-4000-8000-000000000000", false, RelayVm: "relay", TransportRpc: "qubesair.SSHProxy"),
            new QubeInfo("local", "AppVM", [], null, false, "Running", "cccccccc-0000-4000-8000-000000000000", false),
            new QubeInfo("impostor", "AppVM", [], null, false, "Running", "dddddddd-0000-4000-8000-000000000000", false),
        ]);
        PolicyEngine engine = WorkedExample.Engine("test.Svc * remote-a local allow\ntest.Svc * local remote-a allow user=root", system);
        PolicyResult relayed = engine.Evaluate("test.Svc+x", "relay", "local", "remote-a");
        Assert.Equal("user=DEFAULT/result=allow/target=local/target_uuid=uuid:cccccccc-0000-4000-8000-000000000000/autostart=True/requested_target=local/policy_source=remote-a",
            WorkedExample.Answer(engine, relayed));
        Assert.Equal(DenyReason.InvalidRelay, engine.Evaluate("test.Svc", "impostor", "local", "remote-a").Reason);
        Assert.Equal(DenyReason.InvalidRelay, engine.Evaluate("test.Svc", "relay", "local", "local").Reason);
        // to a RemoteVM: through its relay, the service rewritten for the transport, the user= ignored
        Assert.Equal("user=DEFAULT/result=allow/target=relay/target_uuid=uuid:aaaaaaaa-0000-4000-8000-000000000000/autostart=True/requested_target=remote-a/service=qubesair.SSHProxy+remote-a+test.Svc+x",
            WorkedExample.Answer(engine, engine.Evaluate("test.Svc+x", "local", "remote-a")));
    }

    [Fact]
    public void A_relayed_call_to_dom0_names_no_policy_source_and_the_relayed_source_keeps_its_form()
    {
        SystemInfo system = new([
            new QubeInfo("relay", "AppVM", [], null, false, "Running", "aaaaaaaa-0000-4000-8000-000000000000", false),
            new QubeInfo("remote-a", "RemoteVM", [], null, false, "NA", "bbbbbbbb-0000-4000-8000-000000000000", false, RelayVm: "relay", TransportRpc: "qubesair.SSHProxy"),
            new QubeInfo("local", "AppVM", [], null, false, "Running", "cccccccc-0000-4000-8000-000000000000", false),
        ]);
        PolicyEngine engine = WorkedExample.Engine("test.Svc * remote-a * allow", system);
        Assert.Equal("user=DEFAULT/result=allow/target=dom0/autostart=True/requested_target=@adminvm",
            WorkedExample.Answer(engine, engine.Evaluate("test.Svc", "relay", "@adminvm", "remote-a")));
        Assert.Equal("user=DEFAULT/result=allow/target=dom0/autostart=True/requested_target=dom0",
            WorkedExample.Answer(engine, engine.Evaluate("test.Svc", "relay", "dom0", "remote-a")));
        Assert.EndsWith("/policy_source=uuid:bbbbbbbb-0000-4000-8000-000000000000",
            WorkedExample.Answer(engine, engine.Evaluate("test.Svc", "relay", "local", "uuid:bbbbbbbb-0000-4000-8000-000000000000")), StringComparison.Ordinal);
        // relayvm is compared with the caller as the caller was named
        Assert.Equal(DenyReason.InvalidRelay, engine.Evaluate("test.Svc", "uuid:aaaaaaaa-0000-4000-8000-000000000000", "local", "remote-a").Reason);
    }

    [Fact]
    public void A_remote_target_is_reached_through_its_relay_with_the_target_as_requested_in_the_service()
    {
        SystemInfo system = new([
            new QubeInfo("relay", "AppVM", [], null, false, "Running", "aaaaaaaa-0000-4000-8000-000000000000", false),
            new QubeInfo("remote-a", "RemoteVM", [], null, false, "NA", "bbbbbbbb-0000-4000-8000-000000000000", false, RelayVm: "relay", TransportRpc: "qubesair.SSHProxy"),
            new QubeInfo("local", "AppVM", [], null, false, "Running", "cccccccc-0000-4000-8000-000000000000", false),
        ]);
        PolicyEngine engine = WorkedExample.Engine("test.Svc * local @anyvm allow\nother.Svc * local @default allow target=remote-a", system);
        Assert.EndsWith("/requested_target=uuid:bbbbbbbb-0000-4000-8000-000000000000/service=qubesair.SSHProxy+uuid:bbbbbbbb-0000-4000-8000-000000000000+test.Svc+",
            WorkedExample.Answer(engine, engine.Evaluate("test.Svc", "local", "uuid:bbbbbbbb-0000-4000-8000-000000000000")), StringComparison.Ordinal);
        // a redirect: upstream still hands the transport the target the caller asked for
        Assert.Equal("user=DEFAULT/result=allow/target=relay/target_uuid=uuid:aaaaaaaa-0000-4000-8000-000000000000/autostart=True/requested_target=@default/service=qubesair.SSHProxy+@default+other.Svc+x",
            WorkedExample.Answer(engine, engine.Evaluate("other.Svc+x", "local", "")));
    }

    [Fact]
    public void A_remote_target_without_a_relay_is_denied()
    {
        SystemInfo system = new([
            new QubeInfo("local", "AppVM", [], null, false, "Running", "cccccccc-0000-4000-8000-000000000000", false),
            new QubeInfo("remote-b", "RemoteVM", [], null, false, "NA", "bbbbbbbb-0000-4000-8000-000000000000", false, TransportRpc: "x"),
        ]);
        Assert.Equal(DenyReason.NoRelay, WorkedExample.Engine("* * @anyvm @anyvm allow", system).Evaluate("test.Svc", "local", "remote-b").Reason);
    }

    [Fact]
    public void An_answer_that_does_not_fit_is_reported()
    {
        PolicyEngine engine = WorkedExample.Engine("test.Svc * work personal allow");
        PolicyResult r = engine.Evaluate("test.Svc", "work", "personal");
        Assert.False(engine.TryWriteAnswer(r, new byte[40], out _));
        Assert.True(engine.TryWriteAnswer(r, new byte[PolicyEngine.MaxAnswerLength], out int written));
        Assert.Equal(engine.FormatAnswer(r).Length, written);
    }

    [Fact]
    public void An_unusable_policy_denies_everything_and_says_why()
    {
        PolicyEngine engine = PolicyEngine.Unusable("/etc/qubes/policy.d/30-user.policy:3: wrong number of fields", WorkedExample.System);
        PolicyResult r = engine.Evaluate("qubes.Filecopy", "work", "work-email");
        Assert.Equal(DenyReason.PolicyUnusable, r.Reason);
        Assert.Contains("30-user.policy:3", engine.Explain(r), StringComparison.Ordinal);
    }

    [Fact]
    public void Evaluation_allocates_nothing_in_steady_state()
    {
        PolicyEngine engine = WorkedExample.Engine();
        string[][] requests =
        [
            ["qubes.Filecopy", "work", "work-email"], ["qubes.Filecopy", "personal", "@default"], ["qubes.PrintFile", "work", "@dispvm"],
            ["qubes.OpenURL", "vault", "@dispvm"], ["qubes.GetDate", "work", ""], ["qubes.Backup", "work", "personal"], ["Other.Service", "work", "personal"],
        ];
        byte[] answer = new byte[PolicyEngine.MaxAnswerLength];
        long before = 0;
        int allowed = 0;
        for (int round = 0; round < 2; round++)
        {
            before = GC.GetAllocatedBytesForCurrentThread();
            allowed = 0;
            for (int i = 0; i < 10_000; i++)
            {
                string[] q = requests[i % requests.Length];
                PolicyResult r = engine.Evaluate(q[0], q[1], q[2]);
                Assert.True(engine.TryWriteAnswer(r, answer, out _));
                allowed += r.IsAllowed ? 1 : 0;
            }
        }
        Assert.Equal(0, GC.GetAllocatedBytesForCurrentThread() - before);
        Assert.True(allowed > 0);
    }

    [Fact]
    public void Host_recompiles_when_a_policy_file_or_the_system_changes_and_denies_while_broken()
    {
        using TempDirectory dir = new();
        string policyDir = Path.Combine(dir.Path, "policy.d");
        Directory.CreateDirectory(policyDir);
        string systemFile = dir.File("system.json");
        File.WriteAllText(systemFile, WorkedExample.SystemJson);
        string policy = Path.Combine(policyDir, "50-test.policy");
        File.WriteAllText(policy, "test.Svc * work personal allow\n");
        List<string> log = [];
        PolicyHost host = new(new PolicyLoader([Path.Combine(dir.Path, "run"), policyDir], Path.Combine(dir.Path, "legacy")), new SystemInfoFile(systemFile), log.Add);

        Assert.True(host.Current.Evaluate("test.Svc", "work", "personal").IsAllowed);
        Assert.Same(host.Current, host.Current);
        Assert.Equal(1, host.Loads);

        File.WriteAllText(policy, "test.Svc * work personal deny\n");
        File.SetLastWriteTimeUtc(policy, DateTime.UtcNow.AddSeconds(5));
        Assert.False(host.Current.Evaluate("test.Svc", "work", "personal").IsAllowed);

        File.WriteAllText(Path.Combine(policyDir, "10-first.policy"), "test.Svc * work personal allow user=first\n");
        Assert.Equal("user=first", host.Current.FormatAnswer(host.Current.Evaluate("test.Svc", "work", "personal")).Split('\n')[0]);

        File.WriteAllText(Path.Combine(policyDir, "20-broken.policy"), "test.Svc * work\n");
        PolicyEngine broken = host.Current;
        Assert.Equal(DenyReason.PolicyUnusable, broken.Evaluate("test.Svc", "work", "personal").Reason);
        Assert.Contains("20-broken.policy:1: wrong number of fields", broken.Error, StringComparison.Ordinal);

        File.Delete(Path.Combine(policyDir, "20-broken.policy"));
        Assert.True(host.Current.Evaluate("test.Svc", "work", "personal").IsAllowed);

        File.WriteAllText(systemFile, WorkedExample.SystemJson.Replace("\"personal\": {", "\"personal2\": {", StringComparison.Ordinal));
        File.SetLastWriteTimeUtc(systemFile, DateTime.UtcNow.AddSeconds(10));
        Assert.Equal(DenyReason.UnknownSource, host.Current.Evaluate("test.Svc", "personal", "work").Reason);
        Assert.Contains(log, l => l.StartsWith("policy unusable", StringComparison.Ordinal));
        Assert.True(host.Loads >= 5);
    }
}
