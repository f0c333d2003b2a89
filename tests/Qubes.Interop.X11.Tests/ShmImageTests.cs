using System;
using Qubes.Gui.X11;
using Xunit;

namespace Qubes.Interop.X11.Tests;

/// <summary>MIT-SHM: pixels written into a shared segment reach the screen exactly, and come back.</summary>
public sealed unsafe class ShmImageTests : IClassFixture<Xvfb>
{
    private readonly Xvfb _server;

    public ShmImageTests(Xvfb server) => _server = server;

    [Fact]
    public void XShmPutImage_shows_the_segment_pixels_in_the_window()
    {
        using DisplayHandle display = DisplayHandle.Open(_server.Name);
        nint d = display.Pointer;
        int screen = display.DefaultScreen;
        const int X = 100, Y = 120, W = 64, H = 48;
        ulong window = X11Test.CreateMappedWindow(display, X, Y, W, H);

        int major, minor, sharedPixmaps;
        Assert.NotEqual(0, XShm.XShmQueryVersion(d, &major, &minor, &sharedPixmaps));
        Assert.True(major >= 1, $"MIT-SHM {major}.{minor}");

        using ShmImage image = ShmImage.Create(display, Xlib.XDefaultVisual(d, screen), Xlib.XDefaultDepth(d, screen), W, H);
        Assert.Equal(32, image.BitsPerPixel);
        for (int y = 0; y < H; y++)
        {
            Span<uint> row = image.Row32(y);
            for (int x = 0; x < W; x++)
            {
                row[x] = X11Test.Pattern(x, y);
            }
        }

        nint gc = Xlib.XCreateGC(d, window, 0, null);
        try
        {
            Assert.NotEqual(0, XShm.XShmPutImage(d, window, gc, image.Image, 0, 0, 0, 0, W, H, Xlib.True));
            int completion = XShm.XShmGetEventBase(d) + XShm.ShmCompletion;
            XEvent done = X11Test.WaitForEvent(display, e => e.type == completion, "ShmCompletion");
            Assert.Equal(window, done.xshmcompletion.drawable);
            Assert.Equal(image.SegmentInfo->shmseg, done.xshmcompletion.shmseg);
        }
        finally
        {
            Xlib.XFreeGC(d, gc);
        }

        // read back from the root, at the window's place: what is on the screen, not what the window holds
        using XImageHandle screenImage = X11Test.GetImage(display, display.RootWindow, X, Y, W, H);
        for (int y = 0; y < H; y++)
        {
            Span<uint> row = screenImage.Row32(y);
            for (int x = 0; x < W; x++)
            {
                Assert.True((row[x] & 0xFFFFFF) == X11Test.Pattern(x, y), $"pixel ({x},{y}): 0x{row[x]:x6}, expected 0x{X11Test.Pattern(x, y):x6}");
            }
        }
        // and just outside it, the root's own background: the image landed where it should, not beyond
        using XImageHandle outside = X11Test.GetImage(display, display.RootWindow, X + W, Y, 1, 1);
        Assert.NotEqual(X11Test.Pattern(W, 0), outside.Row32(0)[0] & 0xFFFFFF);
    }

    [Fact]
    public void XShmGetImage_fills_the_segment_from_the_window()
    {
        using DisplayHandle display = DisplayHandle.Open(_server.Name);
        nint d = display.Pointer;
        int screen = display.DefaultScreen;
        const int W = 40, H = 30;
        ulong window = X11Test.CreateMappedWindow(display, 500, 400, W, H);

        nint gc = Xlib.XCreateGC(d, window, 0, null);
        Xlib.XSetForeground(d, gc, 0x00C0FFEE);
        Xlib.XFillRectangle(d, window, gc, 5, 6, 10, 7);
        Xlib.XFreeGC(d, gc);

        using ShmImage image = ShmImage.Create(display, Xlib.XDefaultVisual(d, screen), Xlib.XDefaultDepth(d, screen), W, H);
        image.Data.Fill(0xAA);
        Assert.NotEqual(0, XShm.XShmGetImage(d, window, image.Image, 0, 0, Xlib.AllPlanes));
        for (int y = 0; y < H; y++)
        {
            for (int x = 0; x < W; x++)
            {
                bool inside = x >= 5 && x < 15 && y >= 6 && y < 13;
                uint expected = inside ? 0xC0FFEEu : 0u; // the window's background is black
                Assert.True((image.Row32(y)[x] & 0xFFFFFF) == expected, $"pixel ({x},{y}): 0x{image.Row32(y)[x]:x}");
            }
        }
    }

    [Fact]
    public void The_segment_is_shared_with_the_server_and_gone_after_dispose()
    {
        using DisplayHandle display = DisplayHandle.Open(_server.Name);
        nint d = display.Pointer;
        int id;
        using (ShmImage image = ShmImage.Create(display, Xlib.XDefaultVisual(d, 0), Xlib.XDefaultDepth(d, 0), 8, 8))
        {
            id = image.SegmentInfo->shmid;
            string[]? row = SegmentRow(id);
            Assert.NotNull(row);
            // perms carries SHM_DEST (01000): the id is already removed, the memory lives on in its two users
            Assert.True((Convert.ToInt32(row[2], 8) & 0x200) != 0, $"segment {id} not marked for removal: perms {row[2]}");
            Assert.Equal("2", row[6]);
        }
        Assert.False(X11ErrorTrap.Sync(d).IsError); // the server has processed the detach
        Assert.Null(SegmentRow(id));
    }

    /// <summary>The columns of /proc/sysvipc/shm for one id: key shmid perms size cpid lpid nattch ...</summary>
    private static string[]? SegmentRow(int id)
    {
        foreach (string line in System.IO.File.ReadLines("/proc/sysvipc/shm"))
        {
            string[] columns = line.Split(' ', StringSplitOptions.RemoveEmptyEntries);
            if (columns.Length > 6 && columns[1] == id.ToString(System.Globalization.CultureInfo.InvariantCulture))
            {
                return columns;
            }
        }
        return null;
    }
}
