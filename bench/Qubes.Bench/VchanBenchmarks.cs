using System;
using System.Runtime.InteropServices;
using BenchmarkDotNet.Attributes;
using Qubes.Interop.Linux;
using Qubes.Platform.Loopback;
using Qubes.Vchan;

namespace Qubes.Bench;

/// <summary>
/// One write then one read of the same size, single-threaded: through the whole endpoint API over
/// the loopback hypervisor (two domains in this process), and through the bare ring on native
/// memory. Both must show 0 B allocated per operation.
/// </summary>
[MemoryDiagnoser]
public unsafe class VchanBenchmarks
{
    private LoopbackHost? _host;
    private LoopbackPlatform? _serverDomain;
    private LoopbackPlatform? _clientDomain;
    private VchanEndpoint? _server;
    private VchanEndpoint? _client;
    private byte* _page;
    private byte* _rings;
    private Ring<SharedPage> _ringWriter;
    private Ring<SharedPage> _ringReader;
    private byte[] _data = [];

    [Params(64, 4096, 65536)]
    public int Size { get; set; }

    [GlobalSetup]
    public void Setup()
    {
        _host = new LoopbackHost();
        (int serverId, SafeFd serverConnection) = _host.CreateDomain("bench-server");
        (int clientId, SafeFd clientConnection) = _host.CreateDomain("bench-client");
        _serverDomain = LoopbackPlatform.Connect(serverConnection.Release());
        _clientDomain = LoopbackPlatform.Connect(clientConnection.Release());
        _server = VchanEndpoint.ServerInit(_serverDomain, clientId, 7, 65536, 65536);
        _client = VchanEndpoint.ClientInit(_clientDomain, serverId, 7);
        _data = new byte[Size];

        _page = (byte*)NativeMemory.AlignedAlloc(4096, 4096);
        new Span<byte>(_page, 4096).Clear();
        _rings = (byte*)NativeMemory.AlignedAlloc(2 << 16, 4096);
        var page = new SharedPage(_page);
        _ringWriter = new Ring<SharedPage>(page, isServer: false, (IntPtr)_rings, 16, (IntPtr)(_rings + (1 << 16)), 16);
        _ringReader = new Ring<SharedPage>(page, isServer: true, (IntPtr)(_rings + (1 << 16)), 16, (IntPtr)_rings, 16);
    }

    [Benchmark(Description = "vchan Write+Read (loopback)")]
    public int VchanWriteRead()
    {
        _server!.Write(_data);
        return _client!.Read(_data);
    }

    [Benchmark(Description = "ring Produce+Consume")]
    public int RingProduceConsume()
    {
        _ringWriter.Produce(_data);
        _ringReader.Consume(_data);
        return _data.Length;
    }

    [GlobalCleanup]
    public void Cleanup()
    {
        _client?.Dispose();
        _server?.Dispose();
        _clientDomain?.Dispose();
        _serverDomain?.Dispose();
        _host?.Dispose();
        NativeMemory.AlignedFree(_page);
        NativeMemory.AlignedFree(_rings);
    }
}
