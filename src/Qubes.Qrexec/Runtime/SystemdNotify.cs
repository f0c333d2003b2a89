using System;
using System.Net.Sockets;
using System.Text;

namespace Qubes.Qrexec.Runtime;

/// <summary>sd_notify("READY=1") when started by systemd with <c>NOTIFY_SOCKET</c>.</summary>
public static class SystemdNotify
{
    public static void Ready()
    {
        string? path = Environment.GetEnvironmentVariable("NOTIFY_SOCKET");
        if (string.IsNullOrEmpty(path))
        {
            return;
        }
        if (path[0] == '@')
        {
            path = "\0" + path[1..]; // abstract namespace
        }
        try
        {
            using Socket socket = new(AddressFamily.Unix, SocketType.Dgram, ProtocolType.Unspecified);
            socket.SendTo(Encoding.ASCII.GetBytes("READY=1"), new UnixDomainSocketEndPoint(path));
        }
        catch (SocketException)
        {
            // as sd_notify: readiness is best effort
        }
    }
}
