using System;
using System.Collections.Generic;
using System.Linq;
using System.Text;

namespace Qubes.Qrexec.Policy;

/// <summary>
/// The policy compiled against one snapshot of the system (spec qrexec-policy §7-§12). Every name
/// in the rules is resolved once to a qube, type or tag number, and the rules are indexed by
/// service, so that a decision compares small integers along the rules of one service and
/// allocates nothing. An engine is immutable and may be used from any number of threads; a change
/// of the policy files or of the system makes a new one. Where the spec is silent it answers as
/// upstream's engine does: a qube is named in the answer as the policy or the request wrote it, a
/// call upstream fails on is denied, and every denial notifies as upstream's does.
/// </summary>
public sealed class PolicyEngine
{
    /// <summary>The user an allow names when the rule does not.</summary>
    public const string DefaultUser = "DEFAULT";

    /// <summary>Longest answer the qrexec daemon reads (qrexec §11.2).</summary>
    public const int MaxAnswerLength = 4095;

    private const string DefaultKeyword = "@default";

    private readonly PolicyRule[] _rules;
    private readonly SystemInfo _system;
    private readonly CompiledRule[] _compiled;
    private readonly Dictionary<string, int[]> _byService;
    private readonly Dictionary<string, int[]>.AlternateLookup<ReadOnlySpan<char>> _serviceLookup;
    private readonly int[] _anyService;
    private readonly string? _error;
    private readonly bool _errorNotifies;

    // Per qube: type number, tag numbers, default_dispvm as an index (-1: none or unknown),
    // and the names in ordinal order for listing choices.
    private readonly int[] _type;
    private readonly int[][] _tags;
    private readonly int[] _defaultDispVm;
    private readonly int[] _byName;

    /// <summary>Compiles <paramref name="rules"/> against <paramref name="system"/>.</summary>
    public PolicyEngine(IReadOnlyList<PolicyRule> rules, SystemInfo system)
    {
        ArgumentNullException.ThrowIfNull(rules);
        ArgumentNullException.ThrowIfNull(system);
        _rules = [.. rules];
        _system = system;
        IReadOnlyList<QubeInfo> qubes = system.Qubes;
        Dictionary<string, int> types = new(StringComparer.Ordinal);
        Dictionary<string, int> tags = new(StringComparer.Ordinal);
        _type = new int[qubes.Count];
        _tags = new int[qubes.Count][];
        _defaultDispVm = new int[qubes.Count];
        for (int q = 0; q < qubes.Count; q++)
        {
            QubeInfo qube = qubes[q];
            _type[q] = Intern(types, qube.Type);
            _tags[q] = new int[qube.Tags.Count];
            for (int t = 0; t < qube.Tags.Count; t++)
            {
                _tags[q][t] = Intern(tags, qube.Tags[t]);
            }
            _defaultDispVm[q] = qube.DefaultDispVm is string d ? system.IndexOf(d) : -1;
        }
        _byName = new int[qubes.Count];
        for (int q = 0; q < _byName.Length; q++)
        {
            _byName[q] = q;
        }
        Array.Sort(_byName, (a, b) => string.CompareOrdinal(qubes[a].Name, qubes[b].Name));

        _compiled = new CompiledRule[_rules.Length];
        Dictionary<string, List<int>> byService = new(StringComparer.Ordinal);
        List<int> anyService = [];
        for (int i = 0; i < _rules.Length; i++)
        {
            PolicyRule rule = _rules[i];
            _compiled[i] = new CompiledRule(rule.Argument, Compile(rule.Source, types, tags), Compile(rule.Target, types, tags), rule.Action,
                rule.RedirectTarget is { } redirect ? Redirect(redirect) : null);
            if (rule.Service == null)
            {
                anyService.Add(i);
                foreach (List<int> list in byService.Values)
                {
                    list.Add(i);
                }
            }
            else
            {
                if (!byService.TryGetValue(rule.Service, out List<int>? list))
                {
                    // A service seen for the first time also gets every earlier rule for all services.
                    byService.Add(rule.Service, list = [.. anyService]);
                }
                list.Add(i);
            }
        }
        _byService = new Dictionary<string, int[]>(byService.Count, StringComparer.Ordinal);
        foreach ((string service, List<int> list) in byService)
        {
            _byService.Add(service, [.. list]);
        }
        _serviceLookup = _byService.GetAlternateLookup<ReadOnlySpan<char>>();
        _anyService = [.. anyService];
    }

    private PolicyEngine(SystemInfo system, string error, bool notifies)
        : this([], system)
    {
        _error = error;
        _errorNotifies = notifies;
    }

    /// <summary>
    /// An engine that denies every call because the policy cannot be used (§1 rules 2 and 5).
    /// <paramref name="notifies"/>: the denials notify (<see cref="PolicySyntaxException.Notifies"/>).
    /// </summary>
    public static PolicyEngine Unusable(string error, SystemInfo? system = null, bool notifies = false)
        => new(system ?? new SystemInfo([]), error, notifies);

    /// <summary>Why the policy is unusable, or null when it is in use.</summary>
    public string? Error => _error;

    /// <summary>The rules, in order.</summary>
    public IReadOnlyList<PolicyRule> Rules => _rules;

    /// <summary>The system the rules were compiled against.</summary>
    public SystemInfo System => _system;

    /// <summary>
    /// Decides a call (§7-§10): <paramref name="serviceAndArg"/> from <paramref name="source"/> to
    /// <paramref name="intendedTarget"/>; <paramref name="requestedSource"/> non-empty when a relay
    /// qube calls for a RemoteVM. In <see cref="EvaluationMode.Normal"/> an <c>ask</c> rule gives
    /// <see cref="Resolution.Ask"/>, to be finished by <see cref="Resolve"/> (or <see cref="AskChoices"/> and <see cref="Approve"/>).
    /// </summary>
    public PolicyResult Evaluate(string serviceAndArg, string source, string intendedTarget, string? requestedSource = null,
        EvaluationMode mode = EvaluationMode.Normal)
    {
        ArgumentNullException.ThrowIfNull(serviceAndArg);
        ArgumentNullException.ThrowIfNull(source);
        ArgumentNullException.ThrowIfNull(intendedTarget);
        int caller = IndexOfQube(source);
        bool relayed = !string.IsNullOrEmpty(requestedSource);
        PolicyRequest request = new(serviceAndArg, caller, caller, FormOf(source), relayed, intendedTarget, intendedTarget, mode);
        ResolvedTarget target = ResolvedTarget.Default;
        if (_error != null)
        {
            return Denied(request, DenyReason.PolicyUnusable, _errorNotifies, target);
        }
        if (caller < 0)
        {
            // Not upstream's way, which would look the qube up and fail later: see docs/policy.md.
            return Denied(request, DenyReason.UnknownSource, notify: false, target);
        }
        DenyReason prepared = PrepareTarget(intendedTarget, out target);
        if (target.Kind == TargetKind.Default)
        {
            request = request with { RequestedTarget = DefaultKeyword };
        }
        if (prepared != DenyReason.None)
        {
            // A target that is not even a token is a syntax error upstream, which notifies nobody.
            return Denied(request, prepared, notify: prepared != DenyReason.InvalidTarget, target);
        }
        if (relayed)
        {
            // §7 rule 5: only the relay qube of a RemoteVM speaks for it (relayvm is compared with the caller as named).
            int remote = IndexOfQube(requestedSource);
            if (remote < 0 || _system.Qubes[remote] is not { IsRemote: true } remoteQube || remoteQube.RelayVm != source)
            {
                return Denied(request, DenyReason.InvalidRelay, notify: true, target);
            }
            request = request with { Source = remote, SourceForm = FormOf(requestedSource) };
        }

        Split(serviceAndArg, out ReadOnlySpan<char> service, out ReadOnlySpan<char> argument);
        foreach (int i in RulesFor(service))
        {
            ref readonly CompiledRule rule = ref _compiled[i];
            if (!MatchesArgument(rule.Argument, argument) || !MatchesSource(rule.Source, request.Source))
            {
                continue;
            }
            TargetMatch match = MatchTarget(rule.Target, target, request.Source);
            if (match == TargetMatch.No)
            {
                continue;
            }
            PolicyResult matched = new(Resolution.Deny, DenyReason.None, i, request, target, Notifications.None);
            if (match == TargetMatch.Failed)
            {
                // Upstream cannot compare @dispvm:NAME with @dispvm when the source has no default_dispvm and fails the call.
                return matched.Deny(DenyReason.NoDefaultDispVm, notify: false, target);
            }
            PolicyRule written = _rules[i];
            return rule.Action switch
            {
                PolicyAction.Deny => matched.Deny(DenyReason.DeniedByRule, written.Notify, target),
                PolicyAction.Allow => Allow(matched, rule.Redirect ?? target, written),
                _ => (mode & EvaluationMode.AssumeYesForAsk) != 0 ? Approve(matched, request.RequestedTarget)
                    : (mode & EvaluationMode.JustEvaluate) != 0 ? matched.Deny(DenyReason.AskWhileEvaluating, notify: false, target)
                    : matched.With(Resolution.Ask, target),
            };
        }
        return Denied(request, DenyReason.NoMatchingRule, notify: true, target);
    }

    /// <summary>The rule that decided, or null.</summary>
    public PolicyRule? RuleOf(in PolicyResult result) => result.RuleIndex >= 0 ? _rules[result.RuleIndex] : null;

    /// <summary>
    /// The notifications of a decision that reach a GUI qube (§10.3): those of
    /// <see cref="PolicyResult.Notifications"/> whose qube has one (<see cref="NotifyGuiVm"/>).
    /// </summary>
    public Notifications Notify(in PolicyResult result)
    {
        Notifications sent = Notifications.None;
        if ((result.Notifications & Notifications.Allowed) != 0 && NotifyGuiVm(result, Notifications.Allowed) != null)
        {
            sent |= Notifications.Allowed;
        }
        if ((result.Notifications & Notifications.Denied) != 0 && NotifyGuiVm(result, Notifications.Denied) != null)
        {
            sent |= Notifications.Denied;
        }
        return sent;
    }

    /// <summary>Whether the user is told of this decision at all (<see cref="Notify"/>).</summary>
    public bool ShouldNotify(in PolicyResult result) => Notify(result) != Notifications.None;

    /// <summary>
    /// The GUI qube a notification of <paramref name="kind"/> goes to, or null when there is none:
    /// an "allowed" goes to the GUI qube of the request's source (the RemoteVM of a relayed call), a
    /// "denied" to that of the calling qube.
    /// </summary>
    public string? NotifyGuiVm(in PolicyResult result, Notifications kind)
    {
        int qube = kind == Notifications.Allowed ? result.Source : result.Request.Caller;
        return qube >= 0 && !string.IsNullOrEmpty(_system.Qubes[qube].GuiVm) ? _system.Qubes[qube].GuiVm : null;
    }

    /// <summary>The source as the request named it (the relayed RemoteVM for a relayed call), or null when it is unknown.</summary>
    public string? SourceName(in PolicyResult result) => result.Source >= 0 ? Name(result.Source, result.Request.SourceForm) : null;

    /// <summary>
    /// The effective target in the form the answer names it: a qube (by name, or as <c>uuid:UUID</c>
    /// when so written), <c>@dispvm:NAME</c>, or the requested target when there is none.
    /// </summary>
    public string TargetName(in PolicyResult result) => result.Target switch
    {
        { Kind: TargetKind.Qube, Qube: >= 0 } t => Name(t.Qube, t.Form),
        { Kind: TargetKind.DispVmOf, Qube: >= 0 } t => "@dispvm:" + Name(t.Qube, t.Form),
        { Kind: TargetKind.DispVm } => "@dispvm",
        _ => result.RequestedTarget,
    };

    /// <summary>
    /// The targets an <c>ask</c> offers (§10.1): qube names in ordinal order, then <c>@dispvm:NAME</c>
    /// entries in ordinal order; or the rule's <c>target=</c> as written. Empty means the call is denied.
    /// </summary>
    public IReadOnlyList<string> AskChoices(in PolicyResult ask)
        => Choices(ask, AskRule(ask), out List<string> choices) == DenyReason.None ? choices : [];

    /// <summary>
    /// The target to preselect among <paramref name="choices"/> (§10.1 rule 5), or null: the rule's
    /// <c>default_target</c> as written (<c>@dispvm</c> resolved through the source's
    /// <c>default_dispvm</c>, a name of dom0 as <c>dom0</c>), when it is one of the choices.
    /// </summary>
    public string? AskDefault(in PolicyResult ask, IReadOnlyList<string> choices)
    {
        ArgumentNullException.ThrowIfNull(choices);
        if (AskRule(ask).DefaultTarget is not { } token)
        {
            return null;
        }
        string? target = token.Kind == TokenKind.DispVm
            ? (_defaultDispVm[ask.Source] is int d and >= 0 ? "@dispvm:" + _system.Qubes[d].Name : null)
            : token.IsDom0 ? "dom0" : token.ToString();
        return target != null && choices.Contains(target) ? target : null;
    }

    /// <summary>
    /// The decision once <paramref name="chosen"/> was chosen for an <c>ask</c> (§10.2): the choice
    /// must be one offered, exactly as offered, and is then allowed as by §9 rules 6-7. With
    /// assume-yes the requested target is the choice.
    /// </summary>
    public PolicyResult Approve(in PolicyResult ask, string chosen)
    {
        ArgumentNullException.ThrowIfNull(chosen);
        PolicyRule rule = AskRule(ask);
        DenyReason unavailable = Choices(ask, rule, out List<string> choices);
        if (unavailable != DenyReason.None)
        {
            return ask.Deny(unavailable, notify: unavailable == DenyReason.NoChoices, ask.Target);
        }
        if (!choices.Contains(chosen))
        {
            return ask.Deny(DenyReason.NotAmongChoices, notify: true, ask.Target);
        }
        ResolvedTarget target = ParseChoice(chosen);
        if ((ask.Mode & EvaluationMode.JustEvaluate) != 0)
        {
            // Evaluate-only: allowed once offered, before anything looks the target up.
            return ask.With(Resolution.Allow, target);
        }
        if (target.Kind == TargetKind.DispVm || target.Qube < 0)
        {
            // Offered by target= but no qube (@dispvm, or an unknown name): the allow cannot be written.
            return ask.With(Resolution.Deny, target, rule.Notify ? Notifications.Allowed : Notifications.None)
                .Deny(DenyReason.UnknownQube, notify: false, target);
        }
        return Grant(ask, target, rule.Notify);
    }

    /// <summary>
    /// Finishes an <c>ask</c> (§10): with no target to offer, no GUI qube for the source, or nobody
    /// to ask, the call is denied; otherwise <paramref name="prompt"/> asks the user. Any other
    /// result is returned as it is.
    /// </summary>
    public PolicyResult Resolve(in PolicyResult result, IAskPrompt? prompt)
    {
        if (result.Resolution != Resolution.Ask)
        {
            return result;
        }
        PolicyRule rule = AskRule(result);
        DenyReason unavailable = Choices(result, rule, out List<string> choices);
        if (unavailable != DenyReason.None)
        {
            return result.Deny(unavailable, notify: unavailable == DenyReason.NoChoices, result.Target);
        }
        if (string.IsNullOrEmpty(_system.Qubes[result.Source].GuiVm))
        {
            // Upstream asks in the source's GUI qube; without one it asks nobody.
            return result.Deny(DenyReason.NoGuiVm, rule.Notify, result.Target);
        }
        Split(result.ServiceAndArg, out ReadOnlySpan<char> service, out ReadOnlySpan<char> argument);
        string? chosen = prompt?.Ask(new AskRequest(SourceName(result)!, service.ToString(),
            argument.ToString(), choices, AskDefault(result, choices)));
        return chosen == null ? result.Deny(DenyReason.UserDenied, rule.Notify, result.Target) : Approve(result, chosen);
    }

    /// <summary>
    /// Writes the answer lines (§12) without the final newline into <paramref name="destination"/>;
    /// false when they do not fit. Qubes are named in the form the policy or the request wrote them.
    /// </summary>
    public bool TryWriteAnswer(in PolicyResult result, Span<byte> destination, out int written)
    {
        AnswerWriter w = new(destination);
        if (result.Resolution != Resolution.Allow)
        {
            w.Line("result=", "deny");
        }
        else if ((result.Mode & EvaluationMode.JustEvaluate) != 0)
        {
            w.Line("result=", "allow");
        }
        else
        {
            PolicyRule rule = _rules[result.RuleIndex];
            ResolvedTarget target = result.Target;
            QubeInfo qube = _system.Qubes[target.Qube];
            bool dom0 = target.Kind == TargetKind.Qube && target.Qube == _system.Dom0;
            bool remote = target.Kind == TargetKind.Qube && !dom0 && qube.IsRemote;
            string autostart = rule.Autostart ? "True" : "False";
            w.Line("user=", remote ? DefaultUser : rule.User ?? DefaultUser);
            w.Line("result=", "allow");
            if (dom0)
            {
                // dom0 however named; a relayed call to it names no policy source.
                w.Line("target=", "dom0");
                w.Line("autostart=", autostart);
                w.Line("requested_target=", result.RequestedTarget);
                written = w.Length;
                return w.Fits;
            }
            if (target.Kind == TargetKind.DispVmOf)
            {
                w.Line("target=", "@dispvm:", target.Form == NameForm.Uuid ? "uuid:" : "", target.Form == NameForm.Uuid ? qube.Uuid : qube.Name);
                w.Line("target_uuid=", "@dispvm:uuid:", qube.Uuid);
            }
            else if (remote)
            {
                QubeInfo relay = _system.Find(qube.RelayVm)!;
                w.Line("target=", relay.Name);
                w.Line("target_uuid=", "uuid:", relay.Uuid);
            }
            else
            {
                w.Line("target=", target.Form == NameForm.Uuid ? "uuid:" : "", target.Form == NameForm.Uuid ? qube.Uuid : qube.Name);
                w.Line("target_uuid=", "uuid:", qube.Uuid);
            }
            w.Line("autostart=", autostart);
            w.Line("requested_target=", result.RequestedTarget);
            if (remote)
            {
                // The transport is given the target as the caller requested it.
                ReadOnlySpan<char> serviceAndArg = result.ServiceAndArg;
                w.Line("service=", qube.TransportRpc!, "+", result.RequestedTarget, "+", serviceAndArg, serviceAndArg.Contains('+') ? "" : "+");
            }
            if (result.Relayed)
            {
                QubeInfo source = _system.Qubes[result.Source];
                bool uuid = result.Request.SourceForm == NameForm.Uuid;
                w.Line("policy_source=", uuid ? "uuid:" : "", uuid ? source.Uuid : source.Name);
            }
        }
        written = w.Length;
        return w.Fits;
    }

    /// <summary>The answer lines (§12), joined by newlines, without the final newline.</summary>
    public string FormatAnswer(in PolicyResult result)
    {
        byte[] buffer = new byte[64 * 1024 + 1024];
        if (!TryWriteAnswer(result, buffer, out int written))
        {
            throw new InvalidOperationException("answer longer than 64 KiB");
        }
        return Encoding.ASCII.GetString(buffer, 0, written);
    }

    /// <summary>Why a result came out as it did, in words, for logs and <c>qubes-policy</c>.</summary>
    public string Explain(in PolicyResult result)
    {
        string rule = RuleOf(result) is { } r ? $" ({r.File}:{r.Line}: {r})" : string.Empty;
        return result.Resolution switch
        {
            Resolution.Allow => $"allow to {TargetName(result)}{rule}",
            Resolution.Ask => $"ask{rule}",
            _ => result.Reason switch
            {
                DenyReason.PolicyUnusable => $"deny: policy unusable: {_error}",
                DenyReason.UnknownSource => "deny: unknown source qube",
                DenyReason.InvalidRelay => "deny: requested source is not a RemoteVM relayed by the caller",
                DenyReason.InvalidTarget => $"deny: invalid target '{result.Request.IntendedTarget}'",
                DenyReason.NotADispVmTemplate => $"deny: {TargetName(result)} is not a template for dispvm{rule}",
                DenyReason.NoMatchingRule => "deny: no matching rule",
                DenyReason.DeniedByRule => $"deny{rule}",
                DenyReason.NoTarget => $"deny: no target specified{rule}",
                DenyReason.NoDefaultDispVm => $"deny: source has no default_dispvm{rule}",
                DenyReason.TargetNotRunning => $"deny: target not running and autostart=no{rule}",
                DenyReason.Loopback => $"deny: loopback qrexec connection not supported{rule}",
                DenyReason.NoRelay => $"deny: RemoteVM target without relayvm or transport_rpc{rule}",
                DenyReason.UnknownQube => $"deny: {TargetName(result)} names no qube{rule}",
                DenyReason.AskWhileEvaluating => $"deny: ask in evaluate-only mode{rule}",
                DenyReason.NoChoices => $"deny: no target to offer{rule}",
                DenyReason.NotAmongChoices => $"deny: target not among those offered{rule}",
                DenyReason.NoGuiVm => $"deny: the source has no GUI qube to ask in{rule}",
                _ => $"deny: the user refused{rule}",
            },
        };
    }

    /// <summary>A denial before or without a rule.</summary>
    private static PolicyResult Denied(in PolicyRequest request, DenyReason reason, bool notify, ResolvedTarget target)
        => new PolicyResult(Resolution.Deny, DenyReason.None, -1, request, target, Notifications.None).Deny(reason, notify, target);

    /// <summary>The index of the qube named <paramref name="name"/> (a name or <c>uuid:UUID</c>; no keyword), or -1.</summary>
    private int IndexOfQube(ReadOnlySpan<char> name) => name.IsEmpty || name[0] == '@' ? -1 : _system.IndexOf(name);

    private static NameForm FormOf(ReadOnlySpan<char> name) => name.StartsWith("uuid:") ? NameForm.Uuid : NameForm.Name;

    /// <summary>A qube named in <paramref name="form"/>: its name, <c>uuid:UUID</c>, or <c>@adminvm</c>.</summary>
    private string Name(int qube, NameForm form) => form switch
    {
        NameForm.Uuid => "uuid:" + _system.Qubes[qube].Uuid,
        NameForm.AdminKeyword => "@adminvm",
        _ => _system.Qubes[qube].Name,
    };

    /// <summary>§7 rules 1-4: the requested target as indexes, in the form it was written.</summary>
    private DenyReason PrepareTarget(ReadOnlySpan<char> text, out ResolvedTarget target)
    {
        target = ResolvedTarget.Default;
        if (text.IsEmpty || text.SequenceEqual(DefaultKeyword))
        {
            return DenyReason.None;
        }
        if (text.SequenceEqual("@dispvm"))
        {
            target = new ResolvedTarget(TargetKind.DispVm, -1);
            return DenyReason.None;
        }
        if (text.StartsWith("@dispvm:"))
        {
            ReadOnlySpan<char> name = text[8..];
            if (name.IsEmpty || name[0] == '@')
            {
                return DenyReason.InvalidTarget;
            }
            int template = _system.IndexOf(name);
            target = new ResolvedTarget(TargetKind.DispVmOf, template, FormOf(name));
            return template >= 0 && _system.Qubes[template].TemplateForDispVms ? DenyReason.None : DenyReason.NotADispVmTemplate;
        }
        if (text.SequenceEqual("@adminvm"))
        {
            target = new ResolvedTarget(TargetKind.Qube, _system.Dom0, NameForm.AdminKeyword);
            return DenyReason.None;
        }
        if (text[0] == '@' || text.SequenceEqual("*"))
        {
            return DenyReason.InvalidTarget;
        }
        int qube = _system.IndexOf(text);
        if (qube >= 0)
        {
            target = new ResolvedTarget(TargetKind.Qube, qube, FormOf(text));
        }
        return DenyReason.None;
    }

    /// <summary>A <c>target=</c> parameter resolved as a requested target would be (§9 rule 1).</summary>
    private ResolvedTarget Redirect(PolicyToken token)
    {
        DenyReason reason = PrepareTarget(token.ToString(), out ResolvedTarget target);
        // A redirect to a qube that is not a dispvm template denies when used: kept as such.
        return reason == DenyReason.None ? target : target with { Kind = TargetKind.DispVmOf, Qube = -1 };
    }

    /// <summary>§9: an allow rule with its effective target.</summary>
    private PolicyResult Allow(in PolicyResult matched, ResolvedTarget target, PolicyRule rule)
    {
        switch (target.Kind)
        {
            case TargetKind.Default:
                return matched.Deny(DenyReason.NoTarget, notify: true, target);
            case TargetKind.DispVmOf when target.Qube < 0:
                return matched.Deny(DenyReason.NotADispVmTemplate, notify: true, target);
            case TargetKind.DispVm:
                int template = _defaultDispVm[matched.Source];
                if (template < 0)
                {
                    return matched.Deny(DenyReason.NoDefaultDispVm, notify: true, target);
                }
                target = new ResolvedTarget(TargetKind.DispVmOf, template);
                break;
            case TargetKind.Qube when target.Form == NameForm.AdminKeyword:
                // @adminvm becomes dom0 (a uuid: form of dom0 stays, which matters for the loopback test).
                target = target with { Form = NameForm.Name };
                break;
        }
        if (!rule.Autostart && !RunsWithoutAutostart(target))
        {
            return matched.Deny(DenyReason.TargetNotRunning, rule.Notify, target);
        }
        return Grant(matched, target, rule.Notify);
    }

    /// <summary>§9 rule 5: whether a target can be reached under <c>autostart=no</c>: dom0, or a running qube; never a new disposable.</summary>
    private bool RunsWithoutAutostart(ResolvedTarget target)
        => target.Kind == TargetKind.Qube && (target.Qube == _system.Dom0 || _system.Qubes[target.Qube].IsRunning);

    /// <summary>
    /// §9 rules 6-7, for an allow or an approved ask: evaluate-only mode allows at once; otherwise
    /// the "allowed" notification is sent (<paramref name="notify"/>), and a loopback call or a
    /// RemoteVM that cannot be reached is then denied.
    /// </summary>
    private PolicyResult Grant(in PolicyResult decided, ResolvedTarget target, bool notify)
    {
        if ((decided.Mode & EvaluationMode.JustEvaluate) != 0)
        {
            return decided.With(Resolution.Allow, target);
        }
        PolicyResult granted = decided.With(Resolution.Allow, target, notify ? Notifications.Allowed : Notifications.None);
        if (target.Kind != TargetKind.Qube)
        {
            return granted;
        }
        // Loopback: the target written as the source was (upstream compares the two names as text).
        if (target.Qube == decided.Source && target.Form == decided.Request.SourceForm)
        {
            return granted.Deny(DenyReason.Loopback, notify: true, target);
        }
        QubeInfo qube = _system.Qubes[target.Qube];
        if (target.Qube != _system.Dom0 && qube.IsRemote)
        {
            if (string.IsNullOrEmpty(qube.RelayVm) || string.IsNullOrEmpty(qube.TransportRpc))
            {
                return granted.Deny(DenyReason.NoRelay, notify: true, target);
            }
            if (_system.IndexOf(qube.RelayVm) < 0)
            {
                return granted.Deny(DenyReason.UnknownQube, notify: false, target);
            }
        }
        return granted;
    }

    /// <summary>A choice of an <c>ask</c> as a target: dom0, <c>@dispvm</c>, <c>@dispvm:NAME</c> or a qube (-1 when the name is no qube).</summary>
    private ResolvedTarget ParseChoice(string chosen)
    {
        if (PolicyToken.IsDom0Name(chosen))
        {
            return new ResolvedTarget(TargetKind.Qube, _system.Dom0, chosen == "dom0" ? NameForm.Name : FormOf(chosen));
        }
        if (chosen == "@dispvm")
        {
            return new ResolvedTarget(TargetKind.DispVm, -1);
        }
        if (chosen.StartsWith("@dispvm:", StringComparison.Ordinal))
        {
            ReadOnlySpan<char> template = chosen.AsSpan(8);
            return new ResolvedTarget(TargetKind.DispVmOf, IndexOfQube(template), FormOf(template));
        }
        return new ResolvedTarget(TargetKind.Qube, IndexOfQube(chosen), FormOf(chosen));
    }

    /// <summary>
    /// §10.1: what an <c>ask</c> offers, after the <c>autostart=no</c> test. <see cref="DenyReason.None"/>,
    /// <see cref="DenyReason.NoChoices"/> when nothing is left, or <see cref="DenyReason.UnknownQube"/>
    /// when a name that has to be looked up is no qube.
    /// </summary>
    private DenyReason Choices(in PolicyResult ask, PolicyRule rule, out List<string> choices)
    {
        if (rule.RedirectTarget is { } only)
        {
            // target= is offered as written, and not checked against the system.
            choices = [only.IsDom0 ? "dom0" : only.ToString()];
        }
        else if (!Collect(ask, out choices))
        {
            return DenyReason.UnknownQube;
        }
        if (!rule.Autostart)
        {
            for (int c = choices.Count - 1; c >= 0; c--)
            {
                string choice = choices[c];
                if (PolicyToken.IsDom0Name(choice))
                {
                    continue;
                }
                int qube = choice.StartsWith("@dispvm", StringComparison.Ordinal) ? -2 : IndexOfQube(choice);
                if (qube == -1)
                {
                    return DenyReason.UnknownQube;
                }
                if (qube == -2 || !_system.Qubes[qube].IsRunning)
                {
                    choices.RemoveAt(c);
                }
            }
        }
        return choices.Count == 0 ? DenyReason.NoChoices : DenyReason.None;
    }

    /// <summary>
    /// §10.1 rule 2: the reverse walk with deny subtraction, as qube names in ordinal order, then
    /// <c>@dispvm:NAME</c> entries in ordinal order. False when a rule names a disposable template
    /// that is no qube (upstream fails the call then).
    /// </summary>
    private bool Collect(in PolicyResult ask, out List<string> choices)
    {
        choices = [];
        int source = ask.Source;
        int count = _system.Qubes.Count;
        bool[] names = new bool[count];
        bool[] dispVms = new bool[count];
        bool anyDispVm = false, adminVm = false;
        Split(ask.ServiceAndArg, out ReadOnlySpan<char> service, out ReadOnlySpan<char> argument);
        ReadOnlySpan<int> candidates = RulesFor(service);
        for (int c = candidates.Length - 1; c >= 0; c--)
        {
            int i = candidates[c];
            ref readonly CompiledRule compiled = ref _compiled[i];
            if (!MatchesArgument(compiled.Argument, argument) || !MatchesSource(compiled.Source, source))
            {
                continue;
            }
            PolicyRule candidate = _rules[i];
            bool add = candidate.Action != PolicyAction.Deny;
            PolicyToken token = candidate.RedirectTarget ?? candidate.Target;
            switch (token.Kind)
            {
                case TokenKind.Literal:
                    int q = _system.IndexOf(token.Value);
                    if (q >= 0)
                    {
                        names[q] = add;
                    }
                    break;
                case TokenKind.Any:
                case TokenKind.AnyVm:
                    for (int n = 0; n < count; n++)
                    {
                        if (token.Kind == TokenKind.Any || n != _system.Dom0)
                        {
                            names[n] = add;
                        }
                        if (_system.Qubes[n].TemplateForDispVms)
                        {
                            dispVms[n] = add;
                        }
                    }
                    anyDispVm = add;
                    break;
                case TokenKind.AdminVm:
                    adminVm = add;
                    break;
                case TokenKind.Type:
                case TokenKind.Tag:
                    // Only the TARGET column holds these (a target= parameter cannot).
                    for (int n = 0; n < count; n++)
                    {
                        if (MatchesSource(compiled.Target, n))
                        {
                            names[n] = add;
                        }
                    }
                    break;
                case TokenKind.DispVm:
                    anyDispVm = add;
                    break;
                case TokenKind.DispVmOf:
                    int template = _system.IndexOf(token.Value);
                    if (template < 0)
                    {
                        return false;
                    }
                    if (_system.Qubes[template].TemplateForDispVms)
                    {
                        dispVms[template] = add;
                    }
                    break;
                case TokenKind.DispVmTagged:
                    for (int n = 0; n < count; n++)
                    {
                        if (_system.Qubes[n].TemplateForDispVms && HasTag(n, compiled.Target.Id))
                        {
                            dispVms[n] = add;
                        }
                    }
                    break;
            }
        }
        if (anyDispVm && _defaultDispVm[source] >= 0)
        {
            dispVms[_defaultDispVm[source]] = true;
        }
        if (adminVm)
        {
            names[_system.Dom0] = true;
        }
        names[source] = false;
        List<string> disposables = [];
        foreach (int n in _byName)
        {
            QubeInfo qube = _system.Qubes[n];
            if (qube.Internal)
            {
                continue;
            }
            if (names[n])
            {
                choices.Add(qube.Name);
            }
            if (dispVms[n])
            {
                disposables.Add("@dispvm:" + qube.Name);
            }
        }
        choices.AddRange(disposables);
        return true;
    }

    /// <summary>The rules that can match a service: its own and those for every service, in policy order.</summary>
    private ReadOnlySpan<int> RulesFor(ReadOnlySpan<char> service)
        => _serviceLookup.TryGetValue(service, out int[]? forService) ? forService : _anyService;

    private static bool MatchesArgument(string? ruleArgument, ReadOnlySpan<char> argument)
        => ruleArgument == null || argument.SequenceEqual(ruleArgument);

    private PolicyRule AskRule(in PolicyResult ask)
        => ask.RuleIndex >= 0 && _rules[ask.RuleIndex].Action == PolicyAction.Ask
            ? _rules[ask.RuleIndex]
            : throw new ArgumentException("not the result of an ask rule", nameof(ask));

    private bool MatchesSource(Matcher m, int source) => m.Kind switch
    {
        TokenKind.Literal => source == m.Id,
        TokenKind.Any => true,
        TokenKind.AnyVm => source != _system.Dom0,
        TokenKind.AdminVm => source == _system.Dom0,
        TokenKind.Type => _type[source] == m.Id,
        TokenKind.Tag => HasTag(source, m.Id),
        // @default, @dispvm and the disposable keywords name no existing qube (§3.1).
        _ => false,
    };

    private TargetMatch MatchTarget(Matcher m, ResolvedTarget target, int source)
    {
        switch (m.Kind)
        {
            case TokenKind.Any:
                return TargetMatch.Yes;
            case TokenKind.AnyVm:
                return Is(target.Kind != TargetKind.Qube || target.Qube != _system.Dom0);
            case TokenKind.Default:
                return Is(target.Kind == TargetKind.Default);
            case TokenKind.DispVm:
                return Is(target.Kind == TargetKind.DispVm);
            case TokenKind.DispVmOf when target.Kind == TargetKind.DispVm:
                // @dispvm is compared, as text, with @dispvm: and the source's default_dispvm: a rule
                // naming the template by uuid never matches it, and without a default there is nothing to compare.
                int defaultTemplate = _defaultDispVm[source];
                return defaultTemplate < 0 ? TargetMatch.Failed : Is(!m.Uuid && defaultTemplate == m.Id);
            case TokenKind.DispVmOf:
                return Is(target.Kind == TargetKind.DispVmOf && target.Qube == m.Id);
            case TokenKind.DispVmTagged:
                int template = target.Kind == TargetKind.DispVmOf ? target.Qube
                    : target.Kind == TargetKind.DispVm ? _defaultDispVm[source]
                    : -1;
                return Is(template >= 0 && _system.Qubes[template].TemplateForDispVms && HasTag(template, m.Id));
            case TokenKind.Type:
            case TokenKind.Tag:
                // Types and tags belong to qubes the system lists, which @adminvm is not.
                return Is(target.Kind == TargetKind.Qube && target.Form != NameForm.AdminKeyword && MatchesSource(m, target.Qube));
            default:
                return Is(target.Kind == TargetKind.Qube && MatchesSource(m, target.Qube));
        }
    }

    private static TargetMatch Is(bool matches) => matches ? TargetMatch.Yes : TargetMatch.No;

    private bool HasTag(int qube, int tag)
    {
        foreach (int t in _tags[qube])
        {
            if (t == tag)
            {
                return true;
            }
        }
        return false;
    }

    /// <summary>A rule token as numbers: a qube index for names, a type or tag number; -1 for one the system does not have (matches nothing).</summary>
    private Matcher Compile(PolicyToken token, Dictionary<string, int> types, Dictionary<string, int> tags) => token.Kind switch
    {
        TokenKind.Literal => new Matcher(token.Kind, _system.IndexOf(token.Value)),
        TokenKind.DispVmOf => new Matcher(token.Kind, _system.IndexOf(token.Value), token.Value.StartsWith("uuid:", StringComparison.Ordinal)),
        TokenKind.Type => new Matcher(token.Kind, types.GetValueOrDefault(token.Value, -1)),
        TokenKind.Tag or TokenKind.DispVmTagged => new Matcher(token.Kind, tags.GetValueOrDefault(token.Value, -1)),
        _ => new Matcher(token.Kind, -1),
    };

    private static int Intern(Dictionary<string, int> numbers, string name)
    {
        if (!numbers.TryGetValue(name, out int number))
        {
            numbers.Add(name, number = numbers.Count);
        }
        return number;
    }

    /// <summary>§2.2: split at the first <c>+</c>; no <c>+</c> means the empty argument <c>+</c>.</summary>
    private static void Split(string serviceAndArg, out ReadOnlySpan<char> service, out ReadOnlySpan<char> argument)
    {
        int plus = serviceAndArg.IndexOf('+', StringComparison.Ordinal);
        service = plus < 0 ? serviceAndArg : serviceAndArg.AsSpan(0, plus);
        argument = plus < 0 ? "+" : serviceAndArg.AsSpan(plus);
    }

    /// <summary>How a rule's TARGET compares with a request's target; <see cref="Failed"/> when it cannot be compared.</summary>
    private enum TargetMatch : byte
    {
        No,
        Yes,
        Failed,
    }

    /// <summary>A token as numbers (see <see cref="Compile"/>); <see cref="Uuid"/>: a <c>@dispvm:uuid:UUID</c> token.</summary>
    private readonly record struct Matcher(TokenKind Kind, int Id, bool Uuid = false);

    /// <summary>A rule as numbers; <see cref="Redirect"/> is its <c>target=</c> already prepared.</summary>
    private readonly record struct CompiledRule(string? Argument, Matcher Source, Matcher Target, PolicyAction Action, ResolvedTarget? Redirect);

    /// <summary>Appends ASCII lines to a span, remembering whether everything fitted.</summary>
    private ref struct AnswerWriter(Span<byte> destination)
    {
        private readonly Span<byte> _destination = destination;

        public int Length { get; private set; }

        public bool Fits { get; private set; } = true;

        public void Line(ReadOnlySpan<char> a, ReadOnlySpan<char> b, ReadOnlySpan<char> c = default, ReadOnlySpan<char> d = default,
            ReadOnlySpan<char> e = default, ReadOnlySpan<char> f = default, ReadOnlySpan<char> g = default)
        {
            if (Length > 0)
            {
                Append("\n");
            }
            Append(a);
            Append(b);
            Append(c);
            Append(d);
            Append(e);
            Append(f);
            Append(g);
        }

        private void Append(ReadOnlySpan<char> text)
        {
            if (!Fits || text.Length > _destination.Length - Length)
            {
                Fits = false;
                return;
            }
            foreach (char ch in text)
            {
                _destination[Length++] = ch < 0x80 ? (byte)ch : (byte)'?';
            }
        }
    }
}
