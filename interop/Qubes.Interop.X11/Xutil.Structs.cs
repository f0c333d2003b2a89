using System.Runtime.InteropServices;

namespace Qubes.Interop.X11;

// Structs of <X11/Xutil.h>: window manager hints and visual queries.

/// <summary>min_aspect / max_aspect of XSizeHints: a ratio x/y.</summary>
[StructLayout(LayoutKind.Sequential)]
public struct XSizeHintsAspect
{
    public int x;
    public int y;
}

/// <summary>XSizeHints (Xutil.h), the WM_NORMAL_HINTS property; <c>flags</c> says which fields count.</summary>
[StructLayout(LayoutKind.Sequential)]
public struct XSizeHints
{
    public long flags;
    public int x;
    public int y;
    public int width;
    public int height;
    public int min_width;
    public int min_height;
    public int max_width;
    public int max_height;
    public int width_inc;
    public int height_inc;
    public XSizeHintsAspect min_aspect;
    public XSizeHintsAspect max_aspect;
    public int base_width;
    public int base_height;
    public int win_gravity;
}

/// <summary>XWMHints (Xutil.h), the WM_HINTS property; <c>flags</c> says which fields count.</summary>
[StructLayout(LayoutKind.Sequential)]
public struct XWMHints
{
    public long flags;
    public int input;
    public int initial_state;
    public ulong icon_pixmap;
    public ulong icon_window;
    public int icon_x;
    public int icon_y;
    public ulong icon_mask;
    public ulong window_group;
}

/// <summary>XClassHint (Xutil.h), the WM_CLASS property: two NUL-terminated strings.</summary>
[StructLayout(LayoutKind.Sequential)]
public unsafe struct XClassHint
{
    public byte* res_name;
    public byte* res_class;
}

[StructLayout(LayoutKind.Sequential)]
public unsafe struct XVisualInfo
{
    public Visual* visual;
    public ulong visualid;
    public int screen;
    public int depth;
    public int @class;
    public ulong red_mask;
    public ulong green_mask;
    public ulong blue_mask;
    public int colormap_size;
    public int bits_per_rgb;
}
