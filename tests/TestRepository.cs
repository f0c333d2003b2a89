using System;
using System.IO;

namespace Qubes.Tests;

/// <summary>The repository the tests and benchmarks were built from (compiled into every test project and Qubes.Bench).</summary>
internal static class TestRepository
{
    /// <summary>The first directory above the test assembly that holds QubesRuntime.sln.</summary>
    public static string Root { get; } = FindRoot();

    /// <summary>The native (ahead-of-time compiled) programs, built by <c>./qubes build</c>.</summary>
    public static string NativeBin => Path.Combine(Root, "artifacts", "bin", "qubes", "aot");

    /// <summary>The path of <paramref name="relative"/> in the repository.</summary>
    public static string File(string relative) => Path.Combine(Root, relative);

    private static string FindRoot()
    {
        for (string? directory = AppContext.BaseDirectory; directory != null; directory = Path.GetDirectoryName(directory.TrimEnd('/')))
        {
            if (System.IO.File.Exists(Path.Combine(directory, "QubesRuntime.sln")))
            {
                return directory;
            }
        }
        throw new DirectoryNotFoundException($"QubesRuntime.sln is not above {AppContext.BaseDirectory}");
    }
}
