using System;
using System.Buffers.Binary;
using Qubes.Interop.Linux;

namespace Qubes.Qrexec.Runtime;

/// <summary>A qube's request to its qrexec agent for a call to another qube (spec §14.4), as its clients make it.</summary>
public static class AgentRequest
{
    /// <summary>The agent's trigger socket: <c>$QREXEC_AGENT_SOCKET</c>, else the default path.</summary>
    public static string DefaultSocket => Environment.GetEnvironmentVariable("QREXEC_AGENT_SOCKET") is { Length: > 0 } socket ? socket : QrexecProtocol.DefaultAgentSocket;

    /// <summary>
    /// Sends the request to the agent, with the descriptors <paramref name="handOver"/> (the call's
    /// stdin, stdout and stderr) attached if there are any: -1 with
    /// its socket and the data channel's parameters, else the exit status (of the call, when the
    /// agent took it over; an upstream agent drops the descriptors and answers exec parameters).
    /// Problems go to stderr after <paramref name="program"/>'s name. <paramref name="sent"/> is
    /// called once the request (and the descriptors) went out, before the answer is awaited.
    /// </summary>
    public static int Send(string agentSocket, string? source, string target, string service, ReadOnlySpan<int> handOver, string program, out SafeFd? socket, out uint domain, out uint port, out bool handedOver, Action? sent = null)
    {
        domain = port = 0;
        handedOver = false;
        socket = UnixSocket.TryConnect(agentSocket, out Errno errno);
        if (socket == null)
        {
            Console.Error.WriteLine($"{program}: cannot connect to {agentSocket}: {errno}");
            return 1;
        }
        byte[] request = Messages.TriggerV4(MessageType.TriggerService4, source ?? string.Empty, target, Messages.Ident("SOCKET"), service);
        Span<byte> answer = stackalloc byte[QrexecProtocol.ExecParamsSize];
        int status = -1;
        int n = 0;
        if (handOver.Length > 0 ? FdPassing.Send(socket.Fd, request, handOver) != Errno.None : !Io.WriteAll(socket.Fd, request))
        {
            Console.Error.WriteLine($"{program}: cannot send the request");
            status = 1;
        }
        else if ((n = ReadAnswer(socket.Fd, answer, sent)) == 0)
        {
            Console.Error.WriteLine("Request refused");
            status = QrexecProtocol.ExitRequestRefused;
        }
        else if (n != answer.Length)
        {
            Console.Error.WriteLine($"{program}: short answer from the agent");
            status = 1;
        }
        else if (BinaryPrimitives.ReadUInt32LittleEndian(answer) == QrexecProtocol.HandedOverReply)
        {
            uint exit = BinaryPrimitives.ReadUInt32LittleEndian(answer[4..]);
            status = exit <= 255 ? (int)exit : 1;
            handedOver = true;
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


    private static int ReadAnswer(int socket, Span<byte> answer, Action? sent)
    {
        sent?.Invoke();
        return Io.ReadExact(socket, answer, -1);
    }
}
