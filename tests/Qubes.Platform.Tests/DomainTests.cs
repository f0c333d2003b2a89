using System.Diagnostics;
using System.Globalization;
using Qubes.Interop.Linux;
using Qubes.Platform.Loopback;
using Xunit;

namespace Qubes.Platform.Tests;

public sealed class DomainTests
{
    [Fact]
    public void Domains_get_increasing_ids_and_are_alive()
    {
        using var t = new TestBroker();
        (int a, LoopbackPlatform pa) = t.NewDomain("a");
        (int b, LoopbackPlatform pb) = t.NewDomain("b");
        using (pa)
        using (pb)
        {
            Assert.Equal(1, a);
            Assert.Equal(2, b);
            Assert.True(t.Dom0.Domains.IsAlive(0));
            Assert.True(pa.Domains.IsAlive(b));
            Assert.False(pa.Domains.IsAlive(77));
            Assert.Equal(Errno.EEXIST, Assert.Throws<PlatformException>(() => t.Dom0.CreateDomain("a")).Errno);
            Assert.Equal(Errno.EINVAL, Assert.Throws<PlatformException>(() => t.Dom0.CreateDomain("bad name")).Errno);
        }
    }

    [Fact]
    public void Only_dom0_creates_and_destroys_domains()
    {
        using var t = new TestBroker();
        (int a, LoopbackPlatform pa) = t.NewDomain("a");
        (int b, LoopbackPlatform pb) = t.NewDomain("b");
        using (pa)
        using (pb)
        {
            Assert.Equal(Errno.EPERM, Assert.Throws<PlatformException>(() => pa.CreateDomain("c")).Errno);
            Assert.Equal(Errno.EPERM, Assert.Throws<PlatformException>(() => pa.DestroyDomain(b)).Errno);
            Assert.Equal(Errno.EINVAL, Assert.Throws<PlatformException>(() => t.Dom0.DestroyDomain(0)).Errno);
            Assert.Equal(Errno.ESRCH, Assert.Throws<PlatformException>(() => t.Dom0.DestroyDomain(99)).Errno);
            Assert.True(t.Dom0.Domains.IsAlive(b));
        }
    }

    [Fact]
    public void Destroy_closes_every_connection_and_cleans_up()
    {
        using var t = new TestBroker();
        using IStore watcher = t.Dom0.OpenStore();
        watcher.Watch(StorePath.ReleaseDomain, "r");
        Assert.True(TestBroker.WaitForEvent(watcher, (p, _) => p == StorePath.ReleaseDomain));
        (int a, LoopbackPlatform pa) = t.NewDomain("a");
        using (pa)
        {
            using IStore second = pa.OpenStore();
            second.Write("data/x", "1");
            Assert.Equal(a, pa.OwnId);
            t.Dom0.DestroyDomain(a);
            Assert.False(t.Dom0.Domains.IsAlive(a));
            Assert.True(TestBroker.WaitForEvent(watcher, (p, k) => p == StorePath.ReleaseDomain && k == "r"));
            Assert.Null(watcher.Read($"/local/domain/{a}"));
            Assert.Throws<PlatformException>(() => second.Read("data/x"));
            Assert.Throws<PlatformException>(() => pa.Domains.IsAlive(0));
            // The name is free again, under a new id.
            (int again, SafeFd connection) = t.Dom0.CreateDomain("a");
            connection.Dispose();
            Assert.NotEqual(a, again);
        }
    }

    [Fact]
    public void A_domain_lives_while_any_of_its_connections_is_open()
    {
        using var t = new TestBroker();
        (int a, LoopbackPlatform pa) = t.NewDomain("a");
        SafeFd extra = pa.OpenConnection();
        using (var other = LoopbackPlatform.Connect(pa.OpenConnection().Release()))
        {
            Assert.Equal(a, other.OwnId); // same identity on every connection
        }
        pa.Dispose();
        Assert.True(t.Dom0.Domains.IsAlive(a));
        extra.Dispose();
        Assert.True(TestBroker.Eventually(() => !t.Dom0.Domains.IsAlive(a)));
    }

    [Fact]
    public void A_child_process_inherits_the_connection_and_its_exit_kills_the_domain()
    {
        using var t = new TestBroker();
        using IStore watcher = t.Dom0.OpenStore();
        watcher.Watch(StorePath.ReleaseDomain, "r");
        Assert.True(TestBroker.WaitForEvent(watcher, (p, _) => p == StorePath.ReleaseDomain));
        (int id, SafeFd connection) = t.Dom0.CreateDomain("child");

        // bash, not dash: dash redirects only descriptors 0-9. The child proves it holds the descriptor and speaks on it: one raw XS_WRITE of
        // data/hello = "1" (type 11, req 1, tx 0, len 12) and a read of the 19-byte "OK" reply,
        // then it waits for its stdin to close.
        const string Script =
            "test -e /proc/self/fd/$QUBES_LOHV_FD || exit 3; " +
            "{ printf '\\013\\000\\000\\000\\001\\000\\000\\000\\000\\000\\000\\000\\014\\000\\000\\000'; printf 'data/hello'; printf '\\000'; printf '1'; } >&$QUBES_LOHV_FD || exit 4; " +
            "head -c 19 <&$QUBES_LOHV_FD >/dev/null || exit 5; " +
            "cat >/dev/null; exit 0";
        var psi = new ProcessStartInfo("/bin/bash") { RedirectStandardInput = true, UseShellExecute = false };
        psi.ArgumentList.Add("-c");
        psi.ArgumentList.Add(Script);
        using Process child = LoopbackPlatform.StartInDomain(connection, psi);
        Assert.Equal(Libc.FD_CLOEXEC, Libc.fcntl(connection.Fd, Libc.F_GETFD, 0) & Libc.FD_CLOEXEC); // close-on-exec again here
        connection.Dispose(); // from now on only the child keeps the domain alive

        string home = $"/local/domain/{id.ToString(CultureInfo.InvariantCulture)}";
        Assert.True(TestBroker.Eventually(() => watcher.Read(home + "/data/hello") == "1"), "child did not write through its connection; exited " + (child.HasExited ? child.ExitCode.ToString(CultureInfo.InvariantCulture) : "no"));
        Assert.True(t.Dom0.Domains.IsAlive(id));
        Assert.False(child.HasExited);

        child.StandardInput.Close();
        Assert.True(child.WaitForExit(10_000));
        Assert.Equal(0, child.ExitCode);
        Assert.True(TestBroker.WaitForEvent(watcher, (p, _) => p == StorePath.ReleaseDomain));
        Assert.False(t.Dom0.Domains.IsAlive(id));
        Assert.Null(watcher.Read(home + "/data/hello"));
    }
}
