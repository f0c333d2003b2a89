using System;
using System.Buffers.Binary;
using Qubes.Interop.Linux;
using Qubes.Platform.Loopback;
using Qubes.Platform.Xenstore;
using Xunit;

namespace Qubes.Platform.Tests;

/// <summary>What a hostile domain can send: at worst it loses its own connection.</summary>
public sealed class MalformedTests
{
    private static byte[] Message(uint type, uint requestId, ReadOnlySpan<byte> payload, uint? lengthOverride = null)
    {
        byte[] m = new byte[XenstoreWire.HeaderSize + payload.Length];
        BinaryPrimitives.WriteUInt32LittleEndian(m, type);
        BinaryPrimitives.WriteUInt32LittleEndian(m.AsSpan(4), requestId);
        BinaryPrimitives.WriteUInt32LittleEndian(m.AsSpan(12), lengthOverride ?? (uint)payload.Length);
        payload.CopyTo(m.AsSpan(XenstoreWire.HeaderSize));
        return m;
    }

    /// <summary>Reads one reply from a raw blocking socket; null at EOF.</summary>
    private static (XenstoreMessageType Type, uint RequestId, byte[] Payload)? ReadReply(int fd)
    {
        byte[] buffer = new byte[XenstoreWire.MaxMessage];
        int have = 0;
        while (true)
        {
            if (XenstoreHeader.TryRead(buffer.AsSpan(0, have), out XenstoreHeader h) == FrameStatus.Complete)
            {
                return (h.Type, h.RequestId, buffer.AsSpan(XenstoreWire.HeaderSize, h.Length).ToArray());
            }
            Assert.Equal(1, Fd.PollIn(fd, 5000) is 1 or -32 ? 1 : 0);
            int n = Fd.Read(fd, buffer.AsSpan(have));
            if (n <= 0)
            {
                return null;
            }
            have += n;
        }
    }

    [Fact]
    public void Broken_framing_closes_only_that_connection()
    {
        using var t = new TestBroker();
        (int aId, SafeFd raw) = t.Dom0.CreateDomain("hostile");
        (int bId, LoopbackPlatform b) = t.NewDomain("b");
        using (raw)
        using (b)
        {
            using var aSecond = LoopbackPlatform.Connect(OpenConnectionRaw(raw.Fd));
            Assert.Equal(Errno.None, Fd.WriteAll(raw.Fd, Message(2, 1, "x\0"u8, lengthOverride: 100_000)));
            Assert.Null(ReadReply(raw.Fd)); // EOF: the broker hung up on it

            Assert.True(aSecond.Domains.IsAlive(aId)); // its other connection still works
            using IStore s = b.OpenStore();
            s.Write("data/ok", "1");
            Assert.Equal("1", s.Read("data/ok"));
            Assert.True(t.Dom0.Domains.IsAlive(bId));
        }
    }

    [Theory]
    [InlineData(2u, "no-nul")]          // XS_READ without terminator
    [InlineData(2u, "a\0b\0")]          // two strings where one is expected
    [InlineData(4u, "onlypath\0")]      // XS_WATCH without token
    [InlineData(7u, "X\0")]             // XS_TRANSACTION_END with a bad flag
    [InlineData(14u, "/x\0q7\0")]       // XS_SET_PERMS with a bad entry
    [InlineData(0x105u, "\0\0\0")]      // GrantMap too short
    [InlineData(0x10Au, "\0\0\0\0")]    // EvtchnBind too short
    [InlineData(0x999u, "")]            // unknown type
    [InlineData(15u, "/x\0t\0")]        // a watch event is not a request
    [InlineData(0x100u, "name")]        // CreateDomain from a domain
    public void Malformed_requests_get_an_error_and_the_connection_stays_usable(uint type, string payload)
    {
        using var t = new TestBroker();
        (_, SafeFd raw) = t.Dom0.CreateDomain("hostile");
        using (raw)
        {
            Assert.Equal(Errno.None, Fd.WriteAll(raw.Fd, Message(type, 7, System.Text.Encoding.ASCII.GetBytes(payload))));
            var reply = ReadReply(raw.Fd);
            Assert.NotNull(reply);
            Assert.Equal(XenstoreMessageType.Error, reply.Value.Type);
            Assert.Equal(7u, reply.Value.RequestId);
            Errno e = XenstoreWire.ParseErrorName(reply.Value.Payload);
            Assert.True(e is Errno.EINVAL or Errno.EPERM, e.ToString());

            Assert.Equal(Errno.None, Fd.WriteAll(raw.Fd, Message(2, 8, "domid\0"u8)));
            reply = ReadReply(raw.Fd);
            Assert.NotNull(reply);
            Assert.Equal(XenstoreMessageType.Read, reply.Value.Type);
            Assert.Equal(8u, reply.Value.RequestId);
        }
    }

    [Fact]
    public void Random_garbage_never_hurts_the_broker()
    {
        using var t = new TestBroker();
        var random = new Random(12345);
        for (int round = 0; round < 30; round++)
        {
            (_, SafeFd raw) = t.Dom0.CreateDomain("fuzz" + round);
            using (raw)
            {
                for (int i = 0; i < 50; i++)
                {
                    byte[] payload = new byte[random.Next(0, 64)];
                    random.NextBytes(payload);
                    uint type = random.Next(3) == 0 ? (uint)random.Next() : (uint)random.Next(1, 17) + (random.Next(2) == 0 ? 0u : 0xFFu);
                    byte[] message = Message(type, (uint)i, payload);
                    if (random.Next(20) == 0)
                    {
                        random.NextBytes(message); // broken framing too, now and then
                    }
                    if (Fd.WriteAll(raw.Fd, message) != Errno.None || ReadReply(raw.Fd) is null)
                    {
                        break;
                    }
                }
            }
            Assert.True(t.Dom0.Domains.IsAlive(0));
        }
        using IStore s = t.Dom0.OpenStore();
        s.Write("/still", "fine");
        Assert.Equal("fine", s.Read("/still"));
    }

    [Fact]
    public void A_client_that_does_not_read_its_replies_is_dropped()
    {
        using var t = new TestBroker();
        (int id, SafeFd raw) = t.Dom0.CreateDomain("deaf");
        using (raw)
        {
            using IStore s0 = t.Dom0.OpenStore();
            s0.Write($"/local/domain/{id}/big", new string('b', 4000));
            byte[] read = Message(2, 1, "big\0"u8);
            for (int i = 0; i < 200; i++)
            {
                // ~800 KB of replies, never read; the broker may hang up before all are sent.
                Errno e = Fd.WriteAll(raw.Fd, read);
                if (e != Errno.None)
                {
                    Assert.True(e is Errno.EPIPE or Errno.ECONNRESET, e.ToString());
                    break;
                }
            }
            Assert.True(TestBroker.Eventually(() => !t.Dom0.Domains.IsAlive(id)), "the deaf client was not dropped");
            Assert.Equal("fine", WriteRead(s0));
        }
    }

    [Fact]
    public void Unclaimed_descriptors_close_the_connection()
    {
        using var t = new TestBroker();
        (int id, SafeFd raw) = t.Dom0.CreateDomain("fds");
        using (raw)
        {
            using SafeFd e = EventFd.Create();
            int[] many = new int[FdPassing.MaxFds];
            Array.Fill(many, e.Fd);
            byte[] msg = Message(2, 1, "domid\0"u8);
            _ = FdPassing.Send(raw.Fd, msg, many);
            _ = FdPassing.Send(raw.Fd, msg, many);
            Assert.True(TestBroker.Eventually(() => !t.Dom0.Domains.IsAlive(id)));
        }
    }

    [Fact]
    public void The_request_parser_never_throws()
    {
        var random = new Random(777);
        byte[] buffer = new byte[600];
        for (int i = 0; i < 100_000; i++)
        {
            int length = random.Next(buffer.Length);
            random.NextBytes(buffer.AsSpan(0, length));
            if (random.Next(2) == 0 && length > 0)
            {
                buffer[length - 1] = 0;
            }
            var header = new XenstoreHeader((XenstoreMessageType)(random.Next(4) == 0 ? random.Next() : random.Next(0, 17) + (random.Next(2) * 0x100)), 1, 0, length);
            _ = RequestParser.Parse(header, buffer.AsSpan(0, length), out _);
            _ = XenstoreHeader.TryRead(buffer.AsSpan(0, length), out _);
        }
    }

    private static string? WriteRead(IStore s)
    {
        s.Write("/w", "fine");
        return s.Read("/w");
    }

    /// <summary>A Connect request on a raw domain socket: returns the new connection's descriptor.</summary>
    private static int OpenConnectionRaw(int fd)
    {
        Assert.Equal(Errno.None, FdPassing.Send(fd, Message(0x102, 99, []), []));
        byte[] buffer = new byte[64];
        Span<int> fds = stackalloc int[FdPassing.MaxFds];
        int n = FdPassing.Receive(fd, buffer, fds, out int count);
        Assert.Equal(XenstoreWire.HeaderSize, n);
        Assert.Equal(1, count);
        return fds[0];
    }
}
