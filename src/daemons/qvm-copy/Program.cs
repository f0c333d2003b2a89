using System;
using System.Collections.Generic;
using System.Globalization;
using System.IO;
using System.Runtime.InteropServices;
using System.Text;
using System.Threading;
using Qubes.Cli;
using Qubes.FileCopy;
using Qubes.Interop.Linux;
using Qubes.Qrexec;
using Qubes.Qrexec.Runtime;

namespace Qubes.Tools.QvmCopy;

/// <summary>
/// The sending side of qubes.Filecopy in a qube, one program under upstream's five names:
/// <c>qvm-copy</c> and <c>qvm-move</c> (the target chosen by the policy's <c>ask</c>, as
/// <c>@default</c>), <c>qvm-copy-to-vm</c> and <c>qvm-move-to-vm</c> (the target named first),
/// and <c>qfile-agent</c>, the sender alone: it writes the transfer to its standard output and
/// reads the reply from its standard input (upstream's four run it under qrexec-client-vm; these
/// make the call themselves). In dom0
/// (where no qrexec agent listens) <c>qvm-copy-to-vm</c> and <c>qvm-move-to-vm</c> are dom0's, and
/// <c>qvm-copy</c> and <c>qvm-move</c> refuse, as upstream's do.
/// </summary>
internal static class Program
{
    /// <summary>Bytes sent between two progress lines (upstream's PROGRESS_NOTIFY_DELTA).</summary>
    private const long ProgressDelta = 15 * 1000 * 1000;

    /// <summary>The program for the name it was started by.</summary>
    internal static int Main(string[] args)
    {
        string name = Command.InvokedName();
        // where no qrexec agent listens, this is dom0: upstream's dom0 tools, which copy through qvm-run
        bool dom0 = !File.Exists(AgentRequest.DefaultSocket);
        return name switch
        {
            "qvm-copy" or "qvm-move" or "qvm-copy-to-vm" or "qvm-move-to-vm" => Send(args, name, dom0),
            "qfile-agent" => Agent(args),
            _ => Unrecognized(name),
        };
    }

    private static int NotInDom0(string name)
    {
        Console.Out.WriteLine($"{name} is not supported in dom0; use {name}-to-vm instead.");
        return 1;
    }

    /// <summary>
    /// dom0's qvm-copy-to-vm / qvm-move-to-vm VM FILE...: the transfer through
    /// <c>qvm-run --pass-io --service VM qubes.Filecopy</c> (built beside this program), sent from
    /// here. A move removes the files only once the receiver has confirmed them.
    /// </summary>
    private static int SendFromDom0(string target, List<string> files, bool ignoreSymlinks, string name)
    {
        bool move = name == "qvm-move-to-vm";
        (SafeFd serviceIn, SafeFd toService) = Fd.Pipe();
        (SafeFd fromService, SafeFd serviceOut) = Fd.Pipe();
        string qvmRun = Path.Combine(AppContext.BaseDirectory, "qvm-run");
        SpawnedProcess? run;
        using (serviceIn)
        using (serviceOut)
        {
            List<string> environment = [];
            foreach (System.Collections.DictionaryEntry e in Environment.GetEnvironmentVariables())
            {
                environment.Add($"{e.Key}={e.Value}");
            }
            run = Spawner.Start(qvmRun, ["qvm-run", "--no-gui", "--pass-io", "--service", "--", target, "qubes.Filecopy"], environment, serviceIn.Fd, serviceOut.Fd, 2, out Errno error);
            if (run == null)
            {
                toService.Dispose();
                fromService.Dispose();
                Console.Error.WriteLine($"{name}: cannot start {qvmRun}: {FatalError.ErrorText(error)}");
                return 1;
            }
        }
        bool sent = false;
        using (run)
        {
            using (toService)
            using (fromService)
            {
                try
                {
                    SendAll(toService.Fd, fromService.Fd, files, ignoreSymlinks, progressTotal: -1);
                    sent = true;
                }
                catch (FileCopyException e)
                {
                    Console.Error.WriteLine(e.Message);
                }
            }
            run.WaitUntil(long.MaxValue);
            int status = run.ExitCode ?? 128 + run.TermSignal;
            if (!sent)
            {
                return status != 0 ? status : 1;
            }
            if (status == 0 && move)
            {
                foreach (string file in files)
                {
                    DirectoryTree.Remove(file);
                }
            }
            return status;
        }
    }

    private static int Unrecognized(string name)
    {
        Console.Out.WriteLine($"Invoked with unrecognized name {name}, cannot determine operation to perform");
        return 1;
    }

    /// <summary>The command line of <c>qvm-copy</c>; the other names' differ only in their usage and text.</summary>
    internal static Command Command { get; } = CommandFor("qvm-copy");

    private static Command CommandFor(string name)
    {
        bool toVm = name.EndsWith("-to-vm", StringComparison.Ordinal);
        return new(name, HelpStyle.Getopt,
            new Option("Do not ignore symbolic links (default).", "--no-ignore-symlinks"),
            new Option("Ignore symbolic links.", "--ignore-symlinks"),
            new Option("Show a progress indicator (default on a terminal).", "--with-progress"),
            new Option("Do not show a progress indicator.", "--without-progress"),
            new Option("Show this message and exit.", "-h", "--help") { IsHelp = true })
        {
            Synopsis = $"{name} [--without-progress] [--ignore-symlinks] {(toVm ? "destination_qube_name " : string.Empty)}FILE [FILE ...]",
            Epilog = (name.StartsWith("qvm-move", StringComparison.Ordinal) ? "Move" : "Copy")
                + " FILE to ~/QubesIncoming/[THIS QUBE'S NAME]/ in the destination qube.\n\n"
                + "You will be prompted to select the destination qube. If FILE is a directory, it will be copied recursively.\n"
                + "If there is a conflict, later options override earlier options."
                + (toVm ? "\nIn order to avoid typing target qube name twice, use qvm-copy/qvm-move instead of qvm-copy-to-vm/qvm-move-to-vm." : string.Empty),
            UsageStatus = 1,
        };
    }

    private static int Send(string[] args, string name, bool dom0)
    {
        bool move = name.StartsWith("qvm-move", StringComparison.Ordinal);
        bool toVm = name.EndsWith("-to-vm", StringComparison.Ordinal);
        Command command = name == Command.Prog ? Command : CommandFor(name);
        return command.Run(Console.Out, Console.Error, () =>
        {
            bool? progress = null;
            bool ignoreSymlinks = false;
            List<Parsed> options = command.ReadOptions(args, out int i);
            foreach (Parsed parsed in options)
            {
                switch (parsed.Option?.Name)
                {
                    case "--without-progress":
                        progress = false;
                        break;
                    case "--with-progress":
                        progress = true;
                        break;
                    case "--ignore-symlinks":
                        ignoreSymlinks = true;
                        break;
                    case "--no-ignore-symlinks":
                        ignoreSymlinks = false;
                        break;
                    default:
                        throw new UsageException($"unrecognized option '{parsed.Text}'");
                }
            }
            List<string> rest = [.. args[i..]];
            if (dom0 && !toVm)
            {
                return NotInDom0(name);
            }
            if (rest.Count < (toVm ? 2 : 1))
            {
                throw new UsageException(string.Empty);
            }
            if (dom0)
            {
                return SendFromDom0(rest[0], rest[1..], ignoreSymlinks, name);
            }
            return Send(rest, progress, ignoreSymlinks, move, toVm, name);
        });
    }

    private static int Send(List<string> rest, bool? progress, bool ignoreSymlinks, bool move, bool toVm, string name)
    {
        string target = "@default";
        if (toVm)
        {
            Console.Error.WriteLine("In order to avoid typing target qube name twice, use qvm-copy/qvm-move instead of qvm-copy-to-vm/qvm-move-to-vm.");
            target = rest[0];
            rest.RemoveAt(0);
        }
        // one trailing slash goes, as upstream's "${@%/}"
        string[] sources = [.. rest.ConvertAll(static s => s.Length > 1 && s.EndsWith('/') ? s[..^1] : s)];
        // a bar on a terminal (or when asked for), nothing when quiet
        bool showProgress = progress ?? isatty(2) != 0;
        SourceTreeSummary summary;
        try
        {
            summary = SourceTree.Check(sources, ignoreSymlinks, countBytes: showProgress);
        }
        catch (FatalError e)
        {
            return e.Report(name, Console.Error);
        }
        string service = summary.UnsafeNames ? "qubes.Filecopy+allow-all-names" : "qubes.Filecopy";
        int status = Call(target, service, sources, ignoreSymlinks, showProgress ? (long)summary.Bytes : -1, name);
        if (status != 0)
        {
            return status;
        }
        if (move)
        {
            foreach (string source in sources)
            {
                DirectoryTree.Remove(source);
            }
        }
        return 0;
    }

    /// <summary>
    /// The call itself: handed to the qrexec agent on pipes, which it relays to the service while
    /// the transfer is written here (upstream runs qrexec-client-vm with qfile-agent for this; the
    /// two programs' starts are a good part of a small copy). The service's stderr is passed
    /// through with terminal escapes replaced, as upstream's --filter-escape-chars-stderr does.
    /// Returns the call's status: the receiver's, or the sender's failure (1).
    /// </summary>
    private static int Call(string target, string service, string[] sources, bool ignoreSymlinks, long progressTotal, string name)
    {
        (SafeFd serviceIn, SafeFd toService) = Fd.Pipe();
        (SafeFd fromService, SafeFd serviceOut) = Fd.Pipe();
        (SafeFd serviceErrorsIn, SafeFd serviceErrors) = Fd.Pipe();
        Libc.fcntl(toService.Fd, Libc.F_SETPIPE_SZ, QrexecProtocol.FastPathDataRingSize);
        int status = 1;
        bool handedOver = false;
        // the agent answers when the call is over: the request waits on its own thread
        Thread request = new(() =>
        {
            status = AgentRequest.Send(AgentRequest.DefaultSocket, null, target, service, [serviceIn.Fd, serviceOut.Fd, serviceErrors.Fd], name,
                out SafeFd? trigger, out _, out _, out handedOver, sent: () =>
                {
                    // the agent holds its own copies now: these ends are the service's alone
                    serviceIn.Dispose();
                    serviceOut.Dispose();
                    serviceErrors.Dispose();
                });
            trigger?.Dispose();
            serviceIn.Dispose();
            serviceOut.Dispose();
            serviceErrors.Dispose();
        }) { IsBackground = true, Name = "qrexec request" };
        Thread errors = new(() => DataPump.CopyFiltered(serviceErrorsIn.Fd, 2)) { IsBackground = true, Name = "service stderr" };
        request.Start();
        errors.Start();
        string? failure = null;
        using (toService)
        using (fromService)
        {
            try
            {
                SendAll(toService.Fd, fromService.Fd, sources, ignoreSymlinks, progressTotal);
            }
            catch (FileCopyException e)
            {
                failure = e.Message;
            }
        }
        request.Join();
        errors.Join();
        serviceErrorsIn.Dispose();
        if (!handedOver)
        {
            // refused (said already), or the agent could not be asked or did not take the call over
            if (status < 0)
            {
                Console.Error.WriteLine($"{name}: the qrexec agent did not take the call over");
            }
            return status > 0 ? status : 1;
        }
        if (failure != null)
        {
            new FatalError(failure, Errno.None).Report("qfile-agent", Console.Error);
            return status != 0 ? status : 1;
        }
        return status;
    }

    /// <summary>qfile-agent [--ignore-symlinks] [--] FILE...: the transfer on stdout, the reply on stdin.</summary>
    private static int Agent(string[] args)
    {
        bool ignoreSymlinks = false;
        bool options = true;
        List<string> paths = [];
        for (int i = 0; i < args.Length; i++)
        {
            if (options && args[i] == "--ignore-symlinks")
            {
                ignoreSymlinks = true;
                continue;
            }
            if (options && args[i] == "--")
            {
                options = false;
                continue;
            }
            if (args[i].Length == 0)
            {
                return new FatalError($"Invalid empty argument {i + 1}", Errno.EINVAL).Report("qfile-agent", Console.Error);
            }
            paths.Add(args[i]);
        }
        long total = Environment.GetEnvironmentVariable("PROGRESS_TYPE") == "console"
            && long.TryParse(Environment.GetEnvironmentVariable("FILECOPY_TOTAL_BYTES"), NumberStyles.None, CultureInfo.InvariantCulture, out long t) ? t : -1;
        try
        {
            SendAll(1, 0, paths, ignoreSymlinks, total);
            return 0;
        }
        catch (FileCopyException e)
        {
            return new FatalError(e.Message, Errno.None).Report("qfile-agent", Console.Error);
        }
    }

    /// <summary>
    /// Sends <paramref name="paths"/> on <paramref name="output"/> and checks the reply read from
    /// <paramref name="replies"/>; with a <paramref name="progressTotal"/> (else −1) a progress
    /// line on stderr every 15 MB and at the end. Throws <see cref="FileCopyException"/>.
    /// </summary>
    private static void SendAll(int output, int replies, IEnumerable<string> paths, bool ignoreSymlinks, long progressTotal)
    {
        long shown = 0;
        Action<long>? progress = progressTotal < 0 ? null : sent =>
        {
            if (sent > shown + ProgressDelta)
            {
                shown = sent;
                ShowProgress(sent, progressTotal, done: false);
            }
        };
        Packer packer = new(output, replies, ignoreQuota: false, progress, ignoreSymlinks);
        foreach (string path in paths)
        {
            packer.Send(path);
        }
        packer.Finish();
        if (progressTotal >= 0)
        {
            ShowProgress(packer.Sent, progressTotal, done: true);
        }
    }

    private static void ShowProgress(long sent, long total, bool done)
    {
        string line = $"sent {(sent + 1023) / 1024}/{(total + 1023) / 1024} KB\r" + (done ? "\n" : string.Empty);
        Fd.WriteAll(2, Encoding.ASCII.GetBytes(line));
    }

    [DllImport("libc.so.6")]
    private static extern int isatty(int fd);
}
