using System;
using System.Diagnostics;
using System.Globalization;
using System.IO;
using System.Runtime.InteropServices;
using System.Threading.Tasks;

namespace Qubes.Gui.X11;

/// <summary>
/// A private X server without a screen (Xvfb): dom0's display when there is no desktop, each
/// qube's own display, and the tests'. Xvfb picks the first free display number itself
/// (-displayfd: it tries each number's lock file and socket in turn) and writes it once it accepts
/// connections, so servers started at once never collide.
/// </summary>
public sealed partial class Xvfb : IDisposable
{
    private const int SIGTERM = 15;

    private readonly Process _process;

    [LibraryImport("libc.so.6")]
    private static partial int kill(int pid, int sig);

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
        var psi = new ProcessStartInfo("Xvfb")
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            UseShellExecute = false,
        };
        if (display != null)
        {
            psi.ArgumentList.Add(display);
        }
        // -noreset: the server would otherwise reset whenever its last client leaves
        foreach (string a in new[] { "-displayfd", "1", "-screen", "0", screen, "-nolisten", "tcp", "-noreset" })
        {
            psi.ArgumentList.Add(a);
        }
        _process = Process.Start(psi) ?? throw new InvalidOperationException("Xvfb did not start");
        _process.ErrorDataReceived += (_, _) => { }; // drained so a chatty server never blocks on a full pipe
        _process.BeginErrorReadLine();

        Task<string?> line = _process.StandardOutput.ReadLineAsync();
        if (!line.Wait(TimeSpan.FromSeconds(20)) || line.Result is null)
        {
            Dispose();
            throw new InvalidOperationException("Xvfb did not report a display number (is the xvfb package installed?)");
        }
        Number = int.Parse(line.Result.Trim(), CultureInfo.InvariantCulture);
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
    public void Kill()
    {
        if (!_process.HasExited)
        {
            _process.Kill();
            _process.WaitForExit();
            if (Number >= 0)
            {
                File.Delete($"/tmp/.X{Number}-lock");
                File.Delete($"/tmp/.X11-unix/X{Number}");
            }
        }
    }

    /// <summary>SIGTERM first, so the server removes its own lock file and socket.</summary>
    public void Dispose()
    {
        if (!_process.HasExited)
        {
            kill(_process.Id, SIGTERM);
            if (!_process.WaitForExit(TimeSpan.FromSeconds(5)))
            {
                Kill();
            }
        }
        _process.Dispose();
    }
}
