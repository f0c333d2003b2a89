using System.Runtime.InteropServices;
using Qubes.Interop.Linux;

namespace Qubes.Interop.Xen;

/// <summary>/dev/xen/gntdev (xen/sys/gntdev.h): map pages another domain granted.</summary>
public static class Gntdev
{
    public const string Device = "/dev/xen/gntdev";

    /// <summary>sizeof(struct ioctl_gntdev_map_grant_ref) in C, with its one-element refs[].</summary>
    public const int SizeofMapGrantRef = 24;


    public static readonly uint IOCTL_GNTDEV_MAP_GRANT_REF = Libc._IOC(Libc._IOC_NONE, 'G', 0, SizeofMapGrantRef);
    public static readonly uint IOCTL_GNTDEV_UNMAP_GRANT_REF = Libc._IOC(Libc._IOC_NONE, 'G', 1, Marshal.SizeOf<ioctl_gntdev_unmap_grant_ref>());
    public static readonly uint IOCTL_GNTDEV_SET_UNMAP_NOTIFY = Libc._IOC(Libc._IOC_NONE, 'G', 7, Marshal.SizeOf<ioctl_gntdev_unmap_notify>());

    [StructLayout(LayoutKind.Sequential)]
    public struct ioctl_gntdev_grant_ref
    {
        public uint domid;
        public uint @ref;
    }

    /// <summary>The fixed part of ioctl_gntdev_map_grant_ref; refs[count] follows it.</summary>
    [StructLayout(LayoutKind.Sequential)]
    public struct ioctl_gntdev_map_grant_ref
    {
        public uint count;
        public uint pad;
        public ulong index;
    }

    [StructLayout(LayoutKind.Sequential)]
    public struct ioctl_gntdev_unmap_grant_ref
    {
        public ulong index;
        public uint count;
        public uint pad;
    }

    [StructLayout(LayoutKind.Sequential)]
    public struct ioctl_gntdev_unmap_notify
    {
        public ulong index;
        public uint action;
        public uint event_channel_port;
    }
}
