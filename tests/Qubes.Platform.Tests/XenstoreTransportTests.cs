using System;
using System.Collections.Generic;
using System.IO;
using System.Linq;
using System.Text;
using System.Threading;
using System.Threading.Tasks;
using Qubes.Interop.Linux;
using Qubes.Platform.Xen;
using Qubes.Platform.Xenstore;
using Xunit;

namespace Qubes.Platform.Tests;

/// <summary>
/// The Xen transports against a fake xenstored. The xenbus device is played by one end of an
/// AF_UNIX SOCK_SEQPACKET socketpair: every write of the fake arrives as exactly one read of the
/// transport, so a reply written in pieces is read in pieces and a single write holding several
/// messages is read at once. That is how the device behaves at its worst (it copies out whatever
/// is queued, up to the buffer size), made deterministic. The fake also checks that each request
/// came in one write.
/// </summary>
public sealed class XenstoreTransportTests
{
    [Fact]
    public void Xenbus_reply_split_across_reads_with_a_watch_event_in_the_middle()
    {
        using var pair = XenbusPair.Create();
        pair.Server.Chunks = [3, 14, 1, 9, 30, 2];
        IStore store = pair.Store;

        store.Watch("data", "tok"); // the fake sends the initial event before the OK, both cut in pieces
        store.Write("data/x", "hello"); // the change event comes before the reply, as xenstored does
        Assert.Equal("hello", store.Read("data/x"));

        Assert.True(store.TryReadWatchEvent(out string path, out string token));
        Assert.Equal(("data", "tok"), (path, token));
        Assert.True(store.TryReadWatchEvent(out path, out token));
        Assert.Equal(("data/x", "tok"), (path, token));
        Assert.False(store.TryReadWatchEvent(out _, out _));
        Assert.True(pair.Server.WritesSent > 10, $"the fake made only {pair.Server.WritesSent} writes");
        pair.AssertServerHappy();
    }

    [Fact]
    public void Xenbus_batch_replies_are_matched_in_order_across_split_reads_and_events()
    {
        using var pair = XenbusPair.Create();
        pair.Server.Chunks = [5, 11, 2, 17];
        StoreAnswer[] answers = pair.Store.Batch(
        [
            StoreRequest.Watch("data", "tok"),
            StoreRequest.Write("data/x", "one"),
            StoreRequest.Read("data/x"),
            StoreRequest.Read("data/missing"),
            StoreRequest.Write("data/y", "two"),
        ]);
        Assert.True(answers[0].Ok);
        Assert.True(answers[1].Ok);
        Assert.Equal("one", answers[2].Value);
        Assert.Equal(Errno.ENOENT, answers[3].Error);
        Assert.True(answers[4].Ok);
        // the events that came between the replies were queued, in order
        Assert.True(pair.Store.TryReadWatchEvent(out string path, out _));
        Assert.Equal("data", path);
        Assert.True(pair.Store.TryReadWatchEvent(out path, out _));
        Assert.Equal("data/x", path);
        Assert.True(pair.Store.TryReadWatchEvent(out path, out _));
        Assert.Equal("data/y", path);
        Assert.Equal("two", pair.Store.Read("data/y")); // the connection is in step afterwards
        pair.AssertServerHappy();
    }

    [Fact]
    public void Xenbus_reply_one_byte_per_read()
    {
        using var pair = XenbusPair.Create();
        string value = new('v', 300);
        pair.Store.Write("data/long", value);
        pair.Server.Chunks = [1];
        Assert.Equal(value, pair.Store.Read("data/long"));
        Assert.True(pair.Server.WritesSent >= XenstoreWire.HeaderSize + 300);
        pair.AssertServerHappy();
    }

    [Fact]
    public void Xenbus_several_frames_in_one_read_are_all_taken()
    {
        using var pair = XenbusPair.Create();
        pair.Server.Override = (header, _) =>
            header.Type != XenstoreMessageType.Read
                ? null
                : Concat(
                    Event("/a", "first"),
                    XenstoreHeader.Message(XenstoreMessageType.Read, header.RequestId, 0, "value"u8),
                    Event("/b", "second"));
        int writesBefore = pair.Server.WritesSent;

        Assert.Equal("value", pair.Store.Read("anything"));
        Assert.Equal(writesBefore + 1, pair.Server.WritesSent); // one write, so one read took all three

        // Nothing is left in the socket: the second event can only come from the receive buffer.
        Assert.Equal(0, Fd.PollIn(pair.Store.Fd, 0));
        Assert.True(pair.Store.TryReadWatchEvent(out string path, out string token));
        Assert.Equal(("/a", "first"), (path, token));
        Assert.True(pair.Store.TryReadWatchEvent(out path, out token));
        Assert.Equal(("/b", "second"), (path, token));
        Assert.False(pair.Store.TryReadWatchEvent(out _, out _));
        pair.AssertServerHappy();
    }

    [Fact]
    public void Xenbus_events_that_arrive_while_idle_are_read_on_demand_even_when_split()
    {
        using var pair = XenbusPair.Create();
        byte[] events = Concat(Event("/x", "1"), Event("/y", "2"));
        pair.Server.SendRaw(events.AsSpan(0, 5));
        pair.Server.SendRaw(events.AsSpan(5, 20));
        Assert.Equal(1, Fd.PollIn(pair.Store.Fd, 5000));
        Assert.True(pair.Store.TryReadWatchEvent(out string path, out _));
        Assert.Equal("/x", path);
        Assert.False(pair.Store.TryReadWatchEvent(out _, out _)); // the second is still incomplete

        pair.Server.SendRaw(events.AsSpan(25));
        Assert.Equal(1, Fd.PollIn(pair.Store.Fd, 5000));
        Assert.True(pair.Store.TryReadWatchEvent(out path, out string token));
        Assert.Equal(("/y", "2"), (path, token));
        Assert.Equal("ok", ReadBack(pair.Store)); // and the stream is still in step
        pair.AssertServerHappy();
    }

    [Fact]
    public void Xenbus_oversized_length_fails_the_connection()
    {
        using var pair = XenbusPair.Create();
        pair.Server.Override = (header, _) =>
        {
            byte[] bad = new byte[XenstoreWire.HeaderSize + XenstoreWire.MaxPayload + 1];
            new XenstoreHeader(header.Type, header.RequestId, 0, XenstoreWire.MaxPayload + 1).Write(bad);
            return bad;
        };

        PlatformException first = Assert.ThrowsAny<PlatformException>(() => pair.Store.Read("x"));
        Assert.Equal(Errno.EPROTO, first.Errno);
        Assert.Equal(Errno.EPROTO, pair.Transport.Failure);
        PlatformException second = Assert.ThrowsAny<PlatformException>(() => pair.Store.Read("x"));
        Assert.Equal(Errno.EPROTO, second.Errno);
        Assert.Equal(1, pair.Server.RequestCount); // the failed connection sent nothing more
        Assert.False(pair.Store.TryReadWatchEvent(out _, out _));
        pair.AssertServerHappy();
    }

    [Fact]
    public void Xenbus_oversized_length_while_idle_fails_the_connection()
    {
        using var pair = XenbusPair.Create();
        byte[] bad = new byte[XenstoreWire.HeaderSize];
        new XenstoreHeader(XenstoreMessageType.WatchEvent, 0, 0, int.MaxValue).Write(bad);
        pair.Server.SendRaw(bad);
        Assert.Equal(1, Fd.PollIn(pair.Store.Fd, 5000));
        Assert.False(pair.Store.TryReadWatchEvent(out _, out _));
        Assert.Equal(Errno.EPROTO, pair.Transport.Failure);
        Assert.Equal(Errno.EPROTO, Assert.ThrowsAny<PlatformException>(() => pair.Store.Read("x")).Errno);
        Assert.Equal(0, pair.Server.RequestCount);
    }

    [Fact]
    public void Xenbus_reply_out_of_step_fails_the_connection()
    {
        using var pair = XenbusPair.Create();
        pair.Server.Override = (header, _) => XenstoreHeader.Message(header.Type, header.RequestId + 1, 0, "OK\0"u8);
        Assert.Equal(Errno.EPROTO, Assert.ThrowsAny<PlatformException>(() => pair.Store.Mkdir("x")).Errno);

        using var other = XenbusPair.Create();
        other.Server.Override = (header, _) => XenstoreHeader.Message(XenstoreMessageType.Write, header.RequestId, 0, "OK\0"u8);
        Assert.Equal(Errno.EPROTO, Assert.ThrowsAny<PlatformException>(() => other.Store.Mkdir("x")).Errno);
    }

    [Fact]
    public void Xenbus_end_of_stream_inside_a_reply_fails_the_connection()
    {
        using var pair = XenbusPair.Create();
        pair.Server.Override = (header, _) =>
        {
            pair.Server.SendRaw(XenstoreHeader.Message(header.Type, header.RequestId, 0, "value"u8).AsSpan(0, 10));
            pair.Server.Hangup();
            return [];
        };
        Assert.Equal(Errno.ECONNRESET, Assert.ThrowsAny<PlatformException>(() => pair.Store.Read("x")).Errno);
        Assert.Equal(Errno.ECONNRESET, pair.Transport.Failure);
    }

    [Fact]
    public void Payload_over_the_limit_is_E2BIG_and_not_sent()
    {
        using var pair = XenbusPair.Create();
        StoreException e = Assert.Throws<StoreException>(() => pair.Store.Write("data/big", new string('x', XenstoreWire.MaxPayload)));
        Assert.Equal(Errno.E2BIG, e.Errno);
        Assert.Equal(0, pair.Server.RequestCount);
        Assert.Equal("ok", ReadBack(pair.Store));
    }

    [Fact]
    public void Client_follows_the_xenstore_conventions()
    {
        using var pair = XenbusPair.Create();
        IStore store = pair.Store;

        Assert.Null(store.Read("data/missing")); // ENOENT
        Assert.Null(store.Directory("data/missing"));
        store.Remove("data/missing"); // ENOENT is success for rm
        StoreException denied = Assert.Throws<StoreException>(() => store.Read("/forbidden/x"));
        Assert.Equal(Errno.EACCES, denied.Errno);

        store.Write("/local/domain/3/data/a", "1");
        store.Mkdir("/local/domain/3/data/b");
        Assert.Equal(new[] { "a", "b" }, store.Directory("/local/domain/3/data"));
        Assert.Equal("", store.Read("/local/domain/3/data/b"));

        uint tx = store.TransactionStart();
        Assert.Equal(FakeXenstored.TransactionId, tx);
        store.Write("data/in-tx", "v", tx);
        Assert.Equal(tx, pair.Server.LastRequest.Header.TransactionId);
        Assert.Equal("data/in-tx\0v"u8.ToArray(), pair.Server.LastRequest.Payload);
        pair.Server.ConflictOnCommit = true;
        Assert.False(store.TransactionEnd(tx, commit: true)); // EAGAIN: retry
        Assert.Equal("T\0"u8.ToArray(), pair.Server.LastRequest.Payload);
        Assert.True(store.TransactionEnd(store.TransactionStart(), commit: false));
        Assert.Equal("F\0"u8.ToArray(), pair.Server.LastRequest.Payload);

        StorePermission[] perms = [new(3, StoreAccess.None), new(5, StoreAccess.Read), new(7, StoreAccess.Both)];
        store.SetPermissions("/local/domain/3/data/a", perms);
        Assert.Equal("/local/domain/3/data/a\0n3\0r5\0b7\0"u8.ToArray(), pair.Server.LastRequest.Payload);
        Assert.Equal(perms, store.GetPermissions("/local/domain/3/data/a"));

        store.Watch("@releaseDomain", "rel");
        Assert.Equal("@releaseDomain\0rel\0"u8.ToArray(), pair.Server.LastRequest.Payload);
        store.Unwatch("@releaseDomain", "rel");
        Assert.True(store.TryReadWatchEvent(out string path, out string token));
        Assert.Equal(("@releaseDomain", "rel"), (path, token));
        pair.AssertServerHappy();
    }

    [Fact]
    public void Threads_sharing_one_xenbus_connection_each_get_their_own_replies()
    {
        using var pair = XenbusPair.Create();
        pair.Server.Chunks = [7, 5];
        for (int t = 0; t < 4; t++)
        {
            pair.Store.Write($"data/t{t}", $"value-{t}");
        }
        Parallel.For(0, 4, t =>
        {
            for (int i = 0; i < 100; i++)
            {
                Assert.Equal($"value-{t}", pair.Store.Read($"data/t{t}"));
            }
        });
        pair.AssertServerHappy();
    }

    [Fact]
    public void Error_names_of_xs_wire_map_to_errno_and_back()
    {
        string[] xsdErrors = ["EINVAL", "EACCES", "EEXIST", "EISDIR", "ENOENT", "ENOMEM", "ENOSPC", "EIO", "ENOTEMPTY", "ENOSYS", "EROFS", "EBUSY", "EAGAIN", "EISCONN", "E2BIG"];
        foreach (string name in xsdErrors)
        {
            Errno errno = XenstoreWire.ParseErrorName(Encoding.ASCII.GetBytes(name + "\0"));
            Assert.Equal(name, errno.ToString());
            Assert.Equal(name, XenstoreWire.ErrorName(errno));
            Assert.Equal(errno, XenstoreWire.ParseErrorName(XenstoreWire.ErrorPayload(errno)));
        }
        Assert.Equal(Errno.EACCES, XenstoreWire.ParseErrorName("EACCES"u8)); // NUL optional
        foreach (string bad in new[] { "", "\0", "EWHATEVER\0", "22\0", "eacces\0", "None\0", "E\0", "EACCES,EIO\0" })
        {
            Assert.Equal(Errno.EIO, XenstoreWire.ParseErrorName(Encoding.ASCII.GetBytes(bad)));
        }
        Assert.Equal("EIO", XenstoreWire.ErrorName(Errno.None));
        Assert.Equal("EIO", XenstoreWire.ErrorName((Errno)4000));
    }

    [Fact]
    public void Payload_helpers_split_and_join()
    {
        Assert.Equal("a\0bc\0"u8.ToArray(), XenstorePayload.Strings("a", "bc"));
        Assert.Equal(new[] { "a", "bc" }, XenstorePayload.Split("a\0bc\0"u8));
        Assert.Equal(new[] { "a", "bc" }, XenstorePayload.Split("a\0bc"u8));
        Assert.Empty(XenstorePayload.Split([]));
        Assert.True(XenstorePayload.TryParseWatchEvent("/p\0t\0"u8, out string path, out string token));
        Assert.Equal(("/p", "t"), (path, token));
        Assert.False(XenstorePayload.TryParseWatchEvent("/p"u8, out _, out _));
        Assert.True(XenstorePayload.TryParseTransactionId("4294967295\0"u8, out uint id));
        Assert.Equal(uint.MaxValue, id);
        Assert.False(XenstorePayload.TryParseTransactionId("0\0"u8, out _));
        Assert.False(XenstorePayload.TryParseTransactionId("-1\0"u8, out _));
        Assert.False(XenstorePayload.TryParseTransactionId("1 \0"u8, out _));
    }

    [Fact]
    public void Socket_transport_talks_to_a_listening_xenstored()
    {
        string directory = TempDirectory();
        try
        {
            string socketPath = Path.Combine(directory, "socket");
            using SafeFd listener = UnixSocket.Listen(socketPath, 4);
            using var store = new XenstoreClient(XenstoredSocketTransport.Connect(socketPath));
            using var server = new FakeXenstored(Accept(listener), packets: false) { Chunks = [5, 7, 1] };

            store.Watch("data", "w");
            store.Write("data/k", "v");
            Assert.Equal("v", store.Read("data/k"));
            Assert.True(store.TryReadWatchEvent(out string path, out _));
            Assert.Equal("data", path);
            Assert.True(store.TryReadWatchEvent(out path, out _));
            Assert.Equal("data/k", path);

            server.SendRaw(Event("data/later", "w"));
            Assert.True(TestBroker.WaitForEvent(store, (p, t) => p == "data/later" && t == "w"));
            server.Override = (header, _) =>
            {
                byte[] bad = new byte[XenstoreWire.HeaderSize];
                new XenstoreHeader(header.Type, header.RequestId, 0, XenstoreWire.MaxPayload + 1).Write(bad);
                return bad;
            };
            Assert.Equal(Errno.EPROTO, Assert.ThrowsAny<PlatformException>(() => store.Read("data/k")).Errno);
            Assert.Null(server.Failure);
        }
        finally
        {
            Directory.Delete(directory, recursive: true);
        }
    }

    [Fact]
    public void Open_prefers_a_connectable_socket_and_otherwise_falls_back_to_the_device()
    {
        string directory = TempDirectory();
        try
        {
            string missing = Path.Combine(directory, "missing");
            string stale = Path.Combine(directory, "stale");
            string live = Path.Combine(directory, "live");
            string noDevice = Path.Combine(directory, "xenbus");
            UnixSocket.Listen(stale, 1).Dispose(); // the file stays, nobody listens: ECONNREFUSED
            using SafeFd listener = UnixSocket.Listen(live, 4);

            using (IStore store = XenStore.Open([missing, stale, live], noDevice))
            using (var server = new FakeXenstored(Accept(listener), packets: false))
            {
                Assert.Equal("ok", ReadBack(store));
                Assert.Equal(2, server.RequestCount); // the write and the read of ReadBack
                Assert.Null(server.Failure);
            }

            PlatformException e = Assert.ThrowsAny<PlatformException>(() => XenStore.Open([missing, stale], noDevice));
            Assert.Equal(Errno.ENOENT, e.Errno);
            Assert.Contains(noDevice, e.Message, StringComparison.Ordinal);
        }
        finally
        {
            Directory.Delete(directory, recursive: true);
        }
    }

    private static string ReadBack(IStore store)
    {
        store.Write("data/check", "ok");
        return store.Read("data/check")!;
    }

    private static byte[] Event(string path, string token) =>
        XenstoreHeader.Message(XenstoreMessageType.WatchEvent, 0, 0, XenstorePayload.Strings(path, token));

    private static byte[] Concat(params byte[][] parts) => parts.SelectMany(p => p).ToArray();

    private static SafeFd Accept(SafeFd listener)
    {
        int fd = UnixSocket.Accept(listener.Fd);
        Assert.True(fd >= 0, $"accept: {(Errno)(-fd)}");
        return new SafeFd(fd);
    }

    private static string TempDirectory()
    {
        string directory = Path.Combine(Path.GetTempPath(), "qxs-" + Guid.NewGuid().ToString("N")[..12]);
        Directory.CreateDirectory(directory);
        return directory;
    }

    /// <summary>A <see cref="XenbusTransport"/> on one end of a SOCK_SEQPACKET pair, a fake xenstored on the other.</summary>
    private sealed class XenbusPair : IDisposable
    {
        private XenbusPair(XenbusTransport transport, FakeXenstored server)
        {
            Transport = transport;
            Store = new XenstoreClient(transport);
            Server = server;
        }

        public XenbusTransport Transport { get; }

        public XenstoreClient Store { get; }

        public FakeXenstored Server { get; }

        public static unsafe XenbusPair Create()
        {
            int* sv = stackalloc int[2];
            Assert.Equal(0, Libc.socketpair(Libc.AF_UNIX, Libc.SOCK_SEQPACKET | Libc.SOCK_CLOEXEC, 0, sv));
            return new XenbusPair(new XenbusTransport(new SafeFd(sv[0])), new FakeXenstored(new SafeFd(sv[1]), packets: true));
        }

        public void AssertServerHappy() => Assert.Null(Server.Failure);

        public void Dispose()
        {
            Store.Dispose();
            Server.Dispose();
        }
    }
}

/// <summary>
/// A small xenstored on one connected descriptor, served from its own thread: a flat tree with
/// read, write, mkdir, rm, directory, permissions, watches (one event on registration, one per
/// change below the watched path) and transactions that only hand out an id. Its answer to each
/// request (any events first, then the reply, as xenstored queues a write's events before its
/// ack) is written in pieces of <see cref="Chunks"/> bytes. In packet mode it also checks that
/// every request arrived in exactly one write.
/// </summary>
internal sealed class FakeXenstored : IDisposable
{
    public const uint TransactionId = 42;

    private readonly SafeFd _fd;
    private readonly bool _packets;
    private readonly Thread _thread;
    private readonly object _lock = new();
    private readonly object _writeLock = new();
    private readonly SortedDictionary<string, string> _nodes = new(StringComparer.Ordinal);
    private readonly Dictionary<string, byte[]> _permissions = new(StringComparer.Ordinal);
    private readonly List<(string Path, string Token)> _watches = [];
    private int[] _chunks = [int.MaxValue];
    private Func<XenstoreHeader, byte[], byte[]?>? _override;
    private (XenstoreHeader Header, byte[] Payload) _lastRequest;
    private int _requestCount;
    private int _writesSent;
    private bool _conflictOnCommit;
    private Exception? _failure;

    public FakeXenstored(SafeFd fd, bool packets)
    {
        _fd = fd;
        _packets = packets;
        _thread = new Thread(Serve) { IsBackground = true, Name = "fake-xenstored" };
        _thread.Start();
    }

    /// <summary>Sizes of the successive writes an answer is cut into (cycled).</summary>
    public int[] Chunks
    {
        get { lock (_lock) { return _chunks; } }
        set { lock (_lock) { _chunks = value; } }
    }

    /// <summary>Raw bytes to answer a request with instead of the normal answer (null: answer normally).</summary>
    public Func<XenstoreHeader, byte[], byte[]?>? Override
    {
        get { lock (_lock) { return _override; } }
        set { lock (_lock) { _override = value; } }
    }

    /// <summary>Makes the next committing XS_TRANSACTION_END fail with EAGAIN.</summary>
    public bool ConflictOnCommit
    {
        get { lock (_lock) { return _conflictOnCommit; } }
        set { lock (_lock) { _conflictOnCommit = value; } }
    }

    public (XenstoreHeader Header, byte[] Payload) LastRequest { get { lock (_lock) { return _lastRequest; } } }

    public int RequestCount { get { lock (_lock) { return _requestCount; } } }

    public int WritesSent { get { lock (_lock) { return _writesSent; } } }

    public Exception? Failure { get { lock (_lock) { return _failure; } } }

    /// <summary>Writes bytes as they are, in one write (a packet in packet mode).</summary>
    public void SendRaw(ReadOnlySpan<byte> bytes)
    {
        lock (_writeLock)
        {
            Assert.Equal(Errno.None, Fd.WriteAll(_fd.Fd, bytes));
        }
    }

    /// <summary>Closes the connection from this side.</summary>
    public void Hangup() => _ = Libc.shutdown(_fd.Fd, Libc.SHUT_RDWR);

    public void Dispose()
    {
        Hangup();
        Assert.True(_thread.Join(10_000), "fake xenstored did not stop");
        _fd.Dispose();
    }

    private void Serve()
    {
        try
        {
            byte[] buffer = new byte[2 * XenstoreWire.MaxMessage];
            int have = 0;
            while (true)
            {
                int n = Fd.Read(_fd.Fd, buffer.AsSpan(have));
                if (n <= 0)
                {
                    return; // hung up
                }
                if (_packets && (have != 0 || XenstoreHeader.TryRead(buffer.AsSpan(0, n), out XenstoreHeader h) != FrameStatus.Complete || h.TotalLength != n))
                {
                    throw new InvalidOperationException($"a request did not come as one whole message per write ({n} bytes)");
                }
                have += n;
                int consumed = 0;
                while (true)
                {
                    FrameStatus status = XenstoreHeader.TryRead(buffer.AsSpan(consumed, have - consumed), out XenstoreHeader header);
                    if (status == FrameStatus.Invalid)
                    {
                        throw new InvalidOperationException("oversized request");
                    }
                    if (status == FrameStatus.NeedMore)
                    {
                        break;
                    }
                    byte[] payload = buffer.AsSpan(consumed + XenstoreWire.HeaderSize, header.Length).ToArray();
                    consumed += header.TotalLength;
                    Answer(header, payload);
                }
                buffer.AsSpan(consumed, have - consumed).CopyTo(buffer);
                have -= consumed;
            }
        }
        catch (Exception e)
        {
            lock (_lock)
            {
                _failure = e;
            }
            Hangup(); // so that a client waiting for a reply fails instead of hanging the test
        }
    }

    private void Answer(XenstoreHeader header, byte[] payload)
    {
        Func<XenstoreHeader, byte[], byte[]?>? custom;
        lock (_lock)
        {
            _requestCount++;
            _lastRequest = (header, payload);
            custom = _override;
        }
        byte[] output = custom?.Invoke(header, payload) ?? Handle(header, payload);
        int[] chunks = Chunks;
        int at = 0;
        for (int i = 0; at < output.Length; i++)
        {
            int size = Math.Min(chunks[i % chunks.Length], output.Length - at);
            lock (_lock)
            {
                _writesSent++; // counted before the write, so a client that has the reply sees the count
            }
            SendRaw(output.AsSpan(at, size));
            at += size;
            if (!_packets && chunks.Length > 1)
            {
                Thread.Sleep(1); // give the stream reader a chance to see the piece on its own
            }
        }
    }

    private byte[] Handle(XenstoreHeader request, byte[] payload)
    {
        var output = new List<byte[]>();
        List<string> args = XenstorePayload.Split(payload);
        string path = args.Count > 0 ? args[0] : "";
        Errno error = Errno.None;
        byte[] reply = XenstorePayload.Ok.ToArray();
        if (path.StartsWith("/forbidden", StringComparison.Ordinal))
        {
            error = Errno.EACCES;
        }
        else
        {
            switch (request.Type)
            {
                case XenstoreMessageType.Read:
                    if (_nodes.TryGetValue(path, out string? value))
                    {
                        reply = Encoding.UTF8.GetBytes(value);
                    }
                    else
                    {
                        error = Errno.ENOENT;
                    }
                    break;
                case XenstoreMessageType.Write:
                {
                    int nul = Array.IndexOf(payload, (byte)0);
                    _nodes[path] = Encoding.UTF8.GetString(payload, nul + 1, payload.Length - nul - 1);
                    FireWatches(path, output);
                    break;
                }
                case XenstoreMessageType.Mkdir:
                    _nodes.TryAdd(path, "");
                    FireWatches(path, output);
                    break;
                case XenstoreMessageType.Rm:
                    if (_nodes.Remove(path))
                    {
                        foreach (string below in _nodes.Keys.Where(k => k.StartsWith(path + "/", StringComparison.Ordinal)).ToList())
                        {
                            _nodes.Remove(below);
                        }
                        FireWatches(path, output);
                    }
                    else
                    {
                        error = Errno.ENOENT;
                    }
                    break;
                case XenstoreMessageType.Directory:
                    if (_nodes.ContainsKey(path) || _nodes.Keys.Any(k => k.StartsWith(path + "/", StringComparison.Ordinal)))
                    {
                        string[] children = _nodes.Keys
                            .Where(k => k.StartsWith(path + "/", StringComparison.Ordinal))
                            .Select(k => k[(path.Length + 1)..].Split('/')[0])
                            .Distinct()
                            .ToArray();
                        reply = XenstorePayload.Strings(children);
                    }
                    else
                    {
                        error = Errno.ENOENT;
                    }
                    break;
                case XenstoreMessageType.GetPerms:
                    reply = _permissions.TryGetValue(path, out byte[]? perms) ? perms : XenstorePayload.Strings("b0");
                    break;
                case XenstoreMessageType.SetPerms:
                    _permissions[path] = XenstorePayload.Strings([.. args.Skip(1)]);
                    break;
                case XenstoreMessageType.Watch:
                    _watches.Add((path, args[1]));
                    // The device may queue the first event before its own OK: put it first.
                    output.Add(XenstoreHeader.Message(XenstoreMessageType.WatchEvent, 0, 0, XenstorePayload.Strings(path, args[1])));
                    break;
                case XenstoreMessageType.Unwatch:
                    _watches.Remove((path, args[1]));
                    break;
                case XenstoreMessageType.TransactionStart:
                    reply = XenstorePayload.Strings(TransactionId.ToString(System.Globalization.CultureInfo.InvariantCulture));
                    break;
                case XenstoreMessageType.TransactionEnd:
                    lock (_lock)
                    {
                        if (path == "T" && _conflictOnCommit)
                        {
                            _conflictOnCommit = false;
                            error = Errno.EAGAIN;
                        }
                    }
                    break;
                default:
                    error = Errno.EINVAL;
                    break;
            }
        }
        output.Add(error == Errno.None
            ? XenstoreHeader.Message(request.Type, request.RequestId, request.TransactionId, reply)
            : XenstoreHeader.Message(XenstoreMessageType.Error, request.RequestId, request.TransactionId, XenstoreWire.ErrorPayload(error)));
        return output.SelectMany(m => m).ToArray();
    }

    private void FireWatches(string path, List<byte[]> output)
    {
        foreach ((string watched, string token) in _watches)
        {
            if (path == watched || path.StartsWith(watched + "/", StringComparison.Ordinal))
            {
                output.Add(XenstoreHeader.Message(XenstoreMessageType.WatchEvent, 0, 0, XenstorePayload.Strings(path, token)));
            }
        }
    }
}
