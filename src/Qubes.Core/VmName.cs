using System;

namespace Qubes.Core;

/// <summary>Qube name validation (spec core-stack §5): the rules in order, the first failure wins.</summary>
public static class VmName
{
    /// <summary>Longest name.</summary>
    public const int MaxLength = 31;

    /// <summary>Null when <paramref name="name"/> may name a qube, else the upstream message.</summary>
    public static string? Check(ReadOnlySpan<char> name)
    {
        if (name.Length > MaxLength)
        {
            return "VM name must be shorter than 32 characters";
        }
        if (!name.IsEmpty && (char.IsAsciiDigit(name[0]) || name[0] is '_' or '.' or '-'))
        {
            return "VM name cannot start with hyphen, underscore, dot or numbers";
        }
        if (name.IsEmpty || !char.IsAsciiLetter(name[0]) || name.ContainsAnyExcept(s_allowed))
        {
            return "VM name contains illegal characters";
        }
        if (name.SequenceEqual("Domain-0"))
        {
            return "VM name cannot be 'Domain-0'";
        }
        if (name.SequenceEqual("none") || name.SequenceEqual("default"))
        {
            return "VM name cannot be 'none' nor 'default'";
        }
        if (name.EndsWith("-dm"))
        {
            return "VM name cannot end with -dm";
        }
        return null;
    }

    /// <summary>Throws <c>QubesValueError</c> when <paramref name="name"/> is not a valid qube name.</summary>
    public static void Validate(string name)
    {
        if (Check(name) is string error)
        {
            throw QubesException.Value(error);
        }
    }

    private static readonly System.Buffers.SearchValues<char> s_allowed =
        System.Buffers.SearchValues.Create("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_.-");
}
