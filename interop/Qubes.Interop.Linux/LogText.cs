using System;
using System.Text;

namespace Qubes.Interop.Linux;

/// <summary>
/// Text a qube chose, made fit for a dom0 log line: control characters and the line separators
/// shown as <c>\xNN</c> escapes (a qube cannot forge or split a line), and at most
/// <see cref="MaxLength"/> characters kept, the cut said at the end (a qube cannot grow the log
/// faster than its calls do).
/// </summary>
public static class LogText
{
    /// <summary>The most characters of one value a log line carries.</summary>
    public const int MaxLength = 256;

    /// <summary>The value, escaped and capped.</summary>
    public static string Cap(string? value, int maxLength = MaxLength)
    {
        if (value is null)
        {
            return string.Empty;
        }
        int keep = Math.Min(value.Length, maxLength);
        bool clean = keep == value.Length;
        for (int i = 0; clean && i < keep; i++)
        {
            clean = !NeedsEscape(value[i]);
        }
        if (clean)
        {
            return value;
        }
        StringBuilder text = new(keep + 32);
        for (int i = 0; i < keep; i++)
        {
            char c = value[i];
            if (NeedsEscape(c))
            {
                text.Append("\\x").Append(((int)c).ToString("x2", System.Globalization.CultureInfo.InvariantCulture));
            }
            else
            {
                text.Append(c);
            }
        }
        if (keep < value.Length)
        {
            text.Append("...(").Append(value.Length - keep).Append(" more)");
        }
        return text.ToString();
    }

    private static bool NeedsEscape(char c) => c < 0x20 || c == 0x7f || (c >= 0x80 && c < 0xa0) || c is '\u2028' or '\u2029';
}
