using System;
using System.Collections.Generic;
using System.Diagnostics;
using System.Globalization;
using System.Linq;
using System.Threading.Tasks;
using Qubes.Interop.Linux;
using Qubes.Platform;
using Qubes.Platform.Loopback;
using Qubes.Platform.Tests;
using Xunit;

namespace Qubes.Vchan.Tests;

/// <summary>vchan between this test process (one domain) and the test peer process (another domain).</summary>
public class ProcessTests
{
    private static string S(int value) => value.ToString(CultureInfo.InvariantCulture);

    private static List<(int Left, int Right)> AllValidPairs() =>
        RingTests.OrderPairs().Select(p => ((int)p[0], (int)p[1])).ToList();

    [Theory]
    [InlineData(true)]
    [InlineData(false)]
    public void Every_order_pair_carries_random_sizes_through_many_wraps_between_two_processes(bool blocking)
    {
        using var broker = new TestBroker();
        (int me, LoopbackPlatform platform) = broker.NewDomain("tester");
        using (platform)
        {
            List<(int Left, int Right)> pairs = AllValidPairs();
            string list = string.Join(',', pairs.Select(p => $"{p.Left}:{p.Right}"));
            using var peer = PeerProcess.Start(broker, "echo", "echo", S(me), "1000", blocking ? "blocking" : "nonblocking", "5", list);
            var rng = new Random(blocking ? 1 : 2);
            for (int i = 0; i < pairs.Count; i++)
            {
                Assert.Equal($"listening {1000 + i}", peer.ReadLine());
                using VchanEndpoint v = VchanEndpoint.ClientInit(platform, peer.DomainId, 1000 + i);
                Assert.Equal(1 << pairs[i].Left, v.WriteRingSize);
                Assert.Equal(1 << pairs[i].Right, v.ReadRingSize);
                long total = Math.Max(4L << Math.Max(pairs[i].Left, pairs[i].Right), 1 << 16);
                if (blocking)
                {
                    EchoBlocking(v, rng, total);
                }
                else
                {
                    EchoNonBlocking(v, rng, total);
                }
                v.Dispose();
                Assert.Equal($"echoed {total}", peer.ReadLine());
            }
            Assert.True(peer.Process.WaitForExit(10_000));
            Assert.Equal(0, peer.Process.ExitCode);
        }
    }

    /// <summary>Send a random chunk that fits both rings, receive its echo exactly.</summary>
    private static void EchoBlocking(VchanEndpoint v, Random rng, long total)
    {
        int max = Math.Min(v.ReadRingSize, v.WriteRingSize);
        byte[] data = new byte[max];
        byte[] back = new byte[max];
        for (long done = 0; done < total;)
        {
            int n = (int)Math.Min(rng.Next(1, max + 1), total - done);
            rng.NextBytes(data.AsSpan(0, n));
            Assert.Equal(n, rng.Next(2) == 0 ? v.Send(data.AsSpan(0, n)) : v.Write(data.AsSpan(0, n)));
            Assert.Equal(n, v.Recv(back.AsSpan(0, n)));
            Assert.True(data.AsSpan(0, n).SequenceEqual(back.AsSpan(0, n)), $"echo differs at offset {done}");
            done += n;
        }
    }

    /// <summary>An event loop: write what fits, read what is there, sleep on the event descriptor when neither moves.</summary>
    private static void EchoNonBlocking(VchanEndpoint v, Random rng, long total)
    {
        v.Blocking = false;
        byte[] data = new byte[total];
        rng.NextBytes(data);
        byte[] back = new byte[total];
        long sent = 0, received = 0;
        var clock = Stopwatch.StartNew();
        while (received < total)
        {
            bool moved = false;
            if (sent < total)
            {
                int w = v.Write(data.AsSpan((int)sent, (int)Math.Min(rng.Next(1, 1 << 17), total - sent)));
                Assert.True(w >= 0, "write failed");
                sent += w;
                moved |= w > 0;
            }
            int r = v.Read(back.AsSpan((int)received, (int)Math.Min(rng.Next(1, 1 << 17), total - received)));
            Assert.True(r >= 0, "read failed");
            received += r;
            moved |= r > 0;
            if (!moved && Fd.PollIn(v.EventFd, 5000) == 1)
            {
                v.Wait();
            }
            Assert.True(clock.ElapsedMilliseconds < 60_000, "non-blocking echo stalled");
        }
        Assert.True(data.AsSpan().SequenceEqual(back), "echoed stream differs");
    }

    [Theory]
    [InlineData("send-and-die")]
    [InlineData("send-and-close")]
    public void Data_sent_before_the_peer_goes_is_delivered_then_the_channel_reads_closed(string role)
    {
        using var broker = new TestBroker();
        (int me, LoopbackPlatform platform) = broker.NewDomain("survivor");
        using (platform)
        {
            const int Bytes = 50_000;
            using var peer = PeerProcess.Start(broker, "sender", role, S(me), "77", S(Bytes));
            Assert.Equal("ready", peer.ReadLine());
            using VchanEndpoint v = VchanEndpoint.ClientInit(platform, peer.DomainId, 77);
            Assert.True(peer.Process.WaitForExit(10_000));
            byte[] got = new byte[Bytes];
            Assert.Equal(Bytes, v.Recv(got));
            Assert.Equal(TestPeerPattern(Bytes), got);
            Assert.Equal(-1, v.Read(new byte[1]));
            Assert.Equal(-1, v.Write(new byte[1]));
            Assert.Equal(VchanState.Disconnected, v.IsOpen());
            if (role == "send-and-close")
            {
                Assert.Equal(0, peer.Process.ExitCode);
            }
            else
            {
                Assert.NotEqual(0, peer.Process.ExitCode); // killed by SIGKILL
            }
        }
    }

    private static byte[] TestPeerPattern(int length)
    {
        byte[] data = new byte[length];
        for (int i = 0; i < length; i++)
        {
            data[i] = unchecked((byte)(i * 31 + (i >> 8)));
        }
        return data;
    }

    [Fact]
    public void A_blocked_reader_wakes_with_an_error_when_the_peer_process_is_killed()
    {
        using var broker = new TestBroker();
        (int me, LoopbackPlatform platform) = broker.NewDomain("survivor");
        using (platform)
        {
            using var peer = PeerProcess.Start(broker, "sender", "send-and-die", S(me), "78", "1");
            Assert.Equal("ready", peer.ReadLine());
            using VchanEndpoint v = VchanEndpoint.ClientInit(platform, peer.DomainId, 78);
            v.SpinMicroseconds = 0;
            Assert.Equal(1, v.Read(new byte[1]));
            var clock = Stopwatch.StartNew();
            Assert.Equal(-1, v.Read(new byte[1]));   // blocks until the death is signalled
            Assert.True(clock.ElapsedMilliseconds < 10_000);
        }
    }

    [Theory]
    [InlineData(true)]
    [InlineData(false)]
    public void A_hostile_server_writing_arbitrary_indexes_orders_and_notify_bytes_costs_the_victim_only_its_connection(bool blocking)
    {
        using var broker = new TestBroker();
        (int me, LoopbackPlatform platform) = broker.NewDomain("victim");
        using (platform)
        {
            using var peer = PeerProcess.Start(broker, "hostile", "hostile-server", S(me), "90", "1500", blocking ? "3" : "4");
            Assert.Equal("ready", peer.ReadLine());
            using VchanEndpoint v = VchanEndpoint.ClientInit(platform, peer.DomainId, 90);
            Victimize(v, blocking);
            Assert.Equal(VchanState.Disconnected, v.IsOpen());
        }
    }

    [Theory]
    [InlineData(true)]
    [InlineData(false)]
    public void A_hostile_client_writing_arbitrary_indexes_orders_and_notify_bytes_costs_the_victim_only_its_connection(bool blocking)
    {
        using var broker = new TestBroker();
        (int me, LoopbackPlatform platform) = broker.NewDomain("victim");
        using (platform)
        {
            (int hostileId, SafeFd connection) = broker.Dom0.CreateDomain("hostile");
            using VchanEndpoint v = VchanEndpoint.ServerInit(platform, hostileId, 91, 4096, 4096);
            var psi = new ProcessStartInfo(System.IO.Path.Combine(AppContext.BaseDirectory, "Qubes.Vchan.TestPeer"))
            {
                RedirectStandardOutput = true,
                UseShellExecute = false,
            };
            foreach (string a in new[] { "hostile-client", S(me), "91", "1500", blocking ? "5" : "6" })
            {
                psi.ArgumentList.Add(a);
            }
            using Process hostile = LoopbackPlatform.StartInDomain(connection, psi);
            connection.Dispose();
            Assert.Equal("ready", hostile.StandardOutput.ReadLine());
            Victimize(v, blocking);
            Assert.Equal(VchanState.Disconnected, v.IsOpen());
            hostile.WaitForExit();
        }
    }

    /// <summary>Reads and writes on the victim until it reports the connection broken; must end in bounded time.</summary>
    private static void Victimize(VchanEndpoint v, bool blocking)
    {
        v.Blocking = blocking;
        var rng = new Random(9);
        byte[] buffer = new byte[8192];
        var clock = Stopwatch.StartNew();
        long moved = 0;
        var run = Task.Run(() =>
        {
            while (true)
            {
                int n = rng.Next(3) switch
                {
                    0 => v.Read(buffer.AsSpan(0, rng.Next(1, buffer.Length))),
                    1 => v.Write(buffer.AsSpan(0, rng.Next(1, buffer.Length))),
                    _ => v.Send(buffer.AsSpan(0, rng.Next(1, 64))),
                };
                if (n < 0)
                {
                    return;
                }
                moved += n;
                Assert.InRange(v.DataReady(), 0, v.ReadRingSize);
                Assert.InRange(v.BufferSpace(), 0, v.WriteRingSize);
                if (!blocking && n == 0 && Fd.PollIn(v.EventFd, 100) == 1)
                {
                    v.Wait();
                }
            }
        });
        Assert.True(run.Wait(TimeSpan.FromSeconds(30)), "the victim hung");
        Assert.True(clock.ElapsedMilliseconds >= 1000, "the victim gave up before the peer stopped");
        Assert.True(moved >= 0);
    }

    [Fact]
    public void A_server_is_waiting_until_its_client_connects_and_its_store_entry_is_readable_only_by_that_client()
    {
        using var broker = new TestBroker();
        (int serverId, LoopbackPlatform server) = broker.NewDomain("server");
        (int clientId, LoopbackPlatform client) = broker.NewDomain("client");
        (int thirdId, LoopbackPlatform third) = broker.NewDomain("third");
        using (server)
        using (client)
        using (third)
        {
            using VchanEndpoint s = VchanEndpoint.ServerInit(server, clientId, 5, 4096, 4096);
            Assert.Equal(VchanState.Waiting, s.IsOpen());
            string entry = $"/local/domain/{serverId}/data/vchan/{clientId}/5";
            uint ringRef, port;
            using (IStore store = client.OpenStore())
            {
                ringRef = uint.Parse(store.Read(entry + "/ring-ref")!, CultureInfo.InvariantCulture);
                port = uint.Parse(store.Read(entry + "/event-channel")!, CultureInfo.InvariantCulture);
            }
            using (IStore store = third.OpenStore())
            {
                var denied = Assert.Throws<StoreException>(() => store.Read(entry + "/ring-ref"));
                Assert.Equal(Errno.EACCES, denied.Errno);
            }
            // even knowing the numbers, a third domain can neither bind the port nor map the page
            Assert.ThrowsAny<PlatformException>(() => third.EventChannels.BindInterdomain(serverId, port));
            Assert.ThrowsAny<PlatformException>(() => third.Grants.Map(serverId, [ringRef], writable: false));

            using VchanEndpoint c = VchanEndpoint.ClientInit(client, serverId, 5);
            Assert.Equal(VchanState.Connected, c.IsOpen());
            Assert.Equal(0, s.Wait());               // the client's connect signal
            Assert.Equal(VchanState.Connected, s.IsOpen());
            using (IStore store = server.OpenStore())
            {
                Assert.Null(store.Read(entry + "/ring-ref"));
                Assert.Null(store.Directory($"/local/domain/{serverId}/data/vchan/{clientId}"));
            }
            Assert.Equal(3, c.Send("abc"u8));
            byte[] got = new byte[3];
            Assert.Equal(3, s.Recv(got));
            Assert.Equal("abc"u8.ToArray(), got);

            c.Dispose();
            Assert.Equal(VchanState.Disconnected, s.IsOpen());
            Assert.Equal(-1, s.Read(got));
        }
    }

    [Fact]
    public void WaitForClient_times_out_while_waiting_and_removes_the_entry_of_a_client_that_connected_before_it_was_called()
    {
        using var broker = new TestBroker();
        (int serverId, LoopbackPlatform server) = broker.NewDomain("server");
        (int clientId, LoopbackPlatform client) = broker.NewDomain("client");
        using (server)
        using (client)
        {
            using VchanEndpoint s = VchanEndpoint.ServerInit(server, clientId, 9, 65536, 65536);
            long t0 = Environment.TickCount64;
            Assert.Equal(VchanState.Waiting, s.WaitForClient(150));
            Assert.InRange(Environment.TickCount64 - t0, 140, 5000);
            string entry = $"/local/domain/{serverId}/data/vchan/{clientId}/9";
            Assert.NotNull(server.Store.Read(entry + "/event-channel")); // still published while waiting

            // the client connects before the server looks again: no wake-up is needed, but the
            // entry must still go now, not at close (its port may be handed out again meanwhile)
            using VchanEndpoint c = VchanEndpoint.ClientInit(client, serverId, 9);
            Assert.Equal(VchanState.Connected, s.WaitForClient(0));
            Assert.Null(server.Store.Read(entry + "/event-channel"));
            Assert.Null(server.Store.Directory($"/local/domain/{serverId}/data/vchan/{clientId}"));
            Assert.Equal(2, c.Send("hi"u8));
            byte[] got = new byte[2];
            Assert.Equal(2, s.Recv(got));
            Assert.Throws<InvalidOperationException>(() => c.WaitForClient(0));
        }
    }

    [Fact]
    public void WaitForClient_reports_a_client_that_connected_wrote_and_closed_before_it_was_called_as_connected()
    {
        using var broker = new TestBroker();
        (int serverId, LoopbackPlatform server) = broker.NewDomain("server");
        (int clientId, LoopbackPlatform client) = broker.NewDomain("client");
        using (server)
        using (client)
        {
            using VchanEndpoint s = VchanEndpoint.ServerInit(server, clientId, 10, 65536, 65536);
            Assert.Equal(5, s.Send("hello"u8)); // waits in the ring for the client
            using (VchanEndpoint c = VchanEndpoint.ClientInit(client, serverId, 10))
            {
                byte[] greeting = new byte[5];
                Assert.Equal(5, c.Recv(greeting));
                Assert.Equal("hello"u8.ToArray(), greeting);
                Assert.Equal(3, c.Send("bye"u8));
            }
            Assert.Equal(VchanState.Connected, s.WaitForClient(0));
            Assert.Null(server.Store.Read($"/local/domain/{serverId}/data/vchan/{clientId}/10/event-channel"));
            byte[] got = new byte[3];
            Assert.Equal(3, s.Recv(got));
            Assert.Equal("bye"u8.ToArray(), got);
            Assert.Equal(-1, s.Read(got));
            s.Dispose();
            Assert.Equal(VchanState.Disconnected, s.WaitForClient(0));
        }
    }

    [Fact]
    public void A_client_refuses_a_loopback_connection_and_fails_for_a_dead_server_domain()
    {
        using var broker = new TestBroker();
        (int me, LoopbackPlatform platform) = broker.NewDomain("lonely");
        (int goneId, LoopbackPlatform gone) = broker.NewDomain("gone");
        using (platform)
        {
            var loop = Assert.Throws<VchanException>(() => VchanEndpoint.ClientInit(platform, me, 1));
            Assert.Contains("loopback", loop.Message, StringComparison.Ordinal);
            broker.Dom0.DestroyDomain(goneId);
            gone.Dispose();
            Assert.True(TestBroker.Eventually(() => !platform.Domains.IsAlive(goneId)));
            var dead = Assert.Throws<VchanException>(() => VchanEndpoint.ClientInit(platform, goneId, 1));
            Assert.Contains("dead", dead.Message, StringComparison.Ordinal);
        }
    }

    [Fact]
    public void A_domain_client_waits_for_a_dom0_server_whose_entry_it_cannot_see_yet()
    {
        using var broker = new TestBroker();
        (int clientId, LoopbackPlatform client) = broker.NewDomain("vm");
        using (client)
        {
            // before dom0 publishes, the entry reads as EACCES (dom0's home is not readable): keep waiting
            using VchanConnector connector = VchanConnector.Start(client, 0, 513);
            Assert.Equal(1, connector.Finish(blocking: true, out VchanEndpoint? none));
            Assert.Null(none);
            using VchanEndpoint server = VchanEndpoint.ServerInit(broker.Dom0, clientId, 513, 65536, 65536);
            int r;
            VchanEndpoint? c;
            while ((r = connector.Finish(blocking: true, out c)) == 1)
            {
                Assert.Equal(1, Fd.PollIn(connector.WatchFd, 5000));
            }
            Assert.Equal(0, r);
            using (c)
            {
                Assert.Equal(5, c!.Send("hello"u8));
                byte[] got = new byte[5];
                Assert.Equal(5, server.Recv(got));
                Assert.Equal("hello"u8.ToArray(), got);
            }
        }
    }

    [Fact]
    public void A_client_waiting_for_a_server_connects_when_it_appears()
    {
        using var broker = new TestBroker();
        (int serverId, LoopbackPlatform server) = broker.NewDomain("late-server");
        (int clientId, LoopbackPlatform client) = broker.NewDomain("early-client");
        using (server)
        using (client)
        {
            using VchanConnector connector = VchanConnector.Start(client, serverId, 9);
            Assert.Equal(1, connector.Finish(blocking: true, out VchanEndpoint? none));
            Assert.Null(none);
            using VchanEndpoint s = VchanEndpoint.ServerInit(server, clientId, 9, 1024, 1024);
            Assert.Equal(1, Fd.PollIn(connector.WatchFd, 5000));
            int r;
            VchanEndpoint? c;
            while ((r = connector.Finish(blocking: false, out c)) == 1)
            {
                Assert.Equal(1, Fd.PollIn(connector.WatchFd, 5000));
            }
            Assert.Equal(0, r);
            using (c)
            {
                Assert.False(c!.Blocking);
                Assert.Equal(1024, c.WriteRingSize);
                Assert.Equal(2048, c.ReadRingSize);
            }
        }
    }
}
