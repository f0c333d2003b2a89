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
/// loopback hypervisor. <c>up</c> starts the hypervisor (qubes-lohv), the policy daemon and qubesd,
/// each in its own session with its log in <c>log/</c> and its pid in <c>run/</c>; qubesd starts the
/// qubes and their qrexec daemons. On the first <c>up</c> a default system is made: dom0, the
/// template <c>debian-12</c>, the qubes <c>work</c>, <c>personal</c> and <c>untrusted</c>, the
/// disposable template <c>default-dvm</c>, and the default policy.
/// </summary>
internal sealed class SystemControl(string state)
{
    private static readonly string[] s_daemons = ["qubes-lohv", "qrexec-policy-daemon", "qubesd"];

    /// <summary>The state directory: <c>--state DIR</c>, else <c>QUBES_STATE_DIR</c>, else /var/lib/qubes-runtime.</summary>
    public static string StateFrom(string[] args, int start)
    {
        for (int i = start; i + 1 < args.Length; i++)
        {
            if (args[i] == "--state")
            {
                return args[i + 1];
            }
        }
        return Environment.GetEnvironmentVariable("QUBES_STATE_DIR") ?? "/var/lib/qubes-runtime";
    }

    public SystemLayout Layout { get; } = new(state);

    public AdminClient Admin => new(new SocketTransport(Layout.QubesdSocket));

    /// <summary>Starts what is not running; returns 0 when the whole system is up.</summary>
    public int Up(TextWriter output)
    {
        Directory.CreateDirectory(Layout.Run);
        Directory.CreateDirectory(Layout.Logs);
        bool fresh = !File.Exists(Layout.QubesXml);
        if (fresh)
        {
            WriteDefaultPolicy();
        }
        Stopwatch clock = Stopwatch.StartNew();
        Daemon("qubes-lohv", Path.Combine(Layout.Broker, Platform.Loopback.LoopbackBroker.SocketName), "--dir", Layout.Broker);
        Daemon("qrexec-policy-daemon", Layout.PolicySocket, "--socket-path", Layout.PolicySocket);
        Daemon("qubesd", Layout.QubesdSocket, "--state", Layout.State);
        output.WriteLine($"qubes: up in {Layout.State} ({clock.Elapsed.TotalMilliseconds:F0} ms): {string.Join(", ", s_daemons.Select(d => $"{d} pid {Pid(d)}"))}");
        if (fresh)
        {
            CreateDefaultSystem(output);
        }
        return 0;
    }

    /// <summary>Stops qubesd (which stops every qube), then the policy daemon and the hypervisor.</summary>
    public int Down(TextWriter output)
    {
        foreach (string daemon in s_daemons.Reverse())
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
                output.WriteLine($"qubes: stopped {daemon} (pid {pid})");
            }
            if (File.Exists(Layout.PidFile(daemon)))
            {
                File.Delete(Layout.PidFile(daemon));
            }
        }
        return 0;
    }

    /// <summary>Which daemons run, and the qubes as <c>qvm-ls</c> shows them.</summary>
    public int Status(TextWriter output)
    {
        bool up = true;
        foreach (string daemon in s_daemons)
        {
            int pid = Pid(daemon);
            output.WriteLine($"{daemon,-22}{(pid > 0 ? $"running (pid {pid})" : "stopped")}");
            up &= pid > 0;
        }
        if (!up)
        {
            return 1;
        }
        return QvmLs.Run([], Admin, output, Console.Error);
    }

    /// <summary>The pid of a daemon started by <see cref="Up"/>, or 0 when it does not run.</summary>
    public int Pid(string daemon)
    {
        string file = Layout.PidFile(daemon);
        return File.Exists(file) && int.TryParse(File.ReadAllText(file).Trim(), NumberStyles.None, CultureInfo.InvariantCulture, out int pid) && Alive(pid) ? pid : 0;
    }

    private static bool Alive(int pid) => Libc.kill(pid, 0) == 0 && !File.ReadAllText($"/proc/{pid}/stat").Contains(") Z ", StringComparison.Ordinal);

    /// <summary>Starts a daemon in its own session (it outlives this command), unless it runs; waits for its socket.</summary>
    private void Daemon(string name, string socket, params string[] args)
    {
        if (Pid(name) > 0)
        {
            return;
        }
        if (File.Exists(socket))
        {
            File.Delete(socket); // left by a daemon that was killed
        }
        ProcessStartInfo psi = new("setsid") { UseShellExecute = false };
        const string Script = "pid=\"$1\" log=\"$2\"; shift 2; echo $$ > \"$pid\"; exec \"$@\" >> \"$log\" 2>&1 < /dev/null";
        foreach (string a in (string[])["-f", "/bin/sh", "-c", Script, "sh", Layout.PidFile(name), Layout.Log(name), Path.Combine(AppContext.BaseDirectory, name), .. args])
        {
            psi.ArgumentList.Add(a);
        }
        foreach ((string variable, string value) in Layout.PolicyVariables)
        {
            psi.Environment[variable] = value;
        }
        using (Process.Start(psi)!)
        {
        }
        Stopwatch clock = Stopwatch.StartNew();
        while (!File.Exists(socket))
        {
            if (clock.Elapsed > TimeSpan.FromSeconds(30) || (clock.Elapsed > TimeSpan.FromSeconds(1) && Pid(name) == 0))
            {
                throw new InvalidOperationException($"{name} did not start; see {Layout.Log(name)}");
            }
            Thread.Sleep(5);
        }
    }

    private void WriteDefaultPolicy()
    {
        Directory.CreateDirectory(Layout.PolicyDirectory);
        File.WriteAllText(Path.Combine(Layout.PolicyDirectory, "90-default.policy"), """
            # the default policy of this system (the files before this one decide first)
            qubes.Filecopy   *  @anyvm  @anyvm  ask
            qubes.VMShell    *  @anyvm  @anyvm  deny
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
