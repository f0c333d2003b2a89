using System;
using System.Collections.Generic;
using System.IO;
using System.Linq;
using Qubes.Cli;
using Xunit;

namespace Qubes.Tools.Tests;

/// <summary>The shared parser and help layout (<see cref="Command"/>).</summary>
public sealed class CommandTests
{
    private static readonly Command s_argparse = new("tool", HelpStyle.Argparse,
        new Option("increase verbosity", "--verbose", "-v"),
        new Option("decrease verbosity", "--quiet", "-q"),
        Command.QubesHelp,
        new Option("the class", "--class", "-C") { Metavar = "CLS" },
        new Option("the classes", "--classes") { Metavar = "CLASS", Arity = Arity.OneOrMore },
        new Option("a disposable", "--dispvm") { Metavar = "TEMPLATE", Arity = Arity.Optional },
        new Option("one pool", "-P") { Metavar = "POOL", Group = "pool" },
        new Option("a volume's pool", "-p", "--pool") { Metavar = "VOLUME=POOL", Group = "pool" },
        new Option("internal", "--internal") { Hidden = true })
    {
        Description = "do a thing",
        Positionals = [new("VMNAME", "VMNAME"), new("[VALUE]", "VALUE", "new value")],
    };

    private static readonly Command s_getopt = new("prog", HelpStyle.Getopt,
        Command.GetoptHelp,
        new Option("target", "-d") { Metavar = "domain" },
        new Option("socket directory", "--socket-dir") { Metavar = "PATH" },
        new Option("prefix", "-p", "--prefix-data") { Metavar = "DATA" },
        new Option("filter", "-t"))
    {
        UsageStatus = 1,
    };

    private static List<(string? Name, string? Value)> Read(Command command, params string[] args)
    {
        List<(string?, string?)> read = [];
        for (int i = 0; i < args.Length; i++)
        {
            read.AddRange(command.IsOption(args[i]) ? command.Read(args, ref i).Select(static p => (p.Option?.Name, (string?)(p.Value ?? p.Text))) : [(null, (string?)("operand " + args[i]))]);
        }
        return read;
    }

    private static (int Status, string Stdout, string Stderr) Run(Command command, params string[] args)
    {
        StringWriter stdout = new(), stderr = new();
        int status = command.Run(stdout, stderr, () =>
        {
            Read(command, args);
            return 0;
        });
        return (status, stdout.ToString(), stderr.ToString());
    }

    [Fact]
    public void Argparse_reads_prefixes_clusters_values_and_negative_numbers()
    {
        Assert.Equal([("--verbose", "-vq"), ("--quiet", "-vq"), ("--quiet", "--qui"), ("--class", "X"), ("--class", "Y"), ("--class", "Z"), ("-P", "p")],
            Read(s_argparse, "-vq", "--qui", "--class=X", "-C", "Y", "-CZ", "-P=p"));
        Assert.Equal([("--classes", "b"), ("--dispvm", "--dispvm"), ("--dispvm", "t"), (null, "operand -5"), (null, "--bogus")],
            Read(s_argparse, "--classes", "a", "b", "--dispvm", "--dispvm=t", "-5", "--bogus"));
        Assert.Equal(["a", "b"], s_argparse.Read(["--classes", "a", "b", "-v"], ref Zero()).Single().Values);
    }

    private static int s_zero;

    private static ref int Zero()
    {
        s_zero = 0;
        return ref s_zero;
    }

    [Theory]
    [InlineData("argument --class/-C: expected one argument", "--class")]
    [InlineData("argument --class/-C: expected one argument", "-C", "-v")]
    [InlineData("argument --classes: expected at least one argument", "--classes", "--", "x")]
    [InlineData("argument --verbose/-v: ignored explicit argument 'x'", "-vx")]
    [InlineData("argument --verbose/-v: ignored explicit argument 'x'", "--verbose=x")]
    [InlineData("ambiguous option: --c could match --class, --classes", "--c")]
    public void Argparse_usage_errors(string message, params string[] args)
    {
        (int status, string stdout, string stderr) = Run(s_argparse, args);
        Assert.Equal((2, ""), (status, stdout));
        Assert.Equal($"{s_argparse.Usage}\ntool: error: {message}\n", stderr);
    }

    [Fact]
    public void Argparse_help_is_laid_out_as_argparse_does()
    {
        Assert.Equal((0, s_argparse.Help, ""), Run(s_argparse, "-v", "--he", "--bogus"));
        Assert.Equal("""
            usage: tool [--verbose] [--quiet] [--help] [--class CLS]
                        [--classes CLASS [CLASS ...]] [--dispvm [TEMPLATE]]
                        [-P POOL | -p VOLUME=POOL]
                        VMNAME [VALUE]

            do a thing

            positional arguments:
              VMNAME
              VALUE                 new value

            options:
              --verbose, -v         increase verbosity
              --quiet, -q           decrease verbosity
              --help, -h            show this help message and exit
              --class, -C CLS       the class
              --classes CLASS [CLASS ...]
                                    the classes
              --dispvm [TEMPLATE]   a disposable
              -P POOL               one pool
              -p, --pool VOLUME=POOL
                                    a volume's pool

            """, s_argparse.Help);
    }

    [Fact]
    public void Getopt_reads_attached_values_and_any_next_word()
    {
        Assert.Equal([("-d", "work"), ("-d", "-x"), ("--socket-dir", "/s"), ("--socket-dir", "/t"), ("-p", "x"), ("-t", "-tpy"), ("-p", "y")],
            Read(s_getopt, "-dwork", "-d", "-x", "--socket-dir=/s", "--socket", "/t", "--prefix-data", "x", "-tpy"));
        Assert.Equal((1, "", "prog: option requires an argument -- 'd'\n" + s_getopt.Help), Run(s_getopt, "-d"));
        Assert.Equal((1, "", "prog: invalid option -- 'x'\n" + s_getopt.Help), Run(s_getopt, "-tx"));
    }

    [Fact]
    public void Getopt_help_is_upstreams_usage_text()
    {
        Assert.Equal((0, s_getopt.Help, ""), Run(s_getopt, "-h"));
        Assert.Equal("""
            usage: prog [options]
            Options:
              -h, --help - display usage
              -d domain - target
              --socket-dir=PATH - socket directory
              -p DATA, --prefix-data=DATA - prefix
              -t - filter

            """, s_getopt.Help);
    }

    [Fact]
    public void A_command_needs_a_help_option_and_distinct_names()
    {
        Assert.Throws<ArgumentException>(() => new Command("x", HelpStyle.Argparse, new Option("a", "--a")));
        Assert.Throws<ArgumentException>(() => new Command("x", HelpStyle.Argparse, Command.QubesHelp, new Option("a", "-h")));
        Assert.Throws<ArgumentException>(() => new Option(" ", "--a"));
        Assert.Throws<ArgumentException>(() => new Option("a", "-ab"));
    }
}
