using System;
using System.Collections.Concurrent;
using System.Diagnostics;
using System.IO;
using System.Text;
using System.Threading;
using Qubes.Interop.Linux;
using Xunit;
using Qubes.Tests;

namespace Qubes.Qrexec.Tests.Policy;

/// <summary>
/// Tests that write scripts and start processes run alone: a script still open for writing in this
/// process while any thread forks cannot be executed (ETXTBSY).
/// </summary>
[CollectionDefinition(Name, DisableParallelization = true)]
public sealed class PolicyProcessCollection
{
    public const string Name = "policy processes";
}

/// <summary>A private temporary directory with a short path (socket paths are limited to 107 bytes).</summary>
internal sealed class TempDirectory : IDisposable
{
    public TempDirectory()
    {
        Path = Directory.CreateTempSubdirectory("qpol-").FullName;
    }

    public string Path { get; }

    public string File(string name) => System.IO.Path.Combine(Path, name);

    /// <summary>Writes an executable /bin/sh script and returns its path.</summary>
    public string Script(string name, string body)
    {
        if (!OperatingSystem.IsLinux())
        {
            throw new PlatformNotSupportedException();
        }
        string path = File(name);
        System.IO.File.WriteAllText(path, "#!/bin/sh\n" + body);
        System.IO.File.SetUnixFileMode(path, UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute);
        return path;
    }

    public void Dispose()
    {
        try
        {
            Directory.Delete(Path, recursive: true);
        }
        catch (IOException)
        {
        }
    }
}

/// <summary>Raw client side of the policy socket, for looking at exactly what a server sends.</summary>
internal static class RawPolicySocket
{
    /// <summary>Sends <paramref name="request"/> and returns everything read until EOF.</summary>
    public static byte[] Exchange(string socketPath, string request, int timeoutMs = 5000)
    {
        using SafeFd? socket = UnixSocket.TryConnect(socketPath, out Errno error);
        Assert.True(socket is not null, $"connect {socketPath}: {error}");
        Assert.Equal(Errno.None, FdPassing.Send(socket.Fd, Encoding.UTF8.GetBytes(request), default));
        return ReadToEnd(socket.Fd, timeoutMs);
    }

    public static byte[] ReadToEnd(int fd, int timeoutMs)
    {
        var received = new MemoryStream();
        byte[] buffer = new byte[8192];
        while (true)
        {
            int ready = Fd.PollIn(fd, timeoutMs);
            Assert.True(ready != 0, "timed out waiting for the server to answer or close");
            int n = Fd.Read(fd, buffer);
            if (n <= 0)
            {
                return received.ToArray();
            }
            received.Write(buffer, 0, n);
        }
    }

    /// <summary>Waits until something accepts connections at <paramref name="socketPath"/>.</summary>
    public static void WaitForListener(string socketPath, Process? server, int timeoutMs = 20000)
    {
        var clock = Stopwatch.StartNew();
        while (clock.ElapsedMilliseconds < timeoutMs)
        {
            Assert.False(server?.HasExited == true, "the policy server exited");
            using SafeFd? probe = UnixSocket.TryConnect(socketPath, out _);
            if (probe is not null)
            {
                return;
            }
            Thread.Sleep(10);
        }
        Assert.Fail($"nothing listens at {socketPath}");
    }
}

/// <summary>
/// An in-test policy socket server: answers the n-th connection with the n-th canned answer (the
/// last one repeats) after reading the request up to its empty line, and records the requests.
/// </summary>
internal sealed class FakePolicySocket : IDisposable
{
    private readonly SafeFd _listener;
    private readonly byte[][] _answers;
    private readonly Thread _thread;
    private volatile bool _stopping;

    public FakePolicySocket(string path, params byte[][] answers)
    {
        Path = path;
        _answers = answers;
        _listener = UnixSocket.Listen(path, 16);
        _thread = new Thread(Loop) { IsBackground = true, Name = "fake policy socket" };
        _thread.Start();
    }

    public FakePolicySocket(string path, params string[] answers)
        : this(path, Array.ConvertAll(answers, a => Encoding.UTF8.GetBytes(a)))
    {
    }

    public string Path { get; }

    public ConcurrentQueue<byte[]> Requests { get; } = new();

    private void Loop()
    {
        int served = 0;
        byte[] buffer = new byte[65536];
        while (!_stopping)
        {
            if (Fd.PollIn(_listener.Fd, 50) != 1)
            {
                continue;
            }
            int fd = UnixSocket.Accept(_listener.Fd);
            if (fd < 0)
            {
                continue;
            }
            using var connection = new SafeFd(fd);
            int length = 0;
            while (buffer.AsSpan(0, length).IndexOf("\n\n"u8) < 0 && Fd.PollIn(fd, 2000) == 1)
            {
                int n = Fd.Read(fd, buffer.AsSpan(length));
                if (n <= 0)
                {
                    break;
                }
                length += n;
            }
            Requests.Enqueue(buffer.AsSpan(0, length).ToArray());
            byte[] answer = _answers[Math.Min(served++, _answers.Length - 1)];
            if (answer.Length > 0)
            {
                FdPassing.Send(fd, answer, default);
            }
        }
    }

    public void Dispose()
    {
        _stopping = true;
        _thread.Join();
        _listener.Dispose();
    }
}

/// <summary>A built policy tool (<c>qrexec-policy-daemon</c>, <c>qrexec-policy-exec</c>, <c>qubes-policy</c>).</summary>
internal sealed class PolicyTool
{
    public PolicyTool(string name)
    {
        Name = name;
        Path = Locate(name);
    }

    public static PolicyTool Daemon { get; } = new("qrexec-policy-daemon");

    public static PolicyTool Exec { get; } = new("qrexec-policy-exec");

    public static PolicyTool QubesPolicy { get; } = new("qubes-policy");

    public string Name { get; }

    /// <summary>Path of the executable in the repository's artifacts, for this test build's configuration.</summary>
    public string Path { get; }

    private static string Locate(string name)
    {
        // artifacts/bin/<project>/<config>/: use the configuration the tests were built with.
        string configuration = new DirectoryInfo(AppContext.BaseDirectory.TrimEnd('/')).Name;
        string bin = System.IO.Path.Combine(TestRepository.Root, "artifacts", "bin", name);
        string path = System.IO.Path.Combine(bin, configuration, name);
        if (!File.Exists(path))
        {
            path = System.IO.Path.Combine(bin, "release", name);
        }
        Assert.True(File.Exists(path), $"{path} is missing: build QubesRuntime.sln first");
        return path;
    }

    private ProcessStartInfo StartInfo(string[] args, string? stdin)
    {
        var psi = new ProcessStartInfo(Path)
        {
            RedirectStandardInput = stdin != null,
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            UseShellExecute = false,
        };
        foreach (string a in args)
        {
            psi.ArgumentList.Add(a);
        }
        foreach (string variable in new[] { "QREXEC_POLICY_DIR", "QREXEC_POLICY_RUNTIME_DIR", "QREXEC_POLICY_LEGACY_DIR", "QREXEC_SYSTEM_INFO" })
        {
            psi.Environment.Remove(variable);
        }
        return psi;
    }

    /// <summary>Runs the tool to completion; returns its exit status, stdout and stderr.</summary>
    public (int Status, string Stdout, string Stderr) Run(string[] args, string? stdin = null)
    {
        using Process process = Process.Start(StartInfo(args, stdin))!;
        if (stdin != null)
        {
            process.StandardInput.Write(stdin);
            process.StandardInput.Close();
        }
        System.Threading.Tasks.Task<string> stderr = process.StandardError.ReadToEndAsync();
        string stdout = process.StandardOutput.ReadToEnd();
        Assert.True(process.WaitForExit(30000), $"{Name} did not exit");
        return (process.ExitCode, stdout, stderr.Result);
    }

    /// <summary>Starts the daemon and waits until it accepts connections at <paramref name="socketPath"/>; its log lines go to <paramref name="log"/>.</summary>
    public Process StartServer(string socketPath, ConcurrentQueue<string>? log, params string[] args)
    {
        ProcessStartInfo psi = StartInfo(["--socket-path", socketPath, .. args], null);
        psi.RedirectStandardOutput = false;
        Process process = Process.Start(psi)!;
        // Drain the log so that the server never blocks on a full pipe.
        process.ErrorDataReceived += (_, e) =>
        {
            if (e.Data != null)
            {
                log?.Enqueue(e.Data);
            }
        };
        process.BeginErrorReadLine();
        try
        {
            RawPolicySocket.WaitForListener(socketPath, process);
        }
        catch
        {
            Stop(process);
            throw;
        }
        return process;
    }

    public static void Stop(Process process)
    {
        if (!process.HasExited)
        {
            process.Kill();
        }
        process.WaitForExit();
        process.Dispose();
    }
}
