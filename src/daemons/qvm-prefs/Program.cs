using System;
using Qubes.Cli;
using Qubes.Core.Api;

namespace Qubes.Tools;

/// <summary>qvm-prefs VMNAME [PROPERTY [VALUE]]: a qube's properties (spec core-stack §10.2), through qubesd's socket.</summary>
internal static class Program
{
    /// <summary>The command line.</summary>
    internal static Command Command => Prefs.CommandFor(global: false);

    internal static int Main(string[] args)
        => Prefs.Run(global: false, args, new AdminClient(SocketTransport.FromEnvironment()), Console.Out, Console.Error);
}
