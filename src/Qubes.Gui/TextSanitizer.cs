using System;

namespace Qubes.Gui;

/// <summary>
/// Titles and class names from a qube made safe to show (spec gui-protocol §10): printable ASCII
/// stays, whole RFC 3629 sequences stay when UTF-8 is allowed, every other byte becomes '_'.
/// </summary>
public static class TextSanitizer
{
    /// <summary>
    /// Sanitises <paramref name="text"/> in place up to its first NUL (or its end) and returns that
    /// length.
    /// </summary>
    public static int Sanitize(Span<byte> text, bool allowUtf8)
    {
        int end = text.IndexOf((byte)0);
        if (end < 0)
        {
            end = text.Length;
        }
        int i = 0;
        while (i < end)
        {
            byte b = text[i];
            if (b is >= 0x20 and <= 0x7E)
            {
                i++;
                continue;
            }
            int sequence = allowUtf8 && b >= 0x80 ? Utf8SequenceLength(text[i..end]) : 0;
            if (sequence > 0)
            {
                i += sequence;
            }
            else
            {
                text[i++] = (byte)'_';
            }
        }
        return end;
    }

    /// <summary>The length of the complete, valid UTF-8 sequence at the start of <paramref name="s"/>, or 0.</summary>
    internal static int Utf8SequenceLength(ReadOnlySpan<byte> s)
    {
        byte lead = s[0];
        // the first following byte's range depends on the lead (no overlong forms, no surrogates,
        // nothing above U+10FFFF); the others are plain continuation bytes
        (int count, byte low, byte high) = lead switch
        {
            >= 0xC2 and <= 0xDF => (1, (byte)0x80, (byte)0xBF),
            0xE0 => (2, (byte)0xA0, (byte)0xBF),
            (>= 0xE1 and <= 0xEC) or 0xEE or 0xEF => (2, (byte)0x80, (byte)0xBF),
            0xED => (2, (byte)0x80, (byte)0x9F),
            0xF0 => (3, (byte)0x90, (byte)0xBF),
            >= 0xF1 and <= 0xF3 => (3, (byte)0x80, (byte)0xBF),
            0xF4 => (3, (byte)0x80, (byte)0x8F),
            _ => (0, (byte)0, (byte)0),
        };
        if (count == 0 || s.Length <= count || s[1] < low || s[1] > high)
        {
            return 0;
        }
        for (int k = 2; k <= count; k++)
        {
            if (s[k] is < 0x80 or > 0xBF)
            {
                return 0;
            }
        }
        return count + 1;
    }

    /// <summary>
    /// A WMNAME body made into a title in place (§8.3): the last byte forced to NUL, a trailing
    /// UTF-8 ellipsis written as "..." when UTF-8 is not allowed, then sanitised. Returns the
    /// title's length.
    /// </summary>
    public static int PrepareTitle(Span<byte> name, bool allowUtf8)
    {
        name[^1] = 0;
        int length = name.IndexOf((byte)0);
        if (!allowUtf8 && length > 3 && name[(length - 3)..length].SequenceEqual("\u2026"u8))
        {
            "..."u8.CopyTo(name[(length - 3)..]);
        }
        return Sanitize(name, allowUtf8);
    }
}
