using System;
using System.Text;

namespace Qubes.Qrexec.Tests.Validation;

/// <summary>Trigger bodies laid out byte by byte (spec §4.1), so that tests control every byte, padding included.</summary>
internal static class TriggerBodies
{
    public const int Domain = 64;
    public const int Ident = 32;
    public const int V2Service = 64;
    public const int V2Target = 32;
    public const int V3Fixed = Domain + Ident;
    public const int V4Fixed = 2 * Domain + Ident;

    /// <summary>A fixed field: the text's bytes (Latin-1, so any byte value can be given), zero-padded; the text may fill the field entirely.</summary>
    public static byte[] Field(string text, int size)
    {
        byte[] field = new byte[size];
        byte[] bytes = Encoding.Latin1.GetBytes(text);
        if (bytes.Length > size)
        {
            throw new ArgumentException("text longer than the field", nameof(text));
        }
        bytes.CopyTo(field, 0);
        return field;
    }

    public static byte[] IdentField(string text) => Field(text, Ident);

    /// <summary>A TRIGGER_SERVICE4 body: source, target, ident, then the raw name bytes as given (the test adds the NUL).</summary>
    public static byte[] V4(string source, string target, byte[] ident, string rawName)
        => Concat(Field(source, Domain), Field(target, Domain), ident, Encoding.Latin1.GetBytes(rawName));

    /// <summary>A TRIGGER_SERVICE3 body: target, ident, then the raw name bytes as given.</summary>
    public static byte[] V3(string target, byte[] ident, string rawName)
        => Concat(Field(target, Domain), ident, Encoding.Latin1.GetBytes(rawName));

    /// <summary>A TRIGGER_SERVICE body: 64-byte service, 32-byte target, ident.</summary>
    public static byte[] V2(string service, string target, byte[] ident)
        => Concat(Field(service, V2Service), Field(target, V2Target), ident);

    public static byte[] Concat(params byte[][] parts)
    {
        int length = 0;
        foreach (byte[] part in parts)
        {
            length += part.Length;
        }
        byte[] all = new byte[length];
        int at = 0;
        foreach (byte[] part in parts)
        {
            part.CopyTo(all, at);
            at += part.Length;
        }
        return all;
    }
}
