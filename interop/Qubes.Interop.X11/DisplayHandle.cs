using System;
using System.Runtime.InteropServices;

namespace Qubes.Interop.X11;

/// <summary>
/// An Xlib connection (Display*), closed on release. Opening one makes Xlib thread-aware and
/// installs <see cref="X11ErrorTrap"/> for it, so neither protocol errors nor a lost server exit the
/// process. Xlib calls take <see cref="Pointer"/>; keep this object alive while they run. A process
/// that uses this type opens its displays through it, so XInitThreads precedes every Xlib call.
/// </summary>
public sealed class DisplayHandle : SafeHandle
{
    // XInitThreads must come before any other Xlib call of the process; the type initializer runs
    // exactly once, before the first Open, and other threads wait for it
    static DisplayHandle() => Xlib.XInitThreads();

    private DisplayHandle(nint display) : base(IntPtr.Zero, ownsHandle: true) => SetHandle(display);

    public override bool IsInvalid => handle == IntPtr.Zero;

    /// <summary>The Display* for the raw calls.</summary>
    public nint Pointer => handle;

    public int DefaultScreen => Xlib.XDefaultScreen(handle);

    public ulong RootWindow => Xlib.XDefaultRootWindow(handle);

    /// <summary>True once the connection to the server broke.</summary>
    public bool IsConnectionLost => X11ErrorTrap.IsConnectionLost(handle);

    /// <summary>Connects to <paramref name="displayName"/> (":0"), or to $DISPLAY when null.</summary>
    public static DisplayHandle Open(string? displayName = null)
    {
        X11ErrorTrap.Install();
        nint display = Xlib.XOpenDisplay(displayName);
        if (display == 0)
        {
            throw new X11Exception($"cannot open display {displayName ?? Environment.GetEnvironmentVariable("DISPLAY") ?? "(DISPLAY unset)"}");
        }
        X11ErrorTrap.Watch(display);
        return new DisplayHandle(display);
    }

    protected override bool ReleaseHandle()
    {
        X11ErrorTrap.Forget(handle);
        Xlib.XCloseDisplay(handle);
        return true;
    }
}
