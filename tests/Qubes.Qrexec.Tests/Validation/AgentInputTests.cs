using System;
using System.Buffers.Binary;
using System.Globalization;
using System.Text;
using System.Threading;
using System.Threading.Tasks;
using Xunit;
using static Qubes.Qrexec.Tests.Validation.TriggerBodies;

namespace Qubes.Qrexec.Tests.Validation;

/// <summary>
/// The real agent against a fake daemon and raw trigger-socket clients (spec §5.1, §8.2 steps 2, 7, 9,
/// §12.3, §12.4).
/// </summary>
public sealed class AgentInputTests
{
    private const uint TriggerWithFds = 0x8213;

    private int _marker;

    private static byte[] ExecParams(uint domain, uint port)
    {
        byte[] body = new byte[8];
        BinaryPrimitives.WriteUInt32LittleEndian(body, domain);
        BinaryPrimitives.WriteUInt32LittleEndian(body.AsSpan(4), port);
        return body;
    }

    private static byte[] Trigger(string target, string service)
        => Messages.Build(MessageType.TriggerService4, V4("", target, IdentField("SOCKET"), service + "\0"));

    /// <summary>The ident the agent gave a forwarded trigger: <c>SOCKET&lt;n&gt;</c>, NUL-padded.</summary>
    private static string AssignedIdent(byte[] forwardedBody, int identOffset)
    {
        byte[] ident = forwardedBody.AsSpan(identOffset, Ident).ToArray();
        Assert.True(Messages.IsValidIdent(ident), "the agent's ident is not a valid ident");
        string text = Messages.CString(ident);
        Assert.StartsWith("SOCKET", text, StringComparison.Ordinal);
        Assert.True(int.TryParse(text.AsSpan(6), NumberStyles.None, CultureInfo.InvariantCulture, out int n) && n >= 0, $"ident '{text}'");
        return text;
    }

    /// <summary>
    /// The client was closed and nothing reached dom0 for it: the next message dom0 sees is a
    /// well-formed trigger sent afterwards by another client.
    /// </summary>
    private void AssertClosedAndNothingForwarded(AgentUnderTest a, LocalClient client)
    {
        Assert.True(client.ClosedByPeer(), "the agent did not close the client");
        string target = "marker-" + Interlocked.Increment(ref _marker).ToString(CultureInfo.InvariantCulture);
        using LocalClient good = a.Client();
        good.Send(Trigger(target, "qubes.Marker"));
        byte[] body = a.Dom0!.Receive(MessageType.TriggerService4);
        Assert.Equal(Field(target, Domain), body.AsSpan(Domain, Domain).ToArray());
        Assert.False(a.Ran.IsCompleted, a.LogText);
    }

    // ------------------------------------------------------------------ handshake (§5.1)

    [Theory]
    [InlineData(0x300u, 1u)]
    [InlineData(0x300u, 0u)]
    [InlineData(0x211u, 4u)]
    public async Task A_daemon_answer_that_is_not_an_acceptable_HELLO_fails_the_start(uint type, uint version)
    {
        using AgentUnderTest a = new();
        Assert.Equal(QrexecProtocol.AgentVersion, BinaryPrimitives.ReadUInt32LittleEndian(a.Dom0!.Receive(MessageType.Hello)));
        byte[] body = new byte[4];
        BinaryPrimitives.WriteUInt32LittleEndian(body, version);
        a.Dom0.Send((MessageType)type, body);
        Assert.False(await a.Started.WaitAsync(TimeSpan.FromMilliseconds(ChannelPeer.TimeoutMs)));
        Assert.False(System.IO.File.Exists(a.SocketPath));
    }

    // ------------------------------------------------------------------ messages from dom0 (§12.3)

    [Theory]
    [InlineData(0x213u, 200u)]   // TRIGGER_SERVICE4 goes the other way
    [InlineData(0x211u, 8u)]     // CONNECTION_TERMINATED likewise
    [InlineData(0x300u, 4u)]     // HELLO again
    [InlineData(0x190u, 0u)]     // data on the control channel
    [InlineData(0x999u, 0u)]
    [InlineData(0x203u, 31u)]    // SERVICE_REFUSED is exactly 32 bytes
    [InlineData(0x203u, 33u)]
    [InlineData(0x203u, 0u)]
    [InlineData(0x200u, 8u)]     // exec bodies need more than exec_params
    [InlineData(0x201u, 0u)]
    [InlineData(0x202u, 8u)]
    [InlineData(0x200u, 0x80000000u)] // more than INT_MAX
    public async Task An_invalid_message_from_dom0_ends_the_agent_with_status_1(uint type, uint length)
    {
        using AgentUnderTest a = await AgentUnderTest.RunningAsync();
        a.Dom0!.SendHeader(type, length); // the header alone: the agent must not wait for a body
        Assert.Equal(1, await a.EndedAsync());
    }

    [Theory]
    [InlineData("SOCKET99999")]
    [InlineData("SOCKET")]
    [InlineData("socket5")]
    [InlineData("")]
    public async Task An_answer_for_an_unknown_request_is_ignored(string ident)
    {
        using AgentUnderTest a = await AgentUnderTest.RunningAsync();
        a.Dom0!.Send(MessageType.ServiceRefused, IdentField(ident));
        a.Dom0.Send(MessageType.ServiceConnect, Concat(ExecParams(0, 600), IdentField(ident)));
        using LocalClient client = a.Client();
        client.Send(Trigger("work", "qubes.After"));
        Assert.Equal(Field("work", Domain), a.Dom0.Receive(MessageType.TriggerService4).AsSpan(Domain, Domain).ToArray());
        Assert.False(a.Ran.IsCompleted, a.LogText);
    }

    // ------------------------------------------------------------------ the trigger socket (§12.4)

    [Theory]
    [InlineData(0x212u)]   // TRIGGER_SERVICE3
    [InlineData(0x210u)]   // TRIGGER_SERVICE
    [InlineData(0x200u)]   // EXEC_CMDLINE
    [InlineData(0x203u)]
    [InlineData(0x999u)]
    [InlineData(TriggerWithFds)] // our descriptor-passing variant, but without descriptors
    public async Task A_trigger_of_another_type_is_closed_and_not_forwarded(uint type)
    {
        using AgentUnderTest a = await AgentUnderTest.RunningAsync();
        using LocalClient client = a.Client();
        client.SendIgnoringClose(Messages.Build((MessageType)type, V4("", "work", IdentField("SOCKET"), "qubes.Svc\0")));
        AssertClosedAndNothingForwarded(a, client);
    }

    [Theory]
    [InlineData(160u)]
    [InlineData(100u)]
    [InlineData(0u)]
    [InlineData(160u + 65001u)]
    [InlineData(uint.MaxValue)]
    public async Task A_trigger_length_outside_161_to_65160_is_closed_and_not_forwarded(uint length)
    {
        using AgentUnderTest a = await AgentUnderTest.RunningAsync();
        using LocalClient client = a.Client();
        client.SendHeader(0x213, length);
        client.SendIgnoringClose(new byte[Math.Min(length, 200u)]);
        AssertClosedAndNothingForwarded(a, client);
    }

    [Fact]
    public async Task A_trigger_that_ends_inside_its_header_is_closed_and_not_forwarded()
    {
        using AgentUnderTest a = await AgentUnderTest.RunningAsync();
        using LocalClient client = a.Client();
        client.Send(Trigger("work", "qubes.Short").AsSpan(0, 5));
        client.Shutdown();
        AssertClosedAndNothingForwarded(a, client);
    }

    [Fact]
    public async Task A_valid_trigger_reaches_dom0_unchanged_but_for_its_ident()
    {
        using AgentUnderTest a = await AgentUnderTest.RunningAsync();
        using LocalClient client = a.Client();
        // the agent does not validate the fields itself: odd bytes pass through to the daemon
        byte[] body = V4("relay", "@dispvm:work/..", IdentField("anything at all"), "svc+a/b\0");
        client.Send(Messages.Build(MessageType.TriggerService4, body));
        (MessageHeader header, byte[] forwarded) = a.Dom0!.Receive();
        Assert.Equal(MessageType.TriggerService4, header.Type);
        Assert.Equal((uint)body.Length, header.Length);
        string ident = AssignedIdent(forwarded, 2 * Domain);
        Assert.Equal(IdentField(ident), forwarded.AsSpan(2 * Domain, Ident).ToArray());
        Assert.Equal(body.AsSpan(0, 2 * Domain).ToArray(), forwarded.AsSpan(0, 2 * Domain).ToArray());
        Assert.Equal(body.AsSpan(V4Fixed).ToArray(), forwarded.AsSpan(V4Fixed).ToArray());
        Assert.True(client.Idle(300), "the agent closed a client waiting for its answer");
    }

    [Fact]
    public async Task A_trigger_with_the_longest_name_is_forwarded()
    {
        using AgentUnderTest a = await AgentUnderTest.RunningAsync();
        using LocalClient client = a.Client();
        string name = "q." + new string('n', 64997);
        byte[] message = Trigger("work", name);
        Assert.Equal(8 + 160 + 65000, message.Length);
        client.Send(message);
        byte[] forwarded = a.Dom0!.Receive(MessageType.TriggerService4);
        Assert.Equal(message.AsSpan(8 + V4Fixed).ToArray(), forwarded.AsSpan(V4Fixed).ToArray());
    }

    [Fact]
    public async Task SERVICE_REFUSED_for_the_assigned_ident_closes_that_client_only()
    {
        using AgentUnderTest a = await AgentUnderTest.RunningAsync();
        using LocalClient refused = a.Client();
        refused.Send(Trigger("work", "qubes.Refused"));
        string refusedIdent = AssignedIdent(a.Dom0!.Receive(MessageType.TriggerService4), 2 * Domain);
        using LocalClient other = a.Client();
        other.Send(Trigger("work", "qubes.Other"));
        string otherIdent = AssignedIdent(a.Dom0.Receive(MessageType.TriggerService4), 2 * Domain);
        Assert.NotEqual(refusedIdent, otherIdent);

        a.Dom0.Send(MessageType.ServiceRefused, IdentField(refusedIdent));
        Assert.True(refused.Eof(), "the refused client was not closed");
        Assert.True(other.Idle(300), "another client was closed too");
        // a closed request reports no end of a call: the next message dom0 sees is a new trigger
        using LocalClient next = a.Client();
        next.Send(Trigger("next", "qubes.Next"));
        Assert.Equal(Field("next", Domain), a.Dom0.Receive(MessageType.TriggerService4).AsSpan(Domain, Domain).ToArray());
    }

    [Fact]
    public async Task SERVICE_CONNECT_gives_the_client_its_data_channel_and_its_hang_up_ends_the_call()
    {
        using AgentUnderTest a = await AgentUnderTest.RunningAsync();
        LocalClient client = a.Client();
        try
        {
            client.Send(Trigger("work", "qubes.Connected"));
            string ident = AssignedIdent(a.Dom0!.Receive(MessageType.TriggerService4), 2 * Domain);
            a.Dom0.Send(MessageType.ServiceConnect, Concat(ExecParams(17, 640), IdentField(ident)));
            Assert.Equal(ExecParams(17, 640), client.ReceiveExact(8));

            // answered: a late refusal for it is ignored
            a.Dom0.Send(MessageType.ServiceRefused, IdentField(ident));
            Assert.True(client.Idle(300), "a refusal after the answer closed the client");
        }
        finally
        {
            client.Dispose();
        }
        Assert.Equal(ExecParams(17, 640), a.Dom0.Receive(MessageType.ConnectionTerminated));
    }

    [Fact]
    public async Task With_a_version_3_daemon_the_trigger_is_forwarded_as_TRIGGER_SERVICE3()
    {
        using AgentUnderTest a = await AgentUnderTest.RunningAsync(version: 3);
        using LocalClient client = a.Client();
        byte[] body = V4("dropped-source", "work", IdentField("SOCKET"), "qubes.Old\0");
        client.Send(Messages.Build(MessageType.TriggerService4, body));
        (MessageHeader header, byte[] forwarded) = a.Dom0!.Receive();
        Assert.Equal(MessageType.TriggerService3, header.Type);
        Assert.Equal((uint)(body.Length - Domain), header.Length);
        Assert.Equal(Field("work", Domain), forwarded.AsSpan(0, Domain).ToArray());
        AssignedIdent(forwarded, Domain);
        Assert.Equal(Encoding.ASCII.GetBytes("qubes.Old\0"), forwarded.AsSpan(V3Fixed).ToArray());
    }
}
