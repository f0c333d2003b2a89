using System;
using System.Diagnostics;
using System.IO;

namespace Qubes.Front;

/// <summary>
/// qubes: the front command. <c>up</c>, <c>down</c> and <c>status</c> run the system of a state
/// directory on the loopback hypervisor; <c>demo</c> runs the system's main job; a qvm tool's name
/// runs that tool against the system of the state directory.
/// </summary>
internal static class Program
{
    private const string Help = """
        usage: qubes up [--state DIR]       start the system (the first time: create the default one)
               qubes down [--state DIR]     stop every qube and the system's daemons
               qubes status [--state DIR]   the daemons and the qubes
               qubes demo                   run the seed's scenarios on a system of its own
               qubes TOOL [ARG]...          run a tool (qvm-ls, qvm-run, qvm-prefs, qubes-policy, ...) on the system
        The state directory is --state DIR, else $QUBES_STATE_DIR, else /var/lib/qubes-runtime.
        """;

    private static int Main(string[] args)
    {
        // what the user's shell left open here (a pipe of a command substitution, say) reaches
        // neither the supervisor and its daemons nor the qubes, and does not keep the shell waiting
        Interop.Linux.Fd.CloseInheritedOnExec();
        string command = args.Length > 0 ? args[0] : "help";
        try
        {
            switch (command)
            {
                case "up":
                    return new SystemControl(SystemControl.StateFrom(args, 1)).Up(Console.Out);
                case "down":
                    return new SystemControl(SystemControl.StateFrom(args, 1)).Down(Console.Out);
                case "status":
                    return new SystemControl(SystemControl.StateFrom(args, 1)).Status(Console.Out);
                case "supervise":
                    return new Supervisor(new SystemControl(SystemControl.StateFrom(args, 1)).Layout).Run();
                case "demo":
                    return Demo.Run();
                case "help" or "--help" or "-h":
                    Console.WriteLine(Help);
                    return 0;
                default:
                    if (File.Exists(Path.Combine(AppContext.BaseDirectory, command)) && (command.StartsWith("qvm-", StringComparison.Ordinal) || command.StartsWith("qubes-", StringComparison.Ordinal)))
                    {
                        return RunTool(command, args[1..]);
                    }
                    Console.Error.WriteLine($"qubes: unknown command '{command}' (try 'qubes help')");
                    return 2;
            }
        }
        catch (Exception e) when (e is InvalidOperationException or IOException or Core.QubesException)
        {
            Console.Error.WriteLine($"qubes: {command}: {e.Message}");
            return 1;
        }
    }

    /// <summary>Runs a tool built beside this program, pointed at the system of the state directory.</summary>
    private static int RunTool(string tool, string[] args)
    {
        SystemControl system = new(SystemControl.StateFrom([], 0));
        ProcessStartInfo psi = new(Path.Combine(AppContext.BaseDirectory, tool), args) { UseShellExecute = false };
        psi.Environment["QUBES_STATE_DIR"] = system.Layout.State;
        foreach ((string name, string value) in system.Layout.PolicyVariables)
        {
            psi.Environment[name] = value;
        }
        using Process process = Process.Start(psi)!;
        process.WaitForExit();
        return process.ExitCode;
    }
}
