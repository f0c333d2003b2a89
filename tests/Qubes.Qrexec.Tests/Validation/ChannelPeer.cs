using System;
using System.Diagnostics;
using Qubes.Interop.Linux;
using Qubes.Qrexec.Transport;
using Xunit;

namespace Qubes.Qrexec.Tests.Validation;

/// <summary>
/// A hand-driven end of a control channel: a fake agent or a fake daemon. Every operation polls with
/// a deadline, so a test fails instead of hanging when the other side does not do what it should.
/// </summary>
internal sealed class ChannelPeer : IDisposable
{
    /// <summary>Longest wait for something that should happen (the machine may be slow and busy).</summary>
    public const int TimeoutMs = 30_000;

    public ChannelPeer(IQrexecChannel channel)
    {
        Channel = channel;
        Channel.Blocking = false;
    }

    public IQrexecChannel Channel { get; }

    public bool WaitConnected() => Channel.WaitConnected(TimeSpan.FromMilliseconds(TimeoutMs));

    /// <summary>Writes all of <paramref name="data"/>; false when the peer went away or did not read in time.</summary>
    public bool TrySend(ReadOnlySpan<byte> data)
    {
        long deadline = Deadline(TimeoutMs);
        int done = 0;
        while (done < data.Length)
        {
            int n = Channel.Write(data[done..]);
            if (n < 0)
            {
                return false;
            }
            done += n;
            if (done < data.Length && !Wait(deadline, () => Channel.Space() > 0))
            {
                return false;
            }
        }
        return true;
    }

    public void Send(ReadOnlySpan<byte> data) => Assert.True(TrySend(data), "the peer did not take the message");

    public void Send(MessageType type, ReadOnlySpan<byte> body) => Send(Messages.Build(type, body));

    /// <summary>A bare header, claiming <paramref name="length"/> body bytes that are not sent.</summary>
    public void SendHeader(uint type, uint length)
    {
        byte[] header = new byte[QrexecProtocol.HeaderSize];
        new MessageHeader((MessageType)type, length).Write(header);
        Send(header);
    }

    /// <summary>Reads exactly <paramref name="buffer"/>.Length bytes; false on close or timeout.</summary>
    public bool TryReceive(Span<byte> buffer, int timeoutMs = TimeoutMs)
    {
        long deadline = Deadline(timeoutMs);
        int done = 0;
        while (done < buffer.Length)
        {
            int n = Channel.Read(buffer[done..]);
            if (n < 0)
            {
                return false;
            }
            done += n;
            if (done < buffer.Length && !Wait(deadline, () => Channel.Ready() > 0 || Channel.State == Qubes.Vchan.VchanState.Disconnected))
            {
                return false;
            }
        }
        return true;
    }

    /// <summary>The next message (header and body); fails the test on close or timeout.</summary>
    public (MessageHeader Header, byte[] Body) Receive()
    {
        byte[] raw = new byte[QrexecProtocol.HeaderSize];
        Assert.True(TryReceive(raw), "no message header came");
        MessageHeader header = MessageHeader.Read(raw);
        Assert.True(header.Length <= 1 << 20, $"implausible length {header.Length} of message 0x{(uint)header.Type:x}");
        byte[] body = new byte[header.Length];
        Assert.True(TryReceive(body), $"the body of message 0x{(uint)header.Type:x} did not come");
        return (header, body);
    }

    /// <summary>The next message, which must be of <paramref name="type"/>; returns its body.</summary>
    public byte[] Receive(MessageType type)
    {
        (MessageHeader header, byte[] body) = Receive();
        Assert.True(header.Type == type, $"expected message 0x{(uint)type:x}, got 0x{(uint)header.Type:x} ({header.Length} bytes)");
        return body;
    }

    private bool Wait(long deadline, Func<bool> condition)
    {
        while (!condition())
        {
            long left = (deadline - Stopwatch.GetTimestamp()) * 1000 / Stopwatch.Frequency;
            if (left <= 0)
            {
                return false;
            }
            if (Fd.PollIn(Channel.Fd, (int)Math.Min(left, 100)) > 0)
            {
                Channel.Service();
            }
        }
        return true;
    }

    private static long Deadline(int ms) => Stopwatch.GetTimestamp() + ms * Stopwatch.Frequency / 1000;

    public void Dispose() => Channel.Dispose();
}
