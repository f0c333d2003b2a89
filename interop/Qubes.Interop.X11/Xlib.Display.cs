using System.Runtime.InteropServices;

namespace Qubes.Interop.X11;

/// <summary>
/// Xlib (libX11.so.6). Display* and GC are opaque and passed as nint; XIDs (Window, Atom, Pixmap,
/// Drawable, Colormap, Cursor, Time) are C unsigned long, ulong here. Functions that are macros in
/// C (DefaultScreen, RootWindow, ...) are bound to the X* functions Xlib exports for them.
/// </summary>
public static unsafe partial class Xlib
{
    /// <summary>Must precede every other Xlib call in the process when more than one thread uses Xlib.</summary>
    [LibraryImport(Libraries.X11)]
    public static partial int XInitThreads();

    /// <summary>NULL (<paramref name="display_name"/> null) means $DISPLAY. Returns NULL on failure.</summary>
    [LibraryImport(Libraries.X11, StringMarshalling = StringMarshalling.Utf8)]
    public static partial nint XOpenDisplay(string? display_name);

    [LibraryImport(Libraries.X11)]
    public static partial int XCloseDisplay(nint display);

    [LibraryImport(Libraries.X11)]
    public static partial int XDefaultScreen(nint display);

    [LibraryImport(Libraries.X11)]
    public static partial ulong XRootWindow(nint display, int screen_number);

    [LibraryImport(Libraries.X11)]
    public static partial ulong XDefaultRootWindow(nint display);

    [LibraryImport(Libraries.X11)]
    public static partial Visual* XDefaultVisual(nint display, int screen_number);

    [LibraryImport(Libraries.X11)]
    public static partial int XDefaultDepth(nint display, int screen_number);

    [LibraryImport(Libraries.X11)]
    public static partial ulong XDefaultColormap(nint display, int screen_number);

    [LibraryImport(Libraries.X11)]
    public static partial nint XDefaultGC(nint display, int screen_number);

    [LibraryImport(Libraries.X11)]
    public static partial ulong XBlackPixel(nint display, int screen_number);

    [LibraryImport(Libraries.X11)]
    public static partial ulong XWhitePixel(nint display, int screen_number);

    [LibraryImport(Libraries.X11)]
    public static partial int XDisplayWidth(nint display, int screen_number);

    [LibraryImport(Libraries.X11)]
    public static partial int XDisplayHeight(nint display, int screen_number);

    /// <summary>The connection's socket, for poll/epoll next to other event sources.</summary>
    [LibraryImport(Libraries.X11)]
    public static partial int XConnectionNumber(nint display);

    [LibraryImport(Libraries.X11)]
    public static partial int XFlush(nint display);

    /// <summary>Flushes and waits until the server has processed every request, so errors have arrived.</summary>
    [LibraryImport(Libraries.X11)]
    public static partial int XSync(nint display, int discard);

    [LibraryImport(Libraries.X11)]
    public static partial int XPending(nint display);

    [LibraryImport(Libraries.X11)]
    public static partial int XEventsQueued(nint display, int mode);

    /// <summary>Blocks until an event arrives.</summary>
    [LibraryImport(Libraries.X11)]
    public static partial int XNextEvent(nint display, XEvent* event_return);

    [LibraryImport(Libraries.X11)]
    public static partial int XPeekEvent(nint display, XEvent* event_return);

    [LibraryImport(Libraries.X11)]
    public static partial int XCheckTypedEvent(nint display, int event_type, XEvent* event_return);

    [LibraryImport(Libraries.X11)]
    public static partial int XCheckTypedWindowEvent(nint display, ulong w, int event_type, XEvent* event_return);

    [LibraryImport(Libraries.X11)]
    public static partial int XCheckWindowEvent(nint display, ulong w, long event_mask, XEvent* event_return);

    [LibraryImport(Libraries.X11)]
    public static partial int XSelectInput(nint display, ulong w, long event_mask);

    /// <summary>Returns 0 when the event could not be converted to the wire format.</summary>
    [LibraryImport(Libraries.X11)]
    public static partial int XSendEvent(nint display, ulong w, int propagate, long event_mask, XEvent* event_send);

    /// <summary>Frees what Xlib allocated and documents as XFree'd (property data, hints, lists).</summary>
    [LibraryImport(Libraries.X11)]
    public static partial int XFree(void* data);

    [LibraryImport(Libraries.X11)]
    public static partial int XMatchVisualInfo(nint display, int screen, int depth, int @class, XVisualInfo* vinfo_return);

    /// <summary>The array returned is XFree'd by the caller.</summary>
    [LibraryImport(Libraries.X11)]
    public static partial XVisualInfo* XGetVisualInfo(nint display, long vinfo_mask, XVisualInfo* vinfo_template, int* nitems_return);
}
