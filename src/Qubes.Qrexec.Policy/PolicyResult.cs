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
    /// <summary><c>@dispvm</c> for a source without <c>default_dispvm</c> (to be allowed, or compared with a <c>@dispvm:NAME</c> rule).</summary>
    NoDefaultDispVm,
    /// <summary><c>autostart=no</c> and the target is not running (or is a new disposable).</summary>
    TargetNotRunning,
    /// <summary>The target is the source.</summary>
    Loopback,
    /// <summary>A RemoteVM target without <c>relayvm</c> or <c>transport_rpc</c>.</summary>
    NoRelay,
    /// <summary>
    /// A name the decision needs is no qube: the <c>target=</c> of an <c>ask</c> that was chosen or
    /// has to pass <c>autostart=no</c>, a <c>@dispvm:NAME</c> template an <c>ask</c> collects, the
    /// <c>relayvm</c> of a RemoteVM target.
    /// </summary>
    UnknownQube,
    /// <summary>An <c>ask</c> in evaluate-only mode.</summary>
    AskWhileEvaluating,
    /// <summary>An <c>ask</c> with nothing to offer.</summary>
    NoChoices,
    /// <summary>The chosen (or, with assume-yes, requested) target is not among those offered.</summary>
    NotAmongChoices,
    /// <summary>An <c>ask</c> for a source without a GUI qube to ask in.</summary>
    NoGuiVm,
    /// <summary>The user said no, or there was nobody to ask.</summary>
    UserDenied,
}

/// <summary>The notifications a decision sends to the GUI qube (spec qrexec-policy §10.3).</summary>
[Flags]
public enum Notifications : byte
{
    /// <summary>None.</summary>
    None = 0,
    /// <summary>"allowed", to the GUI qube of the request's source: an allow (or approved ask) with <c>notify=yes</c>.</summary>
    Allowed = 1,
    /// <summary>"denied", to the GUI qube of the calling qube.</summary>
    Denied = 2,
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
    /// <summary>A new disposable of the template <see cref="ResolvedTarget.Qube"/> (-1: no such template).</summary>
    DispVmOf,
}

/// <summary>How a qube was named; the answer and the loopback test keep the form.</summary>
internal enum NameForm : byte
{
    /// <summary>By its name.</summary>
    Name,
    /// <summary>As <c>uuid:UUID</c>.</summary>
    Uuid,
    /// <summary>As <c>@adminvm</c> (dom0 only).</summary>
    AdminKeyword,
}

/// <summary>A target as a qube index, with the form it was written in.</summary>
internal readonly record struct ResolvedTarget(TargetKind Kind, int Qube, NameForm Form = NameForm.Name)
{
    internal static ResolvedTarget Default => new(TargetKind.Default, -1);
}

/// <summary>
/// One decision of a <see cref="PolicyEngine"/>: a value that costs no allocation. The answer lines,
/// the target's name and the <c>ask</c> choices are had from the engine that made it.
/// </summary>
public readonly struct PolicyResult
{
    internal PolicyResult(Resolution resolution, DenyReason reason, int rule, in PolicyRequest request, ResolvedTarget target, Notifications notifications)
    {
        Resolution = resolution;
        Reason = reason;
        RuleIndex = rule;
        Request = request;
        Target = target;
        Notifications = notifications;
    }

    /// <summary>Allow, deny or ask.</summary>
    public Resolution Resolution { get; }

    /// <summary>Why it was denied (<see cref="DenyReason.None"/> otherwise).</summary>
    public DenyReason Reason { get; }

    /// <summary>The index of the deciding rule in <see cref="PolicyEngine.Rules"/>, or -1.</summary>
    public int RuleIndex { get; }

    /// <summary>The normalised requested target (<c>@default</c> for an empty or unknown one).</summary>
    public string RequestedTarget => Request.RequestedTarget;

    /// <summary>The request's <c>service+argument</c>, as given.</summary>
    public string ServiceAndArg => Request.ServiceAndArg;

    /// <summary>How the request was evaluated.</summary>
    public EvaluationMode Mode => Request.Mode;

    /// <summary>Whether the source is a RemoteVM whose call came through its relay qube.</summary>
    public bool Relayed => Request.Relayed;

    /// <summary>
    /// The notifications the decision sends (never in evaluate-only mode). Whether they reach
    /// anyone depends on the GUI qubes: see <see cref="PolicyEngine.NotifyGuiVm"/>.
    /// </summary>
    public Notifications Notifications { get; }

    /// <summary>The request as prepared.</summary>
    internal PolicyRequest Request { get; }

    /// <summary>The source qube's index (the relayed RemoteVM when <see cref="Relayed"/>), or -1.</summary>
    internal int Source => Request.Source;

    /// <summary>The effective target (allow), or the requested one.</summary>
    internal ResolvedTarget Target { get; }

    /// <summary>Whether the call is allowed.</summary>
    public bool IsAllowed => Resolution == Resolution.Allow;

    /// <summary>This decision turned into a denial for <paramref name="reason"/>, notified when <paramref name="notify"/> (never in evaluate-only mode).</summary>
    internal PolicyResult Deny(DenyReason reason, bool notify, ResolvedTarget target)
        => new(Resolution.Deny, reason, RuleIndex, Request, target,
            Notifications | (notify && (Mode & EvaluationMode.JustEvaluate) == 0 ? Notifications.Denied : Notifications.None));

    /// <summary>This decision turned into <paramref name="resolution"/> (allow or ask) for <paramref name="target"/>.</summary>
    internal PolicyResult With(Resolution resolution, ResolvedTarget target, Notifications added = Notifications.None)
        => new(resolution, DenyReason.None, RuleIndex, Request, target, Notifications | added);
}

/// <summary>
/// A request after preparation (spec qrexec-policy §7): the source as a qube index with the form it
/// was named in, the calling qube, and the normalised requested target.
/// </summary>
internal readonly record struct PolicyRequest(
    string ServiceAndArg,
    int Caller,
    int Source,
    NameForm SourceForm,
    bool Relayed,
    string RequestedTarget,
    string IntendedTarget,
    EvaluationMode Mode);
