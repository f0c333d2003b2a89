using System;
using System.Text;
using System.Threading.Tasks;
using Qubes.Interop.Linux;
using Qubes.Interop.X11;
using Qubes.Interop.X11.Tests;
using Qubes.Platform.Loopback;
using Qubes.Platform.Tests;
using Xunit;

namespace Qubes.Gui.X11.Tests;

/// <summary>
/// The whole path with real X servers on both sides: a test client on the qube's own Xvfb draws a
/// known pattern; the agent follows its window and shares its pixels; dom0's Xvfb shows them in
/// the qube's frame with the qube's title; a click on dom0's screen reaches the client.
/// </summary>
public sealed class GuiAgentTests : IDisposable
{
    private const int X = 40, Y = 30, Width = 160, Height = 90;

    private readonly Xvfb _dom0Screen = new(), _qubeScreen = new();
    private readonly TestBroker _broker = new();

    public void Dispose()
    {
        _broker.Dispose();
        _qubeScreen.Dispose();
        _dom0Screen.Dispose();
    }

    [Fact]
    public async Task A_client_in_the_qube_shows_on_dom0_s_screen_and_takes_dom0_s_click()
    {
        (int id, LoopbackPlatform qube) = _broker.NewDomain("work");
        using SafeFd stop = EventFd.Create();
        using (qube)
        using (DisplayHandle dom0 = DisplayHandle.Open(_dom0Screen.Name))
        using (DisplayHandle observer = DisplayHandle.Open(_dom0Screen.Name))
        using (DisplayHandle client = DisplayHandle.Open(_qubeScreen.Name))
        {
            Task<GuiAgent> agentStarting = Task.Run(() => GuiAgent.Start(qube, 0, _qubeScreen.Name));
            using GuiDaemon daemon = GuiDaemon.Start(_broker.Dom0, id, new QubeIdentity("work", 6, 0x3465a4), dom0);
            using GuiAgent agent = await agentStarting;
            Assert.Equal(1280u, agent.Screen.Width);
            Task<int> daemonRunning = Task.Run(() => daemon.Run(stop.Fd));
            Task<int> agentRunning = Task.Run(() => agent.Run(stop.Fd));

            // the client: a window in the qube with a title, drawn with the pattern
            ulong window = ShowClientWindow(client);
            using ShmImage picture = DrawPattern(client, window);

            Assert.True(TestBroker.Eventually(() => Shows(observer, X, Y, Width, Height), 15_000), "dom0's screen shows the client's pattern where the client put its window");
            using (XImageHandle frame = X11Test.GetImage(observer, observer.RootWindow, X - 1, Y - 1, 1, 1))
            {
                Assert.Equal(0x3465a4u, frame.Row32(0)[0] & 0xFFFFFF);
            }
            int slot = daemon.Dispatcher.Slot((uint)window);
            Assert.True(slot >= 0);
            Assert.Equal("[work] client", Title(observer, daemon.Host.XWindow(slot)));

            // a click on dom0's screen lands in the client, at the same place in its window
            XTest.XTestFakeMotionEvent(observer.Pointer, observer.DefaultScreen, X + 25, Y + 35, 0);
            XTest.XTestFakeButtonEvent(observer.Pointer, 1, 1, 0);
            XTest.XTestFakeButtonEvent(observer.Pointer, 1, 0, 0);
            Xlib.XSync(observer.Pointer, 0);
            XEvent press = X11Test.WaitForEvent(client, static e => e.type == Xlib.ButtonPress, "the click in the qube");
            Assert.Equal((25, 35, 1u), (press.xbutton.x, press.xbutton.y, press.xbutton.button));

            // the client goes: so does its window on dom0's screen
            Xlib.XDestroyWindow(client.Pointer, window);
            Xlib.XSync(client.Pointer, 0);
            Assert.True(TestBroker.Eventually(() => daemon.Dispatcher.WindowCount == 0, 10_000), "dom0 forgot the window");

            EventFd.Signal(stop.Fd);
            Assert.Equal(0, await daemonRunning.WaitAsync(TimeSpan.FromSeconds(10)));
            Assert.Equal(0, await agentRunning.WaitAsync(TimeSpan.FromSeconds(10)));
        }
    }


    private static unsafe ulong ShowClientWindow(DisplayHandle client)
    {
        nint c = client.Pointer;
        int screen = client.DefaultScreen;
        XSetWindowAttributes attributes = default;
        attributes.event_mask = Xlib.ButtonPressMask | Xlib.StructureNotifyMask | Xlib.ExposureMask;
        ulong window = Xlib.XCreateWindow(c, client.RootWindow, X, Y, Width, Height, 0, Xlib.XDefaultDepth(c, screen), Xlib.InputOutput,
            Xlib.XDefaultVisual(c, screen), Xlib.CWEventMask, &attributes);
        fixed (byte* title = "client\0"u8)
        {
            Xlib.XStoreName(c, window, title);
        }
        Xlib.XMapWindow(c, window);
        X11Test.WaitForEvent(client, static e => e.type == Xlib.MapNotify, "the client's window mapped");
        return window;
    }

    private static unsafe ShmImage DrawPattern(DisplayHandle client, ulong window)
    {
        nint c = client.Pointer;
        int screen = client.DefaultScreen;
        ShmImage picture = ShmImage.Create(client, Xlib.XDefaultVisual(c, screen), Xlib.XDefaultDepth(c, screen), Width, Height);
        for (int y = 0; y < Height; y++)
        {
            Span<uint> row = picture.Row32(y);
            for (int x = 0; x < Width; x++)
            {
                row[x] = X11Test.Pattern(x, y);
            }
        }
        XShm.XShmPutImage(c, window, Xlib.XDefaultGC(c, screen), picture.Image, 0, 0, 0, 0, Width, Height, 0);
        Xlib.XSync(c, 0);
        return picture;
    }

    private static unsafe string Title(DisplayHandle display, ulong window)
    {
        byte* name = null;
        Assert.NotEqual(0, XFetchName(display.Pointer, window, &name));
        try
        {
            return Encoding.ASCII.GetString(name, new ReadOnlySpan<byte>(name, 64).IndexOf((byte)0));
        }
        finally
        {
            Xlib.XFree(name);
        }
    }

    [System.Runtime.InteropServices.DllImport("libX11.so.6")]
    private static extern unsafe int XFetchName(nint display, ulong w, byte** name);

    private static bool Shows(DisplayHandle display, int x, int y, int width, int height)
    {
        using XImageHandle image = X11Test.GetImage(display, display.RootWindow, x, y, width, height);
        for (int row = 0; row < height; row++)
        {
            Span<uint> line = image.Row32(row);
            for (int column = 0; column < width; column++)
            {
                if ((line[column] & 0xFFFFFF) != X11Test.Pattern(column, row))
                {
                    return false;
                }
            }
        }
        return true;
    }
}
