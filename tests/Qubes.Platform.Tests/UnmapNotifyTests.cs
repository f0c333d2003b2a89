using Qubes.Interop.Linux;
using Qubes.Platform.Loopback;
using Xunit;

namespace Qubes.Platform.Tests;

/// <summary>The vchan liveness bytes: srv_live at 21 (armed by the owner), cli_live at 20 (armed by the mapper).</summary>
public sealed unsafe class UnmapNotifyTests
{
    private const int SrvLive = 21;
    private const int CliLive = 20;

    [Fact]
    public void Owner_dispose_clears_the_byte_and_signals_the_peer()
    {
        using var t = new TestBroker();
        (int aId, LoopbackPlatform a) = t.NewDomain("a");
        (int bId, LoopbackPlatform b) = t.NewDomain("b");
        using (a)
        using (b)
        {
            using IEventChannel serverPort = a.EventChannels.AllocateUnbound(bId);
            IGrantedPages page = a.Grants.Share(bId, 1, readOnly: false);
            page.SetUnmapNotify(SrvLive, serverPort);
            ((byte*)page.Address)[SrvLive] = 1;
            using IEventChannel clientPort = b.EventChannels.BindInterdomain(aId, serverPort.LocalPort);
            using IMappedPages mapped = b.Grants.Map(aId, page.Refs, writable: true);
            Assert.Equal(1, ((byte*)mapped.Address)[SrvLive]);

            page.Dispose();
            Assert.Equal(1, clientPort.Wait(5000));
            Assert.Equal(0, ((byte*)mapped.Address)[SrvLive]);
        }
    }

    [Fact]
    public void Owner_connection_death_clears_the_byte_and_signals_even_if_the_domain_lives_on()
    {
        using var t = new TestBroker();
        (int aId, LoopbackPlatform a) = t.NewDomain("a");
        (int bId, LoopbackPlatform b) = t.NewDomain("b");
        using SafeFd keepAlive = a.OpenConnection();
        using (b)
        {
            IEventChannel serverPort = a.EventChannels.AllocateUnbound(bId);
            IGrantedPages page = a.Grants.Share(bId, 1, readOnly: false);
            page.SetUnmapNotify(SrvLive, serverPort);
            ((byte*)page.Address)[SrvLive] = 1;
            using IEventChannel clientPort = b.EventChannels.BindInterdomain(aId, serverPort.LocalPort);
            using IMappedPages mapped = b.Grants.Map(aId, page.Refs, writable: true);

            a.Dispose(); // the connection that owned the grant and the notify goes away; its pages stay mapped here

            Assert.Equal(1, clientPort.Wait(5000));
            Assert.Equal(0, ((byte*)mapped.Address)[SrvLive]);
            Assert.True(t.Dom0.Domains.IsAlive(aId));
            Assert.False(clientPort.IsInterdomainBound()); // the port went with its connection
        }
    }

    [Fact]
    public void Read_only_grant_owner_death_still_clears_the_byte()
    {
        using var t = new TestBroker();
        (int aId, LoopbackPlatform a) = t.NewDomain("a");
        (int bId, LoopbackPlatform b) = t.NewDomain("b");
        using (b)
        {
            IEventChannel serverPort = a.EventChannels.AllocateUnbound(bId);
            IGrantedPages page = a.Grants.Share(bId, 1, readOnly: true);
            page.SetUnmapNotify(SrvLive, serverPort);
            ((byte*)page.Address)[SrvLive] = 1;
            using IEventChannel clientPort = b.EventChannels.BindInterdomain(aId, serverPort.LocalPort);
            using IMappedPages mapped = b.Grants.Map(aId, page.Refs, writable: false);
            t.Dom0.DestroyDomain(aId);
            Assert.Equal(1, clientPort.Wait(5000));
            Assert.Equal(0, ((byte*)mapped.Address)[SrvLive]);
            a.Dispose();
        }
    }

    [Fact]
    public void Mapper_death_clears_its_byte_in_the_owners_page_and_signals_the_owner()
    {
        using var t = new TestBroker();
        (int aId, LoopbackPlatform a) = t.NewDomain("a");
        (int bId, LoopbackPlatform b) = t.NewDomain("b");
        using (a)
        {
            using IEventChannel serverPort = a.EventChannels.AllocateUnbound(bId);
            using IGrantedPages page = a.Grants.Share(bId, 1, readOnly: false);
            IEventChannel clientPort = b.EventChannels.BindInterdomain(aId, serverPort.LocalPort);
            IMappedPages mapped = b.Grants.Map(aId, page.Refs, writable: true);
            mapped.SetUnmapNotify(CliLive, clientPort);
            ((byte*)mapped.Address)[CliLive] = 1;
            Assert.Equal(1, ((byte*)page.Address)[CliLive]);

            b.Dispose(); // process "dies": mapping still exists in this test process, the broker acts
            Assert.Equal(1, serverPort.Wait(5000));
            Assert.Equal(0, ((byte*)page.Address)[CliLive]);
            Assert.True(TestBroker.Eventually(() => !t.Dom0.Domains.IsAlive(bId)));
        }
    }

    [Fact]
    public void Mapper_dispose_fires_and_a_read_only_mapping_cannot_arm_it()
    {
        using var t = new TestBroker();
        (int aId, LoopbackPlatform a) = t.NewDomain("a");
        (int bId, LoopbackPlatform b) = t.NewDomain("b");
        using (a)
        using (b)
        {
            using IEventChannel serverPort = a.EventChannels.AllocateUnbound(bId);
            using IGrantedPages page = a.Grants.Share(bId, 1, readOnly: false);
            using IEventChannel clientPort = b.EventChannels.BindInterdomain(aId, serverPort.LocalPort);
            using (IMappedPages readOnly = b.Grants.Map(aId, page.Refs, writable: false))
            {
                Assert.Equal(Errno.EINVAL, Assert.Throws<PlatformException>(() => readOnly.SetUnmapNotify(CliLive, clientPort)).Errno);
            }
            IMappedPages mapped = b.Grants.Map(aId, page.Refs, writable: true);
            mapped.SetUnmapNotify(CliLive, clientPort);
            ((byte*)page.Address)[CliLive] = 1;
            mapped.Dispose();
            Assert.Equal(1, serverPort.Wait(5000));
            Assert.Equal(0, ((byte*)page.Address)[CliLive]);

            // Cleared on dispose: the broker does not fire it again when the connection ends.
            ((byte*)page.Address)[CliLive] = 1;
            b.Dispose();
            Assert.True(TestBroker.Eventually(() => !t.Dom0.Domains.IsAlive(bId)));
            Assert.Equal(1, ((byte*)page.Address)[CliLive]);
        }
    }
}
