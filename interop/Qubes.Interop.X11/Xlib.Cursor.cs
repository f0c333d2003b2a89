using System.Runtime.InteropServices;

namespace Qubes.Interop.X11;

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
