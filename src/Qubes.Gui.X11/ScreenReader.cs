using System;
using System.Text;
using Qubes.Interop.X11;

namespace Qubes.Gui.X11;

/// <summary>What a user sees on a display, read back: top-level windows by title, their place, pixels, the whole screen.</summary>
public static unsafe class ScreenReader
{
    /// <summary>The first top-level window whose <c>_NET_WM_NAME</c> (else <c>WM_NAME</c>) is <paramref name="title"/>, or 0.</summary>
    public static ulong FindWindow(DisplayHandle display, string title)
    {
        ArgumentNullException.ThrowIfNull(display);
        nint d = display.Pointer;
        ulong netWmName = Xlib.XInternAtom(d, "_NET_WM_NAME", 0), root, parent, found = 0;
        ulong* children;
        uint count;
        if (Xlib.XQueryTree(d, display.RootWindow, &root, &parent, &children, &count) == 0)
        {
            return 0;
        }
        for (uint i = 0; i < count && found == 0; i++)
        {
            if (Title(d, children[i], netWmName) == title || Title(d, children[i], Xlib.XA_WM_NAME) == title)
            {
                found = children[i];
            }
        }
        Xlib.XFree(children);
        return found;
    }

    private static string? Title(nint d, ulong window, ulong property)
    {
        ulong type, items, after;
        int format;
        byte* data = null;
        X11ErrorTrap.Reset(d);
        if (Xlib.XGetWindowProperty(d, window, property, 0, 1024, 0, Xlib.AnyPropertyType, &type, &format, &items, &after, &data) != Xlib.Success || data == null)
        {
            return null;
        }
        string? text = format == 8 ? Encoding.UTF8.GetString(data, (int)items) : null;
        Xlib.XFree(data);
        return text;
    }

    /// <summary>Where a top-level window's outer corner (its frame's, when it has a border) is on the screen.</summary>
    public static (int X, int Y) Position(DisplayHandle display, ulong window)
    {
        ArgumentNullException.ThrowIfNull(display);
        XWindowAttributes a;
        return Xlib.XGetWindowAttributes(display.Pointer, window, &a) != 0 ? (a.x, a.y) : (0, 0);
    }

    /// <summary>The colour (0xRRGGBB) the screen shows at (<paramref name="x"/>, <paramref name="y"/>).</summary>
    public static uint Pixel(DisplayHandle display, int x, int y)
    {
        ArgumentNullException.ThrowIfNull(display);
        using XImageHandle pixel = new(Xlib.XGetImage(display.Pointer, display.RootWindow, x, y, 1, 1, Xlib.AllPlanes, Xlib.ZPixmap));
        return pixel.Row32(0)[0] & 0xFFFFFF;
    }

    /// <summary>The whole screen as RGBA bytes (opaque), row after row.</summary>
    public static byte[] CaptureRgba(DisplayHandle display, out int width, out int height)
    {
        ArgumentNullException.ThrowIfNull(display);
        nint d = display.Pointer;
        width = Xlib.XDisplayWidth(d, display.DefaultScreen);
        height = Xlib.XDisplayHeight(d, display.DefaultScreen);
        using XImageHandle image = new(Xlib.XGetImage(d, display.RootWindow, 0, 0, (uint)width, (uint)height, Xlib.AllPlanes, Xlib.ZPixmap));
        byte[] rgba = new byte[width * height * 4];
        for (int y = 0; y < height; y++)
        {
            Span<uint> row = image.Row32(y);
            Span<byte> target = rgba.AsSpan(y * width * 4, width * 4);
            for (int x = 0; x < width; x++)
            {
                uint p = row[x];
                target[x * 4] = (byte)(p >> 16);
                target[(x * 4) + 1] = (byte)(p >> 8);
                target[(x * 4) + 2] = (byte)p;
                target[(x * 4) + 3] = 255;
            }
        }
        return rgba;
    }
}
