using System;
using System.Diagnostics;
using System.IO;
using System.Linq;
using System.Text;
using System.Threading;
using System.Threading.Tasks;
using Qubes.Interop.Linux;
using Qubes.Interop.X11;
using Qubes.Interop.X11.Tests;
using Qubes.Platform;
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

    /// <param name="pagesAsFiles">
    /// With the loopback's grants, which are files, both X servers map the qube's granted pages
    /// themselves (MIT-SHM by descriptor); without, the agent and the daemon copy the pixels.
    /// </param>
    [Theory]
    [InlineData(true)]
    [InlineData(false)]
    public Task A_client_in_the_qube_shows_on_dom0_s_screen_and_takes_dom0_s_click(bool pagesAsFiles) => Serve(null, (daemon, agent) =>
    {
        Assert.Equal(1280u, agent.Screen.Width);
        using DisplayHandle observer = DisplayHandle.Open(_dom0Screen.Name);
        using DisplayHandle client = DisplayHandle.Open(_qubeScreen.Name);
        // the client: a window in the qube with a title, drawn with the pattern
        ulong window = ShowClientWindow(client);
        using ShmImage picture = DrawPattern(client, window);

        Assert.True(TestBroker.Eventually(() => Shows(observer, X, Y, Width, Height), 15_000), "dom0's screen shows the client's pattern where the client put its window");
        using (XImageHandle frame = X11Test.GetImage(observer, observer.RootWindow, X - 1, Y - 1, 1, 1))
        {
            Assert.Equal(0x3465a4u, frame.Row32(0)[0] & 0xFFFFFF);
        }
        Assert.Equal(pagesAsFiles, MapsGrantedPages(_qubeScreen));
        Assert.Equal(pagesAsFiles, MapsGrantedPages(_dom0Screen));

        // the client draws again: the change shows too
        using ShmImage inverted = DrawPattern(client, window, invert: true);
        Assert.True(TestBroker.Eventually(() => Shows(observer, X, Y, Width, Height, invert: true), 15_000), "dom0's screen shows the client's change");
        int slot = daemon.Dispatcher.Slot((uint)window);
        Assert.True(slot >= 0);
        Assert.Equal("[work] client", Title(observer, daemon.Host.XWindow(slot)));
        Assert.Equal(("work:Client", "work:client-name"), ClassOf(observer, daemon.Host.XWindow(slot)));
        Assert.Equal((MinSizeHint, 100, 50), MinSize(observer, daemon.Host.XWindow(slot)));

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
        return Task.CompletedTask;
    }, pagesAsFiles);

    /// <summary>
    /// On the qube's Xorg with the pixmap module, a window's pixels are granted where that server
    /// draws them: dom0's X server maps the qube server's own pixmap, and the agent never reads
    /// the window back, through a change and a resize. A window with a border has no pixmap of
    /// its own size and is read back as on Xvfb.
    /// </summary>
    [Fact]
    public async Task On_the_qube_s_xorg_windows_are_granted_from_their_own_pixmaps_and_never_read_back()
    {
        Assert.True(Xorg.IsAvailable, $"Xorg, its dummy driver and {Xorg.ModuleDirectory}/libqubespixmaps.so (./qubes build installs and builds them)");
        using var xorg = new Xorg("1280x800x24");
        await Serve(null, (daemon, agent) =>
        {
            using DisplayHandle observer = DisplayHandle.Open(_dom0Screen.Name);
            using DisplayHandle client = DisplayHandle.Open(xorg.Name);
            ulong window = ShowClientWindow(client);
            using (ShmImage picture = DrawPattern(client, window))
            {
                Assert.True(TestBroker.Eventually(() => Shows(observer, X, Y, Width, Height), 15_000), "dom0's screen shows the client's pattern");
            }
            Assert.Equal(1, agent.PixmapWindows);
            Assert.True(MapsMemory(xorg.Pid, "qubes-window"), "the qube's Xorg draws the window into shared memory");
            Assert.True(MapsMemory(_dom0Screen.Pid, "qubes-window"), "dom0's X server maps the qube server's pixmap itself");
            using (ShmImage inverted = DrawPattern(client, window, invert: true))
            {
                Assert.True(TestBroker.Eventually(() => Shows(observer, X, Y, Width, Height, invert: true), 15_000), "dom0's screen shows the change");
            }

            // a resize: the server's new pixmap is granted, and drawn into
            Xlib.XResizeWindow(client.Pointer, window, Width + 40, Height + 20);
            Xlib.XSync(client.Pointer, 0);
            Assert.True(TestBroker.Eventually(() => daemon.Dispatcher.Slot((uint)window) is int slot && slot >= 0
                && daemon.Dispatcher.ImageSize(slot).Width == Width + 40, 10_000), "dom0 has the window's new image");
            using (ShmImage again = DrawPattern(client, window))
            {
                Assert.True(TestBroker.Eventually(() => Shows(observer, X, Y, Width, Height), 15_000), "dom0's screen shows the pattern in the resized window");
            }
            Assert.Equal(1, agent.PixmapWindows);
            Assert.Equal(0, agent.Reads);

            // a client's border goes, as under a window manager: its pixmap is its content alone
            nint c = client.Pointer;
            ulong bordered = Xlib.XCreateSimpleWindow(c, client.RootWindow, X + 300, Y, Width, Height, 3, 0, 0x00123456);
            Xlib.XMapWindow(c, bordered);
            Xlib.XSync(c, 0);
            Assert.True(TestBroker.Eventually(() => ScreenReader.Pixel(observer, X + 300 + Width / 2, Y + Height / 2) == 0x123456, 10_000), "the bordered window shows");
            Assert.Equal(2, agent.PixmapWindows);
            Assert.Equal(0, BorderWidth(client, bordered));
            Assert.Equal(0, agent.Reads);

            // the client gives itself a border again: the server's new pixmap holds it, so the
            // window is read back from now on, and what it draws next shows (not the old pixmap)
            SetBorderAndFill(client, bordered, 4, 0x00345678);
            Assert.True(TestBroker.Eventually(() => ScreenReader.Pixel(observer, X + 300 + Width / 2, Y + Height / 2) == 0x345678, 10_000), "the window's new colour shows");
            Assert.Equal(1, agent.PixmapWindows);
            Assert.True(agent.Reads > 0, "the bordered window is read back");

            // a menu keeps its border (nothing manages it), so its pixmap holds more than its
            // content: the content is read back from the server, as on Xvfb
            int reads = agent.Reads;
            ShowMenu(client, X + 300, Y + 200, 0x654321);
            Assert.True(TestBroker.Eventually(() => agent.Reads > reads, 10_000), "the menu is read back");
            Assert.True(TestBroker.Eventually(() => ScreenReader.Pixel(observer, X + 330, Y + 220) == 0x654321, 10_000), "and shows");
            Assert.Equal(1, agent.PixmapWindows);
            return Task.CompletedTask;
        }, qubeXorg: xorg);
    }

    private static unsafe void SetBorderAndFill(DisplayHandle client, ulong window, int border, uint color)
    {
        XWindowChanges changes = default;
        changes.border_width = border;
        Xlib.XConfigureWindow(client.Pointer, window, Xlib.CWBorderWidth, &changes);
        Xlib.XSetWindowBackground(client.Pointer, window, color);
        Xlib.XClearWindow(client.Pointer, window);
        Xlib.XSync(client.Pointer, 0);
    }

    private static unsafe int BorderWidth(DisplayHandle client, ulong window)
    {
        XWindowAttributes attributes;
        Assert.NotEqual(0, Xlib.XGetWindowAttributes(client.Pointer, window, &attributes));
        return attributes.border_width;
    }

    /// <summary>An override-redirect window (a menu) of 60×40 with a border of 2, filled with <paramref name="color"/>.</summary>
    private static unsafe ulong ShowMenu(DisplayHandle client, int x, int y, uint color)
    {
        nint c = client.Pointer;
        XSetWindowAttributes attributes = default;
        attributes.override_redirect = 1;
        attributes.background_pixel = color;
        ulong menu = Xlib.XCreateWindow(c, client.RootWindow, x, y, 60, 40, 2, Xlib.XDefaultDepth(c, client.DefaultScreen), Xlib.InputOutput,
            Xlib.XDefaultVisual(c, client.DefaultScreen), Xlib.CWOverrideRedirect | Xlib.CWBackPixel, &attributes);
        Xlib.XMapWindow(c, menu);
        Xlib.XSync(c, 0);
        return menu;
    }

    [Fact]
    public unsafe Task A_burst_of_small_drawings_is_read_from_the_qube_in_a_few_requests_and_all_of_it_shows() => Serve(null, (daemon, agent) =>
    {
        using DisplayHandle observer = DisplayHandle.Open(_dom0Screen.Name);
        using DisplayHandle client = DisplayHandle.Open(_qubeScreen.Name);
        ulong window = ShowClientWindow(client);
        using ShmImage picture = DrawPattern(client, window);
        Assert.True(TestBroker.Eventually(() => Shows(observer, X, Y, Width, Height), 15_000), "the window shows");

        // 1,800 squares of 2x2 over the whole window, sent together; by two graphics contexts in
        // turn, so that each is a request of its own (Xlib joins fills with one context into one
        // request), which the qube's X server reports as a change of its own
        const uint Color = 0x5A3C1E;
        int before = agent.Reads;
        nint c = client.Pointer;
        nint first = Xlib.XCreateGC(c, window, 0, null), second = Xlib.XCreateGC(c, window, 0, null);
        Xlib.XSetForeground(c, first, Color);
        Xlib.XSetForeground(c, second, Color);
        int squares = 0;
        for (int y = 0; y < Height; y += 2)
        {
            for (int x = (y / 2) % 2 * 2; x < Width; x += 4)
            {
                Xlib.XFillRectangle(c, window, squares++ % 2 == 0 ? first : second, x, y, 2, 2);
            }
        }
        Xlib.XFreeGC(c, first);
        Xlib.XFreeGC(c, second);
        Xlib.XSync(c, 0);
        Assert.True(TestBroker.Eventually(() => SquaresShow(observer, Color), 15_000), "every square shows on dom0's screen");
        int reads = agent.Reads - before;
        Assert.True(reads >= 1 && reads <= squares / 10, $"{squares} drawings were read in {reads} requests");
        return Task.CompletedTask;
    });

    /// <summary>Whether dom0's screen shows each square of the burst over the pattern, and the pattern between them.</summary>
    private static bool SquaresShow(DisplayHandle observer, uint color)
    {
        using XImageHandle shown = X11Test.GetImage(observer, observer.RootWindow, X, Y, Width, Height);
        for (int y = 0; y < Height; y++)
        {
            ReadOnlySpan<uint> row = shown.Row32(y);
            for (int x = 0; x < Width; x++)
            {
                bool square = (x / 2 + y / 2) % 2 == 0;
                if ((row[x] & 0xFFFFFF) != (square ? color : X11Test.Pattern(x, y) & 0xFFFFFF))
                {
                    return false;
                }
            }
        }
        return true;
    }

    [Fact]
    public Task The_cursor_a_qube_program_sets_over_its_window_shows_over_that_window_on_dom0_s_screen() => Serve(null, (daemon, agent) =>
    {
        using DisplayHandle observer = DisplayHandle.Open(_dom0Screen.Name);
        using DisplayHandle client = DisplayHandle.Open(_qubeScreen.Name);
        ulong window = ShowClientWindow(client);
        using ShmImage picture = DrawPattern(client, window);
        Assert.True(TestBroker.Eventually(() => Shows(observer, X, Y, Width, Height), 15_000), "the window shows");
        nint c = client.Pointer;
        ulong xterm = Xlib.XCreateFontCursor(c, 152), hand = Xlib.XCreateFontCursor(c, 60);
        try
        {
            // the pointer goes over the window on dom0's screen; the program shows the text cursor
            XTest.XTestFakeMotionEvent(observer.Pointer, observer.DefaultScreen, X + 20, Y + 20, 0);
            Xlib.XSync(observer.Pointer, 0);
            Xlib.XDefineCursor(c, window, xterm);
            Xlib.XSync(c, 0);
            Assert.True(TestBroker.Eventually(() => CursorName(observer) == "xterm", 10_000), $"dom0 shows the xterm cursor (shows {CursorName(observer)})");
            Xlib.XDefineCursor(c, window, hand);
            Xlib.XSync(c, 0);
            Assert.True(TestBroker.Eventually(() => CursorName(observer) == "hand2", 10_000), $"dom0 shows the hand cursor (shows {CursorName(observer)})");
            // back to the qube's default: dom0's default, not a glyph of the qube's
            Xlib.XUndefineCursor(c, window);
            Xlib.XSync(c, 0);
            string outside = CursorNameAt(observer, 1200, 700);
            Assert.True(TestBroker.Eventually(() => CursorNameAt(observer, X + 20, Y + 20) == outside, 10_000), "dom0's default cursor over the window again");
        }
        finally
        {
            Xlib.XFreeCursor(c, xterm);
            Xlib.XFreeCursor(c, hand);
        }
        return Task.CompletedTask;
    });

    /// <summary>The name of the cursor dom0's screen shows now ("" when it has none).</summary>
    private static unsafe string CursorName(DisplayHandle display)
    {
        XFixesCursorImage* image = Xfixes.XFixesGetCursorImage(display.Pointer);
        Assert.True(image != null);
        try
        {
            return image->name == null ? string.Empty : new string((sbyte*)image->name);
        }
        finally
        {
            Xlib.XFree(image);
        }
    }

    /// <summary>The name of the cursor dom0's screen shows with the pointer moved to (x, y).</summary>
    private static string CursorNameAt(DisplayHandle display, int x, int y)
    {
        XTest.XTestFakeMotionEvent(display.Pointer, display.DefaultScreen, x, y, 0);
        Xlib.XSync(display.Pointer, 0);
        return CursorName(display);
    }

    [Fact]
    public async Task The_clipboard_goes_from_the_qube_to_dom0_with_the_copy_keys_and_into_it_with_the_paste_keys_when_the_policy_allows()
    {
        string directory = Directory.CreateTempSubdirectory("qubes-clipboard-").FullName;
        var clipboard = new GlobalClipboard(directory);
        var asked = new System.Collections.Concurrent.ConcurrentQueue<string>();
        var notes = new System.Collections.Concurrent.ConcurrentQueue<string>();
        bool allow = false;
        try
        {
            await Serve(daemon =>
            {
                daemon.Host.Clipboard = clipboard;
                daemon.Host.Notify = notes.Enqueue;
                daemon.Host.PastePolicy = source =>
                {
                    asked.Enqueue(source);
                    return Volatile.Read(ref allow);
                };
            }, async (daemon, _) =>
            {
                using DisplayHandle keyboard = DisplayHandle.Open(_dom0Screen.Name);
                using DisplayHandle client = DisplayHandle.Open(_qubeScreen.Name);
                ShowClientWindow(client);
                Assert.True(TestBroker.Eventually(() => daemon.Dispatcher.WindowCount == 1 && daemon.Dispatcher.IsMapped(0), 10_000), "the qube's window is on dom0's screen");

                // copy: a program of the qube owns the CLIPBOARD; Ctrl+Shift+C on its window on dom0's screen
                using (Process owner = Xclip(_qubeScreen.Name, "-i", "-loops", "1"))
                {
                    owner.StandardInput.Write("secret of work");
                    owner.StandardInput.Close();
                    await Task.Delay(300);
                    PressCtrlShift(keyboard, X + 10, Y + 10, 'c');
                    Assert.True(TestBroker.Eventually(() => clipboard.Source == "work", 10_000), "dom0's global clipboard has work's copy");
                    Assert.Equal("secret of work", File.ReadAllText(Path.Combine(directory, "qubes-clipboard.bin")));
                    await owner.WaitForExitAsync().WaitAsync(TimeSpan.FromSeconds(10));
                }

                // paste refused: the clipboard is emptied and nothing reaches the qube
                clipboard.Store("from personal"u8, "personal", 1);
                PressCtrlShift(keyboard, X + 10, Y + 10, 'v');
                // the daemon says so once it has asked the policy and emptied the clipboard
                Assert.True(TestBroker.Eventually(() => notes.Any(static n => n.Contains("the policy refuses", StringComparison.Ordinal)), 10_000), "the daemon said: " + string.Join(" | ", notes));
                Assert.Equal(0, clipboard.Source.Length);
                Assert.Equal(["personal"], asked);
                Assert.Equal(0ul, Xlib.XGetSelectionOwner(client.Pointer, Xlib.XInternAtom(client.Pointer, "CLIPBOARD", 0)));

                // a copy stamped after the paste key (another clipboard operation since): refused
                // before the policy is asked, though it would allow, and the clipboard emptied
                Volatile.Write(ref allow, true);
                clipboard.Store("late copy"u8, "personal", uint.MaxValue / 4);
                PressCtrlShift(keyboard, X + 10, Y + 10, 'v');
                Assert.True(TestBroker.Eventually(() => notes.Any(static n => n.Contains("changed after the paste key", StringComparison.Ordinal)), 10_000), "the daemon said: " + string.Join(" | ", notes));
                Assert.Equal(0, clipboard.Source.Length);
                Assert.Equal(["personal"], asked);
                Assert.Equal(0ul, Xlib.XGetSelectionOwner(client.Pointer, Xlib.XInternAtom(client.Pointer, "CLIPBOARD", 0)));

                // paste allowed: the qube's programs read it from the CLIPBOARD
                clipboard.Store("from personal"u8, "personal", 2);
                PressCtrlShift(keyboard, X + 10, Y + 10, 'v');
                Assert.True(TestBroker.Eventually(() => Xlib.XGetSelectionOwner(client.Pointer, Xlib.XInternAtom(client.Pointer, "CLIPBOARD", 0)) != 0, 10_000), "the agent owns the qube's CLIPBOARD");
                using (Process reader = Xclip(_qubeScreen.Name, "-o"))
                {
                    reader.StandardInput.Close();
                    Assert.Equal("from personal", await reader.StandardOutput.ReadToEndAsync().WaitAsync(TimeSpan.FromSeconds(10)));
                }
                Assert.Equal(0, new FileInfo(Path.Combine(directory, "qubes-clipboard.bin")).Length);
            });
        }
        finally
        {
            Directory.Delete(directory, recursive: true);
        }
    }

    /// <summary>Whether the X server has a granted page's file mapped (the loopback's memfds are named "qubes-grant").</summary>
    private static bool MapsGrantedPages(Xvfb server) => File.ReadAllText($"/proc/{server.Pid}/maps").Contains("qubes-grant", StringComparison.Ordinal);

    /// <summary>Whether the process maps shared memory named <paramref name="name"/> (a memfd's name).</summary>
    private static bool MapsMemory(int pid, string name) => File.ReadAllText($"/proc/{pid}/maps").Contains($"memfd:{name}", StringComparison.Ordinal);

    /// <summary>
    /// A qube "work" with its agent on the qube's Xvfb and its daemon on dom0's, both serving while
    /// <paramref name="body"/> runs; both loops end before their displays and channels are
    /// disposed, whatever failed, and each must end cleanly. Without <paramref name="pagesAsFiles"/>
    /// both sides see a platform whose pages have no file (<see cref="FilelessPlatform"/>).
    /// </summary>
    private async Task Serve(Action<GuiDaemon>? configure, Func<GuiDaemon, GuiAgent, Task> body, bool pagesAsFiles = true, Xorg? qubeXorg = null)
    {
        (int id, LoopbackPlatform qube) = _broker.NewDomain("work");
        using SafeFd stop = EventFd.Create();
        using (qube)
        using (DisplayHandle dom0 = DisplayHandle.Open(_dom0Screen.Name))
        {
            IPlatform qubeSide = pagesAsFiles ? qube : new FilelessPlatform(qube), dom0Side = pagesAsFiles ? _broker.Dom0 : new FilelessPlatform(_broker.Dom0);
            Task<GuiAgent> agentStarting = Task.Run(() => GuiAgent.Start(qubeSide, 0, qubeXorg?.Name ?? _qubeScreen.Name, qubeXorg?.PixmapSocket));
            using GuiDaemon daemon = GuiDaemon.Start(dom0Side, id, new QubeIdentity("work", 6, 0x3465a4), dom0);
            configure?.Invoke(daemon);
            using GuiAgent agent = await agentStarting;
            Task<int> daemonRunning = Task.Run(() => daemon.Run(stop.Fd));
            Task<int> agentRunning = Task.Run(() => agent.Run(stop.Fd));
            try
            {
                await body(daemon, agent);
            }
            finally
            {
                EventFd.Signal(stop.Fd);
                await Task.WhenAll(daemonRunning, agentRunning).WaitAsync(TimeSpan.FromSeconds(10));
            }
            Assert.Equal((0, 0), (await daemonRunning, await agentRunning));
        }
    }

    private static Process Xclip(string display, params string[] args)
    {
        ProcessStartInfo start = new("xclip", ["-selection", "clipboard", "-quiet", .. args])
        {
            RedirectStandardInput = true,
            RedirectStandardOutput = true,
        };
        start.Environment["DISPLAY"] = display;
        return Process.Start(start)!;
    }

    /// <summary>The user presses Ctrl+Shift+<paramref name="key"/> with the pointer at (x, y) of dom0's screen.</summary>
    private static void PressCtrlShift(DisplayHandle display, int x, int y, char key)
    {
        nint d = display.Pointer;
        uint control = Xlib.XKeysymToKeycode(d, 0xffe3), shift = Xlib.XKeysymToKeycode(d, 0xffe1), letter = Xlib.XKeysymToKeycode(d, key);
        XTest.XTestFakeMotionEvent(d, display.DefaultScreen, x, y, 0);
        foreach ((uint code, int down) in (ReadOnlySpan<(uint, int)>)[(control, 1), (shift, 1), (letter, 1), (letter, 0), (shift, 0), (control, 0)])
        {
            XTest.XTestFakeKeyEvent(d, code, down, 0);
        }
        Xlib.XSync(d, 0);
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
        fixed (byte* name = "client-name\0"u8)
        fixed (byte* klass = "Client\0"u8)
        {
            Xlib.XStoreName(c, window, title);
            XClassHint hint = new() { res_name = name, res_class = klass };
            Xlib.XSetClassHint(c, window, &hint);
        }
        XSizeHints sizes = default;
        sizes.flags = MinSizeHint;
        sizes.min_width = 100;
        sizes.min_height = 50;
        Xlib.XSetWMNormalHints(c, window, &sizes);
        Xlib.XMapWindow(c, window);
        X11Test.WaitForEvent(client, static e => e.type == Xlib.MapNotify, "the client's window mapped");
        return window;
    }

    /// <summary>The rectangle the second drawing inverts (and alone sends to the server): rows and columns inside the window.</summary>
    private static readonly (int X, int Y, int Width, int Height) s_changed = (30, 20, 70, 30);

    /// <summary>The pattern's pixel at (x, y), inverted inside <see cref="s_changed"/> with <paramref name="inverted"/>.</summary>
    private static uint Expected(int x, int y, bool inverted)
        => X11Test.Pattern(x, y) ^ (inverted && x >= s_changed.X && x < s_changed.X + s_changed.Width && y >= s_changed.Y && y < s_changed.Y + s_changed.Height ? 0xFFFFFFu : 0);

    /// <summary>Draws the pattern into the window; with <paramref name="invert"/>, only <see cref="s_changed"/>, inverted.</summary>
    private static unsafe ShmImage DrawPattern(DisplayHandle client, ulong window, bool invert = false)
    {
        nint c = client.Pointer;
        int screen = client.DefaultScreen;
        ShmImage picture = ShmImage.Create(client, Xlib.XDefaultVisual(c, screen), Xlib.XDefaultDepth(c, screen), Width, Height);
        for (int y = 0; y < Height; y++)
        {
            Span<uint> row = picture.Row32(y);
            for (int x = 0; x < Width; x++)
            {
                row[x] = Expected(x, y, invert);
            }
        }
        (int x0, int y0, int w, int h) = invert ? s_changed : (0, 0, Width, Height);
        XShm.XShmPutImage(c, window, Xlib.XDefaultGC(c, screen), picture.Image, x0, y0, x0, y0, (uint)w, (uint)h, 0);
        Xlib.XSync(c, 0);
        return picture;
    }

    /// <summary>PMinSize of WM_NORMAL_HINTS.</summary>
    private const long MinSizeHint = 1 << 4;

    private static unsafe (string Class, string Name) ClassOf(DisplayHandle display, ulong window)
    {
        XClassHint hint = default;
        Assert.NotEqual(0, Xlib.XGetClassHint(display.Pointer, window, &hint));
        try
        {
            return (new string((sbyte*)hint.res_class), new string((sbyte*)hint.res_name));
        }
        finally
        {
            Xlib.XFree(hint.res_class);
            Xlib.XFree(hint.res_name);
        }
    }

    private static unsafe (long Flags, int Width, int Height) MinSize(DisplayHandle display, ulong window)
    {
        XSizeHints hints = default;
        long supplied;
        Assert.NotEqual(0, Xlib.XGetWMNormalHints(display.Pointer, window, &hints, &supplied));
        return (hints.flags & MinSizeHint, hints.min_width, hints.min_height);
    }

    private static unsafe string Title(DisplayHandle display, ulong window)
    {
        byte* name = null;
        Assert.NotEqual(0, Xlib.XFetchName(display.Pointer, window, &name));
        try
        {
            return Encoding.ASCII.GetString(name, new ReadOnlySpan<byte>(name, 64).IndexOf((byte)0));
        }
        finally
        {
            Xlib.XFree(name);
        }
    }

    private static bool Shows(DisplayHandle display, int x, int y, int width, int height, bool invert = false)
    {
        using XImageHandle image = X11Test.GetImage(display, display.RootWindow, x, y, width, height);
        for (int row = 0; row < height; row++)
        {
            Span<uint> line = image.Row32(row);
            for (int column = 0; column < width; column++)
            {
                if ((line[column] & 0xFFFFFF) != Expected(column, row, invert))
                {
                    return false;
                }
            }
        }
        return true;
    }
}
