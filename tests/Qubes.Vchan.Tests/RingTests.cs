using System;
using System.Collections.Generic;
using System.Security.Cryptography;
using System.Threading;
using Xunit;

namespace Qubes.Vchan.Tests;

public unsafe class RingTests
{
    private static (RecordingPage Page, List<string> Log) Recording(PageAndRings p)
    {
        var log = new List<string>();
        var sizes = new Dictionary<IntPtr, int> { [p.Left] = 1 << p.LeftOrder, [p.Right] = 1 << p.RightOrder };
        return (new RecordingPage(p.Page, log, sizes), log);
    }

    [Fact]
    public void Write_loads_the_peer_index_before_copying_and_publishes_after_then_fences_before_testing_the_request()
    {
        using var p = new PageAndRings(12, 12);
        var (page, log) = Recording(p);
        Ring<RecordingPage> client = p.Client(page);
        log.Clear();

        int space = client.Space();
        client.Produce(new byte[100]);

        Assert.Equal(4096, space);
        Assert.Equal(
            ["acquire left.cons", "copy-in", "release left.prod", "fence", "acquire cli_notify"],
            log);
    }

    [Fact]
    public void Read_loads_the_peer_index_before_copying_and_releases_the_slot_after_then_fences_before_testing_the_request()
    {
        using var p = new PageAndRings(12, 12);
        var (page, log) = Recording(p);
        Ring<RecordingPage> client = p.Client(page);
        Ring<RecordingPage> server = p.Server(page);
        server.Produce(new byte[10]);
        log.Clear();

        int ready = client.Ready();
        client.Consume(new byte[ready]);

        Assert.Equal(10, ready);
        Assert.Equal(
            ["acquire right.prod", "copy-out", "release right.cons", "fence", "acquire cli_notify"],
            log);
    }

    [Fact]
    public void A_posted_request_is_taken_with_an_atomic_clear_and_reported_once()
    {
        using var p = new PageAndRings(12, 12);
        var (page, log) = Recording(p);
        Ring<RecordingPage> client = p.Client(page);
        Ring<RecordingPage> server = p.Server(page);
        log.Clear();

        int ready = server.ReadyAfterRequest();            // server sleeps: asks the client to signal on write
        Assert.Equal(["fetch-or cli_notify", "acquire left.prod"], log);
        Assert.Equal(0, ready);

        log.Clear();
        Assert.True(client.Produce(new byte[1]));          // client must signal
        Assert.Equal(["copy-in", "release left.prod", "fence", "acquire cli_notify", "fetch-and cli_notify"], log);
        Assert.False(client.Produce(new byte[1]));         // the request was consumed
        Assert.Equal(0, p.Page[VchanLayout.CliNotify] & VchanLayout.NotifyWrite);
    }

    [Fact]
    public void A_read_request_leaves_a_pending_write_request_in_place()
    {
        using var p = new PageAndRings(12, 12);
        Ring<SharedPage> client = p.Client(new SharedPage(p.Page));
        Ring<SharedPage> server = p.Server(new SharedPage(p.Page));
        server.ReadyAfterRequest();
        server.SpaceAfterRequest();
        Assert.Equal(VchanLayout.NotifyWrite | VchanLayout.NotifyRead, p.Page[VchanLayout.CliNotify]);
        Assert.True(client.Produce(new byte[3]));
        Assert.Equal(VchanLayout.NotifyRead, p.Page[VchanLayout.CliNotify]);
    }

    public static IEnumerable<object[]> OrderPairs()
    {
        for (int l = VchanLayout.MinOrder; l <= VchanLayout.MaxOrder; l++)
        {
            for (int r = VchanLayout.MinOrder; r <= VchanLayout.MaxOrder; r++)
            {
                if (VchanLayout.ValidateOrders(l, r) == null)
                {
                    yield return [l, r];
                }
            }
        }
    }

    [Theory]
    [MemberData(nameof(OrderPairs))]
    public void Random_sizes_through_many_wraps_arrive_intact_both_ways(int leftOrder, int rightOrder)
    {
        using var p = new PageAndRings(leftOrder, rightOrder);
        Ring<SharedPage> server = p.Server(new SharedPage(p.Page));
        Ring<SharedPage> client = p.Client(new SharedPage(p.Page));
        var rng = new Random(leftOrder * 100 + rightOrder);
        // enough bytes for at least 8 wraps of the larger ring
        long total = Math.Max(8L << Math.Max(leftOrder, rightOrder), 1 << 16);
        Pump(ref client, ref server, rng, total, 1 << leftOrder);
        Pump(ref server, ref client, rng, total, 1 << rightOrder);
    }

    private static void Pump(ref Ring<SharedPage> writer, ref Ring<SharedPage> reader, Random rng, long total, int ringSize)
    {
        var sent = IncrementalHash.CreateHash(HashAlgorithmName.SHA256);
        var received = IncrementalHash.CreateHash(HashAlgorithmName.SHA256);
        byte[] data = new byte[ringSize * 2];
        byte[] sink = new byte[ringSize * 2];
        long written = 0, read = 0;
        while (read < total)
        {
            if (written < total)
            {
                int want = (int)Math.Min(rng.Next(1, ringSize * 2), total - written);
                int n = Math.Min(want, writer.Space());
                rng.NextBytes(data.AsSpan(0, n));
                writer.Produce(data.AsSpan(0, n));
                sent.AppendData(data.AsSpan(0, n));
                written += n;
            }
            int ready = reader.Ready();
            Assert.InRange(ready, 0, ringSize);
            int m = Math.Min(ready, rng.Next(1, ringSize * 2));
            reader.Consume(sink.AsSpan(0, m));
            received.AppendData(sink.AsSpan(0, m));
            read += m;
        }
        Assert.Equal(total, written);
        Assert.Equal(sent.GetHashAndReset(), received.GetHashAndReset());
        Assert.Equal(0, reader.Ready());
        Assert.Equal(ringSize, writer.Space());
    }

    [Theory]
    [InlineData(10, 11)]
    [InlineData(12, 12)]
    [InlineData(16, 16)]
    public void Two_threads_spinning_on_one_page_see_every_byte_in_order(int leftOrder, int rightOrder)
    {
        using var p = new PageAndRings(leftOrder, rightOrder);
        const long Total = 64L << 20;
        byte[] sentHash = [], receivedHash;
        var writer = new Thread(() =>
        {
            Ring<SharedPage> client = p.Client(new SharedPage(p.Page));
            var h = IncrementalHash.CreateHash(HashAlgorithmName.SHA256);
            byte[] data = new byte[7777];
            var rng = new Random(1);
            long done = 0;
            while (done < Total)
            {
                int n = (int)Math.Min(Math.Min(client.Space(), rng.Next(1, data.Length)), Total - done);
                if (n == 0)
                {
                    Thread.SpinWait(1);
                    continue;
                }
                rng.NextBytes(data.AsSpan(0, n));
                client.Produce(data.AsSpan(0, n));
                h.AppendData(data.AsSpan(0, n));
                done += n;
            }
            sentHash = h.GetHashAndReset();
        });
        writer.Start();
        Ring<SharedPage> server = p.Server(new SharedPage(p.Page));
        var hash = IncrementalHash.CreateHash(HashAlgorithmName.SHA256);
        byte[] sink = new byte[5000];
        long got = 0;
        while (got < Total)
        {
            int m = Math.Min(server.Ready(), sink.Length);
            if (m == 0)
            {
                Thread.SpinWait(1);
                continue;
            }
            server.Consume(sink.AsSpan(0, m));
            hash.AppendData(sink.AsSpan(0, m));
            got += m;
        }
        writer.Join();
        receivedHash = hash.GetHashAndReset();
        Assert.Equal(sentHash, receivedHash);
    }

    [Theory]
    [InlineData(10, 11)]
    [InlineData(11, 10)]
    [InlineData(12, 13)]
    [InlineData(16, 12)]
    public void Arbitrary_indexes_from_a_hostile_peer_never_move_a_copy_outside_the_ring(int leftOrder, int rightOrder)
    {
        using var p = new PageAndRings(leftOrder, rightOrder);
        var (page, _) = Recording(p);
        Ring<RecordingPage> server = p.Server(page);
        Ring<RecordingPage> client = p.Client(page);
        var rng = new Random(42);
        byte[] buffer = new byte[1 << 17];
        uint[] nasty = [0, 1, 0x7FFFFFFF, 0x80000000, 0xFFFFFFFF, 0xFFFFFFFE, 1u << leftOrder, (1u << leftOrder) + 1, 4095, 4096];
        for (int i = 0; i < 20_000; i++)
        {
            // the "peer" scribbles over every index and both notify bytes, including ours
            for (int field = 0; field < 16; field += 4)
            {
                *(uint*)(p.Page + field) = rng.Next(3) == 0 ? nasty[rng.Next(nasty.Length)] : (uint)rng.NextInt64(0, 1L << 32);
            }
            p.Page[VchanLayout.CliNotify] = (byte)rng.Next(256);
            p.Page[VchanLayout.SrvNotify] = (byte)rng.Next(256);

            Ring<RecordingPage> side = (i & 1) == 0 ? server : client;
            int ready = side.Ready();
            int space = side.Space();
            Assert.InRange(ready, 0, side.ReadSize);
            Assert.InRange(space, 0, side.WriteSize);
            int n = Math.Min(ready, rng.Next(0, buffer.Length));
            side.Consume(buffer.AsSpan(0, n));        // RecordingPage throws if a copy leaves the ring
            int m = Math.Min(space, rng.Next(0, buffer.Length));
            side.Produce(buffer.AsSpan(0, m));
            if ((i & 1) == 0)
            {
                server = side;
            }
            else
            {
                client = side;
            }
        }
    }
}
