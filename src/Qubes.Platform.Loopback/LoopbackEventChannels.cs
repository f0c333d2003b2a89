using System;
using System.Buffers.Binary;
using Qubes.Interop.Linux;

namespace Qubes.Platform.Loopback;

/// <summary>Event channels of a loopback domain: ports are set up by the broker, notifications are eventfd writes.</summary>
internal sealed class LoopbackEventChannels : IEventChannels
{
    private readonly LoopbackPlatform _platform;

    public LoopbackEventChannels(LoopbackPlatform platform) => _platform = platform;

    public IEventChannel AllocateUnbound(int remoteDomain)
    {
        if (!DomainIds.IsValid(remoteDomain))
        {
            throw new PlatformException($"evtchn alloc-unbound for domain {remoteDomain}", Errno.EINVAL);
        }
        Span<byte> payload = stackalloc byte[4];
        BinaryPrimitives.WriteUInt32LittleEndian(payload, (uint)remoteDomain);
        return Open(_platform.Client.Request(MessageType.EvtchnAllocUnbound, 0, payload), $"evtchn alloc-unbound for domain {remoteDomain}");
    }

    public IEventChannel BindInterdomain(int remoteDomain, uint remotePort)
    {
        if (!DomainIds.IsValid(remoteDomain))
        {
            throw new PlatformException($"evtchn bind to domain {remoteDomain}", Errno.EINVAL);
        }
        Span<byte> payload = stackalloc byte[8];
        BinaryPrimitives.WriteUInt32LittleEndian(payload, (uint)remoteDomain);
        BinaryPrimitives.WriteUInt32LittleEndian(payload[4..], remotePort);
        return Open(_platform.Client.Request(MessageType.EvtchnBind, 0, payload), $"evtchn bind to domain {remoteDomain} port {remotePort}");
    }

    private LoopbackEventChannel Open(in BrokerReply reply, string what)
    {
        if (!reply.Ok)
        {
            throw new PlatformException(what, reply.Error);
        }
        uint port = reply.UInt32At(0);
        return new LoopbackEventChannel(_platform, port, reply.Fds[0], reply.Fds[1]);
    }
}

/// <summary>
/// One end of a loopback event channel: <see cref="Fd"/> is this end's eventfd, <see cref="Notify"/>
/// writes the peer's. Neither touches the broker, so both are as cheap as one syscall.
/// </summary>
internal sealed class LoopbackEventChannel : IEventChannel
{
    private readonly LoopbackPlatform _platform;
    private readonly SafeFd _own;
    private readonly SafeFd _peer;
    private readonly int _ownFd;
    private readonly int _peerFd;
    private int _disposed;

    public LoopbackEventChannel(LoopbackPlatform platform, uint port, SafeFd own, SafeFd peer)
    {
        _platform = platform;
        LocalPort = port;
        _own = own;
        _peer = peer;
        _ownFd = own.Fd;
        _peerFd = peer.Fd;
    }

    public uint LocalPort { get; }

    public int Fd => _ownFd;

    internal LoopbackPlatform Platform => _platform;

    public Errno Notify() => EventFd.Signal(_peerFd);

    public int Wait(int timeoutMs)
    {
        int r = Qubes.Interop.Linux.Fd.PollIn(_ownFd, timeoutMs);
        if (r <= 0)
        {
            return r == 0 ? 0 : -1;
        }
        return EventFd.Drain(_ownFd) >= 0 ? 1 : -1;
    }

    public bool IsInterdomainBound()
    {
        Span<byte> payload = stackalloc byte[4];
        BinaryPrimitives.WriteUInt32LittleEndian(payload, LocalPort);
        try
        {
            BrokerReply reply = _platform.Client.Request(MessageType.EvtchnStatus, 0, payload);
            return reply.Ok && reply.UInt32At(0) == LoopbackBroker.PortInterdomain;
        }
        catch (PlatformException)
        {
            return false;
        }
    }

    public void Dispose()
    {
        if (System.Threading.Interlocked.Exchange(ref _disposed, 1) != 0)
        {
            return;
        }
        Span<byte> payload = stackalloc byte[4];
        BinaryPrimitives.WriteUInt32LittleEndian(payload, LocalPort);
        try
        {
            _ = _platform.Client.Request(MessageType.EvtchnClose, 0, payload);
        }
        catch (PlatformException)
        {
            // Broker gone: the port died with the connection.
        }
        _own.Dispose();
        _peer.Dispose();
    }
}
