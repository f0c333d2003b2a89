using System.Runtime.InteropServices;

namespace Qubes.Interop.X11;

/// <summary>
/// Composite (libXcomposite.so.1): keeps a window's content in an off-screen pixmap even where it is
/// covered, so the agent can read any window whole.
/// </summary>
public static unsafe partial class Xcomposite
{
    public const int CompositeRedirectAutomatic = 0;
    public const int CompositeRedirectManual = 1;

    [LibraryImport(Libraries.Xcomposite)]
    public static partial int XCompositeQueryExtension(nint display, int* event_base_return, int* error_base_return);

    [LibraryImport(Libraries.Xcomposite)]
    public static partial int XCompositeQueryVersion(nint display, int* major_version_return, int* minor_version_return);

    [LibraryImport(Libraries.Xcomposite)]
    public static partial void XCompositeRedirectWindow(nint display, ulong window, int update);

    [LibraryImport(Libraries.Xcomposite)]
    public static partial void XCompositeRedirectSubwindows(nint display, ulong window, int update);

    [LibraryImport(Libraries.Xcomposite)]
    public static partial void XCompositeUnredirectWindow(nint display, ulong window, int update);

    [LibraryImport(Libraries.Xcomposite)]
    public static partial void XCompositeUnredirectSubwindows(nint display, ulong window, int update);

    /// <summary>A new pixmap naming the window's current backing store; a resize makes a new one, so name it again.</summary>
    [LibraryImport(Libraries.Xcomposite)]
    public static partial ulong XCompositeNameWindowPixmap(nint display, ulong window);

    [LibraryImport(Libraries.Xcomposite)]
    public static partial ulong XCompositeGetOverlayWindow(nint display, ulong window);

    [LibraryImport(Libraries.Xcomposite)]
    public static partial void XCompositeReleaseOverlayWindow(nint display, ulong window);
}
