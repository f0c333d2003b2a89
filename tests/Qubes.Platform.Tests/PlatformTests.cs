using System;
using System.Threading;
using Qubes.Interop.Linux;
using Qubes.Platform.Loopback;
using Xunit;

namespace Qubes.Platform.Tests;

[Collection("environment")]
public sealed class PlatformTests
{
    [Fact]
    public void FromEnvironment_takes_an_inherited_descriptor_and_hides_it_from_our_children()
    {
        using var t = new TestBroker();
        (int id, SafeFd connection) = t.Dom0.CreateDomain("env");
        int fd = connection.Release();
        Fd.SetInheritable(fd, true);
        Environment.SetEnvironmentVariable(LoopbackPlatform.FdVariable, fd.ToString(System.Globalization.CultureInfo.InvariantCulture));
        try
        {
            using LoopbackPlatform p = LoopbackPlatform.FromEnvironment();
            Assert.Equal(id, p.OwnId);
            Assert.Equal(id, p.Domains.OwnId);
            Assert.Null(Environment.GetEnvironmentVariable(LoopbackPlatform.FdVariable));
            Assert.Equal(Libc.FD_CLOEXEC, Libc.fcntl(fd, Libc.F_GETFD, 0) & Libc.FD_CLOEXEC);
        }
        finally
        {
            Environment.SetEnvironmentVariable(LoopbackPlatform.FdVariable, null);
        }
    }

    [Fact]
    public void FromEnvironment_connects_as_dom0_through_the_directory()
    {
        using var t = new TestBroker();
        Environment.SetEnvironmentVariable(LoopbackPlatform.DirectoryVariable, t.Directory);
        try
        {
            using LoopbackPlatform p = LoopbackPlatform.FromEnvironment();
            Assert.Equal(0, p.OwnId);
        }
        finally
        {
            Environment.SetEnvironmentVariable(LoopbackPlatform.DirectoryVariable, null);
        }
        Assert.Equal(Errno.ENOENT, Assert.Throws<PlatformException>(() => LoopbackPlatform.ConnectDom0(t.Directory + "-missing")).Errno);
    }

    [Fact]
    public void Threads_can_share_one_platform_connection()
    {
        using var t = new TestBroker();
        (int aId, LoopbackPlatform a) = t.NewDomain("a");
        (int bId, LoopbackPlatform b) = t.NewDomain("b");
        using (a)
        using (b)
        {
            var failures = 0;
            var threads = new Thread[4];
            for (int i = 0; i < threads.Length; i++)
            {
                threads[i] = new Thread(() =>
                {
                    try
                    {
                        for (int k = 0; k < 50; k++)
                        {
                            using IEventChannel server = a.EventChannels.AllocateUnbound(bId);
                            using IEventChannel client = b.EventChannels.BindInterdomain(aId, server.LocalPort);
                            using IGrantedPages page = a.Grants.Share(bId, 1, readOnly: false);
                            using IMappedPages mapped = b.Grants.Map(aId, page.Refs, writable: true);
                            if (!server.IsInterdomainBound() || !a.Domains.IsAlive(bId))
                            {
                                Interlocked.Increment(ref failures);
                            }
                        }
                    }
                    catch (PlatformException)
                    {
                        Interlocked.Increment(ref failures);
                    }
                });
                threads[i].Start();
            }
            foreach (Thread th in threads)
            {
                Assert.True(th.Join(30_000));
            }
            Assert.Equal(0, failures);
        }
    }

    [Fact]
    public void A_domain_cannot_own_more_than_its_node_quota()
    {
        using var t = new TestBroker();
        (_, LoopbackPlatform a) = t.NewDomain("a");
        using (a)
        {
            using IStore s = a.OpenStore();
            StoreException full = Assert.Throws<StoreException>(() =>
            {
                for (int i = 0; i < 2000; i++)
                {
                    s.Write("data/n" + i.ToString(System.Globalization.CultureInfo.InvariantCulture), "x");
                }
            });
            Assert.Equal(Errno.ENOSPC, full.Errno);
            s.Remove("data");
            Assert.Equal(Errno.EACCES, Assert.Throws<StoreException>(() => s.Write("data/again", "x")).Errno); // the home is dom0's
            using IStore dom0 = t.Dom0.OpenStore();
            dom0.Mkdir($"/local/domain/{a.OwnId}/data");
            dom0.SetPermissions($"/local/domain/{a.OwnId}/data", [new StorePermission(a.OwnId, StoreAccess.None)]);
            s.Write("data/again", "fine"); // removing gave the quota back
        }
    }
}
