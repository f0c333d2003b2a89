using System;
using System.Buffers.Binary;
using System.Linq;
using Xunit;
using static Qubes.Gui.Tests.Messages;

namespace Qubes.Gui.Tests;

/// <summary>The clipboard rules of spec gui-protocol §9, attacked from the qube's side.</summary>
public class ClipboardTests
{
    private readonly RecordingHost _host = new();

    private GuiDispatcher<RecordingHost> Dispatcher(uint version = GuiProtocol.Version, int limit = GuiProtocol.DefaultClipboardBufferSize)
    {
        var d = new GuiDispatcher<RecordingHost>(_host, new GuiDaemonOptions("untrusted") { ClipboardLimit = limit }, version);
        d.Dispatch(Create(5, 0, 0, 10, 10));
        return d;
    }

    private static byte[] Data(int length, uint window = 0) => Bytes(MessageType.ClipboardData, window, Enumerable.Range(0, length).Select(static i => (byte)('a' + i % 26)).ToArray());

    [Fact]
    public void Data_nobody_asked_for_is_read_and_dropped()
    {
        var d = Dispatcher();
        DispatchResult result = d.Dispatch(Data(100));
        Assert.Equal(DispatchStatus.Ignored, result.Status);
        Assert.Equal(GuiFault.ClipboardNotRequested, result.Fault);
        Assert.Equal(112, result.Consumed);
        Assert.Null(_host.Clipboard);
    }

    [Fact]
    public void A_requested_clipboard_is_stored_once_whatever_window_it_names()
    {
        var d = Dispatcher();
        d.RequestClipboard(d.Slot(5), 1000);
        Assert.Equal(Message(MessageType.ClipboardReq, 5), _host.Sent.Last());
        Assert.Equal(DispatchStatus.Applied, d.Dispatch(Data(100, window: 12345)).Status);
        Assert.Equal(100, _host.Clipboard!.Length);
        // a second answer was not asked for
        Assert.Equal(GuiFault.ClipboardNotRequested, d.Dispatch(Data(50)).Fault);
        Assert.Equal(100, _host.Clipboard!.Length);
    }

    [Fact]
    public void Data_older_than_the_last_clipboard_operation_is_dropped()
    {
        var d = Dispatcher();
        d.RequestClipboard(0, 1000);
        _host.ClipboardChanged = true;
        Assert.Equal(GuiFault.ClipboardSuperseded, d.Dispatch(Data(10)).Fault);
        Assert.Null(_host.Clipboard);
    }

    [Fact]
    public void An_empty_clipboard_clears_the_global_one()
    {
        var d = Dispatcher();
        d.RequestClipboard(0, 1000);
        d.Dispatch(Data(0));
        Assert.Equal("clipboard Cleared 0", _host.Calls.Last());
    }

    [Fact]
    public void More_than_the_qube_s_limit_clears_the_clipboard_and_says_too_large()
    {
        var d = Dispatcher(limit: 1000);
        d.RequestClipboard(0, 1000);
        DispatchResult result = d.Dispatch(Data(1001));
        Assert.Equal(DispatchStatus.Applied, result.Status);
        Assert.Equal(1013, result.Consumed);
        Assert.Equal("clipboard TooLarge 0", _host.Calls.Last());
        d.RequestClipboard(0, 1001);
        d.Dispatch(Data(1000));
        Assert.Equal("clipboard Stored 1000", _host.Calls.Last());
    }

    [Fact]
    public void An_agent_that_holds_more_than_256000_bytes_sends_one_more_and_is_told_too_large()
    {
        var d = Dispatcher(limit: GuiProtocol.MaxClipboardBufferSize);
        d.RequestClipboard(0, 1000);
        Assert.Equal(DispatchStatus.Applied, d.Dispatch(Data(256001)).Status);
        Assert.Equal("clipboard TooLarge 0", _host.Calls.Last());
    }

    [Theory]
    [InlineData(GuiProtocol.Version, 256002u)]
    [InlineData(GuiProtocol.Version, uint.MaxValue)]
    [InlineData(0x00010007u, 65001u)]
    public void A_length_past_the_protocol_s_limit_is_fatal_before_any_data(uint version, uint length)
    {
        var d = Dispatcher(version);
        d.RequestClipboard(0, 1000);
        byte[] header = new byte[12];
        GuiProtocol.WriteHeader(header, MessageType.ClipboardData, 0, length);
        DispatchResult result = d.Dispatch(header);
        Assert.Equal(DispatchStatus.Fatal, result.Status);
        Assert.Equal(GuiFault.ClipboardTooLong, result.Fault);
    }

    [Fact]
    public void Pasting_sends_the_data_for_the_window_and_nothing_for_an_empty_clipboard()
    {
        var d = Dispatcher();
        _host.Sent.Clear();
        d.Paste(0, default);
        Assert.Empty(_host.Sent);
        d.Paste(0, "hello"u8);
        Assert.Equal(Bytes(MessageType.ClipboardData, 5, []).AsSpan(0, 8).ToArray(), _host.Sent[0].AsSpan(0, 8).ToArray());
        Assert.Equal(5u, BinaryPrimitives.ReadUInt32LittleEndian(_host.Sent[0].AsSpan(8)));
        Assert.Equal("hello"u8.ToArray(), _host.Sent[1]);
    }

    [Fact]
    public void Agents_before_1_2_read_the_pasted_length_from_the_window_field()
    {
        var d = Dispatcher(0x00010001);
        _host.Sent.Clear();
        d.Paste(0, "hello"u8);
        Assert.Equal(5u, BinaryPrimitives.ReadUInt32LittleEndian(_host.Sent[0].AsSpan(4)));
    }
}
