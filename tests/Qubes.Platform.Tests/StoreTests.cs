using System.Collections.Generic;
using Qubes.Interop.Linux;
using Qubes.Platform.Loopback;
using Xunit;

namespace Qubes.Platform.Tests;

public sealed class StoreTests
{
    [Fact]
    public void Write_read_mkdir_directory_and_remove()
    {
        using var t = new TestBroker();
        using IStore store = t.Dom0.OpenStore();
        store.Write("/a/b/c", "value");
        Assert.Equal("value", store.Read("/a/b/c"));
        Assert.Equal("", store.Read("/a/b"));
        store.Mkdir("/a/d");
        store.Mkdir("/a/d"); // existing: fine
        Assert.Equal(new[] { "b", "d" }, store.Directory("/a"));
        store.Write("/a/b/c", "second");
        Assert.Equal("second", store.Read("/a/b/c"));
        store.Remove("/a/b");
        Assert.Null(store.Read("/a/b/c"));
        Assert.Null(store.Read("/a/b"));
        Assert.Null(store.Directory("/a/b"));
        Assert.Equal(new[] { "d" }, store.Directory("/a"));
        store.Remove("/a/b"); // missing: no error
        store.Remove("/no/such/thing"); // missing parent too: still no error for the caller
    }

    [Fact]
    public void Relative_paths_are_below_the_domains_home_and_domid_is_set()
    {
        using var t = new TestBroker();
        (int id, LoopbackPlatform a) = t.NewDomain("alpha");
        using (a)
        {
            Assert.Equal(id, a.OwnId);
            Assert.Equal(0, t.Dom0.OwnId);
            using IStore store = a.OpenStore();
            Assert.Equal(id.ToString(System.Globalization.CultureInfo.InvariantCulture), store.Read("domid"));
            Assert.Equal("alpha", store.Read("name"));
            store.Write("data/x", "1");
            using IStore dom0 = t.Dom0.OpenStore();
            Assert.Equal("1", dom0.Read($"/local/domain/{id}/data/x"));
            IReadOnlyList<StorePermission> perms = dom0.GetPermissions($"/local/domain/{id}/data/x");
            Assert.Equal(new StorePermission(id, StoreAccess.None), perms[0]);
        }
    }

    [Fact]
    public void Domains_cannot_read_each_others_nodes_without_an_entry()
    {
        using var t = new TestBroker();
        (int aId, LoopbackPlatform a) = t.NewDomain("a");
        (int bId, LoopbackPlatform b) = t.NewDomain("b");
        using (a)
        using (b)
        {
            using IStore sa = a.OpenStore();
            using IStore sb = b.OpenStore();
            using IStore s0 = t.Dom0.OpenStore();
            string path = $"/local/domain/{aId}/data/secret";
            sa.Write("data/secret", "s3");
            StoreException denied = Assert.Throws<StoreException>(() => sb.Read(path));
            Assert.Equal(Errno.EACCES, denied.Errno);
            Assert.Equal(Errno.EACCES, Assert.Throws<StoreException>(() => sb.Write(path, "x")).Errno);
            Assert.Equal(Errno.EACCES, Assert.Throws<StoreException>(() => sb.Remove(path)).Errno);
            Assert.Equal(Errno.EACCES, Assert.Throws<StoreException>(() => sb.Directory($"/local/domain/{aId}/data")).Errno);
            Assert.Equal("s3", s0.Read(path)); // dom0 reads everything

            // b cannot change a's permissions; a cannot give its node away
            Assert.Equal(Errno.EACCES, Assert.Throws<StoreException>(
                () => sb.SetPermissions(path, [new StorePermission(bId, StoreAccess.Both)])).Errno);
            Assert.Equal(Errno.EPERM, Assert.Throws<StoreException>(
                () => sa.SetPermissions(path, [new StorePermission(bId, StoreAccess.Both)])).Errno);

            sa.SetPermissions(path, [new StorePermission(aId, StoreAccess.None), new StorePermission(bId, StoreAccess.Read)]);
            Assert.Equal("s3", sb.Read(path));
            Assert.Equal(Errno.EACCES, Assert.Throws<StoreException>(() => sb.Write(path, "x")).Errno);
            Assert.Equal(
                new[] { new StorePermission(aId, StoreAccess.None), new StorePermission(bId, StoreAccess.Read) },
                sb.GetPermissions(path));
        }
    }

    [Fact]
    public void A_missing_node_under_an_unreadable_ancestor_reads_as_EACCES_not_ENOENT()
    {
        using var t = new TestBroker();
        (int id, LoopbackPlatform a) = t.NewDomain("alpha");
        using (a)
        using (IStore store = a.OpenStore())
        {
            // like xenstored: the answer must not reveal what exists where the caller cannot look
            var hidden = Assert.Throws<StoreException>(() => store.Read("/local/domain/0/data/vchan/1/5/event-channel"));
            Assert.Equal(Errno.EACCES, hidden.Errno);
            var hiddenList = Assert.Throws<StoreException>(() => store.Directory("/local/domain/0/nothing"));
            Assert.Equal(Errno.EACCES, hiddenList.Errno);
            // below its own home a missing node is plainly missing
            Assert.Null(store.Read($"/local/domain/{id}/nothing/here"));
            Assert.Null(store.Directory("nothing"));
        }
    }

    [Fact]
    public void Domains_cannot_write_outside_their_home_or_change_their_domid()
    {
        using var t = new TestBroker();
        (int id, LoopbackPlatform a) = t.NewDomain("a");
        using (a)
        {
            using IStore s = a.OpenStore();
            Assert.Equal(Errno.EACCES, Assert.Throws<StoreException>(() => s.Write("/tool/x", "1")).Errno);
            Assert.Equal(Errno.EACCES, Assert.Throws<StoreException>(() => s.Write("/local/domain/0/x", "1")).Errno);
            Assert.Equal(Errno.EACCES, Assert.Throws<StoreException>(() => s.Write("domid", "0")).Errno);
            Assert.Equal(Errno.EACCES, Assert.Throws<StoreException>(() => s.Read("/local/domain/0/domid")).Errno);
            Assert.Equal(id.ToString(System.Globalization.CultureInfo.InvariantCulture), s.Read("domid"));
        }
    }

    [Theory]
    [InlineData("/a//b")]
    [InlineData("/a/")]
    [InlineData("a/")]
    [InlineData("/a b")]
    [InlineData("/a$b")]
    [InlineData("/a/../b")]
    [InlineData("@other")]
    [InlineData("/é")]
    public void Bad_paths_are_EINVAL(string path)
    {
        using var t = new TestBroker();
        using IStore s = t.Dom0.OpenStore();
        Assert.Equal(Errno.EINVAL, Assert.Throws<StoreException>(() => s.Write(path, "1")).Errno);
    }

    [Fact]
    public void Values_over_4096_bytes_are_E2BIG()
    {
        using var t = new TestBroker();
        using IStore s = t.Dom0.OpenStore();
        Assert.Equal(Errno.E2BIG, Assert.Throws<StoreException>(() => s.Write("/big", new string('x', 4097))).Errno);
        s.Write("/b", new string('x', 4000));
        Assert.Equal(4000, s.Read("/b")!.Length);
    }

    [Fact]
    public void Transaction_commit_applies_changes_atomically()
    {
        using var t = new TestBroker();
        using IStore s = t.Dom0.OpenStore();
        using IStore other = t.Dom0.OpenStore();
        uint tx = s.TransactionStart();
        Assert.NotEqual(0u, tx);
        s.Write("/t/a", "1", tx);
        s.Write("/t/b", "2", tx);
        Assert.Equal("1", s.Read("/t/a", tx));
        Assert.Null(other.Read("/t/a")); // not visible outside before commit
        Assert.True(s.TransactionEnd(tx, commit: true));
        Assert.Equal("1", other.Read("/t/a"));
        Assert.Equal("2", other.Read("/t/b"));
    }

    [Fact]
    public void Transaction_conflict_is_EAGAIN_and_applies_nothing()
    {
        using var t = new TestBroker();
        using IStore s = t.Dom0.OpenStore();
        using IStore other = t.Dom0.OpenStore();
        s.Write("/c/x", "0");
        uint tx = s.TransactionStart();
        Assert.Equal("0", s.Read("/c/x", tx));
        s.Write("/c/y", "mine", tx);
        other.Write("/c/x", "theirs");
        Assert.False(s.TransactionEnd(tx, commit: true));
        Assert.Null(other.Read("/c/y"));
        Assert.Equal("theirs", other.Read("/c/x"));

        // Retrying the whole transaction succeeds.
        tx = s.TransactionStart();
        Assert.Equal("theirs", s.Read("/c/x", tx));
        s.Write("/c/y", "mine", tx);
        Assert.True(s.TransactionEnd(tx, commit: true));
        Assert.Equal("mine", other.Read("/c/y"));
    }

    [Fact]
    public void Transaction_conflicts_on_a_node_created_after_it_read_its_absence()
    {
        using var t = new TestBroker();
        using IStore s = t.Dom0.OpenStore();
        using IStore other = t.Dom0.OpenStore();
        uint tx = s.TransactionStart();
        Assert.Null(s.Read("/n/x", tx));
        s.Write("/n/flag", "1", tx);
        other.Write("/n/x", "appeared");
        Assert.False(s.TransactionEnd(tx, commit: true));
    }

    [Fact]
    public void Transaction_abort_discards_and_unknown_id_is_ENOENT()
    {
        using var t = new TestBroker();
        using IStore s = t.Dom0.OpenStore();
        uint tx = s.TransactionStart();
        s.Write("/ab/x", "1", tx);
        s.Remove("/local", tx);
        Assert.True(s.TransactionEnd(tx, commit: false));
        Assert.Null(s.Read("/ab/x"));
        Assert.NotNull(s.Read("/local/domain/0/domid"));
        Assert.Equal(Errno.ENOENT, Assert.Throws<StoreException>(() => s.Write("/ab/x", "2", tx)).Errno);
        Assert.Equal(Errno.ENOENT, Assert.Throws<StoreException>(() => s.TransactionEnd(tx, true)).Errno);
    }

    [Fact]
    public void Transaction_remove_and_recreate_commits()
    {
        using var t = new TestBroker();
        using IStore s = t.Dom0.OpenStore();
        s.Write("/r/a/old", "1");
        uint tx = s.TransactionStart();
        s.Remove("/r/a", tx);
        s.Write("/r/a/new", "2", tx);
        Assert.True(s.TransactionEnd(tx, true));
        Assert.Equal(new[] { "new" }, s.Directory("/r/a"));
        Assert.Equal("2", s.Read("/r/a/new"));
    }

    [Fact]
    public void Watch_fires_at_once_then_on_changes_below()
    {
        using var t = new TestBroker();
        using IStore s = t.Dom0.OpenStore();
        using IStore writer = t.Dom0.OpenStore();
        s.Watch("/w", "tok");
        Assert.True(TestBroker.WaitForEvent(s, (p, k) => p == "/w" && k == "tok"));
        writer.Write("/w/x/y", "1");
        Assert.True(TestBroker.WaitForEvent(s, (p, k) => p == "/w/x/y" && k == "tok"));
        writer.Write("/elsewhere", "1");
        writer.Remove("/w/x");
        Assert.True(TestBroker.WaitForEvent(s, (p, k) => p == "/w/x" && k == "tok"));
        Assert.False(s.TryReadWatchEvent(out string path, out _), "unexpected event " + path);

        s.Unwatch("/w", "tok");
        writer.Write("/w/z", "1");
        Assert.False(TestBroker.WaitForEvent(s, (_, _) => true, 200));
    }

    [Fact]
    public void Watch_below_a_removed_node_fires_and_relative_watches_get_relative_paths()
    {
        using var t = new TestBroker();
        (int id, LoopbackPlatform a) = t.NewDomain("a");
        using (a)
        {
            using IStore s = a.OpenStore();
            s.Write("data/vchan/0/5/event-channel", "3");
            s.Watch("data/vchan/0/5/event-channel", "ec");
            Assert.True(TestBroker.WaitForEvent(s, (p, k) => p == "data/vchan/0/5/event-channel" && k == "ec"));
            s.Write("data/vchan/0/5/event-channel", "4");
            Assert.True(TestBroker.WaitForEvent(s, (p, k) => p == "data/vchan/0/5/event-channel"));
            using IStore s0 = t.Dom0.OpenStore();
            s0.Remove($"/local/domain/{id}/data/vchan");
            Assert.True(TestBroker.WaitForEvent(s, (p, k) => p == "data/vchan/0/5/event-channel" && k == "ec"));
        }
    }

    [Fact]
    public void Transaction_changes_fire_watches_at_commit_only()
    {
        using var t = new TestBroker();
        using IStore s = t.Dom0.OpenStore();
        using IStore watcher = t.Dom0.OpenStore();
        watcher.Watch("/tw", "t");
        Assert.True(TestBroker.WaitForEvent(watcher, (p, _) => p == "/tw"));
        uint tx = s.TransactionStart();
        s.Write("/tw/a", "1", tx);
        Assert.False(TestBroker.WaitForEvent(watcher, (_, _) => true, 150));
        Assert.True(s.TransactionEnd(tx, true));
        Assert.True(TestBroker.WaitForEvent(watcher, (p, _) => p == "/tw/a"));
    }

    [Fact]
    public void Duplicate_watch_is_EEXIST_and_unknown_unwatch_is_ENOENT()
    {
        using var t = new TestBroker();
        using IStore s = t.Dom0.OpenStore();
        s.Watch("/d", "1");
        Assert.Equal(Errno.EEXIST, Assert.Throws<StoreException>(() => s.Watch("/d", "1")).Errno);
        s.Watch("/d", "2");
        Assert.Equal(Errno.ENOENT, Assert.Throws<StoreException>(() => s.Unwatch("/d", "3")).Errno);
    }

    [Fact]
    public void Introduce_and_release_domain_watches_fire()
    {
        using var t = new TestBroker();
        using IStore s = t.Dom0.OpenStore();
        s.Watch(StorePath.IntroduceDomain, "in");
        s.Watch(StorePath.ReleaseDomain, "out");
        Assert.True(TestBroker.WaitForEvent(s, (p, k) => p == StorePath.ReleaseDomain && k == "out"));
        TestBroker.DrainEvents(s);
        (int id, LoopbackPlatform a) = t.NewDomain("a");
        Assert.True(TestBroker.WaitForEvent(s, (p, k) => p == StorePath.IntroduceDomain && k == "in"));
        a.Dispose(); // its only connection: the domain dies
        Assert.True(TestBroker.WaitForEvent(s, (p, k) => p == StorePath.ReleaseDomain && k == "out"));
        Assert.False(t.Dom0.Domains.IsAlive(id));
        Assert.Null(s.Directory($"/local/domain/{id}"));
    }
}
