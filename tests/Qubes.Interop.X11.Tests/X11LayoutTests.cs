using System;
using System.Collections.Generic;
using System.Diagnostics;
using System.Globalization;
using System.IO;
using System.Reflection;
using System.Runtime.InteropServices;
using Xunit;
using Qubes.Tests;

namespace Qubes.Interop.X11.Tests;

/// <summary>Every X11 struct size, field offset and constant declared in C# equals the real header's.</summary>
public class X11LayoutTests
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
    public void Csharp_declarations_match_the_x11_headers()
    {
        string source = TestRepository.File("native/x11-layout.c");
        string binary = Path.Combine(Path.GetTempPath(), $"x11-layout-{Environment.ProcessId}");
        Run("gcc", "-O0", "-Wall", "-Werror", source, "-o", binary);
        string output;
        try
        {
            output = Run(binary);
        }
        finally
        {
            File.Delete(binary);
        }

        IReadOnlyDictionary<string, ulong> declared = X11Layout.Values();
        var seen = new HashSet<string>();
        foreach (string line in output.Split('\n', StringSplitOptions.RemoveEmptyEntries))
        {
            int space = line.LastIndexOf(' ');
            string name = line[..space];
            ulong headerValue = ulong.Parse(line[(space + 1)..], CultureInfo.InvariantCulture);
            Assert.True(declared.TryGetValue(name, out ulong csharpValue), $"C# does not declare {name}");
            Assert.True(headerValue == csharpValue, $"{name}: header {headerValue}, C# {csharpValue}");
            Assert.True(seen.Add(name), $"the C check prints {name} twice");
        }
        foreach (string name in declared.Keys)
        {
            Assert.True(seen.Contains(name), $"the C check does not print {name}");
        }
        Assert.True(seen.Count >= 750, $"only {seen.Count} values compared");
    }

    /// <summary>Types that mirror C but are not C typedefs of their own: covered through their container.</summary>
    private static readonly HashSet<Type> s_nested = [typeof(XImageFuncs), typeof(XClientMessageData), typeof(XSizeHintsAspect)];

    /// <summary>XEvent members that are not members of C's union (extension events sharing its storage).</summary>
    private static readonly HashSet<string> s_extensionEventMembers = ["xdamage", "xshmcompletion", "xfixesselection", "xfixescursor"];

    [Fact]
    public void Every_declared_struct_field_and_constant_is_in_the_layout_check()
    {
        IReadOnlyDictionary<string, ulong> declared = X11Layout.Values();
        int structs = 0;
        foreach (Type t in typeof(X11Layout).Assembly.GetExportedTypes())
        {
            if (t.IsValueType && t.StructLayoutAttribute is { Value: LayoutKind.Sequential or LayoutKind.Explicit }
                && !t.IsEnum && !t.IsNested && t.Namespace == typeof(X11Layout).Namespace && !IsNonCType(t))
            {
                if (s_nested.Contains(t))
                {
                    continue;
                }
                structs++;
                Assert.True(declared.ContainsKey($"sizeof({t.Name})"), $"no size check for {t.Name}");
                foreach (FieldInfo f in t.GetFields(BindingFlags.Public | BindingFlags.Instance))
                {
                    if (t == typeof(XEvent) && s_extensionEventMembers.Contains(f.Name))
                    {
                        continue;
                    }
                    string key = f.FieldType == typeof(XImageFuncs) ? $"offsetof({t.Name},f.destroy_image)" : $"offsetof({t.Name},{f.Name})";
                    Assert.True(declared.ContainsKey(key), $"no offset check for {t.Name}.{f.Name}");
                }
            }
        }
        Assert.True(structs >= 40, $"only {structs} structs found");

        foreach (Type t in new[] { typeof(Xlib), typeof(XShm), typeof(Xdamage), typeof(Xcomposite), typeof(Xfixes), typeof(SysVShm) })
        {
            foreach (FieldInfo f in t.GetFields(BindingFlags.Public | BindingFlags.Static))
            {
                if (f.IsLiteral)
                {
                    Assert.True(declared.ContainsKey(f.Name), $"no check for the constant {t.Name}.{f.Name}");
                }
            }
        }
    }

    private static bool IsNonCType(Type t) => t == typeof(X11Error);

    [Fact]
    public unsafe void Every_event_fits_in_XEvent()
    {
        Assert.Equal(192, sizeof(XEvent));
        foreach (Type t in typeof(XEvent).Assembly.GetExportedTypes())
        {
            if (t.IsValueType && t.Name.EndsWith("Event", StringComparison.Ordinal) && t != typeof(XEvent))
            {
                Assert.True(Marshal.SizeOf(t) <= 192, $"{t.Name} is {Marshal.SizeOf(t)} bytes");
            }
        }
    }
}
