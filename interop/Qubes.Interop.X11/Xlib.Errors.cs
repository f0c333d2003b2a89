using System.Runtime.InteropServices;

namespace Qubes.Interop.X11;

public static unsafe partial class Xlib
{
    /// <summary>
    /// Process-wide. Xlib's default handler prints and exits, which would let any window vanishing
    /// under a request end the daemon; <see cref="X11ErrorTrap"/> installs one that records instead.
    /// The handler runs inside Xlib and must neither call Xlib on that display nor throw.
    /// </summary>
    [LibraryImport(Libraries.X11)]
    public static partial delegate* unmanaged[Cdecl]<nint, XErrorEvent*, int> XSetErrorHandler(
        delegate* unmanaged[Cdecl]<nint, XErrorEvent*, int> handler);

    /// <summary>Process-wide; called when the connection breaks. Xlib then calls the display's exit handler.</summary>
    [LibraryImport(Libraries.X11)]
    public static partial delegate* unmanaged[Cdecl]<nint, int> XSetIOErrorHandler(
        delegate* unmanaged[Cdecl]<nint, int> handler);

    /// <summary>
    /// Per display (libX11 1.7+): what runs after the I/O error handler. The default calls exit();
    /// one that returns leaves the Display dead but the process alive, to be closed by its owner.
    /// </summary>
    [LibraryImport(Libraries.X11)]
    public static partial void XSetIOErrorExitHandler(nint display,
        delegate* unmanaged[Cdecl]<nint, void*, void> handler, void* user_data);

    [LibraryImport(Libraries.X11)]
    public static partial int XGetErrorText(nint display, int code, byte* buffer_return, int length);
}
