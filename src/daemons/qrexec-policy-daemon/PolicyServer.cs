using System;
using System.Threading;
using Qubes.Interop.Linux;
using Qubes.Qrexec.Policy;

namespace Qubes.Tools.PolicyDaemon;

/// <summary>
/// Serves the policy socket (qrexec §11): one request per connection, answered with the lines of
/// spec qrexec-policy §12. Requests are read and decided on one thread; an <c>ask</c> that needs the
/// user goes to a thread of its own, and the prompts are taken one at a time, so that a question
/// left open does not hold up the other calls. Before each decision the host looks for changed
/// policy files and system information.
/// </summary>
internal sealed class PolicyServer(PolicyHost host, IAskPrompt? prompt)
{
    /// <summary>How long a connected client may take to send its request.</summary>
    private const int RequestTimeoutMs = 2000;

    private readonly byte[] _request = new byte[PolicyCall.MaxLength];
    private readonly byte[] _answer = new byte[PolicyEngine.MaxAnswerLength];
    private readonly Lock _promptLock = new();

    /// <summary>Listens at <paramref name="socketPath"/> (replacing a stale socket) and serves forever.</summary>
    internal void Run(string socketPath)
    {
        using SafeFd listener = UnixSocket.Listen(socketPath, 64);
        PolicyEngine engine = host.Current;
        Log($"serving {socketPath}: {(engine.Error ?? $"{engine.Rules.Count} rules, {engine.System.Qubes.Count} qubes")}");
        while (true)
        {
            int fd = UnixSocket.Accept(listener.Fd);
            if (fd < 0)
            {
                Errno error = (Errno)(-fd);
                if (error != Errno.EINTR && error != Errno.ECONNRESET)
                {
                    Log($"accept: {error}");
                    // Out of descriptors or memory: give the system a moment instead of spinning.
                    Thread.Sleep(10);
                }
                continue;
            }
            SafeFd connection = new(fd);
            if (!Serve(connection))
            {
                connection.Dispose();
            }
        }
    }

    /// <summary>
    /// Reads one request and answers it, or closes without an answer when it is invalid. False when
    /// the connection is done with; true when an ask thread took it over.
    /// </summary>
    private bool Serve(SafeFd connection)
    {
        int length = 0;
        int end;
        while ((end = PolicyCall.FindEnd(_request.AsSpan(0, length))) < 0)
        {
            if (length == _request.Length || Fd.PollIn(connection.Fd, RequestTimeoutMs) != 1)
            {
                return false;
            }
            int n = Fd.Read(connection.Fd, _request.AsSpan(length));
            if (n <= 0)
            {
                return false;
            }
            length += n;
        }
        if (!PolicyCall.TryParse(_request.AsSpan(0, end), out PolicyCall? call, out string? error))
        {
            Log($"invalid request: {error}");
            return false;
        }
        PolicyEngine engine = host.Current;
        PolicyResult result = engine.Evaluate(call.ServiceAndArg, call.Source, call.IntendedTarget, call.RequestedSource, call.Mode);
        if (result.Resolution == Resolution.Ask && prompt != null)
        {
            Thread asking = new(() =>
            {
                using (connection)
                {
                    PolicyResult decided;
                    lock (_promptLock)
                    {
                        decided = engine.Resolve(result, prompt);
                    }
                    Answer(connection.Fd, engine, call, decided, new byte[PolicyEngine.MaxAnswerLength]);
                }
            })
            { IsBackground = true, Name = "ask" };
            asking.Start();
            return true;
        }
        Answer(connection.Fd, engine, call, engine.Resolve(result, null), _answer);
        return false;
    }

    private static void Answer(int fd, PolicyEngine engine, PolicyCall call, in PolicyResult result, byte[] buffer)
    {
        Log($"{call.ServiceAndArg}: {call.Source} -> {call.IntendedTarget}{(string.IsNullOrEmpty(call.RequestedSource) ? "" : $" (for {call.RequestedSource})")}: {engine.Explain(result)}");
        if (engine.ShouldNotify(result))
        {
            // No notifier runs in the GUI qube yet: the journal is where the user hears of it.
            Log($"notify: {(result.IsAllowed ? "allowed" : "denied")} {call.ServiceAndArg} from {call.Source} to {engine.TargetName(result)}");
        }
        if (!engine.TryWriteAnswer(result, buffer, out int written))
        {
            Log("answer too long for the daemon to read: denying");
            written = "result=deny"u8.Length;
            "result=deny"u8.CopyTo(buffer);
        }
        FdPassing.Send(fd, buffer.AsSpan(0, written), default);
    }

    private static void Log(string message) => Console.Error.WriteLine("qrexec-policy-daemon: " + message);
}
