using System;
using Qubes.Qrexec;
using Qubes.Qrexec.Runtime;
using Qubes.Qrexec.Transport;

namespace Qubes.Tools.QrexecAgent;

/// <summary>qrexec-agent [--agent-socket=PATH] [--fork-server-socket=PATTERN] [--no-fork-server]</summary>
internal static class Program
{
    private static int Main(string[] args)
    {
        string socket = QrexecProtocol.DefaultAgentSocket;
        for (int i = 0; i < args.Length; i++)
        {
            string a = args[i];
            if (a.StartsWith("--agent-socket=", StringComparison.Ordinal))
            {
                socket = a["--agent-socket=".Length..];
            }
            else if (a == "--agent-socket" && i + 1 < args.Length)
            {
                socket = args[++i];
            }
            else if (a == "--no-fork-server" || a.StartsWith("--fork-server-socket=", StringComparison.Ordinal))
            {
                // services start directly from the agent; there is no fork server to use or skip
            }
            else if (a == "--fork-server-socket" && i + 1 < args.Length)
            {
                i++;
            }
            else
            {
                Console.Error.WriteLine(a is "-h" or "--help" ? string.Empty : $"qrexec-agent: unknown option {a}");
                Console.Error.WriteLine("usage: qrexec-agent [--agent-socket=PATH] [--fork-server-socket=PATTERN] [--no-fork-server]");
                return a is "-h" or "--help" ? 0 : 2;
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
