using System;
using System.Globalization;
using BenchmarkDotNet.Configs;
using BenchmarkDotNet.Jobs;
using BenchmarkDotNet.Running;
using BenchmarkDotNet.Toolchains.InProcess.Emit;

namespace Qubes.Bench;

/// <summary>
/// Benchmarks:
///   stream   [--mib N] [--rounds R]     vchan vs Unix stream socket throughput, two processes
///   pingpong [--count N] [--rounds R]   vchan vs eventfd round-trip time, two processes
///   micro    [BenchmarkDotNet args]     allocation and per-operation cost of the ring and endpoint
/// </summary>
internal static class Program
{
    private static int Main(string[] args)
    {
        if (args.Length == 0)
        {
            Console.Error.WriteLine("usage: Qubes.Bench stream|pingpong|micro [options]");
            return 2;
        }
        switch (args[0])
        {
            case "peer":
                return Peers.Run(args[1..]);
            case "stream":
                return Harness.Stream(Option(args, "--mib", 1024) << 20, (int)Option(args, "--rounds", 5));
            case "pingpong":
                return Harness.PingPong((int)Option(args, "--count", 10000), (int)Option(args, "--rounds", 5));
            case "micro":
                IConfig config = DefaultConfig.Instance
                    .AddJob(Job.ShortRun.WithToolchain(InProcessEmitToolchain.Instance))
                    .WithOptions(ConfigOptions.DisableOptimizationsValidator);
                BenchmarkSwitcher.FromAssembly(typeof(Program).Assembly).Run(args[1..], config);
                return 0;
            default:
                Console.Error.WriteLine($"unknown benchmark {args[0]}");
                return 2;
        }
    }

    private static long Option(string[] args, string name, long fallback)
    {
        int i = Array.IndexOf(args, name);
        return i >= 0 && i + 1 < args.Length ? long.Parse(args[i + 1], CultureInfo.InvariantCulture) : fallback;
    }
}
