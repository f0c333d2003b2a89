using System;
using System.Buffers.Binary;
using System.Collections.Generic;
using System.Text;
using Qubes.Interop.Linux;

namespace Qubes.Platform.Loopback;

/// <summary>The answer to one request: an errno (XS_ERROR) or a payload with any descriptors sent along.</summary>
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
/// A domain's end of one broker connection. Requests are synchronous (send, then read until the
/// reply with the same req_id); watch events that arrive meanwhile are queued for
/// <see cref="TryReadWatchEvent"/>. A lock lets several threads share one connection.
/// The broker is trusted (it plays the hypervisor), but a broken stream still fails cleanly.
/// </summary>
internal sealed class BrokerClient : IDisposable
{
    private readonly SafeFd _socket;
    private readonly object _lock = new();
    private readonly byte[] _input = new byte[2 * Wire.MaxMessage];
    private readonly Queue<SafeFd> _fds = new();
    private readonly Queue<(string Path, string Token)> _events = new();
    private int _length;
    private uint _nextRequest = 1;
    private Errno _broken;

    public BrokerClient(SafeFd socket)
    {
        _socket = socket;
        Qubes.Interop.Linux.Fd.SetNonBlocking(socket.Fd, false);
    }

    public int Fd => _socket.Fd;

    public BrokerReply Request(MessageType type, uint transaction, ReadOnlySpan<byte> payload, ReadOnlySpan<int> fds = default)
    {
        if (payload.Length > Wire.MaxPayload)
        {
            return new BrokerReply(Errno.E2BIG, [], []);
        }
        byte[] message = new byte[Wire.HeaderSize + payload.Length];
        lock (_lock)
        {
            if (_broken != Errno.None)
            {
                throw new PlatformException("loopback broker connection", _broken);
            }
            uint id = _nextRequest;
            _nextRequest = unchecked(_nextRequest + 1);
            Wire.WriteHeader(message, type, id, transaction, payload.Length);
            payload.CopyTo(message.AsSpan(Wire.HeaderSize));
            Errno e = FdPassing.Send(_socket.Fd, message, fds);
            if (e != Errno.None)
            {
                Break(e);
            }
            while (true)
            {
                FrameStatus status = MessageHeader.TryRead(_input.AsSpan(0, _length), out MessageHeader header);
                if (status == FrameStatus.Invalid)
                {
                    Break(Errno.EPROTO);
                }
                if (status == FrameStatus.NeedMore)
                {
                    ReceiveMore();
                    continue;
                }
                byte[] body = _input.AsSpan(Wire.HeaderSize, header.Length).ToArray();
                Consume(header.TotalLength);
                if (header.Type == MessageType.WatchEvent)
                {
                    QueueEvent(body);
                    continue;
                }
                if (header.RequestId != id)
                {
                    Break(Errno.EPROTO);
                }
                if (header.Type == MessageType.Error)
                {
                    return new BrokerReply(Wire.ParseErrorName(body), [], []);
                }
                if (header.Type != type)
                {
                    Break(Errno.EPROTO);
                }
                int expected = ReplyFds(type, body);
                if (_fds.Count < expected)
                {
                    Break(Errno.EPROTO);
                }
                var received = new SafeFd[expected];
                for (int i = 0; i < expected; i++)
                {
                    received[i] = _fds.Dequeue();
                }
                return new BrokerReply(Errno.None, body, received);
            }
        }
    }

    /// <summary>Returns a queued watch event, reading what the socket has without blocking.</summary>
    public bool TryReadWatchEvent(out string path, out string token)
    {
        lock (_lock)
        {
            // Events may already sit in the buffer (read together with an earlier reply).
            ParseBufferedEvents();
            while (_events.Count == 0 && _broken == Errno.None && Qubes.Interop.Linux.Fd.PollIn(_socket.Fd, 0) == 1)
            {
                try
                {
                    ReceiveMore();
                }
                catch (PlatformException)
                {
                    break;
                }
                ParseBufferedEvents();
            }
            if (_events.Count > 0)
            {
                (path, token) = _events.Dequeue();
                return true;
            }
            path = "";
            token = "";
            return false;
        }
    }

    /// <summary>With no request outstanding, whatever is buffered can only be watch events.</summary>
    private void ParseBufferedEvents()
    {
        while (MessageHeader.TryRead(_input.AsSpan(0, _length), out MessageHeader header) == FrameStatus.Complete)
        {
            if (header.Type == MessageType.WatchEvent)
            {
                QueueEvent(_input.AsSpan(Wire.HeaderSize, header.Length));
            }
            Consume(header.TotalLength);
        }
    }

    public void Dispose()
    {
        lock (_lock)
        {
            _socket.Dispose();
            while (_fds.Count > 0)
            {
                _fds.Dequeue().Dispose();
            }
            _broken = Errno.EBADF;
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

    private void QueueEvent(ReadOnlySpan<byte> body)
    {
        int nul = body.IndexOf((byte)0);
        if (nul < 0)
        {
            return;
        }
        ReadOnlySpan<byte> token = body[(nul + 1)..];
        int end = token.IndexOf((byte)0);
        if (end >= 0)
        {
            token = token[..end];
        }
        _events.Enqueue((Encoding.UTF8.GetString(body[..nul]), Encoding.UTF8.GetString(token)));
    }

    private void ReceiveMore()
    {
        Span<int> received = stackalloc int[FdPassing.MaxFds];
        int n = FdPassing.Receive(_socket.Fd, _input.AsSpan(_length), received, out int count);
        for (int i = 0; i < count; i++)
        {
            _fds.Enqueue(new SafeFd(received[i]));
        }
        if (n == 0)
        {
            Break(Errno.ECONNRESET);
        }
        if (n < 0)
        {
            Break((Errno)(-n));
        }
        _length += n;
    }

    private void Consume(int count)
    {
        _input.AsSpan(count, _length - count).CopyTo(_input);
        _length -= count;
    }

    [System.Diagnostics.CodeAnalysis.DoesNotReturn]
    private void Break(Errno errno)
    {
        _broken = errno;
        throw new PlatformException("loopback broker connection", errno);
    }
}
