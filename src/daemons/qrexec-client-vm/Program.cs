using System;
using System.Collections.Generic;
using System.Globalization;
using System.Text;
using System.Threading;
using Qubes.Cli;
using Qubes.Interop.Linux;
using Qubes.Qrexec;
using Qubes.Qrexec.Runtime;
using Qubes.Qrexec.Transport;

namespace Qubes.Tools.QrexecClientVm;

/// <summary>qrexec-client-vm [options] TARGET SERVICE+ARG [LOCAL-PROGRAM [ARGS...]] (spec §14.4, §8.2).</summary>
internal static class Program
{
    /// <summary>The command line, with upstream's usage text.</summary>
    internal static Command Command { get; } = new("qrexec-client-vm", HelpStyle.Getopt,
        Command.GetoptHelp,
        new Option("minimum vchan buffer size (default: 64k)", "--buffer-size") { Metavar = "BUFFER_SIZE" },
        new Option("filter non-ASCII and control characters on stdout (default if stdout is a terminal and there is no local program)", "-t", "--filter-escape-chars-stdout"),
        new Option("filter non-ASCII and control characters on stderr (default if stderr is a terminal)", "-T", "--filter-escape-chars-stderr"),
        new Option("opposite to --filter-escape-chars-stdout", "--no-filter-escape-chars-stdout"),
        new Option("opposite to --filter-escape-chars-stderr", "--no-filter-escape-chars-stderr"),
        new Option($"path to connect to, default: {QrexecProtocol.DefaultAgentSocket} (or $QREXEC_AGENT_SOCKET)", "--agent-socket") { Metavar = "PATH" },
        new Option("send the given data before the provided stdin", "-p", "--prefix-data") { Metavar = "PREFIX-DATA" },
        new Option("use fd 0 (which must be socket) for both stdin and stdout", "--use-stdin-socket"),
        new Option("specify the source qube; extra information for a relayed connection, which the policy may use (can only be used once)", "-s", "--source-qube") { Metavar = "SOURCE-QUBE" },
        // the fast client (native/) sent the request, and the agent answered with these
        new Option("the exec parameters DOMAIN,PORT of a call the fast client requested", "--exec-params") { Metavar = "DOMAIN,PORT", Hidden = true })
    {
        Synopsis = "qrexec-client-vm [options] target_vmname program_ident [local_program [local program arguments]]",
    };

    internal static int Main(string[] args) => Command.Run(Console.Out, Console.Error, () => Run(args));

    private static int Run(string[] args)
    {
        int bufferSize = QrexecProtocol.DataRingSize;
        bool? filterOut = null;
        bool? filterErr = null;
        string agentSocket = AgentRequest.DefaultSocket;
        string? prefix = null;
        bool stdinSocket = false;
        string? source = null;
        (uint Domain, uint Port)? connected = null;
        List<Parsed> options = Command.ReadOptions(args, out int i);
        foreach (Parsed parsed in options)
        {
            string? v = parsed.Value;
            switch (parsed.Option?.Name)
            {
                case "--buffer-size":
                    if (!TryParseSize(v!, out bufferSize))
                    {
                        Console.Error.WriteLine($"qrexec-client-vm: invalid buffer size {v}");
                        return 2;
                    }
                    break;
                case "--exec-params":
                    if (!TryParseExecParams(v!, out (uint, uint) parameters))
                    {
                        Console.Error.WriteLine($"qrexec-client-vm: invalid exec parameters {v}");
                        return 2;
                    }
                    connected = parameters;
                    break;
                case "--agent-socket":
                    agentSocket = v!;
                    break;
                case "-p":
                    prefix = v;
                    break;
                case "-s":
                    if (source != null)
                    {
                        Console.Error.WriteLine("qrexec-client-vm: --source-qube given twice");
                        return 2;
                    }
                    source = v;
                    break;
                case "-t":
                    filterOut = true;
                    break;
                case "-T":
                    filterErr = true;
                    break;
                case "--no-filter-escape-chars-stdout":
                    filterOut = false;
                    break;
                case "--no-filter-escape-chars-stderr":
                    filterErr = false;
                    break;
                case "--use-stdin-socket":
                    stdinSocket = true;
                    break;
                default:
                    throw new UsageException($"unknown option {parsed.Text}");
            }
        }
        if (args.Length - i < 2)
        {
            throw new UsageException("");
        }
        string target = args[i].Replace('$', '@');
        string service = args[i + 1];
        string[] local = args[(i + 2)..];
        if (stdinSocket && local.Length > 0)
        {
            Console.Error.WriteLine("qrexec-client-vm: --use-stdin-socket cannot be used with a local program");
            return 2;
        }
        if (service.Length == 0 || service[0] == '+' || Encoding.UTF8.GetByteCount(target) >= QrexecProtocol.DomainFieldSize)
        {
            Console.Error.WriteLine("qrexec-client-vm: invalid target or service name");
            return 2;
        }
        bool localProgram = local.Length > 0;
        // a plain call (nothing this side would do to the data, no local program) is handed over:
        // the agent runs it on our stdin, stdout and stderr, as the agent's own calls run
        bool handOver = connected == null && !localProgram && prefix == null && !stdinSocket && source == null
            && bufferSize == QrexecProtocol.DataRingSize && filterOut != true && filterErr != true;
        filterOut ??= !localProgram && isatty(1) != 0;
        filterErr ??= isatty(2) != 0;
        handOver &= !filterOut.Value && !filterErr.Value;

        (uint domain, uint port) = connected ?? default;
        // the request's socket stays open for the whole call: the agent takes its end for the call's
        SafeFd? trigger = null;
        if (localProgram && connected == null && prefix == null && !stdinSocket && source == null && bufferSize == QrexecProtocol.DataRingSize && !filterOut.Value)
        {
            return RunLocalProgram(agentSocket, target, service, local, filterErr.Value);
        }
        if (connected == null)
        {
            int status = AgentRequest.Send(agentSocket, source, target, service, handOver ? [0, 1, 2] : [], "qrexec-client-vm", out trigger, out domain, out port, out _);
            if (status >= 0)
            {
                return status;
            }
        }
        using SafeFd? request = trigger;
        using IChannelFactory factory = ChannelFactory.FromEnvironment();
        using IQrexecChannel channel = factory.Listen((int)domain, (int)port, bufferSize, bufferSize);
        uint version = Io.ServerHandshake(channel, TimeSpan.FromSeconds(120), out bool dataConnected);
        if (!dataConnected)
        {
            Console.Error.WriteLine("qrexec-client-vm: the service side did not connect");
            return 1;
        }
        if (version == 0)
        {
            Console.Error.WriteLine("qrexec-client-vm: data handshake failed");
            return 1;
        }
        CallerIo io = new()
        {
            Input = 0,
            Output = stdinSocket ? 0 : 1,
            Error = 2,
            PrefixData = prefix == null ? null : Encoding.UTF8.GetBytes(prefix),
            FilterOutput = filterOut.Value,
            FilterError = filterErr.Value,
        };
        LocalProgram? program = null;
        if (localProgram)
        {
            program = LocalProgram.Start(local, shell: false, SavedDescriptors(), 2, out string? error);
            if (program == null)
            {
                Console.Error.WriteLine($"qrexec-client-vm: {error}");
                return 1;
            }
        }
        return LocalProgram.RunCaller(channel, version, io, program, "qrexec-client-vm");
    }

    /// <summary>What a local program is told of this process's own stdin and stdout (and stderr with PASS_LOCAL_STDERR).</summary>
    private static Dictionary<string, string> SavedDescriptors()
    {
        Dictionary<string, string> saved = new()
        {
            ["SAVED_FD_0"] = Dup(0),
            ["SAVED_FD_1"] = Dup(1),
        };
        if (Environment.GetEnvironmentVariable("PASS_LOCAL_STDERR") != null)
        {
            saved["SAVED_FD_2"] = Dup(2);
        }
        return saved;
    }

    /// <summary>
    /// A call with a local program, handed over to the agent on pipes to the program: the agent
    /// relays between them and the call, so the data passes no process of ours, and nothing here
    /// needs the hypervisor (a loopback qube's processes have no connection to its broker; the
    /// agent has). This process holds its own copies of the program's pipe ends until the call
    /// ends, so that a refused call stops the program before it sees its pipes close. The status
    /// is the service's when it is not zero, else the program's. An agent that answers with exec
    /// parameters instead (upstream's) gets the data phase run here, on the same pipes.
    /// </summary>
    private static int RunLocalProgram(string agentSocket, string target, string service, string[] local, bool filterError)
    {
        (SafeFd fromProgram, SafeFd programOut) = Fd.Pipe();
        (SafeFd programIn, SafeFd toProgram) = Fd.Pipe();
        (SafeFd? errors, SafeFd? serviceErrors) = filterError ? Fd.Pipe() : (null, null);
        using (fromProgram)
        using (toProgram)
        using (errors)
        {
            SpawnedProcess? process;
            using (programIn)
            using (programOut)
            {
                process = LocalProgram.Spawn(local, shell: false, SavedDescriptors(), programIn.Fd, programOut.Fd, 2, out string? error);
                if (process == null)
                {
                    serviceErrors?.Dispose();
                    Console.Error.WriteLine($"qrexec-client-vm: {error}");
                    return 1;
                }
            }
            using (process)
            {
                int status;
                bool handedOver;
                SafeFd? trigger;
                uint domain, port;
                Thread? filter = errors == null ? null : new Thread(() => DataPump.CopyFiltered(errors.Fd, 2)) { IsBackground = true, Name = "stderr filter" };
                filter?.Start();
                using (serviceErrors)
                {
                    status = AgentRequest.Send(agentSocket, null, target, service, [fromProgram.Fd, toProgram.Fd, serviceErrors?.Fd ?? 2], "qrexec-client-vm", out trigger, out domain, out port, out handedOver);
                }
                // every writer of the service's stderr is gone once the agent answered: the rest is read to its end
                filter?.Join();
                if (status < 0)
                {
                    using SafeFd? request = trigger;
                    using IChannelFactory factory = ChannelFactory.FromEnvironment();
                    using IQrexecChannel channel = factory.Listen((int)domain, (int)port, QrexecProtocol.DataRingSize, QrexecProtocol.DataRingSize);
                    uint version = Io.ServerHandshake(channel, TimeSpan.FromSeconds(120), out bool dataConnected);
                    if (!dataConnected || version == 0)
                    {
                        Console.Error.WriteLine("qrexec-client-vm: data handshake failed");
                        process.Signal(9);
                        return 1;
                    }
                    CallerIo io = new() { Input = fromProgram.Fd, Output = toProgram.Fd, Error = 2, FilterError = filterError, LocalProcess = process };
                    int result = DataPump.RunCaller(channel, version, io, out string? failure);
                    if (failure != null)
                    {
                        Console.Error.WriteLine($"qrexec-client-vm: {failure}");
                    }
                    return result;
                }
                if (!handedOver)
                {
                    // refused, or the agent could not be asked: the program never had a call
                    process.Signal(9);
                    process.WaitUntil(long.MaxValue);
                    return status;
                }
                // the program's pipes close now: it sees the end of what the service sent
                toProgram.Dispose();
                fromProgram.Dispose();
                process.WaitUntil(long.MaxValue);
                return status != 0 ? status : process.ExitCode ?? 128 + process.TermSignal;
            }
        }
    }

    private static bool TryParseExecParams(string text, out (uint Domain, uint Port) parameters)
    {
        parameters = default;
        int colon = text.IndexOf(':', StringComparison.Ordinal);
        return colon > 0
            && uint.TryParse(text.AsSpan(0, colon), NumberStyles.None, CultureInfo.InvariantCulture, out parameters.Domain)
            && uint.TryParse(text.AsSpan(colon + 1), NumberStyles.None, CultureInfo.InvariantCulture, out parameters.Port);
    }

    /// <summary>An inheritable copy of one of our descriptors, for SAVED_FD_n.</summary>
    private static string Dup(int fd)
    {
        int copy = Libc.dup(fd);
        return copy.ToString(CultureInfo.InvariantCulture);
    }

    private static bool TryParseSize(string text, out int size)
    {
        long value;
        bool ok = text.StartsWith("0x", StringComparison.OrdinalIgnoreCase)
            ? long.TryParse(text.AsSpan(2), NumberStyles.AllowHexSpecifier, CultureInfo.InvariantCulture, out value)
            : long.TryParse(text, NumberStyles.None, CultureInfo.InvariantCulture, out value);
        size = ok && value > 0 && value <= int.MaxValue ? (int)value : 0;
        return size > 0;
    }

    [System.Runtime.InteropServices.DllImport("libc.so.6")]
    private static extern int isatty(int fd);
}
