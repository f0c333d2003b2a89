using System;
using System.Collections.Generic;
using System.Diagnostics.CodeAnalysis;
using System.Runtime.CompilerServices;
using Qubes.Interop.Linux;

namespace Qubes.Platform.Xenstore;

/// <summary>
/// An <see cref="IXenstoreTransport"/> over a stream of <c>xsd_sockmsg</c> frames. A derived class
/// only moves bytes: <see cref="Send"/> one whole request, <see cref="Receive"/> whatever has
/// arrived. This class frames what arrives, matches each reply to its request and queues the watch
/// events found on the way.
/// </summary>
/// <remarks>
/// <para>
/// A receive may return part of a frame or several frames (the xenbus device copies out as many
/// queued bytes as fit; a socket coalesces and splits freely), so received bytes go to one buffer:
/// </para>
/// <code>
///  _input: [ frame | frame | part of a frame |        free         ]
///          0                                 _length               2 * MaxMessage
/// </code>
/// <para>
/// Whole frames are consumed from the front before anything more is read, so a receive only happens
/// while the buffer holds less than one frame (fewer than <see cref="XenstoreWire.MaxMessage"/>
/// bytes) and always has more than a whole frame of free space. A header whose len exceeds
/// <see cref="XenstoreWire.MaxPayload"/> cannot be skipped (the stream has no other framing), so it
/// fails the connection, as does end of stream, an I/O error, a reply whose req_id or type does not
/// match the outstanding request, or a reply when none is outstanding. A failed connection stays
/// failed: every later request throws <see cref="PlatformException"/> with the first errno.
/// </para>
/// <para>
/// One lock covers a whole request (send, then read to its reply) and every receive, so threads may
/// share a connection; replies can never be taken by the wrong caller.
/// </para>
/// </remarks>
public abstract class XenstoreStreamTransport : IXenstoreTransport
{
    private const int InputCapacity = 2 * XenstoreWire.MaxMessage;

    private readonly object _lock = new();
    private readonly byte[] _input = new byte[InputCapacity];
    private readonly byte[] _output = new byte[XenstoreWire.MaxMessage];
    private readonly Queue<(string Path, string Token)> _events = new();
    private readonly string _name;
    private int _length;
    private uint _nextRequest = 1;
    private Errno _failure;
    private bool _disposed;

    /// <summary>Starts with an empty buffer; <paramref name="name"/> describes the connection in exceptions.</summary>
    protected XenstoreStreamTransport(string name)
    {
        _name = name;
    }

    /// <inheritdoc/>
    public abstract int Fd { get; }

    /// <summary>Why the connection failed; None while it works.</summary>
    public Errno Failure
    {
        get
        {
            lock (_lock)
            {
                return _failure;
            }
        }
    }

    /// <summary>
    /// The lock held across each request. A derived class that must act on a reply before another
    /// thread's request runs (collect descriptors sent with it) holds it around <see cref="Request"/>;
    /// the lock is re-entrant.
    /// </summary>
    protected object SyncRoot => _lock;

    /// <inheritdoc/>
    public XenstoreReply Request(XenstoreMessageType type, uint transaction, ReadOnlySpan<byte> payload)
    {
        if (payload.Length > XenstoreWire.MaxPayload)
        {
            return new XenstoreReply(Errno.E2BIG, []);
        }
        lock (_lock)
        {
            uint id = SendRequest(type, transaction, payload);
            return AwaitReply(id, type);
        }
    }

    /// <inheritdoc/>
    public void RequestBatch(ReadOnlySpan<XenstoreRequest> requests, Span<XenstoreReply> replies)
    {
        if (replies.Length < requests.Length)
        {
            throw new ArgumentException("fewer reply slots than requests", nameof(replies));
        }
        lock (_lock)
        {
            if (!SendsAhead)
            {
                for (int i = 0; i < requests.Length; i++)
                {
                    replies[i] = Request(requests[i].Type, requests[i].Transaction, requests[i].Payload);
                }
                return;
            }
            // a request too large is answered E2BIG without being sent; every other one goes out now,
            // all in one send
            Span<uint> ids = requests.Length <= 32 ? stackalloc uint[requests.Length] : new uint[requests.Length];
            int total = 0;
            foreach (XenstoreRequest r in requests)
            {
                total += r.Payload.Length > XenstoreWire.MaxPayload ? 0 : XenstoreWire.HeaderSize + r.Payload.Length;
            }
            Span<byte> frames = total <= _output.Length ? _output : new byte[total];
            int length = 0;
            int outstanding = 0;
            for (int i = 0; i < requests.Length; i++)
            {
                XenstoreRequest r = requests[i];
                if (r.Payload.Length > XenstoreWire.MaxPayload)
                {
                    ids[i] = 0;
                    replies[i] = new XenstoreReply(Errno.E2BIG, []);
                    continue;
                }
                ids[i] = WriteRequest(frames[length..], r.Type, r.Transaction, r.Payload);
                length += XenstoreWire.HeaderSize + r.Payload.Length;
                outstanding++;
            }
            if (outstanding > 0)
            {
                SendFrames(frames[..length]);
            }
            // xenstored answers in order, but the xenbus device answers watch and unwatch requests
            // itself, possibly ahead of earlier ones: replies are matched by request id
            for (; outstanding > 0; outstanding--)
            {
                XenstoreHeader header = NextReplyFrame();
                int slot = header.RequestId == 0 ? -1 : ids.IndexOf(header.RequestId);
                if (slot < 0)
                {
                    Fail(Errno.EPROTO);
                }
                replies[slot] = TakeReply(header, requests[slot].Type);
                ids[slot] = 0;
            }
        }
    }

    /// <summary>
    /// Whether <see cref="RequestBatch"/> sends every request before reading the first reply. A
    /// transport that says no runs a batch one request at a time, with the same results.
    /// </summary>
    protected virtual bool SendsAhead => true;

    /// <summary>Sends one request (lock held); returns its id, never 0.</summary>
    private uint SendRequest(XenstoreMessageType type, uint transaction, ReadOnlySpan<byte> payload)
    {
        uint id = WriteRequest(_output, type, transaction, payload);
        SendFrames(_output.AsSpan(0, XenstoreWire.HeaderSize + payload.Length));
        return id;
    }

    /// <summary>Writes one request frame at the start of <paramref name="into"/> under a new id (lock held); returns the id, never 0.</summary>
    private uint WriteRequest(Span<byte> into, XenstoreMessageType type, uint transaction, ReadOnlySpan<byte> payload)
    {
        if (_failure != Errno.None)
        {
            ThrowFailed(_name, _failure);
        }
        uint id = _nextRequest;
        _nextRequest = _nextRequest == uint.MaxValue ? 1 : _nextRequest + 1;
        new XenstoreHeader(type, id, transaction, payload.Length).Write(into);
        payload.CopyTo(into[XenstoreWire.HeaderSize..]);
        return id;
    }

    /// <summary>Sends whole request frames (lock held); a failure fails the connection.</summary>
    private void SendFrames(ReadOnlySpan<byte> frames)
    {
        Errno sent = Send(frames);
        if (sent != Errno.None)
        {
            Fail(sent);
        }
    }

    /// <summary>Reads up to the reply to request <paramref name="id"/> (lock held), queueing the watch events before it.</summary>
    private XenstoreReply AwaitReply(uint id, XenstoreMessageType type)
    {
        XenstoreHeader header = NextReplyFrame();
        if (header.RequestId != id)
        {
            Fail(Errno.EPROTO);
        }
        return TakeReply(header, type);
    }

    /// <summary>The next frame that is not a watch event (lock held); the events before it are queued.</summary>
    private XenstoreHeader NextReplyFrame()
    {
        while (true)
        {
            XenstoreHeader header = NextFrame();
            if (header.Type != XenstoreMessageType.WatchEvent)
            {
                return header;
            }
            QueueEvent(_input.AsSpan(XenstoreWire.HeaderSize, header.Length));
            Consume(header.TotalLength);
        }
    }

    /// <summary>Consumes the reply frame at the front, which must answer a request of <paramref name="type"/> (or be an error).</summary>
    private XenstoreReply TakeReply(in XenstoreHeader header, XenstoreMessageType type)
    {
        if (header.Type != type && header.Type != XenstoreMessageType.Error)
        {
            Fail(Errno.EPROTO);
        }
        ReadOnlySpan<byte> body = _input.AsSpan(XenstoreWire.HeaderSize, header.Length);
        XenstoreReply reply = header.Type == XenstoreMessageType.Error
            ? new XenstoreReply(XenstoreWire.ParseErrorName(body), [])
            : new XenstoreReply(Errno.None, body.ToArray());
        Consume(header.TotalLength);
        return reply;
    }

    /// <inheritdoc/>
    public bool TryReadWatchEvent(out string path, out string token)
    {
        lock (_lock)
        {
            // Events may already sit in the buffer, read together with an earlier reply.
            ParseBufferedEvents();
            while (_events.Count == 0 && _failure == Errno.None && Qubes.Interop.Linux.Fd.PollIn(Fd, 0) == 1)
            {
                int n = Receive(_input.AsSpan(_length));
                if (n <= 0)
                {
                    _failure = n == 0 ? Errno.ECONNRESET : (Errno)(-n);
                    break;
                }
                _length += n;
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

    /// <summary>Closes the connection; later requests throw with EBADF.</summary>
    public void Dispose()
    {
        lock (_lock)
        {
            if (_disposed)
            {
                return;
            }
            _disposed = true;
            _failure = Errno.EBADF;
            ReleaseConnection();
        }
        GC.SuppressFinalize(this);
    }

    /// <summary>
    /// Sends whole request frames: one, or all of a batch when <see cref="SendsAhead"/>. Returns None,
    /// or the errno that fails the connection.
    /// Called with <see cref="SyncRoot"/> held, never after <see cref="ReleaseConnection"/>.
    /// </summary>
    protected abstract Errno Send(ReadOnlySpan<byte> message);

    /// <summary>
    /// Reads what has arrived into <paramref name="buffer"/> (never empty), blocking until at least
    /// one byte has. Returns the count, 0 at end of stream, or -errno. Called with
    /// <see cref="SyncRoot"/> held, never after <see cref="ReleaseConnection"/>.
    /// </summary>
    protected abstract int Receive(Span<byte> buffer);

    /// <summary>Closes the underlying descriptor (called once, under <see cref="SyncRoot"/>).</summary>
    protected abstract void ReleaseConnection();

    /// <summary>Fails the connection for good and throws <see cref="PlatformException"/> with <paramref name="errno"/>.</summary>
    [DoesNotReturn]
    protected void Fail(Errno errno)
    {
        lock (_lock)
        {
            if (_failure == Errno.None)
            {
                _failure = errno;
            }
        }
        ThrowFailed(_name, errno);
    }

    /// <summary>Returns the header of the whole frame at the start of the buffer, receiving until there is one.</summary>
    private XenstoreHeader NextFrame()
    {
        while (true)
        {
            switch (XenstoreHeader.TryRead(_input.AsSpan(0, _length), out XenstoreHeader header))
            {
                case FrameStatus.Complete:
                    return header;
                case FrameStatus.Invalid:
                    Fail(Errno.EPROTO);
                    break;
                default:
                    int n = Receive(_input.AsSpan(_length));
                    if (n <= 0)
                    {
                        Fail(n == 0 ? Errno.ECONNRESET : (Errno)(-n));
                    }
                    _length += n;
                    break;
            }
        }
    }

    /// <summary>With no request outstanding, every whole frame must be a watch event.</summary>
    private void ParseBufferedEvents()
    {
        while (_failure == Errno.None)
        {
            FrameStatus status = XenstoreHeader.TryRead(_input.AsSpan(0, _length), out XenstoreHeader header);
            if (status == FrameStatus.NeedMore)
            {
                return;
            }
            if (status == FrameStatus.Invalid || header.Type != XenstoreMessageType.WatchEvent)
            {
                _failure = Errno.EPROTO;
                return;
            }
            QueueEvent(_input.AsSpan(XenstoreWire.HeaderSize, header.Length));
            Consume(header.TotalLength);
        }
    }

    /// <summary>Queues a well-formed event; a malformed one (path not NUL-terminated) is dropped.</summary>
    private void QueueEvent(ReadOnlySpan<byte> body)
    {
        if (XenstorePayload.TryParseWatchEvent(body, out string path, out string token))
        {
            _events.Enqueue((path, token));
        }
    }

    private void Consume(int count)
    {
        _input.AsSpan(count, _length - count).CopyTo(_input);
        _length -= count;
    }

    [DoesNotReturn]
    [MethodImpl(MethodImplOptions.NoInlining)]
    private static void ThrowFailed(string name, Errno errno) => throw new PlatformException(name, errno);
}
