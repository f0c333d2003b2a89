using System;
using System.Threading;
using Qubes.Platform.Loopback;
using Qubes.Platform.Tests;
using Xunit;

namespace Qubes.Vchan.Tests;

/// <summary>After warm-up, the I/O paths allocate nothing: measured per thread around long runs.</summary>
public class AllocationTests
{
    [Fact]
    public void Write_and_read_allocate_nothing_in_steady_state()
    {
        using var pair = new Pair(65536, 65536);
        VchanEndpoint server = pair.Server, client = pair.Client;
        byte[] data = new byte[1500];
        byte[] sink = new byte[1500];

        // no assertion inside the measured loop: the test framework's own calls allocate
        long before = 0;
        int failures = 0;
        for (int i = 0; i < 110_000; i++)
        {
            if (i == 10_000)
            {
                before = GC.GetAllocatedBytesForCurrentThread();
            }
            failures += server.Write(data) == data.Length ? 0 : 1;
            failures += client.Recv(sink) == sink.Length ? 0 : 1;
            failures += client.Send(data.AsSpan(0, 64)) == 64 ? 0 : 1;
            failures += server.Read(sink) == 64 ? 0 : 1;
            client.Blocking = (i & 1) == 0; // the non-blocking paths too
            server.DataReady();
            client.BufferSpace();
        }
        long allocated = GC.GetAllocatedBytesForCurrentThread() - before;
        Assert.Equal(0, failures);
        Assert.Equal(0, allocated);
    }

    [Fact]
    public void Two_threads_streaming_through_spin_and_sleep_allocate_nothing()
    {
        using var pair = new Pair(4096, 65536);
        VchanEndpoint server = pair.Server, client = pair.Client;
        // a short spin so that both the spinning and the sleeping waits are exercised
        server.SpinMicroseconds = 2;
        client.SpinMicroseconds = 2;
        const int Chunks = 20_000, Warm = 2_000;
        long writerAllocated = -1;
        var writer = new Thread(() =>
        {
            byte[] chunk = new byte[65536];
            long before = 0;
            for (int i = 0; i < Chunks; i++)
            {
                if (i == Warm)
                {
                    before = GC.GetAllocatedBytesForCurrentThread();
                }
                if (server.Write(chunk) != chunk.Length)
                {
                    return;
                }
            }
            writerAllocated = GC.GetAllocatedBytesForCurrentThread() - before;
        });
        writer.Start();
        byte[] buffer = new byte[20_000];
        long total = (long)Chunks * 65536, received = 0, readerBefore = 0;
        while (received < total)
        {
            if (readerBefore == 0 && received > (long)Warm * 65536)
            {
                readerBefore = GC.GetAllocatedBytesForCurrentThread();
            }
            int n = client.Read(buffer);
            if (n <= 0)
            {
                break;
            }
            received += n;
        }
        long readerAllocated = GC.GetAllocatedBytesForCurrentThread() - readerBefore;
        writer.Join();
        Assert.Equal(total, received);
        Assert.Equal(0, writerAllocated);
        Assert.Equal(0, readerAllocated);
    }

    /// <summary>Two loopback domains in this process with a connected server and client.</summary>
    private sealed class Pair : IDisposable
    {
        private readonly TestBroker _broker = new();
        private readonly LoopbackPlatform _serverDomain;
        private readonly LoopbackPlatform _clientDomain;

        public Pair(int readMin, int writeMin)
        {
            (int serverId, _serverDomain) = _broker.NewDomain("a");
            (int clientId, _clientDomain) = _broker.NewDomain("b");
            Server = VchanEndpoint.ServerInit(_serverDomain, clientId, 1, readMin, writeMin);
            Client = VchanEndpoint.ClientInit(_clientDomain, serverId, 1);
        }

        public VchanEndpoint Server { get; }

        public VchanEndpoint Client { get; }

        public void Dispose()
        {
            Client.Dispose();
            Server.Dispose();
            _clientDomain.Dispose();
            _serverDomain.Dispose();
            _broker.Dispose();
        }
    }
}
