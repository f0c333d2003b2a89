using System;

namespace Qubes.Interop.Linux;

/// <summary>Messages with file descriptors over AF_UNIX sockets (SCM_RIGHTS).</summary>
public static unsafe class FdPassing
{
    /// <summary>Most descriptors carried by one message.</summary>
    public const int MaxFds = 16;

    private const int CmsgHeader = 16; // sizeof(cmsghdr) on LP64, already 8-aligned
    private const int ControlSize = CmsgHeader + MaxFds * sizeof(int);

    /// <summary>Sends all of <paramref name="data"/>, attaching <paramref name="fds"/> to the first byte. Returns None or the errno.</summary>
    public static Errno Send(int socket, ReadOnlySpan<byte> data, ReadOnlySpan<int> fds)
    {
        if (data.IsEmpty)
        {
            return Errno.EINVAL;
        }
        int sent = 0;
        while (sent < data.Length)
        {
            int n = SendOnce(socket, data[sent..], sent == 0 ? fds : default, Libc.MSG_NOSIGNAL);
            if (n < 0)
            {
                return (Errno)(-n);
            }
            sent += n;
        }
        return Errno.None;
    }

    /// <summary>
    /// One non-blocking sendmsg of <paramref name="data"/> with <paramref name="fds"/> attached to the
    /// first byte. Returns the number of bytes sent (the descriptors went with them if it is positive)
    /// or -errno (EAGAIN when the socket buffer is full).
    /// </summary>
    public static int SendSome(int socket, ReadOnlySpan<byte> data, ReadOnlySpan<int> fds)
        => SendOnce(socket, data, fds, Libc.MSG_NOSIGNAL | Libc.MSG_DONTWAIT);

    /// <summary>One sendmsg (retried on EINTR): bytes sent or -errno.</summary>
    private static int SendOnce(int socket, ReadOnlySpan<byte> data, ReadOnlySpan<int> fds, int flags)
    {
        if (fds.Length > MaxFds || data.IsEmpty)
        {
            return -(int)Errno.EINVAL;
        }
        byte* control = stackalloc byte[ControlSize];
        fixed (byte* p = data)
        {
            Libc.iovec iov = new() { iov_base = p, iov_len = (nuint)data.Length };
            Libc.msghdr msg = new() { msg_iov = &iov, msg_iovlen = 1 };
            if (fds.Length > 0)
            {
                var cmsg = (Libc.cmsghdr*)control;
                cmsg->cmsg_len = (nuint)(CmsgHeader + fds.Length * sizeof(int));
                cmsg->cmsg_level = Libc.SOL_SOCKET;
                cmsg->cmsg_type = Libc.SCM_RIGHTS;
                fds.CopyTo(new Span<int>(control + CmsgHeader, fds.Length));
                msg.msg_control = control;
                msg.msg_controllen = (nuint)(CmsgHeader + ((fds.Length * sizeof(int) + 7) & ~7));
            }
            while (true)
            {
                nint n = Libc.sendmsg(socket, &msg, flags);
                if (n >= 0)
                {
                    return (int)n;
                }
                Errno e = LastError.Get();
                if (e != Errno.EINTR)
                {
                    return -(int)e;
                }
            }
        }
    }

    /// <summary>
    /// Receives up to <paramref name="buffer"/>.Length bytes and any descriptors sent with them
    /// (close-on-exec). Returns the byte count (0 at EOF) or -errno; <paramref name="fdCount"/>
    /// tells how many entries of <paramref name="fds"/> were filled. Descriptors beyond the span
    /// are closed and reported as -EMSGSIZE.
    /// </summary>
    public static int Receive(int socket, Span<byte> buffer, Span<int> fds, out int fdCount)
    {
        fdCount = 0;
        byte* control = stackalloc byte[ControlSize];
        fixed (byte* p = buffer)
        {
            while (true)
            {
                Libc.iovec iov = new() { iov_base = p, iov_len = (nuint)buffer.Length };
                Libc.msghdr msg = new() { msg_iov = &iov, msg_iovlen = 1, msg_control = control, msg_controllen = ControlSize };
                nint n = Libc.recvmsg(socket, &msg, Libc.MSG_CMSG_CLOEXEC);
                if (n < 0)
                {
                    Errno e = LastError.Get();
                    if (e == Errno.EINTR)
                    {
                        continue;
                    }
                    return -(int)e;
                }
                bool overflow = (msg.msg_flags & Libc.MSG_CTRUNC) != 0;
                if (msg.msg_controllen >= CmsgHeader)
                {
                    var cmsg = (Libc.cmsghdr*)control;
                    if (cmsg->cmsg_level == Libc.SOL_SOCKET && cmsg->cmsg_type == Libc.SCM_RIGHTS && cmsg->cmsg_len >= CmsgHeader)
                    {
                        int count = (int)((cmsg->cmsg_len - CmsgHeader) / sizeof(int));
                        int* received = (int*)(control + CmsgHeader);
                        for (int i = 0; i < count; i++)
                        {
                            if (fdCount < fds.Length)
                            {
                                fds[fdCount++] = received[i];
                            }
                            else
                            {
                                Libc.close(received[i]);
                                overflow = true;
                            }
                        }
                    }
                }
                if (overflow)
                {
                    return -(int)Errno.EMSGSIZE;
                }
                return (int)n;
            }
        }
    }

    /// <summary>Creates a connected AF_UNIX stream socket pair (close-on-exec).</summary>
    public static (SafeFd, SafeFd) SocketPair()
    {
        int* sv = stackalloc int[2];
        if (Libc.socketpair(Libc.AF_UNIX, Libc.SOCK_STREAM | Libc.SOCK_CLOEXEC, 0, sv) < 0)
        {
            throw new LinuxException("socketpair", LastError.Get());
        }
        return (new SafeFd(sv[0]), new SafeFd(sv[1]));
    }
}
