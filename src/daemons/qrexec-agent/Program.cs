using System;
using System.Collections.Generic;
using Qubes.Cli;
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
        using Qubes.Qrexec.Runtime.QrexecAgent agent = new(ChannelFactory.FromEnvironment(), new AgentOptions(socket));
        if (!agent.Start())
        {
            return 1;
        }
        SystemdNotify.Ready();
        return agent.Run();
    }
}
