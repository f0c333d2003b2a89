using System;
using System.IO;
using System.Net.Sockets;
using System.Threading;
using Qubes.Interop.Linux;
using Xunit;

namespace Qubes.Interop.Tests;

/// <summary>
/// UnixSocket.Listen: a socket's file appears only once it listens, so whoever waits for the file
/// (the supervisor, qubes up, the test harnesses) can connect at once.
/// </summary>
public sealed class UnixSocketTests : IDisposable
{
    private readonly string _directory = Directory.CreateTempSubdirectory("unixsocket-test-").FullName;

    public void Dispose() => Directory.Delete(_directory, recursive: true);

    /// <summary>Waits for <paramref name="path"/> to appear, connects at once; returns the errno (None on success).</summary>
    private static Errno ConnectAsSoonAsItAppears(string path)
    {
        while (!File.Exists(path))
        {
            Thread.SpinWait(1);
        }
        using SafeFd? fd = UnixSocket.TryConnect(path, out Errno error);
        return error;
    }

    [Fact]
    public void A_bound_socket_that_does_not_listen_yet_refuses_whoever_saw_its_file()
    {
        string path = Path.Combine(_directory, "plain.sock");
        Errno seen = Errno.None;
        Thread watcher = new(() => seen = ConnectAsSoonAsItAppears(path));
        watcher.Start();
        using Socket socket = new(AddressFamily.Unix, SocketType.Stream, ProtocolType.Unspecified);
        socket.Bind(new UnixDomainSocketEndPoint(path));
        Assert.True(watcher.Join(TimeSpan.FromSeconds(10)));
        socket.Listen(1);
        Assert.Equal(Errno.ECONNREFUSED, seen);
    }

    [Fact]
    public void The_file_appears_only_once_the_socket_listens()
    {
        string path = Path.Combine(_directory, "staged.sock");
        for (int i = 0; i < 300; i++)
        {
            File.Delete(path);
            Errno seen = Errno.EINVAL;
            Thread watcher = new(() => seen = ConnectAsSoonAsItAppears(path));
            watcher.Start();
            using SafeFd listener = UnixSocket.Listen(path, 4);
            Assert.True(watcher.Join(TimeSpan.FromSeconds(10)));
            Assert.Equal(Errno.None, seen);
        }
        Assert.Equal("staged.sock", Path.GetFileName(Assert.Single(Directory.GetFiles(_directory))));
    }

    [Fact]
    public void A_stale_file_is_replaced_and_a_name_too_long_is_refused_before_anything_is_made()
    {
        string path = Path.Combine(_directory, "stale.sock");
        File.WriteAllText(path, "left over");
        using (SafeFd listener = UnixSocket.Listen(path, 1))
        {
            using SafeFd? client = UnixSocket.TryConnect(path, out Errno error);
            Assert.Equal(Errno.None, error);
        }
        string tooLong = Path.Combine(_directory, new string('s', 110));
        Assert.Throws<ArgumentException>(() => UnixSocket.Listen(tooLong, 1));
        Assert.Equal("stale.sock", Path.GetFileName(Assert.Single(Directory.GetFiles(_directory))));
    }
}
