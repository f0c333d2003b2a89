using System;
using System.Buffers.Binary;
using Qubes.Interop.Linux;

namespace Qubes.Platform.Loopback;

public sealed partial class LoopbackBroker
{
    /// <summary>Most open ports per domain.</summary>
    public const int MaxPortsPerDomain = 1024;

    /// <summary>EvtchnStatus state: the port waits for (or lost) its peer.</summary>
    public const uint PortUnbound = 1;

    /// <summary>EvtchnStatus state: both ends bound and alive.</summary>
    public const uint PortInterdomain = 2;

    /// <summary>
    /// EvtchnAllocUnbound(remote): a new port of the caller's domain that only <c>remote</c> may bind.
    /// Replies u32 port + [eventfd the caller waits on, eventfd the binder will wait on].
    /// </summary>
    private Errno EvtchnAllocUnbound(BrokerConnection c, in BrokerRequest r)
    {
        BrokerDomain d = c.Domain;
        if (r.Arg0 >= DomainIds.FirstReserved || !_domains.TryGetValue((int)r.Arg0, out BrokerDomain? remote) || remote.Dead)
        {
            return Errno.ESRCH;
        }
        if (d.Ports.Count >= MaxPortsPerDomain || d.NextPort == uint.MaxValue)
        {
            return Errno.ENOSPC;
        }
        var channel = new Channel(EventFd.Create(), EventFd.Create(), remote.Id);
        var port = new Port(d, d.NextPort++, c, channel, isAllocator: true);
        channel.Allocator = port;
        channel.AddReference();
        d.Ports.Add(port.Number, port);
        c.Ports.Add(port);
        ReplyPort(c, r, port.Number, channel.AllocatorWaits, channel.BinderWaits);
        return Errno.None;
    }

    /// <summary>
    /// EvtchnBind(remote, remotePort): binds the caller to an unbound port that <c>remote</c>
    /// allocated for the caller's domain. Replies u32 local port + [own eventfd, peer's eventfd].
    /// </summary>
    private Errno EvtchnBind(BrokerConnection c, in BrokerRequest r)
    {
        BrokerDomain d = c.Domain;
        if (r.Arg0 >= DomainIds.FirstReserved || !_domains.TryGetValue((int)r.Arg0, out BrokerDomain? remote) || remote.Dead)
        {
            return Errno.ESRCH;
        }
        if (!remote.Ports.TryGetValue(r.Arg1, out Port? remotePort) || !remotePort.IsAllocator || remotePort.Channel.WasBound)
        {
            return Errno.EINVAL;
        }
        Channel channel = remotePort.Channel;
        if (channel.BindableBy != d.Id)
        {
            return Errno.EACCES;
        }
        if (d.Ports.Count >= MaxPortsPerDomain || d.NextPort == uint.MaxValue)
        {
            return Errno.ENOSPC;
        }
        var port = new Port(d, d.NextPort++, c, channel, isAllocator: false);
        channel.Binder = port;
        channel.WasBound = true;
        channel.AddReference();
        d.Ports.Add(port.Number, port);
        c.Ports.Add(port);
        ReplyPort(c, r, port.Number, channel.BinderWaits, channel.AllocatorWaits);
        return Errno.None;
    }

    private void ReplyPort(BrokerConnection c, in BrokerRequest r, uint number, SafeFd own, SafeFd peer)
    {
        Span<byte> payload = stackalloc byte[4];
        BinaryPrimitives.WriteUInt32LittleEndian(payload, number);
        Send(c, r.Type, r.RequestId, 0, payload, [own.Fd, peer.Fd]);
    }

    private Errno EvtchnClose(BrokerConnection c, in BrokerRequest r)
    {
        if (!c.Domain.Ports.TryGetValue(r.Arg0, out Port? port))
        {
            return Errno.ENOENT;
        }
        ClosePort(port);
        ReplyOk(c, r);
        return Errno.None;
    }

    /// <summary>EvtchnStatus(port): replies (u32 state, u32 remote domain, u32 remote port).</summary>
    private Errno EvtchnStatus(BrokerConnection c, in BrokerRequest r)
    {
        if (!c.Domain.Ports.TryGetValue(r.Arg0, out Port? port))
        {
            return Errno.ENOENT;
        }
        Port? peer = port.Peer;
        bool bound = peer is not null && !peer.Domain.Dead && !port.Domain.Dead;
        Span<byte> payload = stackalloc byte[12];
        BinaryPrimitives.WriteUInt32LittleEndian(payload, bound ? PortInterdomain : PortUnbound);
        BinaryPrimitives.WriteUInt32LittleEndian(payload[4..], bound ? (uint)peer!.Domain.Id : (uint)port.Channel.BindableBy);
        BinaryPrimitives.WriteUInt32LittleEndian(payload[8..], bound ? peer!.Number : 0);
        Send(c, r.Type, r.RequestId, 0, payload, []);
        return Errno.None;
    }

    private static void ClosePort(Port port)
    {
        port.Domain.Ports.Remove(port.Number);
        port.Connection.Ports.Remove(port);
        Channel channel = port.Channel;
        if (port.IsAllocator)
        {
            channel.Allocator = null;
        }
        else
        {
            channel.Binder = null;
        }
        channel.Release();
    }
}
