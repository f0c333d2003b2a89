using System.Runtime.InteropServices;
using Qubes.Interop.Linux;

namespace Qubes.Interop.Xen;

/// <summary>
/// /dev/xen/evtchn (xen/sys/evtchn.h). Bind ioctls return the local port. read() yields pending
/// ports (u32 each) and masks them; write() of the same ports unmasks them.
/// </summary>
public static class Evtchn
{
    public const string Device = "/dev/xen/evtchn";

    public static readonly uint IOCTL_EVTCHN_BIND_INTERDOMAIN = Libc._IOC(Libc._IOC_NONE, 'E', 1, Marshal.SizeOf<ioctl_evtchn_bind_interdomain>());
    public static readonly uint IOCTL_EVTCHN_BIND_UNBOUND_PORT = Libc._IOC(Libc._IOC_NONE, 'E', 2, Marshal.SizeOf<ioctl_evtchn_bind_unbound_port>());
    public static readonly uint IOCTL_EVTCHN_UNBIND = Libc._IOC(Libc._IOC_NONE, 'E', 3, Marshal.SizeOf<ioctl_evtchn_unbind>());
    public static readonly uint IOCTL_EVTCHN_NOTIFY = Libc._IOC(Libc._IOC_NONE, 'E', 4, Marshal.SizeOf<ioctl_evtchn_notify>());
    public static readonly uint IOCTL_EVTCHN_RESET = Libc._IOC(Libc._IOC_NONE, 'E', 5, 0);

    [StructLayout(LayoutKind.Sequential)]
    public struct ioctl_evtchn_bind_interdomain
    {
        public uint remote_domain;
        public uint remote_port;
    }

    [StructLayout(LayoutKind.Sequential)]
    public struct ioctl_evtchn_bind_unbound_port
    {
        public uint remote_domain;
    }

    [StructLayout(LayoutKind.Sequential)]
    public struct ioctl_evtchn_unbind
    {
        public uint port;
    }

    [StructLayout(LayoutKind.Sequential)]
    public struct ioctl_evtchn_notify
    {
        public uint port;
    }
}
