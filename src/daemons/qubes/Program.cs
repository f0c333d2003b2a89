using System;
using System.Collections.Generic;
using System.Diagnostics;
using System.IO;
using Qubes.Cli;

namespace Qubes.Front;

/// <summary>
/// qubes: the front command. <c>up</c>, <c>down</c> and <c>status</c> run the system of a state
/// directory on the loopback hypervisor; <c>demo</c> runs the system's main job; a qvm tool's name
/// runs that tool against the system of the state directory.
/// </summary>
internal static class Program
{
    /// <summary>The command line.</summary>
    internal static Command Command { get; } = new("qubes", HelpStyle.Getopt,
        Command.GetoptHelp,
        new Option("with up, down and status: the state directory of the system (default: $QUBES_STATE_DIR, else /var/lib/qubes-runtime)", "--state") { Metavar = "DIR" },
        new Option("with up: the terminal on which the policy daemon asks for 'ask' rules (without one they are refused)", "--ask-tty") { Metavar = "DEVICE" },
        new Option("with up: dom0's display, where the qubes' windows go (default: $DISPLAY, else a private Xvfb)", "--display") { Metavar = "DISPLAY" })
    {
        Synopsis = """
            qubes up [--state DIR] [--ask-tty DEVICE] [--display DISPLAY]
                                                start the system (the first time: create the default one)
                   qubes down [--state DIR]     stop every qube and the system's daemons
                   qubes status [--state DIR]   the daemons and the qubes
                   qubes demo                   run the seed's scenarios on a system of its own
                   qubes TOOL [ARG]...          run a tool (qvm-ls, qvm-run, qvm-prefs, qubes-policy, ...) on the system
                   qubes help                   this help
            """,
    };

    internal static int Main(string[] args)
    {
        // the native build: the daemons and clients in this executable, each run by the name of its link
        if (MultiCall.Find(Path.GetFileName(Environment.GetCommandLineArgs()[0])) is { } program)
        {
            return program(args);
        }
        // what the user's shell left open here (a pipe of a command substitution, say) reaches
        // neither the supervisor and its daemons nor the qubes, and does not keep the shell waiting
        Interop.Linux.Fd.CloseInheritedOnExec();
        string command = args.Length > 0 ? args[0] : "help";
        try
        {
            switch (command)
            {
                case "up":
                    return Command.Run(Console.Out, Console.Error, () => new SystemControl(State(args, out string? askTty, out string? display)).Up(Console.Out, askTty, display));
                case "down":
                    return Command.Run(Console.Out, Console.Error, () => new SystemControl(State(args)).Down(Console.Out));
                case "status":
                    return Command.Run(Console.Out, Console.Error, () => new SystemControl(State(args)).Status(Console.Out));
                case "supervise":
                    return Command.Run(Console.Out, Console.Error, () => new Supervisor(new SystemControl(State(args)).Layout).Run());
                case "demo":
                    return Demo.Run();
                case "help":
                    Console.Write(Command.Help);
                    return 0;
                case var _ when Command.IsOption(command):
                    return Command.Run(Console.Out, Console.Error, () =>
                    {
                        int i = 0;
                        Command.Read(args, ref i); // the help option prints the help
                        throw new UsageException($"unknown command '{command}' (try 'qubes help')");
                    });
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

    /// <summary>The state directory of <c>qubes up|down|status|supervise [--state DIR]</c>.</summary>
    private static string State(string[] args)
    {
        string state = State(args, out string? askTty, out string? display);
        return askTty == null && display == null ? state : throw new UsageException($"{args[0]}: --ask-tty and --display go with up");
    }

    /// <summary>The state directory, the terminal and the display of <c>qubes up [--state DIR] [--ask-tty DEVICE] [--display DISPLAY]</c>.</summary>
    private static string State(string[] args, out string? askTty, out string? display)
    {
        string state = SystemControl.DefaultState;
        askTty = display = null;
        for (int i = 1; i < args.Length; i++)
        {
            IReadOnlyList<Parsed> options = Command.IsOption(args[i]) ? Command.Read(args, ref i) : [new Parsed(null, args[i], [])];
            foreach (Parsed parsed in options)
            {
                switch (parsed.Option?.Name)
                {
                    case "--state":
                        state = parsed.Value!;
                        break;
                    case "--ask-tty":
                        askTty = parsed.Value!;
                        break;
                    case "--display":
                        display = parsed.Value!;
                        break;
                    default:
                        throw new UsageException($"{args[0]}: unexpected argument '{parsed.Text}'");
                }
            }
        }
        return state;
    }

    /// <summary>Runs a tool built beside this program, pointed at the system of the state directory.</summary>
    private static int RunTool(string tool, string[] args)
    {
        SystemControl system = new(SystemControl.DefaultState);
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
