using System.Collections.Generic;
using System.Runtime.InteropServices;

namespace Qubes.Interop.Xen;

/// <summary>
/// Every size, offset and number this assembly declares, under the names native/xen-layout.c
/// prints for the same things from the real headers; a test compares the two.
/// </summary>
public static class XenLayout
{
    public static IReadOnlyDictionary<string, ulong> Values()
    {
        var v = new Dictionary<string, ulong>();
        void Size<T>(string c) where T : struct => v[$"sizeof({c})"] = (ulong)Marshal.SizeOf<T>();
        void Off<T>(string c, string field, string? csField = null) where T : struct
            => v[$"offsetof({c},{field})"] = (ulong)Marshal.OffsetOf<T>(csField ?? field);

        v["sizeof(ioctl_gntalloc_alloc_gref)"] = Gntalloc.SizeofAllocGref;
        Off<Gntalloc.ioctl_gntalloc_alloc_gref>("ioctl_gntalloc_alloc_gref", "domid");
        Off<Gntalloc.ioctl_gntalloc_alloc_gref>("ioctl_gntalloc_alloc_gref", "flags");
        Off<Gntalloc.ioctl_gntalloc_alloc_gref>("ioctl_gntalloc_alloc_gref", "count");
        Off<Gntalloc.ioctl_gntalloc_alloc_gref>("ioctl_gntalloc_alloc_gref", "index");
        // the variable array starts right after the fixed part that C# declares
        v["offsetof(ioctl_gntalloc_alloc_gref,gref_ids)"] = (ulong)Marshal.SizeOf<Gntalloc.ioctl_gntalloc_alloc_gref>();
        Size<Gntalloc.ioctl_gntalloc_dealloc_gref>("ioctl_gntalloc_dealloc_gref");
        Off<Gntalloc.ioctl_gntalloc_dealloc_gref>("ioctl_gntalloc_dealloc_gref", "index");
        Off<Gntalloc.ioctl_gntalloc_dealloc_gref>("ioctl_gntalloc_dealloc_gref", "count");
        Size<Gntalloc.ioctl_gntalloc_unmap_notify>("ioctl_gntalloc_unmap_notify");
        Off<Gntalloc.ioctl_gntalloc_unmap_notify>("ioctl_gntalloc_unmap_notify", "index");
        Off<Gntalloc.ioctl_gntalloc_unmap_notify>("ioctl_gntalloc_unmap_notify", "action");
        Off<Gntalloc.ioctl_gntalloc_unmap_notify>("ioctl_gntalloc_unmap_notify", "event_channel_port");
        v["IOCTL_GNTALLOC_ALLOC_GREF"] = Gntalloc.IOCTL_GNTALLOC_ALLOC_GREF;
        v["IOCTL_GNTALLOC_DEALLOC_GREF"] = Gntalloc.IOCTL_GNTALLOC_DEALLOC_GREF;
        v["IOCTL_GNTALLOC_SET_UNMAP_NOTIFY"] = Gntalloc.IOCTL_GNTALLOC_SET_UNMAP_NOTIFY;
        v["GNTALLOC_FLAG_WRITABLE"] = Gntalloc.GNTALLOC_FLAG_WRITABLE;
        v["UNMAP_NOTIFY_CLEAR_BYTE"] = Gntalloc.UNMAP_NOTIFY_CLEAR_BYTE;
        v["UNMAP_NOTIFY_SEND_EVENT"] = Gntalloc.UNMAP_NOTIFY_SEND_EVENT;

        Size<Gntdev.ioctl_gntdev_grant_ref>("ioctl_gntdev_grant_ref");
        Off<Gntdev.ioctl_gntdev_grant_ref>("ioctl_gntdev_grant_ref", "domid");
        Off<Gntdev.ioctl_gntdev_grant_ref>("ioctl_gntdev_grant_ref", "ref");
        v["sizeof(ioctl_gntdev_map_grant_ref)"] = Gntdev.SizeofMapGrantRef;
        Off<Gntdev.ioctl_gntdev_map_grant_ref>("ioctl_gntdev_map_grant_ref", "count");
        Off<Gntdev.ioctl_gntdev_map_grant_ref>("ioctl_gntdev_map_grant_ref", "pad");
        Off<Gntdev.ioctl_gntdev_map_grant_ref>("ioctl_gntdev_map_grant_ref", "index");
        v["offsetof(ioctl_gntdev_map_grant_ref,refs)"] = (ulong)Marshal.SizeOf<Gntdev.ioctl_gntdev_map_grant_ref>();
        Size<Gntdev.ioctl_gntdev_unmap_grant_ref>("ioctl_gntdev_unmap_grant_ref");
        Off<Gntdev.ioctl_gntdev_unmap_grant_ref>("ioctl_gntdev_unmap_grant_ref", "index");
        Off<Gntdev.ioctl_gntdev_unmap_grant_ref>("ioctl_gntdev_unmap_grant_ref", "count");
        Size<Gntdev.ioctl_gntdev_unmap_notify>("ioctl_gntdev_unmap_notify");
        Off<Gntdev.ioctl_gntdev_unmap_notify>("ioctl_gntdev_unmap_notify", "index");
        Off<Gntdev.ioctl_gntdev_unmap_notify>("ioctl_gntdev_unmap_notify", "action");
        Off<Gntdev.ioctl_gntdev_unmap_notify>("ioctl_gntdev_unmap_notify", "event_channel_port");
        v["IOCTL_GNTDEV_MAP_GRANT_REF"] = Gntdev.IOCTL_GNTDEV_MAP_GRANT_REF;
        v["IOCTL_GNTDEV_UNMAP_GRANT_REF"] = Gntdev.IOCTL_GNTDEV_UNMAP_GRANT_REF;
        v["IOCTL_GNTDEV_SET_UNMAP_NOTIFY"] = Gntdev.IOCTL_GNTDEV_SET_UNMAP_NOTIFY;

        Size<Evtchn.ioctl_evtchn_bind_interdomain>("ioctl_evtchn_bind_interdomain");
        Off<Evtchn.ioctl_evtchn_bind_interdomain>("ioctl_evtchn_bind_interdomain", "remote_domain");
        Off<Evtchn.ioctl_evtchn_bind_interdomain>("ioctl_evtchn_bind_interdomain", "remote_port");
        Size<Evtchn.ioctl_evtchn_bind_unbound_port>("ioctl_evtchn_bind_unbound_port");
        Size<Evtchn.ioctl_evtchn_unbind>("ioctl_evtchn_unbind");
        Size<Evtchn.ioctl_evtchn_notify>("ioctl_evtchn_notify");
        v["IOCTL_EVTCHN_BIND_INTERDOMAIN"] = Evtchn.IOCTL_EVTCHN_BIND_INTERDOMAIN;
        v["IOCTL_EVTCHN_BIND_UNBOUND_PORT"] = Evtchn.IOCTL_EVTCHN_BIND_UNBOUND_PORT;
        v["IOCTL_EVTCHN_UNBIND"] = Evtchn.IOCTL_EVTCHN_UNBIND;
        v["IOCTL_EVTCHN_NOTIFY"] = Evtchn.IOCTL_EVTCHN_NOTIFY;
        v["IOCTL_EVTCHN_RESET"] = Evtchn.IOCTL_EVTCHN_RESET;

        Size<Privcmd.privcmd_hypercall>("privcmd_hypercall");
        Off<Privcmd.privcmd_hypercall>("privcmd_hypercall", "op");
        Off<Privcmd.privcmd_hypercall>("privcmd_hypercall", "arg");
        v["IOCTL_PRIVCMD_HYPERCALL"] = Privcmd.IOCTL_PRIVCMD_HYPERCALL;
        Size<Privcmd.evtchn_status>("evtchn_status");
        Off<Privcmd.evtchn_status>("evtchn_status", "dom");
        Off<Privcmd.evtchn_status>("evtchn_status", "port");
        Off<Privcmd.evtchn_status>("evtchn_status", "status");
        Off<Privcmd.evtchn_status>("evtchn_status", "vcpu");
        Off<Privcmd.evtchn_status>("evtchn_status", "u.interdomain.dom", "u_interdomain_dom");
        Off<Privcmd.evtchn_status>("evtchn_status", "u.interdomain.port", "u_interdomain_port");
        v["EVTCHNOP_status"] = Privcmd.EVTCHNOP_status;
        v["EVTCHNSTAT_interdomain"] = Privcmd.EVTCHNSTAT_interdomain;
        v["DOMID_SELF"] = Privcmd.DOMID_SELF;
        v["__HYPERVISOR_event_channel_op"] = Privcmd.__HYPERVISOR_event_channel_op;
        return v;
    }
}
