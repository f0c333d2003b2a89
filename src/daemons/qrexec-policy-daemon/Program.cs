using System;
using System.Collections.Generic;
using System.IO;
using Qubes.Cli;
using Qubes.Interop.Linux;
using Qubes.Qrexec.Policy;

namespace Qubes.Tools.PolicyDaemon;

/// <summary>
/// qrexec-policy-daemon [--socket-path PATH] [--eval-socket-path PATH] [--gui-socket-path PATH]
///   [--policy-path DIR] [--runtime-policy-path DIR] [--legacy-policy-path DIR] [--system-info FILE]
///   [--ask-tty DEVICE]
/// Answers the qrexec daemons' policy questions on the policy socket, and serves the dom0 qrexec
/// socket services <c>policy.EvalSimple</c> and <c>policy.EvalGUI</c> at the paths given (in
/// dom0, <c>/etc/qubes-rpc/policy.EvalSimple</c> and <c>/etc/qubes-rpc/policy.EvalGUI</c>). Policy
/// and system information are read again whenever they change. <c>ask</c> rules prompt on the
/// terminal DEVICE when one is given; without one they are denied. Exit status: 1 when a socket
/// cannot be set up, 2 on bad usage; otherwise it serves until killed.
/// </summary>
internal static class Program
{
    /// <summary>The command line.</summary>
    internal static Command Command { get; } = new("qrexec-policy-daemon", HelpStyle.Argparse,
    [
        Command.ArgparseHelp,
        new Option("the policy socket the qrexec daemons ask (default: /run/qubes/policy.sock)", "--socket-path") { Metavar = "PATH" },
        new Option("serve policy.EvalSimple at this socket", "--eval-socket-path") { Metavar = "PATH" },
        new Option("serve policy.EvalGUI at this socket", "--gui-socket-path") { Metavar = "PATH" },
        .. PolicyPaths.Options,
        new Option("prompt on this terminal for 'ask' rules; without one they are denied", "--ask-tty") { Metavar = "DEVICE" },
    ])
    {
        Description = "Evaluate the qrexec policy for the qrexec daemons, and for policy.EvalSimple and policy.EvalGUI.",
    };

    internal static int Main(string[] args) => Command.Run(Console.Out, Console.Error, () => Run(args));

    private static int Run(string[] args)
    {
        // what this daemon inherited from whoever started it goes no further
        Qubes.Interop.Linux.Fd.CloseInheritedOnExec();
        PolicyPaths paths = new();
        string socketPath = "/run/qubes/policy.sock";
        string? askTty = null;
        string? evalSocketPath = null;
        string? guiSocketPath = null;
        for (int i = 0; i < args.Length; i++)
        {
            IReadOnlyList<Parsed> options = Command.IsOption(args[i]) ? Command.Read(args, ref i) : [new Parsed(null, args[i], [])];
            foreach (Parsed parsed in options)
            {
                if (paths.Take(parsed))
                {
                    continue;
                }
                switch (parsed.Option?.Name)
                {
                    case "--socket-path":
                        socketPath = parsed.Value!;
                        break;
                    case "--eval-socket-path":
                        evalSocketPath = parsed.Value;
                        break;
                    case "--gui-socket-path":
                        guiSocketPath = parsed.Value;
                        break;
                    case "--ask-tty":
                        askTty = parsed.Value;
                        break;
                    default:
                        throw new UsageException($"unrecognized arguments: {parsed.Text}");
                }
            }
        }
        IAskPrompt? prompt = null;
        if (askTty != null)
        {
            try
            {
                prompt = TerminalPrompt.Open(askTty);
            }
            catch (Exception e) when (e is IOException or UnauthorizedAccessException)
            {
                Console.Error.WriteLine($"qrexec-policy-daemon: {askTty}: {e.Message}");
                return 1;
            }
        }
        PolicyHost host = paths.Host(message => Console.Error.WriteLine("qrexec-policy-daemon: " + message));
        string current = socketPath;
        try
        {
            foreach ((string? path, string service, bool checkGui) in (ReadOnlySpan<(string?, string, bool)>)[
                (evalSocketPath, "policy.EvalSimple", false), (guiSocketPath, "policy.EvalGUI", true)])
            {
                if (path != null)
                {
                    current = path;
                    // the listener lives as long as the daemon
                    new EvalServer(host, service, checkGui).Start(UnixSocket.Listen(path, 64));
                    Console.Error.WriteLine($"qrexec-policy-daemon: serving {service} at {path}");
                }
            }
            current = socketPath;
            new PolicyServer(host, prompt).Run(socketPath);
        }
        catch (Exception e) when (e is LinuxException or IOException or UnauthorizedAccessException or ArgumentException)
        {
            Console.Error.WriteLine($"qrexec-policy-daemon: {current}: {e.Message}");
            return 1;
        }
        return 0;
    }
}
