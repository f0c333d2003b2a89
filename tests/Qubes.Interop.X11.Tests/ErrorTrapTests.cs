using Qubes.Gui.X11;
using Xunit;

namespace Qubes.Interop.X11.Tests;

/// <summary>Protocol errors and a lost server are recorded for the caller instead of ending the process.</summary>
public sealed unsafe class ErrorTrapTests : IClassFixture<Xvfb>
{
    private const byte X_GetWindowAttributes = 3;
    private const byte X_MapWindow = 8;

    private readonly Xvfb _server;

    public ErrorTrapTests(Xvfb server) => _server = server;

    [Fact]
    public void A_request_on_a_missing_window_reports_BadWindow_and_the_connection_goes_on()
    {
        using DisplayHandle display = DisplayHandle.Open(_server.Name);
        nint d = display.Pointer;
        ulong window = X11Test.CreateMappedWindow(display, 0, 0, 10, 10);
        Xlib.XDestroyWindow(d, window);
        Assert.False(X11ErrorTrap.Sync(d).IsError);

        X11ErrorTrap.Reset(d);
        Xlib.XMapWindow(d, window);
        X11Error error = X11ErrorTrap.Sync(d);
        Assert.True(error.IsError);
        Assert.Equal(Xlib.BadWindow, error.ErrorCode);
        Assert.Equal(X_MapWindow, error.RequestCode);
        Assert.Equal(window, error.ResourceId);
        Assert.Equal(1, X11ErrorTrap.ErrorCount(d));

        // a synchronous call fails through its status as well
        X11ErrorTrap.Reset(d);
        XWindowAttributes attributes;
        Assert.Equal(0, Xlib.XGetWindowAttributes(d, window, &attributes));
        Assert.Equal(Xlib.BadWindow, X11ErrorTrap.LastError(d).ErrorCode);
        Assert.Equal(X_GetWindowAttributes, X11ErrorTrap.LastError(d).RequestCode);

        // errors from an extension's requests come through the same trap (DAMAGE takes any drawable)
        X11ErrorTrap.Reset(d);
        Xdamage.XDamageCreate(d, window, Xdamage.XDamageReportNonEmpty);
        X11Error damageError = X11ErrorTrap.Sync(d);
        Assert.Equal(Xlib.BadDrawable, damageError.ErrorCode);
        Assert.True(damageError.RequestCode >= 128, $"request {damageError.RequestCode} is not an extension's");

        X11ErrorTrap.Reset(d);
        Assert.False(X11ErrorTrap.Sync(d).IsError);
        Assert.Equal(0, X11ErrorTrap.ErrorCount(d));
        ulong another = X11Test.CreateMappedWindow(display, 0, 0, 10, 10);
        Assert.NotEqual(0, Xlib.XGetWindowAttributes(d, another, &attributes));
        Assert.Equal(Xlib.IsViewable, attributes.map_state);
        Assert.False(display.IsConnectionLost);
    }

    [Fact]
    public void Errors_are_kept_per_display()
    {
        using DisplayHandle failing = DisplayHandle.Open(_server.Name);
        using DisplayHandle healthy = DisplayHandle.Open(_server.Name);
        X11ErrorTrap.Reset(failing.Pointer);
        X11ErrorTrap.Reset(healthy.Pointer);
        Xlib.XUnmapWindow(failing.Pointer, 0x1FFFFF);
        Xlib.XUnmapWindow(healthy.Pointer, healthy.RootWindow);
        Assert.Equal(Xlib.BadWindow, X11ErrorTrap.Sync(failing.Pointer).ErrorCode);
        Assert.False(X11ErrorTrap.Sync(healthy.Pointer).IsError);
    }

    [Fact]
    public void Opening_a_display_without_a_server_throws()
    {
        X11Exception e = Assert.Throws<X11Exception>(() => DisplayHandle.Open(":4093"));
        Assert.Contains(":4093", e.Message, System.StringComparison.Ordinal);
    }

    [Fact]
    public void Losing_the_server_marks_the_display_lost_and_the_process_lives_on()
    {
        using var doomed = new Xvfb();
        DisplayHandle display = DisplayHandle.Open(doomed.Name);
        Assert.False(display.IsConnectionLost);
        doomed.Kill();

        // Xlib's default would exit() the whole test run here
        Xlib.XSync(display.Pointer, Xlib.False);
        Assert.True(display.IsConnectionLost);
        Xlib.XSync(display.Pointer, Xlib.False);
        display.Dispose();
        Assert.True(display.IsClosed);
    }
}
