using System.Runtime.InteropServices;

namespace Qubes.Interop.X11;

/// <summary>
/// XTEST (libXtst.so.6): input the server treats as coming from its real devices, so it reaches
/// whichever window is under the pointer or focused, as the user's would.
/// </summary>
public static unsafe partial class XTest
{
    [LibraryImport(Libraries.Xtst)]
    public static partial int XTestQueryExtension(nint display, int* event_basep, int* error_basep, int* majorp, int* minorp);

    /// <summary><paramref name="delay"/> is milliseconds, CurrentTime (0) for none.</summary>
    [LibraryImport(Libraries.Xtst)]
    public static partial int XTestFakeKeyEvent(nint display, uint keycode, int is_press, ulong delay);

    [LibraryImport(Libraries.Xtst)]
    public static partial int XTestFakeButtonEvent(nint display, uint button, int is_press, ulong delay);

    /// <summary>Absolute position on <paramref name="screen"/>; -1 means the pointer's current screen.</summary>
    [LibraryImport(Libraries.Xtst)]
    public static partial int XTestFakeMotionEvent(nint display, int screen, int x, int y, ulong delay);

    [LibraryImport(Libraries.Xtst)]
    public static partial int XTestFakeRelativeMotionEvent(nint display, int x, int y, ulong delay);

    /// <summary>True makes this client's requests go through even while another client grabs the server.</summary>
    [LibraryImport(Libraries.Xtst)]
    public static partial int XTestGrabControl(nint display, int impervious);
}
