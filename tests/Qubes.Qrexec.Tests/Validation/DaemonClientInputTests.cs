using System;
using System.Buffers.Binary;
using System.Text;
using System.Threading;
using System.Threading.Tasks;
using Qubes.Platform.Tests;
using Xunit;
using static Qubes.Qrexec.Tests.Validation.TriggerBodies;

namespace Qubes.Qrexec.Tests.Validation;

/// <summary>
/// The real daemon's socket against local clients (spec §5.2, §6, §12.2), with a fake agent
/// watching what reaches the control channel.
/// </summary>
[Collection(InProcessDaemonCollection.Name)]
public sealed class DaemonClientInputTests : IDisposable
{
    private readonly DaemonWorld _world = new();
    private int _marker;

    public void Dispose() => _world.Dispose();

    private static byte[] ExecParams(uint domain, uint port)
    {
        byte[] body = new byte[8];
        BinaryPrimitives.WriteUInt32LittleEndian(body, domain);
        BinaryPrimitives.WriteUInt32LittleEndian(body.AsSpan(4), port);
        return body;
    }

    private static byte[] Body(uint domain, uint port, string trailer)
        => Concat(ExecParams(domain, port), Encoding.Latin1.GetBytes(trailer));

    private static byte[] Message(uint type, byte[] body) => Messages.Build((MessageType)type, body);

    /// <summary>
    /// The client was closed, and the daemon forwarded nothing for it: the next thing the agent sees
    /// is a well-formed command sent afterwards by another client.
    /// </summary>
    private void AssertClosedAndNothingForwarded(DaemonUnderTest d, LocalClient client)
    {
        Assert.True(client.ClosedByPeer(), "the daemon did not close the client");
        string command = $"user:marker {Interlocked.Increment(ref _marker)}";
        using LocalClient good = d.Client();
        good.Send(Messages.ExecCommand(MessageType.ExecCmdline, 0, 0, command));
        (MessageHeader header, byte[] reply) = good.ReceiveMessage();
        Assert.Equal(MessageType.ExecCmdline, header.Type);
        uint port = BinaryPrimitives.ReadUInt32LittleEndian(reply.AsSpan(4));
        Assert.Equal(Body(0, port, command + "\0"), d.Agent.Receive(MessageType.ExecCmdline));
        Assert.False(d.Ran.IsCompleted, d.LogText);
    }

    // ------------------------------------------------------------------ handshake (§5.2, §12.2 item 1)

    [Fact]
    public async Task The_daemon_greets_with_HELLO_3_and_accepts_HELLO_3()
    {
        using DaemonUnderTest d = await DaemonUnderTest.RunningAsync(_world, "vm1");
        using LocalClient client = new(d.SocketPath);
        Assert.Equal(3u, client.ReceiveHello());
        client.Send(Messages.Hello(3));
        Assert.True(client.Idle(300));
        client.Send(Messages.ExecCommand(MessageType.ExecCmdline, 0, 0, "user:true"));
        Assert.Equal(MessageType.ExecCmdline, client.ReceiveMessage().Header.Type);
    }

    [Theory]
    [InlineData(0x300u, 4u, 2u)]   // version 2
    [InlineData(0x300u, 4u, 1u)]
    [InlineData(0x300u, 4u, 0u)]
    [InlineData(0x300u, 5u, 3u)]   // length 5
    [InlineData(0x300u, 8u, 3u)]
    [InlineData(0x200u, 4u, 3u)]   // not a HELLO
    public async Task A_client_without_an_acceptable_HELLO_is_closed(uint type, uint length, uint version)
    {
        using DaemonUnderTest d = await DaemonUnderTest.RunningAsync(_world, "vm1");
        using LocalClient client = new(d.SocketPath);
        Assert.Equal(3u, client.ReceiveHello());
        byte[] body = new byte[length];
        BinaryPrimitives.WriteUInt32LittleEndian(body, version);
        client.SendIgnoringClose(Message(type, body));
        AssertClosedAndNothingForwarded(d, client);
    }

    [Fact]
    public async Task A_command_instead_of_the_HELLO_is_not_forwarded()
    {
        using DaemonUnderTest d = await DaemonUnderTest.RunningAsync(_world, "vm1");
        using LocalClient client = new(d.SocketPath);
        Assert.Equal(3u, client.ReceiveHello());
        client.SendIgnoringClose(Messages.ExecCommand(MessageType.ExecCmdline, 0, 0, "user:sneaky"));
        AssertClosedAndNothingForwarded(d, client);
    }

    // ------------------------------------------------------------------ commands (§12.2 items 2, 4)

    [Theory]
    [InlineData(0x203u)] // SERVICE_REFUSED
    [InlineData(0x210u)] // TRIGGER_SERVICE
    [InlineData(0x211u)] // CONNECTION_TERMINATED
    [InlineData(0x213u)] // TRIGGER_SERVICE4
    [InlineData(0x300u)] // HELLO again
    [InlineData(0x190u)] // DATA_STDIN
    [InlineData(0x999u)]
    public async Task A_command_of_another_type_is_closed(uint type)
    {
        using DaemonUnderTest d = await DaemonUnderTest.RunningAsync(_world, "vm1");
        using LocalClient client = d.Client();
        client.SendIgnoringClose(Message(type, Body(0, 0, "user:true\0")));
        AssertClosedAndNothingForwarded(d, client);
    }

    [Theory]
    [InlineData(0x200u, 8)]
    [InlineData(0x200u, 0)]
    [InlineData(0x201u, 4)]
    [InlineData(0x202u, 8)]
    public async Task A_command_of_8_bytes_or_less_is_closed(uint type, int length)
    {
        using DaemonUnderTest d = await DaemonUnderTest.RunningAsync(_world, "vm1");
        using LocalClient client = d.Client();
        client.SendIgnoringClose(Message(type, new byte[length]));
        AssertClosedAndNothingForwarded(d, client);
    }

    [Fact]
    public async Task A_command_longer_than_65535_is_closed_without_reading_it()
    {
        using DaemonUnderTest d = await DaemonUnderTest.RunningAsync(_world, "vm1");
        using LocalClient client = d.Client();
        client.SendHeader(0x200, 65536);
        AssertClosedAndNothingForwarded(d, client);
    }

    [Fact]
    public async Task A_command_of_exactly_65535_bytes_is_forwarded()
    {
        using DaemonUnderTest d = await DaemonUnderTest.RunningAsync(_world, "vm1");
        using LocalClient client = d.Client();
        string command = "user:" + new string('x', 65535 - 8 - 5 - 1);
        byte[] message = Messages.ExecCommand(MessageType.ExecCmdline, 0, 0, command);
        Assert.Equal(8 + 65535, message.Length);
        client.Send(message);
        Assert.Equal(ExecParams((uint)d.DomainId, 513), client.ReceiveMessage().Body);
        Assert.Equal(Body(0, 513, command + "\0"), d.Agent.Receive(MessageType.ExecCmdline));
    }

    [Theory]
    [InlineData(0x200u)]
    [InlineData(0x201u)]
    public async Task A_command_line_not_ending_with_NUL_is_closed(uint type)
    {
        using DaemonUnderTest d = await DaemonUnderTest.RunningAsync(_world, "vm1");
        using LocalClient client = d.Client();
        client.SendIgnoringClose(Message(type, Body(0, 0, "user:true")));
        AssertClosedAndNothingForwarded(d, client);
    }

    [Theory]
    [InlineData(512u)]
    [InlineData(769u)]
    [InlineData(1u)]
    [InlineData(uint.MaxValue)]
    public async Task A_port_outside_the_data_ports_is_closed(uint port)
    {
        using DaemonUnderTest d = await DaemonUnderTest.RunningAsync(_world, "vm1");
        using LocalClient client = d.Client();
        client.SendIgnoringClose(Message(0x200, Body(0, port, "user:true\0")));
        AssertClosedAndNothingForwarded(d, client);
    }

    [Theory]
    [InlineData(513u)]
    [InlineData(768u)]
    public async Task A_data_port_given_by_the_client_is_honoured_without_a_reply(uint port)
    {
        using DaemonUnderTest d = await DaemonUnderTest.RunningAsync(_world, "vm1");
        using LocalClient client = d.Client();
        client.Send(Message(0x200, Body(5, port, "user:given\0")));
        Assert.Equal(Body(5, port, "user:given\0"), d.Agent.Receive(MessageType.ExecCmdline));
        Assert.True(client.Idle(300), "the daemon replied to a command that brought its port");
    }

    // ------------------------------------------------------------------ the accepted command (§6)

    [Theory]
    [InlineData(MessageType.ExecCmdline)]
    [InlineData(MessageType.JustExec)]
    public async Task DEFAULT_is_replaced_by_the_default_user_and_the_allocated_port_filled_in(MessageType type)
    {
        using DaemonUnderTest d = await DaemonUnderTest.RunningAsync(_world, "vm1");
        using LocalClient client = d.Client();
        client.Send(Message((uint)type, Body(0, 0, "DEFAULT:true\0")));
        (MessageHeader header, byte[] reply) = client.ReceiveMessage();
        Assert.Equal(type, header.Type);
        Assert.Equal(8u, header.Length);
        Assert.Equal(ExecParams((uint)d.DomainId, 513), reply);
        (MessageHeader forwardedHeader, byte[] forwarded) = d.Agent.Receive();
        Assert.Equal(type, forwardedHeader.Type);
        Assert.Equal(Body(0, 513, DaemonUnderTest.DefaultUser + ":true\0"), forwarded);
    }

    [Theory]
    [InlineData("DEFAULTS:true\0")]
    [InlineData("user:DEFAULT:true\0")]
    [InlineData("DEFAULT\0")]
    [InlineData("default:true\0")]
    public async Task Only_an_exact_DEFAULT_prefix_is_replaced(string commandLine)
    {
        using DaemonUnderTest d = await DaemonUnderTest.RunningAsync(_world, "vm1");
        using LocalClient client = d.Client();
        client.Send(Message(0x200, Body(0, 0, commandLine)));
        Assert.Equal(ExecParams((uint)d.DomainId, 513), client.ReceiveMessage().Body);
        Assert.Equal(Body(0, 513, commandLine), d.Agent.Receive(MessageType.ExecCmdline));
    }

    [Fact]
    public async Task A_VM_pair_call_takes_the_ports_by_the_pair_rule()
    {
        using DaemonUnderTest d = await DaemonUnderTest.RunningAsync(_world, "vm1");
        uint higher = (uint)d.DomainId + 10;
        uint lower = (uint)d.DomainId; // not higher: the same half as a lower one
        using LocalClient a = d.Client();
        a.Send(Message(0x200, Body(higher, 0, "user:a\0")));
        Assert.Equal(ExecParams((uint)d.DomainId, 514), a.ReceiveMessage().Body);
        using LocalClient b = d.Client();
        b.Send(Message(0x200, Body(lower, 0, "user:b\0")));
        Assert.Equal(ExecParams((uint)d.DomainId, 513), b.ReceiveMessage().Body);
        using LocalClient c = d.Client();
        c.Send(Message(0x200, Body(higher, 0, "user:c\0")));
        Assert.Equal(ExecParams((uint)d.DomainId, 516), c.ReceiveMessage().Body);
        Assert.Equal(Body(higher, 514, "user:a\0"), d.Agent.Receive(MessageType.ExecCmdline));
        Assert.Equal(Body(lower, 513, "user:b\0"), d.Agent.Receive(MessageType.ExecCmdline));
        Assert.Equal(Body(higher, 516, "user:c\0"), d.Agent.Receive(MessageType.ExecCmdline));
    }

    [Fact]
    public async Task A_running_client_that_sends_more_is_closed()
    {
        using DaemonUnderTest d = await DaemonUnderTest.RunningAsync(_world, "vm1");
        using LocalClient client = d.Client();
        client.Send(Messages.ExecCommand(MessageType.ExecCmdline, 0, 0, "user:first"));
        Assert.Equal(ExecParams((uint)d.DomainId, 513), client.ReceiveMessage().Body);
        Assert.Equal(Body(0, 513, "user:first\0"), d.Agent.Receive(MessageType.ExecCmdline));
        Assert.True(client.Idle(300), "a running client was closed without reason");
        client.Send([0x42]);
        AssertClosedAndNothingForwarded(d, client);
    }

    [Fact]
    public async Task CONNECTION_TERMINATED_closes_the_client_that_allocated_the_port_and_frees_it()
    {
        using DaemonUnderTest d = await DaemonUnderTest.RunningAsync(_world, "vm1");
        using LocalClient client = d.Client();
        client.Send(Messages.ExecCommand(MessageType.ExecCmdline, 0, 0, "DEFAULT:true"));
        Assert.Equal(ExecParams((uint)d.DomainId, 513), client.ReceiveMessage().Body);
        d.Agent.Receive(MessageType.ExecCmdline);

        // another domain's termination of the same port does nothing
        d.Agent.Send(MessageType.ConnectionTerminated, ExecParams(7, 513));
        Assert.True(client.Idle(500), "a termination for another domain closed the client");
        d.Agent.Send(MessageType.ConnectionTerminated, ExecParams(0, 513));
        Assert.True(client.Eof(), "the client was not closed when its call ended");

        using LocalClient next = d.Client();
        next.Send(Messages.ExecCommand(MessageType.ExecCmdline, 0, 0, "user:again"));
        Assert.Equal(ExecParams((uint)d.DomainId, 513), next.ReceiveMessage().Body);
    }

    [Fact]
    public async Task CONNECTION_TERMINATED_with_another_domain_leaves_the_port_allocated()
    {
        using DaemonUnderTest d = await DaemonUnderTest.RunningAsync(_world, "vm1");
        using LocalClient first = d.Client();
        first.Send(Messages.ExecCommand(MessageType.ExecCmdline, 0, 0, "user:one"));
        Assert.Equal(ExecParams((uint)d.DomainId, 513), first.ReceiveMessage().Body);
        d.Agent.Send(MessageType.ConnectionTerminated, ExecParams(9, 513));
        using LocalClient second = d.Client();
        second.Send(Messages.ExecCommand(MessageType.ExecCmdline, 0, 0, "user:two"));
        Assert.Equal(ExecParams((uint)d.DomainId, 514), second.ReceiveMessage().Body);
    }

    // ------------------------------------------------------------------ SERVICE_CONNECT (§12.2 item 3)

    [Fact]
    public async Task SERVICE_CONNECT_for_an_unknown_ident_is_closed()
    {
        using DaemonUnderTest d = await DaemonUnderTest.RunningAsync(_world, "vm1");
        using LocalClient client = d.Client();
        client.SendIgnoringClose(Messages.ServiceConnect(0, 0, IdentField("nobody-asked")));
        AssertClosedAndNothingForwarded(d, client);
    }

    [Fact]
    public async Task SERVICE_CONNECT_answers_a_pending_request_once_and_then_no_refusal_follows()
    {
        using DaemonUnderTest d = await DaemonUnderTest.RunningAsync(_world, "vm1", policyProgram: _world.SlowPolicy);
        d.Agent.Send(MessageType.TriggerService4, V4("", "dom0", IdentField("SOCKET11"), "qubes.Pending\0"));
        Assert.True(TestBroker.Eventually(() => _world.PolicyQuestions().Length == 1, ChannelPeer.TimeoutMs), "the policy was not asked");

        // an ident that is not NUL-terminated is no answer, nor one that names no pending request
        using (LocalClient bad = d.Client())
        {
            bad.SendIgnoringClose(Message(0x202, Concat(ExecParams(0, 0), "SOCKET11"u8.ToArray())));
            AssertClosedAndNothingForwarded(d, bad);
        }
        using (LocalClient other = d.Client())
        {
            other.SendIgnoringClose(Message(0x202, Concat(ExecParams(0, 0), "SOCKET12\0"u8.ToArray())));
            AssertClosedAndNothingForwarded(d, other);
        }

        using LocalClient answer = d.Client();
        answer.Send(Messages.ServiceConnect(0, 0, IdentField("SOCKET11")));
        (MessageHeader header, byte[] reply) = answer.ReceiveMessage();
        Assert.Equal(MessageType.ServiceConnect, header.Type);
        Assert.Equal((uint)d.DomainId, BinaryPrimitives.ReadUInt32LittleEndian(reply));
        uint port = BinaryPrimitives.ReadUInt32LittleEndian(reply.AsSpan(4));
        Assert.InRange(port, 513u, 768u);
        Assert.Equal(Concat(ExecParams(0, port), IdentField("SOCKET11")), d.Agent.Receive(MessageType.ServiceConnect));

        // a second answer to the same request
        using (LocalClient twice = d.Client())
        {
            twice.SendIgnoringClose(Messages.ServiceConnect(0, 0, IdentField("SOCKET11")));
            AssertClosedAndNothingForwarded(d, twice);
        }

        // the policy child now fails, but the request was answered: no SERVICE_REFUSED for it
        _world.ReleasePolicy();
        Assert.True(TestBroker.Eventually(() => d.LogText.Contains("qubes.Pending from vm1 to dom0 denied", StringComparison.Ordinal), ChannelPeer.TimeoutMs), d.LogText);
        d.Agent.Send(MessageType.TriggerService4, V4("", "dom0", IdentField("SOCKET12"), "qubes.Later\0"));
        Assert.Equal(IdentField("SOCKET12"), d.Agent.Receive(MessageType.ServiceRefused));

        // and once its child ended, the request is gone
        using LocalClient late = d.Client();
        late.SendIgnoringClose(Messages.ServiceConnect(0, 0, IdentField("SOCKET11")));
        AssertClosedAndNothingForwarded(d, late);
    }

    [Fact]
    public async Task SERVICE_CONNECT_with_an_ident_not_padded_to_32_bytes_is_forwarded_as_sent()
    {
        using DaemonUnderTest d = await DaemonUnderTest.RunningAsync(_world, "vm1", policyProgram: _world.SlowPolicy);
        d.Agent.Send(MessageType.TriggerService4, V4("", "work", IdentField("SOCKET11"), "qubes.Pending\0"));
        Assert.True(TestBroker.Eventually(() => _world.PolicyQuestions().Length == 1, ChannelPeer.TimeoutMs), "the policy was not asked");
        using LocalClient answer = d.Client();
        byte[] body = Concat(ExecParams(43, 513), "SOCKET11\0"u8.ToArray());
        answer.Send(Message(0x202, body));
        Assert.Equal(body, d.Agent.Receive(MessageType.ServiceConnect)); // upstream: as sent, not padded
    }

    [Fact]
    public async Task SERVICE_CONNECT_with_a_port_is_forwarded_as_given()
    {
        using DaemonUnderTest d = await DaemonUnderTest.RunningAsync(_world, "vm1", policyProgram: _world.SlowPolicy);
        d.Agent.Send(MessageType.TriggerService4, V4("", "work", IdentField("SOCKET20"), "qubes.Pending\0"));
        Assert.True(TestBroker.Eventually(() => _world.PolicyQuestions().Length == 1, ChannelPeer.TimeoutMs), "the policy was not asked");
        using LocalClient answer = d.Client();
        answer.Send(Messages.ServiceConnect(31, 700, IdentField("SOCKET20")));
        Assert.Equal(Concat(ExecParams(31, 700), IdentField("SOCKET20")), d.Agent.Receive(MessageType.ServiceConnect));
        Assert.True(answer.Idle(300), "the daemon replied to a SERVICE_CONNECT that brought its port");
    }
}
