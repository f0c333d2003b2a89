using System.Runtime.InteropServices;
using Qubes.Interop.Linux;

namespace Qubes.Interop.Xen;

/// <summary>/dev/xen/gntalloc (xen/sys/gntalloc.h): share own pages with another domain.</summary>
public static class Gntalloc
{
    public const string Device = "/dev/xen/gntalloc";

    /// <summary>sizeof(struct ioctl_gntalloc_alloc_gref) in C, with its one-element gref_ids[] and tail padding.</summary>
    public const int SizeofAllocGref = 24;


    public static readonly uint IOCTL_GNTALLOC_ALLOC_GREF = Libc._IOC(Libc._IOC_NONE, 'G', 5, SizeofAllocGref);
    public static readonly uint IOCTL_GNTALLOC_DEALLOC_GREF = Libc._IOC(Libc._IOC_NONE, 'G', 6, Marshal.SizeOf<ioctl_gntalloc_dealloc_gref>());
    public static readonly uint IOCTL_GNTALLOC_SET_UNMAP_NOTIFY = Libc._IOC(Libc._IOC_NONE, 'G', 7, Marshal.SizeOf<ioctl_gntalloc_unmap_notify>());

    public const ushort GNTALLOC_FLAG_WRITABLE = 1;
    public const uint UNMAP_NOTIFY_CLEAR_BYTE = 0x1;
    public const uint UNMAP_NOTIFY_SEND_EVENT = 0x2;

    /// <summary>The fixed part of ioctl_gntalloc_alloc_gref; gref_ids[count] follows it.</summary>
    [StructLayout(LayoutKind.Sequential)]
    public struct ioctl_gntalloc_alloc_gref
    {
        public ushort domid;
        public ushort flags;
        public uint count;
        public ulong index;
    }

    [StructLayout(LayoutKind.Sequential)]
    public struct ioctl_gntalloc_dealloc_gref
    {
        public ulong index;
        public uint count;
        private readonly uint _tailPadding;
    }

    [StructLayout(LayoutKind.Sequential)]
    public struct ioctl_gntalloc_unmap_notify
    {
        public ulong index;
        public uint action;
        public uint event_channel_port;
    }
}
