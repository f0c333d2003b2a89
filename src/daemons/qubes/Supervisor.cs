using System;
using System.Collections.Concurrent;
using System.Collections.Generic;
using System.Diagnostics;
using System.Globalization;
using System.IO;
using System.Runtime.InteropServices;
using System.Threading;
using Qubes.Core;
using Qubes.Interop.Linux;

namespace Qubes.Front;

/// <summary>
/// <c>qubes supervise</c>: the parent of a system's dom0 daemons, started in a session of its own
/// by <c>qubes up</c>. It starts the hypervisor (qubes-lohv), the policy daemon and qubesd in that
/// order (the policy daemon also serving <c>policy.EvalSimple</c> and <c>policy.EvalGUI</c> as
/// dom0 socket services in <c>dom0/rpc/</c>), each with a fixed environment, its output in its log (lines capped, the file rotated:
/// <see cref="RotatingLog"/>) and its pid in <c>run/</c>. When the policy daemon or qubesd dies it
/// logs how and starts it again (at once, then with a growing pause while it keeps dying young),
/// counting the restarts in <c>run/DAEMON.restarts</c> for <c>qubes status</c>; a qubesd that
/// died took its qubes with it (their launchers die with it), and the new one finds them halted.
/// The hypervisor is not restarted: every domain dies with it, so the supervisor stops the rest
/// and exits. SIGTERM stops qubesd (and with it every qube), then the policy daemon, then the
/// hypervisor.
/// </summary>
internal sealed class Supervisor
{
    /// <summary>The daemons in start order (stopped in the reverse one).</summary>
    public static readonly string[] Daemons = ["qubes-lohv", "qrexec-policy-daemon", "qubesd"];

    private static readonly TimeSpan s_stopTimeout = TimeSpan.FromSeconds(60);

    private readonly SystemLayout _layout;
    private readonly RotatingLog _log;
    private readonly Dictionary<string, Process> _running = [];
    private readonly BlockingCollection<string?> _events = [];

    /// <summary>dom0's display for the qubes' windows: the one <c>qubes up</c> named, else a private Xvfb.</summary>
    private string? _display;
    private Gui.X11.Xvfb? _privateDisplay;

    public Supervisor(SystemLayout layout)
    {
        _layout = layout;
        _log = new RotatingLog(layout.Log("supervisor"));
    }

    /// <summary>The file counting a daemon's restarts.</summary>
    public static string RestartsFile(SystemLayout layout, string daemon) => Path.Combine(layout.Run, daemon + ".restarts");

    /// <summary>Runs until SIGTERM or the hypervisor's death; the exit status.</summary>
    public int Run()
    {
        Fd.CloseInheritedOnExec();
        Directory.CreateDirectory(_layout.Run);
        Directory.CreateDirectory(_layout.Logs);
        File.WriteAllText(_layout.PidFile("supervisor"), Environment.ProcessId.ToString(CultureInfo.InvariantCulture));
        using PosixSignalRegistration term = PosixSignalRegistration.Create(PosixSignal.SIGTERM, context =>
        {
            context.Cancel = true;
            _events.Add(null);
        });
        OpenDisplay();
        foreach (string daemon in Daemons)
        {
            File.Delete(RestartsFile(_layout, daemon));
            if (!Start(daemon))
            {
                StopAll();
                return 1;
            }
        }
        Say($"up: {string.Join(", ", Daemons)}");
        Dictionary<string, (int Count, DateTime Last)> deaths = [];
        while (true)
        {
            string? died = _events.Take();
            if (died is null)
            {
                Say("SIGTERM: stopping the system");
                StopAll();
                return 0;
            }
            Process process = _running[died];
            string how = DescribeExit(process);
            _running.Remove(died);
            process.Dispose();
            if (died == "qubes-lohv")
            {
                Say($"qubes-lohv {how}: every domain went with it; stopping the system");
                StopAll();
                return 1;
            }
            (int count, DateTime last) = deaths.GetValueOrDefault(died);
            // a daemon that keeps dying within seconds of its start waits longer each time (up to 10 s)
            count = DateTime.UtcNow - last < TimeSpan.FromSeconds(30) ? count + 1 : 1;
            deaths[died] = (count, DateTime.UtcNow);
            int restarts = ReadRestarts(_layout, died) + 1;
            File.WriteAllText(RestartsFile(_layout, died), restarts.ToString(CultureInfo.InvariantCulture));
            TimeSpan pause = count <= 1 ? TimeSpan.Zero : TimeSpan.FromMilliseconds(Math.Min(10_000, 250 << Math.Min(count, 6)));
            Say($"{died} {how}; restarting it (restart {restarts}{(pause > TimeSpan.Zero ? $", after {pause.TotalSeconds:F1} s" : "")})");
            Thread.Sleep(pause);
            if (!Start(died))
            {
                Say($"{died} did not come back; the next death or SIGTERM decides");
            }
        }
    }

    /// <summary>
    /// The display qubesd shows the qubes' windows on: <c>$DISPLAY</c> as <c>qubes up</c> passed
    /// it (the user's desktop), or when empty a private Xvfb of 1920x1080 that lives as long as the
    /// system. Its name goes to <c>run/display</c>. Without either the qubes run without a GUI.
    /// </summary>
    private void OpenDisplay()
    {
        _display = Environment.GetEnvironmentVariable("DISPLAY");
        if (string.IsNullOrEmpty(_display))
        {
            try
            {
                _privateDisplay = Gui.X11.Xvfb.WithScreen("1920x1080x24");
            }
            catch (Exception e) when (e is InvalidOperationException or System.ComponentModel.Win32Exception)
            {
                Say($"no display for the qubes' windows ({e.Message}): the qubes run without a GUI");
                _display = null;
                return;
            }
            _display = _privateDisplay.Name;
        }
        File.WriteAllText(_layout.DisplayFile, _display + "\n");
        Say($"the qubes' windows go to display {_display}{(_privateDisplay != null ? " (a private Xvfb)" : "")}");
    }

    /// <summary>How many times a daemon was restarted since the system came up.</summary>
    public static int ReadRestarts(SystemLayout layout, string daemon)
    {
        string file = RestartsFile(layout, daemon);
        return File.Exists(file) && int.TryParse(File.ReadAllText(file).Trim(), NumberStyles.None, CultureInfo.InvariantCulture, out int n) ? n : 0;
    }

    private static string DescribeExit(Process process)
    {
        int status = process.ExitCode;
        return status > 128 && status < 160 ? $"(pid {process.Id}) was killed by signal {status - 128}" : $"(pid {process.Id}) exited with status {status}";
    }

    /// <summary>Starts a daemon and waits for its socket (30 s at most).</summary>
    private bool Start(string daemon)
    {
        (string socket, string[] args) = daemon switch
        {
            "qubes-lohv" => (Path.Combine(_layout.Broker, Platform.Loopback.LoopbackBroker.SocketName), (string[])["--dir", _layout.Broker]),
            "qrexec-policy-daemon" => (_layout.PolicySocket, ["--socket-path", _layout.PolicySocket,
                "--eval-socket-path", _layout.PolicyEvalSimpleSocket, "--gui-socket-path", _layout.PolicyEvalGuiSocket,
                .. File.Exists(_layout.AskTtyFile) ? (string[])["--ask-tty", File.ReadAllText(_layout.AskTtyFile).Trim()] : []]),
            _ => (_layout.QubesdSocket, ["--state", _layout.State]),
        };
        if (File.Exists(socket))
        {
            File.Delete(socket); // left by a daemon that was killed
        }
        if (daemon == "qrexec-policy-daemon")
        {
            // policy.EvalSimple and policy.EvalGUI are dom0 socket services: their sockets go where dom0's qrexec looks
            Directory.CreateDirectory(_layout.Dom0Services);
        }
        ProcessStartInfo psi = new(Path.Combine(AppContext.BaseDirectory, daemon), args)
        {
            UseShellExecute = false,
            RedirectStandardInput = true,
            RedirectStandardOutput = true,
            RedirectStandardError = true,
        };
        // a fixed environment: nothing of whoever ran qubes up reaches the daemons (or the qubes)
        psi.Environment.Clear();
        psi.Environment["PATH"] = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";
        psi.Environment["HOME"] = "/root";
        psi.Environment["LANG"] = "C.UTF-8";
        foreach (string variable in (string[])["DOTNET_ROOT", "DOTNET_ROOT_X64"])
        {
            if (Environment.GetEnvironmentVariable(variable) is { } value)
            {
                psi.Environment[variable] = value;
            }
        }
        foreach ((string variable, string value) in _layout.PolicyVariables)
        {
            psi.Environment[variable] = value;
        }
        if (daemon == "qubesd")
        {
            psi.Environment["DISPLAY"] = _display ?? string.Empty;
            if (_privateDisplay == null && Environment.GetEnvironmentVariable("XAUTHORITY") is { Length: > 0 } cookies)
            {
                psi.Environment["XAUTHORITY"] = cookies;
            }
        }
        Process process = Process.Start(psi)!;
        process.StandardInput.Close();
        RotatingLog log = new(_layout.Log(daemon));
        process.OutputDataReceived += (_, e) => Write(log, e.Data);
        process.ErrorDataReceived += (_, e) => Write(log, e.Data);
        process.Exited += (_, _) =>
        {
            process.WaitForExit(); // the output is all read
            log.Dispose();
            _events.Add(daemon);
        };
        process.EnableRaisingEvents = true;
        process.BeginOutputReadLine();
        process.BeginErrorReadLine();
        _running[daemon] = process;
        File.WriteAllText(_layout.PidFile(daemon), process.Id.ToString(CultureInfo.InvariantCulture));
        Stopwatch clock = Stopwatch.StartNew();
        while (!File.Exists(socket))
        {
            if (process.HasExited || clock.Elapsed > TimeSpan.FromSeconds(30))
            {
                Say($"{daemon} did not start; see {_layout.Log(daemon)}");
                return false;
            }
            Thread.Sleep(5);
        }
        return true;
    }

    private static void Write(RotatingLog log, string? line)
    {
        if (line != null)
        {
            log.WriteLine(line);
        }
    }

    /// <summary>Stops the daemons in the reverse of their start order: SIGTERM, then SIGKILL past the timeout.</summary>
    private void StopAll()
    {
        for (int i = Daemons.Length - 1; i >= 0; i--)
        {
            if (!_running.Remove(Daemons[i], out Process? process))
            {
                continue;
            }
            Libc.kill(process.Id, Libc.SIGTERM);
            if (!process.WaitForExit(s_stopTimeout))
            {
                Libc.kill(process.Id, Libc.SIGKILL);
                process.WaitForExit();
            }
            Say($"stopped {Daemons[i]} (pid {process.Id})");
            File.Delete(_layout.PidFile(Daemons[i]));
        }
        File.Delete(_layout.DisplayFile);
        _privateDisplay?.Dispose();
        File.Delete(_layout.PidFile("supervisor"));
    }

    private void Say(string line) => _log.WriteLine($"{DateTime.UtcNow:yyyy-MM-dd HH:mm:ss} supervisor: {line}");
}
