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
        PolicyResult result;
        bool prompting;
        try
        {
            result = engine.Evaluate(call.ServiceAndArg, call.Source, call.IntendedTarget, call.RequestedSource, call.Mode);
            prompting = result.Resolution == Resolution.Ask && prompt != null;
            if (!prompting)
            {
                result = engine.Resolve(result, null);
            }
        }
        catch (Exception e) when (e is not OutOfMemoryException)
        {
            Refuse(connection.Fd, call, e);
            return false;
        }
        if (prompting)
        {
            Thread asking = new(() =>
            {
                using (connection)
                {
                    PolicyResult decided;
                    try
                    {
                        lock (_promptLock)
                        {
                            decided = engine.Resolve(result, prompt);
                        }
                    }
                    catch (Exception e) when (e is not OutOfMemoryException)
                    {
                        Refuse(connection.Fd, call, e);
                        return;
                    }
                    Answer(connection.Fd, engine, call, decided, new byte[PolicyEngine.MaxAnswerLength]);
                }
            })
            { IsBackground = true, Name = "ask" };
            asking.Start();
            return true;
        }
        Answer(connection.Fd, engine, call, result, _answer);
        return false;
    }

    /// <summary>Sends the decision's answer, or a denial when it cannot be written; logs it (qube-chosen text capped).</summary>
    private static void Answer(int fd, PolicyEngine engine, PolicyCall call, in PolicyResult result, byte[] buffer)
    {
        int written;
        try
        {
            Log($"{LogText.Cap(call.ServiceAndArg)}: {LogText.Cap(call.Source)} -> {LogText.Cap(call.IntendedTarget)}{(string.IsNullOrEmpty(call.RequestedSource) ? "" : $" (for {LogText.Cap(call.RequestedSource)})")}: {LogText.Cap(engine.Explain(result))}");
            // No notifier runs in the GUI qube yet: the journal is where the user hears of it.
            Notifications notify = engine.Notify(result);
            if ((notify & Notifications.Allowed) != 0)
            {
                Log($"notify {LogText.Cap(engine.NotifyGuiVm(result, Notifications.Allowed)!)}: allowed {LogText.Cap(call.ServiceAndArg)} from {LogText.Cap(engine.SourceName(result) ?? call.Source)} to {LogText.Cap(engine.TargetName(result))}");
            }
            if ((notify & Notifications.Denied) != 0)
            {
                // the target as the caller asked for it
                Log($"notify {LogText.Cap(engine.NotifyGuiVm(result, Notifications.Denied)!)}: denied {LogText.Cap(call.ServiceAndArg)} from {LogText.Cap(call.Source)} to {LogText.Cap(call.IntendedTarget)}");
            }
            if (!engine.TryWriteAnswer(result, buffer, out written))
            {
                Log("answer too long for the daemon to read: denying");
                Deny(fd);
                return;
            }
        }
        catch (Exception e) when (e is not OutOfMemoryException)
        {
            Refuse(fd, call, e);
            return;
        }
        FdPassing.Send(fd, buffer.AsSpan(0, written), default);
    }

    private static void Deny(int fd) => FdPassing.Send(fd, "result=deny"u8, default);

    /// <summary>A request the engine failed on is refused; the daemon goes on serving the others.</summary>
    private static void Refuse(int fd, PolicyCall call, Exception e)
    {
        Log($"{LogText.Cap(call.ServiceAndArg)}: {LogText.Cap(call.Source)} -> {LogText.Cap(call.IntendedTarget)}: deny: {e.GetType().Name}: {LogText.Cap(e.Message)}");
        Deny(fd);
    }

    private static void Log(string message) => Console.Error.WriteLine("qrexec-policy-daemon: " + message);
}
