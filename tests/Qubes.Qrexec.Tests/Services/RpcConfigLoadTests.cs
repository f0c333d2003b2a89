using System.IO;
using Qubes.Qrexec.Services;
using Xunit;

namespace Qubes.Qrexec.Tests.Services;

public sealed class RpcConfigLoadTests
{
    [Fact]
    public void No_file_gives_the_defaults()
    {
        using var t = new ServiceTestDirectory();
        string a = t.Dir("a");

        RpcConfigResult result = RpcConfig.Load("svc+arg", "svc", a);
        Assert.True(result.IsSuccess);
        Assert.Same(RpcConfig.Default, result.Config);
        Assert.Null(result.Path);
        Assert.Null(result.Error);
        Assert.Equal(0, result.ExitCode);
    }

    [Fact]
    public void The_full_name_in_a_later_directory_wins_over_the_bare_name()
    {
        using var t = new ServiceTestDirectory();
        string a = t.Dir("a");
        string b = t.Dir("b");
        t.PlainFile(a, "svc", "force-user = 'bare'\n");
        string full = t.PlainFile(b, "svc+arg", "force-user = 'full'\n");

        RpcConfigResult result = RpcConfig.Load("svc+arg", "svc", a + ":" + b);
        Assert.True(result.IsSuccess);
        Assert.Equal("full", result.Config.ForceUser);
        Assert.Equal(full, result.Path);
    }

    [Fact]
    public void The_first_directory_wins_and_the_bare_name_is_the_fallback()
    {
        using var t = new ServiceTestDirectory();
        string a = t.Dir("a");
        string b = t.Dir("b");
        t.PlainFile(a, "svc", "wait-for-session = 1\n");
        t.PlainFile(b, "svc", "wait-for-session = 0\n");

        RpcConfigResult result = RpcConfig.Load("svc+other", "svc", "::" + a + ":" + b);
        Assert.True(result.IsSuccess);
        Assert.True(result.Config.WaitForSession);
        Assert.Equal(Path.Combine(a, "svc"), result.Path);
    }

    [Fact]
    public void A_file_that_does_not_parse_fails_with_125()
    {
        using var t = new ServiceTestDirectory();
        string a = t.Dir("a");
        string bad = t.PlainFile(a, "svc+", "wait-for-session = \"yes\"\n");
        t.PlainFile(t.Dir("b"), "svc+", "wait-for-session = true\n");

        RpcConfigResult result = RpcConfig.Load("svc+", "svc", a + ":" + Path.Combine(t.Root, "b"));
        Assert.False(result.IsSuccess);
        Assert.Null(result.Config);
        Assert.Equal(bad, result.Path);
        Assert.Contains("line 1", result.Error);
        Assert.Equal(125, result.ExitCode);
    }

    [Fact]
    public void A_file_that_cannot_be_read_fails_with_125()
    {
        using var t = new ServiceTestDirectory();
        string a = t.Dir("a");
        Directory.CreateDirectory(Path.Combine(a, "svc+"));

        RpcConfigResult result = RpcConfig.Load("svc+", "svc", a);
        Assert.False(result.IsSuccess);
        Assert.Equal(125, result.ExitCode);
        Assert.NotNull(result.Error);
    }

    [Fact]
    public void A_dangling_symlink_counts_as_absent()
    {
        using var t = new ServiceTestDirectory();
        string a = t.Dir("a");
        t.Symlink(a, "svc+", Path.Combine(t.Root, "missing"));
        string real = t.PlainFile(a, "svc", "exit-on-client-eof = true\n");

        RpcConfigResult result = RpcConfig.Load("svc+", "svc", a);
        Assert.True(result.IsSuccess);
        Assert.True(result.Config.ExitOnClientEof);
        Assert.Equal(real, result.Path);
    }

    [Fact]
    public void A_symlink_to_a_file_is_read()
    {
        using var t = new ServiceTestDirectory();
        string a = t.Dir("a");
        string target = t.PlainFile(t.Dir("real"), "conf", "skip-service-descriptor = true\n");
        t.Symlink(a, "svc+", target);

        RpcConfigResult result = RpcConfig.Load("svc+", "svc", a);
        Assert.True(result.IsSuccess);
        Assert.True(result.Config.SkipServiceDescriptor);
    }

    [Fact]
    public void A_stat_error_other_than_enoent_fails()
    {
        using var t = new ServiceTestDirectory();
        string file = t.PlainFile(t.Root, "file");

        RpcConfigResult result = RpcConfig.Load("svc+", "svc", file);
        Assert.False(result.IsSuccess);
        Assert.Equal(125, result.ExitCode);
    }

    [Fact]
    public void A_path_longer_than_1023_bytes_fails()
    {
        string directory = "/nonexistent-qrexec-test/" + new string('d', 250) + "/" + new string('e', 250) + "/"
            + new string('f', 250) + "/" + new string('g', 250);
        RpcConfigResult result = RpcConfig.Load("svc+", "svc", directory);
        Assert.False(result.IsSuccess);
        Assert.Equal(125, result.ExitCode);
    }

    [Fact]
    public void A_null_path_uses_the_default_config_path()
    {
        RpcConfigResult result = RpcConfig.Load("qubes.NoSuchServiceForTests+x", "qubes.NoSuchServiceForTests", null);
        Assert.True(result.IsSuccess);
        Assert.Same(RpcConfig.Default, result.Config);
        Assert.Equal(
            ["/run/qubes/rpc-config", "/usr/local/etc/qubes/rpc-config", "/etc/qubes/rpc-config"],
            FileSearch.SplitPathList(QrexecProtocol.DefaultConfigPath).ToArray());
    }
}
