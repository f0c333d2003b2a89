using System;
using System.Buffers.Binary;
using System.Collections.Generic;
using System.Diagnostics;
using System.Text;
using System.Threading;
using System.Threading.Tasks;
using Qubes.Interop.Linux;
using Qubes.Qrexec.Runtime;
using Qubes.Qrexec.Transport;
using Qubes.Vchan;
using Xunit;
using static Qubes.Qrexec.Tests.Validation.TriggerBodies;

namespace Qubes.Qrexec.Tests.Validation;

/// <summary>The agent under many callers at once, and with callers that leave early.</summary>
public sealed class AgentLoadTests
{
    private static byte[] ExecParams(uint domain, uint port)
    {
        byte[] body = new byte[8];
        BinaryPrimitives.WriteUInt32LittleEndian(body, domain);
        BinaryPrimitives.WriteUInt32LittleEndian(body.AsSpan(4), port);
        return body;
    }

    private static byte[] Trigger(MessageType type, string service)
        => Messages.Build(type, V4("", "work", IdentField("SOCKET"), service + "\0"));

    private static string IdentOf(byte[] forwardedBody) => Messages.CString(forwardedBody.AsSpan(2 * Domain, Ident));

    [Fact]
    public async Task More_requests_than_the_daemon_takes_at_once_wait_in_the_agent_and_none_is_refused()
    {
        using AgentUnderTest a = await AgentUnderTest.RunningAsync();
        const int Callers = QrexecAgent.MaxUnansweredRequests + 40;
        List<LocalClient> clients = [];
        try
        {
            // dom0 reads while the callers connect: the control ring holds only a few requests
            Task<List<string>> forwarded = Task.Run(() =>
            {
                List<string> idents = [];
                for (int i = 0; i < QrexecAgent.MaxUnansweredRequests; i++)
                {
                    idents.Add(IdentOf(a.Dom0!.Receive(MessageType.TriggerService4)));
                }
                return idents;
            });
            for (int i = 0; i < Callers; i++)
            {
                LocalClient client = a.Client();
                clients.Add(client);
                client.Send(Trigger(MessageType.TriggerService4, "qubes.Many"));
            }
            List<string> sent = await forwarded.WaitAsync(TimeSpan.FromMilliseconds(ChannelPeer.TimeoutMs));
            Assert.False(a.Dom0!.TryReceive(new byte[QrexecProtocol.HeaderSize], 500),
                "the agent sent dom0 more unanswered requests than its daemon keeps (it would refuse them)");

            // each answer lets one more request through, refusals and connections alike
            HashSet<string> answered = [];
            for (int i = 0; i < Callers; i++)
            {
                string ident = sent[i];
                Assert.True(answered.Add(ident), $"ident {ident} given to two unanswered requests");
                a.Dom0.Send(MessageType.ServiceRefused, IdentField(ident));
                if (sent.Count < Callers)
                {
                    sent.Add(IdentOf(a.Dom0.Receive(MessageType.TriggerService4)));
                }
            }
            foreach (LocalClient client in clients)
            {
                Assert.True(client.Eof(), "a caller was not answered");
            }
            Assert.False(a.Ran.IsCompleted, a.LogText);
        }
        finally
        {
            foreach (LocalClient client in clients)
            {
                client.Dispose();
            }
        }
    }

    [Fact]
    public async Task A_caller_that_leaves_before_the_answer_keeps_its_ident_and_its_call_ends_at_once()
    {
        using AgentUnderTest a = await AgentUnderTest.RunningAsync();
        string ident;
        using (LocalClient leaving = a.Client())
        {
            leaving.Send(Trigger(MessageType.TriggerService4, "qubes.Left"));
            ident = IdentOf(a.Dom0!.Receive(MessageType.TriggerService4));
        }
        Thread.Sleep(200); // the agent sees the hang-up
        using LocalClient other = a.Client();
        other.Send(Trigger(MessageType.TriggerService4, "qubes.Other"));
        Assert.NotEqual(ident, IdentOf(a.Dom0.Receive(MessageType.TriggerService4)));

        // dom0 set the call up meanwhile: its service end (here dom0) connects, and the agent, as
        // the caller's end, meets it and closes at once, so that the service end's port is not
        // held until its connect timeout
        const uint Port = 600;
        a.Dom0.Send(MessageType.ServiceConnect, Concat(ExecParams(0, Port), IdentField(ident)));
        Stopwatch clock = Stopwatch.StartNew();
        using IQrexecChannel? service = a.Dom0Factory.Connect(a.DomainId, (int)Port, TimeSpan.FromSeconds(30), out string? error);
        Assert.True(service != null, error);
        while (service.State != VchanState.Disconnected)
        {
            Assert.True(clock.ElapsedMilliseconds < 10_000, "the abandoned call's channel stayed open");
            Thread.Sleep(5);
        }
        Assert.Equal(ExecParams(0, Port), a.Dom0.Receive(MessageType.ConnectionTerminated));
        Assert.True(clock.ElapsedMilliseconds < 10_000);
    }

    [Fact]
    public async Task A_fast_path_call_that_fails_says_why_on_the_callers_stderr()
    {
        using AgentUnderTest a = await AgentUnderTest.RunningAsync();
        (SafeFd stdin, SafeFd stdinPeer) = FdPassing.SocketPair();
        (SafeFd stdout, SafeFd stdoutPeer) = FdPassing.SocketPair();
        (SafeFd stderr, SafeFd stderrPeer) = FdPassing.SocketPair();
        SafeFd? trigger = UnixSocket.TryConnect(a.SocketPath, out Errno errno);
        Assert.True(trigger != null, errno.ToString());
        using (stdin)
        using (stdout)
        using (stderr)
        using (trigger)
        {
            using (stdinPeer)
            using (stdoutPeer)
            using (stderrPeer)
            {
                Assert.Equal(Errno.None, FdPassing.Send(trigger.Fd, Trigger(MessageType.TriggerService4, "qubes.Fails"),
                    [stdinPeer.Fd, stdoutPeer.Fd, stderrPeer.Fd]));
            }
            string ident = IdentOf(a.Dom0!.Receive(MessageType.TriggerService4));
            const uint Port = 601;
            a.Dom0.Send(MessageType.ServiceConnect, Concat(ExecParams(0, Port), IdentField(ident)));
            using IQrexecChannel? service = a.Dom0Factory.Connect(a.DomainId, (int)Port, TimeSpan.FromSeconds(30), out string? error);
            Assert.True(service != null, error);
            // the service end answers with something that is not a HELLO
            Assert.True(Io.WriteAll(service, Messages.Build((MessageType)0x999, new byte[4])));

            byte[] reply = new byte[QrexecProtocol.ExecParamsSize];
            Assert.Equal(reply.Length, Io.ReadExact(trigger.Fd, reply, ChannelPeer.TimeoutMs));
            Assert.Equal(QrexecProtocol.HandedOverReply, BinaryPrimitives.ReadUInt32LittleEndian(reply));
            Assert.Equal(QrexecProtocol.ExitProblem, BinaryPrimitives.ReadInt32LittleEndian(reply.AsSpan(4)));
            byte[] message = new byte[200];
            int n = Fd.Read(stderr.Fd, message);
            Assert.True(n > 0, "nothing on the caller's stderr");
            Assert.Equal("qrexec-client-vm: data handshake failed\n", Encoding.UTF8.GetString(message, 0, n));
        }
        Assert.Contains(a.Log, line => line.Contains("0:601: data handshake failed", StringComparison.Ordinal));
    }
}
