using System;
using System.Buffers.Binary;
using System.Diagnostics;
using Qubes.Interop.Linux;
using Qubes.Qrexec.Transport;
using LinuxFd = Qubes.Interop.Linux.Fd;

namespace Qubes.Qrexec.Runtime;

/// <summary>Blocking helpers for the set-up paths: handshakes, control messages, local sockets.</summary>
public static class Io
{
    /// <summary>Receives exactly <paramref name="buffer"/>.Length bytes from a channel (longer than its ring, too). False when it closed first.</summary>
    public static bool ReadExact(IQrexecChannel channel, Span<byte> buffer)
    {
        ArgumentNullException.ThrowIfNull(channel);
        bool blocking = channel.Blocking;
        channel.Blocking = true;
        try
        {
            int done = 0;
            while (done < buffer.Length)
            {
                int n = channel.Read(buffer[done..]);
                if (n <= 0)
                {
                    return false;
                }
                done += n;
            }
            return true;
        }
        finally
        {
            channel.Blocking = blocking;
        }
    }

    /// <summary>Writes all of <paramref name="data"/> to a channel, waiting for space. False when the peer is gone.</summary>
    public static bool WriteAll(IQrexecChannel channel, ReadOnlySpan<byte> data)
    {
        ArgumentNullException.ThrowIfNull(channel);
        bool blocking = channel.Blocking;
        channel.Blocking = true;
        try
        {
            int done = 0;
            while (done < data.Length)
            {
                int n = channel.Write(data[done..]);
                if (n <= 0)
                {
                    return false;
                }
                done += n;
            }
            return true;
        }
        finally
        {
            channel.Blocking = blocking;
        }
    }

    /// <summary>Reads one message (header and body) from a channel; null when it closed.</summary>
    public static byte[]? ReadBody(IQrexecChannel channel, MessageHeader header)
    {
        byte[] body = new byte[header.Length];
        return ReadExact(channel, body) ? body : null;
    }

    /// <summary>
    /// The data-channel handshake (§5.3): send HELLO{4} first, or receive first. Returns the
    /// negotiated version, or 0 when the peer's answer was not an acceptable HELLO.
    /// </summary>
    public static uint DataHandshake(IQrexecChannel channel, bool sendFirst)
    {
        ArgumentNullException.ThrowIfNull(channel);
        if (sendFirst)
        {
            return SendHello(channel) ? ReceiveHello(channel) : 0;
        }
        uint version = ReceiveHello(channel);
        return version != 0 && SendHello(channel) ? version : 0;
    }

    /// <summary>
    /// The handshake of a data channel's server end: HELLO goes out at once (it waits in the ring),
    /// so the client can answer as soon as it connects, without waiting for this side to notice the
    /// connection and remove its store entry; then up to <paramref name="timeout"/> for the client
    /// and its HELLO. Returns the version; 0 with <paramref name="connected"/> false when no client
    /// came, 0 with it true when the client's answer was not an acceptable HELLO.
    /// </summary>
    public static uint ServerHandshake(IQrexecChannel channel, TimeSpan timeout, out bool connected)
    {
        ArgumentNullException.ThrowIfNull(channel);
        connected = SendHello(channel) && channel.WaitConnected(timeout);
        return connected ? ReceiveHello(channel) : 0;
    }

    private static bool SendHello(IQrexecChannel channel) => WriteAll(channel, Messages.Hello(QrexecProtocol.AgentVersion));

    /// <summary>Reads and checks the peer's data-channel HELLO. Returns the agreed version, 0 on failure.</summary>
    private static uint ReceiveHello(IQrexecChannel channel)
    {
        ArgumentNullException.ThrowIfNull(channel);
        Span<byte> received = stackalloc byte[QrexecProtocol.HeaderSize + 4];
        if (!ReadExact(channel, received[..QrexecProtocol.HeaderSize]))
        {
            return 0;
        }
        MessageHeader header = MessageHeader.Read(received);
        if (header.Type != MessageType.Hello || header.Length != 4 || !ReadExact(channel, received[QrexecProtocol.HeaderSize..]))
        {
            return 0;
        }
        return Messages.CheckHello(header, received[QrexecProtocol.HeaderSize..], QrexecProtocol.MinDataVersion, out _);
    }

    /// <summary>Reads exactly <paramref name="buffer"/>.Length bytes from a descriptor within <paramref name="timeoutMs"/> (−1: none). Returns the count read: less on EOF, timeout or error.</summary>
    public static int ReadExact(int fd, Span<byte> buffer, int timeoutMs)
    {
        long deadline = timeoutMs < 0 ? long.MaxValue : Stopwatch.GetTimestamp() + timeoutMs * Stopwatch.Frequency / 1000;
        int done = 0;
        while (done < buffer.Length)
        {
            int wait = deadline == long.MaxValue ? -1 : (int)Math.Max(0, (deadline - Stopwatch.GetTimestamp()) * 1000 / Stopwatch.Frequency);
            if (LinuxFd.PollIn(fd, wait) <= 0)
            {
                return done;
            }
            int n = LinuxFd.Read(fd, buffer[done..]);
            if (n == -(int)Errno.EAGAIN)
            {
                continue;
            }
            if (n <= 0)
            {
                return done;
            }
            done += n;
        }
        return done;
    }

    /// <summary>Reads one message from a local socket within <paramref name="timeoutMs"/>: the header, then at most <paramref name="maxBody"/> body bytes. Null on EOF, timeout or an oversized body.</summary>
    public static (MessageHeader Header, byte[] Body)? ReadMessage(int fd, int maxBody, int timeoutMs)
    {
        Span<byte> raw = stackalloc byte[QrexecProtocol.HeaderSize];
        if (ReadExact(fd, raw, timeoutMs) != raw.Length)
        {
            return null;
        }
        MessageHeader header = MessageHeader.Read(raw);
        if (header.Length > (uint)maxBody)
        {
            return (header, []);
        }
        byte[] body = new byte[header.Length];
        return ReadExact(fd, body, timeoutMs) == body.Length ? (header, body) : null;
    }

    /// <summary>Writes all of <paramref name="data"/> to a descriptor. False on error.</summary>
    public static bool WriteAll(int fd, ReadOnlySpan<byte> data) => LinuxFd.WriteAll(fd, data) == Errno.None;

    /// <summary>
    /// A listening socket at <paramref name="path"/> created with umask 0, so that any local process
    /// may connect (directory permissions still apply), as upstream creates the daemon and trigger sockets.
    /// </summary>
    public static SafeFd ListenWorldConnectable(string path, int backlog)
    {
        uint old = umask(0);
        try
        {
            return UnixSocket.Listen(path, backlog);
        }
        finally
        {
            umask(old);
        }
    }

    [System.Runtime.InteropServices.DllImport("libc.so.6")]
    private static extern uint umask(uint mask);

    /// <summary>Reads a u32 pair (exec_params without trailer).</summary>
    public static (uint Domain, uint Port) ExecParams(ReadOnlySpan<byte> body)
        => (BinaryPrimitives.ReadUInt32LittleEndian(body), BinaryPrimitives.ReadUInt32LittleEndian(body[4..]));
}
