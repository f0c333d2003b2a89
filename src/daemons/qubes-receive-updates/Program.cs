using System;
using Qubes.Cli;
using Qubes.Core;
using Qubes.Core.Api;
using Qubes.Updates;

namespace Qubes.Tools.QubesReceiveUpdates;

/// <summary>
/// qubes-receive-updates: dom0's qubes.ReceiveUpdates service (<see cref="ReceiveUpdates"/>), the
/// calling qube from <c>QREXEC_REMOTE_DOMAIN</c>, the transfer on standard input. On a loopback
/// system (<c>QUBES_STATE_DIR</c>) the updates and the rpm database with dom0's keys are the
/// system's; otherwise a real dom0's. qfile-dom0-unpacker and rpmcanon are the ones beside this
/// program.
/// </summary>
internal static class Program
{
    internal static Command Command { get; } = new("qubes-receive-updates", HelpStyle.Getopt, Command.GetoptHelp)
    {
        Synopsis = "qubes-receive-updates [--help]   (dom0's qubes.ReceiveUpdates: the transfer on stdin)",
        UsageStatus = 1,
    };

    public static int Main(string[] args)
        => Command.Run(Console.Out, Console.Error, () =>
        {
            // the service script passes no argument (upstream's takes none)
            foreach (Parsed parsed in Command.ReadOptions(args, out _))
            {
                throw new UsageException($"unknown option {parsed.Text}");
            }
            string? state = Environment.GetEnvironmentVariable("QUBES_STATE_DIR");
            string? updateVm;
            try
            {
                updateVm = UpdateVm.Read(new AdminClient(SocketTransport.FromEnvironment()));
            }
            catch (QubesException e)
            {
                Console.Error.WriteLine(e.Message);
                return 1;
            }
            if (updateVm == null)
            {
                return 1;
            }
            ReceiveUpdates receive = new(
                UpdatePaths.ForSystem(state, Environment.GetEnvironmentVariable("TMPDIR")),
                UpdateTools.Beside(AppContext.BaseDirectory, state != null ? new SystemLayout(state).Dom0RpmDatabase : null));
            return receive.Run(Environment.GetEnvironmentVariable("QREXEC_REMOTE_DOMAIN"), updateVm, 0, 1, Console.Error);
        });
}
