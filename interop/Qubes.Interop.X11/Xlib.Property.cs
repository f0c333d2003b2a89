using System.Runtime.InteropServices;

namespace Qubes.Interop.X11;

public static unsafe partial class Xlib
{
    /// <summary>Set-up path; returns None when <paramref name="only_if_exists"/> is True and the atom does not exist.</summary>
    [LibraryImport(Libraries.X11, StringMarshalling = StringMarshalling.Utf8)]
    public static partial ulong XInternAtom(nint display, string atom_name, int only_if_exists);

    /// <summary>The name is XFree'd by the caller.</summary>
    [LibraryImport(Libraries.X11)]
    public static partial byte* XGetAtomName(nint display, ulong atom);

    /// <summary>The window's WM_NAME as Latin-1 text; XFree the result.</summary>
    [LibraryImport(Libraries.X11)]
    public static partial int XFetchName(nint display, ulong w, byte** window_name_return);

    /// <summary>
    /// <paramref name="nelements"/> counts items of <paramref name="format"/> bits; format 32 items are
    /// C longs (8 bytes each here), as Xlib packs them to 32 bits on the wire.
    /// </summary>
    [LibraryImport(Libraries.X11)]
    public static partial int XChangeProperty(nint display, ulong w, ulong property, ulong type, int format, int mode,
        byte* data, int nelements);

    /// <summary>
    /// Returns Success (0) when the request succeeded, whether or not the property exists
    /// (*actual_type_return is None when it does not). *prop_return is XFree'd by the caller; it has
    /// one extra NUL byte, and format 32 items come back as C longs sign-extended from 32 bits (so a
    /// CARDINAL of 0xFFFFFFFF reads as -1: mask it).
    /// </summary>
    [LibraryImport(Libraries.X11)]
    public static partial int XGetWindowProperty(nint display, ulong w, ulong property, long long_offset, long long_length,
        int delete, ulong req_type, ulong* actual_type_return, int* actual_format_return, ulong* nitems_return,
        ulong* bytes_after_return, byte** prop_return);

    [LibraryImport(Libraries.X11)]
    public static partial int XDeleteProperty(nint display, ulong w, ulong property);

    /// <summary>Sets WM_NAME as a Latin-1 STRING; _NET_WM_NAME (UTF8_STRING) goes through XChangeProperty.</summary>
    [LibraryImport(Libraries.X11)]
    public static partial int XStoreName(nint display, ulong w, byte* window_name);

    [LibraryImport(Libraries.X11)]
    public static partial void XSetWMNormalHints(nint display, ulong w, XSizeHints* hints);

    [LibraryImport(Libraries.X11)]
    public static partial int XGetWMNormalHints(nint display, ulong w, XSizeHints* hints_return, long* supplied_return);

    [LibraryImport(Libraries.X11)]
    public static partial int XSetClassHint(nint display, ulong w, XClassHint* class_hints);

    /// <summary>res_name and res_class of the result are XFree'd by the caller.</summary>
    [LibraryImport(Libraries.X11)]
    public static partial int XGetClassHint(nint display, ulong w, XClassHint* class_hints_return);

    [LibraryImport(Libraries.X11)]
    public static partial int XSetWMHints(nint display, ulong w, XWMHints* wm_hints);

    /// <summary>The result is XFree'd by the caller; NULL when the window has no WM_HINTS.</summary>
    [LibraryImport(Libraries.X11)]
    public static partial XWMHints* XGetWMHints(nint display, ulong w);

    /// <summary>Sets WM_PROTOCOLS, e.g. to WM_DELETE_WINDOW so closing arrives as a ClientMessage.</summary>
    [LibraryImport(Libraries.X11)]
    public static partial int XSetWMProtocols(nint display, ulong w, ulong* protocols, int count);

    [LibraryImport(Libraries.X11)]
    public static partial int XSetTransientForHint(nint display, ulong w, ulong prop_window);

    [LibraryImport(Libraries.X11)]
    public static partial int XGetTransientForHint(nint display, ulong w, ulong* prop_window_return);
}
