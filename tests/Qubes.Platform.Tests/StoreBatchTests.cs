using Qubes.Interop.Linux;
using Qubes.Platform.Loopback;
using Xunit;

namespace Qubes.Platform.Tests;

/// <summary><see cref="IStore.Batch"/>: many requests, one round trip, answered in order.</summary>
public sealed class StoreBatchTests
{
    [Fact]
    public void Requests_take_effect_in_order_and_answers_come_back_in_order()
    {
        using var t = new TestBroker();
        using IStore s = t.Dom0.OpenStore();
        StoreAnswer[] answers = s.Batch(
        [
            StoreRequest.Read("/b/x"),          // before the write: missing
            StoreRequest.Write("/b/x", "1"),
            StoreRequest.Read("/b/x"),          // sees the write before it
            StoreRequest.Write("/b/y", "2"),
            StoreRequest.Directory("/b"),
            StoreRequest.Remove("/b/x"),
            StoreRequest.Read("/b/x"),
            StoreRequest.Directory("/b/none"),
        ]);
        Assert.Equal(8, answers.Length);
        Assert.Equal(Errno.ENOENT, answers[0].Error);
        Assert.True(answers[1].Ok);
        Assert.Equal("1", answers[2].Value);
        Assert.Equal(new[] { "x", "y" }, answers[4].Children);
        Assert.True(answers[5].Ok);
        Assert.Equal(Errno.ENOENT, answers[6].Error);
        Assert.Equal(Errno.ENOENT, answers[7].Error);
        Assert.Null(s.Read("/b/x"));
        Assert.Equal("2", s.Read("/b/y"));
    }

    [Fact]
    public void A_failed_request_is_its_errno_and_the_rest_still_run()
    {
        using var t = new TestBroker();
        (int id, LoopbackPlatform a) = t.NewDomain("a");
        using (a)
        {
            using IStore s = a.OpenStore();
            StoreAnswer[] answers = s.Batch(
            [
                StoreRequest.Write("/local/domain/0/x", "no"),   // outside its home: refused
                StoreRequest.Write("data/big", new string('x', Qubes.Platform.Xenstore.XenstoreWire.MaxPayload)),
                StoreRequest.Write("data/ok", "yes"),
            ]);
            Assert.Equal(Errno.EACCES, answers[0].Error);
            Assert.Equal(Errno.E2BIG, answers[1].Error);
            Assert.True(answers[2].Ok);
            Assert.Equal("yes", s.Read("data/ok"));
            Assert.Equal(id.ToString(System.Globalization.CultureInfo.InvariantCulture), s.Read("domid")); // the connection still works
        }
    }

    [Fact]
    public void Batch_in_a_transaction_commits_at_once_or_answers_EAGAIN()
    {
        using var t = new TestBroker();
        using IStore s = t.Dom0.OpenStore();
        using IStore other = t.Dom0.OpenStore();
        uint tx = s.TransactionStart();
        StoreAnswer[] answers = s.Batch([StoreRequest.Write("/t/a", "1"), StoreRequest.Write("/t/b", "2"), StoreRequest.Commit()], tx);
        Assert.All(answers, a => Assert.True(a.Ok));
        Assert.Equal("1", other.Read("/t/a"));
        Assert.Equal("2", other.Read("/t/b"));

        tx = s.TransactionStart();
        StoreAnswer[] read = s.Batch([StoreRequest.Read("/t/a")], tx);
        Assert.Equal("1", read[0].Value);
        other.Write("/t/a", "theirs");
        StoreAnswer[] ended = s.Batch([StoreRequest.Write("/t/c", "mine"), StoreRequest.Commit()], tx);
        Assert.True(ended[0].Ok);
        Assert.Equal(Errno.EAGAIN, ended[1].Error);
        Assert.Null(other.Read("/t/c"));
    }

    [Fact]
    public void Permissions_and_watches_in_a_batch()
    {
        using var t = new TestBroker();
        (int id, LoopbackPlatform a) = t.NewDomain("a");
        using (a)
        {
            using IStore dom0 = t.Dom0.OpenStore();
            using IStore watcher = a.OpenStore();
            StoreAnswer[] watched = watcher.Batch([StoreRequest.Watch("/p/v", "tok"), StoreRequest.Read("/p/v")]);
            Assert.True(watched[0].Ok);
            Assert.Equal(Errno.EACCES, watched[1].Error); // missing below a node it may not read
            Assert.True(TestBroker.WaitForEvent(watcher, (path, token) => path == "/p/v" && token == "tok")); // the one at registration
            TestBroker.DrainEvents(watcher);
            StorePermission[] readable = [new(0, StoreAccess.None), new(id, StoreAccess.Read)];
            StoreAnswer[] answers = dom0.Batch([StoreRequest.Write("/p/v", "7"), StoreRequest.SetPermissions("/p/v", readable)]);
            Assert.All(answers, x => Assert.True(x.Ok));
            Assert.True(TestBroker.WaitForEvent(watcher, (path, token) => path == "/p/v" && token == "tok"));
            Assert.Equal("7", watcher.Read("/p/v"));
            Assert.Equal(readable, dom0.GetPermissions("/p/v"));
        }
    }

    [Fact]
    public void The_platforms_own_store_is_shared_between_threads()
    {
        using var t = new TestBroker();
        IStore shared = t.Dom0.Store;
        System.Threading.Tasks.Parallel.For(0, 8, i =>
        {
            for (int n = 0; n < 50; n++)
            {
                string key = $"/s/{i}/{n}";
                StoreAnswer[] answers = shared.Batch([StoreRequest.Write(key, key), StoreRequest.Read(key)]);
                Assert.Equal(key, answers[1].Value);
            }
        });
        Assert.Equal(8, shared.Directory("/s")!.Count);
    }
}
