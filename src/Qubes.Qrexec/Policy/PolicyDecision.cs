using System;
using System.Collections.Generic;

namespace Qubes.Qrexec.Policy;

/// <summary>A well-formed policy answer (§11.2), allow or deny.</summary>
public sealed record PolicyDecision
{
    /// <summary>True for <c>result=allow</c>, false for <c>result=deny</c>.</summary>
    public bool Allowed { get; init; }

    /// <summary>User to run the service as (<c>DEFAULT</c> for the target's default); set for allow only.</summary>
    public string? User { get; init; }

    /// <summary>The resolved target; set for allow only.</summary>
    public string? Target { get; init; }

    /// <summary>The normalised requested target; set for allow only.</summary>
    public string? RequestedTarget { get; init; }

    /// <summary>Whether the target may be started; false for deny.</summary>
    public bool Autostart { get; init; }

    /// <summary><c>uuid:&lt;uuid&gt;</c> or <c>@dispvm:uuid:&lt;uuid&gt;</c>, preferred for connecting; optional.</summary>
    public string? TargetUuid { get; init; }

    /// <summary>A replacement service string (RemoteVM relay); optional.</summary>
    public string? Service { get; init; }

    /// <summary>The source name to pass to the target; optional.</summary>
    public string? PolicySource { get; init; }

    /// <summary>Keys of lines the parser did not know and ignored, in the order they came.</summary>
    public IReadOnlyList<string> IgnoredKeys { get; init; } = Array.Empty<string>();
}
