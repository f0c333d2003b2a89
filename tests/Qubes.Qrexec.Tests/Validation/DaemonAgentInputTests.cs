using System;
using System.Buffers.Binary;
using System.Diagnostics;
using System.IO;
using System.Linq;
using System.Threading.Tasks;
using Qubes.Platform.Tests;
using Xunit;
using static Qubes.Qrexec.Tests.Validation.TriggerBodies;

namespace Qubes.Qrexec.Tests.Validation;

/// <summary>
/// The real daemon against a hostile agent (spec §5.1, §12.1): header violations end the daemon
/// (that daemon only), body violations are refused with the ident as received and the daemon serves on.
/// </summary>
[Collection(InProcessDaemonCollection.Name)]
public sealed class DaemonAgentInputTests : IDisposable
{
    private readonly DaemonWorld _world = new();

    public void Dispose() => _world.Dispose();

    private static byte[] ExecParams(uint domain, uint port)
    {
        byte[] body = new byte[8];
        BinaryPrimitives.WriteUInt32LittleEndian(body, domain);
        BinaryPrimitives.WriteUInt32LittleEndian(body.AsSpan(4), port);
        return body;
    }

    // ------------------------------------------------------------------ handshake (§5.1)

    [Theory]
    [InlineData(1u)]
    [InlineData(0u)]
    public async Task An_agent_below_version_2_fails_the_start(uint version)
    {
        using DaemonUnderTest d = new(_world, "vm1");
        d.SendHello(version);
        Assert.Equal(1, await d.Started.WaitAsync(TimeSpan.FromMilliseconds(ChannelPeer.TimeoutMs)));
        Assert.False(File.Exists(d.SocketPath));
        Assert.Contains(d.Log, line => line.Contains("incompatible", StringComparison.Ordinal));
    }

    [Theory]
    [InlineData(0x211u, 4u)] // not a HELLO
    [InlineData(0x300u, 5u)] // a HELLO of the wrong length
    [InlineData(0x300u, 0u)]
    public async Task An_agent_not_starting_with_a_4_byte_HELLO_fails_the_start(uint type, uint length)
    {
        using DaemonUnderTest d = new(_world, "vm1");
        Assert.True(d.Agent.WaitConnected());
        d.Agent.SendHeader(type, length);
        d.Agent.Send(new byte[length]);
        Assert.Equal(1, await d.Started.WaitAsync(TimeSpan.FromMilliseconds(ChannelPeer.TimeoutMs)));
        Assert.False(File.Exists(d.SocketPath));
    }

    [Fact]
    public async Task A_newer_agent_gets_its_own_version_echoed_and_speaks_version_4()
    {
        using DaemonUnderTest d = await DaemonUnderTest.RunningAsync(_world, "vm1", version: 9);
        Assert.True(File.Exists(d.SocketPath));
        d.AssertServed("after-hello");
    }

    // ------------------------------------------------------------------ header checks: fatal

    [Theory]
    [InlineData(0x999u, 0u)]                   // unknown type
    [InlineData(0x300u, 4u)]                   // HELLO again
    [InlineData(0x200u, 20u)]                  // EXEC_CMDLINE is dom0's to send
    [InlineData(0x203u, 32u)]                  // SERVICE_REFUSED likewise
    [InlineData(0x190u, 1u)]                   // data on the control channel
    [InlineData(0x8213u, 161u)]                // the trigger-socket-only variant
    [InlineData(0x210u, 128u)]                 // TRIGGER_SERVICE from a version-4 agent
    [InlineData(0x212u, 96u)]                  // TRIGGER_SERVICE3 without a name
    [InlineData(0x213u, 160u)]                 // TRIGGER_SERVICE4 without a name
    [InlineData(0x213u, 160u + 65001u)]        // a name one byte too long
    [InlineData(0x213u, uint.MaxValue)]
    [InlineData(0x211u, 7u)]                   // CONNECTION_TERMINATED too short
    [InlineData(0x211u, 9u)]                   // and too long
    public async Task A_header_violation_ends_the_daemon_with_status_1(uint type, uint length)
    {
        using DaemonUnderTest d = await DaemonUnderTest.RunningAsync(_world, "vm1");
        d.Agent.SendHeader(type, length); // the header alone: the daemon must not wait for a body
        Assert.Equal(1, await d.EndedAsync());
        Assert.Empty(_world.PolicyQuestions());
    }

    [Theory]
    [InlineData(769u)]
    [InlineData(512u)]
    [InlineData(0u)]
    [InlineData(uint.MaxValue)]
    public async Task CONNECTION_TERMINATED_for_a_port_outside_the_data_ports_ends_the_daemon(uint port)
    {
        using DaemonUnderTest d = await DaemonUnderTest.RunningAsync(_world, "vm1");
        d.Agent.Send(MessageType.ConnectionTerminated, ExecParams(0, port));
        Assert.Equal(1, await d.EndedAsync());
    }

    [Theory]
    [InlineData(0u, 768u)]  // the last data port, never allocated
    [InlineData(0u, 513u)]
    [InlineData(77u, 600u)]
    public async Task CONNECTION_TERMINATED_for_an_unknown_pair_is_ignored(uint domain, uint port)
    {
        using DaemonUnderTest d = await DaemonUnderTest.RunningAsync(_world, "vm1");
        d.Agent.Send(MessageType.ConnectionTerminated, ExecParams(domain, port));
        d.AssertServed("still-here");
    }

    [Fact]
    public async Task A_version_3_agent_may_not_send_TRIGGER_SERVICE4()
    {
        using DaemonUnderTest d = await DaemonUnderTest.RunningAsync(_world, "vm1", version: 3);
        d.Agent.Send(MessageType.TriggerService3, V3("work", IdentField("v3-ok"), "qubes.V3\0"));
        Assert.Equal(IdentField("v3-ok"), d.Agent.Receive(MessageType.ServiceRefused));
        Assert.Equal($"-- vm1 work qubes.V3", _world.PolicyQuestions().Single());
        d.Agent.Send(MessageType.TriggerService4, V4("", "work", IdentField("v4"), "qubes.V4\0"));
        Assert.Equal(1, await d.EndedAsync());
        Assert.Single(_world.PolicyQuestions());
    }

    [Fact]
    public async Task A_version_2_agent_may_send_only_TRIGGER_SERVICE()
    {
        using DaemonUnderTest d = await DaemonUnderTest.RunningAsync(_world, "vm1", version: 2);
        d.Agent.Send(MessageType.TriggerService, V2("qubes.V2+arg", "work", IdentField("v2-ok")));
        Assert.Equal(IdentField("v2-ok"), d.Agent.Receive(MessageType.ServiceRefused));
        Assert.Equal($"-- vm1 work qubes.V2+arg", _world.PolicyQuestions().Single());
        d.Agent.Send(MessageType.TriggerService3, V3("work", IdentField("v3"), "qubes.V3\0"));
        Assert.Equal(1, await d.EndedAsync());
        Assert.Single(_world.PolicyQuestions());
    }

    [Fact]
    public async Task A_name_of_exactly_65000_bytes_is_read_and_asked_about()
    {
        using DaemonUnderTest d = await DaemonUnderTest.RunningAsync(_world, "vm1");
        string name = "q." + new string('n', 64997);
        byte[] body = V4("", "work", IdentField("longest"), name + "\0");
        Assert.Equal(160 + 65000, body.Length);
        d.Agent.Send(MessageType.TriggerService4, body);
        Assert.Equal(IdentField("longest"), d.Agent.Receive(MessageType.ServiceRefused));
        Assert.Equal($"-- vm1 work {name}", _world.PolicyQuestions().Single());
        d.AssertServed("after-longest");
    }

    // ------------------------------------------------------------------ body checks: refused, the daemon serves on

    [Theory]
    [InlineData("bad/ident", "qubes.Svc\0")]
    [InlineData("bad+ident", "qubes.Svc\0")]
    [InlineData("ok\0garbage", "qubes.Svc\0")]                         // bytes after the ident's NUL
    [InlineData("0123456789abcdef0123456789abcdef", "qubes.Svc\0")]   // no NUL in 32 bytes
    [InlineData("no-final-nul", "qubes.Svc")]
    [InlineData("inner-nul", "qubes\0Svc\0")]
    [InlineData("two-nuls", "qubes.Svc\0\0")]
    [InlineData("plus-first", "+arg\0")]
    [InlineData("empty-name", "\0")]
    public async Task A_body_violation_is_refused_with_the_ident_as_received_and_the_daemon_serves_on(string rawIdent, string rawName)
    {
        using DaemonUnderTest d = await DaemonUnderTest.RunningAsync(_world, "vm1");
        byte[] ident = IdentField(rawIdent);
        d.Agent.Send(MessageType.TriggerService4, V4("", "work", ident, rawName));
        Assert.Equal(ident, d.Agent.Receive(MessageType.ServiceRefused));
        Assert.Empty(_world.PolicyQuestions()); // refused before the policy was asked
        d.AssertServed("next");
    }

    [Fact]
    public async Task A_denied_request_is_refused_after_asking_the_policy_with_sanitised_names()
    {
        using DaemonUnderTest d = await DaemonUnderTest.RunningAsync(_world, "vm1");
        d.Agent.Send(MessageType.TriggerService4, V4("", "work/../x", IdentField("SOCKET5"), "svc+a/b\0"));
        Assert.Equal(IdentField("SOCKET5"), d.Agent.Receive(MessageType.ServiceRefused));
        Assert.Equal("-- vm1 work_.._x svc+a_b", _world.PolicyQuestions().Single());
        d.AssertServed("SOCKET6");
    }

    [Fact]
    public async Task A_refusal_goes_out_as_soon_as_the_policy_answered()
    {
        using DaemonUnderTest d = await DaemonUnderTest.RunningAsync(_world, "vm1");
        Stopwatch clock = Stopwatch.StartNew();
        d.Agent.Send(MessageType.TriggerService4, V4("", "work", IdentField("prompt"), "qubes.Prompt\0"));
        Assert.Equal(IdentField("prompt"), d.Agent.Receive(MessageType.ServiceRefused));
        // the policy program takes milliseconds; the daemon's idle poll lasts 10 s
        Assert.True(clock.Elapsed < TimeSpan.FromSeconds(8), $"the refusal took {clock.Elapsed}");
    }

    [Fact]
    public async Task A_second_request_with_a_pending_ident_is_refused_without_asking()
    {
        using DaemonUnderTest d = await DaemonUnderTest.RunningAsync(_world, "vm1", policyProgram: _world.SlowPolicy);
        d.Agent.Send(MessageType.TriggerService4, V4("", "work", IdentField("same"), "qubes.First\0"));
        Assert.True(TestBroker.Eventually(() => _world.PolicyQuestions().Length == 1, ChannelPeer.TimeoutMs), "the policy was not asked");
        d.Agent.Send(MessageType.TriggerService4, V4("", "work", IdentField("same"), "qubes.Second\0"));
        // the duplicate is refused at once, while the first one's policy is still undecided
        Assert.Equal(IdentField("same"), d.Agent.Receive(MessageType.ServiceRefused));
        _world.ReleasePolicy();
        Assert.Equal(IdentField("same"), d.Agent.Receive(MessageType.ServiceRefused));
        Assert.Equal("-- vm1 work qubes.First", _world.PolicyQuestions().Single());
    }

    // ------------------------------------------------------------------ one daemon per qube

    [Fact]
    public async Task A_hostile_agent_ends_its_own_daemon_only()
    {
        using DaemonUnderTest hostile = await DaemonUnderTest.RunningAsync(_world, "hostile");
        using DaemonUnderTest healthy = await DaemonUnderTest.RunningAsync(_world, "healthy");
        hostile.Agent.SendHeader(0x999, 0);
        Assert.Equal(1, await hostile.EndedAsync());

        using LocalClient client = healthy.Client();
        client.Send(Messages.ExecCommand(MessageType.ExecCmdline, 0, 0, "user:echo hi"));
        (MessageHeader header, byte[] reply) = client.ReceiveMessage();
        Assert.Equal(MessageType.ExecCmdline, header.Type);
        Assert.Equal(ExecParams((uint)healthy.DomainId, 513), reply);
        byte[] forwarded = healthy.Agent.Receive(MessageType.ExecCmdline);
        Assert.Equal(Messages.ExecCommand(MessageType.ExecCmdline, 0, 513, "user:echo hi").AsSpan(8).ToArray(), forwarded);
        healthy.AssertServed("healthy-still");
    }
}
