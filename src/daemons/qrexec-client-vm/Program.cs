using System;
using System.Collections.Generic;
using System.Globalization;
using System.Text;
using Qubes.Interop.Linux;
using Qubes.Qrexec;
using Qubes.Qrexec.Runtime;
using Qubes.Qrexec.Transport;

namespace Qubes.Tools.QrexecClientVm;

/// <summary>qrexec-client-vm [options] TARGET SERVICE+ARG [LOCAL-PROGRAM [ARGS...]] (spec §14.4, §8.2).</summary>
internal static class Program
{
    private const string Usage = "usage: qrexec-client-vm [--buffer-size=N] [-t|-T|--no-filter-escape-chars-stdout|--no-filter-escape-chars-stderr] [--agent-socket=PATH] [-p DATA|--prefix-data=DATA] [--use-stdin-socket] [-s NAME|--source-qube=NAME] TARGET SERVICE+ARG [LOCAL-PROGRAM [ARGS...]]";

    private static int Main(string[] args)
    {
        int bufferSize = QrexecProtocol.DataRingSize;
        bool? filterOut = null;
        bool? filterErr = null;
        string agentSocket = Environment.GetEnvironmentVariable("QREXEC_AGENT_SOCKET") is { Length: > 0 } env ? env : QrexecProtocol.DefaultAgentSocket;
        string? prefix = null;
        bool stdinSocket = false;
        string? source = null;
        (uint Domain, uint Port)? connected = null;
        int i = 0;
        for (; i < args.Length; i++)
        {
            string a = args[i];
            if (a == "--")
            {
                i++;
                break;
            }
            if (!a.StartsWith('-') || a == "-")
            {
                break;
            }
            string? v;
            if ((v = CommandLine.OptionValue(args, ref i, "--buffer-size", null)) != null)
            {
                if (!TryParseSize(v, out bufferSize))
                {
                    Console.Error.WriteLine($"qrexec-client-vm: invalid buffer size {v}");
                    return 2;
                }
            }
            else if ((v = CommandLine.OptionValue(args, ref i, "--exec-params", null)) != null)
            {
                // the fast client sent the request and the agent answered with these (see native/)
                if (!TryParseExecParams(v, out (uint, uint) parameters))
                {
                    Console.Error.WriteLine($"qrexec-client-vm: invalid exec parameters {v}");
                    return 2;
                }
                connected = parameters;
            }
            else if ((v = CommandLine.OptionValue(args, ref i, "--agent-socket", null)) != null)
            {
                agentSocket = v;
            }
            else if ((v = CommandLine.OptionValue(args, ref i, "--prefix-data", "-p")) != null)
            {
                prefix = v;
            }
            else if ((v = CommandLine.OptionValue(args, ref i, "--source-qube", "-s")) != null)
            {
                if (source != null)
                {
                    Console.Error.WriteLine("qrexec-client-vm: --source-qube given twice");
                    return 2;
                }
                source = v;
            }
            else if (a is "-t" or "--filter-escape-chars-stdout")
            {
                filterOut = true;
            }
            else if (a is "-T" or "--filter-escape-chars-stderr")
            {
                filterErr = true;
            }
            else if (a == "--no-filter-escape-chars-stdout")
            {
                filterOut = false;
            }
            else if (a == "--no-filter-escape-chars-stderr")
            {
                filterErr = false;
            }
            else if (a == "--use-stdin-socket")
            {
                stdinSocket = true;
            }
            else if (a is "-h" or "--help")
            {
                Console.WriteLine(Usage);
                return 0;
            }
            else
            {
                Console.Error.WriteLine($"qrexec-client-vm: unknown option {a}\n{Usage}");
                return 2;
            }
        }
        if (args.Length - i < 2)
        {
            Console.Error.WriteLine(Usage);
            return 2;
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
        filterOut ??= !localProgram && isatty(1) != 0;
        filterErr ??= isatty(2) != 0;

        (uint domain, uint port) = connected ?? default;
        // the request's socket stays open for the whole call: the agent takes its end for the call's
        SafeFd? trigger = null;
        if (connected == null)
        {
            int status = Request(agentSocket, source, target, service, out trigger, out domain, out port);
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
            Dictionary<string, string> saved = new()
            {
                ["SAVED_FD_0"] = Dup(0),
                ["SAVED_FD_1"] = Dup(1),
            };
            if (Environment.GetEnvironmentVariable("PASS_LOCAL_STDERR") != null)
            {
                saved["SAVED_FD_2"] = Dup(2);
            }
            program = LocalProgram.Start(local, shell: false, saved, 2, out string? error);
            if (program == null)
            {
                Console.Error.WriteLine($"qrexec-client-vm: {error}");
                return 1;
            }
        }
        return LocalProgram.RunCaller(channel, version, io, program, "qrexec-client-vm");
    }

    /// <summary>Sends the request to the agent: -1 with its socket and the data channel's parameters, else the exit status.</summary>
    private static int Request(string agentSocket, string? source, string target, string service, out SafeFd? socket, out uint domain, out uint port)
    {
        domain = port = 0;
        socket = UnixSocket.TryConnect(agentSocket, out Errno errno);
        if (socket == null)
        {
            Console.Error.WriteLine($"qrexec-client-vm: cannot connect to {agentSocket}: {errno}");
            return 1;
        }
        byte[] request = Messages.TriggerV4(MessageType.TriggerService4, source ?? string.Empty, target, Messages.Ident("SOCKET"), service);
        Span<byte> answer = stackalloc byte[QrexecProtocol.ExecParamsSize];
        int status = -1;
        int n = 0;
        if (!Io.WriteAll(socket.Fd, request))
        {
            Console.Error.WriteLine("qrexec-client-vm: cannot send the request");
            status = 1;
        }
        else if ((n = Io.ReadExact(socket.Fd, answer, -1)) == 0)
        {
            Console.Error.WriteLine("Request refused");
            status = QrexecProtocol.ExitRequestRefused;
        }
        else if (n != answer.Length)
        {
            Console.Error.WriteLine("qrexec-client-vm: short answer from the agent");
            status = 1;
        }
        if (status >= 0)
        {
            socket.Dispose();
            socket = null;
            return status;
        }
        (domain, port) = Io.ExecParams(answer);
        return -1;
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

    [System.Runtime.InteropServices.DllImport("libc")]
    private static extern int isatty(int fd);
}
