using System;
using System.Buffers.Binary;
using Qubes.Interop.Linux;

namespace Qubes.Platform.Loopback;

/// <summary>
/// Grants of a loopback domain. Sharing: a sealable memfd, mapped here, handed to the broker with the
/// grantee's id. Mapping: the broker checks the refs and returns the memfds (read-only reopens for
/// read-only grants), which are mapped contiguously over one reserved range.
/// </summary>
internal sealed class LoopbackGrantTable : IGrantTable
{
    private readonly LoopbackPlatform _platform;

    public LoopbackGrantTable(LoopbackPlatform platform) => _platform = platform;

    public IGrantedPages Share(int grantee, int pageCount, bool readOnly, PreparePages? prepare = null)
    {
        Check(grantee, pageCount);
        SafeFd memfd = SafeFd.FromResult(Libc.memfd_create("qubes-grant", Libc.MFD_CLOEXEC | Libc.MFD_ALLOW_SEALING), "memfd_create");
        if (Libc.ftruncate(memfd.Fd, (long)pageCount * IGrantTable.PageSize) != 0)
        {
            Errno error = LastError.Get();
            memfd.Dispose();
            throw new PlatformException("grant: ftruncate", error);
        }
        return Grant(grantee, pageCount, readOnly, memfd, prepare);
    }

    /// <summary>A memfd of the domain's, as it is: the broker checks and seals it as it does its own.</summary>
    public IGrantedPages ShareFile(int grantee, int file, int pageCount, bool readOnly)
    {
        Check(grantee, pageCount);
        return Grant(grantee, pageCount, readOnly, SafeFd.FromResult(Libc.fcntl(file, Libc.F_DUPFD_CLOEXEC, 0), "dup"), null);
    }

    private static void Check(int grantee, int pageCount)
    {
        if (!DomainIds.IsValid(grantee) || pageCount <= 0 || pageCount > Wire.MaxGrantPages)
        {
            throw new PlatformException($"grant {pageCount} pages to domain {grantee}", Errno.EINVAL);
        }
    }

    /// <summary>Maps <paramref name="memfd"/> (owned from here on) and hands it to the broker with the grantee's id.</summary>
    private unsafe LoopbackGrantedPages Grant(int grantee, int pageCount, bool readOnly, SafeFd memfd, PreparePages? prepare)
    {
        int length = pageCount * IGrantTable.PageSize;
        MemoryMapping? mapping = null;
        try
        {
            try
            {
                mapping = MemoryMapping.MapShared(memfd.Fd, 0, length, writable: true);
            }
            catch (LinuxException e)
            {
                throw new PlatformException("grant: mmap", e.Errno);
            }
            prepare?.Invoke(memfd.Fd, (IntPtr)mapping.Pointer);
            Span<byte> payload = stackalloc byte[12];
            BinaryPrimitives.WriteUInt32LittleEndian(payload, (uint)grantee);
            BinaryPrimitives.WriteUInt32LittleEndian(payload[4..], (uint)pageCount);
            BinaryPrimitives.WriteUInt32LittleEndian(payload[8..], readOnly ? Wire.FlagReadOnly : 0);
            BrokerReply reply = _platform.Client.Request(MessageType.GrantAlloc, 0, payload, [memfd.Fd]);
            if (!reply.Ok)
            {
                throw new PlatformException($"grant {pageCount} pages to domain {grantee}", reply.Error);
            }
            uint first = reply.UInt32At(0);
            uint[] refs = new uint[pageCount];
            for (int i = 0; i < pageCount; i++)
            {
                refs[i] = first + (uint)i;
            }
            return new LoopbackGrantedPages(_platform, mapping, memfd, refs);
        }
        catch
        {
            mapping?.Dispose();
            memfd.Dispose();
            throw;
        }
    }

    public IMappedPages Map(int owner, ReadOnlySpan<uint> refs, bool writable)
    {
        if (!DomainIds.IsValid(owner) || refs.IsEmpty || refs.Length > Wire.MaxGrantPages)
        {
            throw new PlatformException($"map {refs.Length} grants of domain {owner}", Errno.EINVAL);
        }
        int pageSize = IGrantTable.PageSize;
        MemoryMapping region = MemoryMapping.Reserve(refs.Length * pageSize);
        SafeFd? file = null;
        bool whole = true;
        try
        {
            int done = 0;
            while (done < refs.Length)
            {
                int chunk = Math.Min(refs.Length - done, Wire.MaxMapRefs);
                byte[] payload = new byte[8 + 4 * chunk];
                BinaryPrimitives.WriteUInt32LittleEndian(payload, (uint)owner);
                BinaryPrimitives.WriteUInt32LittleEndian(payload.AsSpan(4), writable ? Wire.FlagWritable : 0);
                for (int i = 0; i < chunk; i++)
                {
                    BinaryPrimitives.WriteUInt32LittleEndian(payload.AsSpan(8 + 4 * i), refs[done + i]);
                }
                BrokerReply reply = _platform.Client.Request(MessageType.GrantMap, 0, payload);
                if (!reply.Ok)
                {
                    throw new PlatformException($"map {refs.Length} grants of domain {owner}", reply.Error);
                }
                try
                {
                    int handled = (int)Math.Min(reply.UInt32At(0), (uint)chunk);
                    if (handled == 0 || reply.Payload.Length < 4 + 8 * handled)
                    {
                        throw new PlatformException("map grants: bad broker reply", Errno.EPROTO);
                    }
                    MapRuns(region, done, reply, handled, writable);
                    whole = whole && ContinuesFile(ref file, reply, done, handled);
                    done += handled;
                }
                finally
                {
                    reply.DisposeFds();
                }
            }
        }
        catch
        {
            file?.Dispose();
            region.Dispose();
            throw;
        }
        if (file != null && (!whole || !HasSize(file.Fd, (long)refs.Length * pageSize)))
        {
            file.Dispose();
            file = null;
        }
        return new LoopbackMappedPages(_platform, region, file, owner, refs.ToArray(), writable);
    }

    /// <summary>
    /// Whether the pages a reply handled, from page <paramref name="first"/> of the region on, are
    /// that many pages of one memfd from page <paramref name="first"/> of it on, and the same memfd
    /// as the earlier replies' (<paramref name="file"/>: a descriptor of it, taken from the first).
    /// </summary>
    private static unsafe bool ContinuesFile(ref SafeFd? file, in BrokerReply reply, int first, int handled)
    {
        if (reply.Fds.Length != 1)
        {
            return false;
        }
        for (int i = 0; i < handled; i++)
        {
            if (reply.UInt32At(4 + 8 * i) != 0 || reply.UInt32At(8 + 8 * i) != (uint)(first + i))
            {
                return false;
            }
        }
        int fd = reply.Fds[0].Fd;
        if (file == null)
        {
            int own = Libc.fcntl(fd, Libc.F_DUPFD_CLOEXEC, 0);
            file = own >= 0 ? new SafeFd(own) : null;
            return file != null;
        }
        Libc.stat mine, theirs;
        return Libc.fstat(file.Fd, &mine) == 0 && Libc.fstat(fd, &theirs) == 0 && mine.st_dev == theirs.st_dev && mine.st_ino == theirs.st_ino;
    }

    /// <summary>Whether the file is just <paramref name="length"/> bytes long (a program mapping all of it maps nothing more than the pages).</summary>
    private static unsafe bool HasSize(int fd, long length)
    {
        Libc.stat st;
        return Libc.fstat(fd, &st) == 0 && st.st_size == length;
    }

    /// <summary>Maps the handled pages, one mmap per run of consecutive pages of the same memfd.</summary>
    private static void MapRuns(MemoryMapping region, int firstPage, in BrokerReply reply, int handled, bool writable)
    {
        int pageSize = IGrantTable.PageSize;
        int i = 0;
        while (i < handled)
        {
            uint fdIndex = reply.UInt32At(4 + 8 * i);
            uint pageOffset = reply.UInt32At(8 + 8 * i);
            int run = 1;
            while (i + run < handled
                && reply.UInt32At(4 + 8 * (i + run)) == fdIndex
                && reply.UInt32At(8 + 8 * (i + run)) == pageOffset + (uint)run)
            {
                run++;
            }
            if (fdIndex >= reply.Fds.Length)
            {
                throw new PlatformException("map grants: bad broker reply", Errno.EPROTO);
            }
            try
            {
                region.MapFixed((firstPage + i) * pageSize, reply.Fds[fdIndex].Fd, (long)pageOffset * pageSize, run * pageSize, writable);
            }
            catch (LinuxException e)
            {
                throw new PlatformException("map grants: mmap", e.Errno);
            }
            i += run;
        }
    }
}

/// <summary>The unmap-notify bookkeeping shared by granted and mapped regions.</summary>
internal abstract class LoopbackPages : ISharedPages
{
    private readonly MemoryMapping _mapping;
    private LoopbackEventChannel? _notifyChannel;
    private int _notifyOffset = -1;
    private uint _notifyHandle;
    private bool _disposed;

    private readonly SafeFd? _file;

    protected LoopbackPages(LoopbackPlatform platform, MemoryMapping mapping, SafeFd? file)
    {
        Platform = platform;
        _mapping = mapping;
        _file = file;
    }

    public int PagesFile => _file?.Fd ?? -1;

    protected LoopbackPlatform Platform { get; }

    public unsafe IntPtr Address => (IntPtr)_mapping.Pointer;

    public int Length => _mapping.Length;

    /// <summary>Who granted the pages (own id for granted pages).</summary>
    protected abstract int Owner { get; }

    protected abstract uint RefOfPage(int page);

    protected abstract bool CanNotify { get; }

    public void SetUnmapNotify(int byteOffset, IEventChannel channel)
    {
        ObjectDisposedException.ThrowIf(_disposed, this);
        if ((uint)byteOffset >= (uint)Length)
        {
            throw new ArgumentOutOfRangeException(nameof(byteOffset));
        }
        if (channel is not LoopbackEventChannel loopback || loopback.Platform != Platform)
        {
            throw new ArgumentException("the channel must come from the same loopback platform", nameof(channel));
        }
        if (!CanNotify)
        {
            throw new PlatformException("unmap notify on a read-only mapping", Errno.EINVAL);
        }
        Span<byte> payload = stackalloc byte[16];
        BinaryPrimitives.WriteUInt32LittleEndian(payload, (uint)Owner);
        BinaryPrimitives.WriteUInt32LittleEndian(payload[4..], RefOfPage(byteOffset / IGrantTable.PageSize));
        BinaryPrimitives.WriteUInt32LittleEndian(payload[8..], (uint)(byteOffset % IGrantTable.PageSize));
        BinaryPrimitives.WriteUInt32LittleEndian(payload[12..], loopback.LocalPort);
        BrokerReply reply = Platform.Client.Request(MessageType.UnmapNotifySet, 0, payload);
        if (!reply.Ok)
        {
            throw new PlatformException("unmap notify", reply.Error);
        }
        ClearRegistration();
        _notifyHandle = reply.UInt32At(0);
        _notifyOffset = byteOffset;
        _notifyChannel = loopback;
    }

    public unsafe void Dispose()
    {
        if (_disposed)
        {
            return;
        }
        _disposed = true;
        if (_notifyChannel is not null)
        {
            // Orderly unmap: do here what the broker would do if this process died.
            System.Threading.Volatile.Write(ref _mapping.Pointer[_notifyOffset], (byte)0);
            _ = _notifyChannel.Notify();
            ClearRegistration();
        }
        Release();
        _mapping.Dispose();
        _file?.Dispose();
    }

    /// <summary>Backend-specific release before the unmap (granted pages revoke their refs).</summary>
    protected virtual void Release()
    {
    }

    private void ClearRegistration()
    {
        if (_notifyChannel is null)
        {
            return;
        }
        Span<byte> payload = stackalloc byte[4];
        BinaryPrimitives.WriteUInt32LittleEndian(payload, _notifyHandle);
        try
        {
            _ = Platform.Client.Request(MessageType.UnmapNotifyClear, 0, payload);
        }
        catch (PlatformException)
        {
            // Broker connection gone: the registration went with it.
        }
        _notifyChannel = null;
        _notifyOffset = -1;
    }
}

internal sealed class LoopbackGrantedPages : LoopbackPages, IGrantedPages
{
    private readonly uint[] _refs;

    public LoopbackGrantedPages(LoopbackPlatform platform, MemoryMapping mapping, SafeFd file, uint[] refs) : base(platform, mapping, file) => _refs = refs;

    public ReadOnlySpan<uint> Refs => _refs;

    protected override int Owner => Platform.OwnId;

    protected override bool CanNotify => true;

    protected override uint RefOfPage(int page) => _refs[page];

    protected override void Release()
    {
        Span<byte> payload = stackalloc byte[8];
        BinaryPrimitives.WriteUInt32LittleEndian(payload, _refs[0]);
        BinaryPrimitives.WriteUInt32LittleEndian(payload[4..], (uint)_refs.Length);
        try
        {
            _ = Platform.Client.Request(MessageType.GrantFree, 0, payload);
        }
        catch (PlatformException)
        {
            // Broker connection gone: the grants went with it.
        }
    }
}

internal sealed class LoopbackMappedPages : LoopbackPages, IMappedPages
{
    private readonly uint[] _refs;
    private readonly bool _writable;

    public LoopbackMappedPages(LoopbackPlatform platform, MemoryMapping mapping, SafeFd? file, int owner, uint[] refs, bool writable) : base(platform, mapping, file)
    {
        Owner = owner;
        _refs = refs;
        _writable = writable;
    }

    protected override int Owner { get; }

    protected override bool CanNotify => _writable;

    protected override uint RefOfPage(int page) => _refs[page];
}
