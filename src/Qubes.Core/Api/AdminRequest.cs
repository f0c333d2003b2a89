using System;
using System.Diagnostics.CodeAnalysis;
using System.Text;

namespace Qubes.Core.Api;

/// <summary>
/// One Admin API request (spec core-stack §9.1): <c>method+arg source dest_type dest\0payload</c>,
/// the client half-closing after it. A request that cannot be framed is dropped without a reply.
/// </summary>
public sealed record AdminRequest(string Method, string Argument, string Source, string Destination, byte[] Payload)
{
    /// <summary>Longest request, header and payload together.</summary>
    public const int MaxLength = 65536;

    /// <summary>Frames <paramref name="data"/>; false (with the reason, for the log) when it cannot be.</summary>
    public static bool TryParse(ReadOnlySpan<byte> data, [NotNullWhen(true)] out AdminRequest? request, [NotNullWhen(false)] out string? error)
    {
        request = null;
        if (data.Length > MaxLength)
        {
            error = "request too long";
            return false;
        }
        int nul = data.IndexOf((byte)0);
        if (nul < 0)
        {
            error = "no NUL after the header";
            return false;
        }
        string header = Encoding.ASCII.GetString(data[..nul]);
        string[] fields = header.Split(' ', 4);
        if (fields.Length != 4 || fields[3].Contains(' ', StringComparison.Ordinal))
        {
            error = "the header does not have four fields";
            return false;
        }
        (string destType, string dest) = (fields[2], fields[3]);
        if (destType == "keyword" && dest == "adminvm")
        {
            (destType, dest) = ("name", "dom0");
        }
        if (destType != "name")
        {
            error = $"bad destination type '{destType}'";
            return false;
        }
        int plus = fields[0].IndexOf('+', StringComparison.Ordinal);
        string method = plus < 0 ? fields[0] : fields[0][..plus];
        string argument = plus < 0 ? string.Empty : fields[0][(plus + 1)..];
        request = new AdminRequest(method, argument, fields[1], dest, data[(nul + 1)..].ToArray());
        error = null;
        return true;
    }
}

/// <summary>Reply frames (spec core-stack §9.3).</summary>
public static class AdminReply
{
    /// <summary><c>0\0</c> and the content.</summary>
    public static byte[] Success(string content)
    {
        byte[] body = Encoding.UTF8.GetBytes(content);
        byte[] frame = new byte[2 + body.Length];
        frame[0] = (byte)'0';
        body.CopyTo(frame, 2);
        return frame;
    }

    /// <summary><c>2\0type\0\0message\0</c> (no traceback).</summary>
    public static byte[] Exception(string type, string message)
        => Encoding.UTF8.GetBytes($"2\0{type}\0\0{message}\0");
}
