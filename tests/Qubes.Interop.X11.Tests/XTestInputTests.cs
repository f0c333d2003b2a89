using Qubes.Gui.X11;
using Xunit;

namespace Qubes.Interop.X11.Tests;

/// <summary>XTEST: input injected on one connection reaches another client's window as real input.</summary>
public sealed unsafe class XTestInputTests : IClassFixture<Xvfb>
{
    private readonly Xvfb _server;

    public XTestInputTests(Xvfb server) => _server = server;

    [Fact]
    public void A_fake_click_and_key_arrive_at_the_window_under_the_pointer()
    {
        using DisplayHandle listener = DisplayHandle.Open(_server.Name);
        using DisplayHandle injector = DisplayHandle.Open(_server.Name);
        nint l = listener.Pointer;
        nint i = injector.Pointer;

        int eventBase, errorBase, major, minor;
        Assert.NotEqual(0, XTest.XTestQueryExtension(i, &eventBase, &errorBase, &major, &minor));

        const int X = 200, Y = 150;
        ulong window = X11Test.CreateMappedWindow(listener, X, Y, 100, 80,
            Xlib.KeyPressMask | Xlib.KeyReleaseMask | Xlib.ButtonPressMask | Xlib.ButtonReleaseMask);
        Xlib.XSetInputFocus(l, window, Xlib.RevertToParent, Xlib.CurrentTime);
        Assert.False(X11ErrorTrap.Sync(l).IsError);

        ulong keysym = Xlib.XStringToKeysym("q");
        Assert.NotEqual(Xlib.NoSymbol, keysym);
        byte keycode = Xlib.XKeysymToKeycode(i, keysym);
        Assert.NotEqual(0, keycode);

        XTest.XTestFakeMotionEvent(i, 0, X + 30, Y + 20, Xlib.CurrentTime);
        XTest.XTestFakeButtonEvent(i, Xlib.Button3, Xlib.True, Xlib.CurrentTime);
        XTest.XTestFakeButtonEvent(i, Xlib.Button3, Xlib.False, Xlib.CurrentTime);
        XTest.XTestFakeMotionEvent(i, 0, X + 71, Y + 9, Xlib.CurrentTime);
        XTest.XTestFakeKeyEvent(i, keycode, Xlib.True, Xlib.CurrentTime);
        XTest.XTestFakeKeyEvent(i, keycode, Xlib.False, Xlib.CurrentTime);
        Xlib.XSync(i, Xlib.False);

        XEvent press = X11Test.WaitForEvent(listener, e => e.type == Xlib.ButtonPress, "ButtonPress");
        Assert.Equal(window, press.xbutton.window);
        Assert.Equal(Xlib.Button3, press.xbutton.button);
        Assert.Equal(30, press.xbutton.x);
        Assert.Equal(20, press.xbutton.y);
        Assert.Equal(X + 30, press.xbutton.x_root);
        Assert.Equal(Y + 20, press.xbutton.y_root);

        XEvent release = X11Test.WaitForEvent(listener, e => e.type == Xlib.ButtonRelease, "ButtonRelease");
        Assert.Equal(Xlib.Button3, release.xbutton.button);
        Assert.True((release.xbutton.state & Xlib.Button3Mask) != 0, "the release reports button 3 as held before it");

        XEvent key = X11Test.WaitForEvent(listener, e => e.type == Xlib.KeyPress, "KeyPress");
        Assert.Equal(window, key.xkey.window);
        Assert.Equal((uint)keycode, key.xkey.keycode);
        Assert.Equal(71, key.xkey.x);
        Assert.Equal(9, key.xkey.y);
        Assert.Equal(keysym, Xlib.XLookupKeysym(&key.xkey, 0));
        XEvent keyUp = X11Test.WaitForEvent(listener, e => e.type == Xlib.KeyRelease, "KeyRelease");
        Assert.Equal((uint)keycode, keyUp.xkey.keycode);

        // the pointer really moved where the injector put it
        ulong root, child;
        int rootX, rootY, winX, winY;
        uint mask;
        Assert.NotEqual(0, Xlib.XQueryPointer(l, window, &root, &child, &rootX, &rootY, &winX, &winY, &mask));
        Assert.Equal((71, 9), (winX, winY));
    }
}
