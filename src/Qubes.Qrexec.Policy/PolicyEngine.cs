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
/// of the policy files or of the system makes a new one.
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

    private PolicyEngine(SystemInfo system, string error)
        : this([], system) => _error = error;

    /// <summary>An engine that denies every call because the policy cannot be used (§1 rules 2 and 5).</summary>
    public static PolicyEngine Unusable(string error, SystemInfo? system = null)
        => new(system ?? new SystemInfo([]), error);

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
    /// <see cref="Resolution.Ask"/>, to be finished by <see cref="AskChoices"/> and <see cref="Approve"/>.
    /// </summary>
    public PolicyResult Evaluate(string serviceAndArg, string source, string intendedTarget, string? requestedSource = null,
        EvaluationMode mode = EvaluationMode.Normal)
    {
        ArgumentNullException.ThrowIfNull(serviceAndArg);
        ArgumentNullException.ThrowIfNull(source);
        ArgumentNullException.ThrowIfNull(intendedTarget);
        int sourceIndex = _system.IndexOf(source);
        bool relayed = !string.IsNullOrEmpty(requestedSource);
        if (relayed && sourceIndex >= 0)
        {
            // §7 rule 5: only the relay qube of a RemoteVM speaks for it.
            int remote = _system.IndexOf(requestedSource);
            QubeInfo? remoteQube = remote >= 0 ? _system.Qubes[remote] : null;
            sourceIndex = remoteQube is { IsRemote: true, RelayVm: string relay } && _system.IndexOf(relay) == sourceIndex ? remote : -2;
        }
        DenyReason early = _error != null ? DenyReason.PolicyUnusable
            : sourceIndex == -2 ? DenyReason.InvalidRelay
            : sourceIndex < 0 ? DenyReason.UnknownSource
            : DenyReason.None;
        Split(serviceAndArg, out ReadOnlySpan<char> service, out ReadOnlySpan<char> argument);
        if (early == DenyReason.None && service.IsEmpty)
        {
            early = DenyReason.InvalidService;
        }
        ResolvedTarget target = ResolvedTarget.Default;
        string requested = intendedTarget;
        if (early == DenyReason.None)
        {
            early = PrepareTarget(intendedTarget, out target);
            if (target.Kind == TargetKind.Default)
            {
                requested = DefaultKeyword;
            }
        }
        if (early != DenyReason.None)
        {
            return new PolicyResult(Resolution.Deny, early, -1, sourceIndex, relayed, target, requested, serviceAndArg, mode);
        }

        foreach (int i in RulesFor(service))
        {
            ref readonly CompiledRule rule = ref _compiled[i];
            if (MatchesArgument(rule.Argument, argument)
                && MatchesSource(rule.Source, sourceIndex)
                && MatchesTarget(rule.Target, target, sourceIndex))
            {
                PolicyResult matched = new(Resolution.Deny, DenyReason.None, i, sourceIndex, relayed, target, requested, serviceAndArg, mode);
                return rule.Action switch
                {
                    PolicyAction.Deny => matched.With(Resolution.Deny, DenyReason.DeniedByRule, target),
                    PolicyAction.Allow => Allow(matched, rule.Redirect ?? target, _rules[i].Autostart),
                    _ => (mode & EvaluationMode.JustEvaluate) != 0 ? matched.With(Resolution.Deny, DenyReason.AskWhileEvaluating, target)
                        : (mode & EvaluationMode.AssumeYesForAsk) != 0 ? AssumeYes(matched)
                        : matched.With(Resolution.Ask, DenyReason.None, target),
                };
            }
        }
        return new PolicyResult(Resolution.Deny, DenyReason.NoMatchingRule, -1, sourceIndex, relayed, target, requested, serviceAndArg, mode);
    }

    /// <summary>The rule that decided, or null.</summary>
    public PolicyRule? RuleOf(in PolicyResult result) => result.RuleIndex >= 0 ? _rules[result.RuleIndex] : null;

    /// <summary>Whether the user should be told of this decision (§10.3): a deny with <c>notify</c>, or an allow with <c>notify=yes</c>.</summary>
    public bool ShouldNotify(in PolicyResult result)
        => (result.Mode & EvaluationMode.JustEvaluate) == 0 && result.Resolution != Resolution.Ask
        && (RuleOf(result) is { } rule ? rule.Notify : result.Resolution == Resolution.Deny);

    /// <summary>The source's name (the relayed RemoteVM for a relayed call), or null when it is unknown.</summary>
    public string? SourceName(in PolicyResult result) => result.Source >= 0 ? _system.Qubes[result.Source].Name : null;

    /// <summary>The effective target as the answer names it: a qube, <c>@dispvm:NAME</c>, or the requested target when there is none.</summary>
    public string TargetName(in PolicyResult result) => result.Target.Kind switch
    {
        TargetKind.Qube => result.Target.AsUuid ? "uuid:" + PolicyToken.AdminUuid : _system.Qubes[result.Target.Qube].Name,
        TargetKind.DispVmOf when result.Target.Qube >= 0 => "@dispvm:" + _system.Qubes[result.Target.Qube].Name,
        TargetKind.DispVm => "@dispvm",
        _ => result.RequestedTarget,
    };

    /// <summary>
    /// The targets an <c>ask</c> offers (§10.1): qube names in ordinal order, then <c>@dispvm:NAME</c>
    /// entries in ordinal order. Empty means the call is denied.
    /// </summary>
    public IReadOnlyList<string> AskChoices(in PolicyResult ask)
    {
        PolicyRule rule = AskRule(ask);
        if (rule.RedirectTarget is { } only)
        {
            return [only.IsDom0 ? "dom0" : only.ToString()];
        }
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
                    if (template >= 0 && _system.Qubes[template].TemplateForDispVms)
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
        bool autostart = rule.Autostart;
        List<string> choices = [];
        List<string> disposables = [];
        foreach (int n in _byName)
        {
            QubeInfo qube = _system.Qubes[n];
            if (qube.Internal)
            {
                continue;
            }
            if (names[n] && (autostart || n == _system.Dom0 || qube.IsRunning))
            {
                choices.Add(qube.Name);
            }
            if (dispVms[n] && autostart)
            {
                disposables.Add("@dispvm:" + qube.Name);
            }
        }
        choices.AddRange(disposables);
        return choices;
    }

    /// <summary>The target to preselect among <paramref name="choices"/> (§10.1 rule 5), or null.</summary>
    public string? AskDefault(in PolicyResult ask, IReadOnlyList<string> choices)
    {
        ArgumentNullException.ThrowIfNull(choices);
        if (AskRule(ask).DefaultTarget is not { } token)
        {
            return null;
        }
        string? target = token.Kind switch
        {
            TokenKind.DispVm => _defaultDispVm[ask.Source] is int d and >= 0 ? "@dispvm:" + _system.Qubes[d].Name : null,
            TokenKind.DispVmOf => _system.Find(token.Value) is { } template ? "@dispvm:" + template.Name : null,
            _ => token.IsDom0 ? "dom0" : _system.Find(token.Value)?.Name,
        };
        return target != null && choices.Contains(target) ? target : null;
    }

    /// <summary>
    /// The decision once the user chose <paramref name="chosen"/> for an <c>ask</c> (§10.2): the
    /// choice must be one offered, and is then allowed as by §9 rules 6-7.
    /// </summary>
    public PolicyResult Approve(in PolicyResult ask, string chosen)
    {
        ArgumentNullException.ThrowIfNull(chosen);
        IReadOnlyList<string> choices = AskChoices(ask);
        if (choices.Count == 0)
        {
            return ask.With(Resolution.Deny, DenyReason.NoChoices, ask.Target);
        }
        if (!choices.Contains(chosen))
        {
            return ask.With(Resolution.Deny, DenyReason.NotAmongChoices, ask.Target);
        }
        ResolvedTarget target;
        if (chosen == "@dispvm")
        {
            target = new ResolvedTarget(TargetKind.DispVm, -1);
        }
        else if (chosen.StartsWith("@dispvm:", StringComparison.Ordinal))
        {
            target = new ResolvedTarget(TargetKind.DispVmOf, _system.IndexOf(chosen.AsSpan(8)));
        }
        else
        {
            target = new ResolvedTarget(TargetKind.Qube, _system.IndexOf(chosen));
        }
        if (target.Kind != TargetKind.DispVm && target.Qube < 0)
        {
            return ask.With(Resolution.Deny, DenyReason.NoTarget, ask.Target);
        }
        return TryResolveDispVm(ask.Source, ref target) ? Finish(ask, target) : ask.With(Resolution.Deny, DenyReason.NoDefaultDispVm, target);
    }

    /// <summary>
    /// Finishes an <c>ask</c> (§10): with no target to offer, or nobody to ask, the call is denied;
    /// otherwise <paramref name="prompt"/> asks the user. Any other result is returned as it is.
    /// </summary>
    public PolicyResult Resolve(in PolicyResult result, IAskPrompt? prompt)
    {
        if (result.Resolution != Resolution.Ask)
        {
            return result;
        }
        IReadOnlyList<string> choices = AskChoices(result);
        if (choices.Count == 0)
        {
            return result.With(Resolution.Deny, DenyReason.NoChoices, result.Target);
        }
        Split(result.ServiceAndArg, out ReadOnlySpan<char> service, out ReadOnlySpan<char> argument);
        string? chosen = prompt?.Ask(new AskRequest(_system.Qubes[result.Source].Name, service.ToString(),
            argument.ToString(), choices, AskDefault(result, choices)));
        return chosen == null ? result.With(Resolution.Deny, DenyReason.UserDenied, result.Target) : Approve(result, chosen);
    }

    /// <summary>
    /// Writes the answer lines (§12) without the final newline into <paramref name="destination"/>;
    /// false when they do not fit.
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
            bool remote = target.Kind == TargetKind.Qube && qube.IsRemote;
            w.Line("user=", remote ? DefaultUser : rule.User ?? DefaultUser);
            w.Line("result=", "allow");
            if (target.Kind == TargetKind.DispVmOf)
            {
                w.Line("target=", "@dispvm:", qube.Name);
                w.Line("target_uuid=", "@dispvm:uuid:", qube.Uuid);
            }
            else if (target.Qube == _system.Dom0)
            {
                w.Line("target=", target.AsUuid ? "uuid:" + PolicyToken.AdminUuid : "dom0");
            }
            else
            {
                QubeInfo reached = remote ? _system.Find(qube.RelayVm)! : qube;
                w.Line("target=", reached.Name);
                w.Line("target_uuid=", "uuid:", reached.Uuid);
            }
            w.Line("autostart=", rule.Autostart ? "True" : "False");
            w.Line("requested_target=", result.RequestedTarget);
            if (remote)
            {
                ReadOnlySpan<char> serviceAndArg = result.ServiceAndArg;
                w.Line("service=", qube.TransportRpc!, "+", qube.Name, "+", serviceAndArg, serviceAndArg.Contains('+') ? "" : "+");
            }
            if (result.Relayed)
            {
                w.Line("policy_source=", _system.Qubes[result.Source].Name);
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
                DenyReason.InvalidService => "deny: empty service name",
                DenyReason.UnknownSource => "deny: unknown source qube",
                DenyReason.InvalidRelay => "deny: requested source is not a RemoteVM relayed by the caller",
                DenyReason.InvalidTarget => $"deny: invalid target '{result.RequestedTarget}'",
                DenyReason.NotADispVmTemplate => $"deny: {TargetName(result)} is not a template for dispvm",
                DenyReason.NoMatchingRule => "deny: no matching rule",
                DenyReason.DeniedByRule => $"deny{rule}",
                DenyReason.NoTarget => $"deny: no target specified{rule}",
                DenyReason.NoDefaultDispVm => $"deny: source has no default_dispvm{rule}",
                DenyReason.TargetNotRunning => $"deny: target not running and autostart=no{rule}",
                DenyReason.Loopback => $"deny: loopback qrexec connection not supported{rule}",
                DenyReason.NoRelay => $"deny: RemoteVM target without relayvm or transport_rpc{rule}",
                DenyReason.AskWhileEvaluating => $"deny: ask in evaluate-only mode{rule}",
                DenyReason.NoChoices => $"deny: no target to offer{rule}",
                DenyReason.NotAmongChoices => $"deny: target not among those offered{rule}",
                _ => $"deny: the user refused{rule}",
            },
        };
    }

    /// <summary>§7 rules 1-4: the requested target as indexes.</summary>
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
            target = new ResolvedTarget(TargetKind.DispVmOf, template);
            return template >= 0 && _system.Qubes[template].TemplateForDispVms ? DenyReason.None : DenyReason.NotADispVmTemplate;
        }
        if (text.SequenceEqual("@adminvm"))
        {
            target = new ResolvedTarget(TargetKind.Qube, _system.Dom0);
            return DenyReason.None;
        }
        if (text[0] == '@' || text.SequenceEqual("*"))
        {
            return DenyReason.InvalidTarget;
        }
        int qube = _system.IndexOf(text);
        if (qube >= 0)
        {
            target = new ResolvedTarget(TargetKind.Qube, qube, qube == _system.Dom0 && text.StartsWith("uuid:"));
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
    private PolicyResult Allow(in PolicyResult matched, ResolvedTarget target, bool autostart)
    {
        switch (target.Kind)
        {
            case TargetKind.Default:
                return matched.With(Resolution.Deny, DenyReason.NoTarget, target);
            case TargetKind.DispVmOf when target.Qube < 0:
                return matched.With(Resolution.Deny, DenyReason.NotADispVmTemplate, target);
        }
        if (!TryResolveDispVm(matched.Source, ref target))
        {
            return matched.With(Resolution.Deny, DenyReason.NoDefaultDispVm, target);
        }
        if (!autostart && (target.Kind == TargetKind.DispVmOf || (target.Qube != _system.Dom0 && !_system.Qubes[target.Qube].IsRunning)))
        {
            return matched.With(Resolution.Deny, DenyReason.TargetNotRunning, target);
        }
        return Finish(matched, target);
    }

    /// <summary>§9 rules 6-7: refuse a loopback call and a RemoteVM that cannot be reached; otherwise allow.</summary>
    private PolicyResult Finish(in PolicyResult decided, ResolvedTarget target)
    {
        if (target.Kind == TargetKind.Qube)
        {
            if (target.Qube == decided.Source)
            {
                return decided.With(Resolution.Deny, DenyReason.Loopback, target);
            }
            QubeInfo qube = _system.Qubes[target.Qube];
            if (qube.IsRemote && (qube.TransportRpc == null || qube.RelayVm == null || _system.IndexOf(qube.RelayVm) < 0))
            {
                return decided.With(Resolution.Deny, DenyReason.NoRelay, target);
            }
        }
        return decided.With(Resolution.Allow, DenyReason.None, target);
    }

    /// <summary>§10.2 assume-yes: approved for the requested target, when it is among the choices.</summary>
    private PolicyResult AssumeYes(in PolicyResult ask)
    {
        ResolvedTarget requested = ask.Target;
        string name = requested.Kind switch
        {
            TargetKind.Qube => _system.Qubes[requested.Qube].Name,
            TargetKind.DispVmOf when requested.Qube >= 0 => "@dispvm:" + _system.Qubes[requested.Qube].Name,
            TargetKind.DispVmOf => ask.RequestedTarget, // no such qube: never among the choices
            TargetKind.DispVm => "@dispvm",
            _ => DefaultKeyword,
        };
        return Approve(ask, name);
    }

    /// <summary>§9 rule 3: <c>@dispvm</c> becomes a new disposable of the source's <c>default_dispvm</c>; false when it has none.</summary>
    private bool TryResolveDispVm(int source, ref ResolvedTarget target)
    {
        if (target.Kind != TargetKind.DispVm)
        {
            return true;
        }
        int template = _defaultDispVm[source];
        if (template < 0)
        {
            return false;
        }
        target = new ResolvedTarget(TargetKind.DispVmOf, template);
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

    private bool MatchesTarget(Matcher m, ResolvedTarget target, int source)
    {
        switch (m.Kind)
        {
            case TokenKind.Any:
                return true;
            case TokenKind.AnyVm:
                return target.Kind != TargetKind.Qube || target.Qube != _system.Dom0;
            case TokenKind.Default:
                return target.Kind == TargetKind.Default;
            case TokenKind.DispVm:
                return target.Kind == TargetKind.DispVm;
            case TokenKind.DispVmOf:
            case TokenKind.DispVmTagged:
                int template = target.Kind == TargetKind.DispVmOf ? target.Qube
                    : target.Kind == TargetKind.DispVm ? _defaultDispVm[source]
                    : -1;
                return template >= 0 && (m.Kind == TokenKind.DispVmOf
                    ? template == m.Id
                    : _system.Qubes[template].TemplateForDispVms && HasTag(template, m.Id));
            default:
                return target.Kind == TargetKind.Qube && MatchesSource(m, target.Qube);
        }
    }

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
        TokenKind.Literal or TokenKind.DispVmOf => new Matcher(token.Kind, _system.IndexOf(token.Value)),
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

    /// <summary>A token as numbers (see <see cref="Compile"/>).</summary>
    private readonly record struct Matcher(TokenKind Kind, int Id);

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
