/* Prints, as "NAME VALUE" lines, every struct size, field offset and ioctl number that
 * interop/Qubes.Interop.Xen declares, taken from the real Xen headers (Debian libxen-dev).
 * The test LayoutTests compiles and runs this and compares each line with the C# value.
 * build: gcc -D__XEN_TOOLS__ -O0 -Wall -Werror xen-layout.c -o xen-layout
 * (__XEN_TOOLS__ selects the current hypercall interface, as Xen's own tools are built) */
#include <stdio.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/ioctl.h>
#include <xen/xen.h>
#include <xen/event_channel.h>
#include <xen/sys/gntalloc.h>
#include <xen/sys/gntdev.h>
#include <xen/sys/evtchn.h>
#include <xen/sys/privcmd.h>

#define SIZE(t) printf("sizeof(%s) %zu\n", #t, sizeof(struct t))
#define OFF(t, f) printf("offsetof(%s,%s) %zu\n", #t, #f, offsetof(struct t, f))
#define NUM(n) printf("%s %lu\n", #n, (unsigned long)(n))

int main(void)
{
    SIZE(ioctl_gntalloc_alloc_gref);
    OFF(ioctl_gntalloc_alloc_gref, domid);
    OFF(ioctl_gntalloc_alloc_gref, flags);
    OFF(ioctl_gntalloc_alloc_gref, count);
    OFF(ioctl_gntalloc_alloc_gref, index);
    OFF(ioctl_gntalloc_alloc_gref, gref_ids);
    SIZE(ioctl_gntalloc_dealloc_gref);
    OFF(ioctl_gntalloc_dealloc_gref, index);
    OFF(ioctl_gntalloc_dealloc_gref, count);
    SIZE(ioctl_gntalloc_unmap_notify);
    OFF(ioctl_gntalloc_unmap_notify, index);
    OFF(ioctl_gntalloc_unmap_notify, action);
    OFF(ioctl_gntalloc_unmap_notify, event_channel_port);
    NUM(IOCTL_GNTALLOC_ALLOC_GREF);
    NUM(IOCTL_GNTALLOC_DEALLOC_GREF);
    NUM(IOCTL_GNTALLOC_SET_UNMAP_NOTIFY);
    NUM(GNTALLOC_FLAG_WRITABLE);
    NUM(UNMAP_NOTIFY_CLEAR_BYTE);
    NUM(UNMAP_NOTIFY_SEND_EVENT);

    SIZE(ioctl_gntdev_grant_ref);
    OFF(ioctl_gntdev_grant_ref, domid);
    OFF(ioctl_gntdev_grant_ref, ref);
    SIZE(ioctl_gntdev_map_grant_ref);
    OFF(ioctl_gntdev_map_grant_ref, count);
    OFF(ioctl_gntdev_map_grant_ref, pad);
    OFF(ioctl_gntdev_map_grant_ref, index);
    OFF(ioctl_gntdev_map_grant_ref, refs);
    SIZE(ioctl_gntdev_unmap_grant_ref);
    OFF(ioctl_gntdev_unmap_grant_ref, index);
    OFF(ioctl_gntdev_unmap_grant_ref, count);
    SIZE(ioctl_gntdev_unmap_notify);
    OFF(ioctl_gntdev_unmap_notify, index);
    OFF(ioctl_gntdev_unmap_notify, action);
    OFF(ioctl_gntdev_unmap_notify, event_channel_port);
    NUM(IOCTL_GNTDEV_MAP_GRANT_REF);
    NUM(IOCTL_GNTDEV_UNMAP_GRANT_REF);
    NUM(IOCTL_GNTDEV_SET_UNMAP_NOTIFY);

    SIZE(ioctl_evtchn_bind_interdomain);
    OFF(ioctl_evtchn_bind_interdomain, remote_domain);
    OFF(ioctl_evtchn_bind_interdomain, remote_port);
    SIZE(ioctl_evtchn_bind_unbound_port);
    SIZE(ioctl_evtchn_unbind);
    SIZE(ioctl_evtchn_notify);
    NUM(IOCTL_EVTCHN_BIND_INTERDOMAIN);
    NUM(IOCTL_EVTCHN_BIND_UNBOUND_PORT);
    NUM(IOCTL_EVTCHN_UNBIND);
    NUM(IOCTL_EVTCHN_NOTIFY);
    NUM(IOCTL_EVTCHN_RESET);

    SIZE(privcmd_hypercall);
    OFF(privcmd_hypercall, op);
    OFF(privcmd_hypercall, arg);
    NUM(IOCTL_PRIVCMD_HYPERCALL);
    SIZE(evtchn_status);
    OFF(evtchn_status, dom);
    OFF(evtchn_status, port);
    OFF(evtchn_status, status);
    OFF(evtchn_status, vcpu);
    OFF(evtchn_status, u.interdomain.dom);
    OFF(evtchn_status, u.interdomain.port);
    NUM(EVTCHNOP_status);
    NUM(EVTCHNSTAT_interdomain);
    NUM(DOMID_SELF);
    NUM(__HYPERVISOR_event_channel_op);
    return 0;
}
