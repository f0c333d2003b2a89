using System;
using Qubes.Cli;
using Qubes.Core.Api;

namespace Qubes.Tools;

/// <summary>qvm-shutdown (spec core-stack §9, §10.1), through qubesd's socket.</summary>
internal static class Program
{
    /// <summary>The command line.</summary>
    internal static Command Command => Lifecycle.CommandFor("qvm-shutdown");

    internal static int Main(string[] args)
        => Lifecycle.Run(Command.Prog, args, new AdminClient(SocketTransport.FromEnvironment()), Console.In, Console.Out, Console.Error);
}
