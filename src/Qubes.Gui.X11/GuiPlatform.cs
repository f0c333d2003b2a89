using Qubes.Platform;
using Qubes.Platform.Loopback;
using Qubes.Platform.Xen;

namespace Qubes.Gui.X11;

/// <summary>The hypervisor the GUI programs run on, from their environment.</summary>
public static class GuiPlatform
{
    /// <summary>
    /// The loopback hypervisor when <c>QUBES_LOHV_FD</c> or <c>QUBES_LOHV_DIR</c> is set (or there
    /// is no Xen), else Xen.
    /// </summary>
    public static IPlatform FromEnvironment()
        => !string.IsNullOrEmpty(System.Environment.GetEnvironmentVariable(LoopbackPlatform.FdVariable))
            || !string.IsNullOrEmpty(System.Environment.GetEnvironmentVariable(LoopbackPlatform.DirectoryVariable))
            || !XenPlatform.IsAvailable
            ? LoopbackPlatform.FromEnvironment()
            : XenPlatform.Open();
}
