using System;
using System.Globalization;
using System.IO;
using System.Threading;
using Qubes.Cli;
using Qubes.Interop.Linux;
using Qubes.Qrexec;
using Qubes.Qrexec.Runtime;
using Qubes.Qrexec.Transport;

namespace Qubes.Tools.QrexecDaemon;

/// <summary>
/// qrexec-daemon [options] DOMID DOMAIN-NAME [DEFAULT-USER]. Without --direct it starts itself in the
/// background with --direct, waits for the agent's handshake, and exits 0 (ready), 3 (timeout) or 1.
/// </summary>
internal static class Program
{
    /// <summary>The command line, with upstream's usage text.</summary>
    internal static Command Command { get; } = new("qrexec-daemon", HelpStyle.Getopt,
        Command.GetoptHelp,
        new Option("quiet mode", "-q", "--quiet"),
        new Option($"directory for qrexec socket, default: {QrexecProtocol.DefaultSocketDirectory}", "--socket-dir") { Metavar = "PATH" },
        new Option($"program to execute to check policy, default: {QrexecProtocol.DefaultPolicyProgram}", "-p", "--policy-program") { Metavar = "PATH" },
        new Option($"socket of the policy daemon, asked before the policy program, default: {QrexecProtocol.DefaultPolicySocket}", "--policy-socket") { Metavar = "PATH" },
        new Option($"socket of qubesd, for dom0's admin services, default: {QrexecProtocol.DefaultQubesdSocket}", "--qubesd-socket") { Metavar = "PATH" },
        new Option("run directly, don't daemonize, log to stderr", "-D", "--direct"),
        new Option("domain UUID, mandatory", "-u", "--uuid") { Metavar = "UUID" },
        // the background child tells its parent it is up
        new Option("write \"ready\" to stdout once the agent is connected", "--ready-on-stdout") { Hidden = true })
    {
        Synopsis = "qrexec-daemon [options] domainid domain-name [default user]",
        UsageStatus = 1,
    };

    internal static int Main(string[] args) => Command.Run(Console.Out, Console.Error, () => Run(args));

    private static int Run(string[] args)
    {
        // what this daemon inherited from whoever started it goes no further
        Qubes.Interop.Linux.Fd.CloseInheritedOnExec();
        ServiceRunner.IgnoreServiceSignals(); // dom0's services run from here
        string? uuid = null;
        string socketDir = QrexecProtocol.DefaultSocketDirectory;
        string policyProgram = QrexecProtocol.DefaultPolicyProgram;
        string policySocket = QrexecProtocol.DefaultPolicySocket;
        string qubesdSocket = QrexecProtocol.DefaultQubesdSocket;
        bool direct = false;
        bool quiet = false;
        bool readyOnStdout = false;
        System.Collections.Generic.List<Parsed> parsedOptions = Command.ReadAll(args, out System.Collections.Generic.List<string> positional);
        foreach (Parsed parsed in parsedOptions)
        {
            switch (parsed.Option?.Name)
            {
                case "-u":
                    uuid = parsed.Value;
                    break;
                case "--socket-dir":
                    socketDir = parsed.Value!;
                    break;
                case "-p":
                    policyProgram = parsed.Value!;
                    break;
                case "--policy-socket":
                    policySocket = parsed.Value!;
                    break;
                case "--qubesd-socket":
                    qubesdSocket = parsed.Value!;
                    break;
                case "-D":
                    direct = true;
                    break;
                case "--ready-on-stdout":
                    readyOnStdout = true;
                    break;
                case "-q":
                    quiet = true;
                    break;
                default:
                    throw new UsageException($"unknown option {parsed.Text}");
            }
        }
        if (uuid == null || positional.Count is < 2 or > 3
            || !int.TryParse(positional[0], NumberStyles.None, CultureInfo.InvariantCulture, out int domid) || domid <= 0)
        {
            throw new UsageException(uuid == null ? "--uuid is required" : "DOMID must be a number > 0");
        }
        string name = positional[1];
        string user = positional.Count == 3 ? positional[2] : "user";
        if (!direct)
        {
            return StartInBackground(args, name, quiet);
        }
        DaemonOptions options = new(domid, name, user, uuid, socketDir, policyProgram, policySocket, qubesdSocket);
        using Qubes.Qrexec.Runtime.QrexecDaemon daemon = new(ChannelFactory.FromEnvironment(), options);
        int started = daemon.Start(Timeout.InfiniteTimeSpan);
        if (started != 0)
        {
            return started;
        }
        if (readyOnStdout)
        {
            Console.Out.Write("ready\n");
            Console.Out.Flush();
            Console.Out.Close();
        }
        return daemon.Run();
    }

    /// <summary>The upstream default mode: the daemon runs in the background, logging to /var/log/qubes; we wait for its agent.</summary>
    private static unsafe int StartInBackground(string[] args, string name, bool quiet)
    {
        int timeout = 60;
        string? text = Environment.GetEnvironmentVariable("QREXEC_STARTUP_TIMEOUT");
        if (int.TryParse(text, NumberStyles.AllowLeadingSign, CultureInfo.InvariantCulture, out int t) && t > 0)
        {
            timeout = t;
        }
        bool noWait = Environment.GetEnvironmentVariable("QREXEC_STARTUP_NOWAIT") != null;
        string logDir = "/var/log/qubes";
        Directory.CreateDirectory(logDir);
        int log = Libc.open(Path.Combine(logDir, $"qrexec.{name}.log"), 0x441 /* O_WRONLY|O_CREAT|O_APPEND */ | Libc.O_CLOEXEC, 0x1b4);
        int* pipe = stackalloc int[2];
        Libc.pipe2(pipe, Libc.O_CLOEXEC);
        // this program by its name (in the native build, a link to the executable of all programs)
        string self = Path.Combine(AppContext.BaseDirectory, "qrexec-daemon");
        string[] argv = new string[args.Length + 3];
        argv[0] = self;
        argv[1] = "--direct";
        argv[2] = "--ready-on-stdout";
        args.CopyTo(argv, 3);
        using SpawnedProcess? child = Spawner.Start(self, argv, Spawner.CurrentEnvironment(), -1, noWait ? log : pipe[1], log, out Errno error);
        Libc.close(pipe[1]);
        if (log >= 0)
        {
            Libc.close(log);
        }
        if (child == null)
        {
            Console.Error.WriteLine($"qrexec-daemon: cannot start: {error}");
            return 1;
        }
        if (noWait)
        {
            return 0;
        }
        if (!quiet)
        {
            Console.Error.Write("Waiting for VM's qrexec agent.");
        }
        Span<byte> answer = stackalloc byte[6];
        for (int waited = 0; waited < timeout; waited++)
        {
            if (Qubes.Interop.Linux.Fd.PollIn(pipe[0], 1000) != 0) // ready, or the child closed it (exited)
            {
                int n = Io.ReadExact(pipe[0], answer, 1000);
                Libc.close(pipe[0]);
                if (!quiet)
                {
                    Console.Error.WriteLine(n == answer.Length ? "connected" : string.Empty);
                }
                return n == answer.Length ? 0 : 1;
            }
            if (!quiet)
            {
                Console.Error.Write('.');
            }
        }
        Libc.close(pipe[0]);
        if (!quiet)
        {
            Console.Error.WriteLine();
        }
        Console.Error.WriteLine($"Cannot connect to '{name}' qrexec agent for {timeout} seconds, giving up");
        return 3;
    }
}
