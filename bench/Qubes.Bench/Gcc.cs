using System;
using System.Diagnostics;

namespace Qubes.Bench;

/// <summary>The benchmarks' C helpers, compiled when a benchmark starts.</summary>
internal static class Gcc
{
    public static void Compile(string source, string output, params string[] options)
    {
        ProcessStartInfo gcc = new("gcc") { UseShellExecute = false };
        foreach (string a in (string[])["-std=gnu11", "-O2", "-Wall", "-Wextra", "-Werror", .. options, source, "-o", output])
        {
            gcc.ArgumentList.Add(a);
        }
        using Process p = Process.Start(gcc)!;
        p.WaitForExit();
        if (p.ExitCode != 0)
        {
            throw new InvalidOperationException($"gcc could not compile {source}");
        }
    }
}
