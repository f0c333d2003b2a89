using System;
using System.Buffers.Binary;
using System.Text;
using Qubes.Interop.Linux;

namespace Qubes.Platform.Loopback;

public sealed partial class LoopbackBroker
{
    /// <summary>Most live domains besides dom0.</summary>
    public const int MaxDomains = 1024;

    private Errno CreateDomain(BrokerConnection c, in BrokerRequest r)
    {
        if (c.Domain.Id != 0)
        {
            return Errno.EPERM;
        }
        string name = Encoding.ASCII.GetString(r.Text);
        foreach (BrokerDomain d in _domains.Values)
        {
            if (d.Name == name)
            {
                return Errno.EEXIST;
            }
        }
        if (_domains.Count > MaxDomains)
        {
            return Errno.ENOSPC;
        }
        int id = AllocateDomainId();
        (SafeFd mine, SafeFd theirs) = FdPassing.SocketPair();
        using (theirs)
        {
            Fd.SetNonBlocking(mine.Fd, true);
            var domain = new BrokerDomain(id, name);
            _domains.Add(id, domain);
            AddConnection(mine, domain);
            CreateHome(id, name);
            Span<byte> payload = stackalloc byte[4];
            BinaryPrimitives.WriteUInt32LittleEndian(payload, (uint)id);
            Send(c, r.Type, r.RequestId, 0, payload, [theirs.Fd]);
        }
        FireSpecial(StorePath.IntroduceDomain);
        return Errno.None;
    }

    private int AllocateDomainId()
    {
        // Ids increase so that a stale id rarely names a new domain; wrap past the reserved range.
        while (true)
        {
            int id = _nextDomainId++;
            if (_nextDomainId >= DomainIds.FirstReserved)
            {
                _nextDomainId = 1;
            }
            if (!_domains.ContainsKey(id))
            {
                return id;
            }
        }
    }

    private Errno DestroyDomain(BrokerConnection c, in BrokerRequest r)
    {
        if (c.Domain.Id != 0)
        {
            return Errno.EPERM;
        }
        if (r.Arg0 == 0)
        {
            return Errno.EINVAL;
        }
        if (r.Arg0 >= DomainIds.FirstReserved || !_domains.TryGetValue((int)r.Arg0, out BrokerDomain? d))
        {
            return Errno.ESRCH;
        }
        d.Dead = true;
        foreach (BrokerConnection victim in d.Connections)
        {
            victim.Doomed = true;
        }
        Reap();
        ReplyOk(c, r);
        return Errno.None;
    }

    private Errno ConnectAgain(BrokerConnection c, in BrokerRequest r)
    {
        BrokerDomain d = c.Domain;
        if (d.Id != 0 && d.Connections.Count >= MaxConnectionsPerDomain)
        {
            return Errno.EMFILE;
        }
        (SafeFd mine, SafeFd theirs) = FdPassing.SocketPair();
        using (theirs)
        {
            Fd.SetNonBlocking(mine.Fd, true);
            AddConnection(mine, d);
            Send(c, r.Type, r.RequestId, 0, [], [theirs.Fd]);
        }
        return Errno.None;
    }

    private Errno IsAlive(BrokerConnection c, in BrokerRequest r)
    {
        bool alive = r.Arg0 < DomainIds.FirstReserved && _domains.TryGetValue((int)r.Arg0, out BrokerDomain? d) && !d.Dead;
        Span<byte> payload = stackalloc byte[4];
        BinaryPrimitives.WriteUInt32LittleEndian(payload, alive ? 1u : 0u);
        Send(c, r.Type, r.RequestId, 0, payload, []);
        return Errno.None;
    }

    /// <summary>
    /// The domain's last connection is gone (its processes exited, or dom0 destroyed it). Its grants
    /// and ports went with its connections; what is left is its store home and the announcement.
    /// </summary>
    private void KillDomain(BrokerDomain d)
    {
        d.Dead = true;
        _domains.Remove(d.Id);
        _ = _store.Remove(0, null, StoreService.HomeOf(d.Id));
        FireSpecial(StorePath.ReleaseDomain);
    }
}
