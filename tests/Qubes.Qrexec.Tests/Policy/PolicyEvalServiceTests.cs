using System;
using System.Collections.Concurrent;
using System.Diagnostics;
using System.IO;
using System.Linq;
using System.Net.Sockets;
using System.Text;
using Xunit;

namespace Qubes.Qrexec.Tests.Policy;

/// <summary>
/// The dom0 qrexec socket services <c>policy.EvalSimple</c> and <c>policy.EvalGUI</c> of
/// qrexec-policy-daemon (spec qrexec-policy §14), spoken to as dom0's qrexec does: the service
/// descriptor and a NUL, then the calling qube's <c>SOURCE\0TARGET</c> and the end of its input.
/// The cases are upstream's daemon tests, on the worked example's policy.
/// </summary>
[Collection(PolicyProcessCollection.Name)]
public sealed class PolicyEvalServiceTests : IDisposable
{
    private readonly TempDirectory _dir = new();
    private readonly ConcurrentQueue<string> _log = new();
    private readonly Process _server;

    public PolicyEvalServiceTests()
    {
        string policyDir = Directory.CreateDirectory(_dir.File("policy.d")).FullName;
        File.WriteAllText(Path.Combine(policyDir, "50-example.policy"), WorkedExample.Policy);
        // work and work-email have the qube "gui" as their GUI qube; nothing else has
        File.WriteAllText(_dir.File("system.json"), WorkedExample.SystemJson.Replace(
            "\"tags\": [\"work\"], \"default_dispvm\": \"work-dvm\"", "\"tags\": [\"work\", \"guivm-gui\"], \"default_dispvm\": \"work-dvm\"", StringComparison.Ordinal));
        _server = PolicyTool.Daemon.StartServer(_dir.File("policy.sock"), _log,
            "--eval-socket-path", Simple, "--gui-socket-path", Gui,
            "--policy-path", policyDir, "--runtime-policy-path", _dir.File("run"), "--legacy-policy-path", _dir.File("legacy"),
            "--system-info", _dir.File("system.json"));
        RawPolicySocket.WaitForListener(Simple, _server);
        RawPolicySocket.WaitForListener(Gui, _server);
    }

    private string Simple => _dir.File("policy.EvalSimple");

    private string Gui => _dir.File("policy.EvalGUI");

    public void Dispose()
    {
        PolicyTool.Stop(_server);
        _dir.Dispose();
    }

    /// <summary>Sends <paramref name="request"/>, ends the input, and returns all that came back.</summary>
    private static string Call(string path, string request)
    {
        using Socket socket = new(AddressFamily.Unix, SocketType.Stream, ProtocolType.Unspecified);
        socket.Connect(new UnixDomainSocketEndPoint(path));
        socket.ReceiveTimeout = 10_000;
        socket.Send(Encoding.ASCII.GetBytes(request));
        socket.Shutdown(SocketShutdown.Send);
        MemoryStream received = new();
        byte[] buffer = new byte[4096];
        int n;
        while ((n = socket.Receive(buffer)) > 0)
        {
            received.Write(buffer, 0, n);
        }
        return Encoding.ASCII.GetString(received.ToArray());
    }

    [Theory]
    [InlineData("qubes.Filecopy", "work", "work-email", "result=allow\n")]
    [InlineData("qubes.Filecopy", "work", "personal", "result=deny\n")]
    [InlineData("qubes.Filecopy", "personal", "work", "result=allow\n")] // an ask, assumed yes for the requested target
    [InlineData("qubes.Filecopy", "personal", "@default", "result=deny\n")]
    [InlineData("qubes.Filecopy", "personal", "vault", "result=deny\n")]
    [InlineData("qubes.PrintFile+doc", "work", "@dispvm", "result=allow\n")]
    [InlineData("qubes.GetDate", "work", "@default", "result=allow\n")]
    [InlineData("qubes.Backup", "work", "vault", "result=deny\n")]
    public void EvalSimple_answers_whether_the_call_would_be_allowed(string service, string source, string target, string answer)
        => Assert.Equal(answer, Call(Simple, $"policy.EvalSimple+{service} sys-gui keyword adminvm\0{source}\0{target}"));

    [Fact]
    public void EvalGUI_answers_only_the_gui_qube_of_both_source_and_target()
    {
        Assert.Equal("result=allow\n", Call(Gui, "policy.EvalGUI+qubes.Filecopy gui keyword adminvm\0work\0work-email"));
        Assert.Equal("result=deny\n", Call(Gui, "policy.EvalGUI+qubes.Backup gui keyword adminvm\0work\0work-email"));
        // personal is not shown by gui; sys-gui shows neither; a keyword is no qube with tags
        Assert.Equal("", Call(Gui, "policy.EvalGUI+qubes.Filecopy gui keyword adminvm\0work\0personal"));
        Assert.Equal("", Call(Gui, "policy.EvalGUI+qubes.Filecopy gui keyword adminvm\0personal\0work"));
        Assert.Equal("", Call(Gui, "policy.EvalGUI+qubes.Filecopy sys-gui keyword adminvm\0work\0work-email"));
        Assert.Equal("", Call(Gui, "policy.EvalGUI+qubes.GetDate gui keyword adminvm\0work\0@default"));
        // the same questions through EvalSimple are answered
        Assert.Equal("result=deny\n", Call(Simple, "policy.EvalSimple+qubes.Filecopy gui keyword adminvm\0work\0personal"));
        Assert.True(Platform.Tests.TestBroker.Eventually(() => _log.Any(l => l.Contains("policy.EvalGUI: can only be invoked by a qube that provides GUI", StringComparison.Ordinal))),
            "the refusal is not in the log");
    }

    [Theory]
    [InlineData("unfinished")]
    [InlineData("policy.EvalSimple+qubes.Filecopy sys-gui keyword adminvm")] // no NUL after the descriptor
    [InlineData("policy.EvalGUI+qubes.Filecopy sys-gui keyword adminvm\0work\0work-email")] // the other service's name
    [InlineData("policy.EvalSimple sys-gui keyword adminvm\0work\0work-email")] // no argument
    [InlineData("policy.EvalSimple+ sys-gui keyword adminvm\0work\0work-email")] // an empty one
    [InlineData("policy.EvalSimple++qubes.Filecopy sys-gui keyword adminvm\0work\0work-email")] // an empty service to ask about
    [InlineData("policy.EvalSimple+qubes.Filecopy sys-gui keyword adminvm\0work-email-is-longer-than-31-bytes\0work")]
    [InlineData("policy.EvalSimple+qubes.Filecopy sys-gui keyword adminvm\0work\0a-target-name-longer-than-sixty-three-bytes-is-no-qube-name-at-all")]
    [InlineData("policy.EvalSimple+qubes.Filecopy sys-gui keyword adminvm\0workwork-email")] // no NUL between the two
    [InlineData("policy.EvalSimple+qubes.Filecopy sys-gui keyword adminvm\0\0work-email")]
    [InlineData("policy.EvalSimple+qubes.Filecopy sys-gui keyword adminvm\0work\0")]
    [InlineData("policy.EvalSimple+qubes.Filecopy sys-gui keyword adminvm\0wo\nrk\0work-email")]
    [InlineData("policy.EvalSimple+qubes.Filecopy sys-gui keyword adminvm\0work\0work-email\0")] // a trailing NUL is part of the target
    [InlineData("policy.EvalSimple+qubes.Filecopy sys-gui keyword adminvm\0work\0uuid:22222222-2222-4222-8222-222222222222")]
    public void A_malformed_request_is_closed_without_an_answer_and_the_service_goes_on(string request)
    {
        Assert.Equal("", Call(Simple, request));
        Assert.Equal("result=allow\n", Call(Simple, "policy.EvalSimple+qubes.Filecopy sys-gui keyword adminvm\0work\0work-email"));
        Assert.False(_server.HasExited);
    }

    [Fact]
    public void A_descriptor_longer_than_upstream_reads_is_refused()
    {
        Assert.Equal("", Call(Simple, $"policy.EvalSimple+{new string('a', 65536)} sys-gui keyword adminvm\0work\0work-email"));
        Assert.Equal("result=allow\n", Call(Simple, "policy.EvalSimple+qubes.Filecopy sys-gui keyword adminvm\0work\0work-email"));
    }
}
