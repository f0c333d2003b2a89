using System.Runtime.InteropServices;

namespace Qubes.Interop.X11;

public static unsafe partial class Xlib
{
    [LibraryImport(Libraries.X11)]
    public static partial nint XCreateGC(nint display, ulong d, ulong valuemask, XGCValues* values);

    [LibraryImport(Libraries.X11)]
    public static partial int XChangeGC(nint display, nint gc, ulong valuemask, XGCValues* values);

    [LibraryImport(Libraries.X11)]
    public static partial int XFreeGC(nint display, nint gc);

    [LibraryImport(Libraries.X11)]
    public static partial int XSetForeground(nint display, nint gc, ulong foreground);

    [LibraryImport(Libraries.X11)]
    public static partial int XSetBackground(nint display, nint gc, ulong background);

    [LibraryImport(Libraries.X11)]
    public static partial int XSetLineAttributes(nint display, nint gc, uint line_width, int line_style, int cap_style, int join_style);

    [LibraryImport(Libraries.X11)]
    public static partial int XFillRectangle(nint display, ulong d, nint gc, int x, int y, uint width, uint height);

    [LibraryImport(Libraries.X11)]
    public static partial int XDrawRectangle(nint display, ulong d, nint gc, int x, int y, uint width, uint height);

    [LibraryImport(Libraries.X11)]
    public static partial int XCopyArea(nint display, ulong src, ulong dest, nint gc, int src_x, int src_y,
        uint width, uint height, int dest_x, int dest_y);

    [LibraryImport(Libraries.X11)]
    public static partial ulong XCreatePixmap(nint display, ulong d, uint width, uint height, uint depth);

    [LibraryImport(Libraries.X11)]
    public static partial int XFreePixmap(nint display, ulong pixmap);

    /// <summary>
    /// Wraps caller memory in an XImage without copying. Destroying the image (destroy_image) frees
    /// <paramref name="data"/> with free(), so set data to NULL first when the caller owns it.
    /// </summary>
    [LibraryImport(Libraries.X11)]
    public static partial XImage* XCreateImage(nint display, Visual* visual, uint depth, int format, int offset,
        byte* data, uint width, uint height, int bitmap_pad, int bytes_per_line);

    [LibraryImport(Libraries.X11)]
    public static partial int XPutImage(nint display, ulong d, nint gc, XImage* image, int src_x, int src_y,
        int dest_x, int dest_y, uint width, uint height);

    /// <summary>Copies the area into a new XImage (destroy with <see cref="XImageHandle"/>); NULL on error.</summary>
    [LibraryImport(Libraries.X11)]
    public static partial XImage* XGetImage(nint display, ulong d, int x, int y, uint width, uint height,
        ulong plane_mask, int format);
}
