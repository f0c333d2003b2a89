using System;
using System.IO;
using System.Linq;
using System.Runtime.InteropServices;
using System.Text;
using Qubes.Interop.Linux;

namespace Qubes.Core.Api;

/// <summary>How a tool reaches qubesd: a call in, the raw reply frame out (empty when the connection was dropped).</summary>
public interface IAdminTransport
{
    /// <summary>Sends <c>method+arg dom0 name dest\0payload</c> and returns the whole reply.</summary>
    byte[] Call(string method, string argument, string destination, byte[] payload);
}

/// <summary>qubesd's socket, as dom0's tools use it.</summary>
public sealed class SocketTransport(string path) : IAdminTransport
{
    /// <summary>
    /// How this process reaches qubesd: in dom0 its socket (<c>QUBESD_SOCKET</c>, else the one of the
    /// system in <c>QUBES_STATE_DIR</c>, else <c>/var/run/qubesd.sock</c>); in a qube, where there is
    /// no such socket, qrexec calls to dom0 under the policy.
    /// </summary>
    public static IAdminTransport FromEnvironment()
    {
        string? state = Environment.GetEnvironmentVariable("QUBES_STATE_DIR");
        string path = Environment.GetEnvironmentVariable("QUBESD_SOCKET")
            ?? (state != null ? new SystemLayout(state).QubesdSocket : "/var/run/qubesd.sock");
        return File.Exists(path) ? new SocketTransport(path) : new QrexecTransport();
    }

    /// <inheritdoc/>
    public byte[] Call(string method, string argument, string destination, byte[] payload)
    {
        ArgumentNullException.ThrowIfNull(payload);
        using SafeFd socket = UnixSocket.TryConnect(path, out Errno error)
            ?? throw new QubesException("QubesDaemonAccessError", $"Failed to connect to qubesd service: [Errno {(int)error}] {Marshal.GetPInvokeErrorMessage((int)error)}");
        if (Fd.WriteAll(socket.Fd, Encoding.ASCII.GetBytes($"{method}+{argument} dom0 name {destination}\0")) == Errno.None)
        {
            Fd.WriteAll(socket.Fd, payload);
        }
        // qubesd answers once the call is complete, at the end of what this side sends; a qubesd
        // that closed early may still have sent its reply, which is what the caller is told
        UnixSocket.ShutdownSend(socket.Fd);
        return Fd.ReadToEnd(socket.Fd);
    }
}

/// <summary>
/// The Admin API from a qube (a management qube): each call is <c>qrexec-client-vm DEST METHOD+ARG</c>
/// with the payload on its standard input, so the qrexec policy decides, with this qube as source.
/// </summary>
public sealed class QrexecTransport(string? client = null) : IAdminTransport
{
    /// <summary>The first <c>qrexec-client-vm</c> on PATH (the qube's own; not one beside this program).</summary>
    private readonly string _client = client ?? OnPath("qrexec-client-vm");

    private static string OnPath(string program)
    {
        foreach (string directory in (Environment.GetEnvironmentVariable("PATH") ?? string.Empty).Split(':', StringSplitOptions.RemoveEmptyEntries))
        {
            string candidate = Path.Combine(directory, program);
            if (File.Exists(candidate))
            {
                return candidate;
            }
        }
        return program;
    }

    /// <inheritdoc/>
    public byte[] Call(string method, string argument, string destination, byte[] payload)
    {
        ArgumentNullException.ThrowIfNull(payload);
        (SafeFd inputRead, SafeFd inputWrite) = Fd.Pipe();
        (SafeFd outputRead, SafeFd outputWrite) = Fd.Pipe();
        (SafeFd errorRead, SafeFd errorWrite) = Fd.Pipe();
        using (inputWrite)
        using (outputRead)
        using (errorRead)
        {
            SpawnedProcess? started;
            Errno error;
            using (inputRead)
            using (outputWrite)
            using (errorWrite)
            {
                started = Spawner.Start(_client, [_client, destination == "dom0" ? "@adminvm" : destination, method + "+" + argument],
                    Spawner.CurrentEnvironment(), inputRead.Fd, outputWrite.Fd, errorWrite.Fd, out error);
            }
            using SpawnedProcess process = started
                ?? throw new QubesException("QubesDaemonAccessError", $"Failed to connect to qubesd service: neither its socket nor {_client} is here ({Marshal.GetPInvokeErrorMessage((int)error)})");
            // the payload is small (a pipe holds it whole) and the client reads it before it answers
            Fd.WriteAll(inputWrite.Fd, payload);
            inputWrite.Dispose();
            (byte[] reply, byte[] message) = Fd.ReadToEnd(outputRead.Fd, errorRead.Fd);
            process.WaitUntil(-1);
            if (process.ExitCode != 0)
            {
                throw new QubesException("QubesDaemonAccessError", $"Service call error: {Encoding.UTF8.GetString(message).Trim()}");
            }
            return reply;
        }
    }
}

/// <summary>Calls qubesd in this process (tests, and tools run inside qubesd's own process).</summary>
public sealed class InProcessTransport(AdminApi api) : IAdminTransport
{
    /// <inheritdoc/>
    public byte[] Call(string method, string argument, string destination, byte[] payload)
        => api.Handle(new AdminRequest(method, argument, "dom0", destination, payload)).Reply;
}

/// <summary>The Admin API as a caller sees it: the success content, or the error as a <see cref="QubesException"/>.</summary>
public sealed class AdminClient(IAdminTransport transport)
{
    /// <summary>Calls <paramref name="method"/>; throws a <see cref="QubesException"/> carrying qubesd's error type and message.</summary>
    public string Call(string method, string destination, string argument = "", string payload = "")
    {
        byte[] reply = transport.Call(method, argument, destination, Encoding.UTF8.GetBytes(payload));
        if (reply.Length >= 2 && reply[0] == (byte)'0' && reply[1] == 0)
        {
            return Encoding.UTF8.GetString(reply, 2, reply.Length - 2);
        }
        if (reply.Length >= 2 && reply[0] == (byte)'2' && reply[1] == 0)
        {
            string[] parts = Encoding.UTF8.GetString(reply, 2, reply.Length - 2).Split('\0');
            if (parts.Length >= 3)
            {
                throw new QubesException(parts[0], parts[2]);
            }
        }
        throw new QubesException("QubesDaemonCommunicationError", "Got empty response from qubesd. See journalctl in dom0 for details.");
    }

    /// <summary>Whether qubesd lists a qube called <paramref name="name"/> (what the tools check of a VMNAME argument).</summary>
    public bool QubeExists(string name)
        => Call("admin.vm.List", "dom0").Split('\n').Any(line => line.Split(' ')[0] == name);
}
