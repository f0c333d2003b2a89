using System;
using System.Runtime.InteropServices;
using Qubes.Platform.Loopback;

namespace Qubes.Daemons.Lohv;

/// <summary><c>qubes-lohv --dir DIR</c>: runs the loopback hypervisor in the foreground until SIGTERM or SIGINT.</summary>
internal static class Program
{
    private static int Main(string[] args)
    {
        // what this daemon inherited from whoever started it goes no further
        Qubes.Interop.Linux.Fd.CloseInheritedOnExec();
        string? directory = null;
        for (int i = 0; i < args.Length; i++)
        {
            if (args[i] == "--dir" && i + 1 < args.Length)
            {
                directory = args[++i];
            }
            else if (args[i].StartsWith("--dir=", StringComparison.Ordinal))
            {
                directory = args[i]["--dir=".Length..];
            }
            else
            {
                return Usage();
            }
        }
        if (string.IsNullOrEmpty(directory))
        {
            return Usage();
        }
        using var broker = new LoopbackBroker(directory);
        using PosixSignalRegistration term = PosixSignalRegistration.Create(PosixSignal.SIGTERM, Stop);
        using PosixSignalRegistration interrupt = PosixSignalRegistration.Create(PosixSignal.SIGINT, Stop);
        Console.Out.WriteLine($"qubes-lohv: listening on {broker.SocketPath}");
        Console.Out.Flush();
        broker.Run();
        return 0;

        void Stop(PosixSignalContext context)
        {
            context.Cancel = true;
            broker.Stop();
        }
    }

    private static int Usage()
    {
        Console.Error.WriteLine("usage: qubes-lohv --dir DIR");
        return 2;
    }
}
