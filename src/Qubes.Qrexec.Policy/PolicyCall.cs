using System;
using System.Diagnostics.CodeAnalysis;
using System.Text;

namespace Qubes.Qrexec.Policy;

/// <summary>
/// A request on the policy socket (qrexec §11.1): <c>key=value</c> lines ended by an empty line.
/// Keys <c>source</c>, <c>intended_target</c>, <c>service_and_arg</c> are required;
/// <c>requested_source</c>, <c>assume_yes_for_ask</c>, <c>just_evaluate</c> (<c>yes</c>/<c>no</c>)
/// are optional. A duplicate or unknown key, a line without <c>=</c>, a bad boolean or a missing
/// required key makes the request invalid, and the server closes without an answer.
/// </summary>
public sealed record PolicyCall(string Source, string? RequestedSource, string IntendedTarget, string ServiceAndArg, EvaluationMode Mode)
{
    /// <summary>Longest request a server reads: the values at their longest, with room to spare.</summary>
    public const int MaxLength = 128 * 1024;

    private static readonly string[] s_keys =
        ["source", "intended_target", "service_and_arg", "requested_source", "assume_yes_for_ask", "just_evaluate"];

    /// <summary>Length of the request through its empty line, or -1 when the empty line has not come yet.</summary>
    public static int FindEnd(ReadOnlySpan<byte> data)
    {
        if (!data.IsEmpty && data[0] == (byte)'\n')
        {
            return 1;
        }
        int end = data.IndexOf("\n\n"u8);
        return end < 0 ? -1 : end + 2;
    }

    /// <summary>Parses a request through its empty line (as delimited by <see cref="FindEnd"/>).</summary>
    public static bool TryParse(ReadOnlySpan<byte> request, [NotNullWhen(true)] out PolicyCall? call, [NotNullWhen(false)] out string? error)
    {
        call = null;
        if (request.IsEmpty || request[^1] != (byte)'\n')
        {
            error = "request does not end with an empty line";
            return false;
        }
        if (request.IndexOf((byte)0) >= 0)
        {
            error = "NUL byte in request";
            return false;
        }
        string?[] values = new string?[s_keys.Length];
        ReadOnlySpan<byte> rest = request[..^1];
        while (!rest.IsEmpty)
        {
            int end = rest.IndexOf((byte)'\n');
            if (end < 0)
            {
                error = "request does not end with an empty line";
                return false;
            }
            ReadOnlySpan<byte> line = rest[..end];
            rest = rest[(end + 1)..];
            int equals = line.IndexOf((byte)'=');
            if (equals < 0)
            {
                error = "line without '='";
                return false;
            }
            string key = Encoding.UTF8.GetString(line[..equals]);
            int index = Array.IndexOf(s_keys, key);
            if (index < 0)
            {
                error = $"unknown key '{key}'";
                return false;
            }
            if (values[index] is not null)
            {
                error = $"duplicate key '{key}'";
                return false;
            }
            values[index] = Encoding.UTF8.GetString(line[(equals + 1)..]);
        }
        for (int i = 0; i < 3; i++)
        {
            if (values[i] is null)
            {
                error = $"missing key '{s_keys[i]}'";
                return false;
            }
        }
        EvaluationMode mode = EvaluationMode.Normal;
        for (int i = 4; i < 6; i++)
        {
            if (values[i] is not null and not "yes" and not "no")
            {
                error = $"key '{s_keys[i]}' is neither yes nor no";
                return false;
            }
            if (values[i] == "yes")
            {
                mode |= i == 4 ? EvaluationMode.AssumeYesForAsk : EvaluationMode.JustEvaluate;
            }
        }
        call = new PolicyCall(values[0]!, values[3], values[1]!, values[2]!, mode);
        error = null;
        return true;
    }
}
