using System;
using System.Collections.Concurrent;
using System.Runtime.InteropServices;
using System.Threading;

namespace Qubes.Interop.X11;

/// <summary>A protocol error as Xlib reported it; ErrorCode 0 (Success) means none.</summary>
public readonly record struct X11Error(byte ErrorCode, byte RequestCode, byte MinorCode, ulong ResourceId, ulong Serial)
{
    public bool IsError => ErrorCode != 0;
}

/// <summary>
/// Replaces Xlib's error handlers, which print and exit, with ones that record: errors are normal
/// here (a qube's window can vanish between its id arriving and the request using it), and losing
/// the connection must end the connection, not the process.
///
/// Xlib calls the error handler, process-wide, on the thread that read the error off that display's
/// connection, so with one thread per Display the record of a display is written and read by the
/// same thread. Checking a request: <see cref="Reset"/>, make the request, then <see cref="Sync"/>
/// (XSync makes the server answer everything before it, so the error, if any, has arrived).
/// </summary>
public static unsafe class X11ErrorTrap
{
    private sealed class DisplayState
    {
        public X11Error Last;
        public int Count;
        public volatile bool ConnectionLost;
    }

    private static readonly ConcurrentDictionary<nint, DisplayState> s_displays = new();
    private static readonly Lock s_installLock = new();
    private static bool s_installed;

    /// <summary>Installs the recording handlers process-wide; idempotent.</summary>
    public static void Install()
    {
        lock (s_installLock)
        {
            if (s_installed)
            {
                return;
            }
            Xlib.XSetErrorHandler(&OnError);
            Xlib.XSetIOErrorHandler(&OnIOError);
            s_installed = true;
        }
    }

    /// <summary>
    /// Starts a fresh record for <paramref name="display"/> and stops a broken connection from
    /// exiting the process (the exit handler is per display).
    /// </summary>
    public static void Watch(nint display)
    {
        Install();
        s_displays[display] = new DisplayState();
        Xlib.XSetIOErrorExitHandler(display, &OnIOErrorExit, null);
    }

    /// <summary>Drops the record; called before the display is closed, as its address may be reused.</summary>
    public static void Forget(nint display) => s_displays.TryRemove(display, out _);

    /// <summary>Clears the last error and the count, not a lost connection.</summary>
    public static void Reset(nint display)
    {
        DisplayState state = s_displays.GetOrAdd(display, static _ => new DisplayState());
        state.Last = default;
        state.Count = 0;
    }

    /// <summary>The last error recorded since <see cref="Reset"/>, or none.</summary>
    public static X11Error LastError(nint display)
        => s_displays.TryGetValue(display, out DisplayState? state) ? state.Last : default;

    /// <summary>How many errors were recorded since <see cref="Reset"/>.</summary>
    public static int ErrorCount(nint display)
        => s_displays.TryGetValue(display, out DisplayState? state) ? state.Count : 0;

    /// <summary>XSync, then the last error: the outcome of every request made since <see cref="Reset"/>.</summary>
    public static X11Error Sync(nint display)
    {
        Xlib.XSync(display, Xlib.False);
        return LastError(display);
    }

    /// <summary>True once the connection broke; the Display then only answers with failures and should be closed.</summary>
    public static bool IsConnectionLost(nint display)
        => s_displays.TryGetValue(display, out DisplayState? state) && state.ConnectionLost;

    // Called from inside Xlib: must not throw into C, and must not call Xlib on this display.
    [UnmanagedCallersOnly(CallConvs = [typeof(System.Runtime.CompilerServices.CallConvCdecl)])]
    private static int OnError(nint display, XErrorEvent* error)
    {
        try
        {
            DisplayState state = s_displays.GetOrAdd(display, static _ => new DisplayState());
            state.Last = new X11Error(error->error_code, error->request_code, error->minor_code, error->resourceid, error->serial);
            state.Count++;
        }
        catch (Exception)
        {
            // nowhere to report it from here; dropping the record beats unwinding through C
        }
        return 0;
    }

    [UnmanagedCallersOnly(CallConvs = [typeof(System.Runtime.CompilerServices.CallConvCdecl)])]
    private static int OnIOError(nint display)
    {
        MarkLost(display);
        return 0;
    }

    [UnmanagedCallersOnly(CallConvs = [typeof(System.Runtime.CompilerServices.CallConvCdecl)])]
    private static void OnIOErrorExit(nint display, void* userData) => MarkLost(display);

    private static void MarkLost(nint display)
    {
        try
        {
            s_displays.GetOrAdd(display, static _ => new DisplayState()).ConnectionLost = true;
        }
        catch (Exception)
        {
            // as in OnError
        }
    }
}
