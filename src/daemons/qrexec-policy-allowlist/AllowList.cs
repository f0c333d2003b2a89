using System;
using System.Collections.Generic;
using System.IO;
using System.Text;

namespace Qubes.Tools.PolicyAllowlist;

/// <summary>One rule: <c>SERVICE SOURCE TARGET ACTION [target=NAME] [user=NAME]</c>.</summary>
internal sealed record AllowRule(string Service, string Source, string Target, bool Allow, string? Redirect, string? User, int Line);

/// <summary>
/// A first-match allow list standing in for the policy engine. Rules, one a line, <c>#</c> to the
/// end of a line is a comment:
/// <code>
/// SERVICE   SOURCE  TARGET  ACTION  [target=NAME] [user=NAME]
/// qubes.Foo work    vault   allow   user=root
/// qubes.Bar+x *     *       deny
/// *         sys-net @default allow  target=sys-firewall
/// </code>
/// SERVICE is <c>*</c>, <c>svc</c> (matches <c>svc</c> and every <c>svc+arg</c>) or an exact
/// <c>svc+arg</c>; SOURCE and TARGET are <c>*</c> or a name compared exactly with the caller's
/// source and intended target. The first matching rule decides; no match denies.
/// </summary>
internal sealed class AllowList
{
    /// <summary>The user an allow answers with when the rule names none.</summary>
    internal const string DefaultUser = "DEFAULT";

    private static readonly char[] s_separators = [' ', '\t'];

    private readonly AllowRule[] _rules;

    private AllowList(AllowRule[] rules) => _rules = rules;

    /// <summary>A list that denies everything (the state while the rules file is unusable).</summary>
    internal static AllowList DenyAll { get; } = new([]);

    internal int Count => _rules.Length;

    /// <summary>Parses rules text; returns null and the first problem when a line is not a rule.</summary>
    internal static AllowList? Parse(string text, out string? error)
    {
        var rules = new List<AllowRule>();
        string[] lines = text.Split('\n');
        for (int i = 0; i < lines.Length; i++)
        {
            string line = lines[i];
            int hash = line.IndexOf('#', StringComparison.Ordinal);
            if (hash >= 0)
            {
                line = line[..hash];
            }
            string[] fields = line.Split(s_separators, StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries);
            if (fields.Length == 0)
            {
                continue;
            }
            int number = i + 1;
            if (fields.Length < 4)
            {
                error = $"line {number}: expected SERVICE SOURCE TARGET ACTION";
                return null;
            }
            bool allow;
            switch (fields[3])
            {
                case "allow":
                    allow = true;
                    break;
                case "deny":
                    allow = false;
                    break;
                default:
                    error = $"line {number}: action '{fields[3]}' is neither allow nor deny";
                    return null;
            }
            string? redirect = null, user = null;
            for (int f = 4; f < fields.Length; f++)
            {
                int equals = fields[f].IndexOf('=', StringComparison.Ordinal);
                string key = equals < 0 ? fields[f] : fields[f][..equals];
                string value = equals < 0 ? string.Empty : fields[f][(equals + 1)..];
                if (equals <= 0 || value.Length == 0 || (key != "target" && key != "user"))
                {
                    error = $"line {number}: option '{fields[f]}' is not target=NAME or user=NAME";
                    return null;
                }
                if (!allow)
                {
                    error = $"line {number}: option '{fields[f]}' on a deny rule";
                    return null;
                }
                if ((key == "target" ? redirect : user) is not null)
                {
                    error = $"line {number}: option '{key}' given twice";
                    return null;
                }
                if (key == "target")
                {
                    redirect = value;
                }
                else
                {
                    user = value;
                }
            }
            rules.Add(new AllowRule(fields[0], fields[1], fields[2], allow, redirect, user, number));
        }
        error = null;
        return new AllowList(rules.ToArray());
    }

    /// <summary>Reads and parses a rules file; returns null and the problem when it cannot be used.</summary>
    internal static AllowList? Load(string path, out string? error)
    {
        string text;
        try
        {
            text = File.ReadAllText(path);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            error = e.Message;
            return null;
        }
        AllowList? list = Parse(text, out error);
        if (error is not null)
        {
            error = $"{path}: {error}";
        }
        return list;
    }

    /// <summary>The first rule matching the call, or null.</summary>
    internal AllowRule? Match(string source, string intendedTarget, string serviceAndArg)
    {
        foreach (AllowRule rule in _rules)
        {
            if (ServiceMatches(rule.Service, serviceAndArg)
                && NameMatches(rule.Source, source)
                && NameMatches(rule.Target, intendedTarget))
            {
                return rule;
            }
        }
        return null;
    }

    /// <summary>The §11.2 answer for the call.</summary>
    internal byte[] Answer(string source, string intendedTarget, string serviceAndArg)
    {
        AllowRule? rule = Match(source, intendedTarget, serviceAndArg);
        if (rule is null || !rule.Allow)
        {
            return "result=deny\n"u8.ToArray();
        }
        string text = $"result=allow\nuser={rule.User ?? DefaultUser}\ntarget={rule.Redirect ?? intendedTarget}\nrequested_target={intendedTarget}\nautostart=False\n";
        return Encoding.UTF8.GetBytes(text);
    }

    private static bool ServiceMatches(string pattern, string serviceAndArg)
    {
        if (pattern == "*" || pattern == serviceAndArg)
        {
            return true;
        }
        // "svc" stands for the service with any argument; "svc+arg" only for itself.
        return !pattern.Contains('+', StringComparison.Ordinal)
            && serviceAndArg.Length > pattern.Length
            && serviceAndArg[pattern.Length] == '+'
            && serviceAndArg.StartsWith(pattern, StringComparison.Ordinal);
    }

    private static bool NameMatches(string pattern, string name) => pattern == "*" || pattern == name;
}
