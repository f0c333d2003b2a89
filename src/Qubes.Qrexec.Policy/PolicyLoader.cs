using System;
using System.Collections.Generic;
using System.IO;
using System.Linq;
using System.Text;

namespace Qubes.Qrexec.Policy;

/// <summary>
/// Loads the policy from its directories (spec qrexec-policy §1, §6, §11): every <c>.policy</c>
/// file of the runtime and main directories in name order, with their includes and legacy imports,
/// into one ordered rule list. Anything wrong (a bad file name, a syntax error anywhere, a missing
/// include) is a <see cref="PolicySyntaxException"/>: the policy as a whole is unusable.
/// </summary>
public sealed class PolicyLoader
{
    /// <summary>Includes nested deeper than this are an error (an include cycle ends here).</summary>
    public const int MaxIncludeDepth = 16;

    private const string Suffix = ".policy";

    /// <summary>UTF-8 that refuses invalid bytes instead of replacing them.</summary>
    private static readonly UTF8Encoding s_strictUtf8 = new(encoderShouldEmitUTF8Identifier: false, throwOnInvalidBytes: true);

    private readonly IReadOnlyList<string> _directories;
    private readonly string _legacyDirectory;

    /// <summary>
    /// <paramref name="directories"/>: the policy directories, the one whose files win first (the
    /// runtime directory, then the main one). <paramref name="legacyDirectory"/>: where
    /// <c>!compat-4.0</c> finds the R4.0 files.
    /// </summary>
    public PolicyLoader(IReadOnlyList<string> directories, string legacyDirectory)
    {
        ArgumentNullException.ThrowIfNull(directories);
        ArgumentNullException.ThrowIfNull(legacyDirectory);
        _directories = directories;
        _legacyDirectory = legacyDirectory;
    }

    /// <summary>The system's paths: <c>/run/qubes/policy.d</c> before <c>/etc/qubes/policy.d</c>, legacy files in <c>/etc/qubes-rpc/policy</c>.</summary>
    public static PolicyLoader System { get; } = new(["/run/qubes/policy.d", "/etc/qubes/policy.d"], "/etc/qubes-rpc/policy");

    /// <summary>The directories, in precedence order.</summary>
    public IReadOnlyList<string> Directories => _directories;

    /// <summary>The files the policy is made of, in load order (each basename once, the first directory's copy).</summary>
    public IReadOnlyList<string> Files()
    {
        Dictionary<string, string> byName = new(StringComparer.Ordinal);
        foreach (string directory in _directories)
        {
            foreach (string path in PolicyFilesIn(directory, mustExist: false))
            {
                byName.TryAdd(Path.GetFileName(path), path);
            }
        }
        return [.. byName.OrderBy(static e => e.Key, StringComparer.Ordinal).Select(static e => e.Value)];
    }

    /// <summary>Loads every rule. Throws <see cref="PolicySyntaxException"/> when the policy is unusable.</summary>
    public IReadOnlyList<PolicyRule> Load() => Load(null);

    /// <summary>
    /// Loads every rule, adding to <paramref name="watched"/> each file and directory whose change
    /// changes the policy: the policy directories, every file read and every directory listed.
    /// Throws <see cref="PolicySyntaxException"/> when the policy is unusable.
    /// </summary>
    public IReadOnlyList<PolicyRule> Load(ICollection<string>? watched)
    {
        Loading rules = new([], watched);
        foreach (string directory in _directories)
        {
            rules.Watch(directory);
        }
        foreach (string file in Files())
        {
            LoadFile(file, Path.GetDirectoryName(file)!, rules, 0);
        }
        return rules.Rules;
    }

    /// <summary>Parses v5 <paramref name="text"/> as if it were the file <paramref name="file"/> (includes resolve against its directory).</summary>
    public IReadOnlyList<PolicyRule> LoadText(string text, string file)
    {
        ArgumentNullException.ThrowIfNull(text);
        Loading rules = new([], null);
        Parse(text.Split('\n'), file, Path.GetDirectoryName(Path.GetFullPath(file))!, rules, 0);
        return rules.Rules;
    }

    private void LoadFile(string path, string baseDirectory, Loading rules, int depth)
    {
        rules.Watch(path);
        Parse(ReadLines(path, "policy file"), path, baseDirectory, rules, depth);
    }

    private void Parse(IEnumerable<string> lines, string file, string baseDirectory, Loading rules, int depth)
    {
        PolicyParser.Parse(lines, file, rules.Rules, directive =>
        {
            CheckDepth(depth, directive);
            switch (directive.Name)
            {
                case "!include":
                    LoadFile(IncludePath(directive.Arguments[0], baseDirectory, directive, isDirectory: false), baseDirectory, rules, depth + 1);
                    break;
                case "!include-dir":
                    string directory = IncludePath(directive.Arguments[0], baseDirectory, directive, isDirectory: true);
                    rules.Watch(directory);
                    foreach (string path in PolicyFilesIn(directory, mustExist: true).Order(StringComparer.Ordinal))
                    {
                        LoadFile(path, baseDirectory, rules, depth + 1);
                    }
                    break;
                case "!include-service":
                    string service = directive.Arguments[0];
                    string argument = directive.Arguments[1];
                    if (PolicyParser.CheckServiceAndArgument(service, argument) is string invalid)
                    {
                        throw new PolicySyntaxException(file, directive.Line, invalid);
                    }
                    LoadLegacy(IncludePath(directive.Arguments[2], baseDirectory, directive, isDirectory: false), baseDirectory, service, argument, rules, depth + 1);
                    break;
                default:
                    LoadCompat(rules, file, directive.Line, depth + 1);
                    break;
            }
        });
    }

    private void LoadLegacy(string path, string baseDirectory, string service, string argument, Loading rules, int depth)
    {
        rules.Watch(path);
        PolicyParser.ParseLegacy(ReadLines(path, "legacy policy file"), path, service, argument, rules.Rules, include =>
        {
            CheckDepth(depth, include);
            LoadLegacy(IncludePath(include.Arguments[0], baseDirectory, include, isDirectory: false), baseDirectory, service, argument, rules, depth + 1);
        });
    }

    private static void CheckDepth(int depth, PolicyDirective directive)
    {
        if (depth >= MaxIncludeDepth)
        {
            throw new PolicySyntaxException(directive.File, directive.Line, "includes nested too deep");
        }
    }

    /// <summary>§11.2: the legacy directory's files, sorted by service with argument-less files last, each followed by its implicit denials.</summary>
    private void LoadCompat(Loading rules, string file, int line, int depth)
    {
        rules.Watch(_legacyDirectory);
        if (!Directory.Exists(_legacyDirectory))
        {
            return;
        }
        List<(string Service, string Argument, string Path)> files = [];
        foreach (string path in Directory.EnumerateFileSystemEntries(_legacyDirectory))
        {
            string name = Path.GetFileName(path);
            if (name.StartsWith('.') || name.EndsWith(".rpmsave", StringComparison.Ordinal) || name.EndsWith(".rpmnew", StringComparison.Ordinal)
                || name.EndsWith(".swp", StringComparison.Ordinal) || !PolicyParser.IsName(name, allowPlus: true) || !FileType.IsRegularFile(path))
            {
                continue;
            }
            int plus = name.IndexOf('+', StringComparison.Ordinal);
            files.Add(plus < 0 ? (name, "*", path) : (name[..plus], name[plus..], path));
        }
        files.Sort(static (a, b) =>
        {
            int byService = string.CompareOrdinal(a.Service, b.Service);
            if (byService != 0)
            {
                return byService;
            }
            bool aAny = a.Argument == "*", bAny = b.Argument == "*";
            return aAny != bAny ? (aAny ? 1 : -1) : string.CompareOrdinal(a.Argument, b.Argument);
        });
        foreach ((string service, string argument, string path) in files)
        {
            if (PolicyParser.CheckServiceAndArgument(service, argument) is string invalid)
            {
                throw new PolicySyntaxException(path, 0, invalid);
            }
            LoadLegacy(path, _legacyDirectory, service, argument, rules, depth);
            if (argument != "*")
            {
                PolicyToken anyVm = new(TokenKind.AnyVm, string.Empty);
                rules.Rules.Add(new PolicyRule(service, argument, anyVm, anyVm, PolicyAction.Deny, null, null, null, true, true, file, line));
                rules.Rules.Add(new PolicyRule(service, argument, anyVm, new PolicyToken(TokenKind.AdminVm, string.Empty), PolicyAction.Deny, null, null, null, true, true, file, line));
            }
        }
    }

    private static string IncludePath(string path, string baseDirectory, PolicyDirective directive, bool isDirectory)
    {
        string resolved = Path.IsPathRooted(path) ? path : Path.Combine(baseDirectory, path);
        if (isDirectory ? !Directory.Exists(resolved) : !IsRegularFile(resolved))
        {
            throw new PolicySyntaxException(directive.File, directive.Line,
                $"{directive.Name} {path}: {(isDirectory ? "not a directory" : "not a file")}");
        }
        return resolved;
    }

    /// <summary>§1 rules 1-2: the directory's <c>.policy</c> regular files; a kept name outside <c>[0-9a-z_.-]</c> makes the policy unusable.</summary>
    private static IEnumerable<string> PolicyFilesIn(string directory, bool mustExist)
    {
        if (!Directory.Exists(directory))
        {
            if (mustExist)
            {
                throw new PolicySyntaxException(directory, 0, "not a directory");
            }
            return [];
        }
        List<string> kept = [];
        foreach (string path in Directory.EnumerateFileSystemEntries(directory))
        {
            string name = Path.GetFileName(path);
            if (name.StartsWith('.') || !name.EndsWith(Suffix, StringComparison.Ordinal) || !IsRegularFile(path))
            {
                continue;
            }
            if (!IsFileName(name))
            {
                throw new PolicySyntaxException(path, 0, "invalid policy file name: only 0-9, a-z, '_', '.' and '-' are allowed") { Notifies = true };
            }
            kept.Add(path);
        }
        return kept;
    }

    /// <summary>§1 rule 2: whether <paramref name="name"/> is made only of <c>[0-9a-z_.-]</c> (and <c>+</c> when allowed).</summary>
    public static bool IsFileName(ReadOnlySpan<char> name, bool allowPlus = false)
    {
        foreach (char c in name)
        {
            if (!(char.IsAsciiDigit(c) || char.IsAsciiLetterLower(c) || c is '_' or '.' or '-' || (allowPlus && c == '+')))
            {
                return false;
            }
        }
        return true;
    }

    /// <summary>
    /// A regular file, or a symbolic link that ends at one. A directory, a dangling link, a FIFO or a
    /// device is not: an include of one is refused and a policy directory entry of one is skipped.
    /// </summary>
    private static bool IsRegularFile(string path) => FileType.IsRegularFile(path);

    /// <summary>
    /// The lines of a policy file, split at <c>\n</c>, <c>\r\n</c> or <c>\r</c>. The text must be
    /// UTF-8: anything else makes the policy unusable. A UTF-8 byte order mark at the start is
    /// skipped (a file some editors write is read as meant).
    /// </summary>
    private static List<string> ReadLines(string path, string what)
    {
        try
        {
            using StreamReader reader = new(path, s_strictUtf8, detectEncodingFromByteOrderMarks: false);
            List<string> lines = [];
            while (reader.ReadLine() is string line)
            {
                lines.Add(lines.Count == 0 && line.StartsWith('\uFEFF') ? line[1..] : line);
            }
            return lines;
        }
        catch (DecoderFallbackException)
        {
            throw new PolicySyntaxException(path, 0, $"cannot read {what}: not UTF-8 text");
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            throw new PolicySyntaxException(path, 0, $"cannot read {what}: {e.Message}") { Notifies = true };
        }
    }

    /// <summary>The rules of one load, and where it records what it read.</summary>
    private sealed record Loading(List<PolicyRule> Rules, ICollection<string>? Watched)
    {
        public void Watch(string path) => Watched?.Add(path);
    }
}
