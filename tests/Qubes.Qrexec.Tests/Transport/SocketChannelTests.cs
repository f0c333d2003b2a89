using System;
using System.Buffers.Binary;
using System.Diagnostics;
using System.IO;
using System.Runtime.InteropServices;
using System.Security.Cryptography;
using System.Threading;
using System.Threading.Tasks;
using Qubes.Interop.Linux;
using Qubes.Qrexec.Transport;
using Qubes.Vchan;
using Xunit;

namespace Qubes.Qrexec.Tests.Transport;

/// <summary>The vchan-socket transport (spec vchan.md §8) against itself and raw sockets.</summary>
public sealed partial class SocketChannelTests : IDisposable
{
    private const int ServerDomain = 0;
    private const int ClientDomain = 5;
    private const int Port = 512;
    private static readonly TimeSpan s_timeout = TimeSpan.FromSeconds(10);

    private readonly string _directory;
    private readonly SocketChannelFactory _serverFactory;
    private readonly SocketChannelFactory _clientFactory;

    public SocketChannelTests()
    {
        _directory = Path.Combine(Path.GetTempPath(), "vchan-" + Guid.NewGuid().ToString("N")[..12]);
        Directory.CreateDirectory(_directory);
        _serverFactory = new SocketChannelFactory(_directory, ServerDomain);
        _clientFactory = new SocketChannelFactory(_directory, ClientDomain);
    }

    public void Dispose()
    {
        _serverFactory.Dispose();
        _clientFactory.Dispose();
        Directory.Delete(_directory, recursive: true);
    }

    private string ExpectedPath => Path.Combine(_directory, "vchan.0.5.512.sock");

    // ---- naming, connection set-up, states ----------------------------------------------------

    [Fact]
    public void Socket_path_is_dir_vchan_server_client_port_sock()
    {
        Assert.Equal("/var/run/vchan/vchan.0.12.513.sock", SocketChannelFactory.SocketPath("/var/run/vchan", 0, 12, 513));
        Assert.Equal("/d/vchan.-1.7.768.sock", SocketChannelFactory.SocketPath("/d", -1, 7, 768));
    }

    [Fact]
    public void Server_listens_on_local_peer_port_and_client_of_that_peer_connects()
    {
        using IQrexecChannel server = _serverFactory.Listen(ClientDomain, Port, 65536, 65536);
        Assert.True(File.Exists(ExpectedPath));
        Assert.Single(Directory.GetFiles(_directory));

        using IQrexecChannel? client = _clientFactory.Connect(ServerDomain, Port, s_timeout, out string? error);
        Assert.True(client is not null, error);
        Assert.Null(error);
        Assert.Equal(VchanState.Connected, client!.State);
        Assert.True(client.WaitConnected(TimeSpan.Zero));
        Assert.True(server.WaitConnected(s_timeout));

        Assert.Equal(3, client.Write("abc"u8));
        byte[] got = new byte[3];
        RecvWithin(server, got);
        Assert.Equal("abc"u8.ToArray(), got);
    }

    [Fact]
    public void States_go_waiting_connected_disconnected_and_the_file_stays()
    {
        IQrexecChannel server = _serverFactory.Listen(ClientDomain, Port, 1024, 1024);
        Assert.Equal(VchanState.Waiting, server.State);
        int listenerFd = server.Fd;
        Assert.True(listenerFd >= 0);
        Assert.Equal(Libc.POLLIN, server.PollEvents);
        server.Service();
        Assert.Equal(0, server.Ready());
        Assert.Equal(VchanState.Waiting, server.State);
        Assert.False(server.WaitConnected(TimeSpan.FromMilliseconds(50)));

        IQrexecChannel client = Connect();
        Assert.Equal(1, Fd.PollIn(server.Fd, 5000));
        server.Service();
        Assert.Equal(VchanState.Connected, server.State);
        Assert.NotEqual(listenerFd, server.Fd);
        Assert.Equal(Libc.POLLIN, server.PollEvents);
        Assert.True(File.Exists(ExpectedPath));

        client.Dispose();
        Assert.Equal(-1, client.Fd);
        Assert.Equal(VchanState.Disconnected, client.State);
        Assert.Equal(1, Fd.PollIn(server.Fd, 5000));
        server.Service();
        Assert.Equal(VchanState.Disconnected, server.State);
        server.Dispose();
        Assert.True(File.Exists(ExpectedPath));
    }

    [Fact]
    public void Writes_before_the_client_connects_are_delivered_after_accept()
    {
        using IQrexecChannel server = _serverFactory.Listen(ClientDomain, Port, 65536, 65536);
        byte[] early = RandomBytes(1000, 1);
        Assert.Equal(1000, server.Write(early));
        Assert.Equal(4, server.Send("tail"u8));
        Assert.Equal(65536 - 1004, server.Space());
        Assert.Equal(Libc.POLLIN, server.PollEvents);

        using IQrexecChannel client = Connect();
        // the poller sees the listening socket readable; Service accepts and flushes
        Assert.Equal(1, Fd.PollIn(server.Fd, 5000));
        server.Service();
        Assert.Equal(VchanState.Connected, server.State);
        Assert.Equal(65536, server.Space());

        byte[] got = new byte[1004];
        RecvWithin(client, got);
        Assert.Equal(early, got[..1000]);
        Assert.Equal("tail"u8.ToArray(), got[1000..]);
    }

    [Fact]
    public void Server_accepts_exactly_one_connection()
    {
        using IQrexecChannel server = _serverFactory.Listen(ClientDomain, Port, 65536, 65536);
        using IQrexecChannel first = Connect();
        // a second client queued in the backlog before the accept
        using SafeFd? second = UnixSocket.TryConnect(ExpectedPath, out Errno secondError);
        Assert.True(second is not null, secondError.ToString());

        Assert.True(server.WaitConnected(s_timeout));
        Assert.Equal(5, server.Write("hello"u8));
        byte[] got = new byte[5];
        RecvWithin(first, got);
        Assert.Equal("hello"u8.ToArray(), got);
        Assert.Equal(2, first.Write("hi"u8));
        RecvWithin(server, got.AsSpan(0, 2));

        // the queued one is never served: no byte ever arrives on it (EOF or reset at most)
        Assert.Equal(5, server.Write("again"u8));
        Stopwatch watch = Stopwatch.StartNew();
        byte[] probe = new byte[16];
        while (watch.ElapsedMilliseconds < 300)
        {
            if (Fd.PollIn(second!.Fd, 50) != 0)
            {
                int n = Fd.Read(second.Fd, probe);
                Assert.True(n <= 0, $"the second client received {n} bytes");
                break;
            }
        }

        // a later client is refused for good
        IQrexecChannel? third = _clientFactory.Connect(ServerDomain, Port, TimeSpan.FromMilliseconds(200), out string? error);
        Assert.Null(third);
        Assert.Contains("timed out", error);

        RecvWithin(first, got);
        Assert.Equal("again"u8.ToArray(), got);
    }

    [Fact]
    public async Task Client_retries_until_the_server_appears_replacing_a_stale_file()
    {
        // a stale socket file nobody listens on: connect gets ECONNREFUSED
        SafeFd stale = UnixSocket.Listen(ExpectedPath, 1);
        stale.Dispose();
        Assert.True(File.Exists(ExpectedPath));

        Task<IQrexecChannel?> connecting = Task.Run(() => _clientFactory.Connect(ServerDomain, Port, s_timeout, out _));
        Thread.Sleep(150);
        Assert.False(connecting.IsCompleted);

        using IQrexecChannel server = _serverFactory.Listen(ClientDomain, Port, 65536, 65536);
        using IQrexecChannel? client = await connecting.WaitAsync(s_timeout);
        Assert.NotNull(client);
        Assert.True(server.WaitConnected(s_timeout));
        Assert.Equal(3, server.Send("xyz"u8));
        byte[] got = new byte[3];
        RecvWithin(client!, got);
        Assert.Equal("xyz"u8.ToArray(), got);
    }

    [Fact]
    public async Task Client_retries_while_the_directory_does_not_exist_yet()
    {
        string directory = Path.Combine(_directory, "later");
        SocketChannelFactory client = new(directory, ClientDomain);
        SocketChannelFactory server = new(directory, ServerDomain);
        Task<IQrexecChannel?> connecting = Task.Run(() => client.Connect(ServerDomain, Port, s_timeout, out _));
        Thread.Sleep(100);
        Assert.False(connecting.IsCompleted);
        Directory.CreateDirectory(directory);
        using IQrexecChannel listening = server.Listen(ClientDomain, Port, 0, 0);
        using IQrexecChannel? connected = await connecting.WaitAsync(s_timeout);
        Assert.NotNull(connected);
        Assert.True(listening.WaitConnected(s_timeout));
    }

    [Fact]
    public void Connect_times_out_without_a_server()
    {
        Stopwatch watch = Stopwatch.StartNew();
        IQrexecChannel? client = _clientFactory.Connect(ServerDomain, Port, TimeSpan.FromMilliseconds(100), out string? error);
        Assert.Null(client);
        Assert.True(watch.ElapsedMilliseconds >= 90, watch.ElapsedMilliseconds.ToString(System.Globalization.CultureInfo.InvariantCulture));
        Assert.Contains("timed out", error);
    }

    [Fact]
    public void Connect_fails_at_once_on_other_errors()
    {
        string notADirectory = Path.Combine(_directory, "file");
        File.WriteAllText(notADirectory, "x");
        SocketChannelFactory factory = new(notADirectory, ClientDomain);
        Stopwatch watch = Stopwatch.StartNew();
        IQrexecChannel? client = factory.Connect(ServerDomain, Port, s_timeout, out string? error);
        Assert.Null(client);
        Assert.Contains("ENOTDIR", error);
        Assert.True(watch.ElapsedMilliseconds < 2000);
    }

    [Fact]
    public void WaitConnected_times_out_without_a_client()
    {
        using IQrexecChannel server = _serverFactory.Listen(ClientDomain, Port, 0, 0);
        Stopwatch watch = Stopwatch.StartNew();
        Assert.False(server.WaitConnected(TimeSpan.FromMilliseconds(100)));
        Assert.True(watch.ElapsedMilliseconds >= 90);
        Assert.Equal(VchanState.Waiting, server.State);
    }

    // ---- data ---------------------------------------------------------------------------------

    [Fact]
    public async Task Several_MiB_both_directions_at_once_arrive_byte_exact()
    {
        const int Size = 6 * 1024 * 1024;
        using IQrexecChannel server = _serverFactory.Listen(ClientDomain, Port, 65536, 65536);
        using IQrexecChannel client = Connect();
        byte[] toClient = RandomBytes(Size, 11);
        byte[] toServer = RandomBytes(Size, 12);
        byte[] atClient = new byte[Size];
        byte[] atServer = new byte[Size];

        Task serverSide = Task.Factory.StartNew(() => Pump(server, toClient, atServer, 21), TaskCreationOptions.LongRunning);
        Task clientSide = Task.Factory.StartNew(() => Pump(client, toServer, atClient, 22), TaskCreationOptions.LongRunning);
        await Task.WhenAll(serverSide, clientSide).WaitAsync(TimeSpan.FromSeconds(60));

        Assert.Equal(SHA256.HashData(toClient), SHA256.HashData(atClient));
        Assert.Equal(SHA256.HashData(toServer), SHA256.HashData(atServer));
        Assert.True(toClient.AsSpan().SequenceEqual(atClient));
        Assert.True(toServer.AsSpan().SequenceEqual(atServer));
    }

    /// <summary>One side of the bulk test: non-blocking, poll-driven, random sizes through all four calls.</summary>
    private static unsafe void Pump(IQrexecChannel channel, byte[] send, byte[] receive, int seed)
    {
        Random random = new(seed);
        int sent = 0;
        int received = 0;
        Stopwatch watch = Stopwatch.StartNew();
        while (sent < send.Length || received < receive.Length || ((SocketChannel)channel).PendingOutput > 0)
        {
            Assert.True(watch.Elapsed < TimeSpan.FromSeconds(50), $"stalled at sent {sent}, received {received}");
            Libc.pollfd pfd = new() { fd = channel.Fd, events = channel.PollEvents };
            Libc.poll(&pfd, 1, 100);
            channel.Service();

            while (sent < send.Length)
            {
                int size = Math.Min(random.Next(1, 70_000), send.Length - sent);
                int n = random.Next(2) == 0
                    ? channel.Write(send.AsSpan(sent, size))
                    : channel.Send(send.AsSpan(sent, Math.Min(size, channel.Space())));
                Assert.True(n >= 0);
                if (n == 0)
                {
                    break;
                }
                sent += n;
            }
            while (received < receive.Length)
            {
                int size = Math.Min(random.Next(1, 70_000), receive.Length - received);
                int n;
                if (random.Next(2) == 0)
                {
                    n = channel.Read(receive.AsSpan(received, size));
                }
                else
                {
                    size = Math.Min(size, channel.Ready());
                    n = size == 0 ? 0 : channel.Recv(receive.AsSpan(received, size));
                }
                Assert.True(n >= 0);
                if (n == 0)
                {
                    break;
                }
                received += n;
            }
        }
    }

    [Fact]
    public void Peer_eof_disconnects_and_received_data_stays_readable()
    {
        using IQrexecChannel server = _serverFactory.Listen(ClientDomain, Port, 0, 0);
        IQrexecChannel client = Connect();
        Assert.True(server.WaitConnected(s_timeout));
        byte[] data = RandomBytes(100, 3);
        Assert.Equal(100, client.Send(data));
        client.Dispose();

        WaitUntil(server, () => server.State == VchanState.Disconnected);
        Assert.Equal(100, server.Ready());
        Assert.Equal(-1, server.Recv(new byte[101]));
        byte[] got = new byte[100];
        Assert.Equal(60, server.Read(got.AsSpan(0, 60)));
        Assert.Equal(40, server.Recv(got.AsSpan(60, 40)));
        Assert.Equal(data, got);
        Assert.Equal(-1, server.Read(got));
        Assert.Equal(-1, server.Recv(got.AsSpan(0, 1)));
        Assert.Equal(-1, server.Write("x"u8));
        Assert.Equal(-1, server.Send("x"u8));
        Assert.Equal(int.MinValue, server.ReceiveToFd(1, 1));
        server.Blocking = true;
        Assert.Equal(-1, server.Read(got));
        Assert.Equal(-1, server.Write("x"u8));
        Assert.Equal(VchanState.Disconnected, server.State);
    }

    [Fact]
    public void Peer_reset_disconnects_and_received_data_stays_readable()
    {
        using IQrexecChannel server = _serverFactory.Listen(ClientDomain, Port, 0, 0);
        IQrexecChannel client = Connect();
        Assert.True(server.WaitConnected(s_timeout));
        Assert.Equal(5, client.Send("12345"u8));
        WaitUntil(server, () => server.Ready() == 5);
        // the client closes with unread bytes: the server sees ECONNRESET, not EOF
        Assert.Equal(3, server.Send("abc"u8));
        client.Dispose();

        WaitUntil(server, () => server.State == VchanState.Disconnected);
        byte[] got = new byte[5];
        Assert.Equal(5, server.Read(got));
        Assert.Equal("12345"u8.ToArray(), got);
        Assert.Equal(-1, server.Read(got));
    }

    [Fact]
    public void Write_to_a_closed_peer_disconnects()
    {
        using IQrexecChannel server = _serverFactory.Listen(ClientDomain, Port, 0, 0);
        IQrexecChannel client = Connect();
        Assert.True(server.WaitConnected(s_timeout));
        client.Dispose();
        // no read first: the send itself meets EPIPE
        Assert.Equal(-1, server.Write("x"u8));
        Assert.Equal(VchanState.Disconnected, server.State);
        Assert.Equal(0, ((SocketChannel)server).PendingOutput);
        Assert.Equal(-1, server.Write("x"u8));
    }

    [Fact]
    public void Poll_events_follow_the_local_buffers()
    {
        using IQrexecChannel server = _serverFactory.Listen(ClientDomain, Port, 0, 0);
        using IQrexecChannel client = Connect();
        Assert.True(server.WaitConnected(s_timeout));
        Assert.Equal(Libc.POLLIN, server.PollEvents);

        // fill the client's incoming buffer; a full buffer stops asking for POLLIN
        byte[] block = new byte[1_000_000];
        int written = 0;
        while (written < block.Length)
        {
            int n = server.Write(block.AsSpan(written));
            Assert.True(n >= 0);
            if (n == 0)
            {
                break;
            }
            written += n;
        }
        Assert.True(((SocketChannel)server).PendingOutput > 0);
        Assert.Equal(Libc.POLLIN | Libc.POLLOUT, server.PollEvents);
        Assert.Equal(SocketChannel.DefaultBufferSize, client.Ready());
        Assert.Equal(0, client.PollEvents);
        Assert.Equal(10, client.Read(new byte[10]));
        Assert.Equal(Libc.POLLIN, client.PollEvents);
    }

    [Fact]
    public void Skip_discards_ready_bytes()
    {
        using IQrexecChannel server = _serverFactory.Listen(ClientDomain, Port, 0, 0);
        using IQrexecChannel client = Connect();
        Assert.True(server.WaitConnected(s_timeout));
        Assert.Equal(6, client.Send("abcdef"u8));
        WaitUntil(server, () => server.Ready() == 6);
        Assert.Equal(4, server.Skip(4));
        Assert.Equal(2, server.Skip(100));
        Assert.Equal(0, server.Skip(1));
        Assert.Equal(0, server.Ready());
    }

    [Fact]
    public async Task Blocking_send_and_recv_wait_through_accept_and_for_large_buffers()
    {
        const int Large = 300_000;
        byte[] big = RandomBytes(Large, 7);
        using IQrexecChannel server = _serverFactory.Listen(ClientDomain, Port, 0, 0);
        server.Blocking = true;
        Task<byte[]> serverSide = Task.Run(() =>
        {
            byte[] hello = new byte[8];
            Assert.Equal(8, server.Recv(hello));
            Assert.Equal(Large, server.Send(big));
            byte[] back = new byte[Large];
            Assert.Equal(Large, server.Recv(back));
            return back;
        });

        Thread.Sleep(50);
        using IQrexecChannel client = Connect();
        client.Blocking = true;
        Assert.Equal(8, client.Send("hello!!!"u8));
        byte[] got = new byte[Large];
        Assert.Equal(Large, client.Recv(got));
        Assert.Equal(big, got);
        Assert.Equal(Large, client.Write(got));
        // a blocking write leaves nothing behind in the local buffer: the peer needs no more calls here
        Assert.Equal(0, ((SocketChannel)client).PendingOutput);
        Assert.Equal(big, await serverSide.WaitAsync(s_timeout));

        // blocking Read returns what is there, at least one byte
        Assert.Equal(2, server.Send("ok"u8));
        byte[] buffer = new byte[100];
        int n = client.Read(buffer);
        Assert.InRange(n, 1, 2);
    }

    [Fact]
    public async Task Dispose_flushes_pending_output()
    {
        IQrexecChannel server = _serverFactory.Listen(ClientDomain, Port, 0, 0);
        using IQrexecChannel client = Connect();
        Assert.True(server.WaitConnected(s_timeout));
        byte[] data = RandomBytes(1_000_000, 9);
        int written = 0;
        while (written < data.Length)
        {
            int n = server.Write(data.AsSpan(written));
            if (n == 0)
            {
                break;
            }
            written += n;
        }
        Assert.True(((SocketChannel)server).PendingOutput > 0);
        Task closing = Task.Run(server.Dispose);

        byte[] got = new byte[written];
        RecvWithin(client, got);
        Assert.True(data.AsSpan(0, written).SequenceEqual(got));
        await closing.WaitAsync(s_timeout);
        WaitUntil(client, () => client.State == VchanState.Disconnected);
        Assert.Equal(-1, client.Read(got));
    }

    [Fact]
    public async Task Dispose_of_a_waiting_server_delivers_to_a_client_that_comes_soon()
    {
        IQrexecChannel server = _serverFactory.Listen(ClientDomain, Port, 0, 0);
        Assert.Equal(5, server.Send("early"u8));
        Task closing = Task.Run(server.Dispose);
        Thread.Sleep(50);
        using IQrexecChannel client = Connect();
        byte[] got = new byte[5];
        RecvWithin(client, got);
        Assert.Equal("early"u8.ToArray(), got);
        await closing.WaitAsync(s_timeout);
    }

    // ---- descriptors --------------------------------------------------------------------------

    [Fact]
    public void SendChunkFromFd_queues_a_header_and_the_bytes_read()
    {
        using IQrexecChannel server = _serverFactory.Listen(ClientDomain, Port, 0, 0);
        using IQrexecChannel client = Connect();
        Assert.True(server.WaitConnected(s_timeout));
        (SafeFd readEnd, SafeFd writeEnd) = Pipe();
        using (readEnd)
        using (writeEnd)
        {
            byte[] payload = RandomBytes(1000, 4);
            Assert.Equal(Errno.None, Fd.WriteAll(writeEnd.Fd, payload));

            Assert.Equal(300, server.SendChunkFromFd(MessageType.DataStdout, readEnd.Fd, 300));
            Assert.Equal(700, server.SendChunkFromFd(MessageType.DataStderr, readEnd.Fd, 65536));
            byte[] got = new byte[1016];
            RecvWithin(client, got);
            Assert.Equal(0x191u, BinaryPrimitives.ReadUInt32LittleEndian(got));
            Assert.Equal(300u, BinaryPrimitives.ReadUInt32LittleEndian(got.AsSpan(4)));
            Assert.Equal(payload[..300], got[8..308]);
            Assert.Equal(0x192u, BinaryPrimitives.ReadUInt32LittleEndian(got.AsSpan(308)));
            Assert.Equal(700u, BinaryPrimitives.ReadUInt32LittleEndian(got.AsSpan(312)));
            Assert.Equal(payload[300..], got[316..]);

            // nothing to read on a non-blocking pipe: -EAGAIN, nothing queued
            Fd.SetNonBlocking(readEnd.Fd, true);
            Assert.Equal(-(int)Errno.EAGAIN, server.SendChunkFromFd(MessageType.DataStdout, readEnd.Fd, 100));
            // end of file: 0, nothing queued
            writeEnd.Dispose();
            Assert.Equal(0, server.SendChunkFromFd(MessageType.DataStdout, readEnd.Fd, 100));
            Assert.Equal(0, ((SocketChannel)server).PendingOutput);
            Assert.Equal(-(int)Errno.EBADF, server.SendChunkFromFd(MessageType.DataStdout, -1, 100));
            Thread.Sleep(20);
            Assert.Equal(0, client.Ready());
        }
    }

    [Fact]
    public void SendChunkFromFd_is_bounded_by_space_and_queues_while_waiting()
    {
        using IQrexecChannel server = _serverFactory.Listen(ClientDomain, Port, 0, 0);
        byte[] filler = RandomBytes(SocketChannel.DefaultBufferSize - 20, 5);
        Assert.Equal(filler.Length, server.Send(filler));
        Assert.Equal(20, server.Space());
        (SafeFd readEnd, SafeFd writeEnd) = Pipe();
        using (readEnd)
        using (writeEnd)
        {
            byte[] payload = RandomBytes(100, 6);
            Assert.Equal(Errno.None, Fd.WriteAll(writeEnd.Fd, payload));
            Assert.Equal(12, server.SendChunkFromFd(MessageType.DataStdin, readEnd.Fd, 65536));
            Assert.Equal(0, server.Space());
            // no room at all (a caller that skipped the check): nothing read, nothing queued
            Assert.Equal(-(int)Errno.EAGAIN, server.SendChunkFromFd(MessageType.DataStdin, readEnd.Fd, 65536));
            Assert.Equal(SocketChannel.DefaultBufferSize, ((SocketChannel)server).PendingOutput);

            using IQrexecChannel client = Connect();
            Assert.True(server.WaitConnected(s_timeout));
            byte[] got = new byte[filler.Length + 20];
            RecvWithin(client, got);
            Assert.Equal(filler, got[..filler.Length]);
            Span<byte> tail = got.AsSpan(filler.Length);
            Assert.Equal((uint)MessageType.DataStdin, BinaryPrimitives.ReadUInt32LittleEndian(tail));
            Assert.Equal(12u, BinaryPrimitives.ReadUInt32LittleEndian(tail[4..]));
            Assert.True(tail[8..].SequenceEqual(payload.AsSpan(0, 12)));

            // the rest follows after a compaction of the drained buffer
            Assert.Equal(88, server.SendChunkFromFd(MessageType.DataStdin, readEnd.Fd, 65536));
            byte[] rest = new byte[96];
            RecvWithin(client, rest);
            Assert.Equal(88u, BinaryPrimitives.ReadUInt32LittleEndian(rest.AsSpan(4)));
            Assert.True(rest.AsSpan(8).SequenceEqual(payload.AsSpan(12)));

            client.Dispose();
            WaitUntil(server, () => server.State == VchanState.Disconnected);
            Assert.Equal(int.MinValue, server.SendChunkFromFd(MessageType.DataStdin, readEnd.Fd, 65536));
        }
    }

    [Fact]
    public void ReceiveToFd_writes_ready_bytes_to_a_pipe_and_consumes_them()
    {
        using IQrexecChannel server = _serverFactory.Listen(ClientDomain, Port, 0, 0);
        using IQrexecChannel client = Connect();
        Assert.True(server.WaitConnected(s_timeout));
        byte[] data = RandomBytes(5000, 8);
        Assert.Equal(5000, client.Send(data));
        WaitUntil(server, () => server.Ready() == 5000);

        (SafeFd readEnd, SafeFd writeEnd) = Pipe();
        using (readEnd)
        using (writeEnd)
        {
            Assert.Equal(3000, server.ReceiveToFd(writeEnd.Fd, 3000));
            Assert.Equal(2000, server.Ready());
            Assert.Equal(2000, server.ReceiveToFd(writeEnd.Fd, 10_000));
            Assert.Equal(0, server.Ready());
            byte[] got = new byte[5000];
            int done = 0;
            while (done < got.Length)
            {
                int n = Fd.Read(readEnd.Fd, got.AsSpan(done));
                Assert.True(n > 0);
                done += n;
            }
            Assert.Equal(data, got);

            // a full pipe: -EAGAIN and nothing consumed
            Fd.SetNonBlocking(writeEnd.Fd, true);
            FillPipe(writeEnd.Fd);
            Assert.Equal(3, client.Send("abc"u8));
            WaitUntil(server, () => server.Ready() == 3);
            Assert.Equal(-(int)Errno.EAGAIN, server.ReceiveToFd(writeEnd.Fd, 3));
            Assert.Equal(3, server.Ready());
            Assert.Equal(3, server.Skip(3));
            // nothing ready (a caller that skipped the check): -EAGAIN while live, failure once gone
            Assert.Equal(-(int)Errno.EAGAIN, server.ReceiveToFd(writeEnd.Fd, 3));
            client.Dispose();
            WaitUntil(server, () => server.State == VchanState.Disconnected);
            Assert.Equal(int.MinValue, server.ReceiveToFd(writeEnd.Fd, 3));
        }
    }

    // ---- environment ---------------------------------------------------------------------------

    [Theory]
    [InlineData("0")]
    [InlineData("5")]
    [InlineData("  42")]
    [InlineData("\t\n\v\f\r 7")]
    [InlineData("+3")]
    [InlineData("-3")]
    [InlineData(" -0")]
    [InlineData("12abc")]
    [InlineData("1 2")]
    [InlineData("abc")]
    [InlineData("")]
    [InlineData(" ")]
    [InlineData("- 1")]
    [InlineData("+-1")]
    [InlineData("--1")]
    [InlineData("0x10")]
    [InlineData("007")]
    [InlineData("\u00a05")]
    [InlineData("2147483647")]
    [InlineData("-2147483648")]
    [InlineData("2147483648")]
    [InlineData("4294967297")]
    [InlineData("9223372036854775807")]
    [InlineData("9223372036854775808")]
    [InlineData("-9223372036854775808")]
    [InlineData("-9223372036854775809")]
    [InlineData("99999999999999999999")]
    [InlineData("-99999999999999999999")]
    public void VCHAN_DOMAIN_is_parsed_like_C_atoi(string text)
    {
        Assert.Equal(atoi(text), SocketChannelFactory.ParseAtoi(text));
    }

    [Fact]
    public void Atoi_values_for_the_common_cases()
    {
        Assert.Equal(42, SocketChannelFactory.ParseAtoi("  42"));
        Assert.Equal(-3, SocketChannelFactory.ParseAtoi("-3xyz"));
        Assert.Equal(12, SocketChannelFactory.ParseAtoi("12abc"));
        Assert.Equal(0, SocketChannelFactory.ParseAtoi("dom0"));
        Assert.Equal(0, SocketChannelFactory.ParseAtoi(""));
    }

    [Fact]
    public void FromEnvironment_reads_directory_and_domain()
    {
        string? oldDirectory = Environment.GetEnvironmentVariable(SocketChannelFactory.DirectoryVariable);
        string? oldDomain = Environment.GetEnvironmentVariable(SocketChannelFactory.DomainVariable);
        try
        {
            Environment.SetEnvironmentVariable(SocketChannelFactory.DirectoryVariable, _directory);
            Environment.SetEnvironmentVariable(SocketChannelFactory.DomainVariable, " 12xyz");
            using (SocketChannelFactory factory = SocketChannelFactory.FromEnvironment())
            {
                Assert.Equal(_directory, factory.Directory);
                Assert.Equal(12, factory.LocalDomain);
            }

            Environment.SetEnvironmentVariable(SocketChannelFactory.DomainVariable, "x");
            using (SocketChannelFactory factory = SocketChannelFactory.FromEnvironment())
            {
                Assert.Equal(0, factory.LocalDomain);
            }

            Environment.SetEnvironmentVariable(SocketChannelFactory.DirectoryVariable, null);
            Environment.SetEnvironmentVariable(SocketChannelFactory.DomainVariable, null);
            using (SocketChannelFactory factory = SocketChannelFactory.FromEnvironment())
            {
                Assert.Equal("/var/run/vchan", factory.Directory);
                Assert.Equal(0, factory.LocalDomain);
            }
        }
        finally
        {
            Environment.SetEnvironmentVariable(SocketChannelFactory.DirectoryVariable, oldDirectory);
            Environment.SetEnvironmentVariable(SocketChannelFactory.DomainVariable, oldDomain);
        }
    }

    // ---- allocations ----------------------------------------------------------------------------

    [Fact]
    public void Steady_state_write_and_read_allocate_nothing()
    {
        using IQrexecChannel server = _serverFactory.Listen(ClientDomain, Port, 0, 0);
        using IQrexecChannel client = Connect();
        Assert.True(server.WaitConnected(s_timeout));
        (SafeFd readEnd, SafeFd writeEnd) = Pipe();
        using (readEnd)
        using (writeEnd)
        {
            byte[] outgoing = RandomBytes(3000, 10);
            byte[] incoming = new byte[3000];
            byte[] chunk = new byte[QrexecProtocol.HeaderSize + 500];

            RoundTrips(server, client, outgoing, incoming, chunk, readEnd.Fd, writeEnd.Fd, 2000);
            long before = GC.GetAllocatedBytesForCurrentThread();
            RoundTrips(server, client, outgoing, incoming, chunk, readEnd.Fd, writeEnd.Fd, 20_000);
            long allocated = GC.GetAllocatedBytesForCurrentThread() - before;
            Assert.Equal(0, allocated);
        }
    }

    private static void RoundTrips(IQrexecChannel server, IQrexecChannel client, byte[] outgoing, byte[] incoming, byte[] chunk, int pipeRead, int pipeWrite, int rounds)
    {
        for (int i = 0; i < rounds; i++)
        {
            int size = 1 + (i * 37 % outgoing.Length);
            if (server.Space() < size || server.Write(outgoing.AsSpan(0, size)) != size)
            {
                throw new InvalidOperationException("write");
            }
            int got = 0;
            while (got < size)
            {
                client.Service();
                _ = client.PollEvents;
                int n = client.Read(incoming.AsSpan(got, size - got));
                if (n < 0)
                {
                    throw new InvalidOperationException("read");
                }
                got += n;
            }

            // and back: Send/Recv, then a data chunk through a pipe in each direction
            if (client.Send(incoming.AsSpan(0, 16)) != 16)
            {
                throw new InvalidOperationException("send");
            }
            while (server.Ready() < 16)
            {
            }
            if (server.Recv(incoming.AsSpan(0, 16)) != 16)
            {
                throw new InvalidOperationException("recv");
            }

            if (Fd.WriteAll(pipeWrite, outgoing.AsSpan(0, 500)) != Errno.None
                || client.SendChunkFromFd(MessageType.DataStdout, pipeRead, 500) != 500)
            {
                throw new InvalidOperationException("chunk");
            }
            while (server.Ready() < chunk.Length)
            {
            }
            if (server.Recv(chunk.AsSpan(0, QrexecProtocol.HeaderSize)) != QrexecProtocol.HeaderSize
                || server.ReceiveToFd(pipeWrite, 500) != 500
                || Fd.Read(pipeRead, chunk.AsSpan(QrexecProtocol.HeaderSize)) != 500)
            {
                throw new InvalidOperationException("to fd");
            }
        }
    }

    // ---- helpers --------------------------------------------------------------------------------

    private IQrexecChannel Connect()
    {
        IQrexecChannel? client = _clientFactory.Connect(ServerDomain, Port, s_timeout, out string? error);
        Assert.True(client is not null, error);
        return client!;
    }

    /// <summary>Receives exactly <paramref name="buffer"/>.Length bytes, polling the channel, within the test timeout.</summary>
    private static unsafe void RecvWithin(IQrexecChannel channel, Span<byte> buffer)
    {
        Stopwatch watch = Stopwatch.StartNew();
        int done = 0;
        while (done < buffer.Length)
        {
            Assert.True(watch.Elapsed < s_timeout, $"received {done} of {buffer.Length}");
            int n = channel.Read(buffer[done..]);
            Assert.True(n >= 0, "channel closed");
            if (n == 0)
            {
                Libc.pollfd pfd = new() { fd = channel.Fd, events = channel.PollEvents };
                Libc.poll(&pfd, 1, 100);
                channel.Service();
            }
            done += n;
        }
    }

    private static unsafe void WaitUntil(IQrexecChannel channel, Func<bool> condition)
    {
        Stopwatch watch = Stopwatch.StartNew();
        while (!condition())
        {
            Assert.True(watch.Elapsed < s_timeout, "condition not reached");
            Libc.pollfd pfd = new() { fd = channel.Fd, events = channel.PollEvents };
            Libc.poll(&pfd, 1, 20);
            channel.Service();
        }
    }

    private static unsafe (SafeFd Read, SafeFd Write) Pipe()
    {
        int* fds = stackalloc int[2];
        Assert.Equal(0, Libc.pipe2(fds, Libc.O_CLOEXEC));
        return (new SafeFd(fds[0]), new SafeFd(fds[1]));
    }

    /// <summary>Writes to a non-blocking pipe until it is full.</summary>
    private static unsafe void FillPipe(int fd)
    {
        byte* junk = stackalloc byte[4096];
        while (Libc.write(fd, junk, 4096) >= 0)
        {
        }
    }

    private static byte[] RandomBytes(int count, int seed)
    {
        byte[] bytes = new byte[count];
        new Random(seed).NextBytes(bytes);
        return bytes;
    }

    [LibraryImport("libc.so.6", StringMarshalling = StringMarshalling.Utf8)]
    private static partial int atoi(string text);
}
