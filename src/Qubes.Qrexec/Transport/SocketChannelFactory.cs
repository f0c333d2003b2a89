using System;
using System.Diagnostics;
using System.Globalization;
using System.Runtime.InteropServices;
using System.Text;
using Qubes.Interop.Linux;

namespace Qubes.Qrexec.Transport;

/// <summary>
/// Makes <see cref="SocketChannel"/>s by the vchan-socket convention of upstream's test backend
/// (spec vchan.md §8.1): the channel between server domain S and client domain C on port P is the
/// AF_UNIX stream socket <c>&lt;directory&gt;/vchan.S.C.P.sock</c>.
/// </summary>
public sealed unsafe partial class SocketChannelFactory : IChannelFactory
{
    /// <summary>Socket directory when <see cref="DirectoryVariable"/> is not set.</summary>
    public const string DefaultDirectory = "/var/run/vchan";

    /// <summary>Environment variable naming the socket directory.</summary>
    public const string DirectoryVariable = "VCHAN_SOCKET_DIR";

    /// <summary>Environment variable holding the local domain id (parsed like C <c>atoi</c>).</summary>
    public const string DomainVariable = "VCHAN_DOMAIN";

    /// <summary>Pause between connection attempts while the server is not there yet.</summary>
    private const uint RetryMicroseconds = 200;

    /// <summary>Longest socket path: <c>sun_path</c> holds 108 bytes including the terminating NUL.</summary>
    private const int MaxPathBytes = 107;

    private const int SunPathOffset = 2;

    /// <summary>A factory for the sockets under <paramref name="directory"/>, as domain <paramref name="localDomain"/>.</summary>
    public SocketChannelFactory(string directory, int localDomain)
    {
        ArgumentNullException.ThrowIfNull(directory);
        Directory = directory;
        LocalDomain = localDomain;
    }

    /// <summary>The socket directory.</summary>
    public string Directory { get; }

    /// <inheritdoc/>
    public int LocalDomain { get; }

    /// <summary>
    /// The factory upstream's library would use in this process: directory from
    /// <c>VCHAN_SOCKET_DIR</c> (unset: <see cref="DefaultDirectory"/>), domain from
    /// <c>VCHAN_DOMAIN</c> (unset: 0).
    /// </summary>
    public static SocketChannelFactory FromEnvironment()
    {
        string directory = Environment.GetEnvironmentVariable(DirectoryVariable) ?? DefaultDirectory;
        string? domain = Environment.GetEnvironmentVariable(DomainVariable);
        return new SocketChannelFactory(directory, domain is null ? 0 : ParseAtoi(domain));
    }

    /// <summary>
    /// The socket path of the channel served by <paramref name="serverDomain"/> to
    /// <paramref name="clientDomain"/> on <paramref name="port"/> (upstream's <c>"%s/vchan.%d.%d.%d.sock"</c>).
    /// </summary>
    public static string SocketPath(string directory, int serverDomain, int clientDomain, int port)
        => string.Create(CultureInfo.InvariantCulture, $"{directory}/vchan.{serverDomain}.{clientDomain}.{port}.sock");

    /// <summary>
    /// C <c>atoi</c> as glibc does it: leading white space, an optional sign, decimal digits up to
    /// the first non-digit; no digits gives 0. Out-of-range values saturate to the C <c>long</c>
    /// range and are then truncated to 32 bits, as glibc's <c>(int)strtol(s, NULL, 10)</c>.
    /// </summary>
    public static int ParseAtoi(string text)
    {
        ArgumentNullException.ThrowIfNull(text);
        int i = 0;
        while (i < text.Length && IsCSpace(text[i]))
        {
            i++;
        }
        bool negative = false;
        if (i < text.Length && (text[i] == '+' || text[i] == '-'))
        {
            negative = text[i] == '-';
            i++;
        }
        // magnitude limit: 2^63 − 1 positive, 2^63 negative
        ulong limit = negative ? 1UL << 63 : long.MaxValue;
        ulong magnitude = 0;
        bool overflow = false;
        for (; i < text.Length && text[i] >= '0' && text[i] <= '9'; i++)
        {
            ulong digit = (ulong)(text[i] - '0');
            if (overflow || magnitude > (limit - digit) / 10)
            {
                overflow = true;
                continue;
            }
            magnitude = magnitude * 10 + digit;
        }
        long value;
        if (overflow)
        {
            value = negative ? long.MinValue : long.MaxValue;
        }
        else
        {
            value = negative ? unchecked((long)(0UL - magnitude)) : (long)magnitude;
        }
        return unchecked((int)value);
    }

    private static bool IsCSpace(char c) => c == ' ' || (c >= '\t' && c <= '\r');

    /// <inheritdoc/>
    /// <remarks>
    /// Removes a stale file at the path, binds and listens (backlog 1). The channel accepts exactly
    /// one connection. Buffers are <see cref="SocketChannel.DefaultBufferSize"/> or the requested
    /// minimum rounded up to a power of two, whichever is larger.
    /// Throws <see cref="LinuxException"/> (or <see cref="ArgumentException"/> for a path too
    /// long for <c>sun_path</c>) when the socket cannot be set up.
    /// </remarks>
    public IQrexecChannel Listen(int peerDomain, int port, int readMin, int writeMin)
    {
        int readSize = SocketChannel.BufferSizeFor(readMin);
        int writeSize = SocketChannel.BufferSizeFor(writeMin);
        string path = SocketPath(Directory, LocalDomain, peerDomain, port);
        SafeFd listener = UnixSocket.Listen(path, 1);
        try
        {
            Fd.SetNonBlocking(listener.Fd, true);
            return SocketChannel.ForListener(listener, readSize, writeSize);
        }
        catch
        {
            listener.Dispose();
            throw;
        }
    }

    /// <inheritdoc/>
    /// <remarks>
    /// Retries while the socket is missing or refuses (ENOENT, ECONNREFUSED) or its backlog is full
    /// (EAGAIN), every 200 µs, until <paramref name="timeout"/>; any other error fails at once.
    /// </remarks>
    public IQrexecChannel? Connect(int serverDomain, int port, TimeSpan timeout, out string? error)
    {
        string path = SocketPath(Directory, serverDomain, LocalDomain, port);
        Libc.sockaddr_un address = new() { sun_family = Libc.AF_UNIX };
        int pathBytes = Encoding.UTF8.GetByteCount(path);
        if (pathBytes > MaxPathBytes)
        {
            error = $"socket path too long ({pathBytes} bytes, limit {MaxPathBytes}): {path}";
            return null;
        }
        Encoding.UTF8.GetBytes(path, new Span<byte>(address.sun_path, MaxPathBytes + 1));
        uint addressLength = (uint)(SunPathOffset + pathBytes + 1);

        long start = Stopwatch.GetTimestamp();
        while (true)
        {
            int fd = Libc.socket(Libc.AF_UNIX, Libc.SOCK_STREAM | Libc.SOCK_CLOEXEC | Libc.SOCK_NONBLOCK, 0);
            if (fd < 0)
            {
                error = $"socket: {LastError.Get()}";
                return null;
            }
            SafeFd socket = new(fd);
            Errno result = Errno.None;
            while (Libc.connect(fd, &address, addressLength) < 0)
            {
                result = LastError.Get();
                if (result != Errno.EINTR)
                {
                    break;
                }
                result = Errno.None;
            }
            if (result == Errno.None)
            {
                error = null;
                return SocketChannel.ForConnected(socket, SocketChannel.DefaultBufferSize, SocketChannel.DefaultBufferSize);
            }
            socket.Dispose();
            if (result != Errno.ECONNREFUSED && result != Errno.ENOENT && result != Errno.EAGAIN)
            {
                error = $"connect {path}: {result} ({Marshal.GetPInvokeErrorMessage((int)result)})";
                return null;
            }
            if (SocketChannel.RemainingMilliseconds(start, timeout) == 0)
            {
                error = $"connect {path}: timed out after {timeout.TotalMilliseconds:0} ms ({result})";
                return null;
            }
            usleep(RetryMicroseconds);
        }
    }

    /// <summary>Nothing to release: channels own their sockets.</summary>
    public void Dispose()
    {
    }

    // usleep(3) is not in the shared interop; sub-millisecond pauses between connection attempts.
    [LibraryImport("libc.so.6", SetLastError = true)]
    private static partial int usleep(uint usec);
}
