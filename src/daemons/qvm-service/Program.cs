using System;
using Qubes.Core.Api;

namespace Qubes.Tools;

/// <summary>qvm-service (spec core-stack §10), through qubesd's socket.</summary>
internal static class Program
{
    private static int Main(string[] args)
        => QvmTools.Run("qvm-service", args, new AdminClient(SocketTransport.FromEnvironment()), Console.Out, Console.Error);
}
