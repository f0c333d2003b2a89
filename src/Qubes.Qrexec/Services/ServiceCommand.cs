using System;
using System.Diagnostics.CodeAnalysis;
using System.Text;

namespace Qubes.Qrexec.Services;

/// <summary>
/// A command line as the agent receives it after the exec parameters, <c>user:command</c>, parsed by
/// the rules of spec §9.1. Either a plain shell command or a qrexec RPC call
/// <c>[nogui:]QUBESRPC &lt;descriptor&gt; &lt;source&gt;[ &lt;type&gt; &lt;target&gt;]</c>.
/// </summary>
public sealed class ServiceCommand
{
    /// <summary>Token count of a call that names only the service and the source.</summary>
    public const int ShortTokenCount = 2;
    /// <summary>Token count of a call that also names the requested target type and target.</summary>
    public const int FullTokenCount = 4;

    private ServiceCommand(string user, bool noGui)
    {
        User = user;
        NoGui = noGui;
    }

    /// <summary>The user name before the first ':' (empty for a command dom0 runs, which names none).</summary>
    public string User { get; }

    /// <summary>Whether the command carried the <c>nogui:</c> prefix (no wait-for-session, no fork server).</summary>
    public bool NoGui { get; }

    /// <summary>Whether the command (after an optional <c>nogui:</c>) is a <c>QUBESRPC</c> call.</summary>
    [MemberNotNullWhen(false, nameof(ShellCommand))]
    public bool IsRpc { get; private init; }

    /// <summary>For a plain command: the text after <c>user:</c> without the <c>nogui:</c> prefix; null for an RPC call.</summary>
    public string? ShellCommand { get; private init; }

    /// <summary>The descriptor token as received (<c>svc+arg</c>, or <c>svc</c> when the caller sent no '+'); empty for a plain command.</summary>
    public string Descriptor { get; private init; } = string.Empty;

    /// <summary>The service name: the descriptor up to the first '+' (1…255 bytes); empty for a plain command.</summary>
    public string ServiceName { get; private init; } = string.Empty;

    /// <summary>Everything after the first '+' of the descriptor (possibly empty), or null when it has no '+'.</summary>
    public string? Argument { get; private init; }

    /// <summary>The name looked up first: <c>svc+arg</c>, normalised to <c>svc+</c> when the descriptor had no '+'; empty for a plain command.</summary>
    public string LookupName { get; private init; } = string.Empty;

    /// <summary>The source token (the calling domain); empty for a plain command.</summary>
    public string Source { get; private init; } = string.Empty;

    /// <summary>The third token (requested target type, e.g. <c>name</c> or <c>keyword</c>), or null when absent.</summary>
    public string? TargetType { get; private init; }

    /// <summary>The fourth token (requested target), or null when absent.</summary>
    public string? Target { get; private init; }

    /// <summary>Number of space-separated tokens after <c>QUBESRPC </c> (runs of spaces collapse); 0 for a plain command.</summary>
    public int TokenCount { get; private init; }

    /// <summary>Whether <see cref="TokenCount"/> is acceptable for an executable service (2 or 4, spec §9.1 rule 8); socket services accept any count.</summary>
    public bool HasValidTokenCountForExecutable => TokenCount is ShortTokenCount or FullTokenCount;

    /// <summary>The text after <c>QUBESRPC </c>, sent (with a NUL) as the descriptor line to socket and TCP services; empty for a plain command.</summary>
    public string DescriptorLine { get; private init; } = string.Empty;

    /// <summary>
    /// Parses <paramref name="commandLine"/> (<c>user:command</c>, already without its terminating NUL).
    /// Never throws: a malformed command yields false and a reason in <paramref name="error"/>.
    /// </summary>
    public static bool TryParse(
        string commandLine,
        [NotNullWhen(true)] out ServiceCommand? command,
        [NotNullWhen(false)] out string? error)
        => TryParse(commandLine, withUser: true, out command, out error);

    /// <summary>
    /// Parses <paramref name="commandLine"/>: <c>user:command</c> as an agent receives it, or with
    /// <paramref name="withUser"/> false the command alone, as dom0 runs a call made to it
    /// (<c>[nogui:]QUBESRPC ...</c> or a shell command; <see cref="User"/> is then empty).
    /// </summary>
    public static bool TryParse(
        string commandLine,
        bool withUser,
        [NotNullWhen(true)] out ServiceCommand? command,
        [NotNullWhen(false)] out string? error)
    {
        command = null;
        if (commandLine is null)
        {
            error = "no command line";
            return false;
        }
        if (commandLine.Contains('\0'))
        {
            error = "NUL byte in the command line";
            return false;
        }

        string user = string.Empty;
        string rest = commandLine;
        if (withUser)
        {
            int colon = commandLine.IndexOf(':', StringComparison.Ordinal);
            if (colon < 0)
            {
                error = "no ':' separating the user name from the command";
                return false;
            }
            user = commandLine[..colon];
            rest = commandLine[(colon + 1)..];
        }

        bool noGui = rest.StartsWith(QrexecProtocol.NoGuiPrefix, StringComparison.Ordinal);
        if (noGui)
        {
            rest = rest[QrexecProtocol.NoGuiPrefix.Length..];
        }

        if (!rest.StartsWith(QrexecProtocol.RpcKeyword, StringComparison.Ordinal))
        {
            command = new ServiceCommand(user, noGui) { IsRpc = false, ShellCommand = rest };
            error = null;
            return true;
        }

        return TryParseRpc(user, noGui, rest[QrexecProtocol.RpcKeyword.Length..], out command, out error);
    }

    private static bool TryParseRpc(
        string user,
        bool noGui,
        string afterKeyword,
        [NotNullWhen(true)] out ServiceCommand? command,
        [NotNullWhen(false)] out string? error)
    {
        command = null;
        // Rule 3: exactly one space, so the descriptor starts right after it.
        if (afterKeyword.Length == 0 || afterKeyword[0] != ' ')
        {
            error = $"{QrexecProtocol.RpcKeyword} must be followed by one space";
            return false;
        }
        string descriptorLine = afterKeyword[1..];
        if (descriptorLine.Length != 0 && descriptorLine[0] == ' ')
        {
            error = $"{QrexecProtocol.RpcKeyword} must be followed by exactly one space";
            return false;
        }

        // Rule 4: the descriptor runs to the next space.
        int descriptorEnd = descriptorLine.IndexOf(' ', StringComparison.Ordinal);
        string descriptor = descriptorEnd < 0 ? descriptorLine : descriptorLine[..descriptorEnd];
        if (descriptor.Length == 0)
        {
            error = "empty service descriptor";
            return false;
        }
        int descriptorBytes = Encoding.UTF8.GetByteCount(descriptor);
        if (descriptorBytes > QrexecProtocol.MaxServiceNameLength)
        {
            error = $"service descriptor of {descriptorBytes} bytes is longer than {QrexecProtocol.MaxServiceNameLength}";
            return false;
        }

        // Rules 5 and 6: name up to the first '+', the argument after it.
        int plus = descriptor.IndexOf('+', StringComparison.Ordinal);
        string serviceName = plus < 0 ? descriptor : descriptor[..plus];
        string? argument = plus < 0 ? null : descriptor[(plus + 1)..];
        int nameBytes = Encoding.UTF8.GetByteCount(serviceName);
        if (nameBytes == 0)
        {
            error = "empty service name";
            return false;
        }
        if (nameBytes > QrexecProtocol.MaxServiceNameComponent)
        {
            error = $"service name of {nameBytes} bytes is longer than {QrexecProtocol.MaxServiceNameComponent}";
            return false;
        }

        // Rules 7 and 8: tokens split on spaces, runs of spaces collapsing.
        string[] tokens = descriptorLine.Split(' ', StringSplitOptions.RemoveEmptyEntries);
        if (tokens.Length < 2)
        {
            error = "no source domain after the service descriptor";
            return false;
        }

        command = new ServiceCommand(user, noGui)
        {
            IsRpc = true,
            Descriptor = descriptor,
            ServiceName = serviceName,
            Argument = argument,
            LookupName = argument is null ? descriptor + "+" : descriptor,
            Source = tokens[1],
            TargetType = tokens.Length > 2 ? tokens[2] : null,
            Target = tokens.Length > 3 ? tokens[3] : null,
            TokenCount = tokens.Length,
            DescriptorLine = descriptorLine,
        };
        error = null;
        return true;
    }
}
