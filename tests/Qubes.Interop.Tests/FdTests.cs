using System;
using System.IO;
using System.Net.Sockets;
using Qubes.Interop.Linux;
using Xunit;

namespace Qubes.Interop.Tests;

/// <summary>Fd.HungUp on the accepted end of a Unix stream connection, for each way its client can end.</summary>
public sealed class FdTests : IDisposable
{
    private readonly string _directory = Directory.CreateTempSubdirectory("fd-test-").FullName;

    public void Dispose() => Directory.Delete(_directory, recursive: true);

    /// <summary>A connection through a listening socket, as a daemon accepts it: (client, server's end).</summary>
    private (Socket Client, Socket Server) Connect()
    {
        string path = Path.Combine(_directory, "s.sock");
        File.Delete(path);
        using Socket listener = new(AddressFamily.Unix, SocketType.Stream, ProtocolType.Unspecified);
        listener.Bind(new UnixDomainSocketEndPoint(path));
        listener.Listen(1);
        Socket client = new(AddressFamily.Unix, SocketType.Stream, ProtocolType.Unspecified);
        client.Connect(new UnixDomainSocketEndPoint(path));
        return (client, listener.Accept());
    }

    private static int ReadToEnd(Socket server)
    {
        byte[] buffer = new byte[64];
        int total = 0, n;
        while ((n = Fd.Read((int)server.Handle, buffer)) > 0)
        {
            total += n;
        }
        return n < 0 ? n : total;
    }

    [Fact]
    public void A_client_that_only_shut_down_its_write_side_has_not_hung_up_though_it_reads_at_end_of_file()
    {
        (Socket client, Socket server) = Connect();
        using (client)
        using (server)
        {
            Assert.Equal(0, Fd.HungUp((int)server.Handle));
            client.Send("request\0"u8);
            client.Shutdown(SocketShutdown.Send);
            Assert.Equal(8, ReadToEnd(server));
            Assert.Equal(1, Fd.PollIn((int)server.Handle, 0)); // readable (at EOF) for ever
            Assert.Equal(0, Fd.HungUp((int)server.Handle));
            Assert.Equal(Errno.None, Fd.WriteAll((int)server.Handle, "event"u8)); // and still there to be written to
            byte[] five = new byte[5];
            Assert.Equal(5, client.Receive(five));
        }
    }

    [Fact]
    public void A_client_that_closed_or_shut_down_both_directions_has_hung_up_and_writes_to_it_fail()
    {
        foreach (bool close in (bool[])[true, false])
        {
            (Socket client, Socket server) = Connect();
            using (client)
            using (server)
            {
                client.Send("request\0"u8);
                client.Shutdown(SocketShutdown.Send);
                Assert.Equal(8, ReadToEnd(server));
                if (close)
                {
                    client.Close();
                }
                else
                {
                    client.Shutdown(SocketShutdown.Both);
                }
                Assert.Equal(1, Fd.HungUp((int)server.Handle));
                Assert.Equal(Errno.EPIPE, Fd.WriteAll((int)server.Handle, "event"u8));
            }
        }
    }
}
