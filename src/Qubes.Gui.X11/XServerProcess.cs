using System;
using System.Diagnostics;
using System.Globalization;
using System.IO;
using System.Threading.Tasks;
using Qubes.Interop.Linux;

namespace Qubes.Gui.X11;

/// <summary>
/// How our X servers (<see cref="Xvfb"/>, <see cref="Xorg"/>) are started and stopped: on a display
/// named or else the first free one, which the server itself picks (-displayfd: it tries each
/// number's lock file and socket in turn) and writes once it accepts connections, so servers
/// started at once never collide; stopped with SIGTERM so that they remove their own lock files.
/// </summary>
internal static class XServerProcess
{
    /// <summary>
    /// Starts <paramref name="start"/>'s program on <paramref name="display"/> (":N") or else the
    /// first free display, with <paramref name="arguments"/> after the ones every server gets.
    /// </summary>
    public static Process Start(ProcessStartInfo start, string? display, params string[] arguments)
    {
        start.RedirectStandardOutput = true;
        start.RedirectStandardError = true;
        start.UseShellExecute = false;
        if (display != null)
        {
            start.ArgumentList.Add(display);
        }
        // -noreset: the server would otherwise reset whenever its last client leaves
        foreach (string a in (string[])["-displayfd", "1", "-nolisten", "tcp", "-noreset", .. arguments])
        {
            start.ArgumentList.Add(a);
        }
        Process process = Process.Start(start) ?? throw new InvalidOperationException($"{start.FileName} did not start");
        process.ErrorDataReceived += (_, _) => { }; // drained so a chatty server never blocks on a full pipe
        process.BeginErrorReadLine();
        return process;
    }

    /// <summary>The display number the server wrote once it accepts connections; −1 when it wrote none within 20 s.</summary>
    public static int ReadNumber(Process process)
    {
        Task<string?> line = process.StandardOutput.ReadLineAsync();
        return line.Wait(TimeSpan.FromSeconds(20)) && line.Result is not null ? int.Parse(line.Result.Trim(), CultureInfo.InvariantCulture) : -1;
    }

    /// <summary>Stops the server abruptly, as a crash would, and removes the lock and socket it leaves for display <paramref name="number"/> (none for −1).</summary>
    public static void Kill(Process process, int number)
    {
        if (!process.HasExited)
        {
            process.Kill();
            process.WaitForExit();
            if (number >= 0)
            {
                File.Delete($"/tmp/.X{number}-lock");
                File.Delete($"/tmp/.X11-unix/X{number}");
            }
        }
    }

    /// <summary>SIGTERM first, so the server removes its own lock file and socket; killed after 5 s.</summary>
    public static void Stop(Process process, int number)
    {
        if (!process.HasExited)
        {
            Libc.kill(process.Id, Libc.SIGTERM);
            if (!process.WaitForExit(TimeSpan.FromSeconds(5)))
            {
                Kill(process, number);
            }
        }
        process.Dispose();
    }
}
