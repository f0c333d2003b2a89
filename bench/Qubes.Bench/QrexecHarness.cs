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
///   qrexec-stream  a producer's bytes through a VM→VM call to a consumer service, against the
///                  same producer and consumer joined by two relay processes over a Unix socket;
///   qrexec-call    latency of trivial VM→VM calls, each one a new client process.
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
        QrexecSystem system = setup.Qrexec;
        string io = Quote(setup.BenchIo);
        string c0 = pin ? "-c 0 " : "", c1 = pin ? "-c 1 " : "";
        if (pin)
        {
            // the sending agent with CPU 0, the receiving agent with CPU 1 (the service inherits it)
            PinAllThreads(system.Agent("work"), 0);
            PinAllThreads(system.Agent("personal"), 1);
        }
        system.AddService("personal", "bench.Sink", $"#!/bin/sh\nexec {io} {c1}sink\n");
        string call = Command(system.ClientVm("work", "personal", "bench.Sink"));
        string socket = Quote(Path.Combine(setup.Directory, "relay.sock"));
        string source = $"{io} {c0}source {bytes}";
        string qrexec = $"{source} | {call}";
        string unix = $"{source} | {io} {c0}to-socket {socket} & {io} {c1}from-socket {socket} | {io} {c1}sink; wait";

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
                double t = TimePipeline(qrexec, bytes);
                line += Invariant($" qrexec {Rate(bytes, t):F3} GB/s ({t:F3} s)");
                if (round > 0)
                {
                    q.Add(Rate(bytes, t));
                }
            }
            if (runU)
            {
                double t = TimePipeline(unix, bytes);
                line += Invariant($" unix socket {Rate(bytes, t):F3} GB/s ({t:F3} s)");
                if (round > 0)
                {
                    u.Add(Rate(bytes, t));
                }
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
            Console.WriteLine(Invariant($"ratio qrexec/unix-socket: {Stats.Of(q).Median / Stats.Of(u).Median:F2}"));
        }
        return 0;
    }

    public static int Call(int count, int rounds)
    {
        using Setup setup = Setup.Start();
        QrexecSystem system = setup.Qrexec;
        system.AddService("personal", "bench.Nop", "#!/bin/sh\nexit 0\n");
        ProcessStartInfo call = system.ClientVm("work", "personal", "bench.Nop");
        ProcessStartInfo baseline = new("/bin/true") { UseShellExecute = false };
        StdinFromDevNull();

        Console.WriteLine($"qrexec-call: {rounds} rounds of {count} VM->VM calls of bench.Nop ('exit 0'), each a new native qrexec-client-vm with stdin /dev/null, started and waited for");
        const int WarmUp = 20;
        for (int i = 0; i < WarmUp; i++)
        {
            Run(call);
            Run(baseline);
        }
        List<double> all = [];
        for (int round = 1; round <= rounds; round++)
        {
            double[] ms = new double[count];
            for (int i = 0; i < count; i++)
            {
                ms[i] = Run(call);
            }
            all.AddRange(ms);
            Console.WriteLine(Invariant($"round {round}: p50 {Percentile(ms, 50):F2} ms, p95 {Percentile(ms, 95):F2} ms (min {ms.Min():F2}, max {ms.Max():F2})"));
        }
        double[] start = new double[count];
        for (int i = 0; i < count; i++)
        {
            start[i] = Run(baseline);
        }
        double[] overall = [.. all];
        Console.WriteLine(Invariant($"all {overall.Length} calls: p50 {Percentile(overall, 50):F2} ms, p95 {Percentile(overall, 95):F2} ms (min {overall.Min():F2}, max {overall.Max():F2})"));
        Console.WriteLine(Invariant($"process start alone (/bin/true, {count} runs): p50 {Percentile(start, 50):F2} ms, p95 {Percentile(start, 95):F2} ms"));
        Console.WriteLine(Invariant($"p50 call ms: {Percentile(overall, 50):F2}"));
        return 0;
    }

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
        private Setup(string directory, string benchIo, QrexecSystem system)
        {
            Directory = directory;
            BenchIo = benchIo;
            Qrexec = system;
        }

        public string Directory { get; }

        public string BenchIo { get; }

        public QrexecSystem Qrexec { get; }

        public static Setup Start()
        {
            // artifacts/bin/Qubes.Bench/<config>/ -> artifacts/bin/qubes/<config>/, where the front command's
            // tools are built; QUBES_BENCH_TOOLS names another such directory (a copy of an older build, to compare)
            string self = AppContext.BaseDirectory.TrimEnd('/');
            string tools = Environment.GetEnvironmentVariable("QUBES_BENCH_TOOLS") is { Length: > 0 } other
                ? Path.GetFullPath(other)
                : Path.GetFullPath(Path.Combine(self, "../../qubes", Path.GetFileName(self)));
            if (!File.Exists(Path.Combine(tools, "qrexec-agent.dll")) || !File.Exists(Tools.NativeClientVmFor(tools)))
            {
                throw new FileNotFoundException($"the qrexec tools are not built in {tools} (run ./qubes build)");
            }
            string dir = Path.Combine(Path.GetTempPath(), $"qubes-bench-qrexec-{Environment.ProcessId}");
            System.IO.Directory.CreateDirectory(dir);
            string io = Path.Combine(dir, "bench-io");
            Compile(Path.Combine(AppContext.BaseDirectory, "bench-io.c"), io);
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
            return new Setup(dir, io, system);
        }

        private static void Compile(string source, string output)
        {
            ProcessStartInfo gcc = new("gcc") { UseShellExecute = false };
            foreach (string a in new[] { "-std=gnu11", "-O2", "-Wall", "-Wextra", "-Werror", source, "-o", output })
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

        public void Dispose()
        {
            Qrexec.Dispose();
            try
            {
                System.IO.Directory.Delete(Directory, recursive: true);
            }
            catch (IOException)
            {
            }
        }
    }
}
