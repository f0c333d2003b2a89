using System.Runtime.InteropServices;

namespace Qubes.Interop.X11;

public static unsafe partial class Xlib
{
    [LibraryImport(Libraries.X11)]
    public static partial ulong XCreateWindow(nint display, ulong parent, int x, int y, uint width, uint height,
        uint border_width, int depth, uint @class, Visual* visual, ulong valuemask, XSetWindowAttributes* attributes);

    [LibraryImport(Libraries.X11)]
    public static partial ulong XCreateSimpleWindow(nint display, ulong parent, int x, int y, uint width, uint height,
        uint border_width, ulong border, ulong background);

    [LibraryImport(Libraries.X11)]
    public static partial int XDestroyWindow(nint display, ulong w);

    [LibraryImport(Libraries.X11)]
    public static partial int XMapWindow(nint display, ulong w);

    [LibraryImport(Libraries.X11)]
    public static partial int XMapRaised(nint display, ulong w);

    [LibraryImport(Libraries.X11)]
    public static partial int XUnmapWindow(nint display, ulong w);

    [LibraryImport(Libraries.X11)]
    public static partial int XRaiseWindow(nint display, ulong w);

    [LibraryImport(Libraries.X11)]
    public static partial int XMoveWindow(nint display, ulong w, int x, int y);

    [LibraryImport(Libraries.X11)]
    public static partial int XResizeWindow(nint display, ulong w, uint width, uint height);

    [LibraryImport(Libraries.X11)]
    public static partial int XMoveResizeWindow(nint display, ulong w, int x, int y, uint width, uint height);

    [LibraryImport(Libraries.X11)]
    public static partial int XConfigureWindow(nint display, ulong w, uint value_mask, XWindowChanges* values);

    [LibraryImport(Libraries.X11)]
    public static partial int XChangeWindowAttributes(nint display, ulong w, ulong valuemask, XSetWindowAttributes* attributes);

    [LibraryImport(Libraries.X11)]
    public static partial int XSetWindowBackground(nint display, ulong w, ulong background_pixel);

    [LibraryImport(Libraries.X11)]
    public static partial int XClearWindow(nint display, ulong w);

    [LibraryImport(Libraries.X11)]
    public static partial int XClearArea(nint display, ulong w, int x, int y, uint width, uint height, int exposures);

    /// <summary>Status: 0 on failure (the window is gone: also a BadWindow through the error handler).</summary>
    [LibraryImport(Libraries.X11)]
    public static partial int XGetWindowAttributes(nint display, ulong w, XWindowAttributes* window_attributes_return);

    [LibraryImport(Libraries.X11)]
    public static partial int XGetGeometry(nint display, ulong d, ulong* root_return, int* x_return, int* y_return,
        uint* width_return, uint* height_return, uint* border_width_return, uint* depth_return);

    [LibraryImport(Libraries.X11)]
    public static partial int XTranslateCoordinates(nint display, ulong src_w, ulong dest_w, int src_x, int src_y,
        int* dest_x_return, int* dest_y_return, ulong* child_return);

    /// <summary>*children_return is XFree'd by the caller (it may be NULL when there are none).</summary>
    [LibraryImport(Libraries.X11)]
    public static partial int XQueryTree(nint display, ulong w, ulong* root_return, ulong* parent_return,
        ulong** children_return, uint* nchildren_return);

    [LibraryImport(Libraries.X11)]
    public static partial ulong XCreateColormap(nint display, ulong w, Visual* visual, int alloc);

    [LibraryImport(Libraries.X11)]
    public static partial int XFreeColormap(nint display, ulong colormap);
}
