using System;
using System.Collections.Generic;
using System.IO;
using Qubes.Cli;
using Qubes.Updates;

namespace Qubes.Tools.Rpmcanon;

/// <summary>
/// rpmcanon [--allow-old-pkgs] [--directory] -- SOURCE DESTINATION: the package SOURCE, read
/// strictly, written to DESTINATION in canonical form (<see cref="RpmCanonicalizer"/>); with
/// --directory every regular file of the directory SOURCE into the existing directory DESTINATION.
/// Exit status 0 when every package was written, else 1.
/// </summary>
internal static class Program
{
    internal static Command Command { get; } = new("rpmcanon", HelpStyle.Getopt,
        new Option("print this message", "--help") { IsHelp = true },
        new Option("allow packages that have no payload digest in the main header, keeping their header-and-payload signatures", "--allow-old-pkgs"),
        new Option("copy the packages in the directory SOURCE to the directory DESTINATION; both must exist", "--directory"))
    {
        Synopsis = "rpmcanon [OPTIONS] -- SOURCE DESTINATION",
        UsageStatus = 1,
    };

    public static int Main(string[] args)
        => Command.Run(Console.Out, Console.Error, () =>
        {
            bool allowOld = false, directory = false;
            int i = 0;
            // upstream's form: options, then "--", then the two operands
            for (; i < args.Length && args[i] != "--"; i++)
            {
                switch (args[i])
                {
                    case "--allow-old-pkgs":
                        allowOld = true;
                        break;
                    case "--directory":
                        directory = true;
                        break;
                    default:
                        int at = i;
                        foreach (Parsed parsed in Command.Read(args, ref at))
                        {
                            throw new UsageException($"unrecognized option '{parsed.Text}'");
                        }
                        break;
                }
            }
            if (args.Length - i != 3)
            {
                throw new UsageException(string.Empty);
            }
            RpmCanonicalizer canonicalizer = new(allowOld);
            return directory ? CanonicalizeDirectory(canonicalizer, args[i + 1], args[i + 2]) : Canonicalize(canonicalizer, args[i + 1], args[i + 2]);
        });

    private static int Canonicalize(RpmCanonicalizer canonicalizer, string source, string destination)
    {
        RpmCanonResult result = canonicalizer.Canonicalize(source, destination);
        if (!result.Success)
        {
            Console.Error.WriteLine($"Error canonicalizing file: {source}: {result.Error}");
            return 1;
        }
        return 0;
    }

    private static int CanonicalizeDirectory(RpmCanonicalizer canonicalizer, string source, string destination)
    {
        List<string> names = [];
        try
        {
            foreach (string entry in Directory.EnumerateFiles(source))
            {
                names.Add(Path.GetFileName(entry));
            }
        }
        catch (IOException e)
        {
            Console.Error.WriteLine($"Error canonicalizing directory: {e.Message}");
            return 1;
        }
        int status = 0;
        foreach (string name in names)
        {
            status |= Canonicalize(canonicalizer, Path.Combine(source, name), Path.Combine(destination, name));
        }
        return status;
    }
}
