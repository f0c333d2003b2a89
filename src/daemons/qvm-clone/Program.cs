using System;
using Qubes.Core.Api;

namespace Qubes.Tools;

/// <summary>qvm-clone (spec core-stack §9, §10.1), through qubesd's socket.</summary>
internal static class Program
{
    private static int Main(string[] args)
        => Lifecycle.Run("qvm-clone", args, new AdminClient(SocketTransport.FromEnvironment()), Console.In, Console.Out, Console.Error);
}
