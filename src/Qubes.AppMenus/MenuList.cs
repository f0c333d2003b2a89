using System;
using System.Collections.Generic;
using System.IO;
using System.Text;

namespace Qubes.AppMenus;

/// <summary>One menu entry as dom0 accepted it: its name (the <c>.desktop</c> file's, without the suffix) and its checked keys, in the order they came.</summary>
public sealed class MenuEntry(string name)
{
    /// <summary>The entry's name: <c>[a-zA-Z0-9._-]+</c>.</summary>
    public string Name { get; } = name;

    /// <summary>The accepted keys with checked values (Categories already filtered).</summary>
    public Dictionary<string, string> Values { get; } = new(StringComparer.Ordinal);
}

/// <summary>
/// Reads a qube's menu list, the output of its <c>qubes.GetAppmenus</c> (spec rpc-services §2.2-§2.4):
/// lines of <c>FILE:Key=Value</c>, of which only the listed keys with values inside their
/// whitelists are kept. The input is hostile: at most <see cref="MaxLines"/> reads of at most
/// <see cref="MaxLineLength"/> each, and every accepted character is one of the whitelists'.
/// </summary>
public static class MenuList
{
    /// <summary>Reads before the list is refused as too long (upstream: 100000).</summary>
    public const int MaxLines = 100000;

    /// <summary>The most one read takes (upstream: 1024); a longer line is split, each piece a line.</summary>
    public const int MaxLineLength = 1024;

    /// <summary>What reading a list gave: the entries, or why the list was refused (and nothing may change).</summary>
    public readonly record struct Result(IReadOnlyList<MenuEntry>? Entries, string? Error);

    /// <summary>
    /// Reads the list from <paramref name="input"/> to its end. <paramref name="pull"/> is dom0 asking
    /// the qube (<c>qvm-sync-appmenus VM</c>): lines with a byte outside ASCII are dropped; otherwise the
    /// qube pushed it (<c>qubes.SyncAppMenus</c>) and it must be UTF-8. Values of listed keys that are not
    /// allowed are reported to <paramref name="warnings"/> and dropped.
    /// </summary>
    public static Result Read(Stream input, bool pull, TextWriter warnings)
    {
        ArgumentNullException.ThrowIfNull(input);
        ArgumentNullException.ThrowIfNull(warnings);
        List<string> lines = [];
        LineReader reader = new(input);
        int left = MaxLines;
        while (left > 0)
        {
            ReadOnlySpan<byte> raw = pull ? reader.ReadBytes(MaxLineLength) : reader.ReadCharacters(MaxLineLength);
            if (raw.IsEmpty)
            {
                break;
            }
            left--;
            if (pull)
            {
                if (!System.Text.Ascii.IsValid(raw))
                {
                    continue;
                }
                lines.Add(MenuText.Strip(Encoding.ASCII.GetString(raw)));
            }
            else if (System.Text.Unicode.Utf8.IsValid(raw))
            {
                lines.Add(MenuText.Strip(Encoding.UTF8.GetString(raw)));
            }
            else
            {
                return new(null, "Input is not valid UTF-8");
            }
        }
        if (left == 0)
        {
            return new(null, "Line count limit exceeded");
        }
        return new(Parse(lines, warnings), null);
    }

    /// <summary>The entries of already split and stripped lines.</summary>
    public static List<MenuEntry> Parse(IEnumerable<string> lines, TextWriter warnings)
    {
        ArgumentNullException.ThrowIfNull(lines);
        ArgumentNullException.ThrowIfNull(warnings);
        List<MenuEntry> entries = [];
        Dictionary<string, MenuEntry> byName = new(StringComparer.Ordinal);
        foreach (string line in lines)
        {
            if (line.Length == 0 || IsComment(line) || Match(line) is not { } m)
            {
                continue;
            }
            if (!MenuFields.IsAccepted(m.Key))
            {
                continue;
            }
            if (!MenuFields.IsValid(m.Key, m.Value))
            {
                warnings.WriteLine($"Warning: ignoring key '{m.Key}' of {m.Name}");
                continue;
            }
            if (!byName.TryGetValue(m.Name, out MenuEntry? entry))
            {
                entry = new MenuEntry(m.Name);
                byName.Add(m.Name, entry);
                entries.Add(entry);
            }
            entry.Values[m.Key] = m.Key == "Categories" ? MenuFields.FilterCategories(m.Value) : m.Value;
        }
        return entries;
    }

    /// <summary>
    /// A comment or empty value line, <c>\A.*([a-zA-Z0-9._-]+.desktop):(#.*|\s*)\Z</c>: somewhere a name
    /// character, any character, <c>desktop:</c>, and after it a <c>#</c> or only whitespace.
    /// </summary>
    internal static bool IsComment(string line)
    {
        for (int q = 1; q + 8 < line.Length; q++)
        {
            if (MenuText.IsNameChar(line[q - 1]) && line[q] != '\n' && line.AsSpan(q + 1, 8).SequenceEqual("desktop:"))
            {
                ReadOnlySpan<char> rest = line.AsSpan(q + 9);
                if ((rest.Length > 0 && rest[0] == '#' && !rest.Contains('\n')) || MenuText.AllSpace(rest))
                {
                    return true;
                }
            }
        }
        return false;
    }

    /// <summary>A line's entry, key and stripped value.</summary>
    internal readonly record struct Line(string Name, string Key, string Value);

    /// <summary>
    /// The leftmost match of <c>([a-zA-Z0-9._-]+?)(?:\.desktop)?:([a-zA-Z0-9-]+(?:\[[a-zA-Z@_]+\])?)\s*=\s*(.*)</c>.
    /// Every start inside one run of name characters reaches the same colon at the run's end, so the
    /// runs are tried in order, each once: linear in the line, where a backtracking search is quadratic.
    /// </summary>
    internal static Line? Match(string line)
    {
        int i = 0;
        while (i < line.Length)
        {
            if (!MenuText.IsNameChar(line[i]))
            {
                i++;
                continue;
            }
            int start = i;
            while (i < line.Length && MenuText.IsNameChar(line[i]))
            {
                i++;
            }
            if (i < line.Length && line[i] == ':' && MatchRest(line, i + 1) is { } rest)
            {
                int end = i;
                if (end - start > ".desktop".Length && line.AsSpan(start, end - start).EndsWith(".desktop", StringComparison.Ordinal))
                {
                    end -= ".desktop".Length;
                }
                return new Line(line[start..end], rest.Key, rest.Value);
            }
        }
        return null;
    }

    private static (string Key, string Value)? MatchRest(string line, int p)
    {
        int keyStart = p;
        while (p < line.Length && MenuText.IsKeyChar(line[p]))
        {
            p++;
        }
        if (p == keyStart)
        {
            return null;
        }
        int keyEnd = p;
        if (p < line.Length && line[p] == '[')
        {
            int q = p + 1;
            while (q < line.Length && MenuText.IsLocaleChar(line[q]))
            {
                q++;
            }
            if (q > p + 1 && q < line.Length && line[q] == ']' && AfterEquals(line, q + 1) is int valueAt)
            {
                return (line[keyStart..(q + 1)], Value(line, valueAt));
            }
        }
        return AfterEquals(line, keyEnd) is int at ? (line[keyStart..keyEnd], Value(line, at)) : null;
    }

    /// <summary>Where the value starts when <c>\s*=</c> follows <paramref name="p"/>.</summary>
    private static int? AfterEquals(string line, int p)
    {
        while (p < line.Length && MenuText.IsSpace(line[p]))
        {
            p++;
        }
        return p < line.Length && line[p] == '=' ? p + 1 : null;
    }

    /// <summary>The value: the rest of the line (<c>.</c> stops at a newline), stripped.</summary>
    private static string Value(string line, int at)
    {
        int end = line.IndexOf('\n', at);
        return MenuText.Strip(line[at..(end < 0 ? line.Length : end)]);
    }
}
