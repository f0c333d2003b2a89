using System;
using System.Buffers.Binary;
using Xunit;

namespace Qubes.Gui.Tests;

public class HandshakeTests
{
    [Theory]
    [InlineData(0x00010008u, 0x00010008u)]
    [InlineData(0x00010009u, 0x00010008u)]
    [InlineData(0x00010003u, 0x00010003u)]
    [InlineData(0x00010000u, 0x00010000u)]
    public void The_session_runs_at_the_lower_minor_of_the_same_major(uint agent, uint session)
    {
        Assert.Equal(NegotiationResult.Accepted, Handshake.Negotiate(agent, out uint negotiated));
        Assert.Equal(session, negotiated);
    }

    [Theory]
    [InlineData(0x00000008u, NegotiationResult.AgentOutdated)]
    [InlineData(0x00020000u, NegotiationResult.DaemonTooOld)]
    [InlineData(0xFFFF0008u, NegotiationResult.DaemonTooOld)]
    public void Another_major_version_has_no_session(uint agent, NegotiationResult expected)
    {
        Assert.Equal(expected, Handshake.Negotiate(agent, out uint session));
        Assert.Equal(0u, session);
        Assert.Contains(expected == NegotiationResult.AgentOutdated ? "outdated" : "too old", Handshake.Describe(expected, agent), StringComparison.Ordinal);
    }

    [Fact]
    public void From_1_4_the_daemon_sends_its_version_before_xconf()
    {
        XConf conf = XConf.For(1366, 768, 24);
        Span<byte> reply = stackalloc byte[20];
        Assert.Equal(20, Handshake.WriteDaemonReply(reply, 0x00010004, conf));
        Assert.Equal(0x00010004u, BinaryPrimitives.ReadUInt32LittleEndian(reply));
        Assert.Equal(conf, XConf.Read(reply[4..]));
        Assert.Equal(16, Handshake.WriteDaemonReply(reply, 0x00010003, conf));
        Assert.Equal(conf, XConf.Read(reply));
    }

    [Fact]
    public void Xconf_rounds_the_width_up_to_eight_and_counts_the_memory_in_KiB()
    {
        XConf conf = XConf.For(1366, 768, 24);
        Assert.Equal(1368u, conf.Width);
        Assert.Equal(768u, conf.Height);
        Assert.Equal(24u, conf.Depth);
        Assert.Equal(1368u * 768 * 4 / 1024 + 1, conf.MemKiB);
        Assert.Equal(1920u, XConf.For(1920, 1080, 24).Width);
    }

    [Theory]
    [InlineData(0x00010008u, true)]
    [InlineData(0x00010004u, true)]
    [InlineData(0x00010003u, false)]
    [InlineData(0x00010009u, false)]
    [InlineData(0x00020000u, false)]
    public void The_agent_takes_a_daemon_version_from_1_4_up_to_its_own(uint daemon, bool accepted)
        => Assert.Equal(accepted, Handshake.AgentAccepts(daemon));
}
