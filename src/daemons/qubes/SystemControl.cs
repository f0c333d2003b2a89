using System;
using System.Diagnostics;
using System.Globalization;
using System.IO;
using System.Linq;
using System.Threading;
using Qubes.Core;
using Qubes.Core.Api;
using Qubes.Interop.Linux;

namespace Qubes.Front;

/// <summary>
/// <c>qubes up|down|status</c>: the system of a state directory (<see cref="SystemLayout"/>) on the
/// loopback hypervisor. <c>up</c> starts the system's supervisor (<see cref="Supervisor"/>) in a
/// session of its own; it starts the hypervisor (qubes-lohv), the policy daemon and qubesd, and
/// starts again whichever of the last two dies. qubesd starts the qubes and their qrexec daemons.
/// On the first <c>up</c> a default system is made: dom0, the template <c>debian-12</c>, the qubes
/// <c>work</c>, <c>personal</c> and <c>untrusted</c>, the disposable template <c>default-dvm</c>,
/// and the default policy.
/// </summary>
internal sealed class SystemControl(string state)
{
    /// <summary>The state directory when no <c>--state DIR</c> names one: <c>QUBES_STATE_DIR</c>, else /var/lib/qubes-runtime.</summary>
    public static string DefaultState => Environment.GetEnvironmentVariable("QUBES_STATE_DIR") ?? "/var/lib/qubes-runtime";

    public SystemLayout Layout { get; } = new(state);

    public AdminClient Admin => new(new SocketTransport(Layout.QubesdSocket));

    /// <summary>
    /// Starts the supervisor unless it runs; returns 0 when the whole system is up. With
    /// <paramref name="askTty"/> the policy daemon asks on that terminal for <c>ask</c> rules
    /// (without one they are refused); it takes effect when the policy daemon starts.
    /// <paramref name="display"/> is where the qubes' windows go (default: <c>$DISPLAY</c>, else a
    /// private Xvfb); it takes effect when the supervisor starts.
    /// </summary>
    public int Up(TextWriter output, string? askTty = null, string? display = null)
    {
        Directory.CreateDirectory(Layout.State, UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute);
        Directory.CreateDirectory(Layout.Run);
        Directory.CreateDirectory(Layout.Logs);
        if (askTty != null)
        {
            File.WriteAllText(Layout.AskTtyFile, askTty + "\n");
        }
        bool fresh = !File.Exists(Layout.QubesXml);
        if (fresh)
        {
            WriteDefaultPolicy();
        }
        Stopwatch clock = Stopwatch.StartNew();
        if (Pid("supervisor") == 0)
        {
            ProcessStartInfo psi = new("setsid") { UseShellExecute = false };
            // dom0's display: the one named, else the caller's, else (empty) a private Xvfb
            psi.Environment["DISPLAY"] = display ?? Environment.GetEnvironmentVariable("DISPLAY") ?? string.Empty;
            // the supervisor's own output goes nowhere: it logs to log/supervisor.log
            const string Script = "exec \"$@\" > /dev/null 2>&1 < /dev/null";
            foreach (string a in (string[])["-f", "/bin/sh", "-c", Script, "sh", Path.Combine(AppContext.BaseDirectory, "qubes"), "supervise", "--state", Layout.State])
            {
                psi.ArgumentList.Add(a);
            }
            using (Process.Start(psi)!)
            {
            }
        }
        while (Supervisor.Daemons.Any(d => Pid(d) == 0) || !File.Exists(Layout.QubesdSocket))
        {
            if (clock.Elapsed > TimeSpan.FromSeconds(60) || (clock.Elapsed > TimeSpan.FromSeconds(2) && Pid("supervisor") == 0))
            {
                throw new InvalidOperationException($"the system did not come up; see {Layout.Log("supervisor")}");
            }
            Thread.Sleep(5);
        }
        output.WriteLine($"qubes: up in {Layout.State} ({clock.Elapsed.TotalMilliseconds:F0} ms): {string.Join(", ", Supervisor.Daemons.Select(d => $"{d} pid {Pid(d)}"))}");
        if (fresh)
        {
            CreateDefaultSystem(output);
        }
        return 0;
    }

    /// <summary>Stops the supervisor, which stops qubesd (and every qube), then the policy daemon and the hypervisor.</summary>
    public int Down(TextWriter output)
    {
        int supervisor = Pid("supervisor");
        if (supervisor > 0)
        {
            Libc.kill(supervisor, Libc.SIGTERM);
            Stopwatch clock = Stopwatch.StartNew();
            while (Alive(supervisor) && clock.Elapsed < TimeSpan.FromSeconds(120))
            {
                Thread.Sleep(20);
            }
        }
        // the terminal belonged to this run: the next up names its own, if any
        File.Delete(Layout.AskTtyFile);
        // whatever is left (a supervisor that was killed, or did not finish in time)
        foreach (string daemon in Supervisor.Daemons.Reverse().Append("supervisor"))
        {
            int pid = Pid(daemon);
            if (pid > 0)
            {
                Libc.kill(pid, Libc.SIGTERM);
                Stopwatch clock = Stopwatch.StartNew();
                while (Alive(pid) && clock.Elapsed < TimeSpan.FromSeconds(30))
                {
                    Thread.Sleep(20);
                }
                if (Alive(pid))
                {
                    Libc.kill(pid, Libc.SIGKILL);
                }
            }
            if (File.Exists(Layout.PidFile(daemon)))
            {
                File.Delete(Layout.PidFile(daemon));
            }
        }
        output.WriteLine($"qubes: down ({Layout.State})");
        return 0;
    }

    /// <summary>Which daemons run and how often they were restarted, and the qubes as <c>qvm-ls</c> shows them.</summary>
    public int Status(TextWriter output)
    {
        bool up = true;
        foreach (string daemon in Supervisor.Daemons.Prepend("supervisor"))
        {
            int pid = Pid(daemon);
            int restarts = Supervisor.ReadRestarts(Layout, daemon);
            string state = pid > 0 ? $"running (pid {pid}{(restarts > 0 ? $", restarted {restarts} time{(restarts == 1 ? "" : "s")}" : "")})" : "stopped";
            output.WriteLine($"{daemon,-22}{state}");
            up &= pid > 0;
        }
        if (!up)
        {
            return 1;
        }
        return QvmLs.Run([], Admin, output, Console.Error);
    }

    /// <summary>The pid of a daemon of the system, or 0 when it does not run.</summary>
    public int Pid(string daemon)
    {
        string file = Layout.PidFile(daemon);
        return File.Exists(file) && int.TryParse(File.ReadAllText(file).Trim(), NumberStyles.None, CultureInfo.InvariantCulture, out int pid) && Alive(pid) ? pid : 0;
    }

    private static bool Alive(int pid)
    {
        try
        {
            return Libc.kill(pid, 0) == 0 && !File.ReadAllText($"/proc/{pid}/stat").Contains(") Z ", StringComparison.Ordinal);
        }
        catch (IOException)
        {
            return false; // gone between the two looks
        }
    }

    private void WriteDefaultPolicy()
    {
        Directory.CreateDirectory(Layout.PolicyDirectory);
        File.WriteAllText(Path.Combine(Layout.PolicyDirectory, "90-default.policy"), """
            # the default policy of this system (the files before this one decide first)
            qubes.Filecopy   *  @anyvm  @anyvm  ask
            qubes.SyncAppMenus  *  @anyvm  dom0  allow
            qubes.ReceiveUpdates  *  @anyvm  dom0  allow
            qubes.VMShell    *  @anyvm  @anyvm  deny
            qubes.ClipboardPaste  *  @adminvm  @anyvm  deny
            qubes.ClipboardPaste  *  @anyvm  @anyvm  allow
            admin.vm.List    *  @anyvm  @adminvm  deny

            """);
    }

    /// <summary>dom0, a template, work, personal, untrusted and a disposable template, each a call to qubesd as dom0 makes it.</summary>
    private void CreateDefaultSystem(TextWriter output)
    {
        AdminClient admin = Admin;
        admin.Call("admin.vm.Create.TemplateVM", "dom0", payload: "name=debian-12 label=black");
        admin.Call("admin.property.Set", "dom0", "default_template", "debian-12");
        foreach ((string name, string label) in (ReadOnlySpan<(string, string)>)[("work", "blue"), ("personal", "yellow"), ("untrusted", "red"), ("default-dvm", "red")])
        {
            admin.Call("admin.vm.Create.AppVM", "dom0", "debian-12", $"name={name} label={label}");
        }
        admin.Call("admin.vm.property.Set", "default-dvm", "template_for_dispvms", "True");
        admin.Call("admin.property.Set", "dom0", "default_dispvm", "default-dvm");
        output.WriteLine("qubes: created the default system: dom0, debian-12 (template), work, personal, untrusted, default-dvm (disposable template)");
    }
}
