using System;
using System.Runtime.InteropServices;
using Qubes.Interop.Linux;
using Qubes.Interop.Xen;

namespace Qubes.Platform.Xen;

/// <summary>
/// Grant sharing through /dev/xen/gntalloc and mapping through /dev/xen/gntdev. Each region is one
/// ioctl plus one mmap of the device at the offset the ioctl returned; unmap-notify is the drivers'
/// own (clear a byte and send an event when the region is released, including by process death).
/// </summary>
internal sealed unsafe class XenGrantTable : IGrantTable, IDisposable
{
    private const int PageSize = IGrantTable.PageSize;
    private readonly Lazy<SafeFd> _gntalloc = new(() => XenDevice.Open(Gntalloc.Device));
    private readonly Lazy<SafeFd> _gntdev = new(() => XenDevice.Open(Gntdev.Device));

    /// <summary>gntalloc grants only the pages it allocates: an X server's pixmap cannot be granted as it is.</summary>
    public IGrantedPages ShareFile(int grantee, int file, int pageCount, bool readOnly)
        => throw new PlatformException("grant pages of a file", Errno.ENOTSUP);

    public IGrantedPages Share(int grantee, int pageCount, bool readOnly, PreparePages? prepare = null)
    {
        if (!DomainIds.IsValid(grantee) || pageCount <= 0)
        {
            throw new ArgumentOutOfRangeException(nameof(pageCount));
        }
        SafeFd fd = _gntalloc.Value;
        int header = sizeof(Gntalloc.ioctl_gntalloc_alloc_gref);
        int size = Math.Max(Gntalloc.SizeofAllocGref, header + 4 * pageCount);
        byte* buffer = (byte*)NativeMemory.AllocZeroed((nuint)size);
        try
        {
            var request = (Gntalloc.ioctl_gntalloc_alloc_gref*)buffer;
            request->domid = (ushort)grantee;
            request->flags = readOnly ? (ushort)0 : Gntalloc.GNTALLOC_FLAG_WRITABLE;
            request->count = (uint)pageCount;
            XenDevice.Ioctl(fd, Gntalloc.IOCTL_GNTALLOC_ALLOC_GREF, buffer, $"gntalloc {pageCount} pages for domain {grantee}");
            ulong index = request->index;
            uint[] refs = new ReadOnlySpan<uint>(buffer + header, pageCount).ToArray();
            void* address = Libc.mmap(null, (nuint)(pageCount * PageSize), Libc.PROT_READ | Libc.PROT_WRITE, Libc.MAP_SHARED, fd.Fd, (long)index);
            if (address == Libc.MAP_FAILED)
            {
                Errno e = LastError.Get();
                Dealloc(fd, index, pageCount);
                throw new PlatformException("mmap of granted pages", e);
            }
            return new GrantedRegion(fd, index, (byte*)address, pageCount, refs);
        }
        finally
        {
            NativeMemory.Free(buffer);
        }
    }

    public IMappedPages Map(int owner, ReadOnlySpan<uint> refs, bool writable)
    {
        if (!DomainIds.IsValid(owner) || refs.IsEmpty)
        {
            throw new ArgumentOutOfRangeException(nameof(refs));
        }
        SafeFd fd = _gntdev.Value;
        int count = refs.Length;
        int header = sizeof(Gntdev.ioctl_gntdev_map_grant_ref);
        int size = Math.Max(Gntdev.SizeofMapGrantRef, header + sizeof(Gntdev.ioctl_gntdev_grant_ref) * count);
        byte* buffer = (byte*)NativeMemory.AllocZeroed((nuint)size);
        try
        {
            var request = (Gntdev.ioctl_gntdev_map_grant_ref*)buffer;
            request->count = (uint)count;
            var entries = (Gntdev.ioctl_gntdev_grant_ref*)(buffer + header);
            for (int i = 0; i < count; i++)
            {
                entries[i].domid = (uint)owner;
                entries[i].@ref = refs[i];
            }
            XenDevice.Ioctl(fd, Gntdev.IOCTL_GNTDEV_MAP_GRANT_REF, buffer, $"gntdev map {count} grants of domain {owner}");
            ulong index = request->index;
            int prot = Libc.PROT_READ | (writable ? Libc.PROT_WRITE : 0);
            // the grants are actually mapped here: a ref that is not granted to us fails now
            void* address = Libc.mmap(null, (nuint)(count * PageSize), prot, Libc.MAP_SHARED, fd.Fd, (long)index);
            if (address == Libc.MAP_FAILED)
            {
                Errno e = LastError.Get();
                Unmap(fd, index, count);
                throw new PlatformException($"map {count} grants of domain {owner}", e);
            }
            return new MappedRegion(fd, index, (byte*)address, count);
        }
        finally
        {
            NativeMemory.Free(buffer);
        }
    }

    public void Dispose()
    {
        if (_gntalloc.IsValueCreated)
        {
            _gntalloc.Value.Dispose();
        }
        if (_gntdev.IsValueCreated)
        {
            _gntdev.Value.Dispose();
        }
    }

    private static void Dealloc(SafeFd fd, ulong index, int count)
    {
        var request = new Gntalloc.ioctl_gntalloc_dealloc_gref { index = index, count = (uint)count };
        Libc.ioctl(fd.Fd, Gntalloc.IOCTL_GNTALLOC_DEALLOC_GREF, &request);
    }

    private static void Unmap(SafeFd fd, ulong index, int count)
    {
        var request = new Gntdev.ioctl_gntdev_unmap_grant_ref { index = index, count = (uint)count };
        Libc.ioctl(fd.Fd, Gntdev.IOCTL_GNTDEV_UNMAP_GRANT_REF, &request);
    }

    /// <summary>A mapped device region; subclasses release the grant after unmapping.</summary>
    private abstract class Region : ISharedPages
    {
        private byte* _address;

        protected Region(SafeFd device, ulong index, byte* address, int pages)
        {
            Device = device;
            Index = index;
            _address = address;
            Pages = pages;
        }

        protected SafeFd Device { get; }

        protected ulong Index { get; }

        protected int Pages { get; }

        public IntPtr Address => (IntPtr)_address;

        public int Length => Pages * PageSize;

        /// <summary>gntalloc and gntdev regions are device mappings, not files another program could map.</summary>
        public int PagesFile => -1;

        public void SetUnmapNotify(int byteOffset, IEventChannel channel)
        {
            if ((uint)byteOffset >= (uint)Length)
            {
                throw new ArgumentOutOfRangeException(nameof(byteOffset));
            }
            SetNotify(Index + (ulong)byteOffset, Gntalloc.UNMAP_NOTIFY_CLEAR_BYTE | Gntalloc.UNMAP_NOTIFY_SEND_EVENT, channel.LocalPort);
        }

        protected abstract void SetNotify(ulong index, uint action, uint port);

        protected abstract void Release();

        public void Dispose()
        {
            if (_address == null)
            {
                return;
            }
            Libc.munmap(_address, (nuint)Length);
            _address = null;
            Release();
        }
    }

    private sealed class GrantedRegion : Region, IGrantedPages
    {
        private readonly uint[] _refs;

        public GrantedRegion(SafeFd device, ulong index, byte* address, int pages, uint[] refs) : base(device, index, address, pages)
            => _refs = refs;

        public ReadOnlySpan<uint> Refs => _refs;

        protected override void SetNotify(ulong index, uint action, uint port)
        {
            var request = new Gntalloc.ioctl_gntalloc_unmap_notify { index = index, action = action, event_channel_port = port };
            XenDevice.Ioctl(Device, Gntalloc.IOCTL_GNTALLOC_SET_UNMAP_NOTIFY, &request, "gntalloc unmap notify");
        }

        protected override void Release() => Dealloc(Device, Index, Pages);
    }

    private sealed class MappedRegion(SafeFd device, ulong index, byte* address, int pages)
        : Region(device, index, address, pages), IMappedPages
    {
        protected override void SetNotify(ulong index, uint action, uint port)
        {
            var request = new Gntdev.ioctl_gntdev_unmap_notify { index = index, action = action, event_channel_port = port };
            XenDevice.Ioctl(Device, Gntdev.IOCTL_GNTDEV_SET_UNMAP_NOTIFY, &request, "gntdev unmap notify");
        }

        protected override void Release() => Unmap(Device, Index, Pages);
    }
}
