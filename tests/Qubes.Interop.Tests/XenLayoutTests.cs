using System;
using System.Collections.Generic;
using System.Diagnostics;
using System.Globalization;
using System.IO;
using Qubes.Interop.Xen;
using Xunit;
using Qubes.Tests;

namespace Qubes.Interop.Tests;

/// <summary>Every Xen struct size, field offset and ioctl number declared in C# equals the real header's.</summary>
public class XenLayoutTests
{

    private static string Run(string file, params string[] args)
    {
        var psi = new ProcessStartInfo(file) { RedirectStandardOutput = true, RedirectStandardError = true };
        foreach (string a in args)
        {
            psi.ArgumentList.Add(a);
        }
        using Process p = Process.Start(psi)!;
        string output = p.StandardOutput.ReadToEnd();
        string errors = p.StandardError.ReadToEnd();
        p.WaitForExit();
        Assert.True(p.ExitCode == 0, $"{file} failed ({p.ExitCode}): {errors}");
        return output;
    }

    [Fact]
    public void Csharp_declarations_match_the_xen_headers()
    {
        string source = TestRepository.File("native/xen-layout.c");
        string binary = Path.Combine(Path.GetTempPath(), $"xen-layout-{Environment.ProcessId}");
        Run("gcc", "-D__XEN_TOOLS__", "-O0", "-Wall", "-Werror", source, "-o", binary);
        string output;
        try
        {
            output = Run(binary);
        }
        finally
        {
            File.Delete(binary);
        }

        IReadOnlyDictionary<string, ulong> declared = XenLayout.Values();
        var seen = new HashSet<string>();
        foreach (string line in output.Split('\n', StringSplitOptions.RemoveEmptyEntries))
        {
            int space = line.LastIndexOf(' ');
            string name = line[..space];
            ulong headerValue = ulong.Parse(line[(space + 1)..], CultureInfo.InvariantCulture);
            Assert.True(declared.TryGetValue(name, out ulong csharpValue), $"C# does not declare {name}");
            Assert.True(headerValue == csharpValue, $"{name}: header {headerValue}, C# {csharpValue}");
            seen.Add(name);
        }
        foreach (string name in declared.Keys)
        {
            Assert.True(seen.Contains(name), $"the C check does not print {name}");
        }
        Assert.True(seen.Count >= 60, $"only {seen.Count} values compared");
    }
}
