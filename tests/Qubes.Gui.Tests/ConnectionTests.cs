using System;
using System.Buffers.Binary;
using System.Threading.Tasks;
using Qubes.Interop.Linux;
using Qubes.Platform.Loopback;
using Qubes.Platform.Tests;
using Xunit;

namespace Qubes.Gui.Tests;

/// <summary>
/// An agent in a loopback domain and the daemon in dom0, over the real vchan and grant table: the
/// handshake, a window whose image the daemon reads from the qube's granted pages, events back to
/// the agent, and a qube naming pages it never granted.
/// </summary>
public sealed class ConnectionTests : IDisposable
{
    private readonly TestBroker _broker = new();

    public void Dispose() => _broker.Dispose();

    /// <summary>A host that maps images for real and records the rest.</summary>
    private sealed class ImageHost(MappedWindowImages images, Func<GuiDaemonConnection> connection) : IGuiHost
    {
        public RecordingHost Record { get; } = new();

        public void Send(ReadOnlySpan<byte> message) => connection().Send(message);

        public void CreateWindow(int slot, in WindowGeometry geometry, bool overrideRedirect) => Record.CreateWindow(slot, geometry, overrideRedirect);

        public void DestroyWindow(int slot)
        {
            images.Detach(slot);
            Record.DestroyWindow(slot);
        }

        public void MapWindow(int slot, in WindowGeometry geometry, int transientFor, bool overrideRedirect) => Record.MapWindow(slot, geometry, transientFor, overrideRedirect);

        public void UnmapWindow(int slot) => images.Detach(slot);

        public void ConfigureWindow(int slot, in WindowGeometry geometry) => Record.ConfigureWindow(slot, geometry);

        public void Damage(int slot, int x, int y, int width, int height) => Record.Damage(slot, x, y, width, height);

        public void SetTitle(int slot, ReadOnlySpan<byte> title) => Record.SetTitle(slot, title);

        public void SetClass(int slot, ReadOnlySpan<byte> resClass, ReadOnlySpan<byte> resName) => Record.SetClass(slot, resClass, resName);

        public void SetHints(int slot, in SizeHints hints) => Record.SetHints(slot, hints);

        public void SetFlags(int slot, in FlagsRequest request) => Record.SetFlags(slot, request);

        public void SetCursor(int slot, int glyph) => Record.SetCursor(slot, glyph);

        public void Dock(int slot) => Record.Dock(slot);

        public bool AttachGrants(int slot, int width, int height, ReadOnlySpan<byte> references) => images.Attach(slot, width, height, references);

        public bool AttachFrames(int slot, int width, int height, int offset, ReadOnlySpan<byte> frames) => false;

        public void DetachImage(int slot) => images.Detach(slot);

        public void OverrideRedirectRefused(int slot) => Record.OverrideRedirectRefused(slot);

        public bool ClipboardChangedSince(uint requestTime) => false;

        public void ClipboardReceived(ReadOnlySpan<byte> data, ClipboardOutcome outcome) => Record.ClipboardReceived(data, outcome);
    }

    private static PumpStatus PumpUntil(GuiDaemonConnection daemon, GuiDispatcher<ImageHost> dispatcher, Func<bool> done)
    {
        PumpStatus status = PumpStatus.Idle;
        for (int i = 0; i < 500 && !done(); i++)
        {
            status = daemon.Pump(dispatcher, out _);
            if (status is PumpStatus.Fatal or PumpStatus.Closed)
            {
                return status;
            }
            Fd.PollIn(daemon.EventFd, 10);
        }
        return status;
    }

    [Fact]
    public async Task A_window_image_reaches_the_daemon_through_granted_pages_and_input_comes_back()
    {
        (int id, LoopbackPlatform qube) = _broker.NewDomain("work");
        using (qube)
        {
            Task<GuiAgentConnection> serving = Task.Run(() => GuiAgentConnection.Serve(qube, 0));
            using GuiDaemonConnection daemon = GuiDaemonConnection.Connect(_broker.Dom0, id, XConf.For(1366, 768, 24));
            using GuiAgentConnection agent = await serving;
            Assert.Equal(GuiProtocol.Version, daemon.Version);
            Assert.Equal(GuiProtocol.Version, agent.Version);
            Assert.Equal(1368u, agent.Screen.Width);

            using var images = new MappedWindowImages(_broker.Dom0, id);
            var host = new ImageHost(images, () => daemon);
            var dispatcher = new GuiDispatcher<ImageHost>(host, new GuiDaemonOptions("work"), daemon.Version);

            // a 1920x1080 window: 2025 pages granted to dom0
            using var image = new SharedWindowImage(qube, 0, 1920, 1080);
            for (int y = 0; y < 1080; y++)
            {
                for (int x = 0; x < 1920; x++)
                {
                    BinaryPrimitives.WriteUInt32LittleEndian(image.Pixels[((y * 1920 + x) * 4)..], (uint)(x * 7 + y * 13));
                }
            }
            byte[] dump = new byte[image.DumpLength];
            image.WriteDump(dump, 0x400001);
            // the dump is longer than the ring: the agent sends while the daemon reads
            Task<bool> sending = Task.Run(() => agent.Send(MessageType.Create, 0x400001, [0, 0, 1920, 1080, 0, 0])
                && agent.Send(MessageType.Map, 0x400001, [0, 0]) && agent.Send(dump)
                && agent.Send(MessageType.ShmImage, 0x400001, [0, 0, 1920, 1080]));

            Assert.NotEqual(PumpStatus.Fatal, PumpUntil(daemon, dispatcher, () => host.Record.Damages > 0));
            Assert.True(await sending);
            Assert.Equal("damage 0 0,0 1920x1080", host.Record.Calls[^1]);
            ReadOnlySpan<byte> seen = images.Pixels(0, out int width, out int height);
            Assert.Equal((1920, 1080), (width, height));
            Assert.True(seen.SequenceEqual(image.Pixels), "dom0 sees the qube's pixels");
            // the pages are the qube's: a change there shows in dom0 without another message
            BinaryPrimitives.WriteUInt32LittleEndian(image.Pixels[(4 * 1920 * 500 + 4 * 700)..], 0xDEADBEEF);
            Assert.Equal(0xDEADBEEFu, BinaryPrimitives.ReadUInt32LittleEndian(images.Pixels(0, out _, out _)[(4 * 1920 * 500 + 4 * 700)..]));

            // the daemon's acknowledgement of the dump, then an input event, reach the agent
            Assert.True(agent.TryRead(out MessageType type, out uint window, out _));
            Assert.Equal((MessageType.WindowDumpAck, 0x400001u), (type, window));
            dispatcher.SendToWindow(0, MessageType.Button, [4, 10, 20, 0, 1]);
            Assert.True(agent.TryRead(out type, out window, out ReadOnlySpan<byte> body));
            Assert.Equal((MessageType.Button, 0x400001u), (type, window));
            Assert.Equal(20, body.Length);
            Assert.Equal(10u, BinaryPrimitives.ReadUInt32LittleEndian(body[4..]));
        }
    }

    [Fact]
    public async Task Pages_a_qube_granted_to_another_qube_attach_nothing_and_the_session_goes_on()
    {
        (int id, LoopbackPlatform qube) = _broker.NewDomain("untrusted");
        (int otherId, LoopbackPlatform other) = _broker.NewDomain("personal");
        using (qube)
        using (other)
        {
            Task<GuiAgentConnection> serving = Task.Run(() => GuiAgentConnection.Serve(qube, 0));
            using GuiDaemonConnection daemon = GuiDaemonConnection.Connect(_broker.Dom0, id, XConf.For(800, 600, 24));
            using GuiAgentConnection agent = await serving;
            using var images = new MappedWindowImages(_broker.Dom0, id);
            var host = new ImageHost(images, () => daemon);
            var dispatcher = new GuiDispatcher<ImageHost>(host, new GuiDaemonOptions("untrusted"), daemon.Version);
            // pages untrusted granted to personal, not to dom0, named as its window's image
            using var foreign = new SharedWindowImage(qube, otherId, 10, 10);
            foreign.Pixels.Fill(0x55);
            byte[] dump = new byte[foreign.DumpLength];
            foreign.WriteDump(dump, 7);
            Task<bool> sending = Task.Run(() => agent.Send(MessageType.Create, 7, [0, 0, 10, 10, 0, 0])
                && agent.Send(MessageType.Map, 7, [0, 0]) && agent.Send(dump) && agent.Send(MessageType.Configure, 7, [1, 1, 10, 10, 0]));
            Assert.Equal(PumpStatus.Idle, PumpUntil(daemon, dispatcher, () => host.Record.Calls.Contains("configure 0 1,1 10x10")));
            Assert.True(await sending);
            Assert.True(images.Pixels(0, out _, out _).IsEmpty, "dom0 mapped pages the qube does not own");
            Assert.NotNull(images.LastError);
            Assert.True(agent.TryRead(out MessageType type, out _, out _));
            Assert.Equal(MessageType.WindowDumpAck, type);
        }
    }

    [Fact]
    public async Task An_agent_of_another_major_version_gets_no_session()
    {
        (int id, LoopbackPlatform qube) = _broker.NewDomain("old");
        using (qube)
        {
            Task serving = Task.Run(() =>
            {
                try
                {
                    using GuiAgentConnection agent = GuiAgentConnection.Serve(qube, 0, version: 0x00020000);
                }
                catch (GuiHandshakeException)
                {
                }
            });
            var e = Assert.Throws<GuiHandshakeException>(() => GuiDaemonConnection.Connect(_broker.Dom0, id, XConf.For(800, 600, 24)));
            Assert.Contains("too old", e.Message, StringComparison.Ordinal);
            await serving.WaitAsync(TimeSpan.FromSeconds(10));
        }
    }
}
