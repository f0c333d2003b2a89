using System;
using System.Buffers.Binary;
using System.Collections.Generic;
using System.Globalization;
using Qubes.Interop.Linux;

namespace Qubes.Platform.Loopback;

public sealed partial class LoopbackBroker
{
    /// <summary>Most pages a domain may have granted at once.</summary>
    public const int MaxGrantedPagesPerDomain = 65536;

    /// <summary>Most memfds a domain may have the broker hold at once (each GrantAlloc is one).</summary>
    public const int MaxSharedMemoriesPerDomain = 1024;

    /// <summary>Most unmap notifications one connection may register.</summary>
    public const int MaxNotifiesPerConnection = 1024;

    private const int PageSize = IGrantTable.PageSize;

    /// <summary>
    /// GrantAlloc(grantee, pageCount, flags) + memfd. The memfd is checked (sealable shmem, read-write,
    /// large enough, not write-sealed) and sealed against shrinking and growing, so no grantee mapping
    /// can ever SIGBUS; a read-only grant is also sealed F_SEAL_FUTURE_WRITE, so no writable mapping of
    /// it can be made again by anyone, even through /proc/self/fd. Replies with the first of pageCount
    /// consecutive refs.
    /// </summary>
    private unsafe Errno GrantAlloc(BrokerConnection c, in BrokerRequest r, SafeFd memfd)
    {
        BrokerDomain d = c.Domain;
        uint grantee = r.Arg0;
        uint pages = r.Arg1;
        bool readOnly = (r.Arg2 & Wire.FlagReadOnly) != 0;
        if (grantee >= DomainIds.FirstReserved || pages == 0 || pages > Wire.MaxGrantPages || (r.Arg2 & ~Wire.FlagReadOnly) != 0)
        {
            return Errno.EINVAL;
        }
        if (d.Grants.Count + (int)pages > MaxGrantedPagesPerDomain || d.SharedMemoryCount >= MaxSharedMemoriesPerDomain
            || (ulong)d.NextRef + pages > uint.MaxValue)
        {
            return Errno.ENOSPC;
        }
        long length = (long)pages * PageSize;
        Libc.stat st;
        if (Libc.fstat(memfd.Fd, &st) != 0 || (st.st_mode & Libc.S_IFMT) != Libc.S_IFREG || st.st_size < length)
        {
            return Errno.EINVAL;
        }
        int seals = Libc.fcntl(memfd.Fd, Libc.F_GET_SEALS, 0);
        int mode = Libc.fcntl(memfd.Fd, Libc.F_GETFL, 0);
        if (seals < 0 || (seals & (Libc.F_SEAL_SEAL | Libc.F_SEAL_WRITE | Libc.F_SEAL_FUTURE_WRITE)) != 0
            || mode < 0 || (mode & 3) != Libc.O_RDWR)
        {
            return Errno.EINVAL;
        }
        if (Libc.fcntl(memfd.Fd, Libc.F_ADD_SEALS, Libc.F_SEAL_SHRINK | Libc.F_SEAL_GROW) != 0)
        {
            return Errno.EINVAL;
        }
        int own = Libc.fcntl(memfd.Fd, Libc.F_DUPFD_CLOEXEC, 0);
        if (own < 0)
        {
            return Errno.EMFILE;
        }
        var fd = new SafeFd(own);
        MemoryMapping? view = null;
        SafeFd? readOnlyFd = null;
        if (readOnly)
        {
            try
            {
                view = MemoryMapping.MapShared(fd.Fd, 0, (int)length, writable: true);
            }
            catch (LinuxException)
            {
                fd.Dispose();
                return Errno.ENOMEM;
            }
            int ro = -1;
            if (Libc.fcntl(fd.Fd, Libc.F_ADD_SEALS, Libc.F_SEAL_FUTURE_WRITE) == 0)
            {
                ro = Libc.open("/proc/self/fd/" + fd.Fd.ToString(CultureInfo.InvariantCulture), Libc.O_RDONLY | Libc.O_CLOEXEC, 0);
            }
            if (ro < 0)
            {
                view.Dispose();
                fd.Dispose();
                return Errno.EINVAL;
            }
            readOnlyFd = new SafeFd(ro);
        }
        var memory = new SharedMemory(d, fd, readOnlyFd, view, (int)pages);
        uint first = d.NextRef;
        d.NextRef += pages;
        for (uint i = 0; i < pages; i++)
        {
            var grant = new Grant(d, c, first + i, (int)grantee, readOnly, memory, (int)i);
            d.Grants.Add(grant.Reference, grant);
            c.Grants.Add(grant);
        }
        Span<byte> payload = stackalloc byte[4];
        BinaryPrimitives.WriteUInt32LittleEndian(payload, first);
        Send(c, r.Type, r.RequestId, 0, payload, []);
        return Errno.None;
    }

    /// <summary>
    /// GrantMap(owner, flags, refs[]). All refs are checked first (exist, belong to owner, granted to
    /// the caller's domain, not read-only if a writable map is asked): any failure maps nothing. The
    /// reply covers the longest prefix of refs whose memfds fit in one message (16 descriptors):
    /// u32 handled, then per ref (u32 descriptor index, u32 page offset).
    /// </summary>
    private Errno GrantMap(BrokerConnection c, in BrokerRequest r)
    {
        bool writable = (r.Arg1 & Wire.FlagWritable) != 0;
        if ((r.Arg1 & ~Wire.FlagWritable) != 0)
        {
            return Errno.EINVAL;
        }
        if (r.Arg0 >= DomainIds.FirstReserved || !_domains.TryGetValue((int)r.Arg0, out BrokerDomain? owner))
        {
            return Errno.ENOENT;
        }
        int count = r.RefCount;
        for (int i = 0; i < count; i++)
        {
            if (!owner.Grants.TryGetValue(r.RefAt(i), out Grant? g))
            {
                return Errno.ENOENT;
            }
            if (g.Grantee != c.Domain.Id || (writable && g.ReadOnly))
            {
                return Errno.EACCES;
            }
        }
        var memories = new List<SharedMemory>();
        Span<int> fds = stackalloc int[FdPassing.MaxFds];
        byte[] payload = new byte[4 + 8 * count];
        int handled = 0;
        for (; handled < count; handled++)
        {
            Grant g = owner.Grants[r.RefAt(handled)];
            int index = memories.IndexOf(g.Memory);
            if (index < 0)
            {
                if (memories.Count == FdPassing.MaxFds)
                {
                    break;
                }
                index = memories.Count;
                memories.Add(g.Memory);
                fds[index] = (g.ReadOnly ? g.Memory.ReadOnlyFd! : g.Memory.Fd).Fd;
            }
            BinaryPrimitives.WriteUInt32LittleEndian(payload.AsSpan(4 + 8 * handled), (uint)index);
            BinaryPrimitives.WriteUInt32LittleEndian(payload.AsSpan(8 + 8 * handled), (uint)g.Page);
        }
        BinaryPrimitives.WriteUInt32LittleEndian(payload, (uint)handled);
        Send(c, r.Type, r.RequestId, 0, payload.AsSpan(0, 4 + 8 * handled), fds[..memories.Count]);
        return Errno.None;
    }

    /// <summary>GrantFree(firstRef, count): revokes this domain's grants in the range. Existing mappings stay valid, as on Xen.</summary>
    private Errno GrantFree(BrokerConnection c, in BrokerRequest r)
    {
        if (r.Arg1 == 0 || r.Arg1 > Wire.MaxGrantPages)
        {
            return Errno.EINVAL;
        }
        BrokerDomain d = c.Domain;
        for (uint i = 0; i < r.Arg1; i++)
        {
            if (d.Grants.Remove(unchecked(r.Arg0 + i), out Grant? g))
            {
                g.Connection.Grants.Remove(g);
                g.Memory.Release();
            }
        }
        ReplyOk(c, r);
        return Errno.None;
    }

    /// <summary>
    /// UnmapNotifySet(owner, ref, offsetInPage, port): when this connection ends without clearing it,
    /// zero that byte and signal the port's peer. For the owner's own grants any grant qualifies; a
    /// grantee may only arm it on a writable grant made to it (gntdev refuses read-only maps too).
    /// Replies with a handle for UnmapNotifyClear.
    /// </summary>
    private Errno UnmapNotifySet(BrokerConnection c, in BrokerRequest r)
    {
        BrokerDomain d = c.Domain;
        if (r.Arg2 >= PageSize)
        {
            return Errno.EINVAL;
        }
        if (r.Arg0 >= DomainIds.FirstReserved || !_domains.TryGetValue((int)r.Arg0, out BrokerDomain? owner)
            || !owner.Grants.TryGetValue(r.Arg1, out Grant? g))
        {
            return Errno.ENOENT;
        }
        if (owner != d)
        {
            if (g.Grantee != d.Id)
            {
                return Errno.EACCES;
            }
            if (g.ReadOnly)
            {
                return Errno.EINVAL;
            }
        }
        if (!d.Ports.TryGetValue(r.Arg3, out Port? port))
        {
            return Errno.ENOENT;
        }
        if (c.Notifies.Count >= MaxNotifiesPerConnection)
        {
            return Errno.ENOSPC;
        }
        g.Memory.AddReference();
        port.Channel.AddReference();
        uint handle;
        do
        {
            handle = c.NextNotifyId;
            c.NextNotifyId = unchecked(c.NextNotifyId + 1);
        }
        while (c.Notifies.ContainsKey(handle));
        c.Notifies[handle] = new UnmapNotify(g.Memory, (long)g.Page * PageSize + r.Arg2, port.Channel, port.IsAllocator);
        Span<byte> payload = stackalloc byte[4];
        BinaryPrimitives.WriteUInt32LittleEndian(payload, handle);
        Send(c, r.Type, r.RequestId, 0, payload, []);
        return Errno.None;
    }

    private Errno UnmapNotifyClear(BrokerConnection c, in BrokerRequest r)
    {
        if (!c.Notifies.Remove(r.Arg0, out UnmapNotify? n))
        {
            return Errno.ENOENT;
        }
        n.Release();
        ReplyOk(c, r);
        return Errno.None;
    }
}
