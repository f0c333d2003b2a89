using System;
using System.Collections.Generic;
using System.IO;
using System.Linq;
using System.Text;

namespace Qubes.Core.Api;

/// <summary>A command-line usage error: the tool prints its usage line and <c>PROG: error: MESSAGE</c> and exits 2.</summary>
internal sealed class UsageException(string message) : Exception(message);

/// <summary>Text layout shared by the qvm-* tools (spec core-stack §10.1).</summary>
internal static class ToolText
{
    /// <summary>
    /// Runs a tool's body with the common error handling (spec §10.1): a usage error prints
    /// <paramref name="usage"/> and <c>PROG: error: MESSAGE</c> and exits 2; an error from qubesd
    /// prints <c>PROG: error: MESSAGE</c> and exits 1.
    /// </summary>
    public static int Run(string prog, string usage, TextWriter stderr, Func<int> body)
    {
        try
        {
            return body();
        }
        catch (UsageException e)
        {
            stderr.WriteLine(usage);
            stderr.WriteLine($"{prog}: error: {e.Message}");
            return 2;
        }
        catch (QubesException e)
        {
            stderr.WriteLine($"{prog}: error: {e.Message}");
            return 1;
        }
    }

    /// <summary>Rows aligned like <c>column -t</c>: each column padded to its widest cell, two spaces between, the last not padded.</summary>
    public static void Table(TextWriter output, IEnumerable<string[]> rows)
    {
        List<string[]> list = [.. rows];
        if (list.Count == 0)
        {
            return;
        }
        int[] widths = new int[list.Max(static r => r.Length)];
        foreach (string[] row in list)
        {
            for (int c = 0; c < row.Length; c++)
            {
                widths[c] = Math.Max(widths[c], row[c].Length);
            }
        }
        foreach (string[] row in list)
        {
            StringBuilder line = new();
            for (int c = 0; c < row.Length; c++)
            {
                line.Append(c < row.Length - 1 ? row[c].PadRight(widths[c]) + "  " : row[c]);
            }
            output.WriteLine(line.ToString());
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
