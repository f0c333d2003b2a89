using System;
using System.Collections.Generic;
using System.IO;
using System.Linq;
using Qubes.Cli;
using Qubes.Interop.Linux;
using Qubes.Qrexec.Policy;

namespace Qubes.Tools.QubesPolicy;

/// <summary>
/// qubes-policy: look at and change the qrexec policy.
///   qubes-policy [-i] --list | -l                      the policy files (names without .policy)
///   qubes-policy [-i] --get | -g NAME                  print a policy file
///   qubes-policy [-i] --replace | -r NAME              replace a policy file with standard input, if it is valid
///   qubes-policy [-i] --remove | -d NAME               remove a policy file
///   qubes-policy --show                                the effective rules, in order, with where each is written
///   qubes-policy --lint [FILE...]                      check files (or the whole policy) and report every error
///   qubes-policy --eval SOURCE TARGET SERVICE+ARG      how the policy decides a call, and why
/// -i / --include works on the include/ directory instead. Path options as for the other policy
/// tools. Exit status: 0 done, 1 not valid / not found / denied, 2 bad usage.
/// </summary>
internal static class Program
{
    /// <summary>The command line.</summary>
    internal static Command Command { get; } = new("qubes-policy", HelpStyle.Argparse,
    [
        Command.ArgparseHelp,
        new Option("list present policy files", "-l", "--list"),
        new Option("print the content of the policy file NAME", "-g", "--get"),
        new Option("replace the policy file NAME with the one provided on standard input, if it is valid", "-r", "--replace"),
        new Option("remove the policy file NAME", "-d", "--remove"),
        new Option("with --list, --get, --replace and --remove: work on the include/ directory", "-i", "--include"),
        new Option("print the effective rules, in order, with where each is written", "--show"),
        new Option("check the FILEs (or the whole policy) and report every error", "--lint"),
        new Option("tell how the policy decides the call SOURCE TARGET SERVICE+ARG, and why", "--eval"),
        .. PolicyPaths.Options,
    ])
    {
        Synopsis = "qubes-policy [-i] (--list | --get NAME | --replace NAME | --remove NAME)\n"
            + "       qubes-policy --show | --lint [FILE...] | --eval SOURCE TARGET SERVICE+ARG",
        Description = "Look at and change the qrexec policy. Exit status: 0 done, 1 not valid, not found or denied, 2 bad usage.",
        Positionals = [new("ARG", "ARG", "the policy file's NAME, the FILEs to check, or the call to evaluate")],
    };

    private const string Suffix = ".policy";

    internal static int Main(string[] args) => Command.Run(Console.Out, Console.Error, () => Run(args));

    private static int Run(string[] args)
    {
        PolicyPaths paths = new();
        bool include = false;
        string? command = null;
        List<string> operands = [];
        for (int i = 0; i < args.Length; i++)
        {
            if (!Command.IsOption(args[i]))
            {
                operands.Add(args[i]);
                continue;
            }
            foreach (Parsed parsed in Command.Read(args, ref i))
            {
                if (paths.Take(parsed))
                {
                    continue;
                }
                string? named = parsed.Option?.Name switch
                {
                    "-l" => "list",
                    "-g" => "get",
                    "-r" => "replace",
                    "-d" => "remove",
                    "--show" => "show",
                    "--lint" => "lint",
                    "--eval" => "eval",
                    _ => null,
                };
                if (named != null)
                {
                    command = command == null ? named : throw new UsageException($"{parsed.Text}: only one command at a time");
                }
                else if (parsed.Option?.Name == "-i")
                {
                    include = true;
                }
                else
                {
                    throw new UsageException($"unrecognized arguments: {parsed.Text}");
                }
            }
        }
        int expected = command switch
        {
            "get" or "replace" or "remove" => 1,
            "eval" => 3,
            "lint" => -1,
            null => throw new UsageException("no command given"),
            _ => 0,
        };
        if (expected >= 0 && operands.Count != expected)
        {
            throw new UsageException($"--{command} takes {expected} argument{(expected == 1 ? "" : "s")}");
        }
        if (include && command is "show" or "lint" or "eval")
        {
            throw new UsageException($"--include does not apply to --{command}");
        }

        string directory = include ? Path.Combine(paths.PolicyDirectory, "include") : paths.PolicyDirectory;
        try
        {
            return command switch
            {
                "list" => List(directory, include),
                "get" => Get(FileOf(directory, operands[0], include)),
                "replace" => Replace(paths, FileOf(directory, operands[0], include), include),
                "remove" => Remove(FileOf(directory, operands[0], include)),
                "show" => Show(paths),
                "lint" => Lint(paths, operands),
                _ => Eval(paths, operands[0], operands[1], operands[2]),
            };
        }
        catch (ArgumentException e)
        {
            Console.Error.WriteLine($"qubes-policy: {e.Message}");
            return 2;
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            Console.Error.WriteLine($"qubes-policy: {e.Message}");
            return 1;
        }
    }

    /// <summary>A policy file's path from its name; include files have any valid name, top-level ones get the suffix.</summary>
    private static string FileOf(string directory, string name, bool include)
    {
        // a top-level file follows the policy directory's name rule; an include file may also hold '+'
        if (name.Length == 0 || name[0] == '.' || !PolicyLoader.IsFileName(name, allowPlus: include))
        {
            throw new ArgumentException($"invalid policy name '{name}'");
        }
        return Path.Combine(directory, include ? name : name + Suffix);
    }

    private static int List(string directory, bool include)
    {
        if (!Directory.Exists(directory))
        {
            return 0;
        }
        IEnumerable<string> names = Directory.EnumerateFiles(directory).Select(Path.GetFileName).OfType<string>()
            .Where(n => !n.StartsWith('.') && (include || n.EndsWith(Suffix, StringComparison.Ordinal)))
            .Select(n => include ? n : n[..^Suffix.Length])
            .Order(StringComparer.Ordinal);
        foreach (string name in names)
        {
            Console.WriteLine(name);
        }
        return 0;
    }

    private static int Get(string path)
    {
        if (!File.Exists(path))
        {
            Console.Error.WriteLine($"qubes-policy: {path}: no such policy file");
            return 1;
        }
        using Stream stdout = Console.OpenStandardOutput();
        stdout.Write(File.ReadAllBytes(path));
        return 0;
    }

    /// <summary>Checks the new text, then writes it atomically: a temporary file, fsync, rename, fsync of the directory.</summary>
    private static int Replace(PolicyPaths paths, string path, bool include)
    {
        string text = Console.In.ReadToEnd();
        try
        {
            // An include file may be a legacy-format file for !include-service: it is stored as given.
            if (!include)
            {
                paths.Loader().LoadText(text, path);
            }
        }
        catch (PolicySyntaxException e)
        {
            Console.Error.WriteLine($"qubes-policy: not replaced: {e.Message}");
            return 1;
        }
        string directory = Path.GetDirectoryName(path)!;
        Directory.CreateDirectory(directory);
        DurableFile.Replace(path, Path.Combine(directory, $".{Path.GetFileName(path)}.{Environment.ProcessId}.tmp"), global::System.Text.Encoding.UTF8.GetBytes(text));
        return 0;
    }

    private static int Remove(string path)
    {
        if (!File.Exists(path))
        {
            Console.Error.WriteLine($"qubes-policy: {path}: no such policy file");
            return 1;
        }
        DurableFile.Delete(path);
        return 0;
    }

    private static int Show(PolicyPaths paths)
    {
        IReadOnlyList<PolicyRule> rules;
        try
        {
            rules = paths.Loader().Load();
        }
        catch (PolicySyntaxException e)
        {
            Console.Error.WriteLine($"qubes-policy: policy unusable, every call is denied: {e.Message}");
            return 1;
        }
        foreach (PolicyRule rule in rules)
        {
            Console.WriteLine($"{rule}    # {rule.File}:{rule.Line}");
        }
        return 0;
    }

    /// <summary>
    /// Checks each file on its own, with what it includes, so that every broken file is named; with
    /// no files, every file of the policy and then the policy as a whole (which also fails on a bad
    /// file name in the policy directories).
    /// </summary>
    private static int Lint(PolicyPaths paths, List<string> files)
    {
        PolicyLoader loader = paths.Loader();
        bool whole = files.Count == 0;
        int errors = 0, rules = 0;
        try
        {
            if (whole)
            {
                files.AddRange(loader.Files());
            }
        }
        catch (PolicySyntaxException e)
        {
            Console.WriteLine(e.Message);
            errors++;
        }
        foreach (string file in files)
        {
            try
            {
                rules += loader.LoadText(File.ReadAllText(file), file).Count;
            }
            catch (PolicySyntaxException e)
            {
                Console.WriteLine(e.Message);
                errors++;
            }
            catch (Exception e) when (e is IOException or UnauthorizedAccessException)
            {
                Console.WriteLine($"{file}: {e.Message}");
                errors++;
            }
        }
        Console.Error.WriteLine(errors == 0
            ? $"qubes-policy: {files.Count} files, {rules} rules: no errors"
            : $"qubes-policy: {errors} error{(errors == 1 ? "" : "s")} in {files.Count} files");
        return errors == 0 ? 0 : 1;
    }

    private static int Eval(PolicyPaths paths, string source, string target, string serviceAndArg)
    {
        PolicyEngine engine = paths.Host().Current;
        PolicyResult result = engine.Evaluate(serviceAndArg, source, target);
        Console.WriteLine(engine.Explain(result));
        if (result.Resolution == Resolution.Ask)
        {
            IReadOnlyList<string> choices = engine.AskChoices(result);
            string? preselected = engine.AskDefault(result, choices);
            Console.WriteLine(choices.Count == 0 ? "no target to offer: denied" : "offers: " + string.Join(' ', choices.Select(c => c == preselected ? c + "*" : c)));
            return choices.Count == 0 ? 1 : 0;
        }
        Console.WriteLine(engine.FormatAnswer(result));
        return result.IsAllowed ? 0 : 1;
    }
}
