using System;
using System.IO;
using System.Threading;
using Qubes.Interop.Linux;
using Qubes.Qrexec.Policy;

namespace Qubes.Tools.PolicyAllowlist;

/// <summary>
/// Serves the §11.1 socket protocol from an allow list: one synchronous accept loop, one request
/// per connection, no threads. Each request costs a stat of the rules file, which is read again
/// when its modification time or size changed; while it is missing or not valid every call is
/// denied.
/// </summary>
internal sealed class PolicyServer
{
    /// <summary>How long a connected client may take to send its request.</summary>
    private const int RequestTimeoutMs = 2000;

    private readonly string _rulesPath;
    private readonly byte[] _buffer = new byte[PolicyRequest.MaxLength];
    private AllowList _rules = AllowList.DenyAll;
    private DateTime _loadedWriteTime;
    private long _loadedLength = -1;

    internal PolicyServer(string rulesPath) => _rulesPath = rulesPath;

    /// <summary>Loads the rules for the first time; returns the problem when they cannot be used.</summary>
    internal string? Start() => Refresh();

    /// <summary>Listens at <paramref name="socketPath"/> (replacing a stale socket) and serves forever.</summary>
    internal void Run(string socketPath)
    {
        using SafeFd listener = UnixSocket.Listen(socketPath, 64);
        Console.Error.WriteLine($"qrexec-policy-allowlist: serving {socketPath} with {_rules.Count} rules from {_rulesPath}");
        while (true)
        {
            int fd = UnixSocket.Accept(listener.Fd);
            if (fd < 0)
            {
                Errno error = (Errno)(-fd);
                if (error != Errno.EINTR && error != Errno.ECONNRESET)
                {
                    Console.Error.WriteLine($"qrexec-policy-allowlist: accept: {error}");
                    // Out of descriptors or memory: give the system a moment instead of spinning.
                    Thread.Sleep(10);
                }
                continue;
            }
            using var connection = new SafeFd(fd);
            Serve(connection.Fd);
        }
    }

    /// <summary>Reads one request, answers it, or closes without an answer when it is invalid.</summary>
    internal void Serve(int fd)
    {
        int length = 0;
        int end;
        while ((end = PolicyRequest.FindEnd(_buffer.AsSpan(0, length))) < 0)
        {
            if (length == _buffer.Length || Fd.PollIn(fd, RequestTimeoutMs) != 1)
            {
                return;
            }
            int n = Fd.Read(fd, _buffer.AsSpan(length));
            if (n <= 0)
            {
                return;
            }
            length += n;
        }
        if (!PolicyRequest.TryParse(_buffer.AsSpan(0, end), out PolicyQuery? query, out string? error))
        {
            Console.Error.WriteLine($"qrexec-policy-allowlist: invalid request: {error}");
            return;
        }
        Refresh();
        byte[] answer = _rules.Answer(query.Source, query.IntendedTarget, query.ServiceAndArg);
        FdPassing.Send(fd, answer, default);
    }

    /// <summary>Re-reads the rules when the file changed; returns the current problem, if any.</summary>
    private string? Refresh()
    {
        var info = new FileInfo(_rulesPath);
        DateTime writeTime = info.Exists ? info.LastWriteTimeUtc : DateTime.MinValue;
        long size = info.Exists ? info.Length : -1;
        if (writeTime == _loadedWriteTime && size == _loadedLength)
        {
            return null;
        }
        _loadedWriteTime = writeTime;
        _loadedLength = size;
        string? error = $"{_rulesPath}: no such file";
        AllowList? rules = info.Exists ? AllowList.Load(_rulesPath, out error) : null;
        if (rules is null)
        {
            _rules = AllowList.DenyAll;
            Console.Error.WriteLine($"qrexec-policy-allowlist: {error}; denying every call until it is fixed");
            return error;
        }
        _rules = rules;
        return null;
    }
}
