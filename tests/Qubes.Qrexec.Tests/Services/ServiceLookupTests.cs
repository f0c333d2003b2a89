using System.IO;
using Qubes.Qrexec.Services;
using Xunit;

namespace Qubes.Qrexec.Tests.Services;

public sealed class ServiceLookupTests
{
    private static string PathList(params string[] directories) => string.Join(':', directories);

    [Fact]
    public void The_full_name_in_a_later_directory_wins_over_the_bare_name_in_an_earlier_one()
    {
        using var t = new ServiceTestDirectory();
        string a = t.Dir("a");
        string b = t.Dir("b");
        t.Executable(a, "qubes.Svc");
        string full = t.Executable(b, "qubes.Svc+arg");

        ServiceLocation location = ServiceLookup.Find("qubes.Svc+arg", "qubes.Svc", PathList(a, b));
        Assert.Equal(ServiceKind.Executable, location.Kind);
        Assert.Equal(full, location.Path);
        Assert.Equal(0, location.ExitCode);
    }

    [Fact]
    public void Directories_are_searched_in_order()
    {
        using var t = new ServiceTestDirectory();
        string a = t.Dir("a");
        string b = t.Dir("b");
        string first = t.Executable(a, "svc+");
        t.Executable(b, "svc+");

        Assert.Equal(first, ServiceLookup.Find("svc+", "svc", PathList(a, b)).Path);
        Assert.Equal(Path.Combine(b, "svc+"), ServiceLookup.Find("svc+", "svc", PathList(b, a)).Path);
    }

    [Fact]
    public void The_bare_name_is_found_when_no_directory_has_the_full_name()
    {
        using var t = new ServiceTestDirectory();
        string a = t.Dir("a");
        string b = t.Dir("b");
        string bare = t.Executable(b, "svc");

        ServiceLocation location = ServiceLookup.Find("svc+arg", "svc", PathList(a, b));
        Assert.Equal(ServiceKind.Executable, location.Kind);
        Assert.Equal(bare, location.Path);
    }

    [Fact]
    public void A_missing_service_is_not_found_with_127()
    {
        using var t = new ServiceTestDirectory();
        string a = t.Dir("a");
        t.Executable(a, "other");

        ServiceLocation location = ServiceLookup.Find("svc+arg", "svc", PathList(a, Path.Combine(t.Root, "missing-dir")));
        Assert.Equal(ServiceKind.NotFound, location.Kind);
        Assert.Null(location.Path);
        Assert.Equal(127, location.ExitCode);
    }

    [Fact]
    public void Empty_path_components_are_skipped()
    {
        using var t = new ServiceTestDirectory();
        string a = t.Dir("a");
        string found = t.Executable(a, "svc");

        Assert.Equal(found, ServiceLookup.Find("svc+", "svc", "::" + a + "::").Path);
        Assert.Equal(ServiceKind.NotFound, ServiceLookup.Find("svc+", "svc", ":::").Kind);
        Assert.Equal(ServiceKind.NotFound, ServiceLookup.Find("svc+", "svc", string.Empty).Kind);
    }

    [Fact]
    public void A_null_path_uses_the_default_path()
    {
        Assert.Equal(
            ServiceKind.NotFound,
            ServiceLookup.Find("qubes.NoSuchServiceForTests+x", "qubes.NoSuchServiceForTests", null).Kind);
        Assert.Equal(
            ["/run/qubes-rpc", "/usr/local/etc/qubes-rpc", "/etc/qubes-rpc"],
            FileSearch.SplitPathList(QrexecProtocol.DefaultServicePath).ToArray());
    }

    [Fact]
    public void A_dangling_symlink_counts_as_absent()
    {
        using var t = new ServiceTestDirectory();
        string a = t.Dir("a");
        string b = t.Dir("b");
        t.Symlink(a, "svc+arg", Path.Combine(t.Root, "nowhere"));
        string real = t.Executable(b, "svc+arg");

        Assert.Equal(real, ServiceLookup.Find("svc+arg", "svc", PathList(a, b)).Path);
        Assert.Equal(ServiceKind.NotFound, ServiceLookup.Find("svc+arg", "svc", a).Kind);
    }

    [Fact]
    public void A_symlink_to_an_executable_is_an_executable_at_the_link_path()
    {
        using var t = new ServiceTestDirectory();
        string a = t.Dir("a");
        string target = t.Executable(t.Dir("real"), "impl");
        string link = t.Symlink(a, "svc", target);

        ServiceLocation location = ServiceLookup.Find("svc+", "svc", a);
        Assert.Equal(ServiceKind.Executable, location.Kind);
        Assert.Equal(link, location.Path);
    }

    [Fact]
    public void A_symlink_loop_is_a_failure()
    {
        using var t = new ServiceTestDirectory();
        string a = t.Dir("a");
        t.Symlink(a, "svc+", Path.Combine(a, "loop"));
        t.Symlink(a, "loop", Path.Combine(a, "svc+"));

        ServiceLocation location = ServiceLookup.Find("svc+", "svc", a);
        Assert.Equal(ServiceKind.Failure, location.Kind);
        Assert.Equal(125, location.ExitCode);
        Assert.NotNull(location.Error);
    }

    [Fact]
    public void A_stat_error_other_than_enoent_is_a_failure_and_stops_the_search()
    {
        using var t = new ServiceTestDirectory();
        string notADirectory = t.PlainFile(t.Root, "file");
        string b = t.Dir("b");
        t.Executable(b, "svc+");

        // stat("<file>/svc+") fails with ENOTDIR
        ServiceLocation location = ServiceLookup.Find("svc+", "svc", PathList(notADirectory, b));
        Assert.Equal(ServiceKind.Failure, location.Kind);
        Assert.Equal(125, location.ExitCode);
        Assert.Contains("errno 20", location.Error);
    }

    [Fact]
    public void A_unix_socket_is_a_socket_service()
    {
        using var t = new ServiceTestDirectory();
        string a = t.Dir("a");
        string socket = t.UnixSocket(a, "svc+arg");

        ServiceLocation location = ServiceLookup.Find("svc+arg", "svc", a);
        Assert.Equal(ServiceKind.Socket, location.Kind);
        Assert.Equal(socket, location.Path);
        Assert.Equal(0, location.ExitCode);
    }

    [Fact]
    public void A_symlink_to_a_unix_socket_is_a_socket_service()
    {
        using var t = new ServiceTestDirectory();
        string a = t.Dir("a");
        string socket = t.UnixSocket(t.Dir("s"), "sock");
        string link = t.Symlink(a, "svc", socket);

        ServiceLocation location = ServiceLookup.Find("svc+", "svc", a);
        Assert.Equal(ServiceKind.Socket, location.Kind);
        Assert.Equal(link, location.Path);
    }

    [Fact]
    public void A_file_that_is_not_executable_is_a_failure_without_falling_back()
    {
        using var t = new ServiceTestDirectory();
        string a = t.Dir("a");
        string b = t.Dir("b");
        string plain = t.PlainFile(a, "svc+arg", "#!/bin/sh\n");
        t.Executable(b, "svc");

        ServiceLocation location = ServiceLookup.Find("svc+arg", "svc", PathList(a, b));
        Assert.Equal(ServiceKind.Failure, location.Kind);
        Assert.Equal(plain, location.Path);
        Assert.Equal(125, location.ExitCode);
    }

    [Fact]
    public void Group_or_other_execute_bits_count_only_as_access_allows()
    {
        using var t = new ServiceTestDirectory();
        string a = t.Dir("a");
        string path = t.PlainFile(a, "svc");
        ServiceTestDirectory.SetMode(path, UnixFileMode.UserRead | UnixFileMode.OtherExecute);

        // access(X_OK) succeeds for root with any execute bit, and for the owner only with its own bit.
        bool expected = System.Environment.IsPrivilegedProcess;
        Assert.Equal(expected ? ServiceKind.Executable : ServiceKind.Failure, ServiceLookup.Find("svc+", "svc", a).Kind);
    }

    [Fact]
    public void A_directory_is_a_failure()
    {
        using var t = new ServiceTestDirectory();
        string a = t.Dir("a");
        Directory.CreateDirectory(Path.Combine(a, "svc+"));

        ServiceLocation location = ServiceLookup.Find("svc+", "svc", a);
        Assert.Equal(ServiceKind.Failure, location.Kind);
    }

    [Fact]
    public void A_path_longer_than_1023_bytes_is_a_failure()
    {
        // Components stay below NAME_MAX and the first one does not exist, so a path that fits
        // gives ENOENT (not found) rather than ENAMETOOLONG.
        string prefix = "/nonexistent-qrexec-test/" + new string('d', 200) + "/" + new string('e', 200) + "/"
            + new string('f', 200) + "/" + new string('g', 200);
        string name = "svc";
        int room = 1023 - prefix.Length - 1 - name.Length;
        string directory = prefix + "/" + new string('h', room - 1);
        Assert.Equal(1023, (directory + "/" + name).Length);

        Assert.Equal(ServiceKind.NotFound, ServiceLookup.Find(name, name, directory).Kind);

        ServiceLocation tooLong = ServiceLookup.Find(name, name, directory + "h");
        Assert.Equal(ServiceKind.Failure, tooLong.Kind);
        Assert.Equal(125, tooLong.ExitCode);
        Assert.Contains("1024", tooLong.Error);
    }

    [Fact]
    public void The_length_limit_counts_utf8_bytes()
    {
        string directory = "/nonexistent-qrexec-test/" + new string('\u00e9', 120) + "/" + new string('\u00e9', 120)
            + "/" + new string('\u00e9', 120) + "/" + new string('\u00e9', 120) + "/" + new string('\u00e9', 30);
        Assert.True(directory.Length < 1000);
        Assert.Equal(ServiceKind.Failure, ServiceLookup.Find("svc+", "svc", directory).Kind);
    }

    [Fact]
    public void A_name_with_a_nul_byte_is_a_failure()
    {
        using var t = new ServiceTestDirectory();
        Assert.Equal(ServiceKind.Failure, ServiceLookup.Find("svc\0+", "svc\0", t.Root).Kind);
    }

    [Fact]
    public void A_link_to_dev_tcp_host_port_is_a_tcp_service()
    {
        using var t = new ServiceTestDirectory();
        string a = t.Dir("a");
        string link = t.Symlink(a, "svc", "/dev/tcp/127.0.0.1/8080");

        ServiceLocation location = ServiceLookup.Find("svc+", "svc", a);
        Assert.Equal(ServiceKind.Tcp, location.Kind);
        Assert.Equal(link, location.Path);
        Assert.Equal("127.0.0.1", location.Host);
        Assert.Equal(8080, location.Port);
        Assert.Equal(0, location.ExitCode);
    }

    [Fact]
    public void A_link_to_dev_tcp_host_port_refuses_an_argument()
    {
        using var t = new ServiceTestDirectory();
        string a = t.Dir("a");
        t.Symlink(a, "svc", "/dev/tcp/127.0.0.1/8080");

        ServiceLocation location = ServiceLookup.Find("svc+x", "svc", a);
        Assert.Equal(ServiceKind.Failure, location.Kind);
        Assert.Equal(125, location.ExitCode);
    }

    [Fact]
    public void A_link_to_dev_tcp_host_takes_the_port_from_the_argument()
    {
        using var t = new ServiceTestDirectory();
        string a = t.Dir("a");
        t.Symlink(a, "svc", "/dev/tcp/::1");

        ServiceLocation location = ServiceLookup.Find("svc+22", "svc", a);
        Assert.Equal(ServiceKind.Tcp, location.Kind);
        Assert.Equal("::1", location.Host);
        Assert.Equal(22, location.Port);

        Assert.Equal(ServiceKind.Failure, ServiceLookup.Find("svc+", "svc", a).Kind);
    }

    [Fact]
    public void A_link_to_dev_tcp_takes_host_and_port_from_the_argument()
    {
        using var t = new ServiceTestDirectory();
        string a = t.Dir("a");
        t.Symlink(a, "svc", "/dev/tcp");

        ServiceLocation v4 = ServiceLookup.Find("svc+10.0.0.1+443", "svc", a);
        Assert.Equal(ServiceKind.Tcp, v4.Kind);
        Assert.Equal("10.0.0.1", v4.Host);
        Assert.Equal(443, v4.Port);

        ServiceLocation v6 = ServiceLookup.Find("svc+fe80++1+80", "svc", a);
        Assert.Equal(ServiceKind.Tcp, v6.Kind);
        Assert.Equal("fe80::1", v6.Host);
        Assert.Equal(80, v6.Port);

        Assert.Equal(ServiceKind.Failure, ServiceLookup.Find("svc+10.0.0.1", "svc", a).Kind);
    }

    [Fact]
    public void A_full_name_link_to_dev_tcp_is_found_before_the_bare_name()
    {
        using var t = new ServiceTestDirectory();
        string a = t.Dir("a");
        string b = t.Dir("b");
        t.Executable(a, "svc");
        string link = t.Symlink(b, "svc+arg", "/dev/tcp/192.168.1.1/25");

        ServiceLocation location = ServiceLookup.Find("svc+arg", "svc", PathList(a, b));
        Assert.Equal(ServiceKind.Failure, location.Kind); // found, but the argument must be empty
        Assert.Equal(link, location.Path);
    }

    [Fact]
    public void A_link_that_only_starts_like_dev_tcp_is_an_ordinary_dangling_link()
    {
        using var t = new ServiceTestDirectory();
        string a = t.Dir("a");
        t.Symlink(a, "svc", "/dev/tcpx/127.0.0.1/80");

        Assert.Equal(ServiceKind.NotFound, ServiceLookup.Find("svc+", "svc", a).Kind);
    }

    [Theory]
    [InlineData("/dev/tcp/127.0.0.1/80", "", "127.0.0.1", 80)]
    [InlineData("/dev/tcp/127.0.0.1/65535", "", "127.0.0.1", 65535)]
    [InlineData("/dev/tcp/127.0.0.1/1", "", "127.0.0.1", 1)]
    [InlineData("/dev/tcp/::1/80", "", "::1", 80)]
    [InlineData("/dev/tcp/2001:db8::2", "8080", "2001:db8::2", 8080)]
    [InlineData("/dev/tcp/10.1.2.3", "22", "10.1.2.3", 22)]
    [InlineData("/dev/tcp", "127.0.0.1+80", "127.0.0.1", 80)]
    [InlineData("/dev/tcp", "++1+80", "::1", 80)]
    [InlineData("/dev/tcp", "2001+db8++7+9", "2001:db8::7", 9)]
    public void Valid_tcp_targets(string link, string argument, string host, int port)
    {
        Assert.True(ServiceLookup.TryParseTcpTarget(link, argument, out string? parsedHost, out int parsedPort, out string? error), error);
        Assert.Equal(host, parsedHost);
        Assert.Equal(port, parsedPort);
    }

    [Theory]
    [InlineData("/dev/tcp/127.0.0.1/80", "x")] // argument must be empty
    [InlineData("/dev/tcp/127.0.0.1", "")] // port argument required
    [InlineData("/dev/tcp/", "")] // empty host
    [InlineData("/dev/tcp/", "80")] // empty host
    [InlineData("/dev/tcp//80", "")] // empty host
    [InlineData("/dev/tcp", "+80")] // empty host
    [InlineData("/dev/tcp", "127.0.0.1")] // no '+'
    [InlineData("/dev/tcp", "")] // no '+'
    [InlineData("/dev/tcp", "127_0_0_1+80")] // '_' refused
    [InlineData("/dev/tcp", "fe80++1_+80")] // '_' refused
    [InlineData("/dev/tcp/127.0.0.1/0", "")] // port 0
    [InlineData("/dev/tcp/127.0.0.1/65536", "")] // port too large
    [InlineData("/dev/tcp/127.0.0.1/080", "")] // leading zero
    [InlineData("/dev/tcp/127.0.0.1/00", "")] // leading zero
    [InlineData("/dev/tcp/127.0.0.1/", "")] // empty port
    [InlineData("/dev/tcp/127.0.0.1/8a", "")] // not decimal
    [InlineData("/dev/tcp/127.0.0.1/+80", "")] // sign
    [InlineData("/dev/tcp/127.0.0.1/1000000", "")] // too many digits
    [InlineData("/dev/tcp/127.0.0.1/80/x", "")] // junk after the port
    [InlineData("/dev/tcp/localhost/80", "")] // not numeric
    [InlineData("/dev/tcp/[::1]/80", "")] // brackets are not a numeric address
    [InlineData("/dev/tcp/1.2.3.4 /80", "")] // blank
    [InlineData("/dev/tcp/:::/80", "")] // not an address
    [InlineData("/dev/tcp", "localhost+80")] // not numeric
    [InlineData("/dev/tcp", "127.0.0.1+0")] // port 0
    [InlineData("/dev/tcp", "127.0.0.1+")] // empty port
    [InlineData("/dev/tcpx", "127.0.0.1+80")] // not a tcp link
    public void Invalid_tcp_targets(string link, string argument)
    {
        Assert.False(ServiceLookup.TryParseTcpTarget(link, argument, out string? host, out int port, out string? error));
        Assert.Null(host);
        Assert.Equal(0, port);
        Assert.False(string.IsNullOrEmpty(error));
    }
}
