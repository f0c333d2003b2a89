using System.Runtime.InteropServices;

namespace Qubes.Interop.X11;

/// <summary>XFixesSelectionNotify: a selection changed owner (subtype XFixesSetSelectionOwnerNotify, ...).</summary>
[StructLayout(LayoutKind.Sequential)]
public struct XFixesSelectionNotifyEvent
{
    public int type;
    public ulong serial;
    public int send_event;
    public nint display;
    public ulong window;
    public int subtype;
    public ulong owner;
    public ulong selection;
    public ulong timestamp;
    public ulong selection_timestamp;
}

/// <summary>XFixesCursorNotify: the displayed cursor changed.</summary>
[StructLayout(LayoutKind.Sequential)]
public struct XFixesCursorNotifyEvent
{
    public int type;
    public ulong serial;
    public int send_event;
    public nint display;
    public ulong window;
    public int subtype;
    public ulong cursor_serial;
    public ulong timestamp;
    public ulong cursor_name;
}

/// <summary>
/// XFixesCursorImage: <c>pixels</c> holds width*height ARGB values, one per C unsigned long (the
/// top 32 bits unused). XFree'd by the caller.
/// </summary>
[StructLayout(LayoutKind.Sequential)]
public unsafe struct XFixesCursorImage
{
    public short x;
    public short y;
    public ushort width;
    public ushort height;
    public ushort xhot;
    public ushort yhot;
    public ulong cursor_serial;
    public ulong* pixels;
    public ulong atom;
    public byte* name;
}

/// <summary>XFIXES (libXfixes.so.3): selection-owner and cursor notifications, server-side regions.</summary>
public static unsafe partial class Xfixes
{
    public const int XFixesSelectionNotify = 0;
    public const int XFixesCursorNotify = 1;
    public const int XFixesSetSelectionOwnerNotify = 0;
    public const int XFixesSelectionWindowDestroyNotify = 1;
    public const int XFixesSelectionClientCloseNotify = 2;
    public const ulong XFixesSetSelectionOwnerNotifyMask = 1UL << 0;
    public const ulong XFixesSelectionWindowDestroyNotifyMask = 1UL << 1;
    public const ulong XFixesSelectionClientCloseNotifyMask = 1UL << 2;
    public const int XFixesDisplayCursorNotify = 0;
    public const ulong XFixesDisplayCursorNotifyMask = 1UL << 0;
    public const int BadRegion = 0;

    [LibraryImport(Libraries.Xfixes)]
    public static partial int XFixesQueryExtension(nint display, int* event_base_return, int* error_base_return);

    /// <summary>Must be called before other requests: the server speaks the version the client announces.</summary>
    [LibraryImport(Libraries.Xfixes)]
    public static partial int XFixesQueryVersion(nint display, int* major_version_return, int* minor_version_return);

    [LibraryImport(Libraries.Xfixes)]
    public static partial void XFixesSelectSelectionInput(nint display, ulong win, ulong selection, ulong eventMask);

    [LibraryImport(Libraries.Xfixes)]
    public static partial void XFixesSelectCursorInput(nint display, ulong win, ulong eventMask);

    [LibraryImport(Libraries.Xfixes)]
    public static partial XFixesCursorImage* XFixesGetCursorImage(nint display);

    [LibraryImport(Libraries.Xfixes)]
    public static partial ulong XFixesCreateRegion(nint display, XRectangle* rectangles, int nrectangles);

    [LibraryImport(Libraries.Xfixes)]
    public static partial void XFixesDestroyRegion(nint display, ulong region);

    [LibraryImport(Libraries.Xfixes)]
    public static partial void XFixesSetRegion(nint display, ulong region, XRectangle* rectangles, int nrectangles);

    /// <summary>The rectangles are XFree'd by the caller.</summary>
    [LibraryImport(Libraries.Xfixes)]
    public static partial XRectangle* XFixesFetchRegion(nint display, ulong region, int* nrectanglesRet);

    [LibraryImport(Libraries.Xfixes)]
    public static partial void XFixesHideCursor(nint display, ulong win);

    [LibraryImport(Libraries.Xfixes)]
    public static partial void XFixesShowCursor(nint display, ulong win);
}
