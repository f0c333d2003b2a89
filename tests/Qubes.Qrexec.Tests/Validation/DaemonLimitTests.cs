using System;
using System.Collections.Generic;
using System.Globalization;
using System.Threading.Tasks;
using Qubes.Interop.Linux;
using Xunit;
using static Qubes.Qrexec.Tests.Validation.TriggerBodies;

namespace Qubes.Qrexec.Tests.Validation;

/// <summary>
/// The tests that run real daemons in this process run alone, one after the other: a daemon shares
/// the descriptor table with the test host, and some of these tests take hundreds of descriptors or
/// count on which numbers are taken (each daemon also first lets the finalizer close what earlier
/// tests leaked).
/// </summary>
[CollectionDefinition(Name, DisableParallelization = true)]
public sealed class InProcessDaemonCollection
{
    public const string Name = "qrexec daemons in process";
}

/// <summary>The daemon's resource guards (spec §12.1 item 5; §12.2 item 5 as we differ from it).</summary>
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
    public async Task A_client_accepted_at_descriptor_256_or_more_is_served()
    {
        // upstream's daemon exits there (spec §12.2 item 5): its table of clients ends at 256; ours
        // has no such table, and calls waiting for a data port keep their clients open
        using DaemonUnderTest d = await DaemonUnderTest.RunningAsync(_world, "vm1");
        List<SafeFd> hogs = [];
        try
        {
            // take every descriptor number below 256, so that the daemon's next accept gets a higher one
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
            using LocalClient client = d.Client();
            client.Send(Messages.ExecCommand(MessageType.ExecCmdline, 0, 0, "user:true"));
            Assert.Equal(MessageType.ExecCmdline, client.ReceiveMessage().Header.Type);
            Assert.Equal(MessageType.ExecCmdline, d.Agent.Receive().Header.Type);
            Assert.False(d.Ran.IsCompleted, d.LogText);
        }
        finally
        {
            foreach (SafeFd hog in hogs)
            {
                hog.Dispose();
            }
        }
    }
}
