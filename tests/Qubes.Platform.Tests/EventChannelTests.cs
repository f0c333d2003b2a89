using System;
using System.Threading;
using Qubes.Interop.Linux;
using Qubes.Platform.Loopback;
using Xunit;

namespace Qubes.Platform.Tests;

public sealed class EventChannelTests
{
    [Fact]
    public void Notify_wakes_the_peers_wait_both_ways()
    {
        using var t = new TestBroker();
        (int aId, LoopbackPlatform a) = t.NewDomain("a");
        (int bId, LoopbackPlatform b) = t.NewDomain("b");
        using (a)
        using (b)
        {
            using IEventChannel server = a.EventChannels.AllocateUnbound(bId);
            using IEventChannel client = b.EventChannels.BindInterdomain(aId, server.LocalPort);
            Assert.Equal(0, client.Wait(0));
            Assert.Equal(0, server.Wait(10));

            int woke = -2;
            var waiter = new Thread(() => woke = client.Wait(5000));
            waiter.Start();
            Thread.Sleep(50);
            Assert.Equal(Errno.None, server.Notify());
            Assert.True(waiter.Join(5000));
            Assert.Equal(1, woke);
            Assert.Equal(0, client.Wait(0)); // consumed

            Assert.Equal(Errno.None, client.Notify());
            Assert.Equal(Errno.None, client.Notify());
            Assert.Equal(1, Fd.PollIn(server.Fd, 1000));
            Assert.Equal(1, server.Wait(0));
            Assert.Equal(0, server.Wait(0)); // two notifies, one pending event
        }
    }

    [Fact]
    public void Notify_and_wait_do_not_allocate()
    {
        using var t = new TestBroker();
        (int aId, LoopbackPlatform a) = t.NewDomain("a");
        (int bId, LoopbackPlatform b) = t.NewDomain("b");
        using (a)
        using (b)
        {
            using IEventChannel server = a.EventChannels.AllocateUnbound(bId);
            using IEventChannel client = b.EventChannels.BindInterdomain(aId, server.LocalPort);
            for (int i = 0; i < 100; i++)
            {
                server.Notify();
                client.Wait(0);
            }
            long before = GC.GetAllocatedBytesForCurrentThread();
            for (int i = 0; i < 10_000; i++)
            {
                server.Notify();
                client.Wait(0);
            }
            Assert.Equal(0, GC.GetAllocatedBytesForCurrentThread() - before);
        }
    }

    [Fact]
    public void Binding_a_port_allocated_for_another_domain_fails()
    {
        using var t = new TestBroker();
        (int aId, LoopbackPlatform a) = t.NewDomain("a");
        (int bId, LoopbackPlatform b) = t.NewDomain("b");
        (_, LoopbackPlatform c) = t.NewDomain("c");
        using (a)
        using (b)
        using (c)
        {
            using IEventChannel server = a.EventChannels.AllocateUnbound(bId);
            Assert.Equal(Errno.EACCES, Assert.Throws<PlatformException>(() => c.EventChannels.BindInterdomain(aId, server.LocalPort)).Errno);
            Assert.Equal(Errno.EINVAL, Assert.Throws<PlatformException>(() => b.EventChannels.BindInterdomain(aId, server.LocalPort + 100)).Errno);
            Assert.Equal(Errno.ESRCH, Assert.Throws<PlatformException>(() => b.EventChannels.BindInterdomain(3000, 1)).Errno);
            Assert.Equal(Errno.ESRCH, Assert.Throws<PlatformException>(() => a.EventChannels.AllocateUnbound(3000)).Errno);
            using IEventChannel client = b.EventChannels.BindInterdomain(aId, server.LocalPort);
            // Bound once: nobody can bind it again, not even the intended domain.
            Assert.Equal(Errno.EINVAL, Assert.Throws<PlatformException>(() => b.EventChannels.BindInterdomain(aId, server.LocalPort)).Errno);
        }
    }

    [Fact]
    public void Is_interdomain_bound_follows_both_ends()
    {
        using var t = new TestBroker();
        (int aId, LoopbackPlatform a) = t.NewDomain("a");
        (int bId, LoopbackPlatform b) = t.NewDomain("b");
        using (a)
        using (b)
        {
            using IEventChannel server = a.EventChannels.AllocateUnbound(bId);
            Assert.False(server.IsInterdomainBound());
            IEventChannel client = b.EventChannels.BindInterdomain(aId, server.LocalPort);
            Assert.True(server.IsInterdomainBound());
            Assert.True(client.IsInterdomainBound());
            client.Dispose();
            Assert.False(server.IsInterdomainBound());
        }
    }

    [Fact]
    public void Peer_death_unbinds_the_port()
    {
        using var t = new TestBroker();
        (int aId, LoopbackPlatform a) = t.NewDomain("a");
        (int bId, LoopbackPlatform b) = t.NewDomain("b");
        using (a)
        {
            using IEventChannel server = a.EventChannels.AllocateUnbound(bId);
            IEventChannel client = b.EventChannels.BindInterdomain(aId, server.LocalPort);
            Assert.True(server.IsInterdomainBound());
            t.Dom0.DestroyDomain(bId);
            Assert.False(server.IsInterdomainBound());
            Assert.False(client.IsInterdomainBound()); // its connection is gone: not bound either
            client.Dispose();
            b.Dispose();
        }
    }
}
