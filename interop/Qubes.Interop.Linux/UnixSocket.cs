using System;
using System.Text;

namespace Qubes.Interop.Linux;

/// <summary>Path-bound AF_UNIX stream sockets.</summary>
public static unsafe class UnixSocket
{
    /// <summary>The longest path an AF_UNIX address holds, in bytes (sun_path is 108 with the terminating zero).</summary>
    private const int MaxPathBytes = 107;

    private static bool Fits(string path) => Encoding.UTF8.GetByteCount(path) <= MaxPathBytes;

    private static Libc.sockaddr_un Address(string path, out uint length)
    {
        Libc.sockaddr_un addr = new() { sun_family = Libc.AF_UNIX };
        int n = Encoding.UTF8.GetByteCount(path);
        if (n > MaxPathBytes)
        {
            throw new ArgumentException($"socket path too long ({n} bytes, limit {MaxPathBytes}): {path}", nameof(path));
        }
        Encoding.UTF8.GetBytes(path, new Span<byte>(addr.sun_path, MaxPathBytes + 1));
        length = (uint)(2 + n + 1);
        return addr;
    }

    private static int s_staged;

    /// <summary>
    /// Creates a listening socket at <paramref name="path"/>, replacing any stale file. The socket is
    /// bound under a hidden name in the same directory and renamed to <paramref name="path"/> only once
    /// it listens, so whoever waits for the file to appear can connect at once (a bound socket that does
    /// not listen yet refuses connections). Where the hidden name would not fit an AF_UNIX address, the
    /// socket is bound at <paramref name="path"/> directly.
    /// </summary>
    public static SafeFd Listen(string path, int backlog)
    {
        Address(path, out _); // the final name must fit too
        string staging = System.IO.Path.Combine(System.IO.Path.GetDirectoryName(path) ?? ".",
            $".{Environment.ProcessId}-{System.Threading.Interlocked.Increment(ref s_staged)}.sock~");
        bool staged = Fits(staging);
        if (!staged)
        {
            staging = path;
        }
        Libc.sockaddr_un addr = Address(staging, out uint len);
        Unlink(staging);
        SafeFd fd = SafeFd.FromResult(Libc.socket(Libc.AF_UNIX, Libc.SOCK_STREAM | Libc.SOCK_CLOEXEC, 0), "socket");
        if (Libc.bind(fd.Fd, &addr, len) < 0 || Libc.listen(fd.Fd, backlog) < 0)
        {
            Errno e = LastError.Get();
            fd.Dispose();
            Unlink(staging);
            throw new LinuxException($"bind/listen {path}", e);
        }
        if (staged)
        {
            try
            {
                System.IO.File.Move(staging, path, overwrite: true);
            }
            catch
            {
                fd.Dispose();
                Unlink(staging);
                throw;
            }
        }
        return fd;
    }

    private static void Unlink(string path)
    {
        try
        {
            System.IO.File.Delete(path);
        }
        catch (System.IO.DirectoryNotFoundException)
        {
        }
    }

    /// <summary>Connects to <paramref name="path"/> (a stream, or <paramref name="type"/>); returns null with the errno on failure.</summary>
    public static SafeFd? TryConnect(string path, out Errno error, int type = Libc.SOCK_STREAM)
    {
        SafeFd fd = SafeFd.FromResult(Libc.socket(Libc.AF_UNIX, type | Libc.SOCK_CLOEXEC, 0), "socket");
        Libc.sockaddr_un addr = Address(path, out uint len);
        while (Libc.connect(fd.Fd, &addr, len) < 0)
        {
            error = LastError.Get();
            if (error == Errno.EINTR)
            {
                continue;
            }
            fd.Dispose();
            return null;
        }
        error = Errno.None;
        return fd;
    }

    /// <summary>Accepts one connection (close-on-exec); returns -errno on failure.</summary>
    public static int Accept(int listener)
    {
        int fd = Libc.accept4(listener, null, null, Libc.SOCK_CLOEXEC);
        return fd >= 0 ? fd : -(int)LastError.Get();
    }

    /// <summary>Shuts down the sending direction: the peer reads the end of what was sent, and can still answer.</summary>
    public static void ShutdownSend(int socket) => Libc.shutdown(socket, Libc.SHUT_WR);

    /// <summary>Asks for <paramref name="bytes"/> of send and receive buffer (best effort: beyond the kernel's maximum only for a caller with CAP_NET_ADMIN).</summary>
    public static void SetBufferSizes(int socket, int bytes)
    {
        // beyond the system's limits (net.core.wmem_max, rmem_max) where the caller may
        if (Libc.setsockopt(socket, Libc.SOL_SOCKET, Libc.SO_SNDBUFFORCE, &bytes, sizeof(int)) != 0)
        {
            Libc.setsockopt(socket, Libc.SOL_SOCKET, Libc.SO_SNDBUF, &bytes, sizeof(int));
        }
        if (Libc.setsockopt(socket, Libc.SOL_SOCKET, Libc.SO_RCVBUFFORCE, &bytes, sizeof(int)) != 0)
        {
            Libc.setsockopt(socket, Libc.SOL_SOCKET, Libc.SO_RCVBUF, &bytes, sizeof(int));
        }
    }

    /// <summary>Pid of the process at the other end of a connected AF_UNIX socket.</summary>
    public static int PeerPid(int socket)
    {
        Libc.ucred cred;
        uint len = (uint)sizeof(Libc.ucred);
        return Libc.getsockopt(socket, Libc.SOL_SOCKET, Libc.SO_PEERCRED, &cred, &len) == 0 ? cred.pid : -1;
    }
}
