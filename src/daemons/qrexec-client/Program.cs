using System;
using System.Collections.Generic;
using System.Globalization;
using System.Text;
using Qubes.Cli;
using Qubes.Interop.Linux;
using Qubes.Qrexec;
using Qubes.Qrexec.Runtime;
using Qubes.Qrexec.Services;
using Qubes.Qrexec.Transport;

namespace Qubes.Tools.QrexecClient;

/// <summary>qrexec-client [options] -d TARGET [-l LOCAL_CMD | -c IDENT,SRC_NAME,SRC_DOMID | -e] USER:COMMAND (spec §14.3).</summary>
internal static class Program
{
    /// <summary>The command line, with upstream's usage text.</summary>
    internal static Command Command { get; } = new("qrexec-client", HelpStyle.Getopt,
        Command.GetoptHelp,
        new Option("the domain to run the command in", "-d") { Metavar = "domain_name" },
        new Option("run local_prog with its standard input and output connected to the remote command", "-l") { Metavar = "local_prog" },
        new Option("exit after sending cmd", "-e"),
        new Option("always exit with 0 after command exits", "-E", "--no-exit-code"),
        new Option("enables replacing problematic bytes with '_' in command output", "-t"),
        new Option("the same as -t, for stderr", "-T"),
        new Option("waits for connection end even in case of VM-VM (-c)", "-W"),
        new Option("connect to existing process (response to trigger service call)", "-c") { Metavar = "request_id,src_domain_name,src_domain_id" },
        new Option("override default connection timeout of 10s (set 0 for no timeout)", "-w") { Metavar = "timeout" },
        new Option("kill the domain right before exiting", "-k"),
        new Option($"directory for qrexec socket, default: {QrexecProtocol.DefaultSocketDirectory}", "--socket-dir") { Metavar = "PATH" },
        new Option("send the given data before the provided stdin", "-p", "--prefix-data") { Metavar = "PREFIX-DATA" },
        new Option("use fd 0 (which must be socket) for both stdin and stdout", "--use-stdin-socket"))
    {
        Synopsis = "qrexec-client [-w timeout] [-W] [-t] [-T] [-E] [-k] [--socket-dir=PATH] [-p PREFIX-DATA] [--use-stdin-socket] "
            + "-d domain_name [-l local_prog|-c request_id,src_domain_name,src_domain_id|-e] user:remote_cmdline",
        UsageStatus = 1,
    };

    private sealed class Options
    {
        public string? Target;
        public string? LocalCommand;
        public string? Connect;
        public bool JustExec;
        public bool NoExitCode;
        public bool FilterOut;
        public bool FilterErr;
        public int Timeout = 10;
        public bool WaitEnd;
        public bool Kill;
        public string SocketDir = QrexecProtocol.DefaultSocketDirectory;
        public string? Prefix;
        public bool StdinSocket;
        public string? Command;
    }

    internal static int Main(string[] args)
    {
        ServiceRunner.IgnoreServiceSignals();
        Options? o = null;
        int usage = Command.Run(Console.Out, Console.Error, () =>
        {
            o = Parse(args);
            return 0;
        });
        if (o == null)
        {
            return usage;
        }
        int status = Run(o);
        if (o.Kill)
        {
            QubesdCall.Call(Environment.GetEnvironmentVariable("QUBESD_SOCKET") ?? QrexecProtocol.DefaultQubesdSocket, "admin.vm.Kill", o.Target!, string.Empty, out _);
        }
        return o.NoExitCode ? 0 : status;
    }

    /// <summary>The options; a usage error when they are not a whole call.</summary>
    private static Options Parse(string[] args)
    {
        Options o = new();
        int i = 0;
        for (; i < args.Length; i++)
        {
            if (args[i] == "--")
            {
                i++;
                break;
            }
            if (!Command.IsOption(args[i]))
            {
                break;
            }
            foreach (Parsed parsed in Command.Read(args, ref i))
            {
                switch (parsed.Option?.Name)
                {
                    case "-e":
                        o.JustExec = true;
                        break;
                    case "-E":
                        o.NoExitCode = true;
                        break;
                    case "-t":
                        o.FilterOut = true;
                        break;
                    case "-T":
                        o.FilterErr = true;
                        break;
                    case "-W":
                        o.WaitEnd = true;
                        break;
                    case "-k":
                        o.Kill = true;
                        break;
                    case "--use-stdin-socket":
                        o.StdinSocket = true;
                        break;
                    case "-d":
                        o.Target = parsed.Value;
                        break;
                    case "-l":
                        o.LocalCommand = parsed.Value;
                        break;
                    case "-c":
                        o.Connect = parsed.Value;
                        break;
                    case "-w":
                        if (!int.TryParse(parsed.Value, NumberStyles.None, CultureInfo.InvariantCulture, out o.Timeout))
                        {
                            throw new UsageException($"invalid connection timeout '{parsed.Value}'");
                        }
                        break;
                    case "-p":
                        o.Prefix = parsed.Value;
                        break;
                    case "--socket-dir":
                        o.SocketDir = parsed.Value!;
                        break;
                    default:
                        throw new UsageException($"unknown option {parsed.Text}");
                }
            }
        }
        if (args.Length - i != 1 || o.Target == null)
        {
            throw new UsageException(o.Target == null ? "-d is required" : "expected one user:remote_cmdline");
        }
        o.Command = args[i];
        int modes = (o.JustExec ? 1 : 0) + (o.LocalCommand != null ? 1 : 0) + (o.Connect != null ? 1 : 0);
        if (modes > 1 || (o.LocalCommand != null && o.StdinSocket))
        {
            throw new UsageException("-l, -c and -e are alternatives, and -l cannot go with --use-stdin-socket");
        }
        return o;
    }

    private static bool IsDom0(string target) => target is "dom0" or "@adminvm" or "uuid:00000000-0000-0000-0000-000000000000";

    private static int Run(Options o)
    {
        if (o.Connect != null)
        {
            return AnswerPendingCall(o);
        }
        if (IsDom0(o.Target!))
        {
            return LocalDom0Call(o);
        }
        using DaemonConnection? daemon = DaemonConnection.Open(o.SocketDir, o.Target!, out string? error);
        if (daemon == null)
        {
            Console.Error.WriteLine($"qrexec-client: {error}");
            return QrexecProtocol.ExitProblem;
        }
        MessageType type = o.JustExec ? MessageType.JustExec : MessageType.ExecCmdline;
        TimeSpan wait = o.Timeout == 0 ? System.Threading.Timeout.InfiniteTimeSpan : TimeSpan.FromSeconds(o.Timeout);
        (uint Domain, uint Port)? reply = daemon.Command(Messages.ExecCommand(type, 0, 0, o.Command!), wait, out error);
        if (reply is not { } r)
        {
            Console.Error.WriteLine($"qrexec-client: {error}");
            return QrexecProtocol.ExitProblem;
        }
        using IChannelFactory factory = ChannelFactory.FromEnvironment();
        using IQrexecChannel channel = factory.Listen((int)r.Domain, (int)r.Port, QrexecProtocol.DataRingSize, QrexecProtocol.DataRingSize);
        uint version = Io.ServerHandshake(channel, wait, out bool connected);
        if (!connected)
        {
            Console.Error.WriteLine("qrexec-client: the remote end did not connect");
            return QrexecProtocol.ExitProblem;
        }
        if (version == 0)
        {
            Console.Error.WriteLine("qrexec-client: data handshake failed");
            return QrexecProtocol.ExitProblem;
        }
        return Caller(o, channel, version, o.Target!);
    }

    /// <summary>The data phase as caller, on our stdio or a local command's socket pair.</summary>
    private static int Caller(Options o, IQrexecChannel channel, uint version, string remote)
    {
        CallerIo io = new()
        {
            Input = o.JustExec ? -1 : 0,
            Output = o.StdinSocket ? 0 : 1,
            Error = 2,
            PrefixData = o.Prefix == null ? null : Encoding.UTF8.GetBytes(o.Prefix),
            FilterOutput = o.FilterOut,
            FilterError = o.FilterErr,
        };
        LocalProgram? program = null;
        if (o.LocalCommand != null)
        {
            program = LocalProgram.Start([o.LocalCommand], shell: true, new Dictionary<string, string> { ["QREXEC_REMOTE_DOMAIN"] = remote }, 2, out string? error);
            if (program == null)
            {
                Console.Error.WriteLine($"qrexec-client: {error}");
                return QrexecProtocol.ExitProblem;
            }
        }
        return LocalProgram.RunCaller(channel, version, io, program, "qrexec-client");
    }

    /// <summary>-c: a policy program answering a pending VM call (§8.2 step 5), to a VM or to dom0.</summary>
    private static int AnswerPendingCall(Options o)
    {
        string[] parts = o.Connect!.Split(',');
        if (parts.Length != 3 || Encoding.ASCII.GetByteCount(parts[0]) >= QrexecProtocol.IdentSize || IsDom0(parts[1])
            || !uint.TryParse(parts[2], NumberStyles.None, CultureInfo.InvariantCulture, out uint sourceId) || sourceId == 0)
        {
            Console.Error.WriteLine("qrexec-client: -c needs IDENT,SRC_NAME,SRC_DOMID");
            return QrexecProtocol.ExitProblem;
        }
        byte[] ident = Messages.Ident(parts[0]);
        string sourceDaemon = sourceId.ToString(CultureInfo.InvariantCulture);
        if (IsDom0(o.Target!))
        {
            using DaemonConnection? own = DaemonConnection.Open(o.SocketDir, sourceDaemon, out string? error);
            (uint Domain, uint Port)? reply = own?.Command(Messages.ServiceConnect(0, 0, ident), expectReply: true);
            if (reply is not { } r)
            {
                Console.Error.WriteLine($"qrexec-client: {error ?? "the daemon refused SERVICE_CONNECT"}");
                return QrexecProtocol.ExitProblem;
            }
            using IChannelFactory factory = ChannelFactory.FromEnvironment();
            using IQrexecChannel? channel = factory.Connect((int)r.Domain, (int)r.Port, TimeSpan.FromSeconds(5), out error);
            if (channel == null)
            {
                Console.Error.WriteLine($"qrexec-client: {error}");
                return QrexecProtocol.ExitProblem;
            }
            uint version = Io.DataHandshake(channel, sendFirst: false);
            if (version == 0)
            {
                return QrexecProtocol.ExitProblem;
            }
            // a call to dom0: the command names no user, the service runs as this process, and its status is ours
            return ServiceRunner.Run(channel, version, ServiceRunner.PrepareDom0(o.Command!), justExec: false, dom0: true);
        }
        using DaemonConnection? target = DaemonConnection.Open(o.SocketDir, o.Target!, out string? targetError);
        (uint Domain, uint Port)? allocated = target?.Command(Messages.ExecCommand(MessageType.ExecCmdline, sourceId, 0, o.Command!), expectReply: true);
        if (allocated is not { } a)
        {
            Console.Error.WriteLine($"qrexec-client: {targetError ?? "the target daemon refused the command"}");
            return o.Target!.Length > 0 ? 137 : QrexecProtocol.ExitProblem;
        }
        using DaemonConnection? source = DaemonConnection.Open(o.SocketDir, sourceDaemon, out string? sourceError);
        if (source?.Command(Messages.ServiceConnect(a.Domain, a.Port, ident), expectReply: false) == null)
        {
            Console.Error.WriteLine($"qrexec-client: {sourceError}");
            return 137;
        }
        if (o.WaitEnd)
        {
            target!.WaitClosed();
        }
        return 0;
    }

    /// <summary>dom0 → dom0: the service is an executable run here in place of the client.</summary>
    private static int LocalDom0Call(Options o)
    {
        string command = o.Command!;
        if (!command.StartsWith("DEFAULT:", StringComparison.Ordinal) || o.LocalCommand != null
            || !ServiceCommand.TryParse(command, out ServiceCommand? parsed, out _) || !parsed!.IsRpc)
        {
            Console.Error.WriteLine("qrexec-client: a dom0 call must be DEFAULT:QUBESRPC ...");
            return QrexecProtocol.ExitProblem;
        }
        ServiceLocation location = ServiceLookup.Find(parsed.LookupName, parsed.ServiceName, Environment.GetEnvironmentVariable(ServiceEnvironment.ServicePathVariable));
        if (location.Kind != ServiceKind.Executable)
        {
            Console.Error.WriteLine($"qrexec-client: service {parsed.LookupName}: {location.Error ?? location.Kind.ToString()}");
            return location.Kind == ServiceKind.NotFound ? QrexecProtocol.ExitServiceNotFound : QrexecProtocol.ExitProblem;
        }
        using SpawnedProcess? process = Spawner.Start(location.Path!, ServiceEnvironment.BuildArgv(location.Path!, parsed),
            ServiceEnvironment.Build(ServiceEnvironment.Current(), parsed, null), 0, 1, 2, out Errno error);
        if (process == null)
        {
            return error == Errno.ENOENT ? QrexecProtocol.ExitServiceNotFound : QrexecProtocol.ExitProblem;
        }
        process.TryReap(block: true);
        return process.ExitCode ?? QrexecProtocol.ExitProblem;
    }
}
