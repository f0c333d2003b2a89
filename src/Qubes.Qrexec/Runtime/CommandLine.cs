using System;

namespace Qubes.Qrexec.Runtime;

/// <summary>Option values in the forms upstream's getopt_long accepts.</summary>
public static class CommandLine
{
    /// <summary>
    /// The value of the option at <c>args[i]</c> if it is <paramref name="longName"/> or
    /// <paramref name="shortName"/>: <c>--long=V</c>, <c>--long V</c>, <c>-s V</c>, and with
    /// <paramref name="attachedShort"/> also <c>-sV</c>. A value in the next argument moves
    /// <paramref name="i"/> onto it. Null when <c>args[i]</c> is another option or the value is missing.
    /// </summary>
    public static string? OptionValue(string[] args, ref int i, string? longName, string? shortName, bool attachedShort = false)
    {
        ArgumentNullException.ThrowIfNull(args);
        string a = args[i];
        if (longName != null && a.StartsWith(longName + "=", StringComparison.Ordinal))
        {
            return a[(longName.Length + 1)..];
        }
        if (a == longName || a == shortName)
        {
            return i + 1 < args.Length ? args[++i] : null;
        }
        if (attachedShort && shortName is { Length: 2 } && a.Length > 2 && a.StartsWith(shortName, StringComparison.Ordinal))
        {
            return a[2..];
        }
        return null;
    }
}
