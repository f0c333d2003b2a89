using System;
using System.Diagnostics;
using System.Threading;
using Xunit;

namespace Qubes.Interop.X11.Tests;

/// <summary>What the tests against a real server share.</summary>
internal static unsafe class X11Test
{
    public static readonly TimeSpan Timeout = TimeSpan.FromSeconds(10);

    /// <summary>Reads events until one matches, skipping the rest; false after <paramref name="timeoutMs"/> (default <see cref="Timeout"/>).</summary>
    public static bool TryWaitForEvent(DisplayHandle display, Func<XEvent, bool> match, out XEvent found, int timeoutMs = 0)
    {
        TimeSpan timeout = timeoutMs > 0 ? TimeSpan.FromMilliseconds(timeoutMs) : Timeout;
        var clock = Stopwatch.StartNew();
        XEvent ev;
        while (clock.Elapsed < timeout)
        {
            while (Xlib.XPending(display.Pointer) > 0)
            {
                Xlib.XNextEvent(display.Pointer, &ev);
                if (match(ev))
                {
                    found = ev;
                    return true;
                }
            }
            Thread.Sleep(2);
        }
        found = default;
        return false;
    }

    public static XEvent WaitForEvent(DisplayHandle display, Func<XEvent, bool> match, string what)
    {
        Assert.True(TryWaitForEvent(display, match, out XEvent ev), $"timed out waiting for {what}");
        return ev;
    }

    /// <summary>An unmanaged (override-redirect) top-level window, mapped and viewable when this returns.</summary>
    public static ulong CreateMappedWindow(DisplayHandle display, int x, int y, int width, int height, long eventMask = 0)
    {
        nint d = display.Pointer;
        int screen = display.DefaultScreen;
        XSetWindowAttributes attributes = default;
        attributes.override_redirect = Xlib.True;
        attributes.background_pixel = Xlib.XBlackPixel(d, screen);
        attributes.event_mask = eventMask | Xlib.StructureNotifyMask;
        ulong window = Xlib.XCreateWindow(d, display.RootWindow, x, y, (uint)width, (uint)height, 0,
            Xlib.XDefaultDepth(d, screen), Xlib.InputOutput, Xlib.XDefaultVisual(d, screen),
            Xlib.CWOverrideRedirect | Xlib.CWBackPixel | Xlib.CWEventMask, &attributes);
        Assert.NotEqual(0UL, window);
        Xlib.XMapWindow(d, window);
        WaitForEvent(display, e => e.type == Xlib.MapNotify && e.xmap.window == window, "MapNotify");
        return window;
    }

    /// <summary>Distinct in each of the 24 bits, so a shifted row, column or channel shows.</summary>
    public static uint Pattern(int x, int y) => (uint)((x * 4) & 0xFF) << 16 | (uint)((y * 5) & 0xFF) << 8 | (uint)((x * 7 + y * 3) & 0xFF);

    public static XImageHandle GetImage(DisplayHandle display, ulong drawable, int x, int y, int width, int height)
    {
        XImage* image = Xlib.XGetImage(display.Pointer, drawable, x, y, (uint)width, (uint)height, Xlib.AllPlanes, Xlib.ZPixmap);
        Assert.True(image != null, "XGetImage failed");
        var handle = new XImageHandle(image);
        Assert.Equal(32, image->bits_per_pixel);
        Assert.Equal(Xlib.LSBFirst, image->byte_order);
        return handle;
    }
}
