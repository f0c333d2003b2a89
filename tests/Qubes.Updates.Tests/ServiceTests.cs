using System;
using System.Collections.Concurrent;
using System.Collections.Generic;
using System.IO;
using System.Net.Sockets;
using System.Text;
using System.Threading;
using Qubes.Interop.Linux;
using Xunit;

namespace Qubes.Updates.Tests;

/// <summary>
/// The installed shape, end to end: the update qube's qfile-agent sends packages to the service
/// script qubes.ReceiveUpdates, which starts qubes-receive-updates on a loopback system
/// (QUBES_STATE_DIR) whose qubesd answers the updatevm property; the unpacker and rpmcanon are
/// found beside the program, dom0's keys in the system's rpm database.
/// </summary>
[Collection(PackageCollection.Name)]
public sealed class ServiceTests : IDisposable
{
    private readonly PackageWorld _world;
    private readonly string _base;
    private readonly string _bin;
    private readonly string _state;
    private readonly string _tmp;
    private readonly string _socketPath;
    private readonly Socket _qubesd;
    private readonly Thread _server;
    private readonly ConcurrentQueue<string> _requests = new();
    private string _updateVmReply = "default=False type=vm sys-update";

    public ServiceTests(PackageWorld world)
    {
        _world = world;
        _base = Directory.CreateDirectory(Path.Combine(world.Root, "svc-" + Guid.NewGuid().ToString("N")[..8])).FullName;
        _bin = Directory.CreateDirectory(Path.Combine(_base, "bin")).FullName;
        string program = Path.GetDirectoryName(world.Program("qubes-receive-updates", "qubes-receive-updates"))!;
        foreach (string file in Directory.GetFiles(program))
        {
            File.Copy(file, Path.Combine(_bin, Path.GetFileName(file)));
        }
        Directory.CreateDirectory(Path.Combine(_bin, "dom0-rpc"));
        File.Copy(Path.Combine(program, "dom0-rpc", "qubes.ReceiveUpdates"), Path.Combine(_bin, "dom0-rpc", "qubes.ReceiveUpdates"));
        File.CreateSymbolicLink(Path.Combine(_bin, "qfile-dom0-unpacker"), world.Program("qfile-unpacker", "qfile-unpacker"));
        File.CreateSymbolicLink(Path.Combine(_bin, "rpmcanon"), world.Program("rpmcanon", "rpmcanon"));
        File.CreateSymbolicLink(Path.Combine(_bin, "qfile-agent"), world.Program("qvm-copy", "qvm-copy"));
        _state = Directory.CreateDirectory(Path.Combine(_base, "state")).FullName;
        string rpmdb = Directory.CreateDirectory(Path.Combine(_state, "dom0", "rpmdb")).FullName;
        foreach (string file in Directory.GetFiles(world.RpmDatabase))
        {
            File.Copy(file, Path.Combine(rpmdb, Path.GetFileName(file)));
        }
        _tmp = Directory.CreateDirectory(Path.Combine(_base, "tmp")).FullName;
        _socketPath = Path.Combine(_base, "qubesd.sock");
        _qubesd = new Socket(AddressFamily.Unix, SocketType.Stream, ProtocolType.Unspecified);
        _qubesd.Bind(new UnixDomainSocketEndPoint(_socketPath));
        _qubesd.Listen();
        _server = new Thread(Serve) { IsBackground = true };
        _server.Start();
    }

    public void Dispose()
    {
        _qubesd.Dispose();
        _server.Join();
        Directory.Delete(_base, recursive: true);
    }

    private string Updates => Path.Combine(_state, "dom0", "updates");

    /// <summary>qubesd as the Admin API's callers see it: the request up to the end of what they send, then the reply.</summary>
    private void Serve()
    {
        while (true)
        {
            Socket client;
            try
            {
                client = _qubesd.Accept();
            }
            catch (SocketException)
            {
                return;
            }
            catch (ObjectDisposedException)
            {
                return;
            }
            using (client)
            {
                using MemoryStream request = new();
                byte[] buffer = new byte[4096];
                int n;
                while ((n = client.Receive(buffer)) > 0)
                {
                    request.Write(buffer, 0, n);
                }
                _requests.Enqueue(Encoding.ASCII.GetString(request.ToArray()));
                client.Send([.. "0\0"u8, .. Encoding.UTF8.GetBytes(_updateVmReply)]);
            }
        }
    }

    /// <summary>Runs qfile-agent FILES... in the qube, connected to the service script in dom0 as qrexec would connect them.</summary>
    private (int Agent, int Service, string Errors) Call(string sender, params string[] files)
    {
        List<string> environment = Spawner.CurrentEnvironment();
        environment.RemoveAll(static e => e.StartsWith("PATH=", StringComparison.Ordinal) || e.StartsWith("QUBES", StringComparison.Ordinal) || e.StartsWith("TMPDIR=", StringComparison.Ordinal));
        List<string> service = [.. environment, $"PATH={_bin}:/usr/bin:/bin", $"QUBES_STATE_DIR={_state}", $"QUBESD_SOCKET={_socketPath}", $"QREXEC_REMOTE_DOMAIN={sender}", $"TMPDIR={_tmp}"];
        (SafeFd streamRead, SafeFd streamWrite) = Fd.Pipe();
        (SafeFd replyRead, SafeFd replyWrite) = Fd.Pipe();
        (SafeFd errorsRead, SafeFd errorsWrite) = Fd.Pipe();
        SpawnedProcess? agent, receiver;
        using (streamRead)
        using (streamWrite)
        using (replyRead)
        using (replyWrite)
        using (errorsWrite)
        {
            agent = Spawner.Start(Path.Combine(_bin, "qfile-agent"), ["qfile-agent", .. files], environment, replyRead.Fd, streamWrite.Fd, 2, out Errno agentError);
            receiver = Spawner.Start("/bin/sh", ["sh", Path.Combine(_bin, "dom0-rpc", "qubes.ReceiveUpdates")], service, streamRead.Fd, replyWrite.Fd, errorsWrite.Fd, out Errno serviceError);
            Assert.True(agent != null, $"qfile-agent: {agentError}");
            Assert.True(receiver != null, $"the service: {serviceError}");
        }
        using (errorsRead)
        using (agent)
        using (receiver)
        {
            string errors = Encoding.UTF8.GetString(Fd.ReadToEnd(errorsRead.Fd));
            agent.WaitUntil(-1);
            receiver.WaitUntil(-1);
            return (agent.ExitCode!.Value, receiver.ExitCode!.Value, errors);
        }
    }

    [Fact]
    public void The_update_qubes_packages_arrive_through_the_service_script()
    {
        string send = Directory.CreateDirectory(Path.Combine(_base, "send")).FullName;
        string tiny = Path.Combine(send, "tiny-1.0-1.noarch.rpm"), other = Path.Combine(send, "other-2.5-1.noarch.rpm");
        File.Copy(_world.Signed, tiny);
        File.Copy(_world.Second, other);
        (int agent, int service, string errors) = Call("sys-update", tiny, other);
        Assert.True((agent, service) == (0, 0), errors);
        Assert.True(File.Exists(Path.Combine(Updates, "rpm", "tiny-1.0-1.noarch.rpm")));
        Assert.True(File.Exists(Path.Combine(Updates, "rpm", "other-2.5-1.noarch.rpm")));
        Assert.True(File.Exists(Path.Combine(Updates, "repodata", "repomd.xml")));
        Assert.Empty(Directory.GetFileSystemEntries(_tmp));
        Assert.Equal(["admin.property.Get+updatevm dom0 name dom0\0"], _requests.ToArray());
    }

    [Fact]
    public void A_refused_package_is_logged_and_nothing_is_kept()
    {
        string send = Directory.CreateDirectory(Path.Combine(_base, "send")).FullName;
        string package = Path.Combine(send, "tiny-1.0-1.noarch.rpm");
        File.Copy(_world.SignedByStranger, package);
        (_, int service, string errors) = Call("sys-update", package);
        Assert.Equal(1, service);
        Assert.Contains("Error while verifying tiny-1.0-1.noarch.rpm signature", errors, StringComparison.Ordinal);
        Assert.StartsWith("Error while verifying tiny-1.0-1.noarch.rpm signature", File.ReadAllText(Path.Combine(Updates, "errors")), StringComparison.Ordinal);
        Assert.False(Directory.Exists(Path.Combine(Updates, "rpm")));
        Assert.Empty(Directory.GetFileSystemEntries(_tmp));
    }

    [Fact]
    public void An_unset_updatevm_or_another_sender_changes_nothing()
    {
        string kept = Path.Combine(Directory.CreateDirectory(Path.Combine(Updates, "rpm")).FullName, "kept.rpm");
        File.WriteAllText(kept, "kept");
        _updateVmReply = "default=True type=vm ";
        (_, int service, string errors) = Call("sys-update", _world.Signed);
        Assert.Equal(1, service);
        Assert.Equal(string.Empty, errors);
        _updateVmReply = "default=False type=vm sys-update";
        (_, service, errors) = Call("sys-net", _world.Signed);
        Assert.Equal(1, service);
        Assert.Equal("Domain sys-net not allowed to send dom0 updates\n", errors);
        Assert.Equal("kept", File.ReadAllText(kept));
        Assert.Equal([kept], Directory.GetFileSystemEntries(Path.Combine(Updates, "rpm")));
        Assert.Equal([Path.Combine(Updates, "rpm")], Directory.GetFileSystemEntries(Updates));
        Assert.Empty(Directory.GetFileSystemEntries(_tmp));
    }
}
