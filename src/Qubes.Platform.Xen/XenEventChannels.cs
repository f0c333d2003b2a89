using Qubes.Interop.Linux;
using Qubes.Interop.Xen;

namespace Qubes.Platform.Xen;

/// <summary>Event channels through /dev/xen/evtchn, one device descriptor per channel (as libxenvchan opens one per vchan).</summary>
internal sealed class XenEventChannels(XenHypercalls hypercalls) : IEventChannels
{
    public unsafe IEventChannel AllocateUnbound(int remoteDomain)
    {
        SafeFd fd = XenDevice.Open(Evtchn.Device);
        try
        {
            var request = new Evtchn.ioctl_evtchn_bind_unbound_port { remote_domain = (uint)remoteDomain };
            uint port = (uint)XenDevice.Ioctl(fd, Evtchn.IOCTL_EVTCHN_BIND_UNBOUND_PORT, &request, $"evtchn unbound port for domain {remoteDomain}");
            return new XenEventChannel(fd, port, hypercalls);
        }
        catch
        {
            fd.Dispose();
            throw;
        }
    }

    public unsafe IEventChannel BindInterdomain(int remoteDomain, uint remotePort)
    {
        SafeFd fd = XenDevice.Open(Evtchn.Device);
        try
        {
            var request = new Evtchn.ioctl_evtchn_bind_interdomain { remote_domain = (uint)remoteDomain, remote_port = remotePort };
            uint port = (uint)XenDevice.Ioctl(fd, Evtchn.IOCTL_EVTCHN_BIND_INTERDOMAIN, &request, $"evtchn bind to domain {remoteDomain} port {remotePort}");
            return new XenEventChannel(fd, port, hypercalls);
        }
        catch
        {
            fd.Dispose();
            throw;
        }
    }
}

/// <summary>One bound port on its own evtchn descriptor.</summary>
internal sealed unsafe class XenEventChannel : IEventChannel
{
    private readonly SafeFd _fd;
    private readonly XenHypercalls _hypercalls;

    public XenEventChannel(SafeFd fd, uint port, XenHypercalls hypercalls)
    {
        _fd = fd;
        _hypercalls = hypercalls;
        LocalPort = port;
        Fd.SetNonBlocking(fd.Fd, true);
        Unmask();
    }

    public uint LocalPort { get; }

    int IEventChannel.Fd => _fd.Fd;

    public Errno Notify()
    {
        var request = new Evtchn.ioctl_evtchn_notify { port = LocalPort };
        return Libc.ioctl(_fd.Fd, Evtchn.IOCTL_EVTCHN_NOTIFY, &request) == 0 ? Errno.None : LastError.Get();
    }

    public int Wait(int timeoutMs)
    {
        int r = Qubes.Interop.Linux.Fd.PollIn(_fd.Fd, timeoutMs);
        if (r <= 0)
        {
            return r == 0 ? 0 : -1;
        }
        // pending ports come out of read() masked; writing them back unmasks them
        uint pending;
        nint n = Libc.read(_fd.Fd, &pending, sizeof(uint));
        if (n != sizeof(uint))
        {
            return n < 0 && LastError.Get() == Errno.EAGAIN ? 0 : -1;
        }
        return Unmask() ? 1 : -1;
    }

    private bool Unmask()
    {
        uint port = LocalPort;
        return Libc.write(_fd.Fd, &port, sizeof(uint)) == sizeof(uint);
    }

    public bool IsInterdomainBound() => _hypercalls.PortStatus(LocalPort) is null or Privcmd.EVTCHNSTAT_interdomain;

    public void Dispose()
    {
        if (_fd.IsClosed)
        {
            return;
        }
        var request = new Evtchn.ioctl_evtchn_unbind { port = LocalPort };
        Libc.ioctl(_fd.Fd, Evtchn.IOCTL_EVTCHN_UNBIND, &request);
        _fd.Dispose();
    }
}
