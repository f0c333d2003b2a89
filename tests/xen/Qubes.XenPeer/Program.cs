using System;
using System.Diagnostics;
using System.Globalization;
using Qubes.Interop.Linux;
using Qubes.Platform;
using Qubes.Platform.Xen;
using Qubes.Vchan;

namespace Qubes.XenPeer;

/// <summary>
/// The C# side of the real-Xen scenarios (tests/xen/run.sh). Each role prints
/// "XENTEST PASS name: ..." or "XENTEST FAIL name: why" and exits 0 only on PASS.
///   stream-server PEER PORT MIB   serve; send MIB MiB of the pattern, then receive and check MIB MiB
///   stream-client SERVER PORT MIB connect; receive and check MIB MiB, then send MIB MiB
///   die-client SERVER PORT        connect, send 4096 bytes, then SIGKILL itself
///   death-server PEER PORT        serve; receive the 4096 bytes, then expect the channel to close
///   probe                         platform facts: own id, liveness of self and of a missing domain
/// </summary>
internal static class Program
{
    private static string s_name = "";

    private static int Main(string[] args)
    {
        int I(int i) => int.Parse(args[i], CultureInfo.InvariantCulture);
        s_name = $"csharp-{args[0]}" + (args.Length > 2 ? $" port {args[2]}" : "");
        try
        {
            using XenPlatform platform = XenPlatform.Open();
            return args[0] switch
            {
                "stream-server" => StreamServer(platform, I(1), I(2), I(3)),
                "stream-client" => StreamClient(platform, I(1), I(2), I(3)),
                "die-client" => DieClient(platform, I(1), I(2)),
                "death-server" => DeathServer(platform, I(1), I(2)),
                "probe" => Probe(platform),
                _ => Fail($"unknown role {args[0]}"),
            };
        }
        catch (Exception e) when (e is VchanException or PlatformException or LinuxException)
        {
            return Fail(e.Message);
        }
    }

    private static int Pass(string detail)
    {
        Console.WriteLine($"XENTEST PASS {s_name}: {detail}");
        return 0;
    }

    private static int Fail(string why)
    {
        Console.WriteLine($"XENTEST FAIL {s_name}: {why}");
        return 1;
    }

    private static int StreamServer(IPlatform platform, int peer, int port, int mib)
    {
        using VchanEndpoint v = VchanEndpoint.ServerInit(platform, peer, port, 65536, 65536);
        if (!v.WaitForClient())
        {
            return Fail("client never connected");
        }
        var clock = Stopwatch.StartNew();
        long total = (long)mib << 20;
        if (!Pattern.Send(v, total))
        {
            return Fail("send failed");
        }
        string? error = Pattern.Receive(v, total);
        return error == null
            ? Pass($"{mib} MiB each way checked, rings {v.ReadRingSize}/{v.WriteRingSize} B, {clock.Elapsed.TotalSeconds:F1} s (emulated)")
            : Fail(error);
    }

    private static int StreamClient(IPlatform platform, int server, int port, int mib)
    {
        using VchanEndpoint v = VchanEndpoint.ClientInit(platform, server, port);
        long total = (long)mib << 20;
        string? error = Pattern.Receive(v, total);
        if (error != null)
        {
            return Fail(error);
        }
        return Pattern.Send(v, total) ? Pass($"{mib} MiB each way checked") : Fail("send failed");
    }

    private static int DieClient(IPlatform platform, int server, int port)
    {
        VchanEndpoint v = VchanEndpoint.ClientInit(platform, server, port);
        if (!Pattern.Send(v, 4096))
        {
            return Fail("send failed");
        }
        Console.WriteLine($"XENTEST INFO {s_name}: sent 4096 bytes, now killing myself");
        Console.Out.Flush();
        Libc.kill(Libc.getpid(), Libc.SIGKILL);
        return Fail("still alive after SIGKILL");
    }

    private static int DeathServer(IPlatform platform, int peer, int port)
    {
        using VchanEndpoint v = VchanEndpoint.ServerInit(platform, peer, port, 4096, 4096);
        if (!v.WaitForClient())
        {
            return Fail("client never connected");
        }
        string? error = Pattern.Receive(v, 4096);
        if (error != null)
        {
            return Fail(error);
        }
        var clock = Stopwatch.StartNew();
        byte[] one = new byte[1];
        int r = v.Read(one);
        if (r != -1)
        {
            return Fail($"read after the peer's death returned {r}");
        }
        VchanState state = v.IsOpen();
        return state == VchanState.Disconnected
            ? Pass($"survivor noticed its peer's death after {clock.Elapsed.TotalMilliseconds:F0} ms; state {state}")
            : Fail($"state after the peer's death is {state}");
    }

    private static int Probe(IPlatform platform)
    {
        int own = platform.Domains.OwnId;
        bool self = platform.Domains.IsAlive(own);
        bool missing = platform.Domains.IsAlive(31000);
        return self && !missing
            ? Pass($"own domain {own} alive, domain 31000 absent")
            : Fail($"liveness wrong: self {self}, domain 31000 {missing}");
    }
}
