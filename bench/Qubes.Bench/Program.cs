using System;
using System.Globalization;
using System.IO;
using BenchmarkDotNet.Configs;
using BenchmarkDotNet.Jobs;
using BenchmarkDotNet.Running;
using BenchmarkDotNet.Toolchains.InProcess.Emit;

namespace Qubes.Bench;

/// <summary>
/// Benchmarks:
///   stream   [--mib N] [--rounds R]     vchan vs Unix stream socket throughput, two processes
///   pingpong [--count N] [--rounds R]   vchan vs eventfd round-trip time, two processes
///   micro    [BenchmarkDotNet args]     allocation and per-operation cost of the ring, the endpoint
///                                       and the qrexec data pump
///   qrexec-stream [--mib N] [--rounds R] [--only qrexec|unix] [--no-pin]
///                                       a VM→VM qrexec call vs a Unix-socket relay, producer process
///                                       to consumer process, on the loopback hypervisor
///   qrexec-call   [--count N] [--rounds R]
///                                       latency of trivial VM→VM qrexec calls, client process start included
///   qrexec-compare --upstream DIR [--count N] [--rounds R] [--mib N]
///                                       qrexec-call and qrexec-stream on upstream's C executables (built into DIR by
///                                       tests/upstream/build-upstream.sh) and ours over vchan-socket, and ours over
///                                       the loopback vchan, in one sitting, with the ratios (bench/upstream-compare.sh)
///   qrexec-concurrent --calls N [--timeout S]
///                                       N VM→VM echo calls at once, each with its own payload checked; then one
///                                       more call; the last line is "concurrent ok: S/N" (exit 1 unless all passed)
///   policy        [--rounds R] [--seconds S]
///                                       policy decisions per second, 1,000 rules and 100 qubes: the compiled
///                                       engine against an evaluator that reads the rule text on every call
///   start         [--count N] [--rounds R]
///                                       whole-process wall time and peak memory of each program a user starts (calls,
///                                       tools), native and runtime builds, beside /bin/true and an empty native program;
///                                       the last line is "dom0->vm call p50 ms: X"
///   filecopy      [--mib N] [--files N] [--file-bytes B] [--rounds R] [--state-parent DIR] [--upstream-unpacker FILE]
///                                       qvm-copy of one large file and of many small files between two qubes, against
///                                       a tar pipe over the same qrexec path (and upstream's receiver, built by
///                                       tests/upstream/build-upstream-unpacker.sh); the last lines are
///                                       "filecopy large GB/s: X" and "filecopy small files/s: Y"
/// </summary>
internal static class Program
{
    private static int Main(string[] args)
    {
        if (args.Length == 0)
        {
            return Usage("usage: Qubes.Bench stream|pingpong|micro|qrexec-stream|qrexec-call|qrexec-compare|qrexec-concurrent|policy|admin|start|filecopy|gui [options]");
        }
        switch (args[0])
        {
            case "peer":
                return Peers.Run(args[1..]);
            case "stream":
                return Harness.Stream(Option(args, "--mib", 1024) << 20, (int)Option(args, "--rounds", 5));
            case "pingpong":
                return Harness.PingPong((int)Option(args, "--count", 10000), (int)Option(args, "--rounds", 5));
            case "qrexec-stream":
                return QrexecHarness.Stream(Option(args, "--mib", 1024) << 20, (int)Option(args, "--rounds", 5), StringOption(args, "--only"), Array.IndexOf(args, "--no-pin") < 0);
            case "qrexec-call":
                return QrexecHarness.Call((int)Option(args, "--count", 200), (int)Option(args, "--rounds", 3));
            case "qrexec-compare":
                return StringOption(args, "--upstream") is { } upstream
                    ? QrexecHarness.Compare(upstream, (int)Option(args, "--count", 200), (int)Option(args, "--rounds", 5), Option(args, "--mib", 1024) << 20)
                    : Usage("qrexec-compare needs --upstream DIR (upstream's executables, from tests/upstream/build-upstream.sh)");
            case "qrexec-concurrent":
                return QrexecHarness.Concurrent((int)Option(args, "--calls", 100), TimeSpan.FromSeconds(SecondsOption(args, "--timeout", 300)));
            case "start":
                return StartBench.Run((int)Option(args, "--count", 20), (int)Option(args, "--rounds", 3));
            case "filecopy":
                return FileCopyBench.Run(Option(args, "--mib", 1024) << 20, (int)Option(args, "--files", 10000), (int)Option(args, "--file-bytes", 4096),
                    (int)Option(args, "--rounds", 3), StringOption(args, "--state-parent") ?? (Directory.Exists("/dev/shm") ? "/dev/shm" : Path.GetTempPath()),
                    StringOption(args, "--upstream-unpacker"));
            case "gui":
                return GuiBench.Run((int)Option(args, "--width", 1920), (int)Option(args, "--height", 1080), (int)Option(args, "--frames", 60), (int)Option(args, "--rounds", 3),
                    StringOption(args, "--qube-server") ?? (Qubes.Gui.X11.Xorg.IsAvailable ? "xorg" : "xvfb"));
            case "admin":
                return AdminBench.Run((int)Option(args, "--count", 200), (int)Option(args, "--rounds", 3));
            case "policy":
                return PolicyBench.Run((int)Option(args, "--rounds", 5), SecondsOption(args, "--seconds", 1));
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

    private static int Usage(string message)
    {
        Console.Error.WriteLine(message);
        return 2;
    }

    private static string? StringOption(string[] args, string name)
    {
        int i = Array.IndexOf(args, name);
        return i >= 0 && i + 1 < args.Length ? args[i + 1] : null;
    }

    private static double SecondsOption(string[] args, string name, double fallback)
    {
        int i = Array.IndexOf(args, name);
        return i >= 0 && i + 1 < args.Length ? double.Parse(args[i + 1], CultureInfo.InvariantCulture) : fallback;
    }

    private static long Option(string[] args, string name, long fallback)
    {
        int i = Array.IndexOf(args, name);
        return i >= 0 && i + 1 < args.Length ? long.Parse(args[i + 1], CultureInfo.InvariantCulture) : fallback;
    }
}
