using System;
using System.Collections.Generic;
using System.Diagnostics;
using System.IO;
using System.Threading.Tasks;
using Qubes.Core;
using Qubes.Core.Api;

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
    private const string Usage = "usage: qvm-run [--verbose] [--quiet] [--help] [--user USER] [--no-autostart] [--pass-io] [--localcmd COMMAND] [--service] [--dispvm [DISPVM]] [--no-gui] VMNAME COMMAND";

    private static int Main(string[] args)
    {
        int verbosity = 1;
        bool passIo = false, service = false, autostart = true;
        string? dispvm = null, user = null, localcmd = null;
        List<string> operands = [];
        for (int i = 0; i < args.Length; i++)
        {
            string a = args[i];
            if (operands.Count > 0 || a == "--" || !a.StartsWith('-'))
            {
                operands.AddRange(a == "--" && operands.Count == 0 ? args[(i + 1)..] : args[i..]);
                break;
            }
            switch (a)
            {
                case "-v" or "--verbose": verbosity++; break;
                case "-q" or "--quiet": verbosity--; break;
                case "-p" or "--pass-io": passIo = true; break;
                case "--service": service = true; break;
                case "-n" or "--no-autostart": autostart = false; break;
                case "--gui" or "--no-gui" or "--no-shell" or "--filter-escape-chars" or "--no-filter-escape-chars" or "--no-colour-output" or "--no-colour-stderr": break;
                case "--dispvm": dispvm = string.Empty; break;
                case "-u" or "--user" when i + 1 < args.Length: user = args[++i]; break;
                case "--localcmd" when i + 1 < args.Length: localcmd = args[++i]; break;
                case "-h" or "--help":
                    Console.WriteLine(Usage);
                    return 0;
                default:
                    if (a.StartsWith("--dispvm=", StringComparison.Ordinal))
                    {
                        dispvm = a["--dispvm=".Length..];
                        break;
                    }
                    return UsageError($"unrecognized arguments: {a}");
            }
        }
        if (passIo)
        {
            verbosity--;
        }
        if (operands.Count < (dispvm == null ? 2 : 1))
        {
            return UsageError("the following arguments are required: " + (dispvm == null && operands.Count == 0 ? "VMNAME, COMMAND" : "COMMAND"));
        }
        string command = string.Join(' ', operands.GetRange(dispvm == null ? 1 : 0, operands.Count - (dispvm == null ? 1 : 0)));
        AdminClient client = new(SocketTransport.FromEnvironment());
        string target = dispvm == null ? operands[0] : dispvm.Length == 0 ? "@dispvm" : "@dispvm:" + dispvm;
        try
        {
            if (dispvm == null && !client.QubeExists(target))
            {
                return UsageError($"no such domain: '{target}'");
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
        string? state = Environment.GetEnvironmentVariable("QUBES_STATE_DIR");
        ProcessStartInfo psi = new(Path.Combine(AppContext.BaseDirectory, "qrexec-client")) { UseShellExecute = false };
        if (state != null)
        {
            SystemLayout layout = new(state);
            psi.ArgumentList.Add("--socket-dir=" + layout.QrexecSockets);
            psi.Environment["QUBES_LOHV_DIR"] = layout.Broker;
        }
        psi.ArgumentList.Add("-d");
        psi.ArgumentList.Add(vm);
        if (localcmd != null)
        {
            psi.ArgumentList.Add("-l");
            psi.ArgumentList.Add(localcmd);
        }
        psi.ArgumentList.Add($"{user}:QUBESRPC {service} dom0");
        psi.RedirectStandardInput = input != null || !passIo;
        psi.RedirectStandardOutput = !passIo;
        psi.RedirectStandardError = !passIo;
        using Process process = Process.Start(psi)!;
        Task? drain = null;
        if (!passIo)
        {
            drain = Task.WhenAll(process.StandardOutput.BaseStream.CopyToAsync(Stream.Null), process.StandardError.BaseStream.CopyToAsync(Stream.Null));
        }
        if (input != null)
        {
            process.StandardInput.Write(input);
            if (passIo)
            {
                Console.OpenStandardInput().CopyTo(process.StandardInput.BaseStream);
            }
            process.StandardInput.Close();
        }
        else if (!passIo)
        {
            process.StandardInput.Close();
        }
        if (!wait)
        {
            return 0;
        }
        process.WaitForExit();
        drain?.Wait();
        return process.ExitCode;
    }

    private static int UsageError(string message)
    {
        Console.Error.WriteLine(Usage);
        Console.Error.WriteLine($"qvm-run: error: {message}");
        return 2;
    }
}
