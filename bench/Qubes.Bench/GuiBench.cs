using System;
using System.Collections.Generic;
using System.Diagnostics;
using System.Globalization;
using System.Threading.Tasks;
using Qubes.Gui.X11;
using Qubes.Interop.Linux;
using Qubes.Interop.X11;
using Qubes.Platform.Loopback;

namespace Qubes.Bench;

/// <summary>
/// A window whose whole content changes every frame, from a client on the qube's own X server to
/// dom0's screen (agent, granted pages, daemon, MIT-SHM), against the same frames drawn by a local
/// client on dom0's display. Two measures, each path in each round:
/// <list type="bullet">
/// <item>continuous (the ratio): the client draws frames one after another without waiting for
/// dom0, as a video player does, and what counts is each whole frame dom0's X server paints on its
/// screen (XDamage raw rectangles on its root, at least half the screen each) until the last frame
/// drawn shows there; frames the client drew faster than they could be shown are not counted;</item>
/// <item>one at a time (latency): each frame is drawn, then waited for on dom0's screen (its
/// colour read back at the window's centre) before the next.</item>
/// </list>
/// </summary>
internal static unsafe class GuiBench
{
    /// <summary>
    /// <paramref name="rounds"/> rounds of each measure with a <paramref name="width"/> ×
    /// <paramref name="height"/> window (continuous: 10 × <paramref name="frames"/> frames; one at
    /// a time: <paramref name="frames"/>); the qube's X server is <paramref name="qubeServer"/>,
    /// "xorg" (windows granted from the server's own pixmaps) or "xvfb" (windows read back at each change).
    /// </summary>
    public static int Run(int width, int height, int frames, int rounds, string qubeServer)
    {
        if (qubeServer is not ("xorg" or "xvfb"))
        {
            Console.Error.WriteLine($"gui: --qube-server xorg or xvfb, not {qubeServer}");
            return 2;
        }
        string screen = $"{width}x{height}x24";
        using Xvfb dom0Screen = Xvfb.WithScreen(screen);
        using Xorg? qubeXorg = qubeServer == "xorg" ? new Xorg(screen) : null;
        using Xvfb? qubeXvfb = qubeXorg == null ? Xvfb.WithScreen(screen) : null;
        string qubeDisplay = qubeXorg?.Name ?? qubeXvfb!.Name;
        using var host = new LoopbackHost();
        (int id, SafeFd connection) = host.CreateDomain("work");
        using LoopbackPlatform qube = LoopbackPlatform.Connect(connection.Release());
        using DisplayHandle dom0 = DisplayHandle.Open(dom0Screen.Name), observer = DisplayHandle.Open(dom0Screen.Name);
        using DisplayHandle client = DisplayHandle.Open(qubeDisplay), local = DisplayHandle.Open(dom0Screen.Name);
        Task<GuiAgent> starting = Task.Run(() => GuiAgent.Start(qube, 0, qubeDisplay, qubeXorg?.PixmapSocket));
        using GuiDaemon daemon = GuiDaemon.Start(host.Dom0, id, new QubeIdentity("work", 6, 0x3465a4), dom0);
        using GuiAgent agent = starting.GetAwaiter().GetResult();
        using SafeFd stop = EventFd.Create();
        Task<int> daemonRunning = Task.Run(() => daemon.Run(stop.Fd)), agentRunning = Task.Run(() => agent.Run(stop.Fd));

        Console.WriteLine($"gui: {rounds} rounds of {frames} frames of {width}x{height}, every pixel changed each frame; the qube's X server: {(qubeXorg != null ? "Xorg with window pixmaps in shared memory" : "Xvfb")}");
        // the qube's window covers dom0's screen where the local client's will be: one at a time
        Frames remote = new(client, width, height);
        if (!WaitFor(observer, width / 2, height / 2, remote.Draw(1), TimeSpan.FromSeconds(20)))
        {
            Console.Error.WriteLine("gui: the qube's window never showed on dom0's screen");
            return 1;
        }
        var remoteRates = new List<double>();
        var remoteSerial = new List<double>();
        int next = 2;
        for (int round = 0; round < rounds; round++)
        {
            remoteRates.Add(MeasureContinuous(remote, observer, width, height, frames * 10, ref next));
            remoteSerial.Add(Measure(remote, observer, width, height, frames, ref next));
        }
        remote.Dispose();
        TaskWait(() => daemon.Dispatcher.WindowCount == 0);

        Frames mine = new(local, width, height);
        WaitFor(observer, width / 2, height / 2, mine.Draw(1), TimeSpan.FromSeconds(20));
        var localRates = new List<double>();
        var localSerial = new List<double>();
        for (int round = 0; round < rounds; round++)
        {
            localRates.Add(MeasureContinuous(mine, observer, width, height, frames * 10, ref next));
            localSerial.Add(Measure(mine, observer, width, height, frames, ref next));
        }
        mine.Dispose();
        EventFd.Signal(stop.Fd);
        daemonRunning.Wait(10_000);
        agentRunning.Wait(10_000);

        double megabytes = width * (double)height * 4 / 1e6;
        Stats g = Stats.Of(remoteRates), l = Stats.Of(localRates), gs = Stats.Of(remoteSerial), ls = Stats.Of(localSerial);
        Console.WriteLine($"one frame at a time, qube window: {gs.Format("frames/s", "F1")}");
        Console.WriteLine($"one frame at a time, local client: {ls.Format("frames/s", "F1")}");
        Console.WriteLine(string.Create(CultureInfo.InvariantCulture, $"ratio one at a time gui/local: {gs.Median / ls.Median:F2}"));
        Console.WriteLine($"continuous, qube window on dom0's screen: {g.Format("frames/s", "F1")} ({(g.Median * megabytes).ToString("F0", CultureInfo.InvariantCulture)} MB/s median)");
        Console.WriteLine($"continuous, local client on dom0's screen: {l.Format("frames/s", "F1")} ({(l.Median * megabytes).ToString("F0", CultureInfo.InvariantCulture)} MB/s median)");
        Console.WriteLine(string.Create(CultureInfo.InvariantCulture, $"ratio gui/local: {g.Median / l.Median:F2}"));
        return 0;
    }

    /// <summary>
    /// Frames per second shown on dom0's screen while <paramref name="count"/> frames are drawn one
    /// after another without waiting: whole-frame paints counted by a thread of the observer's own,
    /// from the first frame drawn until the last one shows.
    /// </summary>
    private static double MeasureContinuous(Frames frames, DisplayHandle observer, int width, int height, int count, ref int next)
    {
        nint d = observer.Pointer;
        ulong damage = Xdamage.XDamageCreate(d, observer.RootWindow, Xdamage.XDamageReportRawRectangles);
        // what the screen still paints of earlier steps (a window gone, the last frames) is not counted
        Xlib.XSync(d, 0);
        System.Threading.Thread.Sleep(200);
        Xlib.XSync(d, 1);
        int painted = 0;
        using SafeFd stop = EventFd.Create();
        var counting = new System.Threading.Thread(() =>
        {
            long whole = (long)width * height / 2;
            int x = Xlib.XConnectionNumber(d);
            XEvent e;
            while (true)
            {
                while (Xlib.XPending(d) > 0)
                {
                    Xlib.XNextEvent(d, &e);
                    XRectangle area = e.xdamage.area;
                    if ((long)area.width * area.height >= whole)
                    {
                        System.Threading.Interlocked.Increment(ref painted);
                    }
                }
                if (Fd.PollIn(stop.Fd, 0) > 0)
                {
                    return;
                }
                Fd.PollIn(x, 5);
            }
        });
        counting.Start();
        var clock = Stopwatch.StartNew();
        for (int i = 0; i < count; i++)
        {
            frames.Draw(next++);
        }
        // the last frame drawn shows: what was painted until then counts
        int last = next - 1;
        uint lastColor = Frames.Color(last);
        EventFd.Signal(stop.Fd);
        counting.Join();
        bool shown = WaitFor(observer, width / 2, height / 2, lastColor, TimeSpan.FromSeconds(10));
        double seconds = clock.Elapsed.TotalSeconds;
        int frameCount = System.Threading.Volatile.Read(ref painted);
        Xdamage.XDamageDestroy(d, damage);
        if (!shown)
        {
            throw new InvalidOperationException($"frame {last} never showed on dom0's screen");
        }
        // each frame drawn is painted once at most (a frame counted twice would inflate the rate)
        if (frameCount > count)
        {
            throw new InvalidOperationException($"{frameCount} whole-frame paints counted for {count} frames drawn");
        }
        Console.WriteLine(string.Create(CultureInfo.InvariantCulture, $"  {frameCount} of {count} frames drawn were shown, {seconds:F3} s"));
        return frameCount / seconds;
    }

    /// <summary>Frames per second: each frame drawn, then waited for on dom0's screen.</summary>
    private static double Measure(Frames frames, DisplayHandle observer, int width, int height, int count, ref int next)
    {
        var clock = Stopwatch.StartNew();
        for (int i = 0; i < count; i++)
        {
            uint color = frames.Draw(next++);
            if (!WaitFor(observer, width / 2, height / 2, color, TimeSpan.FromSeconds(10)))
            {
                throw new InvalidOperationException($"frame {i} never showed on dom0's screen");
            }
        }
        return count / clock.Elapsed.TotalSeconds;
    }

    /// <summary>
    /// Waits until dom0's screen shows <paramref name="color"/> at (x, y): the pixel is read again
    /// each time the screen has changed, which the observer hears from XDamage on the root window
    /// (rather than reading it in a loop, which would keep one of the machine's CPUs and dom0's X
    /// server busy for both paths).
    /// </summary>
    private static bool WaitFor(DisplayHandle observer, int x, int y, uint color, TimeSpan limit)
    {
        nint d = observer.Pointer;
        ulong damage = Xdamage.XDamageCreate(d, observer.RootWindow, Xdamage.XDamageReportNonEmpty);
        try
        {
            var clock = Stopwatch.StartNew();
            XEvent e;
            while (clock.Elapsed < limit)
            {
                // re-armed before the pixel is read: a change after the read is heard
                Xdamage.XDamageSubtract(d, damage, 0, 0);
                XImage* pixel = Xlib.XGetImage(d, observer.RootWindow, x, y, 1, 1, Xlib.AllPlanes, Xlib.ZPixmap);
                if (pixel != null)
                {
                    using var image = new XImageHandle(pixel);
                    if ((image.Row32(0)[0] & 0xFFFFFF) == color)
                    {
                        return true;
                    }
                }
                if (Xlib.XPending(d) == 0)
                {
                    Fd.PollIn(Xlib.XConnectionNumber(d), Math.Max(1, (int)(limit - clock.Elapsed).TotalMilliseconds));
                }
                while (Xlib.XPending(d) > 0)
                {
                    Xlib.XNextEvent(d, &e);
                }
            }
            return false;
        }
        finally
        {
            Xdamage.XDamageDestroy(d, damage);
        }
    }

    private static void TaskWait(Func<bool> condition)
    {
        var clock = Stopwatch.StartNew();
        while (!condition() && clock.Elapsed < TimeSpan.FromSeconds(10))
        {
            System.Threading.Thread.Sleep(5);
        }
    }

    /// <summary>A client's full-screen window, redrawn whole from a shared-memory image.</summary>
    private sealed class Frames : IDisposable
    {
        private readonly DisplayHandle _display;
        private readonly ulong _window;
        private readonly ShmImage _image;
        private readonly nint _gc;

        public Frames(DisplayHandle display, int width, int height)
        {
            _display = display;
            nint d = display.Pointer;
            int screen = display.DefaultScreen;
            XSetWindowAttributes attributes = default;
            attributes.override_redirect = 1;
            _window = Xlib.XCreateWindow(d, display.RootWindow, 0, 0, (uint)width, (uint)height, 0, Xlib.XDefaultDepth(d, screen), Xlib.InputOutput,
                Xlib.XDefaultVisual(d, screen), Xlib.CWOverrideRedirect, &attributes);
            Xlib.XMapWindow(d, _window);
            _image = ShmImage.Create(display, Xlib.XDefaultVisual(d, screen), Xlib.XDefaultDepth(d, screen), width, height);
            _gc = Xlib.XDefaultGC(d, screen);
            Xlib.XSync(d, 0);
        }

        /// <summary>The colour of frame <paramref name="n"/>.</summary>
        public static uint Color(int n) => (uint)(n * 0x010305 + 0x204060) & 0xFFFFFF;

        /// <summary>Fills the window with a colour of its own for frame <paramref name="n"/> and returns it.</summary>
        public uint Draw(int n)
        {
            uint color = Color(n);
            for (int y = 0; y < _image.Height; y++)
            {
                _image.Row32(y).Fill(color);
            }
            XShm.XShmPutImage(_display.Pointer, _window, _gc, _image.Image, 0, 0, 0, 0, (uint)_image.Width, (uint)_image.Height, 0);
            Xlib.XSync(_display.Pointer, 0);
            return color;
        }

        public void Dispose()
        {
            Xlib.XDestroyWindow(_display.Pointer, _window);
            Xlib.XSync(_display.Pointer, 0);
            _image.Dispose();
        }
    }
}
