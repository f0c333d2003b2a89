using System;
using Qubes.Cli;
using Qubes.Core.Api;

namespace Qubes.Tools;

/// <summary>qvm-tags (spec core-stack §10), through qubesd's socket.</summary>
internal static class Program
{
    /// <summary>The command line.</summary>
    internal static Command Command => QvmTools.CommandFor("qvm-tags");

    internal static int Main(string[] args)
        => QvmTools.Run(Command.Prog, args, new AdminClient(SocketTransport.FromEnvironment()), Console.Out, Console.Error);
}
