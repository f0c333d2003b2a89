using Qubes.Gui.X11;
using Xunit;

namespace Qubes.Interop.X11.Tests;

/// <summary>DAMAGE: drawing by another client into a watched window is reported with its area.</summary>
public sealed unsafe class DamageTests : IClassFixture<Xvfb>
{
    private readonly Xvfb _server;

    public DamageTests(Xvfb server) => _server = server;

    [Fact]
    public void Drawing_from_another_connection_raises_DamageNotify_with_the_drawn_area()
    {
        using DisplayHandle watcher = DisplayHandle.Open(_server.Name);
        using DisplayHandle painter = DisplayHandle.Open(_server.Name);
        nint w = watcher.Pointer;
        nint p = painter.Pointer;

        int eventBase, errorBase, major, minor;
        Assert.NotEqual(0, Xdamage.XDamageQueryExtension(w, &eventBase, &errorBase));
        Assert.NotEqual(0, Xdamage.XDamageQueryVersion(w, &major, &minor));
        int damageNotify = eventBase + Xdamage.XDamageNotify;

        ulong window = X11Test.CreateMappedWindow(watcher, 40, 50, 200, 150);
        ulong damage = Xdamage.XDamageCreate(w, window, Xdamage.XDamageReportRawRectangles);
        Assert.False(X11ErrorTrap.Sync(w).IsError);
        // painting the background on map may still be reported: start from a clean slate
        while (X11Test.TryWaitForEvent(watcher, e => e.type == damageNotify, out _, 200))
        {
        }
        Xdamage.XDamageSubtract(w, damage, Xlib.None, Xlib.None);
        Xlib.XSync(w, Xlib.False);

        nint gc = Xlib.XCreateGC(p, window, 0, null);
        Xlib.XSetForeground(p, gc, 0xFF0000);
        Xlib.XFillRectangle(p, window, gc, 10, 20, 30, 40);
        Xlib.XFreeGC(p, gc);
        Xlib.XSync(p, Xlib.False);

        XEvent ev = X11Test.WaitForEvent(watcher, e => e.type == damageNotify, "DamageNotify");
        XDamageNotifyEvent notify = ev.xdamage;
        Assert.Equal(window, notify.drawable);
        Assert.Equal(damage, notify.damage);
        Assert.Equal(Xdamage.XDamageReportRawRectangles, notify.level);
        Assert.Equal((10, 20, 30, 40), ((int)notify.area.x, (int)notify.area.y, (int)notify.area.width, (int)notify.area.height));
        Assert.Equal((40, 50, 200, 150), ((int)notify.geometry.x, (int)notify.geometry.y, (int)notify.geometry.width, (int)notify.geometry.height));

        Xdamage.XDamageDestroy(w, damage);
        Assert.False(X11ErrorTrap.Sync(w).IsError);
    }
}
