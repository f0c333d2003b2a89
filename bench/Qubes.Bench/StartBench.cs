using System;
using System.Collections.Generic;
using System.Diagnostics;
using System.Globalization;
using System.IO;
using System.Linq;
using Qubes.Tests;

namespace Qubes.Bench;

/// <summary>
/// What starting a program costs, whole process: wall time from fork to reaping and peak resident
/// memory (bench-time.c), for each kind of program a user starts, on a running system (<c>qubes up</c>
/// in a temporary state directory, qubes work and personal running). Each kind runs with the native
/// executables (artifacts/bin/qubes/aot/) and with the runtime build's (artifacts/bin/qubes/release/),
/// beside <c>/bin/true</c> and an empty program compiled ahead of time (bench/Qubes.Bench.Empty), in
/// the same rounds, one kind after the other:
///   dom0->vm call: <c>qrexec-client -d work user:true</c>;
///   qvm-run -p work true, qvm-ls, qvm-prefs work label: the tools;
///   qvm-run's call: the call qvm-run -p makes, <c>qrexec-client -d work DEFAULT:QUBESRPC qubes.VMShell dom0</c>
///     (the shell in the qube reads an empty input), so that what qvm-run adds to it shows apart;
///   vm->vm call: in work, <c>qrexec-client-vm personal qubes.VMShell</c> (an empty script), with the
///     C fast client (artifacts/native/) and the native C# client, beside /bin/true in the qube.
/// Per round, the median of COUNT runs of each; reported as min/median/max over the rounds.
/// </summary>
internal static class StartBench
{
    private sealed record Kind(string Name, string Build, bool InQube, string[] Command);

    public static int Run(int count, int rounds)
    {
        string root = TestRepository.Root;
        string aot = TestRepository.NativeBin;
        string jit = Path.Combine(root, "artifacts", "bin", "qubes", "release");
        string native = Path.Combine(root, "artifacts", "native");
        if (!File.Exists(Path.Combine(aot, "qubes")))
        {
            throw new FileNotFoundException($"the native executables are not built in {aot} (run ./qubes build)");
        }
        string dir = Path.Combine(Path.GetTempPath(), $"qubes-bench-start-{Environment.ProcessId}");
        string state = Path.Combine(dir, "state");
        Directory.CreateDirectory(dir);
        try
        {
            string timer = Path.Combine(dir, "bench-time");
            Gcc.Compile(Path.Combine(AppContext.BaseDirectory, "bench-time.c"), timer, "-static");
            string empty = PublishEmpty(root, Path.Combine(dir, "empty"));
            Tool(aot, state, null, "qubes", "up");
            File.WriteAllText(Path.Combine(state, "policy.d", "20-bench.policy"), "qubes.VMShell  *  work  personal  allow\n");
            Tool(aot, state, null, "qvm-start", "work", "personal");
            string inQubeTimer = "/tmp/bench-time";
            Tool(aot, state, timer, "qvm-run", "-p", "work", $"cat > {inQubeTimer} && chmod +x {inQubeTimer}");
            string sockets = Path.Combine(state, "run", "qrexec");
            List<Kind> kinds = [new("/bin/true", "", false, ["/bin/true"]), new("empty native program", "", false, [empty])];
            foreach ((string build, string bin) in (ReadOnlySpan<(string, string)>)[("native", aot), ("runtime", jit)])
            {
                kinds.Add(new("dom0->vm call", build, false, [Path.Combine(bin, "qrexec-client"), "--socket-dir=" + sockets, "-d", "work", "user:true"]));
                kinds.Add(new("qvm-run -p work true", build, false, [Path.Combine(bin, "qvm-run"), "-p", "work", "true"]));
                kinds.Add(new("qvm-run's call", build, false, [Path.Combine(bin, "qrexec-client"), "--socket-dir=" + sockets, "-d", "work", "DEFAULT:QUBESRPC qubes.VMShell dom0"]));
                kinds.Add(new("qvm-ls", build, false, [Path.Combine(bin, "qvm-ls")]));
                kinds.Add(new("qvm-prefs work label", build, false, [Path.Combine(bin, "qvm-prefs"), "work", "label"]));
            }
            kinds.Add(new("vm->vm call", "C", true, [Path.Combine(native, "qrexec-client-vm"), "personal", "qubes.VMShell"]));
            kinds.Add(new("vm->vm call", "native", true, [Path.Combine(aot, "qrexec-client-vm"), "personal", "qubes.VMShell"]));
            kinds.Add(new("/bin/true in work", "", true, ["/bin/true"]));

            Dictionary<Kind, (List<double> Wall, List<double> Memory)> results = kinds.ToDictionary(static k => k, static _ => (new List<double>(), new List<double>()));
            for (int round = 0; round < rounds; round++)
            {
                foreach (Kind kind in kinds)
                {
                    string output = kind.InQube
                        ? Tool(aot, state, null, "qvm-run", "-p", "work", string.Join(' ', [inQubeTimer, count.ToString(CultureInfo.InvariantCulture), .. kind.Command]))
                        : Tool(null, state, null, timer, [count.ToString(CultureInfo.InvariantCulture), .. kind.Command]);
                    (double wall, double memory) = Summarize(output, count, kind);
                    results[kind].Wall.Add(wall);
                    results[kind].Memory.Add(memory);
                }
                Console.Error.WriteLine($"start: round {round + 1}/{rounds} done");
            }

            Console.WriteLine($"start: {rounds} rounds x {count} runs of each, whole process; per round the median wall time and the largest peak RSS");
            foreach (Kind kind in kinds)
            {
                (List<double> wall, List<double> memory) = results[kind];
                string name = kind.Build.Length == 0 ? kind.Name : $"{kind.Name} ({kind.Build})";
                Console.WriteLine(string.Create(CultureInfo.InvariantCulture, $"  {name,-42} wall {Stats.Of(wall).Format("ms", "F2")}; peak RSS max {memory.Max() / 1024:F1} MiB"));
            }
            double Median(string name, string build) => Stats.Of(results[kinds.Single(k => k.Name == name && k.Build == build)].Wall).Median;
            double emptyNative = Median("empty native program", "");
            foreach (string name in (string[])["dom0->vm call", "qvm-run -p work true", "qvm-ls", "qvm-prefs work label"])
            {
                Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
                    $"ratio {name}: native / runtime build {Median(name, "native") / Median(name, "runtime"):F2}, native / empty native program {Median(name, "native") / emptyNative:F2}"));
            }
            double qvmRunOwn = Median("qvm-run -p work true", "native") - Median("qvm-run's call", "native");
            Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
                $"qvm-run -p work true without its call (qvm-run minus qvm-run's call, native): {qvmRunOwn:F2} ms, / empty native program {qvmRunOwn / emptyNative:F2}"));
            Console.WriteLine(string.Create(CultureInfo.InvariantCulture, $"ratio vm->vm call: native C# client / C client {Median("vm->vm call", "native") / Median("vm->vm call", "C"):F2}"));
            Console.WriteLine(string.Create(CultureInfo.InvariantCulture, $"dom0->vm call p50 ms: {Median("dom0->vm call", "native"):F2}"));
            return 0;
        }
        finally
        {
            if (File.Exists(Path.Combine(state, "qubes.xml")))
            {
                Tool(aot, state, null, "qubes", "down");
            }
            Teardown.Delete(dir);
        }
    }

    /// <summary>The median wall time (ms) and the largest peak RSS (KiB) of bench-time's lines.</summary>
    private static (double Wall, double Memory) Summarize(string output, int count, Kind kind)
    {
        (double Wall, double Memory)[] runs = [.. output.Split('\n', StringSplitOptions.RemoveEmptyEntries).Select(static line =>
        {
            string[] fields = line.Split(' ');
            return (long.Parse(fields[0], CultureInfo.InvariantCulture) / 1e6, double.Parse(fields[1], CultureInfo.InvariantCulture));
        })];
        if (runs.Length != count)
        {
            throw new InvalidOperationException($"{kind.Name}: {runs.Length} of {count} runs measured");
        }
        return (Stats.Of(runs.Select(static r => r.Wall).ToList()).Median, runs.Max(static r => r.Memory));
    }

    /// <summary>Publishes the empty program (bench/Qubes.Bench.Empty) into <paramref name="output"/>; its path.</summary>
    private static string PublishEmpty(string root, string output)
    {
        ProcessStartInfo psi = new("dotnet", ["publish", Path.Combine(root, "bench", "Qubes.Bench.Empty"), "-c", "Release", "-nologo", "-v", "quiet", "-o", output])
        {
            UseShellExecute = false,
            RedirectStandardOutput = true,
        };
        using Process p = Process.Start(psi)!;
        string log = p.StandardOutput.ReadToEnd();
        p.WaitForExit();
        if (p.ExitCode != 0)
        {
            throw new InvalidOperationException("the empty program could not be published: " + log);
        }
        return Path.Combine(output, "Qubes.Bench.Empty");
    }

    /// <summary>Runs <paramref name="tool"/> (from <paramref name="bin"/>, or a path) on the system of <paramref name="state"/>, stdin from <paramref name="input"/>; its stdout.</summary>
    private static string Tool(string? bin, string state, string? input, string tool, params string[] args)
    {
        ProcessStartInfo psi = new(bin == null ? tool : Path.Combine(bin, tool), args)
        {
            RedirectStandardOutput = true,
            RedirectStandardInput = input != null,
            UseShellExecute = false,
        };
        psi.Environment["QUBES_STATE_DIR"] = state;
        psi.Environment["QUBES_LOHV_DIR"] = Path.Combine(state, "lohv");
        using Process p = Process.Start(psi)!;
        if (input != null)
        {
            using (FileStream file = File.OpenRead(input))
            {
                file.CopyTo(p.StandardInput.BaseStream);
            }
            p.StandardInput.Close();
        }
        string output = p.StandardOutput.ReadToEnd();
        p.WaitForExit();
        if (p.ExitCode != 0)
        {
            throw new InvalidOperationException($"{tool} {string.Join(' ', args)}: exit {p.ExitCode}");
        }
        return output;
    }
}
