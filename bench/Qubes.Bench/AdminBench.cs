using System;
using System.Collections.Generic;
using System.Diagnostics;
using System.Globalization;
using System.IO;
using System.Linq;
using System.Net.Sockets;
using System.Text;
using Qubes.Tests;

namespace Qubes.Bench;

/// <summary>
/// Admin API latency on a whole system (<c>qubes up</c> in a temporary state directory): per round,
/// the median of many calls of each kind, reported as min/median/max over the rounds.
///   dom0 Get / Set: a tool's call on qubesd's socket (Set saves qubes.xml with fsync before it answers);
///   qube -> Admin API: <c>qrexec-client-vm @adminvm admin.vm.List</c> in a management qube, through
///     its agent, its qrexec daemon, the policy daemon and qubesd (a socket service);
///   qube -> /bin/true in dom0: the same qrexec path to an executable dom0 service, the comparison.
/// The in-qube loop times each call with <c>date +%s%N</c>, so those figures include starting the
/// (native) qrexec-client-vm and date itself.
/// </summary>
internal static class AdminBench
{
    public static int Run(int count, int rounds)
    {
        string bin = TestRepository.NativeBin;
        string state = Path.Combine(Path.GetTempPath(), $"qubes-bench-admin-{Environment.ProcessId}");
        try
        {
            Tool(bin, state, "qubes", "up");
            Tool(bin, state, "qvm-create", "bench-mgmt", "-l", "green");
            File.WriteAllText(Path.Combine(state, "policy.d", "20-bench.policy"),
                "admin.vm.List  *  bench-mgmt  @adminvm  allow  target=dom0\nbench.True  *  bench-mgmt  @adminvm  allow  target=dom0\n");
            File.CreateSymbolicLink(Path.Combine(state, "dom0", "rpc", "bench.True"), "/bin/true");
            string socket = Path.Combine(state, "run", "qubesd.sock");
            List<double> get = [], set = [], admin = [], exec = [];
            for (int round = 0; round < rounds; round++)
            {
                get.Add(Median(Enumerable.Range(0, count).Select(_ => Time(() => Call(socket, "admin.vm.property.Get+label dom0 name work\0")))));
                set.Add(Median(Enumerable.Range(0, count).Select(i => Time(() => Call(socket, "admin.vm.property.Set+memory dom0 name work\0" + (500 + (i & 1)).ToString(CultureInfo.InvariantCulture))))));
                admin.Add(InQube(bin, state, count, "qrexec-client-vm @adminvm admin.vm.List+"));
                exec.Add(InQube(bin, state, count, "qrexec-client-vm @adminvm bench.True"));
            }
            Stats g = Stats.Of(get), s = Stats.Of(set), a = Stats.Of(admin), e = Stats.Of(exec);
            Console.WriteLine($"admin: {rounds} rounds x {count} calls, per-round median latency");
            Console.WriteLine($"  dom0 socket property.Get:            {g.Format("ms")}");
            Console.WriteLine($"  dom0 socket property.Set (fsync):    {s.Format("ms")}");
            Console.WriteLine($"  qube -> admin.vm.List over qrexec:   {a.Format("ms")}");
            Console.WriteLine($"  qube -> /bin/true in dom0 (compare): {e.Format("ms")}");
            Console.WriteLine(string.Create(CultureInfo.InvariantCulture, $"  ratio Admin API / exec service over qrexec: {a.Median / e.Median:F2}"));
            Console.WriteLine(string.Create(CultureInfo.InvariantCulture, $"admin p50 ms: {a.Median:F3}"));
            return 0;
        }
        finally
        {
            Tool(bin, state, "qubes", "down");
            Directory.Delete(state, recursive: true);
        }
    }

    private static double Median(IEnumerable<double> values) => Stats.Of(values.ToList()).Median;

    private static double Time(Action call)
    {
        long start = Stopwatch.GetTimestamp();
        call();
        return Stopwatch.GetElapsedTime(start).TotalMilliseconds;
    }

    private static void Call(string socket, string request)
    {
        using Socket s = new(AddressFamily.Unix, SocketType.Stream, ProtocolType.Unspecified);
        s.Connect(new UnixDomainSocketEndPoint(socket));
        s.Send(Encoding.ASCII.GetBytes(request));
        s.Shutdown(SocketShutdown.Send);
        byte[] buffer = new byte[4096];
        int total = 0, n;
        while ((n = s.Receive(buffer)) > 0)
        {
            total += n;
        }
        if (total < 2 || buffer[0] != (byte)'0')
        {
            throw new InvalidOperationException($"{request}: no success reply");
        }
    }

    /// <summary>The median time of <paramref name="count"/> runs of <paramref name="command"/> in the management qube, timed there.</summary>
    private static double InQube(string bin, string state, int count, string command)
    {
        string loop = $"for i in $(seq {count}); do a=$(date +%s%N); {command} < /dev/null > /dev/null || exit 1; b=$(date +%s%N); echo $((b - a)); done";
        string output = Tool(bin, state, "qvm-run", "-p", "bench-mgmt", loop);
        return Median(output.Split('\n', StringSplitOptions.RemoveEmptyEntries).Select(static l => long.Parse(l, CultureInfo.InvariantCulture) / 1e6));
    }

    /// <summary>Runs a tool of the system in <paramref name="state"/> as dom0; its output. A failure throws.</summary>
    internal static string Tool(string bin, string state, string tool, params string[] args) => Tool(bin, state, tool, true, args);

    /// <summary>The same; with <paramref name="check"/> false a failure is not an error.</summary>
    internal static string Tool(string bin, string state, string tool, bool check, params string[] args) => ToolWithInput(bin, state, tool, check, null, args);

    /// <summary>The same, with the file <paramref name="input"/> (when given) on the tool's standard input.</summary>
    internal static string ToolWithInput(string bin, string state, string tool, bool check, string? input, params string[] args)
    {
        ProcessStartInfo psi = new(Path.Combine(bin, tool), args) { RedirectStandardOutput = true, RedirectStandardInput = input != null, UseShellExecute = false };
        psi.Environment["QUBES_STATE_DIR"] = state;
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
        if (check && p.ExitCode != 0)
        {
            throw new InvalidOperationException($"{tool} {string.Join(' ', args)}: exit {p.ExitCode}");
        }
        return output;
    }
}
