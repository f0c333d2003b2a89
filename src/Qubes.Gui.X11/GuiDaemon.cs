using System;
using Qubes.Interop.Linux;
using Qubes.Interop.X11;
using Qubes.Platform;

namespace Qubes.Gui.X11;

/// <summary>
/// One qube's GUI daemon: connects to its agent, then serves its windows on dom0's display until
/// the agent goes or breaks the protocol. A message the protocol leaves to the user (VERIFY) ends
/// the session, as when upstream's prompt cannot be shown.
/// </summary>
public sealed unsafe class GuiDaemon : IDisposable
{
    private readonly GuiDaemonConnection _connection;
    private readonly MappedWindowImages _images;
    private readonly GuiDaemonHost _host;
    private readonly GuiDispatcher<GuiDaemonHost> _dispatcher;
    private readonly QubeIdentity _qube;
    private readonly IPlatform _platform;
    private readonly int _domain;

    /// <summary>How often an idle session checks that the qube still exists (a qube that dies cannot close its channel).</summary>
    private const int AliveCheckMs = 1000;

    private GuiDaemon(IPlatform platform, int domain, GuiDaemonConnection connection, MappedWindowImages images, GuiDaemonHost host, GuiDispatcher<GuiDaemonHost> dispatcher, QubeIdentity qube)
    {
        _platform = platform;
        _domain = domain;
        _connection = connection;
        _images = images;
        _host = host;
        _dispatcher = dispatcher;
        _qube = qube;
    }

    /// <summary>The X side, for its windows.</summary>
    public GuiDaemonHost Host => _host;

    /// <summary>The checked state of the qube's windows.</summary>
    public GuiDispatcher<GuiDaemonHost> Dispatcher => _dispatcher;

    /// <summary>Why the last session ended, for the log.</summary>
    public string? Ending { get; private set; }

    /// <summary>Connects to the agent of <paramref name="domain"/> (waiting for it) and makes its windows' home on <paramref name="display"/>.</summary>
    public static GuiDaemon Start(IPlatform platform, int domain, QubeIdentity qube, DisplayHandle display, Func<GuiDaemonOptions>? options = null)
    {
        int screen = display.DefaultScreen;
        int width = Xlib.XDisplayWidth(display.Pointer, screen), height = Xlib.XDisplayHeight(display.Pointer, screen);
        GuiDaemonConnection connection = GuiDaemonConnection.Connect(platform, domain, XConf.For(width, height, Xlib.XDefaultDepth(display.Pointer, screen)));
        GuiDaemonOptions settings = options?.Invoke() ?? new GuiDaemonOptions(qube.Name) { ScreenWidth = width, ScreenHeight = height };
        var images = new MappedWindowImages(platform, domain, settings.MaxWindows);
        var host = new GuiDaemonHost(display, qube, images, connection.Send, settings.MaxWindows);
        var dispatcher = new GuiDispatcher<GuiDaemonHost>(host, settings, connection.Version);
        host.Dispatcher = dispatcher;
        return new GuiDaemon(platform, domain, connection, images, host, dispatcher, qube);
    }

    /// <summary>
    /// Serves until the agent closes or its qube is gone (0), breaks the protocol or sends what needs the user (1), or
    /// <paramref name="stopFd"/> becomes readable (0).
    /// </summary>
    public int Run(int stopFd = -1)
    {
        try
        {
            return Serve(stopFd);
        }
        finally
        {
            // whatever ended the session, the qube's windows go with it
            _dispatcher.DestroyAll();
            _host.Flush();
        }
    }

    private int Serve(int stopFd)
    {
        Span<Libc.pollfd> fds = stackalloc Libc.pollfd[3];
        fds[0] = new Libc.pollfd { fd = _connection.EventFd, events = Libc.POLLIN };
        fds[1] = new Libc.pollfd { fd = _host.ConnectionFd, events = Libc.POLLIN };
        fds[2] = new Libc.pollfd { fd = stopFd, events = Libc.POLLIN };
        while (true)
        {
            _host.HandleXEvents();
            PumpStatus status = _connection.Pump(_dispatcher, out DispatchResult result);
            _host.Flush();
            switch (status)
            {
                case PumpStatus.Closed:
                    Ending = $"{_qube.Name}: the agent closed the GUI connection";
                    return 0;
                case PumpStatus.Fatal:
                    Ending = $"{_qube.Name}: {GuiFaults.Describe(result.Fault)} (message {result.Type}, window 0x{result.Window:x}): the qube's GUI connection is closed";
                    return 1;
                case PumpStatus.Verify:
                    Ending = $"{_qube.Name}: the qube made an invalid or suspicious GUI request ({GuiFaults.Describe(result.Fault)}, message {result.Type}) and no one could be asked whether it may go on";
                    return 1;
            }
            fds[0].revents = fds[1].revents = fds[2].revents = 0;
            int ready;
            fixed (Libc.pollfd* p = fds)
            {
                ready = Libc.poll(p, stopFd >= 0 ? 3u : 2u, AliveCheckMs);
            }
            if (ready == 0 && !_platform.Domains.IsAlive(_domain))
            {
                Ending = $"{_qube.Name}: the qube is gone";
                return 0;
            }
            if (ready < 0 && LastError.Get() != Errno.EINTR)
            {
                Ending = $"{_qube.Name}: poll failed ({LastError.Get()})";
                return 1;
            }
            if (stopFd >= 0 && fds[2].revents != 0)
            {
                Ending = $"{_qube.Name}: stopped";
                return 0;
            }
        }
    }

    public void Dispose()
    {
        _dispatcher.DestroyAll();
        _host.Dispose();
        _images.Dispose();
        _connection.Dispose();
    }
}
