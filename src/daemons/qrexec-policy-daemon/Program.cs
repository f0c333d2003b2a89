using System;
using System.IO;
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
    private const string Usage = "usage: qrexec-policy-daemon [--socket-path PATH] [--eval-socket-path PATH] [--gui-socket-path PATH] "
        + PolicyPaths.Usage + " [--ask-tty DEVICE]";

    private static int Main(string[] args)
    {
        // what this daemon inherited from whoever started it goes no further
        Qubes.Interop.Linux.Fd.CloseInheritedOnExec();
        PolicyPaths paths = new();
        string socketPath = "/run/qubes/policy.sock";
        string? askTty = null;
        string? evalSocketPath = null;
        string? guiSocketPath = null;
        try
        {
            for (int i = 0; i < args.Length; i++)
            {
                if (paths.TryParse(args, ref i))
                {
                    continue;
                }
                switch (args[i])
                {
                    case "--socket-path" when i + 1 < args.Length:
                        socketPath = args[++i];
                        break;
                    case "--eval-socket-path" when i + 1 < args.Length:
                        evalSocketPath = args[++i];
                        break;
                    case "--gui-socket-path" when i + 1 < args.Length:
                        guiSocketPath = args[++i];
                        break;
                    case "--ask-tty" when i + 1 < args.Length:
                        askTty = args[++i];
                        break;
                    case "-h" or "--help":
                        Console.WriteLine(Usage);
                        return 0;
                    default:
                        throw new ArgumentException($"unexpected argument '{args[i]}'");
                }
            }
        }
        catch (ArgumentException e)
        {
            Console.Error.WriteLine($"qrexec-policy-daemon: {e.Message}");
            Console.Error.WriteLine(Usage);
            return 2;
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
