using System;
using System.Diagnostics;
using System.Globalization;
using System.IO;
using System.Linq;
using System.Security.Cryptography;
using Qubes.Interop.Linux;

namespace Qubes.Fuzz;

/// <summary>
/// A mutation fuzzer for the untrusted parsers (not coverage-guided):
///   Qubes.Fuzz TARGET|all [--seconds N] [--seed S] [--corpus DIR]
///   Qubes.Fuzz filecopy-upstream --upstream-unpacker FILE [--seconds N] [--seed S] [--corpus DIR]
/// (the last compares the file-copy receiver with upstream's, built by
/// tests/upstream/build-upstream-unpacker.sh; it is not part of "all")
/// Each input is first written to a shared mapping of crash-TARGET.input, so that an input that
/// kills the process (a fault at a guard page) is on disk afterwards. An invariant failure or an
/// exception saves the input as crash-TARGET-HASH and exits 1.
/// </summary>
internal static unsafe class Program
{
    private const int MaxInput = 8192;

    private static int Main(string[] args)
    {
        ITarget[] all = [new BrokerRequestTarget(), new VchanRingTarget(), new OrdersTarget(), new QrexecTriggerTarget(), new PolicyRequestTarget(), new FileCopyStreamTarget(), new AppMenuListTarget(), new ImageRgbaTarget(), new RpmPackageTarget(), new GuiDispatchTarget()];
        if (args.Length == 0)
        {
            Console.Error.WriteLine($"usage: Qubes.Fuzz {string.Join('|', all.Select(t => t.Name))}|all [--seconds N] [--seed S] [--corpus DIR]");
            return 2;
        }
        double seconds = double.Parse(Option(args, "--seconds") ?? "10", CultureInfo.InvariantCulture);
        int seed = int.Parse(Option(args, "--seed") ?? "1", CultureInfo.InvariantCulture);
        string? corpus = Option(args, "--corpus");
        if (args[0] == "filecopy-upstream")
        {
            if (Option(args, "--upstream-unpacker") is not string upstream)
            {
                Console.Error.WriteLine("filecopy-upstream needs --upstream-unpacker FILE (from tests/upstream/build-upstream-unpacker.sh)");
                return 2;
            }
            all = [.. all, new FileCopyUpstreamTarget(upstream)];
        }
        ITarget[] chosen = args[0] == "all" ? all : all.Where(t => t.Name == args[0]).ToArray();
        if (chosen.Length == 0)
        {
            Console.Error.WriteLine($"unknown target {args[0]}");
            return 2;
        }
        try
        {
            foreach (ITarget target in chosen)
            {
                if (Fuzz(target, seconds / chosen.Length, seed, corpus) != 0)
                {
                    return 1;
                }
            }
            return 0;
        }
        finally
        {
            foreach (IDisposable target in all.OfType<IDisposable>())
            {
                target.Dispose();
            }
        }
    }

    private static string? Option(string[] args, string name)
    {
        int i = Array.IndexOf(args, name);
        return i >= 0 && i + 1 < args.Length ? args[i + 1] : null;
    }

    private static int Fuzz(ITarget target, double seconds, int seed, string? corpusDir)
    {
        byte[][] pool = target.Seeds;
        string? dir = corpusDir == null ? null : Path.Combine(corpusDir, target.Name);
        if (dir != null && Directory.Exists(dir))
        {
            pool = [.. pool, .. Directory.GetFiles(dir).Select(File.ReadAllBytes)];
        }
        string lastPath = $"crash-{target.Name}.input";
        using var lastFile = new FileStream(lastPath, FileMode.Create, FileAccess.ReadWrite);
        lastFile.SetLength(4 + MaxInput);
        using MemoryMapping last = MemoryMapping.MapShared((int)lastFile.SafeFileHandle.DangerousGetHandle(), 0, 4 + MaxInput, writable: true);

        var rng = new Random(seed);
        var mutator = new Mutator(rng, pool, MaxInput);
        byte[] input = new byte[MaxInput];
        long runs = 0;
        var clock = Stopwatch.StartNew();
        double nextReport = 1;
        while (clock.Elapsed.TotalSeconds < seconds)
        {
            int length = runs < pool.Length ? Copy(pool[runs], input) : mutator.Next(input);
            *(int*)last.Pointer = length;
            input.AsSpan(0, length).CopyTo(new Span<byte>(last.Pointer + 4, length));
            try
            {
                target.Run(input.AsSpan(0, length));
            }
            catch (Exception e)
            {
                string name = $"crash-{target.Name}-{Convert.ToHexStringLower(SHA256.HashData(input.AsSpan(0, length)))[..16]}";
                File.WriteAllBytes(name, input.AsSpan(0, length).ToArray());
                Console.WriteLine($"{target.Name}: FAILED after {runs} runs: {e.GetType().Name}: {e.Message}; input saved as {name}");
                return 1;
            }
            runs++;
            if (clock.Elapsed.TotalSeconds >= nextReport)
            {
                Console.WriteLine(string.Create(CultureInfo.InvariantCulture, $"{target.Name}: {runs} runs, {runs / clock.Elapsed.TotalSeconds:F0}/s"));
                nextReport += 1;
            }
        }
        Console.WriteLine(string.Create(CultureInfo.InvariantCulture, $"{target.Name}: {runs} runs in {clock.Elapsed.TotalSeconds:F1} s, no failure"));
        File.Delete(lastPath);
        return 0;
    }

    private static int Copy(byte[] from, byte[] to)
    {
        int n = Math.Min(from.Length, to.Length);
        from.AsSpan(0, n).CopyTo(to);
        return n;
    }
}
