using System;
using System.IO;
using System.Net.Sockets;
using System.Text;
using Qubes.Interop.Linux;

namespace Qubes.Qrexec.Runtime;

/// <summary>A local client's connection to a qrexec-daemon socket (spec §5.2, §6).</summary>
public sealed class DaemonConnection : IDisposable
{
    private const int TimeoutMs = 30_000;
    private readonly SafeFd _socket;
    private readonly string _path;

    private DaemonConnection(SafeFd socket, string path)
    {
        _socket = socket;
        _path = path;
    }

    /// <summary>The socket (open until disposed; the daemon closes it when the call it allocated ends).</summary>
    public int Fd => _socket.Fd;

    /// <summary>The socket path for <paramref name="target"/> (domid, name or <c>uuid:…</c>).</summary>
    public static string SocketPath(string socketDirectory, string target) => Path.Combine(socketDirectory, "qrexec." + target);

    /// <summary>Connects and handshakes; null with a reason when the daemon is not there or not compatible.</summary>
    public static DaemonConnection? Open(string socketDirectory, string target, out string? error)
    {
        string path = SocketPath(socketDirectory, target);
        SafeFd? socket = UnixSocket.TryConnect(path, out Errno errno);
        if (socket == null)
        {
            error = $"cannot connect to {path}: {errno}";
            return null;
        }
        (MessageHeader Header, byte[] Body)? hello = Io.ReadMessage(socket.Fd, 4, TimeoutMs);
        if (hello is not { } h || Messages.CheckHello(h.Header, h.Body, QrexecProtocol.MinClientVersion, out _) == 0
            || !Io.WriteAll(socket.Fd, Messages.Hello(QrexecProtocol.ClientVersion)))
        {
            socket.Dispose();
            error = $"{path}: bad handshake";
            return null;
        }
        error = null;
        return new DaemonConnection(socket, path);
    }

    /// <summary>Sends one command and, when <paramref name="expectReply"/>, reads the 8-byte reply {domain, port}.</summary>
    public (uint Domain, uint Port)? Command(byte[] message, bool expectReply)
        => expectReply ? Command(message, TimeSpan.FromMilliseconds(TimeoutMs), out _) : Io.WriteAll(_socket.Fd, message) ? (0, 0) : null;

    /// <summary>
    /// Sends one command that allocates a data port and reads the reply {domain, port}. The daemon
    /// answers once a port is free: the wait lasts up to <paramref name="replyTimeout"/>
    /// (<see cref="System.Threading.Timeout.InfiniteTimeSpan"/>: no limit). Null with the reason in
    /// <paramref name="error"/> when the daemon refused, or no port was free in time.
    /// </summary>
    public (uint Domain, uint Port)? Command(byte[] message, TimeSpan replyTimeout, out string? error)
    {
        ArgumentNullException.ThrowIfNull(message);
        if (!Io.WriteAll(_socket.Fd, message))
        {
            error = $"{_path}: the daemon closed the connection";
            return null;
        }
        int waitMs = replyTimeout == System.Threading.Timeout.InfiniteTimeSpan ? -1 : (int)Math.Clamp(replyTimeout.TotalMilliseconds, 0, int.MaxValue);
        if (Qubes.Interop.Linux.Fd.PollIn(_socket.Fd, waitMs) == 0)
        {
            error = $"no data port became free at {_path} within {replyTimeout.TotalSeconds:0.#} s (every port busy with other calls)";
            return null;
        }
        (MessageHeader Header, byte[] Body)? reply = Io.ReadMessage(_socket.Fd, QrexecProtocol.ExecParamsSize, TimeoutMs);
        if (reply is not { } r || r.Body.Length != QrexecProtocol.ExecParamsSize || r.Header.Type != MessageHeader.Read(message).Type)
        {
            error = $"{_path}: the daemon refused the command";
            return null;
        }
        error = null;
        return Io.ExecParams(r.Body);
    }

    /// <summary>Blocks until the daemon closes the connection (the call that allocated its port ended).</summary>
    public void WaitClosed()
    {
        Span<byte> buffer = stackalloc byte[64];
        while (Qubes.Interop.Linux.Fd.Read(_socket.Fd, buffer) > 0)
        {
        }
    }

    public void Dispose() => _socket.Dispose();
}

/// <summary>A call to qubesd (Admin API framing, core-stack spec §9): for autostart and disposables.</summary>
public static class QubesdCall
{
    /// <summary>Calls <paramref name="method"/> on <paramref name="destination"/> as dom0. Returns the content on success, null with the error otherwise.</summary>
    public static string? Call(string socketPath, string method, string destination, string payload, out string? error)
    {
        try
        {
            using Socket socket = new(AddressFamily.Unix, SocketType.Stream, ProtocolType.Unspecified);
            socket.Connect(new UnixDomainSocketEndPoint(socketPath));
            socket.Send(Encoding.UTF8.GetBytes($"{method}+ dom0 name {destination}\0{payload}"));
            socket.Shutdown(SocketShutdown.Send);
            using MemoryStream reply = new();
            byte[] buffer = new byte[4096];
            int n;
            while ((n = socket.Receive(buffer)) > 0)
            {
                reply.Write(buffer, 0, n);
            }
            byte[] bytes = reply.ToArray();
            if (bytes.Length >= 2 && bytes[0] == (byte)'0' && bytes[1] == 0)
            {
                error = null;
                return Encoding.UTF8.GetString(bytes, 2, bytes.Length - 2);
            }
            string[] parts = Encoding.UTF8.GetString(bytes).Split('\0');
            error = parts.Length >= 4 && parts[0] == "2" ? parts[1] + ": " + parts[3] : "malformed reply";
            return null;
        }
        catch (SocketException e)
        {
            error = $"qubesd {socketPath}: {e.SocketErrorCode}";
            return null;
        }
    }
}
