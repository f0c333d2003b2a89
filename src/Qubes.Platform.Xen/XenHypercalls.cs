using System;
using Qubes.Interop.Linux;
using Qubes.Interop.Xen;

namespace Qubes.Platform.Xen;

/// <summary>
/// The hypercalls made through /dev/xen/privcmd, with their argument in a locked page (a hypercall
/// argument must not fault). A domU's kernel usually refuses privcmd hypercalls; then the answers
/// are "unknown" and callers fall back to what they can observe otherwise.
/// </summary>
internal sealed unsafe class XenHypercalls : IDisposable
{
    private readonly SafeFd? _privcmd;
    private readonly MemoryMapping? _argument;
    private readonly object _lock = new();
    private bool _refused;

    public XenHypercalls()
    {
        int fd = Libc.open(Privcmd.Device, Libc.O_RDWR | Libc.O_CLOEXEC, 0);
        if (fd < 0)
        {
            return;
        }
        _privcmd = new SafeFd(fd);
        _argument = MemoryMapping.Anonymous(IGrantTable.PageSize);
        if (Libc.mlock(_argument.Pointer, IGrantTable.PageSize) != 0)
        {
            _refused = true;
        }
    }

    /// <summary>EVTCHNOP_status of one of our own ports: its EVTCHNSTAT_* value, or null when the hypervisor cannot be asked.</summary>
    public uint? PortStatus(uint port)
    {
        if (_privcmd == null || _argument == null || _refused)
        {
            return null;
        }
        lock (_lock)
        {
            var status = (Privcmd.evtchn_status*)_argument.Pointer;
            *status = new Privcmd.evtchn_status { dom = Privcmd.DOMID_SELF, port = port };
            var call = new Privcmd.privcmd_hypercall { op = Privcmd.__HYPERVISOR_event_channel_op };
            call.arg[0] = Privcmd.EVTCHNOP_status;
            call.arg[1] = (ulong)status;
            if (Libc.ioctl(_privcmd.Fd, Privcmd.IOCTL_PRIVCMD_HYPERCALL, &call) < 0)
            {
                Errno e = LastError.Get();
                if (e is Errno.EPERM or Errno.EACCES or Errno.ENOSYS or Errno.ENOTSUP or Errno.EINVAL)
                {
                    _refused = true;   // not allowed here: stop asking
                    return null;
                }
                return Privcmd.EVTCHNSTAT_closed;
            }
            return status->status;
        }
    }

    public void Dispose()
    {
        _argument?.Dispose();
        _privcmd?.Dispose();
    }
}
