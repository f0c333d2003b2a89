using System;
using System.Buffers.Binary;
using System.Collections.Generic;
using System.Diagnostics;
using System.IO;
using System.Runtime.InteropServices;
using System.Text;
using System.Threading;
using System.Threading.Tasks;
using Qubes.Interop.Linux;
using Xunit;
using Qubes.Tests;

namespace Qubes.Qrexec.Tests.Native;

/// <summary>
/// Builds native/qrexec-client-vm.c once for the test class into a tree laid out as the build's
/// artifacts are (native/qrexec-client-vm, bin/qrexec-client-vm/release/qrexec-client-vm), the full
/// client there being a shell script that records its arguments and exits 42.
/// </summary>
public sealed class NativeClientBuild : IDisposable
{
    public const int FullClientStatus = 42;
    public const int OtherFullClientStatus = 43;

    public NativeClientBuild()
    {
        Root = Directory.CreateTempSubdirectory("qcvm-").FullName;
        FullClient = Path.Combine(Root, "bin", "qrexec-client-vm", "release", "qrexec-client-vm");
        Directory.CreateDirectory(Path.GetDirectoryName(FullClient)!);
        Directory.CreateDirectory(Path.Combine(Root, "native"));
        FullClientArgv = Path.Combine(Root, "full-client.argv");
        OtherFullClient = Path.Combine(Root, "other-full-client");
        OtherFullClientArgv = Path.Combine(Root, "other-full-client.argv");
        WriteScript(FullClient, FullClientArgv, FullClientStatus);
        WriteScript(OtherFullClient, OtherFullClientArgv, OtherFullClientStatus);

        Client = Path.Combine(Root, "native", "qrexec-client-vm");
        var gcc = new ProcessStartInfo("gcc") { RedirectStandardOutput = true, RedirectStandardError = true };
        foreach (string arg in new[]
        {
            "-std=c11", "-Wall", "-Wextra", "-Werror", "-O2",
            Path.Combine(TestRepository.Root, "native", "qrexec-client-vm.c"), "-o", Client,
        })
        {
            gcc.ArgumentList.Add(arg);
        }
        using Process p = Process.Start(gcc)!;
        string output = p.StandardOutput.ReadToEnd() + p.StandardError.ReadToEnd();
        p.WaitForExit();
        if (p.ExitCode != 0)
        {
            throw new InvalidOperationException($"gcc failed ({p.ExitCode}): {output}");
        }
    }

    /// <summary>Scratch directory holding the client, the scripts and the tests' sockets.</summary>
    public string Root { get; }

    public string Client { get; }

    /// <summary>The full client beside the client: records its arguments to <see cref="FullClientArgv"/>.</summary>
    public string FullClient { get; }

    public string FullClientArgv { get; }

    /// <summary>A second stand-in, for QREXEC_CLIENT_VM_FULL.</summary>
    public string OtherFullClient { get; }

    public string OtherFullClientArgv { get; }

    public void Dispose() => Directory.Delete(Root, recursive: true);


    /// <summary>A stand-in full client: its arguments (argv[1..]) each followed by a NUL, then the status.</summary>
    private static void WriteScript(string path, string argvFile, int status)
    {
        if (!OperatingSystem.IsLinux())
        {
            throw new PlatformNotSupportedException("the native client is Linux-only");
        }
        File.WriteAllText(path,
            "#!/bin/sh\n" +
            $": > '{argvFile}'\n" +
            $"for arg in \"$@\"; do printf '%s\\0' \"$arg\" >> '{argvFile}'; done\n" +
            $"exit {status}\n");
        File.SetUnixFileMode(path, UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute);
    }
}

public sealed partial class NativeClientTests : IClassFixture<NativeClientBuild>
{
    private const uint TriggerService4 = 0x213;
    private const uint HandedOver = 0xffffffff;
    private const int HeaderSize = 8;
    private const int DomainField = 64;
    private const int IdentField = 32;
    private const int TriggerFixed = 2 * DomainField + IdentField;
    private const int TimeoutMs = 30_000;

    private static int s_socketCounter;

    private readonly NativeClientBuild _build;

    public NativeClientTests(NativeClientBuild build)
    {
        _build = build;
        File.Delete(build.FullClientArgv);
        File.Delete(build.OtherFullClientArgv);
    }

    [Fact]
    public async Task Sends_one_trigger_with_the_callers_stdio_and_exits_with_the_agents_status()
    {
        using var agent = new FakeAgent(NewSocketPath());
        using Client client = Start(new[] { "--agent-socket=" + agent.Path, "$dispvm:default-dvm", "qubes.Test+some_arg" });

        using SafeFd connection = agent.Accept();
        Trigger trigger = FakeAgent.ReceiveTrigger(connection);
        try
        {
            Assert.Equal(TriggerService4, trigger.Type);
            Assert.Equal(TriggerFixed + "qubes.Test+some_arg".Length + 1, (int)trigger.Length);
            Assert.Equal(HeaderSize + (int)trigger.Length, trigger.Message.Length);
            ReadOnlySpan<byte> body = trigger.Message.AsSpan(HeaderSize);
            Assert.Equal(new byte[DomainField], body[..DomainField].ToArray());
            AssertPaddedField("@dispvm:default-dvm", body.Slice(DomainField, DomainField));
            AssertPaddedField("SOCKET", body.Slice(2 * DomainField, IdentField));
            Assert.Equal("qubes.Test+some_arg\0", Encoding.ASCII.GetString(body[TriggerFixed..]));

            // The three descriptors are the client's stdin, stdout and stderr, in that order.
            Assert.Equal(3, trigger.Fds.Length);
            byte[] input = Encoding.ASCII.GetBytes("to the service\n");
            client.Process.StandardInput.BaseStream.Write(input);
            client.Process.StandardInput.BaseStream.Flush();
            Assert.Equal(input, ReadExactly(trigger.Fds[0], input.Length));
            Assert.Equal(Errno.None, Fd.WriteAll(trigger.Fds[1], Encoding.ASCII.GetBytes("from the service\n")));
            Assert.Equal(Errno.None, Fd.WriteAll(trigger.Fds[2], Encoding.ASCII.GetBytes("service diagnostics\n")));
        }
        finally
        {
            trigger.CloseFds();
        }

        // Nothing more comes, and the client waits for the status.
        Assert.Equal(0, Fd.PollIn(connection.Fd, 200));
        Assert.False(client.Process.HasExited);
        Assert.Equal(Errno.None, Fd.WriteAll(connection.Fd, Reply(HandedOver, 7)));

        ClientResult result = await client.WaitAsync();
        Assert.Equal(7, result.ExitCode);
        Assert.Equal("from the service\n", result.Stdout);
        Assert.Equal("service diagnostics\n", result.Stderr);
        Assert.False(File.Exists(_build.FullClientArgv));
    }

    [Fact]
    public async Task A_closed_stdin_is_handed_over_as_dev_null()
    {
        using var agent = new FakeAgent(NewSocketPath());
        using Client client = Start("/bin/sh",
            new[] { "-c", "exec \"$0\" \"$@\" 0<&-", _build.Client, "--agent-socket=" + agent.Path, "work", "qubes.Test" }, null);
        using SafeFd connection = agent.Accept();
        Trigger trigger = FakeAgent.ReceiveTrigger(connection);
        try
        {
            Assert.Equal(3, trigger.Fds.Length);
            // /dev/null (at EOF at once), not the client's own socket, which would have taken fd 0.
            Assert.Equal(1, Fd.PollIn(trigger.Fds[0], 2000));
            Assert.Equal(0, Fd.Read(trigger.Fds[0], new byte[16]));
        }
        finally
        {
            trigger.CloseFds();
        }
        Assert.Equal(Errno.None, Fd.WriteAll(connection.Fd, Reply(HandedOver, 0)));
        ClientResult result = await client.WaitAsync();
        Assert.Equal(0, result.ExitCode);
    }

    [Fact]
    public async Task Agent_socket_as_a_separate_argument()
    {
        using var agent = new FakeAgent(NewSocketPath());
        using Client client = Start(new[] { "--agent-socket", agent.Path, "work", "qubes.Filecopy" });
        ClientResult result = await AnswerAsync(agent, client, "work", "qubes.Filecopy", status: 0);
        Assert.Equal(0, result.ExitCode);
        Assert.Equal("", result.Stderr);
    }

    [Fact]
    public async Task Agent_socket_from_the_environment()
    {
        using var agent = new FakeAgent(NewSocketPath());
        using Client client = Start(new[] { "work", "qubes.Test" },
            new Dictionary<string, string> { ["QREXEC_AGENT_SOCKET"] = agent.Path });
        ClientResult result = await AnswerAsync(agent, client, "work", "qubes.Test", status: 5);
        Assert.Equal(5, result.ExitCode);
    }

    [Fact]
    public async Task Agent_socket_option_wins_over_the_environment()
    {
        using var agent = new FakeAgent(NewSocketPath());
        using Client client = Start(new[] { "--agent-socket=" + agent.Path, "work", "qubes.Test" },
            new Dictionary<string, string> { ["QREXEC_AGENT_SOCKET"] = Path.Combine(_build.Root, "nothing-here") });
        ClientResult result = await AnswerAsync(agent, client, "work", "qubes.Test", status: 255);
        Assert.Equal(255, result.ExitCode);
    }

    [Fact]
    public async Task Close_without_a_reply_is_a_refusal()
    {
        using var agent = new FakeAgent(NewSocketPath());
        using Client client = Start(new[] { "--agent-socket=" + agent.Path, "work", "qubes.Test" });
        using (SafeFd connection = agent.Accept())
        {
            FakeAgent.ReceiveTrigger(connection).CloseFds();
        }
        ClientResult result = await client.WaitAsync();
        Assert.Equal(126, result.ExitCode);
        Assert.Contains("Request refused", result.Stderr, StringComparison.Ordinal);
        Assert.Equal("", result.Stdout);
    }

    [Fact]
    public async Task Exec_parameters_of_an_agent_without_the_hand_over_go_to_the_full_client()
    {
        // upstream's agent reads the request with read(): the descriptors are dropped, and it
        // answers with the data channel's domain and port, for the client to serve
        using var agent = new FakeAgent(NewSocketPath());
        string[] args = { "--agent-socket=" + agent.Path, "work", "qubes.Test" };
        using Client client = Start(args);
        using (SafeFd connection = agent.Accept())
        {
            Trigger trigger = FakeAgent.ReceiveTrigger(connection);
            trigger.CloseFds();
            Assert.Equal(TriggerService4, trigger.Type);
            Assert.Equal(Errno.None, Fd.WriteAll(connection.Fd, Reply(43, 1024)));
        }
        ClientResult result = await client.WaitAsync();
        Assert.Equal(NativeClientBuild.FullClientStatus, result.ExitCode);
        Assert.Equal(["--exec-params=43:1024", .. args], RecordedArgv(_build.FullClientArgv));
    }

    [Fact]
    public async Task A_copied_build_runs_the_full_client_beside_it()
    {
        // nothing of the tree the client was built in is compiled in: a copy uses its own full client
        string copy = Path.Combine(_build.Root, "copy");
        string client = Path.Combine(copy, "native", "qrexec-client-vm");
        string full = Path.Combine(copy, "bin", "qrexec-client-vm", "release", "qrexec-client-vm");
        Directory.CreateDirectory(Path.GetDirectoryName(client)!);
        Directory.CreateDirectory(Path.GetDirectoryName(full)!);
        File.Copy(_build.Client, client, overwrite: true);
        File.Copy(_build.OtherFullClient, full, overwrite: true);
        string[] args = { "-t", "work", "qubes.Test" };
        using Client started = Start(client, args, null);
        ClientResult result = await started.WaitAsync();
        Assert.Equal(NativeClientBuild.OtherFullClientStatus, result.ExitCode);
        Assert.Equal(args, RecordedArgv(_build.OtherFullClientArgv));
        Assert.False(File.Exists(_build.FullClientArgv));
    }

    [Fact]
    public async Task Short_reply_is_a_local_error()
    {
        using var agent = new FakeAgent(NewSocketPath());
        using Client client = Start(new[] { "--agent-socket=" + agent.Path, "work", "qubes.Test" });
        using (SafeFd connection = agent.Accept())
        {
            FakeAgent.ReceiveTrigger(connection).CloseFds();
            Assert.Equal(Errno.None, Fd.WriteAll(connection.Fd, new byte[] { 0xff, 0xff, 0xff, 0xff, 7, 0 }));
        }
        ClientResult result = await client.WaitAsync();
        Assert.Equal(1, result.ExitCode);
        Assert.Contains("short reply", result.Stderr, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Missing_agent_socket_is_a_local_error()
    {
        string path = Path.Combine(_build.Root, "no-agent");
        using Client client = Start(new[] { "--agent-socket=" + path, "work", "qubes.Test" });
        ClientResult result = await client.WaitAsync();
        Assert.Equal(1, result.ExitCode);
        Assert.Contains(path, result.Stderr, StringComparison.Ordinal);
        Assert.False(File.Exists(_build.FullClientArgv));
    }

    [Theory]
    [InlineData("-t", "work", "qubes.Test")]
    [InlineData("-T", "work", "qubes.Test")]
    [InlineData("--buffer-size=1", "work", "qubes.Test")]
    [InlineData("--no-filter-escape-chars-stdout", "work", "qubes.Test")]
    [InlineData("-s", "relay", "work", "qubes.Test")]
    [InlineData("--agent-socket=/nonexistent", "--prefix-data=x", "work", "qubes.Test")]
    [InlineData("work", "qubes.Test", "/bin/cat")]
    [InlineData("--", "work", "qubes.Test", "local-program", "-v")]
    [InlineData("work", "-t")]
    [InlineData("-h")]
    [InlineData("--help")]
    public async Task Everything_else_runs_the_full_client_with_the_same_arguments(params string[] args)
    {
        using Client client = Start(args);
        ClientResult result = await client.WaitAsync();
        Assert.Equal(NativeClientBuild.FullClientStatus, result.ExitCode);
        Assert.Equal(args, RecordedArgv(_build.FullClientArgv));
    }

    [Fact]
    public async Task Full_client_path_from_the_environment()
    {
        string[] args = { "-t", "work", "qubes.Test" };
        using Client client = Start(args, new Dictionary<string, string> { ["QREXEC_CLIENT_VM_FULL"] = _build.OtherFullClient });
        ClientResult result = await client.WaitAsync();
        Assert.Equal(NativeClientBuild.OtherFullClientStatus, result.ExitCode);
        Assert.Equal(args, RecordedArgv(_build.OtherFullClientArgv));
        Assert.False(File.Exists(_build.FullClientArgv));
    }

    [Fact]
    public async Task Full_client_that_cannot_run_is_a_local_error()
    {
        string missing = Path.Combine(_build.Root, "no-such-client");
        using Client client = Start(new[] { "-t", "work", "qubes.Test" },
            new Dictionary<string, string> { ["QREXEC_CLIENT_VM_FULL"] = missing });
        ClientResult result = await client.WaitAsync();
        Assert.Equal(1, result.ExitCode);
        Assert.Contains(missing, result.Stderr, StringComparison.Ordinal);
    }

    [Theory]
    [InlineData(1)]
    [InlineData(2)]
    public async Task A_terminal_on_stdout_or_stderr_runs_the_full_client(int terminalFd)
    {
        using SafeFd master = Pty.Open(out string slave);
        // The shell puts the terminal on the descriptor, then becomes the client.
        string[] args = { "--agent-socket=/nonexistent", "work", "qubes.Test" };
        var command = new List<string> { "-c", $"exec \"$0\" \"$@\" {terminalFd}>'{slave}'", _build.Client };
        command.AddRange(args);
        using Client client = Start("/bin/sh", command, null);
        ClientResult result = await client.WaitAsync();
        Assert.Equal(NativeClientBuild.FullClientStatus, result.ExitCode);
        Assert.Equal(args, RecordedArgv(_build.FullClientArgv));
    }

    [Theory]
    [InlineData]
    [InlineData("work")]
    [InlineData("work", "")]
    [InlineData("work", "+arg")]
    [InlineData("--agent-socket")]
    [InlineData("--agent-socket=/nonexistent", "work")]
    [InlineData("0123456789012345678901234567890123456789012345678901234567890123", "qubes.Test")]
    public async Task Usage_errors_exit_2(params string[] args)
    {
        using Client client = Start(args);
        ClientResult result = await client.WaitAsync();
        Assert.Equal(2, result.ExitCode);
        Assert.Contains("usage", result.Stderr, StringComparison.Ordinal);
        Assert.False(File.Exists(_build.FullClientArgv));
    }

    [Fact]
    public async Task Longest_target_and_service_name_are_sent()
    {
        string target = new('t', DomainField - 1);
        string service = "qubes.Test+" + new string('a', 65000 - 1 - "qubes.Test+".Length);
        using var agent = new FakeAgent(NewSocketPath());
        using Client client = Start(new[] { "--agent-socket=" + agent.Path, target, service });
        ClientResult result = await AnswerAsync(agent, client, target, service, status: 0);
        Assert.Equal(0, result.ExitCode);
    }

    [Fact]
    public async Task Service_name_one_byte_too_long_is_a_usage_error()
    {
        string service = "qubes.Test+" + new string('a', 65000 - "qubes.Test+".Length);
        using Client client = Start(new[] { "--agent-socket=/nonexistent", "work", service });
        ClientResult result = await client.WaitAsync();
        Assert.Equal(2, result.ExitCode);
    }

    private string NewSocketPath()
        => Path.Combine(_build.Root, $"agent-{Interlocked.Increment(ref s_socketCounter)}.sock");

    private Client Start(IEnumerable<string> args, IDictionary<string, string>? environment = null)
        => Start(_build.Client, args, environment);

    private static Client Start(string program, IEnumerable<string> args, IDictionary<string, string>? environment)
    {
        var psi = new ProcessStartInfo(program)
        {
            RedirectStandardInput = true,
            RedirectStandardOutput = true,
            RedirectStandardError = true,
        };
        foreach (string arg in args)
        {
            psi.ArgumentList.Add(arg);
        }
        psi.Environment.Remove("QREXEC_AGENT_SOCKET");
        psi.Environment.Remove("QREXEC_CLIENT_VM_FULL");
        if (environment != null)
        {
            foreach (KeyValuePair<string, string> pair in environment)
            {
                psi.Environment[pair.Key] = pair.Value;
            }
        }
        return new Client(Process.Start(psi)!);
    }

    /// <summary>Accepts the call, checks its fields, answers with <paramref name="status"/> and waits for the client.</summary>
    private static async Task<ClientResult> AnswerAsync(FakeAgent agent, Client client, string target, string service, int status)
    {
        using (SafeFd connection = agent.Accept())
        {
            Trigger trigger = FakeAgent.ReceiveTrigger(connection);
            trigger.CloseFds();
            Assert.Equal(TriggerService4, trigger.Type);
            Assert.Equal(3, trigger.Fds.Length);
            Assert.Equal(TriggerFixed + Encoding.UTF8.GetByteCount(service) + 1, (int)trigger.Length);
            ReadOnlySpan<byte> body = trigger.Message.AsSpan(HeaderSize);
            AssertPaddedField(target, body.Slice(DomainField, DomainField));
            Assert.Equal(service + "\0", Encoding.UTF8.GetString(body[TriggerFixed..]));
            Assert.Equal(Errno.None, Fd.WriteAll(connection.Fd, Reply(HandedOver, (uint)status)));
        }
        return await client.WaitAsync();
    }

    /// <summary>An 8-byte reply: the domain field, then the port or the status.</summary>
    private static byte[] Reply(uint domain, uint value)
    {
        byte[] reply = new byte[8];
        BinaryPrimitives.WriteUInt32LittleEndian(reply, domain);
        BinaryPrimitives.WriteUInt32LittleEndian(reply.AsSpan(4), value);
        return reply;
    }

    private static void AssertPaddedField(string expected, ReadOnlySpan<byte> field)
    {
        byte[] padded = new byte[field.Length];
        Encoding.ASCII.GetBytes(expected).CopyTo(padded, 0);
        Assert.Equal(padded, field.ToArray());
    }

    private static byte[] ReadExactly(int fd, int count)
    {
        byte[] data = new byte[count];
        int got = 0;
        while (got < count)
        {
            Assert.Equal(1, Fd.PollIn(fd, TimeoutMs));
            int n = Fd.Read(fd, data.AsSpan(got));
            Assert.True(n > 0, $"read: {n}");
            got += n;
        }
        return data;
    }

    private static string[] RecordedArgv(string file)
    {
        Assert.True(File.Exists(file), "the full client did not run");
        string recorded = File.ReadAllText(file);
        Assert.EndsWith("\0", recorded, StringComparison.Ordinal);
        return recorded.Length == 0 ? Array.Empty<string>() : recorded[..^1].Split('\0');
    }

    private sealed record ClientResult(int ExitCode, string Stdout, string Stderr);

    /// <summary>A started client with its output collected as it comes.</summary>
    private sealed class Client : IDisposable
    {
        private readonly Task<string> _stdout;
        private readonly Task<string> _stderr;

        public Client(Process process)
        {
            Process = process;
            _stdout = process.StandardOutput.ReadToEndAsync();
            _stderr = process.StandardError.ReadToEndAsync();
        }

        public Process Process { get; }

        public async Task<ClientResult> WaitAsync()
        {
            Process.StandardInput.Close();
            using var timeout = new CancellationTokenSource(TimeoutMs);
            await Process.WaitForExitAsync(timeout.Token);
            return new ClientResult(Process.ExitCode, await _stdout, await _stderr);
        }

        public void Dispose()
        {
            if (!Process.HasExited)
            {
                Process.Kill();
                Process.WaitForExit();
            }
            Process.Dispose();
        }
    }

    /// <summary>A received trigger message: the whole message and the descriptors that came with it.</summary>
    private sealed record Trigger(uint Type, uint Length, byte[] Message, int[] Fds)
    {
        public void CloseFds()
        {
            foreach (int fd in Fds)
            {
                Libc.close(fd);
            }
        }
    }

    /// <summary>The agent's trigger socket, as far as the client can tell.</summary>
    private sealed class FakeAgent : IDisposable
    {
        private readonly SafeFd _listener;

        public FakeAgent(string path)
        {
            Path = path;
            _listener = UnixSocket.Listen(path, 4);
        }

        public string Path { get; }

        public SafeFd Accept()
        {
            Assert.Equal(1, Fd.PollIn(_listener.Fd, TimeoutMs));
            int fd = UnixSocket.Accept(_listener.Fd);
            Assert.True(fd >= 0, $"accept: {(Errno)(-fd)}");
            return new SafeFd(fd);
        }

        /// <summary>
        /// Reads one whole message. The descriptors must come with its first bytes; the rest of a
        /// long message may follow in further reads.
        /// </summary>
        public static Trigger ReceiveTrigger(SafeFd connection)
        {
            byte[] buffer = new byte[HeaderSize + TriggerFixed + 65000 + 1];
            Span<int> fds = stackalloc int[FdPassing.MaxFds];
            Assert.Equal(1, Fd.PollIn(connection.Fd, TimeoutMs));
            int got = FdPassing.Receive(connection.Fd, buffer, fds, out int fdCount);
            Assert.True(got > 0, $"recvmsg: {got}");
            int[] received = fds[..fdCount].ToArray();
            int total = -1; // unknown until the header is in
            while (total < 0 || got < total)
            {
                if (total < 0 && got >= HeaderSize)
                {
                    uint length = BinaryPrimitives.ReadUInt32LittleEndian(buffer.AsSpan(4));
                    total = HeaderSize + (int)Math.Min(length, (uint)(buffer.Length - HeaderSize));
                    continue;
                }
                Assert.Equal(1, Fd.PollIn(connection.Fd, TimeoutMs));
                int n = Fd.Read(connection.Fd, buffer.AsSpan(got, (total < 0 ? HeaderSize : total) - got));
                Assert.True(n > 0, $"read: {n}");
                got += n;
            }
            Assert.Equal(total, got);
            return new Trigger(
                BinaryPrimitives.ReadUInt32LittleEndian(buffer),
                BinaryPrimitives.ReadUInt32LittleEndian(buffer.AsSpan(4)),
                buffer[..total],
                received);
        }

        public void Dispose() => _listener.Dispose();
    }

    /// <summary>A pseudo-terminal, so that the client can be shown a terminal on stdout or stderr.</summary>
    private static unsafe partial class Pty
    {
        private const int ONoctty = 0x100;

        public static SafeFd Open(out string slavePath)
        {
            SafeFd master = SafeFd.FromResult(posix_openpt(Libc.O_RDWR | ONoctty | Libc.O_CLOEXEC), "posix_openpt");
            byte* name = stackalloc byte[128];
            if (grantpt(master.Fd) != 0 || unlockpt(master.Fd) != 0 || ptsname_r(master.Fd, name, 128) != 0)
            {
                master.Dispose();
                throw new InvalidOperationException("cannot set up a pseudo-terminal");
            }
            slavePath = Marshal.PtrToStringUTF8((IntPtr)name)!;
            return master;
        }

        [LibraryImport("libc.so.6", SetLastError = true)]
        private static partial int posix_openpt(int flags);

        [LibraryImport("libc.so.6", SetLastError = true)]
        private static partial int grantpt(int fd);

        [LibraryImport("libc.so.6", SetLastError = true)]
        private static partial int unlockpt(int fd);

        [LibraryImport("libc.so.6")]
        private static partial int ptsname_r(int fd, byte* buffer, nuint length);
    }
}
