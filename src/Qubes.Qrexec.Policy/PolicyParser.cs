using System;
using System.Collections.Generic;

namespace Qubes.Qrexec.Policy;

/// <summary>A directive line (spec qrexec-policy §6), for the loader to carry out.</summary>
public sealed record PolicyDirective(string Name, IReadOnlyList<string> Arguments, string File, int Line);

/// <summary>
/// Parses the lines of one policy file (spec qrexec-policy §2, §4, §11.1): rules in the v5 format,
/// or in the legacy format with a service and argument given from outside. Directives are handed
/// to a callback at their place, so that included rules keep their order. Every error is a
/// <see cref="PolicySyntaxException"/> naming the file and line.
/// </summary>
public static class PolicyParser
{
    /// <summary>
    /// Parses v5 <paramref name="lines"/> of <paramref name="file"/>, adding rules to
    /// <paramref name="rules"/> and calling <paramref name="directive"/> for each directive line.
    /// </summary>
    public static void Parse(IEnumerable<string> lines, string file, List<PolicyRule> rules, Action<PolicyDirective> directive)
    {
        ArgumentNullException.ThrowIfNull(lines);
        ArgumentNullException.ThrowIfNull(rules);
        ArgumentNullException.ThrowIfNull(directive);
        foreach ((int number, string line) in Significant(lines))
        {
            string[] fields = Fields(line);
            if (line[0] == '!')
            {
                directive(ParseDirective(fields, file, number));
                continue;
            }
            if (fields.Length < 5)
            {
                throw new PolicySyntaxException(file, number, "wrong number of fields");
            }
            rules.Add(ParseRule(fields[0], fields[1], fields[2], fields[3], fields[4], fields.AsSpan(5), file, number));
        }
    }

    /// <summary>
    /// Parses legacy (R4.0) <paramref name="lines"/> whose rules all get <paramref name="service"/>
    /// and <paramref name="argument"/> (§11.1). The only directive is <c>$include:PATH</c>, handed to
    /// <paramref name="include"/> as <c>!include PATH</c>.
    /// </summary>
    public static void ParseLegacy(IEnumerable<string> lines, string file, string service, string argument, List<PolicyRule> rules, Action<PolicyDirective> include)
    {
        ArgumentNullException.ThrowIfNull(lines);
        ArgumentNullException.ThrowIfNull(rules);
        ArgumentNullException.ThrowIfNull(include);
        foreach ((int number, string significant) in Significant(lines))
        {
            string line = significant.Replace("$include:", "!include ", StringComparison.Ordinal).Replace('$', '@').Replace(',', ' ');
            string[] fields = Fields(line);
            if (line[0] == '!')
            {
                if (fields[0] != "!include" || fields.Length != 2)
                {
                    throw new PolicySyntaxException(file, number, fields[0] == "!include"
                        ? "wrong number of arguments to !include"
                        : $"directive {fields[0]} is not allowed in a legacy policy file");
                }
                include(new PolicyDirective(fields[0], fields[1..], file, number));
                continue;
            }
            if (fields.Length < 3)
            {
                throw new PolicySyntaxException(file, number, "wrong number of fields");
            }
            rules.Add(ParseRule(service, argument, fields[0], fields[1], fields[2], fields.AsSpan(3), file, number));
        }
    }

    /// <summary>Checks a SERVICE and ARGUMENT pair as the columns allow them (§2.1); null when valid, else the reason.</summary>
    public static string? CheckServiceAndArgument(string service, string argument)
    {
        if (service != "*" && !IsName(service, allowPlus: false))
        {
            return $"invalid service '{service}'";
        }
        if (argument != "*" && (argument.Length == 0 || argument[0] != '+' || !IsName(argument, allowPlus: true)))
        {
            return $"invalid argument '{argument}'";
        }
        if (service == "*" && argument != "*")
        {
            return "a rule for every service (*) must have the argument *";
        }
        return null;
    }

    /// <summary>Whether <paramref name="text"/> is made of <c>[A-Za-z0-9._-]</c> (and <c>+</c> when allowed).</summary>
    internal static bool IsName(ReadOnlySpan<char> text, bool allowPlus)
    {
        if (text.IsEmpty)
        {
            return false;
        }
        foreach (char c in text)
        {
            if (!(char.IsAsciiLetterOrDigit(c) || c is '.' or '_' or '-' || (allowPlus && c == '+')))
            {
                return false;
            }
        }
        return true;
    }

    /// <summary>The lines that are neither empty nor comments, stripped, with their 1-based numbers (§2 rules 1-2).</summary>
    private static IEnumerable<(int Number, string Line)> Significant(IEnumerable<string> lines)
    {
        int number = 0;
        foreach (string raw in lines)
        {
            number++;
            string line = Strip(raw);
            if (line.Length > 0 && line[0] != '#')
            {
                yield return (number, line);
            }
        }
    }

    /// <summary>
    /// Whether <paramref name="c"/> separates fields. The policy language splits as Python's
    /// <c>str.split()</c> does: .NET's white space and also the separators 0x1C-0x1F.
    /// </summary>
    internal static bool IsSpace(char c) => char.IsWhiteSpace(c) || c is >= '\x1c' and <= '\x1f';

    /// <summary>§2 rule 1: <paramref name="line"/> without leading and trailing white space (<see cref="IsSpace"/>).</summary>
    internal static string Strip(string line)
    {
        int start = 0, end = line.Length;
        while (start < end && IsSpace(line[start]))
        {
            start++;
        }
        while (end > start && IsSpace(line[end - 1]))
        {
            end--;
        }
        return line[start..end];
    }

    /// <summary>The white-space separated fields of a stripped line (<see cref="IsSpace"/>).</summary>
    private static string[] Fields(string line)
    {
        List<string> fields = [];
        int i = 0;
        while (i < line.Length)
        {
            while (i < line.Length && IsSpace(line[i]))
            {
                i++;
            }
            int start = i;
            while (i < line.Length && !IsSpace(line[i]))
            {
                i++;
            }
            if (i > start)
            {
                fields.Add(line[start..i]);
            }
        }
        return [.. fields];
    }

    private static PolicyDirective ParseDirective(string[] fields, string file, int line)
    {
        string name = fields[0];
        int expected = name switch
        {
            "!include" or "!include-dir" => 1,
            "!include-service" => 3,
            "!compat-4.0" => 0,
            _ => -1,
        };
        if (expected < 0)
        {
            throw new PolicySyntaxException(file, line, $"invalid directive {name}");
        }
        if (fields.Length - 1 != expected)
        {
            throw new PolicySyntaxException(file, line, $"wrong number of arguments to {name}");
        }
        return new PolicyDirective(name, fields[1..], file, line);
    }

    private static PolicyRule ParseRule(string service, string argument, string source, string target, string action,
        ReadOnlySpan<string> parameters, string file, int line)
    {
        if (CheckServiceAndArgument(service, argument) is string invalid)
        {
            throw new PolicySyntaxException(file, line, invalid);
        }
        PolicyToken sourceToken = Token(source, TokenPosition.Source, file, line);
        PolicyToken targetToken = Token(target, TokenPosition.Target, file, line);
        PolicyAction kind = action switch
        {
            "allow" => PolicyAction.Allow,
            "deny" => PolicyAction.Deny,
            "ask" => PolicyAction.Ask,
            _ => throw new PolicySyntaxException(file, line, $"invalid action '{action}'"),
        };
        PolicyToken? redirect = null, defaultTarget = null;
        string? user = null;
        bool? notify = null, autostart = null;
        HashSet<string> seen = new(StringComparer.Ordinal);
        foreach (string parameter in parameters)
        {
            int eq = parameter.IndexOf('=', StringComparison.Ordinal);
            if (eq < 0)
            {
                throw new PolicySyntaxException(file, line, $"invalid action parameter syntax: '{parameter}'");
            }
            string key = parameter[..eq];
            string value = parameter[(eq + 1)..];
            if (!Accepts(kind, key))
            {
                throw new PolicySyntaxException(file, line, $"invalid option '{key}' for {action} action");
            }
            if (!seen.Add(key))
            {
                throw new PolicySyntaxException(file, line, $"parameter '{key}' given twice");
            }
            switch (key)
            {
                case "target":
                    redirect = Token(value, TokenPosition.Redirect, file, line);
                    break;
                case "default_target":
                    defaultTarget = Token(value, TokenPosition.Redirect, file, line);
                    break;
                case "user":
                    // An empty user is the default user, as if the parameter were not there.
                    user = value.Length == 0 ? null : value;
                    break;
                case "notify":
                    notify = YesNo(key, value, file, line);
                    break;
                default:
                    autostart = YesNo(key, value, file, line);
                    break;
            }
        }
        if (targetToken.Kind == TokenKind.Default && kind == PolicyAction.Allow && redirect == null)
        {
            throw new PolicySyntaxException(file, line, "allow action for @default rule must specify target= option");
        }
        return new PolicyRule(service == "*" ? null : service, argument == "*" ? null : argument, sourceToken, targetToken, kind,
            redirect, defaultTarget, user, notify ?? kind == PolicyAction.Deny, autostart ?? true, file, line);
    }

    private static bool Accepts(PolicyAction action, string key) => action switch
    {
        PolicyAction.Deny => key == "notify",
        PolicyAction.Allow => key is "target" or "user" or "notify" or "autostart",
        _ => key is "target" or "default_target" or "user" or "notify" or "autostart",
    };

    private static bool YesNo(string key, string value, string file, int line) => value switch
    {
        "yes" => true,
        "no" => false,
        _ => throw new PolicySyntaxException(file, line, $"{key}= takes yes or no, not '{value}'"),
    };

    private static PolicyToken Token(string text, TokenPosition position, string file, int line)
        => PolicyToken.TryParse(text, position, out PolicyToken token, out string? error)
            ? token
            : throw new PolicySyntaxException(file, line, error!);
}
