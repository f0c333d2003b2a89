using System;
using System.Threading;
using Qubes.Interop.Linux;

namespace Qubes.Qrexec.Policy;

/// <summary>
/// The policy child's question to the policy (§11): the policy socket first, the policy program
/// when the socket cannot be reached or answers something malformed.
/// </summary>
public static class PolicyClient
{
    /// <summary>argv[0] of the policy program.</summary>
    public const string ProgramArgv0 = "qrexec-policy-exec";

    /// <summary>
    /// Asks the policy whether <paramref name="query"/> may proceed. Never throws for what the policy
    /// side does; every failure is an outcome with no decision and an error.
    /// </summary>
    /// <param name="query">The call to decide.</param>
    /// <param name="socketPath">The policy socket (normally <see cref="QrexecProtocol.DefaultPolicySocket"/>).</param>
    /// <param name="programPath">The fallback program (normally <see cref="QrexecProtocol.DefaultPolicyProgram"/>).</param>
    /// <param name="timeout">
    /// Longest wait for each of the two attempts (the socket's answer; the program's answer and
    /// exit), or <see cref="Timeout.InfiniteTimeSpan"/>. A socket that does not answer in time counts
    /// as no answer and the program is asked; a program that does not finish in time is killed.
    /// </param>
    public static PolicyOutcome Ask(PolicyQuery query, string socketPath, string programPath, TimeSpan timeout)
    {
        ArgumentNullException.ThrowIfNull(query);
        ArgumentNullException.ThrowIfNull(socketPath);
        ArgumentNullException.ThrowIfNull(programPath);
        if (timeout != Timeout.InfiniteTimeSpan && (timeout <= TimeSpan.Zero || timeout.TotalMilliseconds > int.MaxValue))
        {
            throw new ArgumentOutOfRangeException(nameof(timeout));
        }
        if (query.InvalidField() is string field)
        {
            return new PolicyOutcome(null, $"policy query field {field} contains a newline or NUL byte");
        }

        string socketError = AskSocket(query, socketPath, timeout, out PolicyDecision? decision);
        if (decision is not null)
        {
            return new PolicyOutcome(decision, null);
        }
        string programError = AskProgram(query, programPath, timeout, out decision);
        if (decision is not null)
        {
            return new PolicyOutcome(decision, null);
        }
        return new PolicyOutcome(null, $"policy socket {socketPath}: {socketError}; policy program {programPath}: {programError}");
    }

    /// <summary>Asks over the socket; returns the decision, or null and the reason.</summary>
    private static string AskSocket(PolicyQuery query, string socketPath, TimeSpan timeout, out PolicyDecision? decision)
    {
        decision = null;
        SafeFd? socket;
        Errno error;
        try
        {
            socket = UnixSocket.TryConnect(socketPath, out error);
        }
        catch (ArgumentException e)
        {
            return e.Message;
        }
        catch (LinuxException e)
        {
            return e.Message;
        }
        if (socket is null)
        {
            return $"connect: {error}";
        }
        using (socket)
        {
            long deadline = Deadline(timeout);
            error = FdPassing.Send(socket.Fd, query.ToSocketRequest(), default);
            if (error != Errno.None)
            {
                return $"send: {error}";
            }
            byte[] buffer = new byte[MaxRead];
            string? readError = ReadAnswer(socket.Fd, buffer, deadline, out int length);
            if (readError is not null)
            {
                return readError;
            }
            return PolicyResponse.TryParse(buffer.AsSpan(0, length), out decision, out string? parseError)
                ? string.Empty
                : $"malformed answer: {parseError}";
        }
    }

    /// <summary>Runs the program (§11.3); returns the decision, or null and the reason.</summary>
    private static string AskProgram(PolicyQuery query, string programPath, TimeSpan timeout, out PolicyDecision? decision)
    {
        decision = null;
        SafeFd ours;
        SafeFd theirs;
        try
        {
            (ours, theirs) = FdPassing.SocketPair();
        }
        catch (LinuxException e)
        {
            return e.Message;
        }

        long deadline = Deadline(timeout);
        SpawnedProcess? child;
        Errno startError;
        using (theirs)
        {
            // stdin and stdout on one socket; stderr stays ours
            child = Spawner.Start(programPath, [ProgramArgv0, "--", query.Source, query.IntendedTarget, query.ServiceAndArg],
                Spawner.CurrentEnvironment(), theirs.Fd, theirs.Fd, 2, out startError);
        }
        byte[] buffer = new byte[MaxRead];
        string? readError;
        int length;
        using (ours)
        {
            if (child == null)
            {
                return $"cannot start: {startError}";
            }
            readError = ReadAnswer(ours.Fd, buffer, deadline, out length);
        }
        using (child)
        {
            // Our end is closed: a program still writing gets EPIPE rather than blocking forever.
            if (child.WaitUntil(deadline))
            {
                return "timed out";
            }
        }
        if (child.TermSignal != 0)
        {
            return $"killed by signal {child.TermSignal}";
        }
        int code = child.ExitCode ?? QrexecProtocol.ExitProblem;
        if (code != 0)
        {
            return $"exited with status {code}";
        }
        if (readError is not null)
        {
            return readError;
        }
        return PolicyResponse.TryParse(buffer.AsSpan(0, length), out decision, out string? parseError)
            ? string.Empty
            : $"malformed answer: {parseError}";
    }

    /// <summary>One byte more than an answer may have, so that a too-long answer is seen as such.</summary>
    private const int MaxRead = PolicyResponse.MaxLength + 1;

    private static long Deadline(TimeSpan timeout) =>
        timeout == Timeout.InfiniteTimeSpan ? -1 : Environment.TickCount64 + (long)Math.Ceiling(timeout.TotalMilliseconds);

    /// <summary>
    /// Reads until EOF into <paramref name="buffer"/> (<see cref="MaxRead"/> bytes); filling it means
    /// the answer is too long. Returns null on EOF in time, else the reason.
    /// </summary>
    private static string? ReadAnswer(int fd, byte[] buffer, long deadline, out int length)
    {
        length = 0;
        while (true)
        {
            int wait = -1;
            if (deadline >= 0)
            {
                long left = deadline - Environment.TickCount64;
                if (left <= 0)
                {
                    return "timed out waiting for the answer";
                }
                wait = (int)Math.Min(left, int.MaxValue);
            }
            int ready = Fd.PollIn(fd, wait);
            if (ready == 0)
            {
                return "timed out waiting for the answer";
            }
            if (ready < 0 && ready != -(int)Errno.EPIPE)
            {
                return $"poll: {(Errno)(-ready)}";
            }
            // Readable, or hung up: a read tells data from EOF from error.
            int n = Fd.Read(fd, buffer.AsSpan(length));
            if (n == 0)
            {
                return null;
            }
            if (n < 0)
            {
                return $"read: {(Errno)(-n)}";
            }
            length += n;
            if (length == buffer.Length)
            {
                return $"answer longer than {PolicyResponse.MaxLength} bytes";
            }
        }
    }
}
