using System;
using System.Collections.Generic;
using System.Diagnostics.CodeAnalysis;
using System.Text;

namespace Qubes.Qrexec.Policy;

/// <summary>
/// The daemon-side parser of a policy answer (§11.2). The answer is untrusted in the sense that a
/// broken or hostile policy service must not make the daemon proceed: anything but a well-formed
/// answer is malformed, and the parser never throws on what it is given.
/// </summary>
/// <remarks>
/// <code>
/// result=allow\n               result=deny\n
/// user=DEFAULT\n               [target_uuid=... | service=... | policy_source=...]\n
/// target=work\n                [other=...]\n      (unknown keys: ignored, must have '=')
/// requested_target=@default\n
/// autostart=False\n
/// [target_uuid=uuid:...]\n
/// [service=...]\n
/// [policy_source=...]\n
/// </code>
/// </remarks>
public static class PolicyResponse
{
    /// <summary>Longest answer; a 4096-byte read means the answer was too long.</summary>
    public const int MaxLength = QrexecProtocol.PolicyResponseLimit;

    private enum Key
    {
        Result,
        User,
        Target,
        RequestedTarget,
        Autostart,
        TargetUuid,
        Service,
        PolicySource,
        Count,
    }

    /// <summary>
    /// Parses a complete answer (everything read up to EOF). Returns true with the decision when the
    /// answer is well-formed (allow or deny), false with the reason when it is malformed.
    /// </summary>
    public static bool TryParse(ReadOnlySpan<byte> answer, [NotNullWhen(true)] out PolicyDecision? decision, [NotNullWhen(false)] out string? error)
    {
        decision = null;
        if (answer.IsEmpty)
        {
            error = "empty answer";
            return false;
        }
        if (answer.Length > MaxLength)
        {
            error = $"answer longer than {MaxLength} bytes";
            return false;
        }
        if (answer.IndexOf((byte)0) >= 0)
        {
            error = "NUL byte in answer";
            return false;
        }
        if (answer[^1] == (byte)'\n')
        {
            answer = answer[..^1];
        }

        var values = new string?[(int)Key.Count];
        List<string>? ignored = null;
        int lineNumber = 0;
        while (true)
        {
            lineNumber++;
            int end = answer.IndexOf((byte)'\n');
            ReadOnlySpan<byte> line = end >= 0 ? answer[..end] : answer;
            int equals = line.IndexOf((byte)'=');
            if (equals < 0)
            {
                error = line.IsEmpty ? $"empty line {lineNumber}" : $"line {lineNumber} has no '='";
                return false;
            }
            ReadOnlySpan<byte> name = line[..equals];
            string value = Encoding.UTF8.GetString(line[(equals + 1)..]);
            Key key = Lookup(name);
            if (key == Key.Count)
            {
                (ignored ??= new List<string>()).Add(Encoding.UTF8.GetString(name));
            }
            else if (values[(int)key] is not null)
            {
                error = $"duplicate key '{Encoding.UTF8.GetString(name)}'";
                return false;
            }
            else
            {
                values[(int)key] = value;
            }
            if (end < 0)
            {
                break;
            }
            answer = answer[(end + 1)..];
        }

        bool allowed;
        switch (values[(int)Key.Result])
        {
            case null:
                error = "no result";
                return false;
            case "allow":
                allowed = true;
                break;
            case "deny":
                allowed = false;
                break;
            default:
                error = "result is neither 'allow' nor 'deny'";
                return false;
        }

        bool autostart = false;
        if (allowed)
        {
            if (Missing(values, Key.User, Key.Target, Key.RequestedTarget, Key.Autostart) is string missing)
            {
                error = $"allow without '{missing}'";
                return false;
            }
            switch (values[(int)Key.Autostart])
            {
                case "True":
                    autostart = true;
                    break;
                case "False":
                    break;
                default:
                    error = "autostart is neither 'True' nor 'False'";
                    return false;
            }
        }
        else if (Present(values, Key.User, Key.Target, Key.RequestedTarget, Key.Autostart) is string present)
        {
            error = $"deny with '{present}'";
            return false;
        }

        decision = new PolicyDecision
        {
            Allowed = allowed,
            User = values[(int)Key.User],
            Target = values[(int)Key.Target],
            RequestedTarget = values[(int)Key.RequestedTarget],
            Autostart = autostart,
            TargetUuid = values[(int)Key.TargetUuid],
            Service = values[(int)Key.Service],
            PolicySource = values[(int)Key.PolicySource],
            IgnoredKeys = ignored is null ? Array.Empty<string>() : ignored.ToArray(),
        };
        error = null;
        return true;
    }

    private static Key Lookup(ReadOnlySpan<byte> name)
    {
        for (int i = 0; i < (int)Key.Count; i++)
        {
            if (name.SequenceEqual(Name((Key)i)))
            {
                return (Key)i;
            }
        }
        return Key.Count;
    }

    private static ReadOnlySpan<byte> Name(Key key) => key switch
    {
        Key.Result => "result"u8,
        Key.User => "user"u8,
        Key.Target => "target"u8,
        Key.RequestedTarget => "requested_target"u8,
        Key.Autostart => "autostart"u8,
        Key.TargetUuid => "target_uuid"u8,
        Key.Service => "service"u8,
        Key.PolicySource => "policy_source"u8,
        _ => default,
    };

    private static string? Missing(string?[] values, params ReadOnlySpan<Key> keys)
    {
        foreach (Key key in keys)
        {
            if (values[(int)key] is null)
            {
                return Encoding.ASCII.GetString(Name(key));
            }
        }
        return null;
    }

    private static string? Present(string?[] values, params ReadOnlySpan<Key> keys)
    {
        foreach (Key key in keys)
        {
            if (values[(int)key] is not null)
            {
                return Encoding.ASCII.GetString(Name(key));
            }
        }
        return null;
    }
}
