using System;
using System.Collections.Generic;
using System.IO;
using Qubes.Cli;
using Qubes.Core;
using Qubes.Core.Api;
using Qubes.Interop.Linux;

namespace Qubes.Tools;

/// <summary>
/// qvm-run [options] VMNAME COMMAND | qvm-run --dispvm[=TEMPLATE] [options] COMMAND (spec core-stack §10.8),
/// in dom0: the qube is started if needed through qubesd, and the command goes to it through
/// <c>qrexec-client</c> (built beside this program) as <c>qubes.VMShell</c> with the command on its
/// input, or as the service itself with <c>--service</c>. <c>--dispvm</c> makes a disposable with
/// <c>admin.vm.CreateDisposable</c>, runs the command there and kills it (which removes it).
/// The system is the one of <c>QUBES_STATE_DIR</c>.
/// </summary>
internal static class Program
{
    /// <summary>The command line.</summary>
    internal static Command Command { get; } = new("qvm-run", HelpStyle.Argparse,
        new Option("increase verbosity", "--verbose", "-v"),
        new Option("decrease verbosity", "--quiet", "-q"),
        new Option("force running the tool even if called as root", "--force-root") { Hidden = true },
        Command.QubesHelp,
        new Option("run command in a qube as USER", "--user", "-u") { Metavar = "USER" },
        new Option("option ignored, this is default", "--autostart", "--auto", "-a"),
        new Option("do not autostart the qube", "--no-autostart", "--no-auto", "-n"),
        new Option("pass stdio from remote program", "--pass-io", "-p"),
        new Option("with --pass-io, pass stdio to the given program", "--localcmd") { Metavar = "COMMAND" },
        new Option("run the command with GUI (accepted for compatibility; ignored)", "--gui"),
        new Option("run the command without GUI (accepted for compatibility; ignored)", "--no-gui", "--nogui"),
        new Option("disable colouring the stdio (accepted for compatibility; ignored)", "--no-colour-output", "--no-color-output"),
        new Option("disable colouring the stderr (accepted for compatibility; ignored)", "--no-colour-stderr", "--no-color-stderr"),
        new Option("filter terminal escape sequences (accepted for compatibility; ignored)", "--filter-escape-chars"),
        new Option("do not filter terminal escape sequences (accepted for compatibility; ignored)", "--no-filter-escape-chars"),
        new Option("run a qrexec service (named by COMMAND) instead of shell command", "--service"),
        new Option("treat COMMAND as a simple executable, not a shell command (accepted for compatibility; ignored)", "--no-shell"),
        new Option("start the command in a new disposable qube; optionally specify a disposable template (--dispvm=TEMPLATE), else the system default is used", "--dispvm")
        {
            Metavar = "DISPOSABLE_TEMPLATE",
            Arity = Arity.Optional,
        })
    {
        Description = "run a command in a qube, or a qrexec service with --service",
        Positionals =
        [
            new("[VMNAME]", "VMNAME", "the qube to run the command in (not with --dispvm)"),
            new("COMMAND", "COMMAND", "command or service to run"),
            new("[ARG ...]", "ARG", "command arguments, joined to COMMAND with spaces"),
        ],
    };

    internal static int Main(string[] args) => Command.Run(Console.Out, Console.Error, () => Run(args));

    private static int Run(string[] args)
    {
        int verbosity = 1;
        bool passIo = false, service = false, autostart = true;
        string? dispvm = null, user = null, localcmd = null;
        List<string> operands = [];
        for (int i = 0; i < args.Length; i++)
        {
            string a = args[i];
            if (a == "--" || !Command.IsOption(a))
            {
                operands.AddRange(a == "--" ? args[(i + 1)..] : args[i..]);
                break;
            }
            foreach (Parsed parsed in Command.Read(args, ref i))
            {
                switch (parsed.Option?.Name)
                {
                    case "--verbose": verbosity++; break;
                    case "--quiet": verbosity--; break;
                    case "--pass-io": passIo = true; break;
                    case "--service": service = true; break;
                    case "--autostart": autostart = true; break;
                    case "--no-autostart": autostart = false; break;
                    case "--force-root" or "--gui" or "--no-gui" or "--no-shell" or "--filter-escape-chars" or "--no-filter-escape-chars" or "--no-colour-output" or "--no-colour-stderr": break;
                    case "--dispvm": dispvm = parsed.Value ?? string.Empty; break;
                    case "--user": user = parsed.Value; break;
                    case "--localcmd": localcmd = parsed.Value; break;
                    default: throw new UsageException($"unrecognized arguments: {parsed.Text}");
                }
            }
        }
        if (passIo)
        {
            verbosity--;
        }
        if (operands.Count < (dispvm == null ? 2 : 1))
        {
            throw new UsageException("the following arguments are required: " + (dispvm == null && operands.Count == 0 ? "VMNAME, COMMAND" : "COMMAND"));
        }
        string command = string.Join(' ', operands.GetRange(dispvm == null ? 1 : 0, operands.Count - (dispvm == null ? 1 : 0)));
        AdminClient client = new(SocketTransport.FromEnvironment());
        string target = dispvm == null ? operands[0] : dispvm.Length == 0 ? "@dispvm" : "@dispvm:" + dispvm;
        try
        {
            if (dispvm == null && !client.QubeExists(target))
            {
                throw new UsageException($"no such domain: '{target}'");
            }
        }
        catch (QubesException e)
        {
            Console.Error.WriteLine($"qvm-run: error: {e.Message}");
            return 1;
        }
        if (verbosity > 0)
        {
            Console.Error.WriteLine($"Running '{command}' on {target}");
        }
        string vm = target;
        try
        {
            if (dispvm != null)
            {
                vm = client.Call("admin.vm.CreateDisposable", dispvm.Length == 0 ? "dom0" : dispvm);
                client.Call("admin.vm.Start", vm);
            }
            else if (client.Call("admin.vm.CurrentState", vm).EndsWith("power_state=Halted", StringComparison.Ordinal))
            {
                if (!autostart)
                {
                    Console.Error.WriteLine($"qvm-run: error: Qube '{vm}' not started");
                    return 1;
                }
                client.Call("admin.vm.Start", vm);
            }
        }
        catch (QubesException e)
        {
            Console.Error.WriteLine($"{target}: {e.Message}");
            Kill(client, dispvm, vm, target);
            return 255;
        }
        try
        {
            int status = RunIn(vm, user ?? "DEFAULT", service ? command : "qubes.VMShell", service ? null : command + "; exit\n", passIo || localcmd != null, localcmd, wait: !service || passIo || dispvm != null || localcmd != null);
            if (status != 0 && verbosity > 0)
            {
                Console.Error.WriteLine($"{vm}: command failed with code: {status}");
            }
            return status;
        }
        finally
        {
            Kill(client, dispvm, vm, target);
        }
    }

    /// <summary>The disposable goes when the command ends (killed, it removes itself).</summary>
    private static void Kill(AdminClient client, string? dispvm, string vm, string target)
    {
        if (dispvm == null || vm == target)
        {
            return;
        }
        try
        {
            client.Call("admin.vm.Kill", vm);
        }
        catch (QubesException e) when (e.TypeName == "QubesVMNotStartedError")
        {
        }
    }

    /// <summary>Runs <paramref name="service"/> in <paramref name="vm"/> through qrexec-client; returns the remote exit status.</summary>
    private static int RunIn(string vm, string user, string service, string? input, bool passIo, string? localcmd, bool wait)
    {
        string client = Dom0Call.Client;
        List<string> argv = [client, .. Dom0Call.Arguments(vm, user, service, localcmd)];
        List<string> environment = Spawner.CurrentEnvironment();
        foreach ((string name, string value) in Dom0Call.Environment())
        {
            environment.RemoveAll(v => v.StartsWith(name + "=", StringComparison.Ordinal));
            environment.Add(name + "=" + value);
        }
        // the command's input through a pipe when there is some to give; without --pass-io the
        // remote program's input is empty and its output is dropped
        SafeFd? readEnd = null, writeEnd = null;
        if (input != null)
        {
            (readEnd, writeEnd) = Fd.Pipe();
        }
        SpawnedProcess? started;
        Errno error;
        using (readEnd)
        {
            started = Spawner.Start(client, argv, environment, readEnd?.Fd ?? (passIo ? 0 : -1), passIo ? 1 : -1, passIo ? 2 : -1, out error);
        }
        using SpawnedProcess? process = started;
        using (writeEnd)
        {
            if (writeEnd != null)
            {
                // a client that ended early closed the pipe: what is left to write goes nowhere (EPIPE)
                Fd.WriteAll(writeEnd.Fd, System.Text.Encoding.UTF8.GetBytes(input!));
                Span<byte> buffer = stackalloc byte[passIo ? 16384 : 0];
                int n;
                while (passIo && (n = Fd.Read(0, buffer)) > 0 && Fd.WriteAll(writeEnd.Fd, buffer[..n]) == Errno.None)
                {
                }
            }
        }
        if (process == null)
        {
            throw new IOException($"cannot start {client}: {error}");
        }
        if (!wait)
        {
            return 0;
        }
        process.WaitUntil(-1);
        return process.ExitCode!.Value;
    }
}
