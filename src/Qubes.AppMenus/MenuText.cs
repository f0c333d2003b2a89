using System;

namespace Qubes.AppMenus;

/// <summary>The character classes of upstream's menu parser, which is Python: its whitespace is <c>str.isspace</c>'s.</summary>
internal static class MenuText
{
    /// <summary>Python's whitespace: .NET's, and the four separators U+001C-U+001F, which Python also strips.</summary>
    public static bool IsSpace(char c) => char.IsWhiteSpace(c) || c is >= '\x1c' and <= '\x1f';

    /// <summary>An entry-name character: <c>[a-zA-Z0-9._-]</c>.</summary>
    public static bool IsNameChar(char c) => char.IsAsciiLetterOrDigit(c) || c is '.' or '_' or '-';

    /// <summary>A key character: <c>[a-zA-Z0-9-]</c>.</summary>
    public static bool IsKeyChar(char c) => char.IsAsciiLetterOrDigit(c) || c == '-';

    /// <summary>A locale character inside a key's brackets: <c>[a-zA-Z@_]</c>.</summary>
    public static bool IsLocaleChar(char c) => char.IsAsciiLetter(c) || c is '@' or '_';

    /// <summary><paramref name="text"/> without the whitespace around it (Python's <c>str.strip()</c>).</summary>
    public static string Strip(string text)
    {
        int start = 0, end = text.Length;
        while (start < end && IsSpace(text[start]))
        {
            start++;
        }
        while (end > start && IsSpace(text[end - 1]))
        {
            end--;
        }
        return start == 0 && end == text.Length ? text : text[start..end];
    }

    public static bool AllSpace(ReadOnlySpan<char> text)
    {
        foreach (char c in text)
        {
            if (!IsSpace(c))
            {
                return false;
            }
        }
        return true;
    }
}
