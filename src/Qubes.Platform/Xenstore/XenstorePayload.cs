using System;
using System.Collections.Generic;
using System.Globalization;
using System.Text;

namespace Qubes.Platform.Xenstore;

/// <summary>
/// Building and splitting xenstore payloads. Strings travel as UTF-8; most arguments are
/// NUL-terminated, except an XS_WRITE value, which runs to the end of the payload.
/// </summary>
public static class XenstorePayload
{
    /// <summary>XS_TRANSACTION_END argument that commits.</summary>
    public static ReadOnlySpan<byte> Commit => "T\0"u8;

    /// <summary>XS_TRANSACTION_END argument that aborts.</summary>
    public static ReadOnlySpan<byte> Abort => "F\0"u8;

    /// <summary>XS_TRANSACTION_START argument (an empty string).</summary>
    public static ReadOnlySpan<byte> NoArgument => "\0"u8;

    /// <summary>The reply payload of requests that return nothing else.</summary>
    public static ReadOnlySpan<byte> Ok => "OK\0"u8;

    /// <summary>Each string followed by a NUL: <c>a\0b\0</c>.</summary>
    public static byte[] Strings(params ReadOnlySpan<string> strings)
    {
        int length = 0;
        foreach (string s in strings)
        {
            length += Encoding.UTF8.GetByteCount(s) + 1;
        }
        byte[] payload = new byte[length];
        int at = 0;
        foreach (string s in strings)
        {
            at += Encoding.UTF8.GetBytes(s, payload.AsSpan(at)) + 1;
        }
        return payload;
    }

    /// <summary>The XS_WRITE payload: <c>path\0value</c> (the value is not NUL-terminated).</summary>
    public static byte[] PathAndValue(string path, string value)
    {
        int pathLength = Encoding.UTF8.GetByteCount(path);
        byte[] payload = new byte[pathLength + 1 + Encoding.UTF8.GetByteCount(value)];
        Encoding.UTF8.GetBytes(path, payload);
        Encoding.UTF8.GetBytes(value, payload.AsSpan(pathLength + 1));
        return payload;
    }

    /// <summary>The XS_SET_PERMS payload: <c>path\0</c> then each entry's wire form (<c>b0\0r5\0</c>).</summary>
    public static byte[] Permissions(string path, IReadOnlyList<StorePermission> permissions)
    {
        var text = new StringBuilder(path).Append('\0');
        foreach (StorePermission p in permissions)
        {
            text.Append(p.ToString()).Append('\0');
        }
        return Encoding.UTF8.GetBytes(text.ToString());
    }

    /// <summary>
    /// Splits a list of NUL-terminated strings (XS_DIRECTORY, XS_GET_PERMS replies). A last string
    /// without its NUL still counts; an empty payload is an empty list.
    /// </summary>
    public static List<string> Split(ReadOnlySpan<byte> payload)
    {
        var result = new List<string>();
        while (!payload.IsEmpty)
        {
            int nul = payload.IndexOf((byte)0);
            if (nul < 0)
            {
                result.Add(Encoding.UTF8.GetString(payload));
                break;
            }
            result.Add(Encoding.UTF8.GetString(payload[..nul]));
            payload = payload[(nul + 1)..];
        }
        return result;
    }

    /// <summary>
    /// Parses an XS_WATCH_EVENT payload <c>path\0token\0</c> (the final NUL optional). False, with
    /// empty strings, if the path is not NUL-terminated. Never throws.
    /// </summary>
    public static bool TryParseWatchEvent(ReadOnlySpan<byte> payload, out string path, out string token)
    {
        int nul = payload.IndexOf((byte)0);
        if (nul < 0)
        {
            path = "";
            token = "";
            return false;
        }
        ReadOnlySpan<byte> rest = payload[(nul + 1)..];
        int end = rest.IndexOf((byte)0);
        path = Encoding.UTF8.GetString(payload[..nul]);
        token = Encoding.UTF8.GetString(end >= 0 ? rest[..end] : rest);
        return true;
    }

    /// <summary>
    /// Parses the XS_TRANSACTION_START reply: the id as decimal text, optionally NUL-terminated.
    /// False if it is not plain digits or is 0 (0 means "no transaction"). Never throws.
    /// </summary>
    public static bool TryParseTransactionId(ReadOnlySpan<byte> payload, out uint id)
    {
        if (!payload.IsEmpty && payload[^1] == 0)
        {
            payload = payload[..^1];
        }
        return uint.TryParse(payload, NumberStyles.None, CultureInfo.InvariantCulture, out id) && id != 0;
    }
}
