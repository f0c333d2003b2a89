namespace Qubes.Interop.Linux;

/// <summary>eventfd helpers: a counter a peer increments and the owner drains.</summary>
public static unsafe class EventFd
{
    /// <summary>Creates a non-blocking, close-on-exec eventfd.</summary>
    public static SafeFd Create() => SafeFd.FromResult(Libc.eventfd(0, Libc.EFD_CLOEXEC | Libc.EFD_NONBLOCK), "eventfd");

    /// <summary>Adds one to the counter. Returns None or the errno.</summary>
    public static Errno Signal(int fd)
    {
        ulong one = 1;
        while (true)
        {
            nint n = Libc.write(fd, &one, 8);
            if (n == 8)
            {
                return Errno.None;
            }
            Errno e = LastError.Get();
            if (e != Errno.EINTR)
            {
                // EAGAIN means the counter is saturated: the peer is already signalled.
                return e == Errno.EAGAIN ? Errno.None : e;
            }
        }
    }

    /// <summary>Reads and clears the counter of a non-blocking eventfd. Returns the count, 0 if none was pending, or -errno.</summary>
    public static long Drain(int fd)
    {
        ulong value;
        while (true)
        {
            nint n = Libc.read(fd, &value, 8);
            if (n == 8)
            {
                return (long)value;
            }
            Errno e = LastError.Get();
            if (e == Errno.EAGAIN)
            {
                return 0;
            }
            if (e != Errno.EINTR)
            {
                return -(int)e;
            }
        }
    }
}
