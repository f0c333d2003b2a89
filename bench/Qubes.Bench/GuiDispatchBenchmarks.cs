using System;
using System.Buffers.Binary;
using BenchmarkDotNet.Attributes;
using Qubes.Gui;

namespace Qubes.Bench;

/// <summary>
/// The GUI daemon's dispatch of an agent's messages per operation: the damage notice that makes
/// most of a busy window's traffic, a configure, a title, and a window dump of a full-HD window
/// (2025 grant references). All must show 0 B allocated.
/// </summary>
[MemoryDiagnoser]
public class GuiDispatchBenchmarks
{
    private readonly CountingHost _host = new();
    private GuiDispatcher<CountingHost>? _dispatcher;
    private byte[] _damage = [], _configure = [], _title = [], _dump = [];

    [GlobalSetup]
    public void Setup()
    {
        _dispatcher = new GuiDispatcher<CountingHost>(_host, new GuiDaemonOptions("work") { ScreenWidth = 1920, ScreenHeight = 1080 }, GuiProtocol.Version);
        byte[] setup = new byte[64];
        _dispatcher.Dispatch(setup.AsSpan(0, GuiProtocol.WriteMessage(setup, MessageType.Create, 1, [0, 0, 1920, 1080, 0, 0])));
        _dispatcher.Dispatch(setup.AsSpan(0, GuiProtocol.WriteMessage(setup, MessageType.Map, 1, [0, 0])));
        const int References = 1920 * 1080 * 4 / GuiProtocol.PageSize + 1;
        uint[] dump = new uint[4 + References];
        (dump[1], dump[2], dump[3]) = (1920, 1080, 24);
        _dump = new byte[GuiProtocol.HeaderSize + dump.Length * 4];
        GuiProtocol.WriteMessage(_dump, MessageType.WindowDump, 1, dump);
        _dispatcher.Dispatch(_dump);
        _damage = new byte[28];
        GuiProtocol.WriteMessage(_damage, MessageType.ShmImage, 1, [100, 100, 640, 480]);
        _configure = new byte[32];
        GuiProtocol.WriteMessage(_configure, MessageType.Configure, 1, [0, 0, 1920, 1080, 0]);
        _title = new byte[GuiProtocol.HeaderSize + GuiProtocol.NameSize];
        GuiProtocol.WriteHeader(_title, MessageType.WmName, 1, GuiProtocol.NameSize);
        "Terminal - user@work: ~/src \u2026"u8.CopyTo(_title.AsSpan(GuiProtocol.HeaderSize));
        BinaryPrimitives.WriteUInt32LittleEndian(_title.AsSpan(8), GuiProtocol.NameSize);
    }

    [Benchmark]
    public int Damage() => _dispatcher!.Dispatch(_damage).Consumed;

    [Benchmark]
    public int Configure() => _dispatcher!.Dispatch(_configure).Consumed;

    [Benchmark]
    public int Title() => _dispatcher!.Dispatch(_title).Consumed;

    [Benchmark]
    public int WindowDump() => _dispatcher!.Dispatch(_dump).Consumed;
}
