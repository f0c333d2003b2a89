using System;
using Qubes.Interop.Linux;

namespace Qubes.FileCopy;

/// <summary>What a name or link target may hold beyond the strict rules (spec filecopy §6, §9).</summary>
[Flags]
public enum NameRules
{
    /// <summary>Canonical paths of safe characters only; symbolic links must stay inside their top-level directory.</summary>
    Strict = 0,

    /// <summary>Any byte in a name (<c>--allow-all-names</c>); the structural rules still hold.</summary>
    AllowAllNames = 1,

    /// <summary>Link targets are not checked (<c>--allow-unsafe-symlinks</c>); the link's name still is.</summary>
    AllowUnsafeSymlinks = 2,

    /// <summary>Empty and <c>.</c> components of a link target are skipped instead of refused (a qube's default).</summary>
    AllowNonCanonicalSymlinks = 4,
}

/// <summary>
/// The name and link checks of spec filecopy §6: they keep every entry of a transfer, and every
/// link's target, inside the directory the transfer unpacks into. Inputs end at their first NUL.
/// </summary>
public static class PathValidator
{
    /// <summary>
    /// §6.1 on <paramref name="path"/>: the number of normal (non-<c>..</c>) components, or the errno
    /// that refuses it: ENOLINK for an empty or absolute path or one <c>..</c> too many, EILSEQ
    /// for anything else.
    /// </summary>
    private static int ValidatePath(ReadOnlySpan<byte> path, int leadingDotDots, bool allowAllNames, bool allowNonCanonical, bool allowTrailingSlash, out int components)
    {
        components = 0;
        int end = path.IndexOf((byte)0);
        if (end >= 0)
        {
            path = path[..end];
        }
        if (path.IsEmpty)
        {
            return allowNonCanonical ? 0 : (int)Errno.ENOLINK;
        }
        if (path[0] == '/')
        {
            return (int)Errno.ENOLINK;
        }
        int i = 0;
        while (i < path.Length)
        {
            if (i == 0 || path[i - 1] == '/')
            {
                // the start of a component
                if (path[i] == '/')
                {
                    if (!allowNonCanonical)
                    {
                        return (int)Errno.EILSEQ;
                    }
                    i++;
                    continue;
                }
                if (path[i] == '.' && (i + 1 == path.Length || path[i + 1] == '/'))
                {
                    if (!allowNonCanonical)
                    {
                        return (int)Errno.EILSEQ;
                    }
                    i++;
                    continue;
                }
                if (path[i] == '.' && i + 1 < path.Length && path[i + 1] == '.' && (i + 2 == path.Length || path[i + 2] == '/'))
                {
                    if (leadingDotDots < 1)
                    {
                        return (int)Errno.ENOLINK;
                    }
                    leadingDotDots--;
                    i += 2;
                    continue;
                }
                // a normal component: no ".." may follow it
                leadingDotDots = 0;
                components++;
            }
            byte b = path[i];
            if ((b >= 0x20 && b <= 0x7E) || allowAllNames)
            {
                i++;
                continue;
            }
            int length = SafeCharacterLength(path[i..]);
            if (length == 0)
            {
                return (int)Errno.EILSEQ;
            }
            i += length;
        }
        if (!allowTrailingSlash && path[^1] == '/')
        {
            return (int)Errno.EILSEQ;
        }
        return 0;
    }

    /// <summary>
    /// The length of the well-formed UTF-8 sequence at the start of <paramref name="text"/> whose
    /// code point is safe for display (§6.1 rule 3, §6.3), or 0 when it is not one.
    /// </summary>
    internal static int SafeCharacterLength(ReadOnlySpan<byte> text)
    {
        byte lead = text[0];
        int length, codePoint;
        byte secondLow = 0x80, secondHigh = 0xBF;
        switch (lead)
        {
            case >= 0xC2 and <= 0xDF:
                length = 2;
                codePoint = lead & 0x1F;
                break;
            case 0xE0:
                length = 3;
                codePoint = 0;
                secondLow = 0xA0;
                break;
            case >= 0xE1 and <= 0xEF:
                length = 3;
                codePoint = lead & 0x0F;
                break;
            case 0xF0:
                length = 4;
                codePoint = 0;
                secondLow = 0x90;
                break;
            case >= 0xF1 and <= 0xF4:
                length = 4;
                codePoint = lead & 0x07;
                break;
            default:
                return 0;
        }
        if (text.Length < length)
        {
            return 0;
        }
        for (int k = 1; k < length; k++)
        {
            byte tail = text[k];
            if (tail < (k == 1 ? secondLow : 0x80) || tail > (k == 1 ? secondHigh : 0xBF))
            {
                return 0;
            }
            codePoint = (codePoint << 6) | (tail & 0x3F);
        }
        return SafeCodePoints.IsSafe(codePoint) ? length : 0;
    }

    /// <summary>Whether every character of <paramref name="text"/> (up to a NUL) is printable ASCII or a well-formed UTF-8 code point safe for display (§6.3); an empty text is not.</summary>
    public static bool IsSafeForDisplay(ReadOnlySpan<byte> text)
    {
        int end = text.IndexOf((byte)0);
        if (end >= 0)
        {
            text = text[..end];
        }
        if (text.IsEmpty)
        {
            return false;
        }
        for (int i = 0; i < text.Length;)
        {
            if (text[i] is >= 0x20 and <= 0x7E)
            {
                i++;
                continue;
            }
            int length = SafeCharacterLength(text[i..]);
            if (length == 0)
            {
                return false;
            }
            i += length;
        }
        return true;
    }

    /// <summary>
    /// Whether <paramref name="name"/> may name an entry (§6.1): structurally sound, at least one
    /// normal component, no trailing slash, and safe characters unless <see cref="NameRules.AllowAllNames"/>.
    /// Returns 0 or EILSEQ.
    /// </summary>
    public static int ValidateEntryName(ReadOnlySpan<byte> name, NameRules rules)
    {
        int error = ValidatePath(name, 0, (rules & NameRules.AllowAllNames) != 0, allowNonCanonical: false, allowTrailingSlash: false, out int components);
        return error == 0 && components > 0 ? 0 : (int)Errno.EILSEQ;
    }

    /// <summary>
    /// Whether a symbolic link <paramref name="name"/> → <paramref name="target"/> may be created
    /// (§6.2): the name is a valid entry of depth at least 2, and the target relative with at most
    /// depth − 2 leading <c>..</c> and none after a normal component. Returns 0, EILSEQ for a bad
    /// name or target characters, or ENOLINK for a target that could leave its top-level directory.
    /// </summary>
    public static int ValidateSymbolicLink(ReadOnlySpan<byte> name, ReadOnlySpan<byte> target, NameRules rules)
    {
        bool allowAll = (rules & NameRules.AllowAllNames) != 0;
        if (ValidatePath(name, 0, allowAll, allowNonCanonical: false, allowTrailingSlash: false, out int depth) != 0)
        {
            return (int)Errno.EILSEQ;
        }
        if ((rules & NameRules.AllowUnsafeSymlinks) != 0)
        {
            return depth > 0 ? 0 : (int)Errno.ENOLINK;
        }
        if (depth < 2)
        {
            return (int)Errno.ENOLINK;
        }
        return ValidatePath(target, depth - 2, allowAll, (rules & NameRules.AllowNonCanonicalSymlinks) != 0, allowTrailingSlash: true, out _);
    }
}
