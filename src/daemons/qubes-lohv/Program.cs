using System;
using System.Collections.Generic;
using System.Runtime.InteropServices;
using Qubes.Cli;
using Qubes.Platform.Loopback;

namespace Qubes.Daemons.Lohv;

/// <summary><c>qubes-lohv --dir DIR</c>: runs the loopback hypervisor in the foreground until SIGTERM or SIGINT.</summary>
internal static class Program
{
    /// <summary>The command line.</summary>
    internal static Command Command { get; } = new("qubes-lohv", HelpStyle.Getopt,
        Command.GetoptHelp,
        new Option("the directory of the hypervisor's state and socket (required)", "--dir") { Metavar = "DIR" })
    {
        Synopsis = "qubes-lohv --dir DIR",
    };

    internal static int Main(string[] args) => Command.Run(Console.Out, Console.Error, () => Run(args));

    private static int Run(string[] args)
    {
        // what this daemon inherited from whoever started it goes no further
        Qubes.Interop.Linux.Fd.CloseInheritedOnExec();
        string? directory = null;
        for (int i = 0; i < args.Length; i++)
        {
            IReadOnlyList<Parsed> options = Command.IsOption(args[i]) ? Command.Read(args, ref i) : [new Parsed(null, args[i], [])];
            foreach (Parsed parsed in options)
            {
                directory = parsed.Option?.Name == "--dir" ? parsed.Value : throw new UsageException($"unexpected argument '{parsed.Text}'");
            }
        }
        if (string.IsNullOrEmpty(directory))
        {
            throw new UsageException("--dir is required");
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
}
