using System;
using System.Diagnostics;
using System.Globalization;
using System.IO;

namespace Qubes.Gui.X11;

/// <summary>
/// A qube's own X server as upstream runs it: Xorg with the dummy video driver (a screen in memory,
/// no hardware), and our module (native/qubes-pixmaps.c) that keeps each top-level window's
/// pixmap in shared memory the gui agent can grant as it is (<see cref="PixmapSocket"/>). Used
/// where Xorg, its dummy driver and the module are installed; else the qube gets an Xvfb.
/// </summary>
public sealed class Xorg : IDisposable
{
    private const string Server = "/usr/lib/xorg/Xorg";
    private const string SystemModules = "/usr/lib/xorg/modules";
    private const string Module = "libqubespixmaps.so";

    private readonly Process _process;
    private readonly string _directory;

    /// <summary>Where the module is built: artifacts/native/xorg, three levels above the program's directory.</summary>
    public static string ModuleDirectory => Path.GetFullPath(Path.Combine(AppContext.BaseDirectory, "../../../native/xorg"));

    /// <summary>Whether Xorg, its dummy driver and the module are all there.</summary>
    public static bool IsAvailable => File.Exists(Server) && File.Exists(Path.Combine(SystemModules, "drivers/dummy_drv.so"))
        && File.Exists(Path.Combine(ModuleDirectory, Module));

    /// <summary>
    /// A server with a screen of <paramref name="screen"/>, WIDTHxHEIGHTxDEPTH (depth 24), on
    /// display <paramref name="display"/> (":N") or else the first free one.
    /// </summary>
    public Xorg(string screen, string? display = null)
    {
        string[] parts = screen.Split('x');
        if (parts.Length != 3 || !int.TryParse(parts[0], NumberStyles.None, CultureInfo.InvariantCulture, out int width)
            || !int.TryParse(parts[1], NumberStyles.None, CultureInfo.InvariantCulture, out int height) || parts[2] != "24"
            || width is < 1 or > 16384 || height is < 1 or > 16384)
        {
            throw new ArgumentException($"screen {screen}: WIDTHxHEIGHTx24 expected", nameof(screen));
        }
        _directory = Directory.CreateTempSubdirectory("qubes-xorg-").FullName;
        File.WriteAllText(Path.Combine(_directory, "xorg.conf"), Config(width, height));
        Directory.CreateDirectory(Path.Combine(_directory, "conf.d"));
        PixmapSocket = Path.Combine(_directory, "pixmaps");
        var start = new ProcessStartInfo(Server);
        start.Environment["QUBES_PIXMAP_SOCKET"] = PixmapSocket;
        try
        {
            // -keeptty -novtswitch: a screen in memory, no console to take
            _process = XServerProcess.Start(start, display, "-config", Path.Combine(_directory, "xorg.conf"), "-configdir", Path.Combine(_directory, "conf.d"),
                "-modulepath", $"{ModuleDirectory},{SystemModules}", "-logfile", Path.Combine(_directory, "log"), "-keeptty", "-novtswitch");
        }
        catch (System.ComponentModel.Win32Exception e)
        {
            Directory.Delete(_directory, recursive: true);
            throw new InvalidOperationException($"Xorg did not start: {e.Message}", e);
        }
        Number = XServerProcess.ReadNumber(_process);
        if (Number < 0)
        {
            string log = ReadLog();
            Dispose();
            throw new InvalidOperationException($"Xorg did not report a display number: {log}");
        }
        Name = $":{Number}";
    }

    public int Number { get; } = -1;

    /// <summary>":N", for XOpenDisplay.</summary>
    public string Name { get; }

    /// <summary>The module's socket, where the agent asks for a window's pixmap.</summary>
    public string PixmapSocket { get; }

    public int Pid => _process.Id;

    /// <summary>
    /// One screen of the dummy driver at exactly the size asked, depth 24, with video memory for
    /// it; no input devices (dom0's input arrives by XTest). The mode runs at 60 Hz.
    /// </summary>
    private static string Config(int width, int height)
    {
        int hTotal = width + 160, vTotal = height + 45;
        double clock = hTotal * (double)vTotal * 60 / 1e6;
        long videoRam = Math.Max(16384, (long)width * height * 4 / 1024 + 4096);
        return string.Create(CultureInfo.InvariantCulture, $$"""
            Section "ServerFlags"
                Option "AutoAddDevices" "false"
                Option "AutoEnableDevices" "false"
                Option "DontVTSwitch" "true"
            EndSection
            Section "Module"
                Load "qubespixmaps"
            EndSection
            Section "Device"
                Identifier "screen memory"
                Driver "dummy"
                VideoRam {{videoRam}}
            EndSection
            Section "Monitor"
                Identifier "none"
                HorizSync 1.0-2000.0
                VertRefresh 1.0-200.0
                Modeline "qube" {{clock:F2}} {{width}} {{width + 48}} {{width + 80}} {{hTotal}} {{height}} {{height + 3}} {{height + 8}} {{vTotal}}
            EndSection
            Section "Screen"
                Identifier "qube"
                Device "screen memory"
                Monitor "none"
                DefaultDepth 24
                SubSection "Display"
                    Depth 24
                    Modes "qube"
                    Virtual {{width}} {{height}}
                EndSubSection
            EndSection

            """);
    }

    private string ReadLog()
    {
        try
        {
            string[] lines = File.ReadAllLines(Path.Combine(_directory, "log"));
            return string.Join(" | ", Array.FindAll(lines, l => l.Contains("(EE)", StringComparison.Ordinal)));
        }
        catch (IOException)
        {
            return "no log";
        }
    }

    /// <summary>SIGTERM first, so the server removes its own lock file and socket; then its directory goes.</summary>
    public void Dispose()
    {
        XServerProcess.Stop(_process, Number);
        try
        {
            Directory.Delete(_directory, recursive: true);
        }
        catch (IOException)
        {
        }
        catch (UnauthorizedAccessException)
        {
        }
    }
}
