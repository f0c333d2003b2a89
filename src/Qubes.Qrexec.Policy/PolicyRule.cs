namespace Qubes.Qrexec.Policy;

/// <summary>What a rule does with a request it matches.</summary>
public enum PolicyAction : byte
{
    /// <summary><c>allow</c></summary>
    Allow,
    /// <summary><c>deny</c></summary>
    Deny,
    /// <summary><c>ask</c></summary>
    Ask,
}

/// <summary>
/// One rule of the policy (spec qrexec-policy §2, §4), with where it was written. Service and
/// argument are null for <c>*</c>; the argument keeps its leading <c>+</c>.
/// </summary>
public sealed record PolicyRule(
    string? Service,
    string? Argument,
    PolicyToken Source,
    PolicyToken Target,
    PolicyAction Action,
    PolicyToken? RedirectTarget,
    PolicyToken? DefaultTarget,
    string? User,
    bool Notify,
    bool Autostart,
    string File,
    int Line)
{
    /// <summary>The rule as one line of the v5 format (parameters that differ from the defaults only).</summary>
    public override string ToString()
    {
        System.Text.StringBuilder line = new();
        line.Append(Service ?? "*").Append(' ').Append(Argument ?? "*").Append(' ')
            .Append(Source.ToString()).Append(' ').Append(Target.ToString()).Append(' ')
            .Append(Action switch { PolicyAction.Allow => "allow", PolicyAction.Deny => "deny", _ => "ask" });
        if (RedirectTarget is { } target)
        {
            line.Append(" target=").Append(target.ToString());
        }
        if (DefaultTarget is { } defaultTarget)
        {
            line.Append(" default_target=").Append(defaultTarget.ToString());
        }
        if (User != null)
        {
            line.Append(" user=").Append(User);
        }
        if (Notify != (Action == PolicyAction.Deny))
        {
            line.Append(" notify=").Append(Notify ? "yes" : "no");
        }
        if (!Autostart)
        {
            line.Append(" autostart=no");
        }
        return line.ToString();
    }
}

/// <summary>A policy that cannot be used, with the place and reason (<c>file:line: reason</c>).</summary>
public sealed class PolicySyntaxException : System.Exception
{
    public PolicySyntaxException(string file, int line, string reason)
        : base(line > 0 ? $"{file}:{line}: {reason}" : $"{file}: {reason}")
    {
        File = file;
        Line = line;
        Reason = reason;
    }

    /// <summary>The file the error is in.</summary>
    public string File { get; }

    /// <summary>Its line (1-based); 0 for an error about the file as a whole.</summary>
    public int Line { get; }

    /// <summary>
    /// Whether the calls this error denies notify the user: upstream reports an invalid file name
    /// or a file it cannot read as an access denial, which notifies, and a syntax error without.
    /// </summary>
    public bool Notifies { get; init; }

    /// <summary>What is wrong.</summary>
    public string Reason { get; }
}
