using System.Runtime.InteropServices;

namespace Qubes.Interop.X11;

// Structs of <X11/Xlib.h> in the x86-64 LP64 layout: Window, Atom, Pixmap, Colormap, Cursor,
// Drawable, VisualID, Time and XID are all unsigned long (ulong); Bool and Status are int;
// Display and GC are opaque pointers (nint).

/// <summary>Visual (Xlib.h). Read from the pointers Xlib returns; never allocated by callers.</summary>
[StructLayout(LayoutKind.Sequential)]
public struct Visual
{
    public nint ext_data;
    public ulong visualid;
    public int @class;
    public ulong red_mask;
    public ulong green_mask;
    public ulong blue_mask;
    public int bits_per_rgb;
    public int map_entries;
}

/// <summary>
/// struct funcs inside XImage. The entries are C function pointers kept as nint so the struct stays
/// marshallable for the layout check; destroy_image is what the XDestroyImage macro calls.
/// </summary>
[StructLayout(LayoutKind.Sequential)]
public struct XImageFuncs
{
    public nint create_image;
    public nint destroy_image;
    public nint get_pixel;
    public nint put_pixel;
    public nint sub_image;
    public nint add_pixel;
}

/// <summary>XImage (Xlib.h): a client-side image; <c>data</c> holds bytes_per_line * height bytes.</summary>
[StructLayout(LayoutKind.Sequential)]
public unsafe struct XImage
{
    public int width;
    public int height;
    public int xoffset;
    public int format;
    public byte* data;
    public int byte_order;
    public int bitmap_unit;
    public int bitmap_bit_order;
    public int bitmap_pad;
    public int depth;
    public int bytes_per_line;
    public int bits_per_pixel;
    public ulong red_mask;
    public ulong green_mask;
    public ulong blue_mask;
    /// <summary>For MIT-SHM images, the XShmSegmentInfo* given to XShmCreateImage: it must outlive the image.</summary>
    public nint obdata;
    public XImageFuncs f;
}

[StructLayout(LayoutKind.Sequential)]
public struct XSetWindowAttributes
{
    public ulong background_pixmap;
    public ulong background_pixel;
    public ulong border_pixmap;
    public ulong border_pixel;
    public int bit_gravity;
    public int win_gravity;
    public int backing_store;
    public ulong backing_planes;
    public ulong backing_pixel;
    public int save_under;
    public long event_mask;
    public long do_not_propagate_mask;
    public int override_redirect;
    public ulong colormap;
    public ulong cursor;
}

[StructLayout(LayoutKind.Sequential)]
public unsafe struct XWindowAttributes
{
    public int x;
    public int y;
    public int width;
    public int height;
    public int border_width;
    public int depth;
    public Visual* visual;
    public ulong root;
    public int @class;
    public int bit_gravity;
    public int win_gravity;
    public int backing_store;
    public ulong backing_planes;
    public ulong backing_pixel;
    public int save_under;
    public ulong colormap;
    public int map_installed;
    public int map_state;
    public long all_event_masks;
    public long your_event_mask;
    public long do_not_propagate_mask;
    public int override_redirect;
    /// <summary>Screen*; opaque here.</summary>
    public nint screen;
}

[StructLayout(LayoutKind.Sequential)]
public struct XWindowChanges
{
    public int x;
    public int y;
    public int width;
    public int height;
    public int border_width;
    public ulong sibling;
    public int stack_mode;
}

/// <summary>XGCValues (Xlib.h): the values XCreateGC/XChangeGC take, selected by GC* mask bits.</summary>
[StructLayout(LayoutKind.Sequential)]
public struct XGCValues
{
    public int function;
    public ulong plane_mask;
    public ulong foreground;
    public ulong background;
    public int line_width;
    public int line_style;
    public int cap_style;
    public int join_style;
    public int fill_style;
    public int fill_rule;
    public int arc_mode;
    public ulong tile;
    public ulong stipple;
    public int ts_x_origin;
    public int ts_y_origin;
    public ulong font;
    public int subwindow_mode;
    public int graphics_exposures;
    public int clip_x_origin;
    public int clip_y_origin;
    public ulong clip_mask;
    public int dash_offset;
    public byte dashes;
}

[StructLayout(LayoutKind.Sequential)]
public struct XRectangle
{
    public short x;
    public short y;
    public ushort width;
    public ushort height;
}
