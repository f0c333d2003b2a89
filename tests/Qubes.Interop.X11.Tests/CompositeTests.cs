using System;
using Qubes.Gui.X11;
using Xunit;

namespace Qubes.Interop.X11.Tests;

/// <summary>Composite: a redirected window's content is readable from its pixmap, not from the screen.</summary>
public sealed unsafe class CompositeTests : IClassFixture<Xvfb>
{
    private readonly Xvfb _server;

    public CompositeTests(Xvfb server) => _server = server;

    [Fact]
    public void A_manually_redirected_window_is_read_from_its_named_pixmap()
    {
        using DisplayHandle agent = DisplayHandle.Open(_server.Name);
        using DisplayHandle application = DisplayHandle.Open(_server.Name);
        nint a = agent.Pointer;
        nint app = application.Pointer;

        int eventBase, errorBase, major, minor;
        Assert.NotEqual(0, Xcomposite.XCompositeQueryExtension(a, &eventBase, &errorBase));
        Assert.NotEqual(0, Xcomposite.XCompositeQueryVersion(a, &major, &minor));
        Assert.True(major > 0 || minor >= 2, $"Composite {major}.{minor} has no NameWindowPixmap");

        const int X = 300, Y = 260, W = 64, H = 64;
        ulong window = X11Test.CreateMappedWindow(application, X, Y, W, H);
        Xcomposite.XCompositeRedirectWindow(a, window, Xcomposite.CompositeRedirectManual);
        Assert.False(X11ErrorTrap.Sync(a).IsError);

        nint gc = Xlib.XCreateGC(app, window, 0, null);
        Xlib.XSetForeground(app, gc, 0x123456);
        Xlib.XFillRectangle(app, window, gc, 0, 0, W, H);
        Xlib.XSetForeground(app, gc, 0xABCDEF);
        Xlib.XFillRectangle(app, window, gc, 8, 16, 20, 10);
        Xlib.XFreeGC(app, gc);
        Xlib.XSync(app, Xlib.False);

        ulong pixmap = Xcomposite.XCompositeNameWindowPixmap(a, window);
        Assert.False(X11ErrorTrap.Sync(a).IsError);
        try
        {
            using (XImageHandle image = X11Test.GetImage(agent, pixmap, 0, 0, W, H))
            {
                AssertDrawn(image.Row32);
            }
            using (ShmImage shared = ShmImage.Create(agent, Xlib.XDefaultVisual(a, 0), Xlib.XDefaultDepth(a, 0), W, H))
            {
                Assert.NotEqual(0, XShm.XShmGetImage(a, pixmap, shared.Image, 0, 0, Xlib.AllPlanes));
                AssertDrawn(shared.Row32);
            }
            // manual redirection: nothing composites the window onto the screen, so its place there holds none of it
            using XImageHandle onScreen = X11Test.GetImage(agent, agent.RootWindow, X, Y, W, H);
            for (int y = 0; y < H; y++)
            {
                foreach (uint pixel in onScreen.Row32(y))
                {
                    Assert.NotEqual(0x123456u, pixel & 0xFFFFFF);
                    Assert.NotEqual(0xABCDEFu, pixel & 0xFFFFFF);
                }
            }
        }
        finally
        {
            Xlib.XFreePixmap(a, pixmap);
            Xcomposite.XCompositeUnredirectWindow(a, window, Xcomposite.CompositeRedirectManual);
            Assert.False(X11ErrorTrap.Sync(a).IsError);
        }
    }

    private static void AssertDrawn(Func<int, Span<uint>> row)
    {
        for (int y = 0; y < 64; y++)
        {
            Span<uint> pixels = row(y);
            for (int x = 0; x < 64; x++)
            {
                uint expected = x >= 8 && x < 28 && y >= 16 && y < 26 ? 0xABCDEFu : 0x123456u;
                Assert.True((pixels[x] & 0xFFFFFF) == expected, $"pixel ({x},{y}) 0x{pixels[x]:x}, expected 0x{expected:x}");
            }
        }
    }
}
