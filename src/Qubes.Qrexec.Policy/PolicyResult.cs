using System;

namespace Qubes.Qrexec.Policy;

/// <summary>What the policy decided.</summary>
public enum Resolution : byte
{
    /// <summary>The call is refused.</summary>
    Deny,
    /// <summary>The call may go ahead.</summary>
    Allow,
    /// <summary>The user has to be asked (only in <see cref="EvaluationMode.Normal"/>).</summary>
    Ask,
}

/// <summary>Why a call was refused.</summary>
public enum DenyReason : byte
{
    /// <summary>Not refused.</summary>
    None,
    /// <summary>The policy could not be loaded; every call is refused until it is fixed.</summary>
    PolicyUnusable,
    /// <summary>The service name is empty.</summary>
    InvalidService,
    /// <summary>The calling qube is not known.</summary>
    UnknownSource,
    /// <summary>The requested source is not a RemoteVM relayed by the calling qube.</summary>
    InvalidRelay,
    /// <summary>The requested target is a keyword not allowed there.</summary>
    InvalidTarget,
    /// <summary><c>@dispvm:NAME</c> names a qube that is not a template for disposables.</summary>
    NotADispVmTemplate,
    /// <summary>No rule matches.</summary>
    NoMatchingRule,
    /// <summary>The first matching rule says deny.</summary>
    DeniedByRule,
    /// <summary>An allow with no target (<c>@default</c>).</summary>
    NoTarget,
    /// <summary><c>@dispvm</c> for a source without <c>default_dispvm</c>.</summary>
    NoDefaultDispVm,
    /// <summary><c>autostart=no</c> and the target is not running (or is a new disposable).</summary>
    TargetNotRunning,
    /// <summary>The target is the source.</summary>
    Loopback,
    /// <summary>A RemoteVM target without <c>relayvm</c> or <c>transport_rpc</c>.</summary>
    NoRelay,
    /// <summary>An <c>ask</c> in evaluate-only mode.</summary>
    AskWhileEvaluating,
    /// <summary>An <c>ask</c> with nothing to offer.</summary>
    NoChoices,
    /// <summary>The chosen (or, with assume-yes, requested) target is not among those offered.</summary>
    NotAmongChoices,
    /// <summary>The user said no, or there was nobody to ask.</summary>
    UserDenied,
}

/// <summary>How a request is evaluated (the socket protocol's <c>just_evaluate</c> and <c>assume_yes_for_ask</c>).</summary>
[Flags]
public enum EvaluationMode : byte
{
    /// <summary>A real call: <c>ask</c> is resolved by asking the user.</summary>
    Normal = 0,
    /// <summary>Only say whether the call would be allowed: <c>ask</c> is a denial, nobody is notified.</summary>
    JustEvaluate = 1,
    /// <summary>Treat <c>ask</c> as approved for the requested target, when it is among the choices.</summary>
    AssumeYesForAsk = 2,
}

/// <summary>The kind of a request's target after preparation.</summary>
internal enum TargetKind : byte
{
    /// <summary>A qube (<see cref="ResolvedTarget.Qube"/>).</summary>
    Qube,
    /// <summary><c>@default</c></summary>
    Default,
    /// <summary><c>@dispvm</c>, not yet resolved through the source's <c>default_dispvm</c>.</summary>
    DispVm,
    /// <summary>A new disposable of the template <see cref="ResolvedTarget.Qube"/>.</summary>
    DispVmOf,
}

/// <summary>A target as qube indexes. <see cref="AsUuid"/>: dom0 requested as its <c>uuid:</c> form, which the answer keeps.</summary>
internal readonly record struct ResolvedTarget(TargetKind Kind, int Qube, bool AsUuid = false)
{
    internal static ResolvedTarget Default => new(TargetKind.Default, -1);
}

/// <summary>
/// One decision of a <see cref="PolicyEngine"/>: a value that costs no allocation. The answer lines,
/// the target's name and the <c>ask</c> choices are had from the engine that made it.
/// </summary>
public readonly struct PolicyResult
{
    internal PolicyResult(Resolution resolution, DenyReason reason, int rule, int source, bool relayed, ResolvedTarget target,
        string requestedTarget, string serviceAndArg, EvaluationMode mode)
    {
        Resolution = resolution;
        Reason = reason;
        RuleIndex = rule;
        Source = source;
        Relayed = relayed;
        Target = target;
        RequestedTarget = requestedTarget;
        ServiceAndArg = serviceAndArg;
        Mode = mode;
    }

    /// <summary>Allow, deny or ask.</summary>
    public Resolution Resolution { get; }

    /// <summary>Why it was denied (<see cref="DenyReason.None"/> otherwise).</summary>
    public DenyReason Reason { get; }

    /// <summary>The index of the deciding rule in <see cref="PolicyEngine.Rules"/>, or -1.</summary>
    public int RuleIndex { get; }

    /// <summary>The normalised requested target (<c>@default</c> for an empty or unknown one).</summary>
    public string RequestedTarget { get; }

    /// <summary>The request's <c>service+argument</c>, as given.</summary>
    public string ServiceAndArg { get; }

    /// <summary>How the request was evaluated.</summary>
    public EvaluationMode Mode { get; }

    /// <summary>Whether the source is a RemoteVM whose call came through its relay qube.</summary>
    public bool Relayed { get; }

    /// <summary>The source qube's index (the relayed RemoteVM when <see cref="Relayed"/>), or -1.</summary>
    internal int Source { get; }

    /// <summary>The effective target (allow), or the requested one.</summary>
    internal ResolvedTarget Target { get; }

    /// <summary>Whether the call is allowed.</summary>
    public bool IsAllowed => Resolution == Resolution.Allow;

    internal PolicyResult With(Resolution resolution, DenyReason reason, ResolvedTarget target)
        => new(resolution, reason, RuleIndex, Source, Relayed, target, RequestedTarget, ServiceAndArg, Mode);
}
