using System;
using Xunit;
using static Qubes.Gui.Tests.Messages;

namespace Qubes.Gui.Tests;

/// <summary>Dispatch allocates nothing per message, whatever the qube sends.</summary>
public class AllocationTests
{
    [Fact]
    public void A_long_mixed_stream_dispatches_without_allocating()
    {
        var host = new CountingHost();
        var d = new GuiDispatcher<CountingHost>(host, new GuiDaemonOptions("work"), GuiProtocol.Version);
        byte[] stream = Concat(
            Create(1, 0, 0, 640, 480), Map(1), WindowDump(1, 640, 480, 300),
            Message(MessageType.ShmImage, 1, 0, 0, 640, 480), Configure(1, 10, 10, 640, 480),
            Name(MessageType.WmName, 1, "a title \u00e9"u8.ToArray()), Message(MessageType.WindowHints, 1, 16u, 10u, 10u, 0u, 0u, 0u, 0u, 0u, 0u),
            Message(MessageType.WindowFlags, 1, 2u, 0u), Message(MessageType.Cursor, 1, 0x144u),
            Create(2, 5, 5, 100, 100, overrideRedirect: true), Map(2, transientFor: 1, overrideRedirect: true),
            Message(MessageType.Unmap, 2), Message(MessageType.Destroy, 2),
            Bytes(MessageType.ClipboardData, 0, new byte[300]),
            Message(MessageType.Unmap, 1), Message(MessageType.Destroy, 1));
        long before = 0;
        for (int round = 0; round < 2000; round++)
        {
            if (round == 100)
            {
                before = GC.GetAllocatedBytesForCurrentThread();
            }
            if (round % 2 == 0)
            {
                d.RequestClipboard(0, (uint)round);
            }
            int offset = 0;
            while (offset < stream.Length)
            {
                DispatchResult result = d.Dispatch(stream.AsSpan(offset));
                if (result.Status is not (DispatchStatus.Applied or DispatchStatus.Ignored))
                {
                    Assert.Fail(result.ToString());
                }
                offset += result.Consumed;
            }
        }
        long allocated = GC.GetAllocatedBytesForCurrentThread() - before;
        Assert.True(allocated == 0, $"{allocated} bytes allocated in 1900 rounds of {stream.Length} bytes");
        Assert.True(host.Damages >= 1900);
    }
}
