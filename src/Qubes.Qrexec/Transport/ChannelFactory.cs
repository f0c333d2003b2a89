using System;
using Qubes.Platform.Loopback;
using Qubes.Platform.Xen;

namespace Qubes.Qrexec.Transport;

/// <summary>Picks the transport a qrexec program runs on, from its environment.</summary>
public static class ChannelFactory
{
    /// <summary>
    /// <c>VCHAN_SOCKET_DIR</c> set: the vchan-socket convention (upstream's test backend, so that
    /// upstream's C programs can be peers). Otherwise our vchan: the loopback hypervisor when
    /// <c>QUBES_LOHV_FD</c> or <c>QUBES_LOHV_DIR</c> is set, else Xen when <c>/dev/xen</c> is there.
    /// </summary>
    public static IChannelFactory FromEnvironment()
    {
        if (!string.IsNullOrEmpty(Environment.GetEnvironmentVariable("VCHAN_SOCKET_DIR")))
        {
            return SocketChannelFactory.FromEnvironment();
        }
        if (!string.IsNullOrEmpty(Environment.GetEnvironmentVariable(LoopbackPlatform.FdVariable))
            || !string.IsNullOrEmpty(Environment.GetEnvironmentVariable(LoopbackPlatform.DirectoryVariable))
            || !XenPlatform.IsAvailable)
        {
            return new VchanChannelFactory(LoopbackPlatform.FromEnvironment(), ownsPlatform: true);
        }
        return new VchanChannelFactory(XenPlatform.Open(), ownsPlatform: true);
    }
}
