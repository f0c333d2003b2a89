using System;
using System.Buffers.Binary;
using System.Collections.Concurrent;
using System.IO;
using System.Threading;
using System.Threading.Tasks;
using Qubes.Platform.Loopback;
using Qubes.Platform.Tests;
using Qubes.Qrexec.Runtime;
using Qubes.Qrexec.Transport;
using Xunit;

namespace Qubes.Qrexec.Tests.Validation;

/// <summary>
/// A real <see cref="QrexecAgent"/> on its own thread in a fresh loopback domain, with the test as
/// dom0: a fake daemon that connects to the agent's control port, and raw trigger-socket clients.
/// </summary>
internal sealed class AgentUnderTest : IDisposable
{
    private readonly TestBroker _broker;
    private readonly string _directory;
    private readonly Thread _thread;
    private readonly TaskCompletionSource<bool> _started = new(TaskCreationOptions.RunContinuationsAsynchronously);
    private readonly TaskCompletionSource<int> _ran = new(TaskCreationOptions.RunContinuationsAsynchronously);

    public AgentUnderTest()
    {
        _broker = new TestBroker();
        _directory = Directory.CreateTempSubdirectory("qagt-").FullName;
        SocketPath = Path.Combine(_directory, "agent.sock");
        (DomainId, LoopbackPlatform platform) = _broker.NewDomain("agent-vm");
        Agent = new QrexecAgent(new VchanChannelFactory(platform, ownsPlatform: true), new AgentOptions(SocketPath))
        {
            Log = line => Log.Enqueue(line),
        };
        _thread = new Thread(Serve) { IsBackground = true, Name = "agent" };
        _thread.Start();
        VchanChannelFactory dom0 = new(_broker.Dom0, ownsPlatform: false);
        Dom0Factory = dom0;
        IQrexecChannel? channel = dom0.Connect(DomainId, QrexecProtocol.ControlPort, TimeSpan.FromMilliseconds(ChannelPeer.TimeoutMs), out string? error);
        if (channel == null)
        {
            Dispose();
            throw new InvalidOperationException("cannot connect to the agent: " + error);
        }
        Dom0 = new ChannelPeer(channel);
    }

    public int DomainId { get; }

    public QrexecAgent Agent { get; }

    /// <summary>The fake daemon's end of the control channel (null until connected).</summary>
    public ChannelPeer? Dom0 { get; }

    /// <summary>Channels as dom0: to play the service end of a call the agent is the caller of.</summary>
    public VchanChannelFactory Dom0Factory { get; }

    /// <summary>The trigger socket.</summary>
    public string SocketPath { get; }

    public ConcurrentQueue<string> Log { get; } = new();

    public string LogText => string.Join(Environment.NewLine, Log);

    /// <summary>What <see cref="QrexecAgent.Start"/> returned.</summary>
    public Task<bool> Started => _started.Task;

    /// <summary>What <see cref="QrexecAgent.Run"/> returned.</summary>
    public Task<int> Ran => _ran.Task;

    /// <summary>An agent past the handshake with a daemon answering <paramref name="version"/>.</summary>
    public static async Task<AgentUnderTest> RunningAsync(uint version = 4)
    {
        AgentUnderTest a = new();
        try
        {
            a.Handshake(version);
            Assert.True(await a.Started.WaitAsync(TimeSpan.FromMilliseconds(ChannelPeer.TimeoutMs)), a.LogText);
            return a;
        }
        catch
        {
            a.Dispose();
            throw;
        }
    }

    /// <summary>The daemon's side of §5.1: the agent's HELLO{4} comes first, the answer is <paramref name="version"/>.</summary>
    public void Handshake(uint version)
    {
        Assert.Equal(QrexecProtocol.AgentVersion, BinaryPrimitives.ReadUInt32LittleEndian(Dom0!.Receive(MessageType.Hello)));
        Dom0.Send(Messages.Hello(version));
    }

    public Task<int> EndedAsync() => Ran.WaitAsync(TimeSpan.FromMilliseconds(ChannelPeer.TimeoutMs));

    public LocalClient Client() => new(SocketPath);

    private void Serve()
    {
        try
        {
            bool started = Agent.Start();
            _started.TrySetResult(started);
            if (started)
            {
                _ran.TrySetResult(Agent.Run());
            }
        }
        catch (Exception e)
        {
            _started.TrySetException(e);
            _ran.TrySetException(e);
        }
    }

    public void Dispose()
    {
        // dom0 going away ends the agent (Start fails, Run returns 0)
        Dom0?.Dispose();
        bool stopped = _thread.Join(ChannelPeer.TimeoutMs);
        if (stopped)
        {
            Agent.Dispose();
        }
        try
        {
            Directory.Delete(_directory, recursive: true);
        }
        catch (IOException)
        {
        }
        _broker.Dispose();
        if (!stopped)
        {
            throw new InvalidOperationException("the agent did not stop; its log:" + Environment.NewLine + LogText);
        }
    }
}
