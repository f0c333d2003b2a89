using System;
using System.Collections.Generic;
using System.Diagnostics;
using System.Globalization;
using Qubes.Interop.Linux;

namespace Qubes.Bench;

/// <summary>
/// Two-process comparisons run in one invocation: vchan on the loopback hypervisor against the
/// same work over a Unix stream socket (stream) or an eventfd pair (pingpong). Both sides of every
/// comparison are pinned the same way (sender or initiator on CPU 0, receiver on CPU 1).
/// </summary>
internal static class Harness
{
    public static int Stream(long bytesPerRound, int rounds)
    {
        Console.WriteLine($"stream: {rounds} rounds of {bytesPerRound >> 20} MiB, 64 KiB writes, 64 KiB ring (vchan) / 64 KiB reads");
        using var host = new LoopbackHost();
        List<double> vchan = RunStreamVchan(host, bytesPerRound, rounds);
        List<double> unix = RunStreamSocket(host, bytesPerRound, rounds);
        Stats v = Stats.Of(vchan), u = Stats.Of(unix);
        Console.WriteLine($"vchan (loopback):  {v.Format("GB/s")}");
        Console.WriteLine($"unix stream socket: {u.Format("GB/s")}");
        Console.WriteLine(string.Create(CultureInfo.InvariantCulture, $"ratio vchan/unix-socket: {v.Median / u.Median:F2}"));
        return 0;
    }

    public static int PingPong(int roundTrips, int rounds)
    {
        Console.WriteLine($"pingpong: {rounds} rounds of {roundTrips} round trips of 1 byte");
        using var host = new LoopbackHost();
        List<double> vchan = RunPingVchan(host, roundTrips, rounds);
        List<double> efd = RunPingEventFd(host, roundTrips, rounds);
        Stats v = Stats.Of(vchan), e = Stats.Of(efd);
        Console.WriteLine($"vchan (loopback): {v.Format("us RTT", "F2")}");
        Console.WriteLine($"eventfd:          {e.Format("us RTT", "F2")}");
        Console.WriteLine(string.Create(CultureInfo.InvariantCulture, $"ratio vchan/eventfd: {v.Median / e.Median:F3}"));
        return 0;
    }

    private static List<double> RunStreamVchan(LoopbackHost host, long bytes, int rounds)
    {
        (int sendId, SafeFd sendConnection) = host.CreateDomain("bench-send");
        (int recvId, SafeFd recvConnection) = host.CreateDomain("bench-recv");
        string b = LoopbackHost.Text(bytes), r = LoopbackHost.Text(rounds), port = "100";
        Process sender = host.StartInDomain(sendConnection, "vchan-stream-send", LoopbackHost.Text(recvId), port, b, r);
        ExpectLine(sender, "ready");
        Process receiver = host.StartInDomain(recvConnection, "vchan-stream-recv", LoopbackHost.Text(sendId), port, b, r);
        return Throughputs(receiver, sender, bytes);
    }

    private static List<double> RunStreamSocket(LoopbackHost host, long bytes, int rounds)
    {
        (SafeFd a, SafeFd c) = FdPassing.SocketPair();
        string b = bytes.ToString(CultureInfo.InvariantCulture), r = rounds.ToString(CultureInfo.InvariantCulture);
        Process sender, receiver;
        using (a)
        using (c)
        {
            sender = host.StartWithFd(a.Fd, "sock-stream-send", a.Fd.ToString(CultureInfo.InvariantCulture), b, r);
            receiver = host.StartWithFd(c.Fd, "sock-stream-recv", c.Fd.ToString(CultureInfo.InvariantCulture), b, r);
        }
        return Throughputs(receiver, sender, bytes);
    }

    private static List<double> RunPingVchan(LoopbackHost host, int count, int rounds)
    {
        (int pongId, SafeFd pongConnection) = host.CreateDomain("bench-pong");
        (int pingId, SafeFd pingConnection) = host.CreateDomain("bench-ping");
        string n = LoopbackHost.Text(count), r = LoopbackHost.Text(rounds), port = "101";
        Process pong = host.StartInDomain(pongConnection, "vchan-pong", LoopbackHost.Text(pingId), port);
        ExpectLine(pong, "ready");
        Process ping = host.StartInDomain(pingConnection, "vchan-ping", LoopbackHost.Text(pongId), port, n, r);
        return Latencies(ping, pong);
    }

    private static List<double> RunPingEventFd(LoopbackHost host, int count, int rounds)
    {
        // blocking eventfds, as a plain wake-up ping-pong between two processes
        using SafeFd there = SafeFd.FromResult(Libc.eventfd(0, Libc.EFD_CLOEXEC), "eventfd");
        using SafeFd back = SafeFd.FromResult(Libc.eventfd(0, Libc.EFD_CLOEXEC), "eventfd");
        string n = count.ToString(CultureInfo.InvariantCulture), r = rounds.ToString(CultureInfo.InvariantCulture);
        string t = there.Fd.ToString(CultureInfo.InvariantCulture), k = back.Fd.ToString(CultureInfo.InvariantCulture);
        Fd.SetInheritable(back.Fd, true);
        Process pong = host.StartWithFd(there.Fd, "efd-pong", t, k, n, r);
        Process ping = host.StartWithFd(there.Fd, "efd-ping", t, k, n, r);
        Fd.SetInheritable(back.Fd, false);
        return Latencies(ping, pong);
    }

    private static List<double> Throughputs(Process receiver, Process other, long bytes)
    {
        var result = new List<double>();
        foreach (double seconds in Rounds(receiver, other))
        {
            result.Add(bytes / seconds / 1e9);
        }
        return result;
    }

    private static List<double> Latencies(Process measuring, Process other)
    {
        var result = new List<double>();
        foreach (double seconds in Rounds(measuring, other))
        {
            result.Add(seconds * 1e6);
        }
        return result;
    }

    private static List<double> Rounds(Process measuring, Process other)
    {
        var rounds = new List<double>();
        string? line;
        while ((line = measuring.StandardOutput.ReadLine()) != null)
        {
            if (line.StartsWith("round ", StringComparison.Ordinal))
            {
                rounds.Add(double.Parse(line.AsSpan(6), CultureInfo.InvariantCulture));
            }
        }
        measuring.WaitForExit();
        if (!other.WaitForExit(30_000))
        {
            other.Kill();
        }
        if (measuring.ExitCode != 0)
        {
            throw new InvalidOperationException($"benchmark peer failed with exit code {measuring.ExitCode}");
        }
        return rounds;
    }

    private static void ExpectLine(Process p, string expected)
    {
        string? line = p.StandardOutput.ReadLine();
        if (line != expected)
        {
            throw new InvalidOperationException($"benchmark peer said '{line}' instead of '{expected}'");
        }
    }
}
