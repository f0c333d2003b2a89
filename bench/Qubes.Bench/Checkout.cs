using System;
using System.IO;

namespace Qubes.Bench;

/// <summary>The checkout the benchmarks were built in, and the native executables built there.</summary>
internal static class Checkout
{
    /// <summary>The directory holding QubesRuntime.sln, above this program's.</summary>
    public static string Root { get; } = FindRoot();

    /// <summary>artifacts/bin/qubes/aot/: the native executables, which <c>./qubes build</c> makes.</summary>
    public static string NativeBin => Path.Combine(Root, "artifacts", "bin", "qubes", "aot");

    private static string FindRoot()
    {
        string? root = AppContext.BaseDirectory;
        while (root != null && !File.Exists(Path.Combine(root, "QubesRuntime.sln")))
        {
            root = Path.GetDirectoryName(root.TrimEnd('/'));
        }
        return root ?? throw new DirectoryNotFoundException("QubesRuntime.sln not found above " + AppContext.BaseDirectory);
    }
}
