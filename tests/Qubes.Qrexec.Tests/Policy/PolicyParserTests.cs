using System;
using System.Collections.Generic;
using Qubes.Qrexec.Policy;
using Xunit;

namespace Qubes.Qrexec.Tests.Policy;

/// <summary>The v5 line syntax, tokens per column, actions and parameters (spec qrexec-policy §2-§4).</summary>
public sealed class PolicyParserTests
{
    private static List<PolicyRule> Parse(params string[] lines)
    {
        List<PolicyRule> rules = [];
        PolicyParser.Parse(lines, "test.policy", rules, d => throw new InvalidOperationException("unexpected directive " + d.Name));
        return rules;
    }

    private static PolicySyntaxException Error(params string[] lines)
        => Assert.Throws<PolicySyntaxException>(() => Parse(lines));

    [Fact]
    public void Comments_and_blank_lines_are_skipped_and_there_are_no_trailing_comments()
    {
        List<PolicyRule> rules = Parse("# a comment", "", "   ", "  # indented comment", "qubes.Svc * work vault allow user=#root");
        PolicyRule rule = Assert.Single(rules);
        Assert.Equal("#root", rule.User);
        Assert.Equal(5, rule.Line);
        Assert.Equal("test.policy", rule.File);
    }

    [Theory]
    [InlineData("qubes.Svc * work vault")]
    [InlineData("qubes.Svc * work")]
    [InlineData("qubes.Svc")]
    public void Fewer_than_five_fields_is_an_error_with_the_line(string line)
    {
        PolicySyntaxException e = Error("# first", line);
        Assert.Equal(2, e.Line);
        Assert.Equal("test.policy:2: wrong number of fields", e.Message);
    }

    [Theory]
    [InlineData("*", "*", null, null)]
    [InlineData("qubes.Filecopy", "*", "qubes.Filecopy", null)]
    [InlineData("qubes.Filecopy", "+", "qubes.Filecopy", "+")]
    [InlineData("qubes.Filecopy", "+foo", "qubes.Filecopy", "+foo")]
    [InlineData("my-svc_1.x", "+a+b.c-d_e", "my-svc_1.x", "+a+b.c-d_e")]
    public void Service_and_argument_columns_accept_their_forms(string service, string argument, string? expectedService, string? expectedArgument)
    {
        PolicyRule rule = Assert.Single(Parse($"{service} {argument} work vault allow"));
        Assert.Equal(expectedService, rule.Service);
        Assert.Equal(expectedArgument, rule.Argument);
    }

    [Theory]
    [InlineData("qubes.Svc+arg", "*")]
    [InlineData("qubes/Svc", "*")]
    [InlineData("qubes.Svc", "foo")]
    [InlineData("qubes.Svc", "+fo/o")]
    [InlineData("*", "+foo")]
    [InlineData("qubes.Svc", "+a b")]
    public void Invalid_service_or_argument_is_an_error(string service, string argument)
    {
        PolicySyntaxException e = Error($"{service} {argument} work vault allow");
        Assert.Equal(1, e.Line);
    }

    [Theory]
    [InlineData("work", TokenKind.Literal, "work")]
    [InlineData("uuid:11111111-1111-4111-8111-111111111111", TokenKind.Literal, "uuid:11111111-1111-4111-8111-111111111111")]
    [InlineData("*", TokenKind.Any, "")]
    [InlineData("@anyvm", TokenKind.AnyVm, "")]
    [InlineData("@adminvm", TokenKind.AdminVm, "")]
    [InlineData("@type:AppVM", TokenKind.Type, "AppVM")]
    [InlineData("@tag:work", TokenKind.Tag, "work")]
    [InlineData("@dispvm:work-dvm", TokenKind.DispVmOf, "work-dvm")]
    [InlineData("@dispvm:@tag:work", TokenKind.DispVmTagged, "work")]
    public void Source_column_tokens(string text, TokenKind kind, string value)
    {
        PolicyRule rule = Assert.Single(Parse($"qubes.Svc * {text} vault allow"));
        Assert.Equal(new PolicyToken(kind, value), rule.Source);
        Assert.Equal(text, rule.Source.ToString());
    }

    [Theory]
    [InlineData("@default")]
    [InlineData("@dispvm")]
    public void Keywords_not_allowed_in_the_source_column(string text)
    {
        PolicySyntaxException e = Error($"qubes.Svc * {text} vault allow");
        Assert.Contains("not allowed in the source column", e.Reason, StringComparison.Ordinal);
    }

    [Theory]
    [InlineData("work", TokenKind.Literal)]
    [InlineData("*", TokenKind.Any)]
    [InlineData("@anyvm", TokenKind.AnyVm)]
    [InlineData("@adminvm", TokenKind.AdminVm)]
    [InlineData("@type:TemplateVM", TokenKind.Type)]
    [InlineData("@tag:work", TokenKind.Tag)]
    [InlineData("@dispvm", TokenKind.DispVm)]
    [InlineData("@dispvm:work-dvm", TokenKind.DispVmOf)]
    [InlineData("@dispvm:@tag:work", TokenKind.DispVmTagged)]
    public void Target_column_takes_every_token(string text, TokenKind kind)
    {
        PolicyRule rule = Assert.Single(Parse($"qubes.Svc * work {text} ask"));
        Assert.Equal(kind, rule.Target.Kind);
    }

    [Fact]
    public void Default_target_column_needs_a_redirect_for_allow_only()
    {
        Assert.Equal(TokenKind.Default, Assert.Single(Parse("qubes.Svc * work @default ask")).Target.Kind);
        Assert.Equal(TokenKind.Default, Assert.Single(Parse("qubes.Svc * work @default deny")).Target.Kind);
        Assert.Equal(TokenKind.AdminVm, Assert.Single(Parse("qubes.Svc * work @default allow target=@adminvm")).RedirectTarget!.Value.Kind);
        PolicySyntaxException e = Error("qubes.Svc * work @default allow");
        Assert.Contains("target=", e.Reason, StringComparison.Ordinal);
    }

    [Theory]
    [InlineData("work")]
    [InlineData("@adminvm")]
    [InlineData("@dispvm")]
    [InlineData("@dispvm:work-dvm")]
    [InlineData("uuid:11111111-1111-4111-8111-111111111111")]
    public void Redirect_parameters_take_their_tokens(string text)
    {
        PolicyRule rule = Assert.Single(Parse($"qubes.Svc * work @anyvm ask target={text} default_target={text}"));
        Assert.Equal(text, rule.RedirectTarget!.Value.ToString());
        Assert.Equal(text, rule.DefaultTarget!.Value.ToString());
    }

    [Theory]
    [InlineData("*")]
    [InlineData("@anyvm")]
    [InlineData("@default")]
    [InlineData("@type:AppVM")]
    [InlineData("@tag:work")]
    [InlineData("@dispvm:@tag:work")]
    public void Redirect_parameters_refuse_other_tokens(string text)
    {
        Error($"qubes.Svc * work @anyvm allow target={text}");
        Error($"qubes.Svc * work @anyvm ask default_target={text}");
    }

    [Theory]
    [InlineData("@")]
    [InlineData("@foo")]
    [InlineData("@tag:")]
    [InlineData("@type:")]
    [InlineData("@dispvm:")]
    [InlineData("@dispvm:@tag:")]
    [InlineData("@dispvm:@anyvm")]
    [InlineData("@ANYVM")]
    public void Unknown_keywords_and_empty_values_are_errors(string text)
    {
        Error($"qubes.Svc * {text} vault allow");
        Error($"qubes.Svc * work {text} allow");
    }

    [Fact]
    public void Action_defaults()
    {
        List<PolicyRule> rules = Parse("a * work vault allow", "a * work vault deny", "a * work vault ask");
        Assert.Equal((PolicyAction.Allow, false, true, (string?)null), (rules[0].Action, rules[0].Notify, rules[0].Autostart, rules[0].User));
        Assert.Equal((PolicyAction.Deny, true), (rules[1].Action, rules[1].Notify));
        Assert.Equal((PolicyAction.Ask, false, true), (rules[2].Action, rules[2].Notify, rules[2].Autostart));
        Assert.Null(rules[2].DefaultTarget);
        Assert.Null(rules[2].RedirectTarget);
    }

    [Fact]
    public void Allow_parameters()
    {
        PolicyRule rule = Assert.Single(Parse("a * work @anyvm allow target=vault user=root notify=yes autostart=no"));
        Assert.Equal("vault", rule.RedirectTarget!.Value.Value);
        Assert.Equal("root", rule.User);
        Assert.True(rule.Notify);
        Assert.False(rule.Autostart);
        Assert.Equal("a * work @anyvm allow target=vault user=root notify=yes autostart=no", rule.ToString());
    }

    [Fact]
    public void Deny_takes_notify_only()
    {
        Assert.False(Assert.Single(Parse("a * work vault deny notify=no")).Notify);
        Error("a * work vault deny target=vault");
        Error("a * work vault deny user=root");
        Error("a * work vault deny autostart=no");
        Error("a * work vault deny default_target=vault");
    }

    [Fact]
    public void Allow_refuses_default_target_and_ask_takes_everything()
    {
        Error("a * work vault allow default_target=vault");
        PolicyRule rule = Assert.Single(Parse("a * work @anyvm ask target=vault default_target=vault user=u notify=yes autostart=no"));
        Assert.Equal(("vault", "vault", "u", true, false), (rule.RedirectTarget!.Value.Value, rule.DefaultTarget!.Value.Value, rule.User!, rule.Notify, rule.Autostart));
    }

    [Theory]
    [InlineData("a * work vault allow notify")]
    [InlineData("a * work vault allow notify=maybe")]
    [InlineData("a * work vault allow autostart=Yes")]
    [InlineData("a * work vault allow autostart=")]
    [InlineData("a * work vault allow user= user=b")]
    [InlineData("a * work vault allow user=a user=b")]
    [InlineData("a * work vault allow colour=red")]
    [InlineData("a * work vault permit")]
    [InlineData("a * work vault Allow")]
    public void Bad_actions_and_parameters_are_errors(string line)
    {
        Assert.Equal(1, Error(line).Line);
    }

    [Fact]
    public void Parameter_splits_at_the_first_equals_sign()
    {
        Assert.Equal("a=b", Assert.Single(Parse("a * work vault allow user=a=b")).User);
    }

    [Theory]
    [InlineData("a * work vault allow user=")]
    [InlineData("a * work @anyvm ask user= notify=yes")]
    public void An_empty_user_is_the_default_user(string line)
    {
        // upstream keeps "" and writes user=DEFAULT for it ("self.user or 'DEFAULT'")
        PolicyRule rule = Assert.Single(Parse(line));
        Assert.Null(rule.User);
        Assert.DoesNotContain("user=", rule.ToString(), StringComparison.Ordinal);
        PolicyEngine engine = WorkedExample.Engine(line.Replace("a * ", "test.Svc * ", StringComparison.Ordinal));
        PolicyResult r = engine.Evaluate("test.Svc", "work", "vault", null, EvaluationMode.AssumeYesForAsk);
        Assert.StartsWith("user=DEFAULT\nresult=allow\ntarget=vault\n", engine.FormatAnswer(r), StringComparison.Ordinal);
    }

    [Theory]
    [InlineData("@tag:@x")]
    [InlineData("@type:@x")]
    [InlineData("@dispvm:@tag:@x")]
    [InlineData("@dispvm:@x")]
    public void A_keyword_value_that_is_itself_a_keyword_is_an_invalid_token(string text)
    {
        foreach (string line in (string[])[$"qubes.Svc * {text} vault allow", $"qubes.Svc * work {text} allow"])
        {
            PolicySyntaxException e = Error("# first", line);
            Assert.Equal($"test.policy:2: invalid token '{text}'", e.Message);
        }
    }

    [Fact]
    public void Fields_are_separated_as_pythons_split_does_including_the_separators_0x1c_to_0x1f()
    {
        List<PolicyRule> rules = Parse("\u001c# a comment after a file separator",
            "\u001dqubes.Svc\u001c*\u001dwork\u001evault\u001fallow\tuser=u\u001f",
            "qubes.Svc\u2003+x\u00a0work\u3000vault\u000bdeny\u000cnotify=no");
        Assert.Equal(["qubes.Svc * work vault allow user=u", "qubes.Svc +x work vault deny notify=no"], rules.ConvertAll(static r => r.ToString()));
        Assert.Equal(2, rules[0].Line);
        // a zero-width space separates nothing: the line has four fields
        Assert.Equal("test.policy:1: wrong number of fields", Error("qubes.Svc * work\u200bvault allow").Message);

        List<PolicyRule> legacy = [];
        PolicyParser.ParseLegacy(["\u001f$anyvm\u001c$anyvm\u001eallow,user=u\u001d"], "old", "svc", "*", legacy, _ => throw new InvalidOperationException());
        Assert.Equal("svc * @anyvm @anyvm allow user=u", Assert.Single(legacy).ToString());
    }

    [Fact]
    public void Directives_are_handed_over_in_place_and_checked_for_arguments()
    {
        List<PolicyRule> rules = [];
        List<string> seen = [];
        PolicyParser.Parse(["a * work vault allow", "!include x.policy", "!include-dir dir", "!include-service svc * file", "!compat-4.0", "b * work vault deny"],
            "f.policy", rules, d => seen.Add($"{d.Name}({string.Join(',', d.Arguments)})@{d.Line}:{rules.Count}"));
        Assert.Equal(["!include(x.policy)@2:1", "!include-dir(dir)@3:1", "!include-service(svc,*,file)@4:1", "!compat-4.0()@5:1"], seen);
        Assert.Equal(2, rules.Count);
        Assert.Equal("test.policy:1: invalid directive !includes", Assert.Throws<PolicySyntaxException>(() => Parse("!includes x")).Message);
        Assert.Contains("wrong number of arguments", Error("!include").Reason, StringComparison.Ordinal);
        Assert.Contains("wrong number of arguments", Error("!include a b").Reason, StringComparison.Ordinal);
        Assert.Contains("wrong number of arguments", Error("!include-service svc * ").Reason, StringComparison.Ordinal);
        Assert.Contains("wrong number of arguments", Error("!compat-4.0 now").Reason, StringComparison.Ordinal);
    }

    [Fact]
    public void Legacy_lines_take_the_given_service_and_argument()
    {
        List<PolicyRule> rules = [];
        PolicyParser.ParseLegacy(["# old", "$tag:work $tag:work allow", "$anyvm $dispvm allow,target=$dispvm:work-printing", "$anyvm $anyvm ask,default_target=$adminvm"],
            "old-filecopy", "qubes.Filecopy", "*", rules, _ => throw new InvalidOperationException());
        Assert.Equal(
            ["qubes.Filecopy * @tag:work @tag:work allow", "qubes.Filecopy * @anyvm @dispvm allow target=@dispvm:work-printing", "qubes.Filecopy * @anyvm @anyvm ask default_target=@adminvm"],
            rules.ConvertAll(static r => r.ToString()));
        Assert.Equal(3, rules[1].Line);
    }

    [Fact]
    public void Legacy_files_allow_only_their_include()
    {
        List<string> included = [];
        List<PolicyRule> rules = [];
        PolicyParser.ParseLegacy(["$include:/etc/qubes-rpc/policy/other"], "old", "svc", "+arg", rules, d => included.Add($"{d.Name} {d.Arguments[0]}@{d.Line}"));
        Assert.Equal(["!include /etc/qubes-rpc/policy/other@1"], included);
        Assert.Throws<PolicySyntaxException>(() => PolicyParser.ParseLegacy(["!compat-4.0"], "old", "svc", "*", rules, _ => { }));
        Assert.Throws<PolicySyntaxException>(() => PolicyParser.ParseLegacy(["work vault"], "old", "svc", "*", rules, _ => { }));
    }
}
