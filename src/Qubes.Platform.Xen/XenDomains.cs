using Qubes.Interop.Linux;
using Qubes.Interop.Xen;

namespace Qubes.Platform.Xen;

/// <summary>
/// Own id from the store key <c>domid</c>; liveness by asking to bind port 0 of the domain, which no
/// domain may do: Xen answers ESRCH only when there is no such domain (the spec's fallback query,
/// available in every domain, privileged or not).
/// </summary>
internal sealed unsafe class XenDomains : IDomains
{
    public XenDomains(int ownId) => OwnId = ownId;

    public int OwnId { get; }

    public bool IsAlive(int domainId)
    {
        if (!DomainIds.IsValid(domainId))
        {
            return false;
        }
        using SafeFd fd = XenDevice.Open(Evtchn.Device);
        var request = new Evtchn.ioctl_evtchn_bind_interdomain { remote_domain = (uint)domainId, remote_port = 0 };
        int r = Libc.ioctl(fd.Fd, Evtchn.IOCTL_EVTCHN_BIND_INTERDOMAIN, &request);
        if (r >= 0)
        {
            var unbind = new Evtchn.ioctl_evtchn_unbind { port = (uint)r };
            Libc.ioctl(fd.Fd, Evtchn.IOCTL_EVTCHN_UNBIND, &unbind);
            return true;
        }
        return LastError.Get() != Errno.ESRCH;
    }
}
