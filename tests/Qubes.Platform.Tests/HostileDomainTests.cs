using System;
using System.Collections.Generic;
using System.Globalization;
using Qubes.Interop.Linux;
using Qubes.Platform.Loopback;
using Xunit;

namespace Qubes.Platform.Tests;

/// <summary>
/// A domain attacking the broker's store: growing it through open transactions, holding watches and
/// transactions past its share, watching what it may not read, removing its own identity, using up
/// its connections. Each attack is also run by dom0, which has no quota, to show that it does grow
/// the broker where the limit is not applied.
/// </summary>
public sealed class HostileDomainTests
{
    private static readonly string s_value = new('v', 4000);

    /// <summary>Writes 4000-byte values at distinct paths in open transactions until the store refuses; returns the bytes written.</summary>
    private static long FillTransactions(IStore store, string prefix, long stopAfter)
    {
        long written = 0;
        for (int t = 0; t < LoopbackBroker.MaxTransactionsPerConnection; t++)
        {
            uint tx;
            try
            {
                tx = store.TransactionStart();
            }
            catch (StoreException e) when (e.Errno == Errno.ENOSPC)
            {
                return written;
            }
            for (int i = 0; i < 100; i++)
            {
                try
                {
                    store.Write(string.Create(CultureInfo.InvariantCulture, $"{prefix}/t{t}/n{i}"), s_value, tx);
                }
                catch (StoreException e) when (e.Errno == Errno.ENOSPC)
                {
                    return written;
                }
                written += s_value.Length;
                if (written >= stopAfter)
                {
                    return written;
                }
            }
        }
        return written;
    }

    [Fact]
    public void Open_transactions_cannot_grow_the_store_past_the_domains_quota()
    {
        using var t = new TestBroker();
        (int id, LoopbackPlatform a) = t.NewDomain("a");
        using (a)
        {
            // the same writes from dom0 (no quota) go on well past the quota: the attack works there
            using IStore dom0 = t.Dom0.OpenStore();
            Assert.True(FillTransactions(dom0, "/local/domain/0/data", 4 * StoreService.TransactionQuota) >= 4 * StoreService.TransactionQuota);

            // from the domain, over many connections, the open transactions stop at the quota together
            List<IStore> stores = [];
            long total = 0;
            try
            {
                for (int c = 0; c < 8; c++)
                {
                    IStore s = a.OpenStore();
                    stores.Add(s);
                    total += FillTransactions(s, "data/c" + c.ToString(CultureInfo.InvariantCulture), long.MaxValue);
                }
                Assert.InRange(total, StoreService.TransactionQuota / 2, StoreService.TransactionQuota);
                Assert.InRange(t.Broker.PendingTransactionBytes(id), total, StoreService.TransactionQuota);
            }
            finally
            {
                foreach (IStore s in stores)
                {
                    s.Dispose();
                }
            }
            // the connections' ends gave the quota back
            Assert.True(TestBroker.Eventually(() => t.Broker.PendingTransactionBytes(id) == 0));
            using IStore again = a.OpenStore();
            uint tx = again.TransactionStart();
            again.Write("data/x", s_value, tx);
            Assert.True(again.TransactionEnd(tx, commit: true));
        }
    }

    [Fact]
    public void Nodes_created_in_open_transactions_count_against_the_node_quota_at_once()
    {
        using var t = new TestBroker();
        (_, LoopbackPlatform a) = t.NewDomain("a");
        using (a)
        {
            using IStore s = a.OpenStore();
            uint first = s.TransactionStart();
            for (int i = 0; i < StoreService.NodeQuota - 10; i++)
            {
                s.Write("data/n" + i.ToString(CultureInfo.InvariantCulture), "x", first);
            }
            uint second = s.TransactionStart();
            StoreException full = Assert.Throws<StoreException>(() =>
            {
                for (int i = 0; i < 100; i++)
                {
                    s.Write("data/m" + i.ToString(CultureInfo.InvariantCulture), "x", second);
                }
            });
            Assert.Equal(Errno.ENOSPC, full.Errno);
            Assert.True(s.TransactionEnd(second, commit: false));
            Assert.True(s.TransactionEnd(first, commit: false));
            s.Write("data/m0", "x"); // aborting gave it back
        }
    }

    [Fact]
    public void A_domain_holds_at_most_its_share_of_watches_and_transactions_over_all_its_connections()
    {
        using var t = new TestBroker();
        (_, LoopbackPlatform a) = t.NewDomain("a");
        using (a)
        {
            List<IStore> stores = [];
            try
            {
                int watches = 0, transactions = 0;
                bool watchRefused = false, transactionRefused = false;
                for (int c = 0; c < 8 && !(watchRefused && transactionRefused); c++)
                {
                    IStore s = a.OpenStore();
                    stores.Add(s);
                    for (int w = 0; w < LoopbackBroker.MaxWatchesPerConnection && !watchRefused; w++)
                    {
                        try
                        {
                            s.Watch("data/w" + watches.ToString(CultureInfo.InvariantCulture), "t");
                            watches++;
                        }
                        catch (StoreException e) when (e.Errno == Errno.ENOSPC)
                        {
                            watchRefused = true;
                        }
                    }
                    for (int x = 0; x < LoopbackBroker.MaxTransactionsPerConnection && !transactionRefused; x++)
                    {
                        try
                        {
                            s.TransactionStart();
                            transactions++;
                        }
                        catch (StoreException e) when (e.Errno == Errno.ENOSPC)
                        {
                            transactionRefused = true;
                        }
                    }
                }
                Assert.Equal(LoopbackBroker.MaxWatchesPerDomain, watches);
                Assert.Equal(LoopbackBroker.MaxTransactionsPerDomain, transactions);
            }
            finally
            {
                foreach (IStore s in stores)
                {
                    s.Dispose();
                }
            }
        }
    }

    [Fact]
    public void Watch_events_reach_only_domains_that_may_read_the_node()
    {
        using var t = new TestBroker();
        (int aId, LoopbackPlatform a) = t.NewDomain("a");
        (int bId, LoopbackPlatform b) = t.NewDomain("b");
        using (a)
        using (b)
        {
            using IStore spy = a.OpenStore();
            using IStore dom0 = t.Dom0.OpenStore();
            using IStore bs = b.OpenStore();
            spy.Watch("/", "all");
            dom0.Watch("/", "all");
            Drain(spy);
            Drain(dom0);

            // b publishes privately, then removes it: dom0 sees both, a neither
            bs.Write("data/vchan/0/512/ring-ref", "9");
            bs.Remove("data/vchan/0/512");
            Assert.Contains($"/local/domain/{bId}/data/vchan/0/512/ring-ref", Events(dom0));
            Assert.Empty(Events(spy));

            // a node b lets a read: a hears of it
            bs.Write("data/shared", "1");
            bs.SetPermissions("data/shared", [new StorePermission(bId, StoreAccess.None), new StorePermission(aId, StoreAccess.Read)]);
            Assert.Contains($"/local/domain/{bId}/data/shared", Events(spy));

            // another domain's birth and death: dom0 hears of them, a does not, until dom0 lets it
            spy.Watch("@releaseDomain", "rel");
            spy.Watch("@introduceDomain", "intro");
            dom0.Watch("@releaseDomain", "rel");
            Drain(spy);
            Drain(dom0);
            (int cId, LoopbackPlatform c) = t.NewDomain("c");
            c.Dispose();
            Assert.True(TestBroker.Eventually(() => !t.Dom0.Domains.IsAlive(cId)));
            Assert.Contains("@releaseDomain", Events(dom0));
            Assert.Empty(Events(spy));
            dom0.SetPermissions("@releaseDomain", [new StorePermission(0, StoreAccess.None), new StorePermission(aId, StoreAccess.Read)]);
            (int dId, LoopbackPlatform d) = t.NewDomain("d");
            d.Dispose();
            Assert.True(TestBroker.Eventually(() => !t.Dom0.Domains.IsAlive(dId)));
            Assert.Equal(["@releaseDomain"], Events(spy)); // granted one, not the other
            Assert.Equal(Errno.EACCES, Assert.Throws<StoreException>(() => spy.SetPermissions("@introduceDomain", [new StorePermission(aId, StoreAccess.Read)])).Errno);
        }
    }

    [Fact]
    public void A_domain_cannot_remove_or_rewrite_its_own_identity()
    {
        using var t = new TestBroker();
        (int id, LoopbackPlatform a) = t.NewDomain("a");
        using (a)
        {
            using IStore s = a.OpenStore();
            string home = StoreService.HomeOf(id);
            foreach (string path in (string[])["domid", "name", home, home + "/domid"])
            {
                Assert.Equal(Errno.EACCES, Assert.Throws<StoreException>(() => s.Remove(path)).Errno);
            }
            Assert.Equal(Errno.EACCES, Assert.Throws<StoreException>(() => s.Write("domid", "0")).Errno);
            Assert.Equal(Errno.EACCES, Assert.Throws<StoreException>(() => s.Write("name", "dom0")).Errno);
            Assert.Equal(Errno.EACCES, Assert.Throws<StoreException>(() => s.Write("elsewhere", "x")).Errno);
            Assert.Equal(Errno.EACCES, Assert.Throws<StoreException>(() => s.SetPermissions(home, [new StorePermission(id, StoreAccess.None)])).Errno);
            Assert.Equal(id.ToString(CultureInfo.InvariantCulture), s.Read("domid"));
            Assert.Equal("a", s.Read("name"));
            s.Write("data/mine", "x"); // below data it writes freely
            // dom0 can: the same removal succeeds for it
            using IStore dom0 = t.Dom0.OpenStore();
            dom0.Remove(home + "/name");
            Assert.Null(dom0.Read(home + "/name"));
        }
    }

    [Fact]
    public void A_domain_out_of_connections_is_refused_at_once()
    {
        using var t = new TestBroker();
        (_, LoopbackPlatform a) = t.NewDomain("a");
        using (a)
        {
            List<SafeFd> held = [];
            try
            {
                var clock = System.Diagnostics.Stopwatch.StartNew();
                PlatformException refused = Assert.Throws<PlatformException>(() =>
                {
                    for (int i = 0; i < LoopbackBroker.MaxConnectionsPerDomain + 1; i++)
                    {
                        held.Add(a.OpenConnection());
                    }
                });
                Assert.Equal(Errno.EMFILE, refused.Errno);
                Assert.Equal(LoopbackBroker.MaxConnectionsPerDomain - 1, held.Count); // the domain's first connection counts
                Assert.True(clock.ElapsedMilliseconds < 2000, $"refusal took {clock.ElapsedMilliseconds} ms");
                Assert.Contains("out of connections", refused.Message, StringComparison.Ordinal);
            }
            finally
            {
                foreach (SafeFd fd in held)
                {
                    fd.Dispose();
                }
            }
        }
    }

    private static void Drain(IStore store)
    {
        System.Threading.Thread.Sleep(50);
        while (store.TryReadWatchEvent(out _, out _))
        {
        }
    }

    private static List<string> Events(IStore store)
    {
        // events the broker sent come before the reply to a request sent after them
        _ = store.Read("domid");
        System.Threading.Thread.Sleep(20);
        _ = store.Read("domid");
        List<string> events = [];
        while (store.TryReadWatchEvent(out string path, out _))
        {
            events.Add(path);
        }
        return events;
    }
}
