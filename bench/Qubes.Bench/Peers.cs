using System;
using System.Diagnostics;
using System.Globalization;
using Qubes.Interop.Linux;
using Qubes.Platform;
using Qubes.Platform.Loopback;
using Qubes.Vchan;

namespace Qubes.Bench;

/// <summary>
/// The child-process roles of the harness. Each streams or ping-pongs for (1 warm-up + R) rounds
/// and the measuring side prints one line per measured round: "round SECONDS".
/// </summary>
internal static unsafe class Peers
{
    public const int StreamChunk = 64 * 1024;

    public static int Run(string[] args)
    {
        string role = args[0];
        long L(int i) => long.Parse(args[i], CultureInfo.InvariantCulture);
        int I(int i) => int.Parse(args[i], CultureInfo.InvariantCulture);
        Pin(role.EndsWith("send", StringComparison.Ordinal) || role.EndsWith("ping", StringComparison.Ordinal) ? 0 : 1);
        switch (role)
        {
            case "vchan-stream-send":
            {
                using IPlatform platform = LoopbackPlatform.FromEnvironment();
                using VchanEndpoint v = VchanEndpoint.ServerInit(platform, I(1), I(2), StreamChunk, StreamChunk);
                Console.WriteLine("ready");
                byte[] chunk = Chunk();
                long total = L(3) * (I(4) + 1);
                for (long sent = 0; sent < total; sent += chunk.Length)
                {
                    if (v.Write(chunk) != chunk.Length)
                    {
                        return 1;
                    }
                }
                // stay until the reader has everything (it closes first)
                while (v.Read(chunk) > 0)
                {
                }
                return 0;
            }
            case "vchan-stream-recv":
            {
                using IPlatform platform = LoopbackPlatform.FromEnvironment();
                using VchanEndpoint v = VchanEndpoint.ClientInit(platform, I(1), I(2));
                byte[] buffer = new byte[StreamChunk];
                return ReceiveRounds(L(3), I(4), buffer, static (state, b) => ((VchanEndpoint)state).Read(b), v);
            }
            case "sock-stream-send":
            {
                int fd = I(1);
                byte[] chunk = Chunk();
                long total = L(2) * (I(3) + 1);
                for (long sent = 0; sent < total; sent += chunk.Length)
                {
                    if (Fd.WriteAll(fd, chunk) != Errno.None)
                    {
                        return 1;
                    }
                }
                Fd.Read(fd, chunk); // until the reader closes
                return 0;
            }
            case "sock-stream-recv":
            {
                int fd = I(1);
                byte[] buffer = new byte[StreamChunk];
                int rc = ReceiveRounds(L(2), I(3), buffer, static (state, b) => Fd.Read((int)state, b), fd);
                Libc.close(fd);
                return rc;
            }
            case "vchan-ping":
            {
                using IPlatform platform = LoopbackPlatform.FromEnvironment();
                using VchanEndpoint v = VchanEndpoint.ClientInit(platform, I(1), I(2));
                byte[] b = new byte[1];
                return PingRounds(I(3), I(4), () => v.Send(b) == 1 && v.Recv(b) == 1);
            }
            case "vchan-pong":
            {
                using IPlatform platform = LoopbackPlatform.FromEnvironment();
                using VchanEndpoint v = VchanEndpoint.ServerInit(platform, I(1), I(2), 1024, 1024);
                Console.WriteLine("ready");
                byte[] b = new byte[1];
                while (v.Recv(b) == 1 && v.Send(b) == 1)
                {
                }
                return 0;
            }
            case "efd-ping":
            {
                int there = I(1), back = I(2);
                return PingRounds(I(3), I(4), () => EfdWrite(there) && EfdRead(back));
            }
            case "efd-pong":
            {
                int there = I(1), back = I(2);
                long count = (long)I(3) * (I(4) + 1);
                for (long i = 0; i < count; i++)
                {
                    if (!EfdRead(there) || !EfdWrite(back))
                    {
                        return 1;
                    }
                }
                return 0;
            }
            default:
                Console.Error.WriteLine($"unknown peer role {role}");
                return 2;
        }
    }

    private static byte[] Chunk()
    {
        byte[] chunk = new byte[StreamChunk];
        new Random(7).NextBytes(chunk);
        return chunk;
    }

    private static void Pin(int cpu)
    {
        if (OperatingSystem.IsLinux() && Environment.ProcessorCount > 1)
        {
            Process.GetCurrentProcess().ProcessorAffinity = (IntPtr)(1 << cpu);
        }
    }

    /// <summary>Reads (1 + rounds) × bytes; times each measured round from the end of the previous one.</summary>
    private static int ReceiveRounds(long bytes, int rounds, byte[] buffer, Func<object, byte[], int> read, object state)
    {
        long received = 0;
        long boundary = bytes; // end of the warm-up round
        long start = 0;
        int round = -1;
        while (round < rounds)
        {
            int n = read(state, buffer);
            if (n <= 0)
            {
                return 1;
            }
            received += n;
            if (received >= boundary)
            {
                long now = Stopwatch.GetTimestamp();
                if (round >= 0)
                {
                    double seconds = (double)(now - start) / Stopwatch.Frequency;
                    Console.WriteLine(string.Create(CultureInfo.InvariantCulture, $"round {seconds:R}"));
                }
                start = now;
                boundary += bytes;
                round++;
            }
        }
        return 0;
    }

    private static int PingRounds(int count, int rounds, Func<bool> roundTrip)
    {
        for (int r = -1; r < rounds; r++)
        {
            long t0 = Stopwatch.GetTimestamp();
            for (int i = 0; i < count; i++)
            {
                if (!roundTrip())
                {
                    return 1;
                }
            }
            double seconds = (double)(Stopwatch.GetTimestamp() - t0) / Stopwatch.Frequency;
            if (r >= 0)
            {
                Console.WriteLine(string.Create(CultureInfo.InvariantCulture, $"round {seconds / count:R}"));
            }
        }
        return 0;
    }

    private static bool EfdWrite(int fd)
    {
        ulong one = 1;
        return Libc.write(fd, &one, 8) == 8;
    }

    private static bool EfdRead(int fd)
    {
        ulong value;
        return Libc.read(fd, &value, 8) == 8;
    }
}
