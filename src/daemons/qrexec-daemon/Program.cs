using System;
using System.Globalization;
using System.IO;
using System.Threading;
using Qubes.Interop.Linux;
using Qubes.Qrexec;
using Qubes.Qrexec.Processes;
using Qubes.Qrexec.Runtime;
using Qubes.Qrexec.Transport;

namespace Qubes.Tools.QrexecDaemon;

/// <summary>
/// qrexec-daemon [options] DOMID DOMAIN-NAME [DEFAULT-USER]. Without --direct it starts itself in the
/// background with --direct, waits for the agent's handshake, and exits 0 (ready), 3 (timeout) or 1.
/// </summary>
internal static class Program
{
    private const string Usage = "usage: qrexec-daemon [-q] [-D|--direct] -u UUID|--uuid=UUID [--socket-dir=PATH] [-p PROG|--policy-program=PROG] [--policy-socket=PATH] [--qubesd-socket=PATH] DOMID DOMAIN-NAME [DEFAULT-USER]";

    private static int Main(string[] args)
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
        System.Collections.Generic.List<string> positional = [];
        for (int i = 0; i < args.Length; i++)
        {
            string a = args[i];
            string? v;
            if ((v = CommandLine.OptionValue(args, ref i, "--uuid", "-u")) != null)
            {
                uuid = v;
            }
            else if ((v = CommandLine.OptionValue(args, ref i, "--socket-dir", null)) != null)
            {
                socketDir = v;
            }
            else if ((v = CommandLine.OptionValue(args, ref i, "--policy-program", "-p")) != null)
            {
                policyProgram = v;
            }
            else if ((v = CommandLine.OptionValue(args, ref i, "--policy-socket", null)) != null)
            {
                policySocket = v;
            }
            else if ((v = CommandLine.OptionValue(args, ref i, "--qubesd-socket", null)) != null)
            {
                qubesdSocket = v;
            }
            else if (a is "-D" or "--direct")
            {
                direct = true;
            }
            else if (a == "--ready-on-stdout")
            {
                readyOnStdout = true; // internal: the background child tells its parent it is up
            }
            else if (a is "-q" or "--quiet")
            {
                quiet = true;
            }
            else if (a is "-h" or "--help")
            {
                Console.WriteLine(Usage);
                return 0;
            }
            else if (a.StartsWith('-') && a.Length > 1)
            {
                Console.Error.WriteLine($"qrexec-daemon: unknown option {a}\n{Usage}");
                return 1;
            }
            else
            {
                positional.Add(a);
            }
        }
        if (uuid == null || positional.Count is < 2 or > 3
            || !int.TryParse(positional[0], NumberStyles.None, CultureInfo.InvariantCulture, out int domid) || domid <= 0)
        {
            Console.Error.WriteLine(uuid == null ? "qrexec-daemon: --uuid is required" : "qrexec-daemon: DOMID must be a number > 0");
            Console.Error.WriteLine(Usage);
            return 1;
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
        string self = Environment.ProcessPath!;
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
