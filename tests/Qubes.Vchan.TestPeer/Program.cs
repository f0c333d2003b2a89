using System;
using System.Diagnostics;
using System.Globalization;
using Qubes.Interop.Linux;
using Qubes.Platform;
using Qubes.Platform.Loopback;

namespace Qubes.Vchan.TestPeer;

/// <summary>
/// The other domain in multi-process vchan tests. It runs in a loopback domain (QUBES_LOHV_FD) and
/// reports on stdout one line per finished step, so the test can follow it.
///   echo PEER BASEPORT blocking|nonblocking SEED L:R[,L:R...]  serve each order pair on BASEPORT+i, echo until the client closes
///   hostile-server PEER PORT MS SEED    serve 12/12, wait for the client, then scribble over every shared field for MS ms and exit
///   hostile-client SERVER PORT MS SEED  connect, then scribble likewise
///   send-and-die PEER PORT BYTES        serve, wait for the client, send BYTES, then SIGKILL itself
///   send-and-close PEER PORT BYTES      serve, wait for the client, send BYTES, close in order, exit 0
/// </summary>
internal static unsafe class Program
{
    private static int Main(string[] args)
    {
        using IPlatform platform = LoopbackPlatform.FromEnvironment();
        int Arg(int i) => int.Parse(args[i], NumberStyles.AllowLeadingSign, CultureInfo.InvariantCulture);
        switch (args[0])
        {
            case "echo":
                Echo(platform, Arg(1), Arg(2), args[3] == "blocking", Arg(4), args[5]);
                return 0;
            case "hostile-server":
                using (VchanEndpoint v = VchanEndpoint.ServerInitWithOrders(platform, Arg(1), Arg(2), 12, 12))
                {
                    Console.WriteLine("ready");
                    if (!v.WaitForClient())
                    {
                        return 1;
                    }
                    Scribble(v, Arg(3), Arg(4));
                }
                return 0;
            case "hostile-client":
                using (VchanEndpoint v = VchanEndpoint.ClientInit(platform, Arg(1), Arg(2)))
                {
                    Console.WriteLine("ready");
                    Scribble(v, Arg(3), Arg(4));
                }
                return 0;
            case "send-and-die":
            case "send-and-close":
                VchanEndpoint s = VchanEndpoint.ServerInit(platform, Arg(1), Arg(2), 4096, 65536);
                Console.WriteLine("ready");
                if (!s.WaitForClient())
                {
                    return 1;
                }
                byte[] data = Pattern(Arg(3));
                if (s.Write(data) != data.Length)
                {
                    return 1;
                }
                Console.WriteLine("sent");
                if (args[0] == "send-and-die")
                {
                    Libc.kill(Libc.getpid(), Libc.SIGKILL);
                }
                s.Dispose();
                return 0;
            default:
                Console.Error.WriteLine($"unknown role {args[0]}");
                return 2;
        }
    }

    /// <summary>The bytes send-and-* roles send: position-dependent so loss or reordering shows.</summary>
    public static byte[] Pattern(int length)
    {
        byte[] data = new byte[length];
        for (int i = 0; i < length; i++)
        {
            data[i] = unchecked((byte)(i * 31 + (i >> 8)));
        }
        return data;
    }

    private static void Echo(IPlatform platform, int peer, int basePort, bool blocking, int seed, string pairs)
    {
        var rng = new Random(seed);
        byte[] buffer = new byte[1 << 21];
        string[] list = pairs.Split(',');
        for (int i = 0; i < list.Length; i++)
        {
            string[] lr = list[i].Split(':');
            int left = int.Parse(lr[0], CultureInfo.InvariantCulture);
            int right = int.Parse(lr[1], CultureInfo.InvariantCulture);
            using VchanEndpoint v = VchanEndpoint.ServerInitWithOrders(platform, peer, basePort + i, left, right);
            v.Blocking = blocking;
            Console.WriteLine($"listening {basePort + i}");
            long echoed = 0;
            while (true)
            {
                int n = v.Read(buffer.AsSpan(0, rng.Next(1, buffer.Length)));
                if (n < 0)
                {
                    break;
                }
                if (n == 0)
                {
                    WaitEvent(v);
                    continue;
                }
                int done = 0;
                while (done < n)
                {
                    int w = v.Write(buffer.AsSpan(done, n - done));
                    if (w < 0)
                    {
                        break;
                    }
                    if (w == 0)
                    {
                        WaitEvent(v);
                    }
                    done += w;
                }
                echoed += n;
            }
            Console.WriteLine($"echoed {echoed}");
        }
    }

    /// <summary>Non-blocking mode: sleep on the event descriptor (the request was posted by the call that returned 0).</summary>
    private static void WaitEvent(VchanEndpoint v)
    {
        if (Fd.PollIn(v.EventFd, 1000) == 1)
        {
            v.Wait();
        }
    }

    /// <summary>Writes arbitrary values into every index, order, live and notify field (our own live byte never 0) and abuses the calls.</summary>
    private static void Scribble(VchanEndpoint v, int milliseconds, int seed)
    {
        var rng = new Random(seed);
        byte* page = (byte*)v.ControlPage;
        uint[] nasty = [0, 1, 0x7FFFFFFF, 0x80000000, 0xFFFFFFFF, 4095, 4096, 4097, 1u << 20, 1u << 21];
        Span<byte> junk = stackalloc byte[512];
        var clock = Stopwatch.StartNew();
        while (clock.ElapsedMilliseconds < milliseconds)
        {
            for (int off = 0; off < 16; off += 4)
            {
                *(uint*)(page + off) = rng.Next(2) == 0 ? nasty[rng.Next(nasty.Length)] : (uint)rng.NextInt64(0, 1L << 32);
            }
            *(ushort*)(page + 16) = (ushort)rng.Next(65536);
            *(ushort*)(page + 18) = (ushort)rng.Next(65536);
            // our own live byte stays non-zero, so the victim keeps going until we really die
            int ownLive = v.IsServer ? 21 : 20;
            for (int off = 20; off < 24; off++)
            {
                page[off] = (byte)rng.Next(off == ownLive ? 1 : 0, 256);
            }
            if (rng.Next(8) == 0)
            {
                // also abuse the legitimate calls with the corrupted state
                v.Blocking = false;
                v.Write(junk[..rng.Next(junk.Length)]);
                v.Read(junk[..rng.Next(1, junk.Length)]);
            }
        }
    }
}
