namespace Qubes.Qrexec.Policy;

/// <summary>
/// What the policy child learned (§11.4): a well-formed decision, or no decision and the reason.
/// Only a well-formed allow proceeds.
/// </summary>
/// <param name="Decision">The well-formed answer, or null when the call could not be decided.</param>
/// <param name="Error">Why there is no decision (null when there is one).</param>
public sealed record PolicyOutcome(PolicyDecision? Decision, string? Error)
{
    /// <summary>True only for a well-formed <c>result=allow</c>.</summary>
    public bool Allowed => Decision?.Allowed == true;

    /// <summary>
    /// The policy child's exit status for this outcome (§8.2, §11.3, §13): 0 when allowed,
    /// <see cref="QrexecProtocol.ExitRequestRefused"/> for a well-formed deny, and
    /// <see cref="QrexecProtocol.ExitProblem"/> when no decision could be had (connection, program
    /// or timeout failure, malformed answer).
    /// </summary>
    public int ExitCode => Decision is null
        ? QrexecProtocol.ExitProblem
        : Decision.Allowed ? 0 : QrexecProtocol.ExitRequestRefused;
}
