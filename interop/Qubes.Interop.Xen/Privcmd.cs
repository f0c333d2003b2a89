using System.Runtime.InteropServices;
using Qubes.Interop.Linux;

namespace Qubes.Interop.Xen;

/// <summary>/dev/xen/privcmd (xen/sys/privcmd.h) and the one hypercall used through it: EVTCHNOP_status.</summary>
public static unsafe class Privcmd
{
    public const string Device = "/dev/xen/privcmd";

    public static readonly uint IOCTL_PRIVCMD_HYPERCALL = Libc._IOC(Libc._IOC_NONE, 'P', 0, sizeof(privcmd_hypercall));

    /// <summary>__HYPERVISOR_event_channel_op (xen/xen.h).</summary>
    public const ulong __HYPERVISOR_event_channel_op = 32;

    /// <summary>EVTCHNOP_status (xen/event_channel.h).</summary>
    public const ulong EVTCHNOP_status = 5;

    public const uint EVTCHNSTAT_closed = 0;
    public const uint EVTCHNSTAT_unbound = 1;
    public const uint EVTCHNSTAT_interdomain = 2;

    /// <summary>DOMID_SELF (xen/xen.h).</summary>
    public const ushort DOMID_SELF = 0x7FF0;

    [StructLayout(LayoutKind.Sequential)]
    public struct privcmd_hypercall
    {
        public ulong op;
        public fixed ulong arg[5];
    }

    /// <summary>struct evtchn_status; the union u is read as its interdomain member.</summary>
    [StructLayout(LayoutKind.Sequential)]
    public struct evtchn_status
    {
        public ushort dom;
        public uint port;
        public uint status;
        public uint vcpu;
        public ushort u_interdomain_dom;
        public uint u_interdomain_port;
    }
}
