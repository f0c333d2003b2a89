using System;
using System.Collections.Generic;
using System.IO;
using Qubes.Interop.Linux;
using Qubes.Platform.Xenstore;

namespace Qubes.Platform.Loopback;

/// <summary>
/// The loopback hypervisor: plays Xen's part for domains that are ordinary Linux processes on one
/// host. One thread runs a poll() loop over every connection; nothing blocks in it (sockets are
/// non-blocking, a client that stops reading is dropped once its backlog passes a limit).
/// <para>
/// Identity: whoever connects to <c>DIR/dom0.sock</c> is dom0 (the directory is mode 0700: that is
/// the access control). Every other domain exists only as connections the broker created itself and
/// handed to dom0 (CreateDomain) or to the domain (Connect); a message's claims never change who sent it.
/// </para>
/// <para>
/// Data path: ring memory is the domains' own memfds and notifications are eventfd writes between
/// the two domains; the broker only sets them up, and acts for a dead domain (unmap notify).
/// </para>
/// </summary>
public sealed partial class LoopbackBroker : IDisposable
{
    /// <summary>Name of dom0's listening socket inside the broker directory.</summary>
    public const string SocketName = "dom0.sock";

    /// <summary>Most bytes queued for a client that does not read; past it the client is dropped.</summary>
    public const int MaxPendingOutput = 256 * 1024;

    /// <summary>Most received descriptors waiting for a request to claim them.</summary>
    public const int MaxQueuedFds = FdPassing.MaxFds;

    /// <summary>Most connections one domain (other than dom0) may hold.</summary>
    public const int MaxConnectionsPerDomain = 64;

    private readonly SafeFd _listener;
    private readonly SafeFd _wake;
    // the replies held while one connection's requests are handled (one connection at a time)
    private readonly System.Buffers.ArrayBufferWriter<byte> _held = new(4 * XenstoreWire.MaxMessage);
    private readonly StoreService _store;
    private readonly Dictionary<int, BrokerDomain> _domains = new();
    private readonly List<BrokerConnection> _connections = new();
    private readonly List<BrokerConnection> _doomed = new();
    private readonly BrokerDomain _dom0;
    private int _nextDomainId = 1;
    private uint _nextTransaction = 1;
    private volatile bool _stopping;
    private bool _disposed;

    /// <summary>Creates <paramref name="directory"/> (mode 0700) and listens on <c>dom0.sock</c> in it.</summary>
    public LoopbackBroker(string directory)
    {
        if (!OperatingSystem.IsLinux())
        {
            throw new PlatformNotSupportedException("the loopback broker needs Linux (memfd, eventfd, SCM_RIGHTS)");
        }
        Directory = Path.GetFullPath(directory);
        System.IO.Directory.CreateDirectory(Directory, UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute);
        File.SetUnixFileMode(Directory, UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute);
        SocketPath = Path.Combine(Directory, SocketName);
        _store = new StoreService(OnStoreChanged);
        _dom0 = new BrokerDomain(0, "dom0");
        _domains.Add(0, _dom0);
        InitialiseStore();
        _wake = EventFd.Create();
        _listener = UnixSocket.Listen(SocketPath, 64);
        Fd.SetNonBlocking(_listener.Fd, true);
    }

    /// <summary>The broker directory (absolute).</summary>
    public string Directory { get; }

    /// <summary>Path of dom0's socket.</summary>
    public string SocketPath { get; }

    /// <summary>Serves until <see cref="Stop"/>. Call on one thread only.</summary>
    public void Run()
    {
        ObjectDisposedException.ThrowIf(_disposed, this);
        var polled = new List<BrokerConnection>();
        Libc.pollfd[] fds = new Libc.pollfd[16];
        while (!_stopping)
        {
            polled.Clear();
            polled.AddRange(_connections);
            if (fds.Length < polled.Count + 2)
            {
                fds = new Libc.pollfd[(polled.Count + 2) * 2];
            }
            fds[0] = new Libc.pollfd { fd = _wake.Fd, events = Libc.POLLIN };
            fds[1] = new Libc.pollfd { fd = _listener.Fd, events = Libc.POLLIN };
            for (int i = 0; i < polled.Count; i++)
            {
                BrokerConnection c = polled[i];
                fds[i + 2] = new Libc.pollfd
                {
                    fd = c.Socket.Fd,
                    events = (short)(Libc.POLLIN | (c.Output.Count > 0 ? Libc.POLLOUT : 0)),
                };
            }
            int ready = Poll(fds, polled.Count + 2);
            if (ready < 0)
            {
                throw new LinuxException("poll", (Errno)(-ready));
            }
            if ((fds[0].revents & Libc.POLLIN) != 0)
            {
                _ = EventFd.Drain(_wake.Fd);
            }
            if (_stopping)
            {
                break;
            }
            for (int i = 0; i < polled.Count; i++)
            {
                short revents = fds[i + 2].revents;
                BrokerConnection c = polled[i];
                if (revents == 0 || c.Doomed)
                {
                    continue;
                }
                if ((revents & Libc.POLLNVAL) != 0)
                {
                    Doom(c);
                    continue;
                }
                if ((revents & Libc.POLLOUT) != 0)
                {
                    Flush(c);
                }
                if ((revents & (Libc.POLLIN | Libc.POLLHUP | Libc.POLLERR)) != 0 && !c.Doomed)
                {
                    Receive(c);
                }
                Reap();
            }
            if ((fds[1].revents & Libc.POLLIN) != 0)
            {
                AcceptDom0();
            }
            Reap();
        }
    }

    /// <summary>Asks <see cref="Run"/> to return. Safe from any thread and from signal handlers.</summary>
    public void Stop()
    {
        _stopping = true;
        _ = EventFd.Signal(_wake.Fd);
    }

    /// <summary>Closes every connection and the listening socket. Call after <see cref="Run"/> returned.</summary>
    public void Dispose()
    {
        if (_disposed)
        {
            return;
        }
        _disposed = true;
        foreach (BrokerConnection c in _connections.ToArray())
        {
            Doom(c);
        }
        Reap();
        _listener.Dispose();
        _wake.Dispose();
        try
        {
            File.Delete(SocketPath);
        }
        catch (IOException)
        {
        }
    }

    private static unsafe int Poll(Libc.pollfd[] fds, int count)
    {
        fixed (Libc.pollfd* p = fds)
        {
            while (true)
            {
                int r = Libc.poll(p, (nuint)count, -1);
                if (r >= 0)
                {
                    return r;
                }
                Errno e = LastError.Get();
                if (e != Errno.EINTR)
                {
                    return -(int)e;
                }
            }
        }
    }

    private void AcceptDom0()
    {
        while (true)
        {
            int fd = UnixSocket.Accept(_listener.Fd);
            if (fd < 0)
            {
                return; // EAGAIN: accepted all; anything else (EMFILE) is retried at the next poll
            }
            var socket = new SafeFd(fd);
            Fd.SetNonBlocking(fd, true);
            AddConnection(socket, _dom0);
        }
    }

    private BrokerConnection AddConnection(SafeFd socket, BrokerDomain domain)
    {
        var c = new BrokerConnection(socket, domain);
        domain.Connections.Add(c);
        _connections.Add(c);
        return c;
    }

    private void Receive(BrokerConnection c)
    {
        Span<int> received = stackalloc int[FdPassing.MaxFds];
        int n = FdPassing.Receive(c.Socket.Fd, c.Input.AsSpan(c.InputLength), received, out int fdCount);
        for (int i = 0; i < fdCount; i++)
        {
            c.Fds.Enqueue(new SafeFd(received[i]));
        }
        if (n == -(int)Errno.EAGAIN)
        {
            return;
        }
        if (n <= 0 || c.Fds.Count > MaxQueuedFds)
        {
            Doom(c); // EOF, error, or descriptors nobody asked for
            return;
        }
        c.InputLength += n;
        int consumed = 0;
        c.Held = _held;
        while (!c.Doomed)
        {
            ReadOnlySpan<byte> pending = c.Input.AsSpan(consumed, c.InputLength - consumed);
            FrameStatus status = XenstoreHeader.TryRead(pending, out XenstoreHeader header);
            if (status == FrameStatus.Invalid)
            {
                Doom(c);
                break;
            }
            if (status == FrameStatus.NeedMore)
            {
                break;
            }
            Dispatch(c, header, pending.Slice(XenstoreWire.HeaderSize, header.Length));
            consumed += header.TotalLength;
        }
        Release(c);
        if (consumed > 0 && !c.Doomed)
        {
            c.Input.AsSpan(consumed, c.InputLength - consumed).CopyTo(c.Input);
            c.InputLength -= consumed;
        }
    }

    private void Dispatch(BrokerConnection c, in XenstoreHeader header, ReadOnlySpan<byte> payload)
    {
        int expected = RequestParser.ExpectedFds((MessageType)header.Type);
        if (c.Fds.Count < expected)
        {
            ReplyError(c, header, Errno.EINVAL);
            return;
        }
        SafeFd? attached = expected == 1 ? c.Fds.Dequeue() : null;
        try
        {
            Errno e = RequestParser.Parse(header, payload, out BrokerRequest request);
            if (e == Errno.None)
            {
                e = Handle(c, request, attached);
            }
            if (e != Errno.None)
            {
                ReplyError(c, header, e);
            }
        }
        catch (LinuxException failure)
        {
            // Out of descriptors or memory while setting something up: that request fails, nothing else.
            ReplyError(c, header, failure.Errno);
        }
        catch (Exception bug) when (bug is not OutOfMemoryException)
        {
            // A broker bug reached by this request: drop the connection rather than every domain.
            Console.Error.WriteLine($"qubes-lohv: request {(MessageType)header.Type} from domain {c.Domain.Id} failed, dropping the connection: {bug}");
            Doom(c);
        }
        finally
        {
            attached?.Dispose();
        }
    }

    /// <summary>Handles one well-formed request. Returns None when it replied, else the errno to reply with.</summary>
    private Errno Handle(BrokerConnection c, in BrokerRequest r, SafeFd? attached) => r.Type switch
    {
        MessageType.Read => StoreRead(c, r),
        MessageType.Directory => StoreDirectory(c, r),
        MessageType.GetPerms => StoreGetPermissions(c, r),
        MessageType.Write or MessageType.Mkdir or MessageType.Rm => StoreChange(c, r),
        MessageType.SetPerms => StoreSetPermissions(c, r),
        MessageType.Watch => StoreWatch(c, r),
        MessageType.Unwatch => StoreUnwatch(c, r),
        MessageType.TransactionStart => StoreTransactionStart(c, r),
        MessageType.TransactionEnd => StoreTransactionEnd(c, r),
        MessageType.GetDomainPath => StoreGetDomainPath(c, r),
        MessageType.CreateDomain => CreateDomain(c, r),
        MessageType.DestroyDomain => DestroyDomain(c, r),
        MessageType.Connect => ConnectAgain(c, r),
        MessageType.IsAlive => IsAlive(c, r),
        MessageType.GrantAlloc => GrantAlloc(c, r, attached!),
        MessageType.GrantMap => GrantMap(c, r),
        MessageType.GrantFree => GrantFree(c, r),
        MessageType.UnmapNotifySet => UnmapNotifySet(c, r),
        MessageType.UnmapNotifyClear => UnmapNotifyClear(c, r),
        MessageType.EvtchnAllocUnbound => EvtchnAllocUnbound(c, r),
        MessageType.EvtchnBind => EvtchnBind(c, r),
        MessageType.EvtchnClose => EvtchnClose(c, r),
        MessageType.EvtchnStatus => EvtchnStatus(c, r),
        _ => Errno.EINVAL,
    };

    private void ReplyError(BrokerConnection c, in XenstoreHeader request, Errno errno)
    {
        string name = XenstoreWire.ErrorName(errno);
        Span<byte> payload = stackalloc byte[name.Length + 1];
        for (int i = 0; i < name.Length; i++)
        {
            payload[i] = (byte)name[i];
        }
        payload[^1] = 0;
        Send(c, MessageType.Error, request.RequestId, request.TransactionId, payload, []);
    }

    private void ReplyOk(BrokerConnection c, in BrokerRequest r) =>
        Send(c, r.Type, r.RequestId, r.TransactionId, "OK\0"u8, []);

    /// <summary>Queues one message; sends at once when nothing is queued before it. Never blocks.</summary>
    private void Send(BrokerConnection c, MessageType type, uint requestId, uint transactionId, ReadOnlySpan<byte> payload, ReadOnlySpan<int> fds)
    {
        if (c.Doomed)
        {
            return;
        }
        int length = XenstoreWire.HeaderSize + payload.Length;
        if (c.Held is { } held)
        {
            if (fds.IsEmpty)
            {
                WriteFrame(held.GetSpan(length), type, requestId, transactionId, payload);
                held.Advance(length);
                return;
            }
            // descriptors travel with their own message: what was held goes first
            SendHeld(c, held);
        }
        byte[] message = new byte[length];
        WriteFrame(message, type, requestId, transactionId, payload);
        SendMessage(c, message, fds);
    }

    private static void WriteFrame(Span<byte> destination, MessageType type, uint requestId, uint transactionId, ReadOnlySpan<byte> payload)
    {
        Wire.WriteHeader(destination, type, requestId, transactionId, payload.Length);
        payload.CopyTo(destination[XenstoreWire.HeaderSize..]);
    }

    /// <summary>Stops holding replies for <paramref name="c"/> and sends what was held.</summary>
    private void Release(BrokerConnection c)
    {
        if (c.Held is { } held)
        {
            c.Held = null;
            SendHeld(c, held);
        }
    }

    /// <summary>Sends the replies held so far as one message and empties the buffer.</summary>
    private void SendHeld(BrokerConnection c, System.Buffers.ArrayBufferWriter<byte> held)
    {
        if (held.WrittenCount > 0 && !c.Doomed)
        {
            SendMessage(c, held.WrittenSpan.ToArray(), []);
        }
        held.ResetWrittenCount();
    }

    /// <summary>Sends now, or queues the rest for <see cref="Flush"/> when the socket is full or output already waits.</summary>
    private void SendMessage(BrokerConnection c, byte[] message, ReadOnlySpan<int> fds)
    {
        int sent = 0;
        if (c.Output.Count == 0)
        {
            sent = FdPassing.SendSome(c.Socket.Fd, message, fds);
            if (sent == message.Length)
            {
                return;
            }
            if (sent < 0 && sent != -(int)Errno.EAGAIN)
            {
                Doom(c);
                return;
            }
        }
        var pending = new PendingOutput(message, []);
        if (sent > 0)
        {
            pending.Offset = sent; // the descriptors went with the first byte
        }
        else if (fds.Length > 0)
        {
            var copies = new SafeFd[fds.Length];
            for (int i = 0; i < fds.Length; i++)
            {
                copies[i] = new SafeFd(Libc.fcntl(fds[i], Libc.F_DUPFD_CLOEXEC, 0));
            }
            pending.Fds = copies;
        }
        c.Output.Enqueue(pending);
        c.OutputBytes += message.Length - pending.Offset;
        if (c.OutputBytes > MaxPendingOutput)
        {
            Doom(c);
        }
    }

    private void Flush(BrokerConnection c)
    {
        Span<int> fds = stackalloc int[FdPassing.MaxFds];
        while (c.Output.Count > 0)
        {
            PendingOutput p = c.Output.Peek();
            int count = 0;
            foreach (SafeFd f in p.Fds)
            {
                fds[count++] = f.Fd;
            }
            int sent = FdPassing.SendSome(c.Socket.Fd, p.Data.AsSpan(p.Offset), fds[..count]);
            if (sent == -(int)Errno.EAGAIN)
            {
                return;
            }
            if (sent <= 0)
            {
                Doom(c);
                return;
            }
            foreach (SafeFd f in p.Fds)
            {
                f.Dispose();
            }
            p.Fds = [];
            p.Offset += sent;
            c.OutputBytes -= sent;
            if (p.Offset < p.Data.Length)
            {
                return;
            }
            c.Output.Dequeue();
        }
    }

    private static void Doom(BrokerConnection c) => c.Doomed = true;

    /// <summary>Closes doomed connections (and kills domains left without one) until none is left.</summary>
    private void Reap()
    {
        while (true)
        {
            _doomed.Clear();
            foreach (BrokerConnection c in _connections)
            {
                if (c.Doomed)
                {
                    _doomed.Add(c);
                }
            }
            if (_doomed.Count == 0)
            {
                return;
            }
            foreach (BrokerConnection c in _doomed)
            {
                CloseConnection(c);
            }
        }
    }

    /// <summary>
    /// A connection ended (its process exited, it misbehaved, or its domain was destroyed): fire its
    /// unmap notifies, revoke its grants, close its ports, drop its watches and transactions. The last
    /// connection of a domain takes the domain with it.
    /// </summary>
    private void CloseConnection(BrokerConnection c)
    {
        _connections.Remove(c);
        BrokerDomain d = c.Domain;
        d.Connections.Remove(c);
        foreach (UnmapNotify n in c.Notifies.Values)
        {
            n.Fire();
            n.Release();
        }
        c.Notifies.Clear();
        foreach (Grant g in c.Grants)
        {
            d.Grants.Remove(g.Reference);
            g.Memory.Release();
        }
        c.Grants.Clear();
        foreach (Port p in new List<Port>(c.Ports))
        {
            ClosePort(p);
        }
        c.Watches.Clear();
        foreach (StoreTransaction tx in c.Transactions.Values)
        {
            _store.Release(tx);
        }
        c.Transactions.Clear();
        while (c.Fds.Count > 0)
        {
            c.Fds.Dequeue().Dispose();
        }
        while (c.Output.Count > 0)
        {
            foreach (SafeFd f in c.Output.Dequeue().Fds)
            {
                f.Dispose();
            }
        }
        c.Socket.Dispose();
        if (d.Id != 0 && d.Connections.Count == 0)
        {
            KillDomain(d);
        }
    }
}
