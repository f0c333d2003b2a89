using System;
using System.Buffers.Binary;
using System.Net.Sockets;
using Xunit;

namespace Qubes.Qrexec.Tests.Validation;

/// <summary>A raw client of a local Unix socket (the daemon socket or the agent's trigger socket), with deadlines on every read.</summary>
internal sealed class LocalClient : IDisposable
{
    private readonly Socket _socket;

    public LocalClient(string path)
    {
        _socket = new Socket(AddressFamily.Unix, SocketType.Stream, ProtocolType.Unspecified);
        _socket.Connect(new UnixDomainSocketEndPoint(path));
        _socket.ReceiveTimeout = ChannelPeer.TimeoutMs;
        _socket.SendTimeout = ChannelPeer.TimeoutMs;
    }

    public void Send(ReadOnlySpan<byte> data)
    {
        while (!data.IsEmpty)
        {
            data = data[_socket.Send(data)..];
        }
    }

    /// <summary>Sends, but tolerates a peer that already closed (the check under test may close before reading all).</summary>
    public void SendIgnoringClose(ReadOnlySpan<byte> data)
    {
        try
        {
            Send(data);
        }
        catch (SocketException e) when (e.SocketErrorCode is SocketError.ConnectionReset or SocketError.Shutdown or SocketError.ConnectionAborted)
        {
        }
    }

    public void SendHeader(uint type, uint length)
    {
        byte[] header = new byte[QrexecProtocol.HeaderSize];
        new MessageHeader((MessageType)type, length).Write(header);
        Send(header);
    }

    /// <summary>Exactly <paramref name="count"/> bytes; fails the test on EOF or timeout.</summary>
    public byte[] ReceiveExact(int count)
    {
        byte[] buffer = new byte[count];
        int done = 0;
        while (done < count)
        {
            int n = _socket.Receive(buffer, done, count - done, SocketFlags.None);
            Assert.True(n > 0, $"EOF after {done} of {count} bytes");
            done += n;
        }
        return buffer;
    }

    public (MessageHeader Header, byte[] Body) ReceiveMessage()
    {
        MessageHeader header = MessageHeader.Read(ReceiveExact(QrexecProtocol.HeaderSize));
        Assert.True(header.Length <= 1 << 16, $"implausible length {header.Length}");
        return (header, ReceiveExact((int)header.Length));
    }

    /// <summary>The daemon's HELLO; returns its version.</summary>
    public uint ReceiveHello()
    {
        (MessageHeader header, byte[] body) = ReceiveMessage();
        Assert.Equal(MessageType.Hello, header.Type);
        Assert.Equal(4u, header.Length);
        return BinaryPrimitives.ReadUInt32LittleEndian(body);
    }

    /// <summary>
    /// True when the other end closed the connection before sending anything (EOF, or a reset when
    /// it closed with our bytes unread); false when data arrived or nothing happened in time.
    /// </summary>
    public bool ClosedByPeer(int timeoutMs = ChannelPeer.TimeoutMs)
    {
        if (!_socket.Poll(TimeSpan.FromMilliseconds(timeoutMs), SelectMode.SelectRead))
        {
            return false;
        }
        try
        {
            return _socket.Receive(new byte[1]) == 0;
        }
        catch (SocketException e) when (e.SocketErrorCode is SocketError.ConnectionReset or SocketError.ConnectionAborted)
        {
            return true;
        }
    }

    /// <summary>True when the other end closed cleanly: EOF, with nothing sent before it.</summary>
    public bool Eof(int timeoutMs = ChannelPeer.TimeoutMs)
        => _socket.Poll(TimeSpan.FromMilliseconds(timeoutMs), SelectMode.SelectRead) && _socket.Receive(new byte[1]) == 0;

    /// <summary>True when neither data nor EOF arrives within <paramref name="ms"/>.</summary>
    public bool Idle(int ms) => !_socket.Poll(TimeSpan.FromMilliseconds(ms), SelectMode.SelectRead);

    /// <summary>Ends the sending direction: the peer reads EOF.</summary>
    public void Shutdown() => _socket.Shutdown(SocketShutdown.Send);

    public void Dispose() => _socket.Dispose();
}
