using System;
using System.Text;

namespace Qubes.Qrexec.Policy;

/// <summary>
/// One question to the policy: may <see cref="Source"/> call <see cref="ServiceAndArg"/> on
/// <see cref="IntendedTarget"/>? The values are the daemon's already sanitised strings.
/// </summary>
/// <param name="Source">Name of the calling VM.</param>
/// <param name="RequestedSource">
/// The source the caller asked to be known as; non-null only for TRIGGER_SERVICE4 (and may then be
/// empty). Sent on the socket only, never to the policy program.
/// </param>
/// <param name="IntendedTarget">The target as the caller named it, sanitised.</param>
/// <param name="ServiceAndArg">The <c>service+argument</c> string, sanitised.</param>
public sealed record PolicyQuery(string Source, string? RequestedSource, string IntendedTarget, string ServiceAndArg)
{
    /// <summary>
    /// The socket request of the spec's §11.1:
    /// <code>
    /// source=&lt;Source&gt;\n
    /// requested_source=&lt;RequestedSource&gt;\n     (only when RequestedSource is not null)
    /// intended_target=&lt;IntendedTarget&gt;\n
    /// service_and_arg=&lt;ServiceAndArg&gt;\n
    /// \n
    /// </code>
    /// </summary>
    /// <exception cref="InvalidOperationException">A value contains a newline or a NUL byte.</exception>
    public byte[] ToSocketRequest()
    {
        if (InvalidField() is string field)
        {
            throw new InvalidOperationException($"policy query field {field} contains a newline or NUL byte");
        }
        var text = new StringBuilder();
        text.Append("source=").Append(Source).Append('\n');
        if (RequestedSource is not null)
        {
            text.Append("requested_source=").Append(RequestedSource).Append('\n');
        }
        text.Append("intended_target=").Append(IntendedTarget).Append('\n');
        text.Append("service_and_arg=").Append(ServiceAndArg).Append('\n');
        text.Append('\n');
        return Encoding.UTF8.GetBytes(text.ToString());
    }

    /// <summary>
    /// The name of the first field that cannot be sent (a newline would forge request lines, a NUL
    /// cannot be passed as a program argument), or null when all can.
    /// </summary>
    internal string? InvalidField()
    {
        if (Unsendable(Source))
        {
            return nameof(Source);
        }
        if (RequestedSource is not null && Unsendable(RequestedSource))
        {
            return nameof(RequestedSource);
        }
        if (Unsendable(IntendedTarget))
        {
            return nameof(IntendedTarget);
        }
        if (Unsendable(ServiceAndArg))
        {
            return nameof(ServiceAndArg);
        }
        return null;
    }

    private static bool Unsendable(string? value) => value is null || value.AsSpan().IndexOfAny('\n', '\0') >= 0;
}
