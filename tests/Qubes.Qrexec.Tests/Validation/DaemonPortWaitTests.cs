using System;
using System.Buffers.Binary;
using System.Collections.Generic;
using System.Globalization;
using System.Threading.Tasks;
using Qubes.Qrexec.Runtime;
using Xunit;

namespace Qubes.Qrexec.Tests.Validation;

/// <summary>
/// A call that finds every data port it could take in use waits for one (in order of arrival, as
/// long as its client waits) instead of failing; a port is free again as soon as its call ends.
/// </summary>
[Collection(InProcessDaemonCollection.Name)]
public sealed class DaemonPortWaitTests : IDisposable
{
    /// <summary>Ports a VM pair may take: every other one of the 256 (spec §7).</summary>
    private const int PairPorts = QrexecProtocol.MaxFds / 2;

    private readonly DaemonWorld _world = new();
    private readonly List<LocalClient> _clients = [];

    public void Dispose()
    {
        foreach (LocalClient client in _clients)
        {
            client.Dispose();
        }
        _world.Dispose();
    }

    private static byte[] ExecParams(uint domain, uint port)
    {
        byte[] body = new byte[8];
        BinaryPrimitives.WriteUInt32LittleEndian(body, domain);
        BinaryPrimitives.WriteUInt32LittleEndian(body.AsSpan(4), port);
        return body;
    }

    /// <summary>A client that sent EXEC_CMDLINE for a call with <paramref name="peer"/> (port 0: the daemon allocates).</summary>
    private LocalClient Call(DaemonUnderTest d, uint peer, string command)
    {
        LocalClient client = d.Client();
        _clients.Add(client);
        client.Send(Messages.ExecCommand(MessageType.ExecCmdline, peer, 0, "user:" + command));
        return client;
    }

    /// <summary>The port the daemon answered <paramref name="client"/> with, after checking the reply and that the agent got the command with it.</summary>
    private static uint Allocated(DaemonUnderTest d, LocalClient client, uint peer, string command)
    {
        (MessageHeader header, byte[] reply) = client.ReceiveMessage();
        Assert.Equal(MessageType.ExecCmdline, header.Type);
        Assert.Equal((uint)d.DomainId, BinaryPrimitives.ReadUInt32LittleEndian(reply));
        uint port = BinaryPrimitives.ReadUInt32LittleEndian(reply.AsSpan(4));
        byte[] forwarded = d.Agent.Receive(MessageType.ExecCmdline);
        Assert.Equal(ExecParams(peer, port), forwarded.AsSpan(0, 8).ToArray());
        Assert.Equal("user:" + command, Messages.CString(forwarded.AsSpan(8)));
        return port;
    }

    /// <summary>Takes every port of the pair (<paramref name="peer"/>, daemon): calls that never end. Returns their clients by port.</summary>
    private Dictionary<uint, LocalClient> HoldEveryPort(DaemonUnderTest d, uint peer, string name)
    {
        Dictionary<uint, LocalClient> holders = [];
        for (int i = 0; i < PairPorts; i++)
        {
            string command = name + i.ToString(CultureInfo.InvariantCulture);
            LocalClient client = Call(d, peer, command);
            holders.Add(Allocated(d, client, peer, command), client);
        }
        return holders;
    }

    [Fact]
    public async Task A_call_that_finds_every_port_taken_waits_and_gets_the_first_one_freed()
    {
        using DaemonUnderTest d = await DaemonUnderTest.RunningAsync(_world, "vm1");
        uint peer = (uint)d.DomainId + 5;
        Dictionary<uint, LocalClient> holders = HoldEveryPort(d, peer, "hold");

        LocalClient waiting = Call(d, peer, "waits");
        Assert.True(waiting.Idle(500), "a call that found no free port was answered or closed instead of waiting");
        Assert.Contains(d.Log, line => line.Contains($"no free data port for domain {peer}; calls wait", StringComparison.Ordinal));

        // the moment a call ends, its port goes to the waiting one
        uint freed = 600;
        d.Agent.Send(MessageType.ConnectionTerminated, ExecParams(peer, freed));
        Assert.True(holders[freed].Eof(), "the client of the call that ended was not closed");
        Assert.Equal(freed, Allocated(d, waiting, peer, "waits"));
        Assert.False(d.Ran.IsCompleted, d.LogText);
    }

    [Fact]
    public async Task Waiting_calls_are_served_in_order_of_arrival_and_one_that_gives_up_takes_no_port()
    {
        using DaemonUnderTest d = await DaemonUnderTest.RunningAsync(_world, "vm1");
        uint peer = (uint)d.DomainId + 1;
        HoldEveryPort(d, peer, "hold");
        LocalClient first = Call(d, peer, "first");
        LocalClient leaves = Call(d, peer, "leaves");
        LocalClient third = Call(d, peer, "third");
        Assert.True(third.Idle(300));
        leaves.Dispose();

        d.Agent.Send(MessageType.ConnectionTerminated, ExecParams(peer, 514));
        Assert.Equal(514u, Allocated(d, first, peer, "first"));
        d.Agent.Send(MessageType.ConnectionTerminated, ExecParams(peer, 516));
        Assert.Equal(516u, Allocated(d, third, peer, "third"));
        Assert.Contains(d.Log, line => line.Contains($"a call for domain {peer} stopped waiting", StringComparison.Ordinal));

        // nothing waits any more: the next port freed is taken at once by a new call, none was lost
        d.Agent.Send(MessageType.ConnectionTerminated, ExecParams(peer, 518));
        Assert.Equal(518u, Allocated(d, Call(d, peer, "later"), peer, "later"));
    }

    [Fact]
    public async Task A_client_that_waits_no_longer_than_its_timeout_is_told_why_it_failed()
    {
        using DaemonUnderTest d = await DaemonUnderTest.RunningAsync(_world, "vm1");
        uint peer = (uint)d.DomainId + 2;
        HoldEveryPort(d, peer, "hold");

        DaemonConnection? connection = DaemonConnection.Open(_world.Root, d.DomainId.ToString(CultureInfo.InvariantCulture), out string? error);
        Assert.NotNull(connection);
        using (connection)
        {
            long t0 = Environment.TickCount64;
            (uint, uint)? reply = connection.Command(Messages.ExecCommand(MessageType.ExecCmdline, peer, 0, "user:late"), TimeSpan.FromMilliseconds(300), out error);
            Assert.Null(reply);
            Assert.InRange(Environment.TickCount64 - t0, 250, 10_000);
            Assert.Contains("no data port became free", error, StringComparison.Ordinal);
            Assert.Contains("within 0.3 s", error, StringComparison.Ordinal);
        }
        // the daemon forgot the call that gave up: the port freed next goes to a new one
        LocalClient next = Call(d, peer, "next");
        Assert.True(next.Idle(200));
        d.Agent.Send(MessageType.ConnectionTerminated, ExecParams(peer, 700));
        Assert.Equal(700u, Allocated(d, next, peer, "next"));
    }

    [Fact]
    public async Task A_hostile_caller_holding_every_port_of_its_pair_makes_other_callers_wait_not_fail()
    {
        using DaemonUnderTest d = await DaemonUnderTest.RunningAsync(_world, "vm1");
        uint hostile = (uint)d.DomainId + 3;
        uint victim = (uint)d.DomainId + 4; // a peer of the same parity: the same 128 ports
        Dictionary<uint, LocalClient> held = HoldEveryPort(d, hostile, "hog");
        // the hostile caller goes on asking, and keeps the daemon's queue busy
        for (int i = 0; i < 50; i++)
        {
            Call(d, hostile, "more" + i.ToString(CultureInfo.InvariantCulture));
        }

        LocalClient victimCall = Call(d, victim, "victim");
        Assert.True(victimCall.Idle(1000), "another caller's call failed at once");
        // ports the hostile caller cannot take still serve at once: dom0 and the lower peers
        Assert.Equal(513u, Allocated(d, Call(d, 0, "dom0"), 0, "dom0"));
        Assert.Equal(515u, Allocated(d, Call(d, 1, "lower"), 1, "lower"));
        d.AssertServed("still-served");

        // the first port the hostile caller gives back goes to whoever asked first: its own next
        // call; its later calls queue behind the victim's
        d.Agent.Send(MessageType.ConnectionTerminated, ExecParams(hostile, 514));
        Assert.True(held[514].Eof());
        Assert.Equal(514u, Allocated(d, _clients[PairPorts], hostile, "more0"));
        for (int i = 1; i < 50; i++)
        {
            uint port = (uint)(514 + 2 * i);
            d.Agent.Send(MessageType.ConnectionTerminated, ExecParams(hostile, port));
            Assert.Equal(port, Allocated(d, _clients[PairPorts + i], hostile, "more" + i.ToString(CultureInfo.InvariantCulture)));
        }
        d.Agent.Send(MessageType.ConnectionTerminated, ExecParams(hostile, 614));
        Assert.Equal(614u, Allocated(d, victimCall, victim, "victim"));
    }

    [Fact]
    public async Task Hundreds_of_waiting_callers_neither_end_the_daemon_nor_stop_it_serving()
    {
        using DaemonUnderTest d = await DaemonUnderTest.RunningAsync(_world, "vm1");
        uint peer = (uint)d.DomainId + 6;
        HoldEveryPort(d, peer, "hold");
        // far past descriptor 256 in this process, where upstream's daemon would exit
        List<LocalClient> waiting = [];
        for (int i = 0; i < 300; i++)
        {
            waiting.Add(Call(d, peer, "w" + i.ToString(CultureInfo.InvariantCulture)));
        }
        Assert.True(waiting[^1].Idle(300));
        Assert.Equal(513u, Allocated(d, Call(d, 0, "dom0"), 0, "dom0"));
        d.AssertServed("after-300");
        d.Agent.Send(MessageType.ConnectionTerminated, ExecParams(peer, 768));
        Assert.Equal(768u, Allocated(d, waiting[0], peer, "w0"));
    }
}
