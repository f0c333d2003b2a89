using System;
using System.Collections.Generic;
using System.Globalization;
using System.IO;
using System.Linq;
using Qubes.Tests;

namespace Qubes.Bench;

/// <summary>
/// qvm-copy between two qubes of a whole system (<c>qubes up</c>, native build), against a tar pipe
/// over the same qrexec path, in one sitting: per round, one large file and many small files are
/// sent from <c>work</c> to <c>personal</c> by
/// <list type="bullet">
/// <item><c>qvm-copy-to-vm personal DIR</c> (qubes.Filecopy: the receiver checks every name, writes
/// each file unnamed and links it in, and flushes the file system before it answers);</item>
/// <item><c>tar -cf - DIR | qrexec-client-vm personal bench.TarReceive</c>, the service running
/// <c>tar -xf -</c>, and again with a <c>sync -f</c> after it (the same flush);</item>
/// <item>with <c>--upstream-unpacker FILE</c> (from tests/upstream/build-upstream-unpacker.sh),
/// the same sender into upstream's receiving algorithm: <c>qrexec-client-vm personal
/// bench.UpstreamFilecopy qfile-agent DIR</c>.</item>
/// </list>
/// Each transfer is timed in the sending qube from before the sender starts to after it ended;
/// the target's copy is removed between transfers, and checked (file count and bytes) after each.
/// A first round warms up and is not counted. The qubes' volumes live under <c>--state-parent</c> (default /dev/shm): on a memory file system
/// the transfer is measured rather than the host's disk.
/// </summary>
internal static class FileCopyBench
{
    public static int Run(long largeBytes, int smallFiles, int smallBytes, int rounds, string stateParent, string? upstreamUnpacker)
    {
        string bin = TestRepository.NativeBin;
        string state = Path.Combine(stateParent, $"qubes-bench-filecopy-{Environment.ProcessId}");
        try
        {
            Console.WriteLine($"filecopy: {rounds} rounds; large: 1 file of {largeBytes >> 20} MiB; small: {smallFiles} files of {smallBytes} bytes; volumes under {stateParent}");
            AdminBench.Tool(bin, state, "qubes", "up");
            File.WriteAllText(Path.Combine(state, "policy.d", "20-bench.policy"),
                "qubes.Filecopy  *  work  personal  allow\nbench.TarReceive  *  work  personal  allow\n");
            AdminBench.Tool(bin, state, "qvm-run", "-p", "-u", "root", "personal",
                "mkdir -p /usr/local/etc/qubes-rpc && cd /usr/local/etc/qubes-rpc"
                + " && printf '#!/bin/sh\\nmkdir -p ~/tarin && cd ~/tarin && exec tar -xf -\\n' > bench.TarReceive"
                + " && printf '#!/bin/sh\\nmkdir -p ~/tarin && cd ~/tarin && tar -xf - && exec sync -f .\\n' > bench.TarReceiveSync"
                + " && chmod +x bench.TarReceive bench.TarReceiveSync");
            File.AppendAllText(Path.Combine(state, "policy.d", "20-bench.policy"), "bench.TarReceiveSync  *  work  personal  allow\n");
            List<string> methods = ["qvm-copy", "tar", "tar+sync"];
            if (upstreamUnpacker is not null)
            {
                InstallUpstream(bin, state, upstreamUnpacker);
                methods.Add("upstream");
            }
            AdminBench.Tool(bin, state, "qvm-run", "-p", "work", string.Create(CultureInfo.InvariantCulture,
                $"rm -rf ~/bench && mkdir -p ~/bench/large ~/bench/small && head -c {largeBytes} /dev/urandom > ~/bench/large/data"
                + $" && cd ~/bench/small && head -c {(long)smallFiles * smallBytes} /dev/urandom | split -b {smallBytes} -a 6 - f"));
            Dictionary<(string Set, string Method), List<double>> seconds = [];
            foreach (string set in (string[])["large", "small"])
            {
                foreach (string method in methods)
                {
                    seconds[(set, method)] = [];
                }
            }
            // round 0 warms up: the first writes into a fresh volume also grow its image file
            for (int round = 0; round <= rounds; round++)
            {
                foreach (string set in (string[])["large", "small"])
                {
                    long bytes = set == "large" ? largeBytes : (long)smallFiles * smallBytes;
                    int files = set == "large" ? 1 : smallFiles;
                    foreach (string method in methods)
                    {
                        AdminBench.Tool(bin, state, "qvm-run", "-p", "personal", "rm -rf ~/QubesIncoming ~/tarin && sync -f ~");
                        string send = method switch
                        {
                            "qvm-copy" => $"qvm-copy-to-vm personal {set} 2>/dev/null",
                            "tar" => $"tar -cf - {set} | qrexec-client-vm personal bench.TarReceive",
                            "upstream" => $"qrexec-client-vm personal bench.UpstreamFilecopy {Path.Combine(bin, "qfile-agent")} {set}",
                            _ => $"tar -cf - {set} | qrexec-client-vm personal bench.TarReceiveSync",
                        };
                        string output = AdminBench.Tool(bin, state, "qvm-run", "-p", "work",
                            $"cd ~/bench && a=$(date +%s%N) && {send} && b=$(date +%s%N) && echo $((b - a))");
                        double taken = long.Parse(output.Trim(), CultureInfo.InvariantCulture) / 1e9;
                        if (round > 0)
                        {
                            seconds[(set, method)].Add(taken);
                        }
                        Console.WriteLine(string.Create(CultureInfo.InvariantCulture, $"  {(round == 0 ? "warm-up" : $"round {round}")}, {set}, {method}: {taken:F3} s"));
                        string where = method is "qvm-copy" or "upstream" ? $"~/QubesIncoming/work/{set}" : $"~/tarin/{set}";
                        string check = AdminBench.Tool(bin, state, "qvm-run", "-p", "personal", $"find {where} -type f | wc -l; du -sb --apparent-size {where} | cut -f1").Trim();
                        string[] counted = check.Split('\n');
                        long received = long.Parse(counted[1], CultureInfo.InvariantCulture);
                        if (int.Parse(counted[0], CultureInfo.InvariantCulture) != files || received < bytes)
                        {
                            throw new InvalidOperationException($"{method} {set}: received {counted[0]} files, {received} bytes; sent {files} files, {bytes} bytes");
                        }
                    }
                }
            }
            AdminBench.Tool(bin, state, "qvm-run", "-p", "personal", "rm -rf ~/QubesIncoming ~/tarin");
            double largeGb = largeBytes / 1e9;
            Console.WriteLine($"large ({largeBytes >> 20} MiB), GB/s:");
            Dictionary<string, Stats> large = [];
            foreach (string method in methods)
            {
                large[method] = Stats.Of(seconds[("large", method)].Select(s => largeGb / s).ToList());
                Console.WriteLine($"  {method,-9} {large[method].Format("GB/s")}");
            }
            Console.WriteLine($"small ({smallFiles} x {smallBytes} B), files/s:");
            Dictionary<string, Stats> small = [];
            foreach (string method in methods)
            {
                small[method] = Stats.Of(seconds[("small", method)].Select(s => smallFiles / s).ToList());
                Console.WriteLine($"  {method,-9} {small[method].Format("files/s", "F0")}");
            }
            Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
                $"ratio qvm-copy / tar (medians): large {large["qvm-copy"].Median / large["tar"].Median:F2}, small {small["qvm-copy"].Median / small["tar"].Median:F2}; / tar+sync: large {large["qvm-copy"].Median / large["tar+sync"].Median:F2}, small {small["qvm-copy"].Median / small["tar+sync"].Median:F2}"));
            if (upstreamUnpacker is not null)
            {
                Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
                    $"ratio qvm-copy / upstream's receiver (medians): large {large["qvm-copy"].Median / large["upstream"].Median:F2}, small {small["qvm-copy"].Median / small["upstream"].Median:F2}"));
            }
            Console.WriteLine(string.Create(CultureInfo.InvariantCulture, $"filecopy large GB/s: {large["qvm-copy"].Median:F3}"));
            Console.WriteLine(string.Create(CultureInfo.InvariantCulture, $"filecopy small files/s: {small["qvm-copy"].Median:F0}"));
            return 0;
        }
        finally
        {
            AdminBench.Tool(bin, state, "qubes", false, "down");
            Directory.Delete(state, recursive: true);
        }
    }

    /// <summary>Puts <paramref name="unpacker"/> into personal as the service bench.UpstreamFilecopy, allowed from work.</summary>
    private static void InstallUpstream(string bin, string state, string unpacker)
    {
        AdminBench.ToolWithInput(bin, state, "qvm-run", true, unpacker, "-p", "-u", "root", "personal",
            "mkdir -p /usr/local/bin && cat > /usr/local/bin/qfile-unpacker-upstream && chmod 755 /usr/local/bin/qfile-unpacker-upstream"
            + " && printf '#!/bin/sh\\nexec /usr/local/bin/qfile-unpacker-upstream\\n' > /usr/local/etc/qubes-rpc/bench.UpstreamFilecopy"
            + " && chmod +x /usr/local/etc/qubes-rpc/bench.UpstreamFilecopy");
        File.AppendAllText(Path.Combine(state, "policy.d", "20-bench.policy"), "bench.UpstreamFilecopy  *  work  personal  allow\n");
    }
}
