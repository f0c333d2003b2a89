using System;
using System.Buffers.Binary;
using System.Collections.Generic;
using Qubes.Interop.Linux;
using Qubes.Platform.Xenstore;

namespace Qubes.Platform.Loopback;

/// <summary>The answer to one broker request: an errno (XS_ERROR) or a payload with any descriptors sent along.</summary>
internal readonly struct BrokerReply
{
    public BrokerReply(Errno error, byte[] payload, SafeFd[] fds)
    {
        Error = error;
        Payload = payload;
        Fds = fds;
    }

    public Errno Error { get; }

    public byte[] Payload { get; }

    /// <summary>Owned by the caller.</summary>
    public SafeFd[] Fds { get; }

    public bool Ok => Error == Errno.None;

    public uint UInt32At(int offset) => Payload.Length >= offset + 4 ? BinaryPrimitives.ReadUInt32LittleEndian(Payload.AsSpan(offset)) : 0;

    public void DisposeFds()
    {
        foreach (SafeFd fd in Fds)
        {
            fd.Dispose();
        }
    }
}

/// <summary>
/// A domain's end of one broker connection: a xenstore transport (store requests, watch events)
/// that also carries the broker's own operations, whose requests and replies may have descriptors
/// attached (SCM_RIGHTS). The broker is trusted (it plays the hypervisor), but a broken stream still
/// fails cleanly.
/// </summary>
internal sealed class BrokerClient : XenstoreStreamTransport
{
    private static readonly int[] s_noFds = [];

    private readonly SafeFd _socket;
    private readonly Queue<SafeFd> _fds = new();

    /// <summary>Descriptors for the request being sent; set only while <see cref="XenstoreStreamTransport.SyncRoot"/> is held.</summary>
    private int[] _attach = s_noFds;

    public BrokerClient(SafeFd socket) : base("loopback broker connection")
    {
        _socket = socket;
        Qubes.Interop.Linux.Fd.SetNonBlocking(socket.Fd, false);
    }

    public override int Fd => _socket.Fd;

    /// <summary>
    /// One broker request, with <paramref name="fds"/> attached. A successful reply of a type that
    /// carries descriptors returns them (owned by the caller).
    /// </summary>
    public BrokerReply Request(MessageType type, uint transaction, ReadOnlySpan<byte> payload, ReadOnlySpan<int> fds = default)
    {
        lock (SyncRoot)
        {
            XenstoreReply reply;
            _attach = fds.IsEmpty ? s_noFds : fds.ToArray();
            try
            {
                reply = Request((XenstoreMessageType)type, transaction, payload);
            }
            finally
            {
                _attach = s_noFds;
            }
            if (!reply.Ok)
            {
                return new BrokerReply(reply.Error, [], []);
            }
            int expected = ReplyFds(type, reply.Payload);
            if (_fds.Count < expected)
            {
                Fail(Errno.EPROTO);
            }
            var received = new SafeFd[expected];
            for (int i = 0; i < expected; i++)
            {
                received[i] = _fds.Dequeue();
            }
            return new BrokerReply(Errno.None, reply.Payload, received);
        }
    }

    protected override Errno Send(ReadOnlySpan<byte> message) => FdPassing.Send(_socket.Fd, message, _attach);

    protected override int Receive(Span<byte> buffer)
    {
        Span<int> received = stackalloc int[FdPassing.MaxFds];
        int n = FdPassing.Receive(_socket.Fd, buffer, received, out int count);
        for (int i = 0; i < count; i++)
        {
            _fds.Enqueue(new SafeFd(received[i]));
        }
        return n;
    }

    protected override void ReleaseConnection()
    {
        _socket.Dispose();
        while (_fds.Count > 0)
        {
            _fds.Dequeue().Dispose();
        }
    }

    /// <summary>Descriptors the broker attaches to a successful reply of this type.</summary>
    private static int ReplyFds(MessageType type, byte[] body)
    {
        switch (type)
        {
            case MessageType.CreateDomain:
            case MessageType.Connect:
                return 1;
            case MessageType.EvtchnAllocUnbound:
            case MessageType.EvtchnBind:
                return 2;
            case MessageType.GrantMap:
            {
                // Descriptor indexes are handed out in order, so the count is the largest index + 1.
                int handled = body.Length >= 4 ? (int)Math.Min(BinaryPrimitives.ReadUInt32LittleEndian(body), Wire.MaxMapRefs) : 0;
                int count = 0;
                for (int i = 0; i < handled && 8 + 8 * i <= body.Length - 4; i++)
                {
                    count = Math.Max(count, (int)Math.Min(BinaryPrimitives.ReadUInt32LittleEndian(body.AsSpan(4 + 8 * i)), FdPassing.MaxFds - 1) + 1);
                }
                return count;
            }
            default:
                return 0;
        }
    }
}
