using System;
using Qubes.Cli;
using Qubes.Core.Api;

namespace Qubes.Tools;

/// <summary>qvm-ls (spec core-stack §10.3), through qubesd's socket.</summary>
internal static class Program
{
    /// <summary>The command line.</summary>
    internal static Command Command => QvmLs.Command;

    internal static int Main(string[] args)
        => QvmLs.Run(args, new AdminClient(SocketTransport.FromEnvironment()), Console.Out, Console.Error);
}
