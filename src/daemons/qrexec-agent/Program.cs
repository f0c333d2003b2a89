using System;
using System.Collections.Generic;
using System.Diagnostics;
using System.IO;
using Qubes.Cli;
using Qubes.Interop.Linux;
using Qubes.Platform.Loopback;
using Qubes.Qrexec;
using Qubes.Qrexec.Runtime;
using Qubes.Qrexec.Transport;

namespace Qubes.Tools.QrexecAgent;

/// <summary>qrexec-agent [--agent-socket=PATH] [--fork-server-socket=PATH] [--no-fork-server]</summary>
internal static class Program
{
    /// <summary>The command line, with upstream's usage text.</summary>
    internal static Command Command { get; } = new("qrexec-agent", HelpStyle.Getopt,
        Command.GetoptHelp,
        new Option($"path to listen at, default: {QrexecProtocol.DefaultAgentSocket}", "--agent-socket") { Metavar = "PATH" },
        new Option("where to find the fork server (accepted for compatibility; services start from the agent itself)", "--fork-server-socket") { Metavar = "PATH" },
        new Option("don't try to connect to fork server (accepted for compatibility; there is none)", "--no-fork-server"));

    internal static int Main(string[] args) => Command.Run(Console.Out, Console.Error, () => Run(args));

    private static int Run(string[] args)
    {
        string socket = QrexecProtocol.DefaultAgentSocket;
        for (int i = 0; i < args.Length; i++)
        {
            IReadOnlyList<Parsed> options = Command.IsOption(args[i]) ? Command.Read(args, ref i) : [new Parsed(null, args[i], [])];
            foreach (Parsed parsed in options)
            {
                switch (parsed.Option?.Name)
                {
                    case "--agent-socket":
                        socket = parsed.Value!;
                        break;
                    case "--fork-server-socket" or "--no-fork-server":
                        break;
                    default:
                        throw new UsageException($"unknown option {parsed.Text}");
                }
            }
        }
        // as upstream's: an agent that is root (a qube's) runs each call as the user it names
        ServiceRunner.RunAsCallUser = Environment.IsPrivilegedProcess;
        ServiceRunner.IgnoreServiceSignals();
        IChannelFactory channels = ChannelFactory.FromEnvironment();
        using Process? gui = StartGuiAgent(channels);
        using Qubes.Qrexec.Runtime.QrexecAgent agent = new(channels, new AgentOptions(socket));
        if (!agent.Start())
        {
            return 1;
        }
        SystemdNotify.Ready();
        return agent.Run();
    }

    /// <summary>The qube's display, as upstream's: services started with a GUI find their X server there.</summary>
    private const string Display = ":0";

    /// <summary>
    /// On the loopback hypervisor the qube has no init of its own to start its GUI agent: when the
    /// qube has a GUI domain, the agent starts qubes-gui-agent (its own Xvfb on :0) on a connection
    /// of its own, and the services it runs get <c>DISPLAY=:0</c>.
    /// </summary>
    private static Process? StartGuiAgent(IChannelFactory channels)
    {
        string? domain = Environment.GetEnvironmentVariable(LoopbackPlatform.GuiDomainVariable);
        Environment.SetEnvironmentVariable(LoopbackPlatform.GuiDomainVariable, null);
        if (string.IsNullOrEmpty(domain) || channels is not VchanChannelFactory { Platform: LoopbackPlatform platform })
        {
            return null;
        }
        string program = Path.Combine(AppContext.BaseDirectory, "qubes-gui-agent");
        if (!File.Exists(program))
        {
            Console.Error.WriteLine($"qrexec-agent: the qube has a GUI domain ({domain}) but there is no {program}");
            return null;
        }
        Environment.SetEnvironmentVariable("DISPLAY", Display);
        ProcessStartInfo start = new(program, ["--gui-domain", domain, "--display", Display, "--screen", "1920x1080x24"]) { UseShellExecute = false };
        using SafeFd connection = platform.OpenConnection();
        Process agent = LoopbackPlatform.StartInDomain(connection, start);
        agent.EnableRaisingEvents = true;
        agent.Exited += (_, _) => Console.Error.WriteLine($"qrexec-agent: qubes-gui-agent exited with status {agent.ExitCode}");
        return agent;
    }
}
