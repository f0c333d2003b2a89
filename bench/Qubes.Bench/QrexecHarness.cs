using System;
using System.Collections.Generic;
using System.Diagnostics;
using System.Globalization;
using System.IO;
using System.Linq;
using System.Runtime.InteropServices;
using Qubes.Front;

namespace Qubes.Bench;

/// <summary>
/// qrexec on the loopback hypervisor, as the front command's demo runs it (broker, allow-list
/// policy daemon, and qubes <c>work</c> and <c>personal</c> with their agents and daemons), with
/// the native qrexec-client-vm in <c>work</c> calling services in <c>personal</c>:
///   qrexec-stream   a producer's bytes through a VM→VM call to a consumer service, against the
///                   same producer and consumer joined by two relay processes over a Unix socket;
///   qrexec-call     latency of trivial VM→VM calls, each one a new client process;
///   qrexec-compare  both, in one sitting, on upstream's C executables and on ours over upstream's
///                   vchan-socket transport (<see cref="SocketQrexec"/>), and on ours over the loopback vchan.
/// The producer, consumer and relays are bench-io.c, compiled with gcc when the benchmark starts.
/// </summary>
internal static partial class QrexecHarness
{
    private const string Rules = "bench.Sink * work personal allow\nbench.Nop * work personal allow\nbench.Echo * work personal allow\n* * @anyvm @anyvm deny\n";
    private static readonly TimeSpan s_roundTimeout = TimeSpan.FromMinutes(5);

    /// <param name="bytes">Bytes per round.</param>
    /// <param name="rounds">Measured rounds (after one warm-up round).</param>
    /// <param name="only">"qrexec" or "unix" to run one path alone (for profiling; no ratio), null for both.</param>
    /// <param name="pin">Pin the sending half of each path to CPU 0 and the receiving half to CPU 1.</param>
    public static int Stream(long bytes, int rounds, string? only, bool pin)
    {
        using Setup setup = Setup.Start();
        string qrexec = StreamPipeline(setup, setup.Qrexec, bytes, pin);
        string unix = UnixRelayPipeline(setup, bytes, pin);

        Console.WriteLine($"qrexec-stream: {rounds} rounds of {bytes >> 20} MiB (+1 warm-up round each), the two paths alternating; 64 KiB writes and reads");
        Console.WriteLine("  qrexec:      source | qrexec-client-vm (work): agent (work) -> vchan -> agent (personal) -> service 'exec sink'");
        Console.WriteLine("  unix socket: source | relay (pipe -> socket) -> relay (socket -> pipe) | sink");
        Console.WriteLine(pin
            ? "  pinned: source, agent (work), first relay on CPU 0; agent (personal), service, second relay, sink on CPU 1"
            : "  not pinned");
        bool runQ = only != "unix", runU = only != "qrexec";
        List<double> q = [], u = [];
        for (int round = 0; round <= rounds; round++)
        {
            string line = round == 0 ? "warm-up:" : $"round {round}:";
            if (runQ)
            {
                line += StreamRound("qrexec", qrexec, bytes, round > 0 ? q : null);
            }
            if (runU)
            {
                line += StreamRound("unix socket", unix, bytes, round > 0 ? u : null);
            }
            Console.WriteLine(line);
        }
        if (runQ)
        {
            Console.WriteLine($"qrexec VM->VM (loopback): {Stats.Of(q).Format("GB/s")}");
        }
        if (runU)
        {
            Console.WriteLine($"unix-socket relay:        {Stats.Of(u).Format("GB/s")}");
        }
        if (runQ && runU)
        {
            Console.WriteLine(Invariant($"ratio qrexec/unix-socket: median {Stats.Of(q).Median / Stats.Of(u).Median:F2}, min {Stats.Of(q).Min / Stats.Of(u).Min:F2}"));
        }
        return 0;
    }

    public static int Call(int count, int rounds)
    {
        using Setup setup = Setup.Start();
        ProcessStartInfo call = NopCall(setup.Qrexec);
        ProcessStartInfo baseline = new("/bin/true") { UseShellExecute = false };
        StdinFromDevNull();

        Console.WriteLine($"qrexec-call: {rounds} rounds of {count} VM->VM calls of bench.Nop ('exit 0'), each a new native qrexec-client-vm with stdin /dev/null, started and waited for");
        WarmUp(call);
        WarmUp(baseline);
        List<double> all = [];
        for (int round = 1; round <= rounds; round++)
        {
            double[] ms = Calls(call, count);
            all.AddRange(ms);
            Console.WriteLine($"round {round}: {Latency(ms)}");
        }
        double[] start = Calls(baseline, count);
        double[] overall = [.. all];
        Console.WriteLine($"all {overall.Length} calls: {Latency(overall)}");
        Console.WriteLine($"process start alone (/bin/true, {count} runs): {Latency(start)}");
        Console.WriteLine(Invariant($"p50 call ms: {Percentile(overall, 50):F2}"));
        return 0;
    }

    /// <summary>
    /// Call latency and stream throughput of upstream's C qrexec and ours over upstream's
    /// vchan-socket transport, and of ours over the loopback vchan, in one sitting: each round runs
    /// every system's calls and streams (and the Unix-socket relay) in turn, so that the machine's
    /// drift reaches all of them alike; then the ratios.
    /// </summary>
    /// <param name="upstream">Upstream's executables, built by tests/upstream/build-upstream.sh.</param>
    /// <param name="count">Calls per system per round.</param>
    /// <param name="rounds">Measured rounds (after one warm-up round).</param>
    /// <param name="bytes">Bytes per stream.</param>
    public static int Compare(string upstream, int count, int rounds, long bytes)
    {
        using Setup setup = Setup.Start();
        string tools = setup.Tools;
        (string Name, IQrexecBench System)[] systems =
        [
            ("upstream C, vchan-socket", new SocketQrexec(Path.Combine(setup.Directory, "upstream"), SocketQrexec.Binaries.Upstream(upstream))),
            ("ours, vchan-socket", new SocketQrexec(Path.Combine(setup.Directory, "ours"), SocketQrexec.Binaries.Ours(tools))),
            ("ours, loopback vchan", setup.Qrexec),
        ];
        try
        {
            StdinFromDevNull();
            ProcessStartInfo[] calls = [.. systems.Select(s => NopCall(s.System))];
            ProcessStartInfo[] dom0Calls = [.. systems.Select(s => s.System.Dom0Client("personal", "root:QUBESRPC bench.Nop dom0"))];
            string[] streams = [.. systems.Select(s => StreamPipeline(setup, s.System, bytes, pin: true))];
            string unix = UnixRelayPipeline(setup, bytes, pin: true);
            Console.WriteLine($"qrexec-compare: {rounds} rounds (+1 warm-up); each round, for each system: {count} VM->VM calls work -> personal of bench.Nop ('exit 0'),");
            Console.WriteLine($"  each a new qrexec-client-vm with stdin /dev/null; {count} dom0->VM calls of the same service, each a new 'qrexec-client -d personal root:QUBESRPC bench.Nop dom0';");
            Console.WriteLine($"  then {bytes >> 20} MiB streamed work -> personal into 'exec sink'; then the same bytes through a Unix-socket relay");
            Console.WriteLine("  vchan-socket: upstream's transport, every vchan a Unix socket; agents and daemons unsandboxed, a policy program that allows");
            Console.WriteLine("  loopback: the loopback hypervisor's shared-memory vchan, sandboxed qubes, the policy daemon");
            Console.WriteLine("  pinned: the sending agent on CPU 0, the receiving agent and the service on CPU 1");
            foreach (ProcessStartInfo call in calls.Concat(dom0Calls))
            {
                WarmUp(call);
            }
            Series[] vmToVm = [.. systems.Select(_ => new Series())];
            Series[] dom0ToVm = [.. systems.Select(_ => new Series())];
            List<double>[] rate = [.. systems.Select(_ => new List<double>())];
            List<double> unixRate = [];
            for (int round = 0; round <= rounds; round++)
            {
                Console.WriteLine(round == 0 ? "warm-up:" : $"round {round}:");
                for (int i = 0; i < systems.Length; i++)
                {
                    string line = $"  {systems[i].Name,-22} VM->VM {vmToVm[i].Add(Calls(calls[i], count), round > 0)};"
                        + $" dom0->VM {dom0ToVm[i].Add(Calls(dom0Calls[i], count), round > 0)};";
                    Console.WriteLine(line + StreamRound("stream", streams[i], bytes, round > 0 ? rate[i] : null));
                }
                Console.WriteLine("  " + StreamRound($"{"unix-socket relay",-22}", unix, bytes, round > 0 ? unixRate : null).TrimStart());
            }
            Console.WriteLine("summary (p50 per round and stream rate: min / median / max over the rounds; p50 of all calls):");
            for (int i = 0; i < systems.Length; i++)
            {
                Console.WriteLine($"  {systems[i].Name,-22} VM->VM p50 {vmToVm[i]}");
                Console.WriteLine($"  {"",-22} dom0->VM p50 {dom0ToVm[i]}");
                Console.WriteLine($"  {"",-22} stream {Stats.Of(rate[i]).Format("GB/s")}");
            }
            Console.WriteLine($"  {"unix-socket relay",-22} stream {Stats.Of(unixRate).Format("GB/s")}");
            Stats upstreamRate = Stats.Of(rate[0]);
            for (int i = 1; i < systems.Length; i++)
            {
                Stats r = Stats.Of(rate[i]);
                Console.WriteLine(Invariant($"ratio {systems[i].Name} / upstream: VM->VM call p50 {vmToVm[i].P50 / vmToVm[0].P50:F2}, dom0->VM call p50 {dom0ToVm[i].P50 / dom0ToVm[0].P50:F2} (below 1 is faster); stream median {r.Median / upstreamRate.Median:F2}, min {r.Min / upstreamRate.Min:F2} (above 1 is faster)"));
            }
            Stats loop = Stats.Of(rate[2]), u = Stats.Of(unixRate);
            Console.WriteLine(Invariant($"ratio ours, loopback vchan / unix-socket relay: stream median {loop.Median / u.Median:F2}, min {loop.Min / u.Min:F2}"));
            return 0;
        }
        finally
        {
            systems[0].System.Dispose();
            systems[1].System.Dispose();
        }
    }

    /// <summary>Call times of one kind of call on one system: per-round p50s and every call.</summary>
    private sealed class Series
    {
        private readonly List<double> _roundP50 = [];
        private readonly List<double> _all = [];

        public double P50 => Percentile([.. _all], 50);

        /// <summary>Records a round's calls unless <paramref name="measured"/> is false (a warm-up); returns the round's text.</summary>
        public string Add(double[] ms, bool measured)
        {
            if (measured)
            {
                _roundP50.Add(Percentile(ms, 50));
                _all.AddRange(ms);
            }
            return Latency(ms);
        }

        public override string ToString()
            => $"{Stats.Of(_roundP50).Format("ms", "F2")}; all {_all.Count}: {P50.ToString("F2", CultureInfo.InvariantCulture)} ms";
    }

    private static ProcessStartInfo NopCall(IQrexecBench system)
    {
        system.AddService("personal", "bench.Nop", "#!/bin/sh\nexit 0\n");
        return system.ClientVm("work", "personal", "bench.Nop");
    }

    /// <summary>source | qrexec-client-vm (work) → personal's 'exec sink'; with <paramref name="pin"/>, the agents and the two ends pinned apart.</summary>
    private static string StreamPipeline(Setup setup, IQrexecBench system, long bytes, bool pin)
    {
        string io = Quote(setup.BenchIo);
        if (pin)
        {
            // the sending agent with CPU 0, the receiving agent with CPU 1 (the service inherits it)
            PinAllThreads(system.Agent("work"), 0);
            PinAllThreads(system.Agent("personal"), 1);
        }
        system.AddService("personal", "bench.Sink", $"#!/bin/sh\nexec {io} {(pin ? "-c 1 " : "")}sink\n");
        ProcessStartInfo client = system.ClientVm("work", "personal", "bench.Sink");
        string env = string.Concat(client.Environment
            .Where(e => e.Key is "VCHAN_DOMAIN" or "VCHAN_SOCKET_DIR" or "LD_LIBRARY_PATH" && e.Value != null)
            .Select(e => $"{e.Key}={Quote(e.Value!)} "));
        return $"{io} {(pin ? "-c 0 " : "")}source {bytes} | {env}{Command(client)}";
    }

    private static string UnixRelayPipeline(Setup setup, long bytes, bool pin)
    {
        string io = Quote(setup.BenchIo);
        string c0 = pin ? "-c 0 " : "", c1 = pin ? "-c 1 " : "";
        string socket = Quote(Path.Combine(setup.Directory, "relay.sock"));
        return $"{io} {c0}source {bytes} | {io} {c0}to-socket {socket} & {io} {c1}from-socket {socket} | {io} {c1}sink; wait";
    }

    /// <summary>Runs one stream; adds its rate to <paramref name="rates"/> unless null (a warm-up); returns the text for the round's line.</summary>
    private static string StreamRound(string name, string pipeline, long bytes, List<double>? rates)
    {
        double t = TimePipeline(pipeline, bytes);
        rates?.Add(Rate(bytes, t));
        return Invariant($" {name} {Rate(bytes, t):F3} GB/s ({t:F3} s)");
    }

    private static void WarmUp(ProcessStartInfo psi) => Calls(psi, 20);

    private static double[] Calls(ProcessStartInfo psi, int count)
    {
        double[] ms = new double[count];
        for (int i = 0; i < count; i++)
        {
            ms[i] = Run(psi);
        }
        return ms;
    }

    private static string Latency(double[] ms)
        => Invariant($"p50 {Percentile(ms, 50):F2} ms, p95 {Percentile(ms, 95):F2} ms (min {ms.Min():F2}, max {ms.Max():F2})");

    /// <summary>Pins every thread of <paramref name="process"/> to <paramref name="cpu"/>; threads it starts later inherit the mask.</summary>
    private static void PinAllThreads(Process process, int cpu)
    {
        ulong mask = 1UL << cpu;
        foreach (string task in System.IO.Directory.GetDirectories($"/proc/{process.Id}/task"))
        {
            int tid = int.Parse(Path.GetFileName(task), CultureInfo.InvariantCulture);
            if (SchedSetAffinity(tid, sizeof(ulong), ref mask) < 0 && Marshal.GetLastPInvokeError() != 3) // ESRCH: the thread ended
            {
                throw new IOException($"sched_setaffinity({tid}): errno {Marshal.GetLastPInvokeError()}");
            }
        }
    }

    /// <summary>Runs <paramref name="command"/> under /bin/sh; checks that it printed exactly the byte count; returns the wall time in seconds.</summary>
    private static double TimePipeline(string command, long bytes)
    {
        ProcessStartInfo psi = new("/bin/sh") { UseShellExecute = false, RedirectStandardOutput = true };
        psi.ArgumentList.Add("-c");
        psi.ArgumentList.Add(command);
        long t0 = Stopwatch.GetTimestamp();
        using Process p = Process.Start(psi)!;
        System.Threading.Tasks.Task<string> output = p.StandardOutput.ReadToEndAsync();
        if (!output.Wait(s_roundTimeout))
        {
            p.Kill(entireProcessTree: true);
            throw new TimeoutException($"'{command}' did not finish in {s_roundTimeout}");
        }
        p.WaitForExit();
        double seconds = Stopwatch.GetElapsedTime(t0).TotalSeconds;
        string got = output.Result.Trim();
        if (p.ExitCode != 0 || got != bytes.ToString(CultureInfo.InvariantCulture))
        {
            throw new InvalidOperationException($"'{command}' exited {p.ExitCode}, consumer counted '{got}' bytes instead of {bytes}");
        }
        return seconds;
    }

    /// <summary>Starts a process, waits for it, checks it exited 0; returns the milliseconds from start to exit.</summary>
    private static double Run(ProcessStartInfo psi)
    {
        long t0 = Stopwatch.GetTimestamp();
        using Process p = Process.Start(psi)!;
        p.WaitForExit();
        double ms = Stopwatch.GetElapsedTime(t0).TotalMilliseconds;
        if (p.ExitCode != 0)
        {
            throw new InvalidOperationException($"{psi.FileName} exited {p.ExitCode}");
        }
        return ms;
    }

    /// <summary>Nearest-rank percentile.</summary>
    private static double Percentile(double[] values, int p)
    {
        double[] sorted = [.. values.Order()];
        int rank = (int)Math.Ceiling(p / 100.0 * sorted.Length);
        return sorted[Math.Clamp(rank - 1, 0, sorted.Length - 1)];
    }

    private static double Rate(long bytes, double seconds) => bytes / seconds / 1e9;

    private static string Invariant(FormattableString s) => s.ToString(CultureInfo.InvariantCulture);

    private static string Quote(string s) => "'" + s.Replace("'", "'\\''", StringComparison.Ordinal) + "'";

    private static string Command(ProcessStartInfo psi)
        => string.Join(' ', new[] { psi.FileName }.Concat(psi.ArgumentList).Select(Quote));

    /// <summary>Makes this process's stdin /dev/null, so that the clients started with an inherited stdin get it.</summary>
    private static void StdinFromDevNull()
    {
        int fd = Qubes.Interop.Linux.Libc.open("/dev/null", Qubes.Interop.Linux.Libc.O_RDONLY, 0);
        if (fd < 0 || Dup2(fd, 0) < 0)
        {
            throw new IOException("cannot make stdin /dev/null");
        }
        if (fd != 0) // it is 0 already when stdin was closed
        {
            Qubes.Interop.Linux.Libc.close(fd);
        }
    }

    [LibraryImport("libc", EntryPoint = "dup2", SetLastError = true)]
    private static partial int Dup2(int oldFd, int newFd);

    [LibraryImport("libc", EntryPoint = "sched_setaffinity", SetLastError = true)]
    private static partial int SchedSetAffinity(int tid, nuint size, ref ulong mask);

    /// <summary>The qrexec system with qubes work and personal, in a fresh directory, and the compiled bench-io.</summary>
    private sealed class Setup : IDisposable
    {
        private Setup(string directory, string benchIo, QrexecSystem system, string tools)
        {
            Tools = tools;
            Directory = directory;
            BenchIo = benchIo;
            Qrexec = system;
        }

        public string Directory { get; }

        public string BenchIo { get; }

        /// <summary>Where the front command's tools (ours) were built.</summary>
        public string Tools { get; }

        public QrexecSystem Qrexec { get; }

        public static Setup Start()
        {
            // artifacts/bin/Qubes.Bench/<config>/ -> artifacts/bin/qubes/aot/, the native executables;
            // QUBES_BENCH_TOOLS names another such directory (the runtime build's, or a copy of an older build, to compare)
            string self = AppContext.BaseDirectory.TrimEnd('/');
            string tools = Environment.GetEnvironmentVariable("QUBES_BENCH_TOOLS") is { Length: > 0 } other
                ? Path.GetFullPath(other)
                : Path.GetFullPath(Path.Combine(self, "../../qubes/aot"));
            if (!File.Exists(Path.Combine(tools, "qrexec-agent")) || !File.Exists(Qubes.Front.Tools.NativeClientVmFor(tools)))
            {
                throw new FileNotFoundException($"the qrexec tools are not built in {tools} (run ./qubes build)");
            }
            string dir = Path.Combine(Path.GetTempPath(), $"qubes-bench-qrexec-{Environment.ProcessId}");
            System.IO.Directory.CreateDirectory(dir);
            string io = Path.Combine(dir, "bench-io");
            Gcc.Compile(Path.Combine(AppContext.BaseDirectory, "bench-io.c"), io);
            QrexecSystem system = new(Path.Combine(dir, "system"), Rules, tools);
            try
            {
                system.AddQube("work");
                system.AddQube("personal");
            }
            catch
            {
                system.Dispose();
                throw;
            }
            return new Setup(dir, io, system, tools);
        }

        public void Dispose()
        {
            Qrexec.Dispose();
            Teardown.Delete(Directory);
        }
    }
}
