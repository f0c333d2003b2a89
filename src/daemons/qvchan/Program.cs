using System;
using System.Globalization;
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

    private static int Main(string[] args)
    {
        if (args.Length < 3 || (args[0] != "listen" && args[0] != "connect")
            || !int.TryParse(args[1], NumberStyles.None, CultureInfo.InvariantCulture, out int domain)
            || !int.TryParse(args[2], NumberStyles.None, CultureInfo.InvariantCulture, out int port))
        {
            Console.Error.WriteLine("usage: qvchan listen PEER PORT [--read-min N] [--write-min N] | qvchan connect SERVER PORT");
            return 2;
        }
        int readMin = 65536, writeMin = 65536;
        for (int i = 3; i < args.Length; i += 2)
        {
            if (i + 1 >= args.Length || !int.TryParse(args[i + 1], NumberStyles.None, CultureInfo.InvariantCulture, out int value))
            {
                Console.Error.WriteLine($"qvchan: option {args[i]} needs a non-negative number");
                return 2;
            }
            switch (args[i])
            {
                case "--read-min": readMin = value; break;
                case "--write-min": writeMin = value; break;
                default:
                    Console.Error.WriteLine($"qvchan: unknown option {args[i]}");
                    return 2;
            }
        }

        try
        {
            using IPlatform platform = LoopbackPlatform.FromEnvironment();
            using VchanEndpoint vchan = args[0] == "listen"
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
