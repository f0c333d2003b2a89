using System;
using System.Buffers.Binary;
using System.Collections.Concurrent;
using System.Globalization;
using System.IO;
using System.Runtime.InteropServices;
using System.Threading;
using System.Threading.Tasks;
using Qubes.Interop.Linux;
using Qubes.Platform.Loopback;
using Qubes.Platform.Tests;
using Qubes.Qrexec.Runtime;
using Qubes.Qrexec.Transport;
using Xunit;

namespace Qubes.Qrexec.Tests.Validation;

/// <summary>
/// A loopback hypervisor and a scratch directory holding the daemon sockets and two policy programs
/// that record their arguments and deny: one at once, one only once <see cref="ReleasePolicy"/> was
/// called (it blocks on a FIFO, using no CPU, so that many can wait). The policy socket does not
/// exist, so the daemon always falls back to the program.
/// </summary>
internal sealed partial class DaemonWorld : IDisposable
{
    private readonly SafeFd _gate;
    private readonly string _release;

    public DaemonWorld()
    {
        Broker = new TestBroker();
        Root = Directory.CreateTempSubdirectory("qval-").FullName;
        PolicyLog = Path.Combine(Root, "policy.log");
        _release = Path.Combine(Root, "release");
        string gate = Path.Combine(Root, "gate");
        if (mkfifo(gate, 0x180) != 0)
        {
            throw new IOException("mkfifo " + gate);
        }
        // held open for reading and writing: opening it never blocks, reading it blocks until a line is written
        _gate = SafeFd.FromResult(Libc.open(gate, Libc.O_RDWR | Libc.O_CLOEXEC, 0), "open gate");
        string record = $"printf '%s %s %s %s\\n' \"$1\" \"$2\" \"$3\" \"$4\" >> '{PolicyLog}'\n";
        DenyPolicy = Script("deny-policy", record + "echo result=deny\n");
        SlowPolicy = Script("slow-policy",
            record +
            $"[ -e '{_release}' ] || read x < '{gate}'\n" +
            "echo result=deny\n");
    }

    public TestBroker Broker { get; }

    /// <summary>Socket directory of the daemons, and home of the scripts.</summary>
    public string Root { get; }

    public string DenyPolicy { get; }

    /// <summary>Denies once <see cref="ReleasePolicy"/> was called.</summary>
    public string SlowPolicy { get; }

    /// <summary>One line per policy question: <c>-- source target service</c>.</summary>
    public string PolicyLog { get; }

    public string PolicySocket => Path.Combine(Root, "no-policy.sock");

    public string[] PolicyQuestions()
        => File.Exists(PolicyLog) ? File.ReadAllLines(PolicyLog) : [];

    public string SocketPath(int domainId) => Path.Combine(Root, "qrexec." + domainId.ToString(CultureInfo.InvariantCulture));

    /// <summary>Lets every waiting and future <see cref="SlowPolicy"/> answer.</summary>
    public void ReleasePolicy()
    {
        if (File.Exists(_release))
        {
            return;
        }
        File.WriteAllText(_release, string.Empty);
        // a line for each waiting reader, and for any that checked the file just before it was there
        byte[] lines = new byte[2048];
        Array.Fill(lines, (byte)'\n');
        Assert.Equal(Errno.None, Fd.WriteAll(_gate.Fd, lines));
    }

    private string Script(string name, string body)
    {
        if (!OperatingSystem.IsLinux())
        {
            throw new PlatformNotSupportedException();
        }
        string path = Path.Combine(Root, name);
        File.WriteAllText(path, "#!/bin/sh\n" + body);
        File.SetUnixFileMode(path, UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute);
        return path;
    }

    public void Dispose()
    {
        ReleasePolicy();
        _gate.Dispose();
        try
        {
            Directory.Delete(Root, recursive: true);
        }
        catch (IOException)
        {
        }
        Broker.Dispose();
    }

    [LibraryImport("libc", StringMarshalling = StringMarshalling.Utf8, SetLastError = true)]
    private static partial int mkfifo(string path, uint mode);
}

/// <summary>
/// A real <see cref="QrexecDaemon"/> on its own thread, for a qube whose agent is the test: a fake
/// agent listening on the control port of a fresh loopback domain. The daemon has its own dom0
/// connection, as a separate daemon process would.
/// </summary>
internal sealed class DaemonUnderTest : IDisposable
{
    public const string DefaultUser = "defuser";

    private readonly LoopbackPlatform _agentPlatform;
    private readonly VchanChannelFactory _agentFactory;
    private readonly Thread _thread;
    private readonly TaskCompletionSource<int> _started = new(TaskCreationOptions.RunContinuationsAsynchronously);
    private readonly TaskCompletionSource<int> _ran = new(TaskCreationOptions.RunContinuationsAsynchronously);

    public DaemonUnderTest(DaemonWorld world, string name, string? policyProgram = null)
    {
        // descriptors other tests left to the finalizer would push this daemon's clients towards 256
        GC.Collect();
        GC.WaitForPendingFinalizers();
        GC.Collect();
        World = world;
        Name = name;
        (DomainId, _agentPlatform) = world.Broker.NewDomain(name);
        _agentFactory = new VchanChannelFactory(_agentPlatform, ownsPlatform: true);
        Agent = new ChannelPeer(_agentFactory.Listen(0, QrexecProtocol.ControlPort, QrexecProtocol.ControlRingSize, QrexecProtocol.ControlRingSize));
        LoopbackPlatform dom0 = LoopbackPlatform.ConnectDom0(world.Broker.Directory);
        DaemonOptions options = new(DomainId, name, DefaultUser, Guid.NewGuid().ToString(), world.Root,
            policyProgram ?? world.DenyPolicy, world.PolicySocket, Path.Combine(world.Root, "no-qubesd.sock"));
        Daemon = new QrexecDaemon(new VchanChannelFactory(dom0, ownsPlatform: true), options)
        {
            Log = line => Log.Enqueue(line),
        };
        _thread = new Thread(Serve) { IsBackground = true, Name = "daemon " + name };
        _thread.Start();
    }

    public DaemonWorld World { get; }

    public string Name { get; }

    public int DomainId { get; }

    public QrexecDaemon Daemon { get; }

    /// <summary>The fake agent's end of the control channel.</summary>
    public ChannelPeer Agent { get; private set; }

    public ConcurrentQueue<string> Log { get; } = new();

    /// <summary>What <see cref="QrexecDaemon.Start"/> returned.</summary>
    public Task<int> Started => _started.Task;

    /// <summary>What <see cref="QrexecDaemon.Run"/> returned (not completed while it runs).</summary>
    public Task<int> Ran => _ran.Task;

    public string SocketPath => World.SocketPath(DomainId);

    /// <summary>A new fake daemon, connected and past the handshake with an agent of <paramref name="version"/>.</summary>
    public static async Task<DaemonUnderTest> RunningAsync(DaemonWorld world, string name, uint version = 4, string? policyProgram = null)
    {
        DaemonUnderTest d = new(world, name, policyProgram);
        try
        {
            d.SendHello(version);
            Assert.Equal(version, BinaryPrimitives.ReadUInt32LittleEndian(d.Agent.Receive(MessageType.Hello)));
            Assert.Equal(0, await d.Started.WaitAsync(TimeSpan.FromMilliseconds(ChannelPeer.TimeoutMs)));
            return d;
        }
        catch
        {
            d.Dispose();
            throw;
        }
    }

    /// <summary>The agent's first move (spec §5.1): HELLO with <paramref name="version"/>.</summary>
    public void SendHello(uint version)
    {
        Assert.True(Agent.WaitConnected(), "the daemon did not connect to the agent");
        Agent.Send(Messages.Hello(version));
    }

    /// <summary>Waits for <see cref="QrexecDaemon.Run"/> to end and returns its status.</summary>
    public Task<int> EndedAsync() => Ran.WaitAsync(TimeSpan.FromMilliseconds(ChannelPeer.TimeoutMs));

    /// <summary>A local client past the daemon-socket handshake (§5.2).</summary>
    public LocalClient Client()
    {
        LocalClient client = new(SocketPath);
        try
        {
            Assert.Equal(QrexecProtocol.ClientVersion, client.ReceiveHello());
            client.Send(Messages.Hello(QrexecProtocol.ClientVersion));
            return client;
        }
        catch
        {
            client.Dispose();
            throw;
        }
    }

    /// <summary>
    /// The daemon still serves its agent: a well-formed request goes to the policy, which denies, so
    /// SERVICE_REFUSED comes back with its ident after exactly one more policy question.
    /// </summary>
    public void AssertServed(string ident)
    {
        int asked = World.PolicyQuestions().Length;
        Agent.Send(MessageType.TriggerService4, TriggerBodies.V4("", "target-vm", TriggerBodies.IdentField(ident), "qubes.Served\0"));
        Assert.Equal(TriggerBodies.IdentField(ident), Agent.Receive(MessageType.ServiceRefused));
        string[] questions = World.PolicyQuestions();
        Assert.Equal(asked + 1, questions.Length);
        Assert.Equal($"-- {Name} target-vm qubes.Served", questions[^1]);
        Assert.False(Ran.IsCompleted, LogText);
    }

    /// <summary>The log so far, for assertion messages.</summary>
    public string LogText => string.Join(Environment.NewLine, Log);

    private void Serve()
    {
        try
        {
            int status = Daemon.Start(TimeSpan.FromMilliseconds(ChannelPeer.TimeoutMs));
            _started.TrySetResult(status);
            if (status == 0)
            {
                _ran.TrySetResult(Daemon.Run());
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
        if (_thread.IsAlive && Started.IsCompletedSuccessfully)
        {
            // a fatal message ends Run, unless the daemon is in the middle of reading a body
            Agent.TrySend(new byte[] { 0xAD, 0xDE, 0, 0, 0, 0, 0, 0 });
            if (!_thread.Join(10_000))
            {
                // then the agent goes away; the daemon waits for it to come back, and the new one is too old
                Agent.Dispose();
                Agent = new ChannelPeer(_agentFactory.Listen(0, QrexecProtocol.ControlPort, QrexecProtocol.ControlRingSize, QrexecProtocol.ControlRingSize));
                if (Agent.WaitConnected())
                {
                    Agent.TrySend(Messages.Hello(1));
                }
            }
        }
        else if (_thread.IsAlive)
        {
            Agent.Dispose();
        }
        if (!_thread.Join(ChannelPeer.TimeoutMs))
        {
            throw new InvalidOperationException($"the daemon for {Name} did not stop; its log:{Environment.NewLine}{LogText}");
        }
        Daemon.Dispose();
        Agent.Dispose();
        _agentFactory.Dispose();
    }
}
