using System;

namespace Qubes.Interop.Linux;

/// <summary>Single-call socket I/O for non-blocking sockets, where a partial transfer must be reported.</summary>
public static unsafe class SocketIo
{
    private const int CmsgHeader = 16; // sizeof(cmsghdr) on LP64
    private const int ControlSize = CmsgHeader + FdPassing.MaxFds * sizeof(int);

    /// <summary>
    /// One sendmsg of <paramref name="data"/> (MSG_NOSIGNAL|MSG_DONTWAIT), with <paramref name="fds"/>
    /// attached to the first byte. Returns the number of bytes sent (the descriptors went with them
    /// if it is positive) or -errno (EAGAIN when the socket buffer is full). Retries EINTR.
    /// </summary>
    public static int SendSome(int socket, ReadOnlySpan<byte> data, ReadOnlySpan<int> fds)
    {
        if (fds.Length > FdPassing.MaxFds || data.IsEmpty)
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
                nint n = Libc.sendmsg(socket, &msg, Libc.MSG_NOSIGNAL | Libc.MSG_DONTWAIT);
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
}
