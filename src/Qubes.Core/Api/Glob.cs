namespace Qubes.Core.Api;

/// <summary>
/// Shell-style wildcards as the admin tools match qube names with them (Python's fnmatch on Linux):
/// <c>*</c> any run of characters, <c>?</c> one character, <c>[…]</c> one character of the set
/// (ranges like <c>a-z</c>; a range whose ends are reversed is empty), <c>[!…]</c> one character
/// not in it. A <c>]</c> first in a set belongs to it; a <c>[</c> without a closing <c>]</c>, and
/// every other character, stands for itself. The whole name must match; case counts.
/// </summary>
internal static class Glob
{
    /// <summary>Whether <paramref name="name"/> matches <paramref name="pattern"/>.</summary>
    public static bool Match(string pattern, string name)
    {
        int p = 0, n = 0;
        // where to resume after the last '*': the pattern after it, and the name one further each time
        int starPattern = -1, starName = 0;
        while (n < name.Length)
        {
            if (p < pattern.Length && pattern[p] == '*')
            {
                starPattern = ++p;
                starName = n;
                continue;
            }
            if (p < pattern.Length && MatchOne(pattern, ref p, name[n]))
            {
                n++;
                continue;
            }
            if (starPattern < 0)
            {
                return false;
            }
            p = starPattern;
            n = ++starName;
        }
        while (p < pattern.Length && pattern[p] == '*')
        {
            p++;
        }
        return p == pattern.Length;
    }

    /// <summary>Whether the element at <paramref name="p"/> (not a '*') matches <paramref name="c"/>; on a match, <paramref name="p"/> moves past it.</summary>
    private static bool MatchOne(string pattern, ref int p, char c)
    {
        char first = pattern[p];
        if (first == '?')
        {
            p++;
            return true;
        }
        int end = first == '[' ? SetEnd(pattern, p) : -1;
        if (end < 0)
        {
            if (first != c)
            {
                return false;
            }
            p++;
            return true;
        }
        int i = p + 1;
        bool negated = pattern[i] == '!';
        if (negated)
        {
            i++;
        }
        bool found = false;
        while (i < end)
        {
            if (i + 2 < end && pattern[i + 1] == '-')
            {
                found |= pattern[i] <= c && c <= pattern[i + 2];
                i += 3;
            }
            else
            {
                found |= pattern[i] == c;
                i++;
            }
        }
        if (found == negated)
        {
            return false;
        }
        p = end + 1;
        return true;
    }

    /// <summary>The index of the <c>]</c> that closes the set opened at <paramref name="open"/>, or -1 when none does.</summary>
    private static int SetEnd(string pattern, int open)
    {
        int j = open + 1;
        if (j < pattern.Length && pattern[j] == '!')
        {
            j++;
        }
        if (j < pattern.Length && pattern[j] == ']')
        {
            j++;
        }
        return j < pattern.Length ? pattern.IndexOf(']', j) : -1;
    }
}
