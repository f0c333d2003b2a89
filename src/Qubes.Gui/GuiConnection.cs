using System;
using System.Buffers.Binary;
using Qubes.Interop.Linux;
using Qubes.Platform;
using Qubes.Vchan;

namespace Qubes.Gui;

/// <summary>The versions did not fit, or the peer went away during the handshake.</summary>
public sealed class GuiHandshakeException(string message) : Exception(message);

/// <summary>Why <see cref="GuiDaemonConnection.Pump{THost}"/> returned.</summary>
public enum PumpStatus
{
    /// <summary>Everything that had arrived is dispatched: wait on <see cref="GuiDaemonConnection.EventFd"/>.</summary>
    Idle,

    /// <summary>A message needs the user's decision (<see cref="DispatchStatus.Verify"/>); pump again to go on.</summary>
    Verify,

    /// <summary>The qube broke the protocol: close the connection.</summary>
    Fatal,

    /// <summary>The agent closed the channel or its qube is gone.</summary>
    Closed,
}

/// <summary>
/// The daemon's end of a qube's GUI connection: the vchan client on port 6000, the handshake, and
/// the loop that feeds what arrives to a <see cref="GuiDispatcher{THost}"/>. Reads never block (a
/// qube that stops mid-message stalls only itself); writes to the agent wait for room.
/// </summary>
public sealed class GuiDaemonConnection : IDisposable
{
    private readonly VchanEndpoint _channel;
    private readonly byte[] _buffer = new byte[GuiProtocol.MaxWindowDumpMessage + GuiProtocol.RingSize];
    private int _start, _end;

    private GuiDaemonConnection(VchanEndpoint channel, uint version)
    {
        _channel = channel;
        Version = version;
    }

    /// <summary>The session's protocol version.</summary>
    public uint Version { get; }

    /// <summary>Readable when the agent has sent something (or closed).</summary>
    public int EventFd => _channel.EventFd;

    /// <summary>
    /// Connects to the agent of domain <paramref name="domain"/> (waiting for it to serve), takes its
    /// version and answers with the session's and <paramref name="screen"/>.
    /// </summary>
    public static GuiDaemonConnection Connect(IPlatform platform, int domain, XConf screen)
    {
        VchanEndpoint channel = VchanEndpoint.ClientInit(platform, domain, GuiProtocol.VchanPort);
        try
        {
            Span<byte> word = stackalloc byte[4];
            if (channel.Recv(word) != 4)
            {
                throw new GuiHandshakeException($"domain {domain} closed the GUI channel before its version");
            }
            uint agentVersion = BinaryPrimitives.ReadUInt32LittleEndian(word);
            NegotiationResult result = Handshake.Negotiate(agentVersion, out uint session);
            if (result != NegotiationResult.Accepted)
            {
                throw new GuiHandshakeException(Handshake.Describe(result, agentVersion));
            }
            Span<byte> reply = stackalloc byte[4 + XConf.Size];
            int length = Handshake.WriteDaemonReply(reply, session, screen);
            if (channel.Write(reply[..length]) != length)
            {
                throw new GuiHandshakeException($"domain {domain} closed the GUI channel during the handshake");
            }
            channel.Blocking = false;
            return new GuiDaemonConnection(channel, session);
        }
        catch
        {
            channel.Dispose();
            throw;
        }
    }

    /// <summary>Sends a message to the agent, waiting for room; false if the agent is gone.</summary>
    public bool Send(ReadOnlySpan<byte> message)
    {
        _channel.Blocking = true;
        try
        {
            return _channel.Write(message) == message.Length;
        }
        finally
        {
            _channel.Blocking = false;
        }
    }

    /// <summary>
    /// Dispatches every whole message that has arrived, reading until nothing more is there.
    /// <paramref name="result"/> is the last dispatch's (the one to ask the user about on
    /// <see cref="PumpStatus.Verify"/>, the one to log on <see cref="PumpStatus.Fatal"/>).
    /// </summary>
    public PumpStatus Pump<THost>(GuiDispatcher<THost> dispatcher, out DispatchResult result) where THost : IGuiHost
    {
        result = default;
        if (Fd.PollIn(_channel.EventFd, 0) > 0)
        {
            // acknowledging a pending event cannot block
            _channel.Wait();
        }
        while (true)
        {
            while (_start < _end)
            {
                result = dispatcher.Dispatch(_buffer.AsSpan(_start, _end - _start));
                if (result.Status == DispatchStatus.NeedMore)
                {
                    break;
                }
                if (result.Status == DispatchStatus.Fatal)
                {
                    return PumpStatus.Fatal;
                }
                _start += result.Consumed;
                if (result.Status == DispatchStatus.Verify)
                {
                    return PumpStatus.Verify;
                }
            }
            if (_start == _end)
            {
                _start = _end = 0;
            }
            else if (_start > 0 && _buffer.Length - _end < GuiProtocol.RingSize)
            {
                _buffer.AsSpan(_start, _end - _start).CopyTo(_buffer);
                _end -= _start;
                _start = 0;
            }
            int n = _channel.Read(_buffer.AsSpan(_end));
            if (n < 0)
            {
                return PumpStatus.Closed;
            }
            if (n == 0)
            {
                return _channel.PeerClosed ? PumpStatus.Closed : PumpStatus.Idle;
            }
            _end += n;
        }
    }

    public void Dispose() => _channel.Dispose();
}

/// <summary>
/// The agent's end of the GUI connection in a qube: serves vchan port 6000 to the GUI domain,
/// sends its version and takes the daemon's and its <see cref="XConf"/>; then sends window
/// messages and reads the daemon's events. The agent trusts the daemon: it skips a message it
/// does not know by the length the daemon gives.
/// </summary>
public sealed class GuiAgentConnection : IDisposable
{
    private readonly VchanEndpoint _channel;
    /// <summary>The longest body the agent keeps: a pasted clipboard at the protocol's limit.</summary>
    private const int MaxBody = GuiProtocol.MaxClipboardBufferSize + 1, SkipChunk = 4096;

    // bodies, then room to read and drop the rest of a longer one
    private readonly byte[] _body = new byte[MaxBody + SkipChunk];

    private GuiAgentConnection(VchanEndpoint channel, uint version, XConf screen)
    {
        _channel = channel;
        Version = version;
        Screen = screen;
    }

    public uint Version { get; }

    /// <summary>dom0's screen as the daemon described it.</summary>
    public XConf Screen { get; }

    /// <summary>The GUI domain.</summary>
    public int PeerDomain => _channel.PeerDomain;

    /// <summary>Readable when the daemon has sent something.</summary>
    public int EventFd => _channel.EventFd;

    /// <summary>Whether the daemon's end is still there.</summary>
    public bool IsOpen => !_channel.PeerClosed;

    /// <summary>Serves the GUI channel for <paramref name="guiDomain"/> and waits for its daemon's handshake.</summary>
    public static GuiAgentConnection Serve(IPlatform platform, int guiDomain, uint version = GuiProtocol.Version)
    {
        VchanEndpoint channel = VchanEndpoint.ServerInit(platform, guiDomain, GuiProtocol.VchanPort, GuiProtocol.RingSize, GuiProtocol.RingSize);
        try
        {
            if (!channel.WaitForClient())
            {
                throw new GuiHandshakeException($"the GUI daemon of domain {guiDomain} did not connect");
            }
            Span<byte> word = stackalloc byte[4];
            BinaryPrimitives.WriteUInt32LittleEndian(word, version);
            Span<byte> conf = stackalloc byte[XConf.Size];
            if (channel.Write(word) != 4 || channel.Recv(word) != 4)
            {
                throw new GuiHandshakeException("the GUI daemon closed the channel during the handshake");
            }
            uint daemonVersion = BinaryPrimitives.ReadUInt32LittleEndian(word);
            if (!Handshake.AgentAccepts(daemonVersion, version))
            {
                throw new GuiHandshakeException($"the GUI daemon answered protocol {daemonVersion >> 16}.{daemonVersion & 0xFFFF}, which this agent ({version >> 16}.{version & 0xFFFF}) cannot speak");
            }
            if (channel.Recv(conf) != XConf.Size)
            {
                throw new GuiHandshakeException("the GUI daemon closed the channel before its screen configuration");
            }
            return new GuiAgentConnection(channel, daemonVersion, XConf.Read(conf));
        }
        catch
        {
            channel.Dispose();
            throw;
        }
    }

    /// <summary>Sends a message, waiting for room; false if the daemon is gone.</summary>
    public bool Send(ReadOnlySpan<byte> message) => _channel.Write(message) == message.Length;

    /// <summary>Sends a message of 32-bit fields.</summary>
    public bool Send(MessageType type, uint window, ReadOnlySpan<uint> fields)
    {
        Span<byte> message = stackalloc byte[GuiProtocol.HeaderSize + 64];
        return Send(message[..GuiProtocol.WriteMessage(message, type, window, fields)]);
    }

    /// <summary>Whether a whole header has arrived (the body follows it promptly).</summary>
    public bool HasMessage
    {
        get
        {
            if (Fd.PollIn(_channel.EventFd, 0) > 0)
            {
                _channel.Wait();
            }
            return _channel.DataReady() >= GuiProtocol.HeaderSize;
        }
    }

    /// <summary>
    /// Reads the next message from the daemon, waiting for it; false when the daemon is gone. The
    /// body is valid until the next call.
    /// </summary>
    public bool TryRead(out MessageType type, out uint window, out ReadOnlySpan<byte> body)
    {
        Span<byte> header = stackalloc byte[GuiProtocol.HeaderSize];
        body = default;
        type = 0;
        window = 0;
        if (_channel.Recv(header) != GuiProtocol.HeaderSize)
        {
            return false;
        }
        type = (MessageType)BinaryPrimitives.ReadUInt32LittleEndian(header);
        window = BinaryPrimitives.ReadUInt32LittleEndian(header[4..]);
        uint length = BinaryPrimitives.ReadUInt32LittleEndian(header[8..]);
        int kept = (int)Math.Min(length, MaxBody);
        if (ReadExactly(_body.AsSpan(0, kept)) != kept)
        {
            return false;
        }
        // a body longer than any the daemon sends: the rest is dropped
        for (uint left = length - (uint)kept; left > 0;)
        {
            int chunk = (int)Math.Min(left, SkipChunk);
            if (ReadExactly(_body.AsSpan(MaxBody, chunk)) != chunk)
            {
                return false;
            }
            left -= (uint)chunk;
        }
        body = _body.AsSpan(0, kept);
        return true;
    }

    private int ReadExactly(Span<byte> buffer)
    {
        int done = 0;
        while (done < buffer.Length)
        {
            int n = _channel.Read(buffer[done..]);
            if (n <= 0)
            {
                return -1;
            }
            done += n;
        }
        return done;
    }

    public void Dispose() => _channel.Dispose();
}
