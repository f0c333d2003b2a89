namespace Qubes.Interop.X11;

/// <summary>
/// Libraries by soname: the unversioned names (libX11.so, ...) come only with the -dev packages,
/// and dom0 and the qubes have only the runtime ones.
/// </summary>
internal static class Libraries
{
    internal const string X11 = "libX11.so.6";

    /// <summary>MIT-SHM's client side lives in libXext.</summary>
    internal const string Xext = "libXext.so.6";

    internal const string Xdamage = "libXdamage.so.1";
    internal const string Xcomposite = "libXcomposite.so.1";
    internal const string Xfixes = "libXfixes.so.3";
    internal const string Xtst = "libXtst.so.6";
    internal const string Libc = "libc.so.6";

    /// <summary>An Xlib display's XCB connection.</summary>
    internal const string X11Xcb = "libX11-xcb.so.1";

    internal const string Xcb = "libxcb.so.1";
    internal const string XcbShm = "libxcb-shm.so.0";
}
