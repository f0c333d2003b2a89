using System;
using System.Collections.Generic;
using System.Globalization;
using System.Threading.Tasks;
using Qubes.Interop.Linux;
using Xunit;
using static Qubes.Qrexec.Tests.Validation.TriggerBodies;

namespace Qubes.Qrexec.Tests.Validation;

/// <summary>
/// The tests that run real daemons in this process run alone, one after the other. A daemon ends
/// when it accepts a client at descriptor 256 or more (spec §12.2 item 5), and here it shares the
/// descriptor table with the test host, whose runtime already keeps two descriptors open for every
/// loaded assembly (about 180 in all, before any test opens one): next to other tests, a daemon
/// would end at its next client. (Each daemon also first lets the finalizer close what earlier tests
/// leaked.)
/// </summary>
[CollectionDefinition(Name, DisableParallelization = true)]
public sealed class InProcessDaemonCollection
{
    public const string Name = "qrexec daemons in process";
}

/// <summary>The daemon's resource guards (spec §12.1 item 5, §12.2 item 5).</summary>
[Collection(InProcessDaemonCollection.Name)]
public sealed class DaemonLimitTests : IDisposable
{
    private readonly DaemonWorld _world = new();

    public void Dispose() => _world.Dispose();

    [Fact]
    public async Task With_256_requests_pending_the_next_is_refused_without_asking()
    {
        using DaemonUnderTest d = await DaemonUnderTest.RunningAsync(_world, "vm1", policyProgram: _world.SlowPolicy);
        for (int i = 0; i < QrexecProtocol.MaxFds; i++)
        {
            d.Agent.Send(MessageType.TriggerService4, V4("", "work", IdentField("p" + i.ToString(CultureInfo.InvariantCulture)), "qubes.Pending\0"));
        }
        d.Agent.Send(MessageType.TriggerService4, V4("", "work", IdentField("one-too-many"), "qubes.Pending\0"));
        Assert.Equal(IdentField("one-too-many"), d.Agent.Receive(MessageType.ServiceRefused));
        _world.ReleasePolicy();
        bool[] refused = new bool[QrexecProtocol.MaxFds];
        for (int i = 0; i < QrexecProtocol.MaxFds; i++)
        {
            string ident = Messages.CString(d.Agent.Receive(MessageType.ServiceRefused));
            Assert.StartsWith("p", ident, StringComparison.Ordinal);
            int n = int.Parse(ident.AsSpan(1), provider: CultureInfo.InvariantCulture);
            Assert.False(refused[n], $"{ident} refused twice");
            refused[n] = true;
        }
        Assert.Equal(QrexecProtocol.MaxFds, _world.PolicyQuestions().Length);
        // the slots are free again
        d.AssertServed("after-full");
    }

    [Fact]
    public async Task A_client_accepted_at_descriptor_256_or_more_ends_the_daemon()
    {
        using DaemonUnderTest d = await DaemonUnderTest.RunningAsync(_world, "vm1");
        using (LocalClient before = d.Client())
        {
            before.Send(Messages.ExecCommand(MessageType.ExecCmdline, 0, 0, "user:true"));
            Assert.Equal(MessageType.ExecCmdline, before.ReceiveMessage().Header.Type);
        }
        List<SafeFd> hogs = [];
        List<LocalClient> clients = [];
        try
        {
            // Take every descriptor number below 256, so that the daemon's next accept gets a
            // higher one. A finalizer elsewhere in this process may free a lower number in between
            // (the accept then lands there and the daemon rightly goes on): fill the holes and try
            // again with another client.
            Task<int> ended = d.EndedAsync();
            for (int attempt = 0; attempt < 10 && !ended.IsCompleted; attempt++)
            {
                while (true)
                {
                    int fd = Libc.open("/dev/null", Libc.O_RDONLY | Libc.O_CLOEXEC, 0);
                    Assert.True(fd >= 0, "open /dev/null");
                    hogs.Add(new SafeFd(fd));
                    if (fd >= QrexecProtocol.MaxFds - 1)
                    {
                        break;
                    }
                }
                clients.Add(new LocalClient(d.SocketPath));
                await Task.WhenAny(ended, Task.Delay(2000));
            }
            Assert.Equal(1, await ended);
            Assert.Contains(d.Log, line => line.Contains("too many open descriptors", StringComparison.Ordinal));
        }
        finally
        {
            foreach (LocalClient client in clients)
            {
                client.Dispose();
            }
            foreach (SafeFd hog in hogs)
            {
                hog.Dispose();
            }
        }
    }
}
