using System;
using System.Buffers.Binary;
using System.Linq;
using System.Text;
using Xunit;
using static Qubes.Gui.Tests.Messages;

namespace Qubes.Gui.Tests;

/// <summary>
/// Each check of the daemon attacked with the message a hostile agent would send (spec
/// gui-protocol §8-§12): the right class of failure, and nothing applied that should not be.
/// </summary>
public class DispatcherTests
{
    private readonly RecordingHost _host = new();

    private GuiDispatcher<RecordingHost> Dispatcher(uint version = GuiProtocol.Version, GuiDaemonOptions? options = null)
        => new(_host, options ?? new GuiDaemonOptions("work") { ScreenWidth = 1000, ScreenHeight = 800 }, version);

    /// <summary>Dispatches every message of <paramref name="stream"/> and returns the last result.</summary>
    private static DispatchResult Run(GuiDispatcher<RecordingHost> dispatcher, byte[] stream)
    {
        int offset = 0;
        DispatchResult result = default;
        while (offset < stream.Length)
        {
            result = dispatcher.Dispatch(stream.AsSpan(offset));
            if (result.Status is DispatchStatus.NeedMore or DispatchStatus.Fatal)
            {
                return result;
            }
            offset += result.Consumed;
        }
        return result;
    }

    private static void AssertStatus(DispatchStatus status, GuiFault fault, DispatchResult result)
    {
        Assert.Equal(status, result.Status);
        Assert.Equal(fault, result.Fault);
    }

    [Fact]
    public void A_message_for_a_window_never_created_is_fatal()
    {
        var d = Dispatcher();
        AssertStatus(DispatchStatus.Fatal, GuiFault.UnknownWindow, Run(d, Map(7)));
        Assert.Empty(_host.Calls);
    }

    [Fact]
    public void Creating_a_window_twice_is_fatal_and_the_first_stays()
    {
        var d = Dispatcher();
        Run(d, Create(7, 10, 10, 100, 100));
        AssertStatus(DispatchStatus.Fatal, GuiFault.WindowExists, Run(d, Create(7, 20, 20, 50, 50)));
        Assert.Equal(new WindowGeometry(10, 10, 100, 100), d.Geometry(d.Slot(7)));
        Assert.Single(_host.Calls);
    }

    [Fact]
    public void A_qube_cannot_have_more_windows_than_its_limit()
    {
        var d = Dispatcher(options: new GuiDaemonOptions("work") { MaxWindows = 3 });
        for (uint id = 1; id <= 3; id++)
        {
            AssertStatus(DispatchStatus.Applied, GuiFault.None, Run(d, Create(id, 0, 0, 10, 10)));
        }
        AssertStatus(DispatchStatus.Fatal, GuiFault.TooManyWindows, Run(d, Create(4, 0, 0, 10, 10)));
        Assert.Equal(3, d.WindowCount);
        // a destroyed window makes room
        Run(d, Message(MessageType.Destroy, 2));
        AssertStatus(DispatchStatus.Applied, GuiFault.None, Run(d, Create(4, 0, 0, 10, 10)));
    }

    [Theory]
    [InlineData(MessageType.Create, 20u)]
    [InlineData(MessageType.Map, 12u)]
    [InlineData(MessageType.Configure, 24u)]
    [InlineData(MessageType.WmName, 127u)]
    [InlineData(MessageType.Cursor, 0u)]
    [InlineData(MessageType.Destroy, 4u)]
    public void From_1_6_a_length_that_is_not_the_type_s_is_fatal(MessageType type, uint length)
    {
        var d = Dispatcher();
        Run(d, Create(1, 0, 0, 10, 10));
        _host.Calls.Clear();
        uint window = type == MessageType.Create ? 2u : 1u;
        byte[] message = Raw((uint)type, window, length, new uint[64]);
        AssertStatus(DispatchStatus.Fatal, GuiFault.LengthMismatch, d.Dispatch(message));
        Assert.Empty(_host.Calls);
    }

    [Fact]
    public void Below_1_6_a_wrong_length_is_read_as_the_type_s_and_the_rest_is_the_next_message()
    {
        var d = Dispatcher(version: 0x00010005);
        Run(d, Create(1, 0, 0, 10, 10));
        // MAP claims 4 bytes more than it has; the daemon reads its 8 and then the next header
        byte[] stream = Concat(Raw((uint)MessageType.Map, 1, 12, [0, 0]), Configure(1, 5, 5, 20, 20));
        DispatchResult first = d.Dispatch(stream);
        AssertStatus(DispatchStatus.Applied, GuiFault.LengthWarning, first);
        Assert.Equal(20, first.Consumed);
        AssertStatus(DispatchStatus.Applied, GuiFault.None, d.Dispatch(stream.AsSpan(first.Consumed)));
        Assert.Equal(new WindowGeometry(5, 5, 20, 20), d.Geometry(d.Slot(1)));
    }

    [Theory]
    [InlineData(MessageType.KeyPress)]
    [InlineData(MessageType.Button)]
    [InlineData(MessageType.Motion)]
    [InlineData(MessageType.Crossing)]
    [InlineData(MessageType.Focus)]
    [InlineData(MessageType.Resize)]
    [InlineData(MessageType.Close)]
    [InlineData(MessageType.Execute)]
    [InlineData(MessageType.ClipboardReq)]
    [InlineData(MessageType.KeymapNotify)]
    [InlineData(MessageType.WindowDumpAck)]
    [InlineData((MessageType)123)]
    [InlineData((MessageType)150)]
    [InlineData((MessageType)0)]
    [InlineData((MessageType)0xFFFFFFFF)]
    public void A_type_the_agent_may_not_send_is_fatal(MessageType type)
    {
        var d = Dispatcher();
        Run(d, Create(1, 0, 0, 10, 10));
        int size = Math.Max(GuiProtocol.FixedBodySize((uint)type), 0);
        AssertStatus(DispatchStatus.Fatal, GuiFault.UnexpectedType, d.Dispatch(Raw((uint)type, 1, (uint)size, new uint[(size + 3) / 4])));
    }

    [Fact]
    public void A_window_of_negative_size_is_verified_and_not_made()
    {
        var d = Dispatcher();
        AssertStatus(DispatchStatus.Verify, GuiFault.NegativeSize, Run(d, Create(1, 0, 0, -1, 10)));
        AssertStatus(DispatchStatus.Verify, GuiFault.NegativeSize, Run(d, Message(MessageType.Create, 1, 0u, 0u, 10u, 0x80000000u, 0u, 0u)));
        Assert.Equal(0, d.WindowCount);
        Assert.Empty(_host.Calls);
        Assert.Equal(DispatchStatus.Fatal, Run(d, Map(1)).Status);
    }

    [Fact]
    public void Create_clamps_the_size_and_the_place()
    {
        var d = Dispatcher();
        Run(d, Create(1, -100000, 100000, 20000, 7000));
        Assert.Equal(new WindowGeometry(-16384, 6144, 16384, 6144), d.Geometry(d.Slot(1)));
        Assert.Equal("create 0 -16384,6144 16384x6144", _host.Calls.Single());
    }

    [Fact]
    public void An_override_redirect_window_larger_than_90_percent_of_the_work_area_is_refused_once_noticed()
    {
        var d = Dispatcher();   // 1000x800: 90% is 720000 pixels
        Run(d, Create(1, 0, 0, 900, 800, overrideRedirect: true));
        Assert.True(d.IsOverrideRedirect(d.Slot(1)));
        Run(d, Create(2, 0, 0, 901, 800, overrideRedirect: true));
        Run(d, Create(3, 0, 0, 1000, 800, overrideRedirect: true));
        Assert.False(d.IsOverrideRedirect(d.Slot(2)));
        Assert.False(d.IsOverrideRedirect(d.Slot(3)));
        Assert.Single(_host.Calls, static c => c.StartsWith("or-refused", StringComparison.Ordinal));
    }

    [Fact]
    public void Override_redirect_can_be_turned_off_for_a_qube_or_unprotected()
    {
        var off = Dispatcher(options: new GuiDaemonOptions("work") { OverrideRedirectDisabled = true });
        Run(off, Create(1, 0, 0, 10, 10, overrideRedirect: true));
        Assert.False(off.IsOverrideRedirect(off.Slot(1)));
        var open = new GuiDispatcher<RecordingHost>(new RecordingHost(), new GuiDaemonOptions("work") { ScreenWidth = 1000, ScreenHeight = 800, OverrideRedirectProtection = false }, GuiProtocol.Version);
        Run(open, Create(1, 0, 0, 1000, 800, overrideRedirect: true));
        Assert.True(open.IsOverrideRedirect(open.Slot(1)));
    }

    [Theory]
    [InlineData(-50, -50, 100, 100, 2, 2, 100, 100)]
    [InlineData(950, 750, 100, 100, 898, 698, 100, 100)]
    [InlineData(-20, 10, 2000, 30, 2, 10, 996, 30)]
    [InlineData(10, 10, 50, 50, 10, 10, 50, 50)]
    [InlineData(-500, 10, 100, 100, -500, 10, 100, 100)]   // wholly off the screen: covers nothing
    public void Override_redirect_windows_are_forced_onto_the_screen_with_their_frame(int x, int y, int w, int h, int ex, int ey, int ew, int eh)
    {
        var d = Dispatcher(options: new GuiDaemonOptions("work") { ScreenWidth = 1000, ScreenHeight = 800, OverrideRedirectProtection = false });
        Run(d, Create(1, x, y, w, h, overrideRedirect: true));
        Assert.Equal(new WindowGeometry(ex, ey, ew, eh), d.Geometry(d.Slot(1)));
        // and a CONFIGURE cannot move it out again
        Run(d, Map(1, overrideRedirect: true));
        Run(d, Configure(1, x - 3000, y, w, h));
        WindowGeometry g = d.Geometry(d.Slot(1));
        Assert.True(g.X + g.Width <= 0 || (g.X >= 2 && g.X + g.Width <= 998 && g.Y >= 2 && g.Y + g.Height <= 798), $"{g}");
    }

    [Fact]
    public void The_work_area_bounds_override_redirect_windows()
    {
        var d = Dispatcher(options: new GuiDaemonOptions("work") { ScreenWidth = 1000, ScreenHeight = 800, WorkArea = new(0, 30, 1000, 770) });
        Run(d, Create(1, 100, 0, 100, 100, overrideRedirect: true));
        Assert.Equal(new WindowGeometry(100, 32, 100, 100), d.Geometry(d.Slot(1)));
    }

    [Theory]
    [InlineData(0x00010005u, true)]
    [InlineData(0x00010004u, false)]
    public void Destroy_forgets_the_window_and_from_1_5_acknowledges(uint version, bool ack)
    {
        var d = Dispatcher(version);
        Run(d, Concat(Create(1, 0, 0, 10, 10), Create(2, 0, 0, 10, 10), Map(2, transientFor: 1)));
        Run(d, Message(MessageType.Destroy, 1));
        Assert.Equal(-1, d.Slot(1));
        Assert.Contains("destroy 0", _host.Calls);
        Assert.Equal(ack, _host.Sent.Any(static m => m.AsSpan().SequenceEqual(Message(MessageType.Destroy, 1))));
        // the id is free again
        AssertStatus(DispatchStatus.Applied, GuiFault.None, Run(d, Create(1, 0, 0, 10, 10)));
    }

    [Fact]
    public void Map_sets_a_known_transient_window_and_ignores_an_unknown_one()
    {
        var d = Dispatcher();
        Run(d, Concat(Create(1, 0, 0, 10, 10), Create(2, 0, 0, 10, 10), Create(3, 0, 0, 10, 10)));
        Run(d, Concat(Map(2, transientFor: 1), Map(3, transientFor: 99)));
        Assert.Contains("map 1 0,0 10x10 transient 0", _host.Calls);
        Assert.Contains("map 2 0,0 10x10 transient -1", _host.Calls);
        AssertStatus(DispatchStatus.Ignored, GuiFault.AlreadyMapped, Run(d, Map(2)));
    }

    [Fact]
    public void An_invisible_daemon_maps_nothing()
    {
        var d = Dispatcher(options: new GuiDaemonOptions("work") { Invisible = true });
        Run(d, Concat(Create(1, 0, 0, 10, 10), Map(1)));
        Assert.DoesNotContain(_host.Calls, static c => c.StartsWith("map", StringComparison.Ordinal));
    }

    [Fact]
    public void Configure_clamps_verifies_an_empty_size_and_keeps_override_redirect()
    {
        var d = Dispatcher();
        Run(d, Create(1, 0, 0, 10, 10));
        Run(d, Signed(MessageType.Configure, 1, 99999, -99999, 99999, 99999, 1));
        Assert.Equal(new WindowGeometry(16384, -6144, 16384, 6144), d.Geometry(d.Slot(1)));
        Assert.False(d.IsOverrideRedirect(d.Slot(1)));
        AssertStatus(DispatchStatus.Verify, GuiFault.EmptySize, Run(d, Configure(1, 0, 0, 0, 10)));
        AssertStatus(DispatchStatus.Verify, GuiFault.EmptySize, Run(d, Configure(1, 0, 0, 10, 0)));
        Assert.Equal(new WindowGeometry(16384, -6144, 16384, 6144), d.Geometry(d.Slot(1)));
    }

    [Fact]
    public void A_docked_window_cannot_move_the_daemon_resends_its_geometry()
    {
        var d = Dispatcher();
        Run(d, Concat(Create(1, 5, 5, 22, 22), Message(MessageType.Dock, 1)));
        AssertStatus(DispatchStatus.Ignored, GuiFault.Docked, Run(d, Configure(1, 100, 100, 500, 500)));
        Assert.Equal(new WindowGeometry(5, 5, 22, 22), d.Geometry(d.Slot(1)));
        Assert.Equal(Signed(MessageType.Configure, 1, 5, 5, 22, 22, 0), _host.Sent.Last());
        // and cannot be mapped or unmapped by the qube
        AssertStatus(DispatchStatus.Ignored, GuiFault.Docked, Run(d, Map(1)));
        AssertStatus(DispatchStatus.Ignored, GuiFault.Docked, Run(d, Message(MessageType.Unmap, 1)));
    }

    [Fact]
    public void A_configure_from_dom0_stands_until_the_agent_acknowledges_it()
    {
        var d = Dispatcher();
        Run(d, Create(1, 0, 0, 100, 100));
        int slot = d.Slot(1);
        d.RequestConfigure(slot, new WindowGeometry(10, 20, 300, 200));
        Assert.Equal(Signed(MessageType.Configure, 1, 10, 20, 300, 200, 0), _host.Sent.Last());
        // the agent's own older geometry does not win: the daemon says it again
        Run(d, Configure(1, 0, 0, 120, 100));
        Assert.Equal(2, _host.Sent.Count);
        Assert.Equal(new WindowGeometry(0, 0, 100, 100), d.Geometry(slot));
        // the same geometry is the acknowledgement
        Run(d, Configure(1, 10, 20, 300, 200));
        Assert.Equal(new WindowGeometry(10, 20, 300, 200), d.Geometry(slot));
        Run(d, Configure(1, 11, 20, 300, 200));
        Assert.Equal(new WindowGeometry(11, 20, 300, 200), d.Geometry(slot));
    }

    [Fact]
    public void Damage_is_ignored_for_unmapped_windows_and_negative_rectangles_and_clamped_to_the_image()
    {
        var d = Dispatcher();
        Run(d, Create(1, 0, 0, 100, 50));
        AssertStatus(DispatchStatus.Ignored, GuiFault.NotMappable, Run(d, Message(MessageType.ShmImage, 1, 0, 0, 10, 10)));
        Run(d, Map(1));
        AssertStatus(DispatchStatus.Ignored, GuiFault.NegativeDamage, Run(d, Signed(MessageType.ShmImage, 1, -1, 0, 10, 10)));
        AssertStatus(DispatchStatus.Ignored, GuiFault.NegativeDamage, Run(d, Signed(MessageType.ShmImage, 1, 0, 0, 10, int.MinValue)));
        // no image yet: nothing to draw
        Run(d, Message(MessageType.ShmImage, 1, 0, 0, 10, 10));
        Assert.Equal(0, _host.Damages);
        Run(d, WindowDump(1, 100, 50, 5));
        Run(d, Signed(MessageType.ShmImage, 1, 90, 40, int.MaxValue, int.MaxValue));
        Run(d, Message(MessageType.ShmImage, 1, 500, 500, 10, 10));
        Assert.Equal("damage 0 90,40 10x10", _host.Calls.Single(static c => c.StartsWith("damage", StringComparison.Ordinal)));
    }

    [Fact]
    public void Titles_are_sanitised_cut_and_prefixed_with_the_qube()
    {
        var d = Dispatcher();
        Run(d, Create(1, 0, 0, 10, 10));
        Run(d, Name(MessageType.WmName, 1, Encoding.UTF8.GetBytes("bank\u202Egnp.exe\x1b[31m\u2026")));
        Assert.Equal("title 0 [work] bank___gnp.exe_[31m...", _host.Calls.Last());
        Run(d, Name(MessageType.WmName, 1, Enumerable.Repeat((byte)'A', 128).ToArray()));
        Assert.Equal("title 0 [work] " + new string('A', 127), _host.Calls.Last());
    }

    [Fact]
    public void Utf8_titles_keep_valid_sequences_when_the_qube_may_have_them()
    {
        var d = Dispatcher(options: new GuiDaemonOptions("work") { AllowUtf8Titles = true, PrefixTitles = false });
        Run(d, Create(1, 0, 0, 10, 10));
        Run(d, Name(MessageType.WmName, 1, [.. Encoding.UTF8.GetBytes("caf\u00e9 "), 0xC0, 0x80]));
        Assert.Equal("title 0 " + Encoding.Latin1.GetString(Encoding.UTF8.GetBytes("caf\u00e9 __")), _host.Calls.Last());
    }

    [Fact]
    public void A_class_is_prefixed_sanitised_without_utf8_and_only_taken_while_unmapped()
    {
        var d = Dispatcher();
        Run(d, Create(1, 0, 0, 10, 10));
        byte[] body = new byte[128];
        Encoding.UTF8.GetBytes("Xterm\u00e9").CopyTo(body, 0);
        Enumerable.Repeat((byte)'n', 64).ToArray().CopyTo(body, 64);
        Run(d, Bytes(MessageType.WmClass, 1, body));
        Assert.Equal("class 0 work:Xterm__ work:" + new string('n', 63), _host.Calls.Last());
        Run(d, Map(1));
        AssertStatus(DispatchStatus.Ignored, GuiFault.AlreadyMapped, Run(d, Bytes(MessageType.WmClass, 1, body)));
    }

    [Fact]
    public void Only_valid_size_hints_reach_the_window()
    {
        var d = Dispatcher();
        Run(d, Create(1, 0, 0, 10, 10));
        uint all = GuiProtocol.PMinSize | GuiProtocol.PMaxSize | GuiProtocol.PResizeInc | GuiProtocol.PBaseSize | GuiProtocol.PPosition | 0x80 /* PAspect */;
        Run(d, Message(MessageType.WindowHints, 1, all, 100u, 50u, 2000u, 1000u, 8u, 16u, 4u, 4u));
        Assert.Equal($"hints 0 {all & ~0x80u} min 100x50 max 2000x1000 inc 8x16 base 4x4", _host.Calls.Last());
        Run(d, Message(MessageType.WindowHints, 1, all, 16385u, 50u, 0u, 1000u, 16384u, 16u, 4u, 6145u));
        Assert.Equal($"hints 0 {GuiProtocol.PPosition} min 0x0 max 0x0 inc 0x0 base 0x0", _host.Calls.Last());
    }

    [Fact]
    public void Window_flags_set_and_unset_at_once_are_verified_and_others_masked()
    {
        var d = Dispatcher();
        Run(d, Create(1, 0, 0, 10, 10));
        AssertStatus(DispatchStatus.Verify, GuiFault.ConflictingFlags, Run(d, Message(MessageType.WindowFlags, 1, 1u, 1u)));
        Run(d, Message(MessageType.WindowFlags, 1, 0x10u | 1u, 0x20u | 4u));
        Assert.Equal("flags 0 mapped False set 1 unset 0 maximize True", _host.Calls.Last());
        Run(d, Map(1));
        Run(d, Message(MessageType.WindowFlags, 1, GuiProtocol.FlagMinimize | GuiProtocol.FlagFullscreen, 0u));
        Assert.Equal("flags 0 mapped True set 4 unset 0 maximize True", _host.Calls.Last());
    }

    [Theory]
    [InlineData(0u, -1)]
    [InlineData(0x100u, 0)]
    [InlineData(0x199u, 0x99)]
    public void Valid_cursors_are_set(uint cursor, int glyph)
    {
        var d = Dispatcher();
        Run(d, Create(1, 0, 0, 10, 10));
        Run(d, Message(MessageType.Cursor, 1, cursor));
        Assert.Equal($"cursor 0 {glyph}", _host.Calls.Last());
    }

    [Theory]
    [InlineData(0x19Au)]
    [InlineData(0x1FFu)]
    [InlineData(1u)]
    [InlineData(0xFFu)]
    public void Other_cursors_are_verified(uint cursor)
    {
        var d = Dispatcher();
        Run(d, Create(1, 0, 0, 10, 10));
        AssertStatus(DispatchStatus.Verify, GuiFault.InvalidCursor, Run(d, Message(MessageType.Cursor, 1, cursor)));
        Assert.DoesNotContain(_host.Calls, static c => c.StartsWith("cursor", StringComparison.Ordinal));
    }

    [Fact]
    public void A_window_dump_maps_the_references_and_from_1_7_acknowledges_even_a_failed_attach()
    {
        var d = Dispatcher();
        Run(d, Concat(Create(1, 0, 0, 100, 50), Map(1)));
        AssertStatus(DispatchStatus.Applied, GuiFault.None, Run(d, WindowDump(1, 100, 50, 5)));
        Assert.Equal("grants 0 100x50 refs 5 first 1000", _host.Calls.Last());
        Assert.Equal(Message(MessageType.WindowDumpAck, 1), _host.Sent.Last());
        _host.AttachSucceeds = false;
        Run(d, WindowDump(1, 100, 50, 5));
        Assert.Equal("grants 0 100x50 refs 5 first 1000", _host.Calls.Last());
        Assert.Equal("detach 0", _host.Calls[^2]);
        Assert.Equal(2, _host.Sent.Count);
        Assert.Equal((0, 0), d.ImageSize(d.Slot(1)));

        var old = new GuiDispatcher<RecordingHost>(new RecordingHost(), new GuiDaemonOptions("work"), 0x00010006);
        Run(old, Concat(Create(1, 0, 0, 100, 50), WindowDump(1, 100, 50, 5)));
        Assert.Empty(_host.Sent.Skip(2));
    }

    [Theory]
    [InlineData(0u, 100u, 50u, 5, 0u, GuiFault.None)]
    [InlineData(1u, 100u, 50u, 5, 0u, GuiFault.DumpType)]
    [InlineData(0u, 16385u, 1u, 5, 0u, GuiFault.DumpSize)]
    [InlineData(0u, 1u, 6145u, 5, 0u, GuiFault.DumpSize)]
    [InlineData(0u, 100u, 50u, 4, 0u, GuiFault.DumpTooFewReferences)]
    [InlineData(0u, 100u, 50u, 5, 2u, GuiFault.DumpReferences)]
    public void Window_dump_checks(uint type, uint width, uint height, int references, uint extraLength, GuiFault fault)
    {
        var d = Dispatcher();
        Run(d, Concat(Create(1, 0, 0, 100, 50), Map(1)));
        _host.Calls.Clear();
        byte[] message = WindowDump(1, width, height, references, type);
        BinaryPrimitives.WriteUInt32LittleEndian(message.AsSpan(8), (uint)(message.Length - 12) + extraLength);
        byte[] stream = Concat(message, new byte[extraLength]);
        DispatchResult result = d.Dispatch(stream);
        Assert.Equal(fault == GuiFault.None ? DispatchStatus.Applied : DispatchStatus.Fatal, result.Status);
        Assert.Equal(fault, result.Fault);
        Assert.Equal(fault == GuiFault.None, _host.Calls.Any(static c => c.StartsWith("grants", StringComparison.Ordinal)));
    }

    [Fact]
    public void A_window_dump_shorter_than_its_header_or_claiming_more_references_than_a_window_has_is_fatal_before_they_arrive()
    {
        var d = Dispatcher();
        Run(d, Create(1, 0, 0, 100, 50));
        AssertStatus(DispatchStatus.Fatal, GuiFault.DumpTooShort, d.Dispatch(Raw((uint)MessageType.WindowDump, 1, 15, [0, 0, 0, 0])));
        // only the dump header is there; the claim alone is refused
        byte[] huge = Raw((uint)MessageType.WindowDump, 1, 16 + (uint)GuiProtocol.MaxGrantRefs * 4 + 4, [0, 16384, 6144, 24]);
        AssertStatus(DispatchStatus.Fatal, GuiFault.DumpReferences, d.Dispatch(huge));
        byte[] badType = Raw((uint)MessageType.WindowDump, 1, 16 + 4000, [7, 10, 10, 24]);
        AssertStatus(DispatchStatus.Fatal, GuiFault.DumpType, d.Dispatch(badType));
        // the largest window's dump is taken whole
        byte[] largest = WindowDump(1, 16384, 6144, GuiProtocol.MaxGrantRefs);
        Assert.Equal(GuiProtocol.MaxWindowDumpMessage, largest.Length);
        AssertStatus(DispatchStatus.Applied, GuiFault.None, d.Dispatch(largest));
    }

    [Theory]
    [InlineData(true, 100u, 50u, 0u, 5u, 0u, GuiFault.None)]
    [InlineData(false, 100u, 50u, 0u, 5u, 0u, GuiFault.FramesOutsideDom0)]
    [InlineData(true, 100u, 50u, 0u, 98305u, 0u, GuiFault.FramesCount)]
    [InlineData(true, 16385u, 50u, 0u, 5u, 0u, GuiFault.FramesSize)]
    [InlineData(true, 100u, 50u, 4096u, 5u, 0u, GuiFault.FramesOffset)]
    [InlineData(true, 100u, 50u, 4095u, 5u, 0u, GuiFault.FramesTooFew)]
    [InlineData(true, 100u, 50u, 0u, 5u, 4u, GuiFault.LengthMismatch)]
    public void Mfn_dump_checks(bool inDom0, uint width, uint height, uint offset, uint count, uint extra, GuiFault fault)
    {
        var d = Dispatcher(options: new GuiDaemonOptions("work") { InDom0 = inDom0 });
        Run(d, Create(1, 0, 0, 100, 50));
        _host.Calls.Clear();
        uint sent = Math.Min(count, 10);
        uint[] fields = new uint[7 + sent];
        (fields[1], fields[2], fields[3], fields[4], fields[5]) = (width, height, 24, offset, count);
        byte[] message = Raw((uint)MessageType.MfnDump, 1, 28 + 4 * count + extra, fields);
        DispatchResult result = d.Dispatch(message);
        if (fault == GuiFault.None)
        {
            AssertStatus(DispatchStatus.Applied, fault, result);
            Assert.Equal("frames 0 100x50 offset 0 count 5", _host.Calls.Last());
        }
        else
        {
            AssertStatus(DispatchStatus.Fatal, fault, result);
            Assert.DoesNotContain(_host.Calls, static c => c.StartsWith("frames", StringComparison.Ordinal));
        }
    }

    [Fact]
    public void Every_truncation_of_a_message_waits_for_more_and_changes_nothing()
    {
        byte[][] messages =
        [
            Create(9, 1, 2, 30, 40), Configure(1, 1, 2, 3, 4), Name(MessageType.WmName, 1, "t"u8.ToArray()),
            WindowDump(1, 10, 10, 1), Bytes(MessageType.ClipboardData, 0, "data"u8.ToArray()),
            Raw((uint)MessageType.MfnDump, 1, 32, [0, 10, 10, 24, 0, 1, 0, 5]),
        ];
        foreach (byte[] message in messages)
        {
            var d = Dispatcher();
            Run(d, Create(1, 0, 0, 10, 10));
            d.RequestClipboard(0, 1);
            _host.Calls.Clear();
            _host.Sent.Clear();
            for (int cut = 0; cut < message.Length; cut++)
            {
                DispatchResult result = d.Dispatch(message.AsSpan(0, cut));
                Assert.Equal(DispatchStatus.NeedMore, result.Status);
                Assert.Equal(0, result.Consumed);
            }
            Assert.Empty(_host.Calls);
            Assert.Empty(_host.Sent);
            Assert.Equal(message.Length, d.Dispatch(message).Consumed);
        }
    }

    [Fact]
    public void Fatal_messages_of_one_qube_leave_another_qube_s_windows_alone()
    {
        var otherHost = new RecordingHost();
        var other = new GuiDispatcher<RecordingHost>(otherHost, new GuiDaemonOptions("personal"), GuiProtocol.Version);
        Run(other, Concat(Create(1, 0, 0, 10, 10), Map(1)));
        var d = Dispatcher();
        Run(d, Create(1, 0, 0, 10, 10));
        Assert.Equal(DispatchStatus.Fatal, Run(d, Map(2)).Status);
        d.DestroyAll();
        Assert.Equal(0, d.WindowCount);
        Assert.Equal(1, other.WindowCount);
        Assert.True(other.IsMapped(other.Slot(1)));
    }
}
