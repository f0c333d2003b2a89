using System;
using System.Collections.Generic;
using System.IO;
using System.Linq;
using System.Text;

namespace Qubes.Cli;

/// <summary>How a command's help and usage errors look.</summary>
public enum HelpStyle
{
    /// <summary>
    /// Python argparse's, as upstream's qvm-* tools print them: a usage line made from the options,
    /// the description, then <c>positional arguments:</c> and <c>options:</c> with the help texts in
    /// a column; a usage error prints the usage line and <c>PROG: error: MESSAGE</c>.
    /// </summary>
    Argparse,

    /// <summary>
    /// Upstream's C programs' (getopt_long): the usage line, then <c>Options:</c> with one
    /// <c>  -x, --name=VALUE - help</c> line each; a usage error prints <c>PROG: MESSAGE</c> and the whole help.
    /// </summary>
    Getopt,
}

/// <summary>A command-line usage error: the command prints its usage and the message and exits with <see cref="Command.UsageStatus"/>.</summary>
public sealed class UsageException(string message) : Exception(message);

/// <summary>
/// A command's options and arguments: what its parser recognises (<see cref="Read"/>), its usage
/// line and help text, and the handling of <c>--help</c> and usage errors (<see cref="Run"/>).
/// Texts are laid out for 80 columns, argparse's width when it has no terminal size.
/// </summary>
public sealed class Command
{
    private const int Width = 80 - 2;
    private const int MaxHelpPosition = 24;

    /// <summary>The command <paramref name="prog"/> with its options, one of which prints the help.</summary>
    public Command(string prog, HelpStyle style, params Option[] options)
    {
        ArgumentException.ThrowIfNullOrEmpty(prog);
        ArgumentNullException.ThrowIfNull(options);
        bool help = false;
        HashSet<string> names = new(StringComparer.Ordinal);
        foreach (Option option in options)
        {
            help |= option.IsHelp;
            foreach (string name in option.Names)
            {
                if (!names.Add(name))
                {
                    throw new ArgumentException($"option {name} declared twice", nameof(options));
                }
            }
        }
        if (!help)
        {
            throw new ArgumentException("a command needs a help option", nameof(options));
        }
        Prog = prog;
        Style = style;
        Options = options;
    }

    /// <summary>
    /// The name this process was started by: argv[0] as the kernel holds it, without its directory.
    /// A program that answers to several names (through links to it) reads it here: started through
    /// a link to a runtime build's launcher, the runtime's own argument list names the assembly.
    /// </summary>
    public static string InvokedName()
    {
        try
        {
            byte[] commandLine = File.ReadAllBytes("/proc/self/cmdline");
            int end = Array.IndexOf(commandLine, (byte)0);
            return Path.GetFileName(System.Text.Encoding.UTF8.GetString(commandLine, 0, end < 0 ? commandLine.Length : end));
        }
        catch (IOException)
        {
            return Path.GetFileName(Environment.GetCommandLineArgs()[0]);
        }
    }

    /// <summary>The argparse help option of upstream's qvm-* tools: <c>--help, -h</c>.</summary>
    public static Option QubesHelp => new("show this help message and exit", "--help", "-h") { IsHelp = true };

    /// <summary>Plain argparse's help option: <c>-h, --help</c>.</summary>
    public static Option ArgparseHelp => new("show this help message and exit", "-h", "--help") { IsHelp = true };

    /// <summary>The help option of upstream's C programs: <c>-h, --help</c>.</summary>
    public static Option GetoptHelp => new("display usage", "-h", "--help") { IsHelp = true };

    /// <summary>The program's name, as usage lines and errors show it.</summary>
    public string Prog { get; }

    /// <summary>How the help and usage errors look.</summary>
    public HelpStyle Style { get; }

    /// <summary>Every option the command accepts, in the order the help lists them.</summary>
    public IReadOnlyList<Option> Options { get; }

    /// <summary>What the command does, after the usage line (argparse fills it to the width).</summary>
    public string? Description { get; init; }

    /// <summary>The positional arguments, in order.</summary>
    public IReadOnlyList<Positional> Positionals { get; init; } = [];

    /// <summary>Sections after the options: subcommands and the like.</summary>
    public IReadOnlyList<HelpSection> Sections { get; init; } = [];

    /// <summary>Text at the end of the help.</summary>
    public string? Epilog { get; init; }

    /// <summary>The usage after <c>usage: </c>, when it is not the one made from the options (the program's name included; further lines indented by the caller).</summary>
    public string? Synopsis { get; init; }

    /// <summary>The exit status of a usage error.</summary>
    public int UsageStatus { get; init; } = 2;

    /// <summary>The usage, <c>usage: PROG ...</c>, without a final newline.</summary>
    public string Usage => "usage: " + (Synopsis ?? (Style == HelpStyle.Argparse ? GeneratedUsage() : GeneratedGetoptUsage()));

    /// <summary>The whole help text, ending in a newline.</summary>
    public string Help => Style == HelpStyle.Argparse ? ArgparseHelpText() : GetoptHelpText();

    /// <summary>The option called <paramref name="name"/> exactly, if the command has one.</summary>
    public Option? Find(string name)
    {
        foreach (Option option in Options)
        {
            if (Array.IndexOf(option.Names, name) >= 0)
            {
                return option;
            }
        }
        return null;
    }

    /// <summary>
    /// Runs <paramref name="body"/>, the command's work with its parsing: when the parser meets the
    /// help option the help goes to <paramref name="stdout"/> and the status is 0; a
    /// <see cref="UsageException"/> prints the usage error to <paramref name="stderr"/> and the
    /// status is <see cref="UsageStatus"/>.
    /// </summary>
    public int Run(TextWriter stdout, TextWriter stderr, Func<int> body)
    {
        ArgumentNullException.ThrowIfNull(stdout);
        ArgumentNullException.ThrowIfNull(stderr);
        ArgumentNullException.ThrowIfNull(body);
        try
        {
            return body();
        }
        catch (HelpRequestedException)
        {
            stdout.Write(Help);
            return 0;
        }
        catch (UsageException e)
        {
            WriteUsageError(stderr, e.Message);
            return UsageStatus;
        }
    }

    /// <summary>A usage error as this style prints it: argparse's usage and <c>PROG: error: MESSAGE</c>, or <c>PROG: MESSAGE</c> and the help.</summary>
    private void WriteUsageError(TextWriter stderr, string message)
    {
        if (Style == HelpStyle.Argparse)
        {
            stderr.Write($"{Usage}\n{Prog}: error: {message}\n");
            return;
        }
        if (message.Length > 0)
        {
            stderr.Write($"{Prog}: {message}\n");
        }
        stderr.Write(Help);
    }

    /// <summary>
    /// Whether <paramref name="arg"/> is an option word: a dash and more, not <c>--</c>, and with
    /// argparse not a negative number (those are operands).
    /// </summary>
    public bool IsOption(string arg)
    {
        ArgumentNullException.ThrowIfNull(arg);
        return arg.Length > 1 && arg[0] == '-' && arg != "--" && !(Style == HelpStyle.Argparse && IsNegativeNumber(arg));
    }

    /// <summary><c>-5</c>, <c>-.5</c>, <c>-1.5</c>: what argparse takes for an operand although it starts with a dash.</summary>
    private static bool IsNegativeNumber(string arg)
    {
        if (arg.Length < 2 || arg[0] != '-')
        {
            return false;
        }
        ReadOnlySpan<char> rest = arg.AsSpan(1);
        int dot = rest.IndexOf('.');
        ReadOnlySpan<char> whole = dot < 0 ? rest : rest[..dot], fraction = dot < 0 ? default : rest[(dot + 1)..];
        return !whole.ContainsAnyExceptInRange('0', '9') && !fraction.ContainsAnyExceptInRange('0', '9') && (dot < 0 ? whole.Length > 0 : fraction.Length > 0);
    }

    /// <summary>
    /// Reads the option words at the start of <paramref name="args"/>, each with its values (see
    /// <see cref="Read"/>), up to the first operand or <c>--</c> (which is passed over);
    /// <paramref name="operands"/> is the index of the first operand.
    /// </summary>
    public List<Parsed> ReadOptions(IReadOnlyList<string> args, out int operands)
    {
        ArgumentNullException.ThrowIfNull(args);
        List<Parsed> options = [];
        int i = 0;
        for (; i < args.Count; i++)
        {
            if (args[i] == "--")
            {
                i++;
                break;
            }
            if (!IsOption(args[i]))
            {
                break;
            }
            options.AddRange(Read(args, ref i));
        }
        operands = i;
        return options;
    }

    /// <summary>
    /// Reads every option word of <paramref name="args"/> wherever it stands (argparse's and GNU
    /// getopt's order), each with its values (see <see cref="Read"/>); the other words, and all
    /// after <c>--</c>, are the <paramref name="operands"/>, in order.
    /// </summary>
    public List<Parsed> ReadAll(IReadOnlyList<string> args, out List<string> operands)
    {
        ArgumentNullException.ThrowIfNull(args);
        List<Parsed> options = [];
        operands = [];
        for (int i = 0; i < args.Count; i++)
        {
            if (args[i] == "--")
            {
                operands.AddRange(args.Skip(i + 1));
                break;
            }
            if (IsOption(args[i]))
            {
                options.AddRange(Read(args, ref i));
            }
            else
            {
                operands.Add(args[i]);
            }
        }
        return options;
    }

    /// <summary>
    /// Reads the option word at <c>args[i]</c> (see <see cref="IsOption"/>) with its values, moving
    /// <paramref name="i"/> onto the last word used: long options by name or unique prefix, with
    /// <c>=VALUE</c> or the next word; short options clustered (<c>-vq</c>), a value attached or in
    /// the next word. An option the command does not have comes back with a null
    /// <see cref="Parsed.Option"/>, for the tool to report. The help option ends the parsing (see
    /// <see cref="Run"/>); a missing or unwanted value is a <see cref="UsageException"/>.
    /// </summary>
    public IReadOnlyList<Parsed> Read(IReadOnlyList<string> args, ref int i)
    {
        ArgumentNullException.ThrowIfNull(args);
        string arg = args[i];
        if (arg.StartsWith("--", StringComparison.Ordinal))
        {
            int eq = arg.IndexOf('=', StringComparison.Ordinal);
            string name = eq > 0 ? arg[..eq] : arg;
            Option? option = FindLong(name, arg);
            return option == null ? [new Parsed(null, arg, [])] : [Take(option, name, eq > 0 ? arg[(eq + 1)..] : null, args, ref i)];
        }
        List<Parsed> result = [];
        for (int c = 1; c < arg.Length; c++)
        {
            string name = "-" + arg[c];
            Option? option = Find(name);
            if (option == null)
            {
                if (c == 1)
                {
                    return [new Parsed(null, arg, [])];
                }
                throw new UsageException(Style == HelpStyle.Argparse
                    ? $"argument {result[^1].Option!.Display}: ignored explicit argument '{arg[c..]}'"
                    : $"invalid option -- '{arg[c]}'");
            }
            if (option.TakesValue)
            {
                string attached = arg[(c + 1)..];
                if (Style == HelpStyle.Argparse && attached.StartsWith('='))
                {
                    attached = attached[1..];
                }
                result.Add(Take(option, name, attached.Length > 0 ? attached : null, args, ref i));
                break;
            }
            result.Add(Take(option, name, null, args, ref i));
        }
        return result;
    }

    private Option? FindLong(string name, string arg)
    {
        if (Find(name) is Option exact)
        {
            return exact;
        }
        List<Option> matches = [];
        List<string> candidates = [];
        foreach (Option option in Options)
        {
            bool matched = false;
            foreach (string n in option.Names)
            {
                if (n.StartsWith("--", StringComparison.Ordinal) && n.StartsWith(name, StringComparison.Ordinal))
                {
                    matched = true;
                    candidates.Add(n);
                }
            }
            if (matched)
            {
                matches.Add(option);
            }
        }
        if (matches.Count > 1)
        {
            throw new UsageException(Style == HelpStyle.Argparse
                ? $"ambiguous option: {arg} could match {string.Join(", ", candidates)}"
                : $"option '{name}' is ambiguous; possibilities: {string.Join(", ", candidates)}");
        }
        return matches.Count == 1 ? matches[0] : null;
    }

    private Parsed Take(Option option, string name, string? inline, IReadOnlyList<string> args, ref int i)
    {
        bool argparse = Style == HelpStyle.Argparse;
        string text = args[i];
        switch (option.Arity)
        {
            case Arity.None:
                if (inline != null)
                {
                    throw new UsageException(argparse ? $"argument {option.Display}: ignored explicit argument '{inline}'" : $"option '{name}' doesn't allow an argument");
                }
                if (option.IsHelp)
                {
                    throw new HelpRequestedException();
                }
                return new Parsed(option, text, []);
            case Arity.Optional:
                return new Parsed(option, text, inline == null ? [] : [inline]);
            case Arity.One:
                if (inline != null)
                {
                    return new Parsed(option, text, [inline]);
                }
                if (i + 1 < args.Count && !(argparse && (IsOption(args[i + 1]) || args[i + 1] == "--")))
                {
                    return new Parsed(option, text, [args[++i]]);
                }
                throw new UsageException(argparse ? $"argument {option.Display}: expected one argument" : $"option requires an argument -- '{name.TrimStart('-')}'");
            default:
                if (inline != null)
                {
                    return new Parsed(option, text, [inline]);
                }
                List<string> values = [];
                while (i + 1 < args.Count && !IsOption(args[i + 1]) && args[i + 1] != "--")
                {
                    values.Add(args[++i]);
                }
                return values.Count > 0 ? new Parsed(option, text, values)
                    : throw new UsageException(argparse ? $"argument {option.Display}: expected at least one argument" : $"option requires an argument -- '{name.TrimStart('-')}'");
        }
    }

    // ---- argparse's layout ---------------------------------------------------------------------

    private IEnumerable<Option> Shown => Options.Where(static o => !o.Hidden);

    /// <summary>An option in an argparse usage line, without the brackets: <c>--class CLASS [CLASS ...]</c>.</summary>
    private static string UsagePart(Option o) => o.Arity switch
    {
        Arity.None => o.Name,
        Arity.One => $"{o.Name} {o.Metavar}",
        Arity.Optional => $"{o.Name} [{o.Metavar}]",
        _ => $"{o.Name} {o.Metavar} [{o.Metavar} ...]",
    };

    /// <summary>An option in an argparse help list: <c>--class, -C CLASS</c>.</summary>
    private static string Invocation(Option o) => string.Join(", ", o.Names) + o.Arity switch
    {
        Arity.None => "",
        Arity.One => " " + o.Metavar,
        Arity.Optional => $" [{o.Metavar}]",
        _ => $" {o.Metavar} [{o.Metavar} ...]",
    };

    /// <summary>argparse's usage: the options (alternatives grouped), then the positional arguments, wrapped after the program's name.</summary>
    private string GeneratedUsage()
    {
        List<string> optionParts = [];
        HashSet<string> groups = new(StringComparer.Ordinal);
        foreach (Option o in Shown)
        {
            if (o.Group == null)
            {
                optionParts.Add($"[{UsagePart(o)}]");
            }
            else if (groups.Add(o.Group))
            {
                optionParts.Add("[" + string.Join(" | ", Shown.Where(g => g.Group == o.Group).Select(UsagePart)) + "]");
            }
        }
        List<string> positionalParts = [.. Positionals.Select(static p => p.Usage)];
        string oneLine = string.Join(' ', [Prog, .. optionParts, .. positionalParts]);
        if ("usage: ".Length + oneLine.Length <= Width)
        {
            return oneLine;
        }
        string indent = new(' ', "usage: ".Length + Prog.Length + 1);
        List<string> lines = optionParts.Count > 0 ? Lines([Prog, .. optionParts], indent, first: true) : [];
        if (positionalParts.Count > 0)
        {
            lines.AddRange(optionParts.Count > 0 ? Lines(positionalParts, indent, first: false) : Lines([Prog, .. positionalParts], indent, first: true));
        }
        return string.Join('\n', lines);
    }

    /// <summary>argparse's usage wrapping: parts filled to the width, continuation lines indented.</summary>
    private static List<string> Lines(List<string> parts, string indent, bool first)
    {
        List<string> lines = [];
        List<string> line = [];
        int length = first ? "usage: ".Length - 1 : indent.Length - 1;
        foreach (string part in parts)
        {
            if (length + 1 + part.Length > Width && line.Count > 0)
            {
                lines.Add(indent + string.Join(' ', line));
                line.Clear();
                length = indent.Length - 1;
            }
            line.Add(part);
            length += part.Length + 1;
        }
        if (line.Count > 0)
        {
            lines.Add(indent + string.Join(' ', line));
        }
        if (first)
        {
            lines[0] = lines[0][indent.Length..];
        }
        return lines;
    }

    private string ArgparseHelpText()
    {
        // the column of the help texts: after the longest entry, at most 24
        IEnumerable<int> widths = Shown.Select(static o => Invocation(o).Length + 2)
            .Concat(Positionals.Select(static p => p.Name.Length + 2))
            .Concat(Sections.SelectMany(static s => s.Entries.Select(static e => e.Name.Length + 4)
                .Concat(s.Heading == null ? [] : [s.Heading.Length + 2])));
        int position = Math.Min(widths.DefaultIfEmpty(0).Max() + 2, MaxHelpPosition);
        List<string> blocks = [Usage];
        if (Description != null)
        {
            blocks.Add(string.Join('\n', Wrap(Description, Width)));
        }
        if (Positionals.Count > 0)
        {
            blocks.Add("positional arguments:\n" + string.Concat(Positionals.Select(p => Entry(p.Name, p.Help, 2, position))));
        }
        foreach (IGrouping<string?, Option> section in Shown.GroupBy(static o => o.Section))
        {
            blocks.Add($"{section.Key ?? "options"}:\n" + string.Concat(section.Select(o => Entry(Invocation(o), o.Help, 2, position))));
        }
        foreach (HelpSection section in Sections)
        {
            StringBuilder text = new($"{section.Title}:\n");
            if (section.Description != null)
            {
                text.Append($"  {section.Description}\n\n");
            }
            if (section.Heading != null)
            {
                text.Append(Entry(section.Heading, null, 2, position));
            }
            foreach (HelpEntry entry in section.Entries)
            {
                text.Append(Entry(entry.Name, entry.Help, section.Heading == null ? 2 : 4, position));
            }
            blocks.Add(text.ToString());
        }
        if (Epilog != null)
        {
            blocks.Add(Epilog);
        }
        return string.Join("\n\n", blocks.Select(static b => b.TrimEnd('\n'))) + "\n";
    }

    /// <summary>One argparse help entry: the name, then the help text from the column, wrapped; a name too wide puts the text on the next line.</summary>
    private static string Entry(string name, string? help, int indent, int position)
    {
        string head = new string(' ', indent) + name;
        if (help == null)
        {
            return head + "\n";
        }
        List<string> lines = Wrap(help, Math.Max(Width - position, 11));
        StringBuilder text = new();
        if (head.Length + 2 <= position)
        {
            text.Append(head.PadRight(position)).Append(lines[0]).Append('\n');
        }
        else
        {
            text.Append(head).Append('\n').Append(new string(' ', position)).Append(lines[0]).Append('\n');
        }
        foreach (string line in lines.Skip(1))
        {
            text.Append(new string(' ', position)).Append(line).Append('\n');
        }
        return text.ToString();
    }

    /// <summary>The words of <paramref name="text"/> filled to <paramref name="width"/> columns.</summary>
    private static List<string> Wrap(string text, int width)
    {
        List<string> lines = [];
        StringBuilder line = new();
        foreach (string word in text.Split((char[]?)null, StringSplitOptions.RemoveEmptyEntries))
        {
            if (line.Length > 0 && line.Length + 1 + word.Length > width)
            {
                lines.Add(line.ToString());
                line.Clear();
            }
            line.Append(line.Length > 0 ? " " : "").Append(word);
        }
        lines.Add(line.ToString());
        return lines;
    }

    // ---- getopt programs' layout ---------------------------------------------------------------

    /// <summary>An option as upstream's C usage texts show it: <c>-p PREFIX-DATA, --prefix-data=PREFIX-DATA</c>.</summary>
    private static string GetoptInvocation(Option o) => string.Join(", ", o.Names.Select(n => o.Arity switch
    {
        Arity.None => n,
        Arity.Optional => n + $"[={o.Metavar}]",
        _ => n.StartsWith("--", StringComparison.Ordinal) ? $"{n}={o.Metavar}" : $"{n} {o.Metavar}",
    }));

    private string GetoptHelpText()
    {
        StringBuilder text = new($"{Usage}\n");
        if (Description != null)
        {
            text.Append(Description.TrimEnd('\n')).Append('\n');
        }
        text.Append("Options:\n");
        foreach (Option o in Shown)
        {
            text.Append($"  {GetoptInvocation(o)} - {o.Help}\n");
        }
        if (Epilog != null)
        {
            text.Append(Epilog.TrimEnd('\n')).Append('\n');
        }
        return text.ToString();
    }

    private string GeneratedGetoptUsage() => Prog + " [options]" + string.Concat(Positionals.Select(static p => " " + p.Usage));

    private sealed class HelpRequestedException : Exception;
}

/// <summary>An option read from the command line, with its values; a null <see cref="Option"/> is one the command does not have.</summary>
/// <param name="Option">The option.</param>
/// <param name="Text">The word it was read from.</param>
/// <param name="Values">Its values, in order.</param>
public readonly record struct Parsed(Option? Option, string Text, IReadOnlyList<string> Values)
{
    /// <summary>The (last) value, or null.</summary>
    public string? Value => Values.Count > 0 ? Values[^1] : null;
}
