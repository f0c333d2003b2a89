using System;
using System.Collections.Generic;
using System.IO;
using System.Text;
using Qubes.Cli;

namespace Qubes.Core.Api;

/// <summary>Text layout and the command line shared by the qvm-* tools (spec core-stack §10.1).</summary>
public static class ToolText
{
    /// <summary>
    /// The options of upstream's <c>QubesArgumentParser</c>, which every qvm-* tool has, then
    /// <paramref name="specific"/>: <c>--force-root</c> is accepted and not listed, as upstream.
    /// </summary>
    public static Option[] QubesOptions(params Option[] specific) =>
    [
        new("increase verbosity", "--verbose", "-v"),
        new("decrease verbosity", "--quiet", "-q"),
        new("force running the tool even if called as root", "--force-root") { Hidden = true },
        Command.QubesHelp,
        .. specific,
    ];

    /// <summary>
    /// Runs a tool's body with the common handling (spec §10.1): <c>--help</c> prints the help and
    /// exits 0; a usage error prints the usage line and <c>PROG: error: MESSAGE</c> and exits 2; an
    /// error from qubesd prints <c>PROG: error: MESSAGE</c> and exits 1.
    /// </summary>
    public static int Run(Command command, TextWriter stdout, TextWriter stderr, Func<int> body) => command.Run(stdout, stderr, () =>
    {
        try
        {
            return body();
        }
        catch (QubesException e)
        {
            stderr.WriteLine($"{command.Prog}: error: {e.Message}");
            return 1;
        }
    });

    /// <summary>Rows aligned like <c>column -t</c>: each column padded to its widest cell, two spaces between, the last not padded.</summary>
    public static void Table(TextWriter output, IReadOnlyList<string[]> rows)
    {
        int[] widths = [];
        foreach (string[] row in rows)
        {
            if (row.Length > widths.Length)
            {
                Array.Resize(ref widths, row.Length);
            }
            for (int c = 0; c < row.Length; c++)
            {
                widths[c] = Math.Max(widths[c], row[c].Length);
            }
        }
        StringBuilder line = new();
        foreach (string[] row in rows)
        {
            line.Clear();
            for (int c = 0; c < row.Length; c++)
            {
                if (c < row.Length - 1)
                {
                    line.Append(row[c]).Append(' ', widths[c] - row[c].Length + 2);
                }
                else
                {
                    line.Append(row[c]);
                }
            }
            output.WriteLine(line);
        }
    }

    /// <summary>The head, then the words filled to <paramref name="width"/> columns, continuation lines indented.</summary>
    public static string Wrap(string head, string[] words, int width, string indent)
    {
        List<string> lines = [];
        string line = head;
        foreach (string word in words)
        {
            if (line.Length + 1 + word.Length > width && line.Trim().Length > 0 && line != head)
            {
                lines.Add(line);
                line = indent + word;
            }
            else
            {
                line = line + " " + word;
            }
        }
        lines.Add(line);
        return string.Join('\n', lines);
    }
}
