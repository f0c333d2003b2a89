using System;
using System.Net.Sockets;
using System.Text;
using Xunit;

namespace Qubes.Core.Tests;

/// <summary>An admin.Events client, as upstream's qubesadmin makes one: the request, a shutdown of the write side, then reading.</summary>
internal static class AdminEvents
{
    /// <summary>Subscribes to dom0's events at qubesd's socket <paramref name="qubesdSocket"/>; checks <c>connection-established</c>.</summary>
    public static Socket Subscribe(string qubesdSocket)
    {
        Socket events = new(AddressFamily.Unix, SocketType.Stream, ProtocolType.Unspecified);
        events.Connect(new UnixDomainSocketEndPoint(qubesdSocket));
        events.Send("admin.Events+ dom0 name dom0\0"u8);
        events.Shutdown(SocketShutdown.Send);
        Assert.Equal("1\0\0connection-established\0\0", Receive(events, "connection-established\0\0"));
        return events;
    }

    /// <summary>What the socket receives up to and including <paramref name="end"/>, or up to its end of file.</summary>
    public static string Receive(Socket socket, string end)
    {
        StringBuilder text = new();
        byte[] one = new byte[1];
        socket.ReceiveTimeout = 30_000;
        while (!text.ToString().EndsWith(end, StringComparison.Ordinal) && socket.Receive(one) == 1)
        {
            text.Append((char)one[0]);
        }
        return text.ToString();
    }
}
