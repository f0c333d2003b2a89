using System;

namespace Qubes.Qrexec.Transport;

/// <summary>
/// One qrexec vchan (control or data) as the protocol layers see it: a full-duplex byte channel with
/// a descriptor to poll. Implemented over our vchan ring (loopback or Xen) and over the vchan-socket
/// convention of upstream's test backend. Not thread-safe: one thread drives a channel.
///
/// Every call is non-blocking unless <see cref="Blocking"/> is set; in blocking mode
/// <see cref="Recv"/> and <see cref="Send"/> wait until the whole buffer moved (used for handshakes).
/// A poller waits for <see cref="PollEvents"/> on <see cref="Fd"/>, then calls <see cref="Service"/>
/// before looking at <see cref="Ready"/>/<see cref="Space"/> again.
/// </summary>
public interface IQrexecChannel : IDisposable
{
    /// <summary>The descriptor to poll.</summary>
    int Fd { get; }

    /// <summary>The poll events to wait for on <see cref="Fd"/> now (POLLIN, plus POLLOUT while output is queued locally).</summary>
    short PollEvents { get; }

    /// <summary>Whether <see cref="Recv"/>/<see cref="Send"/>/<see cref="Read"/>/<see cref="Write"/> wait.</summary>
    bool Blocking { get; set; }

    /// <summary>After the poll reported <see cref="Fd"/>: acknowledge the event and move what can move. Never blocks.</summary>
    void Service();

    /// <summary>Bytes that can be read now; also asks to be woken when more arrive.</summary>
    int Ready();

    /// <summary>Bytes that can be written now; also asks to be woken when more space frees up.</summary>
    int Space();

    /// <summary>Reads up to <paramref name="buffer"/>.Length bytes; 0 when none are there (non-blocking), −1 when closed and drained.</summary>
    int Read(Span<byte> buffer);

    /// <summary>Writes up to <paramref name="data"/>.Length bytes; 0 when no space (non-blocking), −1 when the peer is gone.</summary>
    int Write(ReadOnlySpan<byte> data);

    /// <summary>Reads exactly <paramref name="buffer"/>.Length bytes or nothing (0 non-blocking when not all are there); −1 when closed.</summary>
    int Recv(Span<byte> buffer);

    /// <summary>Writes all of <paramref name="data"/> or nothing (0 non-blocking when it does not fit); −1 when the peer is gone.</summary>
    int Send(ReadOnlySpan<byte> data);

    /// <summary>
    /// Moves one data chunk from descriptor <paramref name="fd"/> into the channel without an
    /// intermediate copy where the transport allows: reads at most
    /// <c>min(Space() − 8, <paramref name="maxChunk"/>)</c> bytes from <paramref name="fd"/> and
    /// queues them behind an 8-byte qrexec header of type <paramref name="type"/> with the length
    /// actually read. The caller ensured <c>Space() &gt; 8</c>.
    /// Returns the byte count moved (&gt; 0), 0 at end of file on <paramref name="fd"/> (nothing
    /// queued), −errno when the read failed (−EAGAIN: nothing to read now; nothing queued), or
    /// <see cref="int.MinValue"/> when the channel itself failed.
    /// </summary>
    int SendChunkFromFd(MessageType type, int fd, int maxChunk);

    /// <summary>
    /// Writes up to <paramref name="count"/> of the bytes ready in the channel straight to descriptor
    /// <paramref name="fd"/> and consumes what was written. The caller ensured at least one byte is
    /// ready. Returns the count written (&gt; 0), −errno when the write failed (−EAGAIN: the
    /// descriptor is full; nothing consumed), or <see cref="int.MinValue"/> when the channel failed.
    /// </summary>
    int ReceiveToFd(int fd, int count);

    /// <summary>Discards up to <paramref name="count"/> ready bytes (a stream whose local end is gone). Returns the count discarded.</summary>
    int Skip(int count);

    /// <summary>
    /// For a server: waits until the client has connected, up to <paramref name="timeout"/>
    /// (<see cref="System.Threading.Timeout.InfiniteTimeSpan"/>: no limit). False on timeout, failure
    /// or peer death. A connected channel returns true at once.
    /// </summary>
    bool WaitConnected(TimeSpan timeout);

    /// <summary>Connection state: Waiting (server without client), Connected, Disconnected.</summary>
    Qubes.Vchan.VchanState State { get; }
}

/// <summary>Makes channels: the transport a qrexec program was configured with.</summary>
public interface IChannelFactory : IDisposable
{
    /// <summary>This domain's id on the transport.</summary>
    int LocalDomain { get; }

    /// <summary>
    /// Becomes the vchan server for <paramref name="peerDomain"/> on <paramref name="port"/>; returns
    /// at once (the channel is Waiting until the client arrives).
    /// </summary>
    IQrexecChannel Listen(int peerDomain, int port, int readMin, int writeMin);

    /// <summary>
    /// Connects as client to the server <paramref name="serverDomain"/> on <paramref name="port"/>,
    /// waiting up to <paramref name="timeout"/> (<see cref="System.Threading.Timeout.InfiniteTimeSpan"/>: no limit)
    /// for the server to appear. Null on timeout or failure, with the reason in <paramref name="error"/>.
    /// </summary>
    IQrexecChannel? Connect(int serverDomain, int port, TimeSpan timeout, out string? error);
}
