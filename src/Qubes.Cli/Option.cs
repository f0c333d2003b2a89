using System;
using System.Linq;

namespace Qubes.Cli;

/// <summary>How many values an option takes.</summary>
public enum Arity
{
    /// <summary>A flag: no value.</summary>
    None,

    /// <summary>One value: <c>--name=VALUE</c>, <c>--name VALUE</c>, <c>-n VALUE</c> or <c>-nVALUE</c>.</summary>
    One,

    /// <summary>A value only in the <c>--name=VALUE</c> form; <c>--name</c> alone has none.</summary>
    Optional,

    /// <summary>One or more values: the words up to the next option, or one <c>--name=VALUE</c> (argparse's <c>nargs='+'</c>).</summary>
    OneOrMore,
}

/// <summary>
/// An option of a command: its names (the first is the one usage lines show), its help text, and
/// the name of its value when it takes one. The parser recognises only the options declared, so
/// every option a tool accepts has a help text.
/// </summary>
public sealed class Option
{
    /// <summary>An option called <paramref name="names"/>, explained by <paramref name="help"/>.</summary>
    public Option(string help, params string[] names)
    {
        ArgumentException.ThrowIfNullOrWhiteSpace(help);
        ArgumentNullException.ThrowIfNull(names);
        if (names.Length == 0 || names.Any(static n => n.Length < 2 || n[0] != '-' || (n[1] != '-' && n.Length != 2)))
        {
            throw new ArgumentException("an option needs names of the form -x or --name", nameof(names));
        }
        Help = help;
        Names = names;
    }

    /// <summary>The names, as given: <c>-x</c> or <c>--name</c>.</summary>
    public string[] Names { get; }

    /// <summary>The name usage lines show, and the one tools compare against.</summary>
    public string Name => Names[0];

    /// <summary>What the option does, one sentence or two.</summary>
    public string Help { get; }

    /// <summary>The name of the value in help texts; an option with a metavar and no <see cref="Arity"/> takes one value.</summary>
    public string? Metavar { get; init; }

    /// <summary>How many values the option takes.</summary>
    public Arity Arity
    {
        get => _arity ?? (Metavar == null ? Arity.None : Arity.One);
        init => _arity = value;
    }

    private readonly Arity? _arity;

    /// <summary>Accepted but left out of the help text (argparse's <c>SUPPRESS</c>): compatibility and internal options.</summary>
    public bool Hidden { get; init; }

    /// <summary>Options sharing a group name are alternatives, shown as <c>[a | b]</c> in an argparse usage line.</summary>
    public string? Group { get; init; }

    /// <summary>The title of the help section the option is listed in; null for the main one.</summary>
    public string? Section { get; init; }

    /// <summary>Prints the command's help and ends it.</summary>
    public bool IsHelp { get; init; }

    /// <summary>Whether the option takes a value.</summary>
    public bool TakesValue => Arity != Arity.None;

    /// <summary>How argparse names the option in an error: all its names joined by <c>/</c>.</summary>
    public string Display => string.Join('/', Names);
}

/// <summary>A positional argument, for the usage line and the help text.</summary>
/// <param name="Usage">How the usage line shows it: <c>VMNAME</c>, <c>[VALUE]</c>, <c>[VMNAME ...]</c>.</param>
/// <param name="Name">The name the help text lists it under.</param>
/// <param name="Help">What it is; null lists the name alone.</param>
public sealed record Positional(string Usage, string Name, string? Help = null);

/// <summary>One line of a help section that is not an option: a subcommand and what it does.</summary>
public sealed record HelpEntry(string Name, string Help);

/// <summary>A help section of entries other than options and positional arguments (argparse's subcommands).</summary>
public sealed record HelpSection(string Title, string? Description, string? Heading, HelpEntry[] Entries);
