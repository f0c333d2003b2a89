using System;
using System.Collections.Generic;
using System.Globalization;
using Qubes.Cli;
using Qubes.Interop.Linux;
using Qubes.Platform;
using Qubes.Platform.Loopback;
using Qubes.Vchan;

namespace Qubes.Tools.Qvchan;

/// <summary>
/// qvchan: a byte pipe between standard input/output and a vchan, for use inside a domain.
///   qvchan listen PEER PORT [--read-min N] [--write-min N]   be the server for domain PEER
///   qvchan connect SERVER PORT                               connect to domain SERVER's channel
/// Standard input is sent to the peer and what the peer sends goes to standard output. At the end
/// of standard input it keeps relaying until the peer closes. Exit status 0 when the peer closed
/// the channel, 1 on a set-up error, 2 on bad usage.
/// </summary>
internal static class Program
{
    private const int BufferSize = 65536;

    /// <summary>The command line.</summary>
    internal static Command Command { get; } = new("qvchan", HelpStyle.Getopt,
        Command.GetoptHelp,
        new Option("with listen: the least size of the ring the server reads from, in bytes (default: 65536)", "--read-min") { Metavar = "N" },
        new Option("with listen: the least size of the ring the server writes to, in bytes (default: 65536)", "--write-min") { Metavar = "N" })
    {
        Synopsis = "qvchan listen PEER PORT [--read-min N] [--write-min N] | qvchan connect SERVER PORT",
        Description = "A byte pipe between standard input/output and a vchan: be the server for domain PEER, or connect to domain SERVER's channel.",
    };

    internal static int Main(string[] args) => Command.Run(Console.Out, Console.Error, () => Run(args));

    private static int Run(string[] args)
    {
        int readMin = 65536, writeMin = 65536;
        List<string> operands = [];
        for (int i = 0; i < args.Length; i++)
        {
            if (!Command.IsOption(args[i]))
            {
                operands.Add(args[i]);
                continue;
            }
            foreach (Parsed parsed in Command.Read(args, ref i))
            {
                if (parsed.Option == null)
                {
                    throw new UsageException($"unknown option {parsed.Text}");
                }
                if (!int.TryParse(parsed.Value, NumberStyles.None, CultureInfo.InvariantCulture, out int value))
                {
                    throw new UsageException($"option {parsed.Option.Name} needs a non-negative number");
                }
                if (parsed.Option.Name == "--read-min")
                {
                    readMin = value;
                }
                else
                {
                    writeMin = value;
                }
            }
        }
        if (operands.Count != 3 || (operands[0] != "listen" && operands[0] != "connect")
            || !int.TryParse(operands[1], NumberStyles.None, CultureInfo.InvariantCulture, out int domain)
            || !int.TryParse(operands[2], NumberStyles.None, CultureInfo.InvariantCulture, out int port))
        {
            throw new UsageException("");
        }

        try
        {
            using IPlatform platform = LoopbackPlatform.FromEnvironment();
            using VchanEndpoint vchan = operands[0] == "listen"
                ? VchanEndpoint.ServerInit(platform, domain, port, readMin, writeMin)
                : VchanEndpoint.ClientInit(platform, domain, port);
            Console.Error.WriteLine($"qvchan: {(vchan.IsServer ? "serving" : "connected to")} domain {domain} port {port} (read ring {vchan.ReadRingSize} B, write ring {vchan.WriteRingSize} B)");
            return Relay(vchan);
        }
        catch (Exception e) when (e is VchanException or PlatformException or LinuxException)
        {
            Console.Error.WriteLine($"qvchan: {e.Message}");
            return 1;
        }
    }

    /// <summary>Moves bytes both ways with a non-blocking vchan and poll(2) over stdin and the event channel.</summary>
    private static unsafe int Relay(VchanEndpoint vchan)
    {
        vchan.Blocking = false;
        byte[] toPeer = new byte[BufferSize];
        byte[] fromPeer = new byte[BufferSize];
        int pendingStart = 0, pendingEnd = 0;
        bool stdinOpen = true;
        Libc.pollfd* fds = stackalloc Libc.pollfd[2];
        while (true)
        {
            int n = vchan.Read(fromPeer);
            if (n < 0)
            {
                Console.Error.WriteLine($"qvchan: domain {vchan.PeerDomain} closed the channel");
                return 0;
            }
            if (n > 0)
            {
                if (Fd.WriteAll(1, fromPeer.AsSpan(0, n)) != Errno.None)
                {
                    return 0; // our reader went away
                }
                continue;
            }
            if (pendingStart < pendingEnd)
            {
                int w = vchan.Write(toPeer.AsSpan(pendingStart, pendingEnd - pendingStart));
                if (w < 0)
                {
                    Console.Error.WriteLine($"qvchan: domain {vchan.PeerDomain} closed the channel");
                    return 0;
                }
                pendingStart += w;
                if (w > 0)
                {
                    continue;
                }
            }
            bool wantStdin = stdinOpen && pendingStart == pendingEnd;
            fds[0] = new Libc.pollfd { fd = wantStdin ? 0 : -1, events = Libc.POLLIN };
            fds[1] = new Libc.pollfd { fd = vchan.EventFd, events = Libc.POLLIN };
            if (Libc.poll(fds, 2, -1) < 0 && LastError.Get() != Errno.EINTR)
            {
                Console.Error.WriteLine($"qvchan: poll: {LastError.Get()}");
                return 1;
            }
            if ((fds[1].revents & Libc.POLLIN) != 0 && vchan.Wait() < 0)
            {
                return 0;
            }
            if (wantStdin && fds[0].revents != 0)
            {
                int r = Fd.Read(0, toPeer);
                if (r <= 0)
                {
                    stdinOpen = false;
                }
                else
                {
                    pendingStart = 0;
                    pendingEnd = r;
                }
            }
        }
    }
}
