using System;
using System.Collections.Generic;
using Qubes.Interop.Linux;
using Qubes.Platform.Xenstore;

namespace Qubes.Platform.Xen;

/// <summary>
/// xenstore through xenstored's Unix stream socket (dom0 only; root or the xenstored group). The
/// socket is a plain byte stream: a request may go out in several pieces and replies arrive split
/// or coalesced at will; <see cref="XenstoreStreamTransport"/> does the framing.
/// </summary>
public sealed class XenstoredSocketTransport : XenstoreStreamTransport
{
    private readonly SafeFd _socket;

    /// <summary>Uses a connected stream socket and takes ownership of it; it is switched to blocking mode.</summary>
    public XenstoredSocketTransport(SafeFd socket) : base("xenstore connection (xenstored socket)")
    {
        ArgumentNullException.ThrowIfNull(socket);
        _socket = socket;
        Qubes.Interop.Linux.Fd.SetNonBlocking(socket.Fd, false);
    }

    /// <summary>Where xenstored listens, in order of preference (<c>/var/run</c> is the historical place).</summary>
    public static IReadOnlyList<string> DefaultPaths { get; } = ["/run/xenstored/socket", "/var/run/xenstored/socket"];

    /// <inheritdoc/>
    public override int Fd => _socket.Fd;

    /// <summary>Connects to the socket at <paramref name="path"/>; null with the errno if that fails (missing, refused, no permission).</summary>
    public static XenstoredSocketTransport? TryConnect(string path, out Errno error)
    {
        SafeFd? socket = UnixSocket.TryConnect(path, out error);
        if (socket is null)
        {
            return null;
        }
        try
        {
            return new XenstoredSocketTransport(socket);
        }
        catch (LinuxException e)
        {
            socket.Dispose();
            error = e.Errno;
            return null;
        }
    }

    /// <summary>Connects to the socket at <paramref name="path"/>; throws <see cref="PlatformException"/> if that fails.</summary>
    public static XenstoredSocketTransport Connect(string path) =>
        TryConnect(path, out Errno error) ?? throw new PlatformException($"connect {path}", error);

    /// <summary>sendmsg without SIGPIPE, continued until the whole message is out.</summary>
    /// <summary>
    /// Batches go one request at a time here: with a transaction's requests sent ahead, a vchan
    /// server in dom0 never finished publishing on real Xen, and why is not known yet.
    /// </summary>
    protected override bool SendsAhead => false;

    protected override Errno Send(ReadOnlySpan<byte> message) => FdPassing.Send(_socket.Fd, message, []);

    /// <inheritdoc/>
    protected override int Receive(Span<byte> buffer) => Qubes.Interop.Linux.Fd.Read(_socket.Fd, buffer);

    /// <inheritdoc/>
    protected override void ReleaseConnection() => _socket.Dispose();
}
