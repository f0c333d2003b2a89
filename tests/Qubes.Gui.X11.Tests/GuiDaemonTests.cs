using System;
using System.Buffers.Binary;
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
/// qube windows on a real dom0 display (a private Xvfb): a qube's agent in a loopback domain draws
/// into pages granted to dom0; a screenshot of dom0's screen shows them at the window's place in a
/// frame of the qube's exact colour, with the title and properties a window manager reads; dom0's
/// input reaches the agent; a qube that breaks the protocol loses its windows and no other qube's.
/// </summary>
public sealed class GuiDaemonTests : IDisposable
{
    private const uint Blue = 0x3465a4, Red = 0xcc0000;

    private readonly Xvfb _xvfb = new();
    private readonly TestBroker _broker = new();
    private readonly DisplayHandle _observer;

    public GuiDaemonTests() => _observer = DisplayHandle.Open(_xvfb.Name);

    public void Dispose()
    {
        _observer.Dispose();
        _broker.Dispose();
        _xvfb.Dispose();
    }

    /// <summary>A qube with its agent and its own daemon, serving on the test's display.</summary>
    private sealed class Qube : IDisposable
    {
        private readonly LoopbackPlatform _platform;
        private readonly DisplayHandle _display;
        private readonly SafeFd _stop = EventFd.Create();
        private readonly Task<int> _running;

        public Qube(TestBroker broker, string xDisplay, string name, int label, uint color)
        {
            (Id, _platform) = broker.NewDomain(name);
            Task<GuiAgentConnection> serving = Task.Run(() => GuiAgentConnection.Serve(_platform, 0));
            _display = DisplayHandle.Open(xDisplay);
            Daemon = GuiDaemon.Start(broker.Dom0, Id, new QubeIdentity(name, label, color), _display);
            Agent = serving.GetAwaiter().GetResult();
            _running = Task.Run(() => Daemon.Run(_stop.Fd));
        }

        public int Id { get; }

        public GuiDaemon Daemon { get; }

        public GuiAgentConnection Agent { get; }

        public SharedWindowImage? Image { get; private set; }

        public Task<int> Running => _running;

        /// <summary>Shows a window of the pattern at (x, y), titled.</summary>
        public void Show(uint window, int x, int y, int width, int height, string title, Func<int, int, uint> pattern, bool overrideRedirect = false)
        {
            Image = new SharedWindowImage(_platform, 0, width, height);
            for (int row = 0; row < height; row++)
            {
                for (int column = 0; column < width; column++)
                {
                    BinaryPrimitives.WriteUInt32LittleEndian(Image.Pixels[((row * width + column) * 4)..], pattern(column, row));
                }
            }
            byte[] name = new byte[GuiProtocol.HeaderSize + GuiProtocol.NameSize];
            GuiProtocol.WriteHeader(name, MessageType.WmName, window, GuiProtocol.NameSize);
            Encoding.UTF8.GetBytes(title).CopyTo(name, GuiProtocol.HeaderSize);
            byte[] dump = new byte[Image.DumpLength];
            Image.WriteDump(dump, window);
            uint or = overrideRedirect ? 1u : 0u;
            Assert.True(Agent.Send(MessageType.Create, window, [(uint)x, (uint)y, (uint)width, (uint)height, 0, or]) && Agent.Send(name)
                && Agent.Send(MessageType.Map, window, [0, or]) && Agent.Send(dump)
                && Agent.Send(MessageType.ShmImage, window, [0, 0, (uint)width, (uint)height]));
        }

        /// <summary>Reads the daemon's messages until one of <paramref name="type"/> arrives.</summary>
        public ReadOnlySpan<byte> Expect(MessageType type)
        {
            while (Agent.TryRead(out MessageType got, out _, out ReadOnlySpan<byte> body))
            {
                if (got == type)
                {
                    return body;
                }
            }
            throw new InvalidOperationException($"the daemon closed before {type}");
        }

        public void Dispose()
        {
            EventFd.Signal(_stop.Fd);
            _running.Wait(10_000);
            Daemon.Dispose();
            Agent.Dispose();
            Image?.Dispose();
            _display.Dispose();
            _platform.Dispose();
            _stop.Dispose();
        }
    }

    private uint Pixel(int x, int y) => ScreenReader.Pixel(_observer, x, y);

    /// <summary>Whether dom0's screen shows the pattern at (x, y).</summary>
    private bool Shows(int x, int y, int width, int height, Func<int, int, uint> pattern)
    {
        using XImageHandle image = X11Test.GetImage(_observer, _observer.RootWindow, x, y, width, height);
        for (int row = 0; row < height; row++)
        {
            Span<uint> line = image.Row32(row);
            for (int column = 0; column < width; column++)
            {
                if ((line[column] & 0xFFFFFF) != pattern(column, row))
                {
                    return false;
                }
            }
        }
        return true;
    }

    private static bool Eventually(Func<bool> condition) => TestBroker.Eventually(condition, 10_000);

    private unsafe string Property(ulong window, string name, ulong type)
    {
        ulong atom = Xlib.XInternAtom(_observer.Pointer, name, 0), actualType, items, after;
        int format;
        byte* data;
        Assert.Equal(Xlib.Success, Xlib.XGetWindowProperty(_observer.Pointer, window, atom, 0, 1024, 0, type, &actualType, &format, &items, &after, &data));
        try
        {
            return format == 32 ? $"0x{*(long*)data & 0xFFFFFFFF:x6}" : Encoding.UTF8.GetString(data, (int)items);
        }
        finally
        {
            Xlib.XFree(data);
        }
    }

    [Fact]
    public void A_qube_window_shows_its_pixels_in_a_frame_of_its_colour_titled_with_its_name()
    {
        using var work = new Qube(_broker, _xvfb.Name, "work", 6, Blue);
        work.Show(0x400001, 50, 60, 200, 100, "hello \x1b[31m", X11Test.Pattern);
        Assert.True(Eventually(() => Shows(50, 60, 200, 100, X11Test.Pattern)), "dom0's screen shows the qube's pixels at the window's place");
        for (int i = 1; i <= GuiDaemonHost.FrameWidth; i++)
        {
            Assert.Equal(Blue, Pixel(50 - i, 60 - i));
            Assert.Equal(Blue, Pixel(250 - 1 + i, 160 - 1 + i));
            Assert.Equal(Blue, Pixel(120, 60 - i));
        }
        Assert.NotEqual(Blue, Pixel(50 - GuiDaemonHost.FrameWidth - 1, 100));
        ulong window = work.Daemon.Host.XWindow(0);
        Assert.Equal("[work] hello _[31m", Property(window, "_NET_WM_NAME", Xlib.XInternAtom(_observer.Pointer, "UTF8_STRING", 0)));
        Assert.Equal("[work] hello _[31m", Property(window, "WM_NAME", Xlib.XA_STRING));
        Assert.Equal("work", Property(window, "_QUBES_VMNAME", Xlib.XA_STRING));
        Assert.Equal("0x3465a4", Property(window, "_QUBES_LABEL_COLOR", Xlib.XA_CARDINAL));
        Assert.Equal("0x000006", Property(window, "_QUBES_LABEL", Xlib.XA_CARDINAL));

        // the qube changes its pages and says where: dom0 shows the change
        static uint Inverted(int x, int y) => ~X11Test.Pattern(x, y) & 0xFFFFFF;
        for (int row = 10; row < 20; row++)
        {
            for (int column = 0; column < 200; column++)
            {
                BinaryPrimitives.WriteUInt32LittleEndian(work.Image!.Pixels[((row * 200 + column) * 4)..], Inverted(column, row));
            }
        }
        Assert.True(work.Agent.Send(MessageType.ShmImage, 0x400001, [0, 10, 200, 10]));
        Assert.True(Eventually(() => Shows(50, 70, 200, 10, (x, y) => Inverted(x, y + 10))), "the damaged rows show the new pixels");
        Assert.True(Shows(50, 60, 200, 10, X11Test.Pattern));
    }

    [Fact]
    public void Override_redirect_windows_stay_inside_the_screen_within_their_frame()
    {
        using var untrusted = new Qube(_broker, _xvfb.Name, "untrusted", 1, Red);
        // a menu partly above and left of the screen: moved in, its frame on the screen's edge
        untrusted.Show(0x600001, -50, -30, 200, 100, "menu", X11Test.Pattern, overrideRedirect: true);
        Assert.True(Eventually(() => Shows(2, 2, 200, 100, X11Test.Pattern)), "the menu's content starts inside its frame at the screen's corner");
        Assert.Equal((Red, Red, Red), (Pixel(0, 0), Pixel(1, 50), Pixel(202, 101)));

        // nearly the whole screen (80%) placed to spill over the bottom right: pulled back inside, framed all round
        using var work = new Qube(_broker, _xvfb.Name, "work", 6, Blue);
        static uint Plain(int x, int y) => 0x00ff00;
        work.Show(0x400002, 100, 100, 1200, 700, "cover", Plain, overrideRedirect: true);
        Assert.True(Eventually(() => Pixel(700, 500) == 0x00ff00), "the large window shows");
        int left = 1280 - 2 - 1200, top = 800 - 2 - 700;
        Assert.True(Shows(left, top, 1200, 700, Plain), "its content lies wholly inside the screen, inside its frame");
        Assert.Equal((Blue, Blue, Blue, Blue), (Pixel(left - 1, top - 1), Pixel(1279, 799), Pixel(left - 2, 400), Pixel(700, 799)));
    }

    [Fact]
    public void A_qube_sets_its_window_s_cursor_from_the_cursor_font_and_back_to_the_default()
    {
        using var work = new Qube(_broker, _xvfb.Name, "work", 6, Blue);
        work.Show(0x400003, 300, 300, 120, 80, "text", X11Test.Pattern);
        Assert.True(Eventually(() => Shows(300, 300, 120, 80, X11Test.Pattern)));
        (int, int, int, int) outside = CursorAt(1000, 700);
        Assert.Equal(outside, CursorAt(350, 340)); // the window starts with dom0's default cursor

        const uint XtermGlyph = 152;
        Assert.True(work.Agent.Send(MessageType.Cursor, 0x400003, [GuiProtocol.CursorX11 | XtermGlyph]));
        (int, int, int, int) expected = FontCursor(XtermGlyph);
        Assert.NotEqual(outside, expected);
        Assert.True(Eventually(() => CursorAt(350, 340) == expected), "the pointer over the window shows the xterm glyph");
        Assert.Equal(outside, CursorAt(1000, 700)); // and only over that window

        Assert.True(work.Agent.Send(MessageType.Cursor, 0x400003, [GuiProtocol.CursorDefault]));
        Assert.True(Eventually(() => CursorAt(350, 340) == outside), "the default cursor again");
    }

    /// <summary>The size and hot spot of the cursor dom0's screen shows with the pointer at (x, y).</summary>
    private unsafe (int, int, int, int) CursorAt(int x, int y)
    {
        XTest.XTestFakeMotionEvent(_observer.Pointer, _observer.DefaultScreen, x, y, 0);
        Xlib.XSync(_observer.Pointer, 0);
        XFixesCursorImage* image = Xfixes.XFixesGetCursorImage(_observer.Pointer);
        try
        {
            return (image->width, image->height, image->xhot, image->yhot);
        }
        finally
        {
            Xlib.XFree(image);
        }
    }

    /// <summary>The size and hot spot of a cursor-font glyph, shown over a window of the test's own.</summary>
    private unsafe (int, int, int, int) FontCursor(uint glyph)
    {
        nint d = _observer.Pointer;
        ulong window = Xlib.XCreateSimpleWindow(d, _observer.RootWindow, 900, 100, 50, 50, 0, 0, 0);
        ulong cursor = Xlib.XCreateFontCursor(d, glyph);
        Xlib.XDefineCursor(d, window, cursor);
        Xlib.XMapWindow(d, window);
        Xlib.XSync(d, 0);
        try
        {
            return CursorAt(920, 120);
        }
        finally
        {
            Xlib.XDestroyWindow(d, window);
            Xlib.XFreeCursor(d, cursor);
            Xlib.XSync(d, 0);
        }
    }

    [Fact]
    public void Dom0_input_on_a_qube_window_reaches_its_agent_in_window_coordinates()
    {
        using var work = new Qube(_broker, _xvfb.Name, "work", 6, Blue);
        work.Show(0x400001, 100, 100, 120, 80, "input", X11Test.Pattern);
        Assert.True(Eventually(() => Shows(100, 100, 120, 80, X11Test.Pattern)));
        nint d = _observer.Pointer;
        XTest.XTestFakeMotionEvent(d, _observer.DefaultScreen, 130, 125, 0);
        XTest.XTestFakeButtonEvent(d, 1, 1, 0);
        XTest.XTestFakeButtonEvent(d, 1, 0, 0);
        Xlib.XSync(d, 0);
        ReadOnlySpan<byte> button = work.Expect(MessageType.Button);
        Assert.Equal((uint)Xlib.ButtonPress, GuiProtocol.U32(button, 0));
        Assert.Equal((30u, 25u, 1u), (GuiProtocol.U32(button, 1), GuiProtocol.U32(button, 2), GuiProtocol.U32(button, 4)));
    }

    [Fact]
    public async Task A_qube_that_breaks_the_protocol_loses_its_windows_and_only_its_own()
    {
        using var personal = new Qube(_broker, _xvfb.Name, "personal", 3, 0xedd400);
        using var untrusted = new Qube(_broker, _xvfb.Name, "untrusted", 1, Red);
        static uint Green(int x, int y) => 0x00FF00;
        personal.Show(1, 300, 300, 100, 100, "personal", X11Test.Pattern);
        untrusted.Show(1, 10, 10, 100, 100, "untrusted", Green);
        Assert.True(Eventually(() => Shows(300, 300, 100, 100, X11Test.Pattern) && Shows(10, 10, 100, 100, Green)));
        // a message for a window it never made
        Assert.True(untrusted.Agent.Send(MessageType.Map, 0xBAD, [0, 0]));
        Assert.Equal(1, await untrusted.Running.WaitAsync(TimeSpan.FromSeconds(10)));
        Assert.Contains("a message for a window the qube never created", untrusted.Daemon.Ending, StringComparison.Ordinal);
        Assert.True(Eventually(() => !Shows(10, 10, 100, 100, Green)), "untrusted's window is gone");
        // personal's window still shows and still takes updates
        Assert.True(Shows(300, 300, 100, 100, X11Test.Pattern));
        personal.Image!.Pixels.Fill(0);
        Assert.True(personal.Agent.Send(MessageType.ShmImage, 1, [0, 0, 100, 100]));
        Assert.True(Eventually(() => Shows(300, 300, 100, 100, static (_, _) => 0)));
    }
}
