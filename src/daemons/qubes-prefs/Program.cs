using System;
using Qubes.Cli;
using Qubes.Core.Api;

namespace Qubes.Tools;

/// <summary>qubes-prefs [PROPERTY [VALUE]]: the global properties (spec core-stack §10.2), through qubesd's socket.</summary>
internal static class Program
{
    /// <summary>The command line.</summary>
    internal static Command Command => Prefs.CommandFor(global: true);

    internal static int Main(string[] args)
        => Prefs.Run(global: true, args, new AdminClient(SocketTransport.FromEnvironment()), Console.Out, Console.Error);
}
