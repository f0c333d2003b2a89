using System;
using System.Diagnostics.CodeAnalysis;
using System.Linq;
using System.Text;
using System.Threading;
using Qubes.Interop.Linux;
using Qubes.Qrexec.Policy;

namespace Qubes.Tools.PolicyDaemon;

/// <summary>
/// One of the dom0 qrexec socket services <c>policy.EvalSimple</c> and <c>policy.EvalGUI</c>
/// (spec qrexec-policy §14), as upstream's policy daemon serves them: would a call be allowed?
/// dom0's qrexec connects, sends the service descriptor <c>policy.EvalX+SERVICE CALLER keyword
/// adminvm</c> and a NUL, then passes on what the calling qube wrote: <c>SOURCE\0TARGET</c>. The
/// service given as the argument is evaluated from SOURCE to TARGET in evaluate-only and
/// assume-yes mode, and the answer is its <c>result=allow</c> or <c>result=deny</c> line and a
/// newline. <c>policy.EvalGUI</c> answers only a caller that is the GUI qube of both SOURCE and
/// TARGET (both carry the tag <c>guivm-CALLER</c>). Anything malformed is closed without an answer.
/// </summary>
internal sealed class EvalServer(PolicyHost host, string serviceName, bool checkGui)
{
    /// <summary>The longest part of the descriptor (before its space, or its NUL) that is read: upstream's stream limit.</summary>
    private const int MaxDescriptor = 64 * 1024;

    /// <summary>The most bytes of the caller's data read: SOURCE, NUL and TARGET at their longest, and spare.</summary>
    private const int MaxData = 96;

    private const int MaxSource = 31;
    private const int MaxTarget = 63;

    /// <summary>How long a connected client may take to send each part.</summary>
    private const int ReadTimeoutMs = 2000;

    private readonly byte[] _buffer = new byte[2 * MaxDescriptor + 2 + MaxData];

    /// <summary>The service served, <c>policy.EvalSimple</c> or <c>policy.EvalGUI</c>.</summary>
    internal string ServiceName => serviceName;

    /// <summary>Serves connections on <paramref name="listener"/> one at a time, forever, on a thread of its own.</summary>
    internal void Start(SafeFd listener)
    {
        Thread thread = new(() =>
        {
            while (true)
            {
                int fd = UnixSocket.Accept(listener.Fd);
                if (fd < 0)
                {
                    Errno error = (Errno)(-fd);
                    if (error != Errno.EINTR && error != Errno.ECONNRESET)
                    {
                        Log($"accept: {error}");
                        Thread.Sleep(10);
                    }
                    continue;
                }
                using SafeFd connection = new(fd);
                try
                {
                    Serve(connection.Fd);
                }
                catch (Exception e) when (e is not OutOfMemoryException)
                {
                    // as upstream: a request the service fails on gets no answer
                    Log($"{e.GetType().Name}: {LogText.Cap(e.Message)}");
                }
            }
        })
        { IsBackground = true, Name = serviceName };
        thread.Start();
    }

    /// <summary>Reads one request and answers it, or returns without an answer when it is not one.</summary>
    private void Serve(int fd)
    {
        int length = Receive(fd);
        if (length < 0)
        {
            return;
        }
        ReadOnlySpan<byte> received = _buffer.AsSpan(0, length);
        int space = received.IndexOf((byte)' ');
        int nul = space < 0 ? -1 : received[(space + 1)..].IndexOf((byte)0);
        if (nul < 0)
        {
            return;
        }
        nul += space + 1;
        ReadOnlySpan<byte> command = received[..space];
        ReadOnlySpan<byte> metadata = received[(space + 1)..nul];
        ReadOnlySpan<byte> data = received[(nul + 1)..];
        data = data[..Math.Min(data.Length, MaxData)];

        int plus = command.IndexOf((byte)'+');
        ReadOnlySpan<byte> invoked = plus < 0 ? command : command[..plus];
        int callerEnd = metadata.IndexOf((byte)' ');
        if (!TryAscii(callerEnd < 0 ? metadata : metadata[..callerEnd], out string? caller))
        {
            return;
        }
        if (!invoked.SequenceEqual(Encoding.ASCII.GetBytes(serviceName)))
        {
            // dom0's qrexec connects a service only under its own name
            Log($"invoked with incorrect name {LogText.Cap(Encoding.UTF8.GetString(invoked))} by {LogText.Cap(caller)}");
            return;
        }
        ReadOnlySpan<byte> queried = plus < 0 ? default : command[(plus + 1)..];
        if (queried.IsEmpty || queried[0] == (byte)'+')
        {
            Log($"{LogText.Cap(caller)} did not give the service to query as the argument");
            return;
        }

        int separator = data.IndexOf((byte)0);
        if (separator < 0)
        {
            Log($"invalid data from {LogText.Cap(caller)}: no NUL between source and target");
            return;
        }
        ReadOnlySpan<byte> untrustedSource = data[..separator];
        ReadOnlySpan<byte> untrustedTarget = data[(separator + 1)..];
        if (untrustedTarget.Length is < 1 or > MaxTarget || untrustedSource.Length is < 1 or > MaxSource)
        {
            Log($"{LogText.Cap(caller)} sent a source of {untrustedSource.Length} or a target of {untrustedTarget.Length} bytes (1-{MaxSource}, 1-{MaxTarget})");
            return;
        }
        if (!IsDomainName(untrustedSource) || !IsDomainName(untrustedTarget))
        {
            Log($"invalid data from {LogText.Cap(caller)}");
            return;
        }
        string source = Encoding.ASCII.GetString(untrustedSource);
        string target = Encoding.ASCII.GetString(untrustedTarget);
        if (!TryAscii(queried, out string? serviceAndArg))
        {
            return;
        }

        PolicyEngine engine = host.Current;
        if (checkGui && !(IsGuiOf(engine.System, caller, source) && IsGuiOf(engine.System, caller, target)))
        {
            Log($"can only be invoked by a qube that provides GUI to both the source and the target, not {LogText.Cap(caller)}");
            return;
        }
        PolicyResult result = engine.Evaluate(serviceAndArg, source, target, null, EvaluationMode.JustEvaluate | EvaluationMode.AssumeYesForAsk);
        Log($"{LogText.Cap(serviceAndArg)}: {source} -> {target} (asked by {LogText.Cap(caller)}): {LogText.Cap(engine.Explain(result))}");
        FdPassing.Send(fd, Encoding.ASCII.GetBytes(engine.FormatAnswer(result) + "\n"), default);
    }

    /// <summary>
    /// Reads the descriptor (through its NUL) and then the caller's data until end of input or
    /// <see cref="MaxData"/> bytes of it. The length read, or -1 when the client was too slow, went
    /// away before the descriptor ended, or sent a descriptor part longer than upstream reads.
    /// </summary>
    private int Receive(int fd)
    {
        int length = 0;
        while (true)
        {
            int space = _buffer.AsSpan(0, length).IndexOf((byte)' ');
            int nul = space < 0 ? -1 : _buffer.AsSpan(space + 1, length - space - 1).IndexOf((byte)0);
            int commandLength = space < 0 ? length : space;
            int metadataLength = space < 0 ? 0 : nul < 0 ? length - space - 1 : nul;
            if (commandLength > MaxDescriptor || metadataLength > MaxDescriptor)
            {
                return -1;
            }
            int end = nul < 0 ? _buffer.Length : space + 1 + nul + 1 + MaxData;
            if (length >= end)
            {
                return length;
            }
            int ready = Fd.PollIn(fd, ReadTimeoutMs);
            if (ready == 0 || (ready < 0 && ready != -(int)Errno.EPIPE))
            {
                return -1;
            }
            // a hang-up without data is the end of the input, as a read of nothing is
            int n = ready == 1 ? Fd.Read(fd, _buffer.AsSpan(length, end - length)) : 0;
            if (n < 0)
            {
                return -1;
            }
            if (n == 0)
            {
                return nul >= 0 ? length : -1;
            }
            length += n;
        }
    }

    /// <summary>Whether <paramref name="name"/> is made only of the characters qrexec allows in a qube name: <c>[A-Za-z0-9@_.-]</c>.</summary>
    private static bool IsDomainName(ReadOnlySpan<byte> name)
    {
        foreach (byte b in name)
        {
            if (!(char.IsAsciiLetterOrDigit((char)b) || b is (byte)'@' or (byte)'_' or (byte)'-' or (byte)'.'))
            {
                return false;
            }
        }
        return true;
    }

    /// <summary>Whether <paramref name="qube"/> is a qube of the system that carries the tag <c>guivm-CALLER</c>.</summary>
    private static bool IsGuiOf(SystemInfo system, string caller, string qube)
        => qube[0] != '@' && system.Find(qube) is { } info && info.Tags.Contains("guivm-" + caller);

    private static bool TryAscii(ReadOnlySpan<byte> bytes, [NotNullWhen(true)] out string? text)
    {
        foreach (byte b in bytes)
        {
            if (b >= 0x80)
            {
                text = null;
                return false;
            }
        }
        text = Encoding.ASCII.GetString(bytes);
        return true;
    }

    private void Log(string message) => Console.Error.WriteLine($"qrexec-policy-daemon: {serviceName}: {message}");
}
