using System;
using System.Diagnostics;
using System.IO;

namespace Qubes.Gui.X11;

/// <summary>
/// A private X server without a screen (Xvfb): dom0's display when there is no desktop, a qube's
/// own display where Xorg is missing, and the tests'; on the first free display
/// (<see cref="XServerProcess"/>).
/// </summary>
public sealed class Xvfb : IDisposable
{
    private readonly Process _process;

    /// <summary>A server with a 1280×800 screen of depth 24.</summary>
    public Xvfb()
        : this("1280x800x24", null)
    {
    }

    /// <summary>The server's process id.</summary>
    public int Pid => _process.Id;

    /// <summary>
    /// A server with a screen of <paramref name="screen"/>, WIDTHxHEIGHTxDEPTH, on display
    /// <paramref name="display"/> (":N") or else the first free one.
    /// </summary>
    public static Xvfb WithScreen(string screen, string? display = null) => new(screen, display);

    private Xvfb(string screen, string? display = null)
    {
        _process = XServerProcess.Start(new ProcessStartInfo("Xvfb"), display, "-screen", "0", screen);
        Number = XServerProcess.ReadNumber(_process);
        if (Number < 0)
        {
            Dispose();
            throw new InvalidOperationException("Xvfb did not report a display number (is the xvfb package installed?)");
        }
        Name = $":{Number}";

        string socket = $"/tmp/.X11-unix/X{Number}";
        var wait = Stopwatch.StartNew();
        while (!File.Exists(socket))
        {
            if (wait.Elapsed > TimeSpan.FromSeconds(10) || _process.HasExited)
            {
                Dispose();
                throw new InvalidOperationException($"Xvfb {Name}: no socket {socket}");
            }
            System.Threading.Thread.Sleep(10);
        }
    }

    public int Number { get; } = -1;

    /// <summary>":N", for XOpenDisplay.</summary>
    public string Name { get; }

    /// <summary>Stops the server abruptly, as a crash would, and removes the lock and socket it leaves.</summary>
    public void Kill() => XServerProcess.Kill(_process, Number);

    /// <summary>SIGTERM first, so the server removes its own lock file and socket.</summary>
    public void Dispose() => XServerProcess.Stop(_process, Number);
}
