using System;
using System.Buffers.Binary;
using Xunit;

namespace Qubes.Qrexec.Tests.Validation;

/// <summary><see cref="Messages.CheckHello"/>: the HELLO check of every link (spec §5, §12.2 item 1).</summary>
public sealed class HelloCheckTests
{
    private static byte[] Version(uint version)
    {
        byte[] body = new byte[4];
        BinaryPrimitives.WriteUInt32LittleEndian(body, version);
        return body;
    }

    [Theory]
    [InlineData(2u, 2u, 2u)]
    [InlineData(3u, 2u, 3u)]
    [InlineData(4u, 2u, 4u)]
    [InlineData(5u, 2u, 4u)] // newer peers negotiate down to ours
    [InlineData(uint.MaxValue, 2u, 4u)]
    [InlineData(3u, 3u, 3u)]
    [InlineData(4u, 3u, 4u)]
    [InlineData(1u, 2u, 0u)] // version 1 is unsupported
    [InlineData(0u, 2u, 0u)]
    [InlineData(2u, 3u, 0u)] // a version-2 client of the daemon socket
    public void Negotiates_the_minimum_with_ours_and_rejects_below_the_floor(uint peer, uint minimum, uint expected)
    {
        uint negotiated = Messages.CheckHello(new MessageHeader(MessageType.Hello, 4), Version(peer), minimum, out uint peerVersion);
        Assert.Equal(expected, negotiated);
        Assert.Equal(peer, peerVersion);
    }

    [Theory]
    [InlineData(MessageType.ExecCmdline)]
    [InlineData(MessageType.DataStdin)]
    [InlineData(MessageType.TriggerService4)]
    [InlineData((MessageType)0x301)]
    public void Another_type_with_a_good_body_is_rejected(MessageType type)
    {
        Assert.Equal(0u, Messages.CheckHello(new MessageHeader(type, 4), Version(4), 2, out uint peer));
        Assert.Equal(0u, peer);
    }

    [Theory]
    [InlineData(0u)]
    [InlineData(3u)]
    [InlineData(5u)]
    [InlineData(8u)]
    public void A_HELLO_whose_length_is_not_4_is_rejected(uint length)
        => Assert.Equal(0u, Messages.CheckHello(new MessageHeader(MessageType.Hello, length), new byte[8], 2, out _));

    [Fact]
    public void A_HELLO_claiming_4_bytes_with_a_shorter_body_is_rejected()
        => Assert.Equal(0u, Messages.CheckHello(new MessageHeader(MessageType.Hello, 4), Version(4).AsSpan(0, 3), 2, out _));

    [Fact]
    public void The_built_HELLO_round_trips()
    {
        byte[] hello = Messages.Hello(3);
        Assert.Equal(12, hello.Length);
        MessageHeader header = MessageHeader.Read(hello);
        Assert.Equal(MessageType.Hello, header.Type);
        Assert.Equal(4u, header.Length);
        Assert.Equal(3u, Messages.CheckHello(header, hello.AsSpan(8), 3, out _));
    }
}
