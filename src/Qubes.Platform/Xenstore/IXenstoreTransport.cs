using System;
using Qubes.Interop.Linux;

namespace Qubes.Platform.Xenstore;

/// <summary>
/// One connection that carries xenstore messages: the loopback broker, xenstored's Unix socket or
/// the xenbus device. Requests are synchronous; watch events that arrive while a request waits for
/// its reply are queued for <see cref="TryReadWatchEvent"/>. Implementations are safe to share
/// between threads (one request at a time).
/// </summary>
public interface IXenstoreTransport : IDisposable
{
    /// <summary>A descriptor that polls readable when watch events may be pending.</summary>
    int Fd { get; }

    /// <summary>
    /// Sends one request and waits for its reply. An XS_ERROR reply comes back as its errno; a
    /// payload over <see cref="XenstoreWire.MaxPayload"/> as E2BIG without being sent. A broken
    /// connection (closed, malformed frame, reply out of step) throws <see cref="PlatformException"/>,
    /// and so does every later request.
    /// </summary>
    XenstoreReply Request(XenstoreMessageType type, uint transaction, ReadOnlySpan<byte> payload);

    /// <summary>
    /// Runs the requests in order and puts their replies into <paramref name="replies"/> in the
    /// same order. Where the transport allows, every request is sent before the first reply is read:
    /// one round trip for the lot. The store handles a connection's requests one at a time in the
    /// order they came, so each sees the effects of the ones before it. Errors and a broken
    /// connection are reported as for <see cref="Request"/>.
    /// </summary>
    void RequestBatch(ReadOnlySpan<XenstoreRequest> requests, Span<XenstoreReply> replies);

    /// <summary>Returns a queued watch event, reading what has arrived without blocking; false if none.</summary>
    bool TryReadWatchEvent(out string path, out string token);
}

/// <summary>One request of a batch.</summary>
public readonly record struct XenstoreRequest(XenstoreMessageType Type, uint Transaction, byte[] Payload);

/// <summary>The answer to one request: an errno (XS_ERROR) or the reply payload.</summary>
public readonly struct XenstoreReply
{
    /// <summary>A reply: <paramref name="error"/> is None for success, else the XS_ERROR errno.</summary>
    public XenstoreReply(Errno error, byte[] payload)
    {
        Error = error;
        Payload = payload;
    }

    /// <summary>None on success, else the errno of the XS_ERROR reply.</summary>
    public Errno Error { get; }

    /// <summary>The reply payload; empty for an error.</summary>
    public byte[] Payload { get; }

    /// <summary>True when the request succeeded.</summary>
    public bool Ok => Error == Errno.None;
}
