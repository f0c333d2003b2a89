using System;
using System.Runtime.InteropServices;

namespace Qubes.Interop.X11;

/// <summary>The standard cursor font's shapes (cursorfont.h): shape i is glyph 2i, named as X names its cursors.</summary>
public static class CursorFont
{
    /// <summary>The shapes' names in glyph order: XC_name = 2 × index.</summary>
    public static readonly string[] Names =
    [
        "X_cursor", "arrow", "based_arrow_down", "based_arrow_up", "boat", "bogosity",
        "bottom_left_corner", "bottom_right_corner", "bottom_side", "bottom_tee", "box_spiral",
        "center_ptr", "circle", "clock", "coffee_mug", "cross", "cross_reverse", "crosshair",
        "diamond_cross", "dot", "dotbox", "double_arrow", "draft_large", "draft_small",
        "draped_box", "exchange", "fleur", "gobbler", "gumby", "hand1", "hand2", "heart",
        "icon", "iron_cross", "left_ptr", "left_side", "left_tee", "leftbutton", "ll_angle",
        "lr_angle", "man", "middlebutton", "mouse", "pencil", "pirate", "plus",
        "question_arrow", "right_ptr", "right_side", "right_tee", "rightbutton", "rtl_logo",
        "sailboat", "sb_down_arrow", "sb_h_double_arrow", "sb_left_arrow", "sb_right_arrow",
        "sb_up_arrow", "sb_v_double_arrow", "shuttle", "sizing", "spider", "spraycan", "star",
        "target", "tcross", "top_left_arrow", "top_left_corner", "top_right_corner", "top_side",
        "top_tee", "trek", "ul_angle", "umbrella", "ur_angle", "watch", "xterm",
    ];

    /// <summary>The glyph of the shape called <paramref name="name"/>, or -1.</summary>
    public static int Glyph(ReadOnlySpan<char> name)
    {
        for (int i = 0; i < Names.Length; i++)
        {
            if (name.SequenceEqual(Names[i]))
            {
                return 2 * i;
            }
        }
        return -1;
    }
}

public static partial class Xlib
{
    /// <summary>A cursor of the standard cursor font (glyphs 0-153, even numbers name shapes).</summary>
    [LibraryImport(Libraries.X11)]
    public static partial ulong XCreateFontCursor(nint display, uint shape);

    [LibraryImport(Libraries.X11)]
    public static partial int XDefineCursor(nint display, ulong w, ulong cursor);

    [LibraryImport(Libraries.X11)]
    public static partial int XUndefineCursor(nint display, ulong w);

    [LibraryImport(Libraries.X11)]
    public static partial int XFreeCursor(nint display, ulong cursor);
}
