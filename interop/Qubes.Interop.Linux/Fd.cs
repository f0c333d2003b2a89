using System;

namespace Qubes.Interop.Linux;

/// <summary>Small descriptor helpers that return errno instead of throwing.</summary>
public static unsafe class Fd
{
    /// <summary>Writes all of <paramref name="data"/>, retrying on EINTR. Returns None or the errno.</summary>
    public static Errno WriteAll(int fd, ReadOnlySpan<byte> data)
    {
        fixed (byte* p = data)
        {
            int done = 0;
            while (done < data.Length)
            {
                nint n = Libc.write(fd, p + done, (nuint)(data.Length - done));
                if (n < 0)
                {
                    Errno e = LastError.Get();
                    if (e == Errno.EINTR)
                    {
                        continue;
                    }
                    return e;
                }
                done += (int)n;
            }
        }
        return Errno.None;
    }

    /// <summary>Writes all of <paramref name="data"/> at <paramref name="offset"/> (pwrite, the file position untouched), retrying on EINTR. Returns None or the errno.</summary>
    public static Errno WriteAllAt(int fd, ReadOnlySpan<byte> data, long offset)
    {
        fixed (byte* p = data)
        {
            int done = 0;
            while (done < data.Length)
            {
                nint n = Libc.pwrite(fd, p + done, (nuint)(data.Length - done), offset + done);
                if (n < 0)
                {
                    Errno e = LastError.Get();
                    if (e == Errno.EINTR)
                    {
                        continue;
                    }
                    return e;
                }
                done += (int)n;
            }
        }
        return Errno.None;
    }

    /// <summary>A pipe, both ends close-on-exec.</summary>
    public static (SafeFd Read, SafeFd Write) Pipe()
    {
        int* fds = stackalloc int[2];
        if (Libc.pipe2(fds, Libc.O_CLOEXEC) < 0)
        {
            throw new LinuxException("pipe2", LastError.Get());
        }
        return (new SafeFd(fds[0]), new SafeFd(fds[1]));
    }

    /// <summary>
    /// Points <paramref name="fd"/>, and every other descriptor of this process that shares its open
    /// file description, at /dev/null: the file loses all of this process's references (a reader
    /// of a pipe sees its end) while the descriptor numbers stay taken. The runtime may hold
    /// duplicates of the standard descriptors of its own.
    /// </summary>
    public static void DetachFile(int fd)
    {
        int devNull = Libc.open("/dev/null", Libc.O_RDWR | Libc.O_CLOEXEC, 0);
        if (devNull < 0)
        {
            return;
        }
        int self = Environment.ProcessId;
        foreach (string entry in System.IO.Directory.EnumerateFileSystemEntries("/proc/self/fd"))
        {
            if (int.TryParse(System.IO.Path.GetFileName(entry), out int other) && other != fd && other != devNull
                && Libc.kcmp(self, Libc.KCMP_FILE, fd, other) == 0)
            {
                Libc.dup3(devNull, other, (Libc.fcntl(other, Libc.F_GETFD, 0) & Libc.FD_CLOEXEC) != 0 ? Libc.O_CLOEXEC : 0);
            }
        }
        Libc.dup3(devNull, fd, 0);
        Libc.close(devNull);
    }

    /// <summary>fsync of a directory, so that a rename or removal in it survives a crash. Returns None or the errno.</summary>
    public static Errno SyncDirectory(string path)
    {
        int fd = Libc.open(path, Libc.O_RDONLY | Libc.O_DIRECTORY | Libc.O_CLOEXEC, 0);
        if (fd < 0)
        {
            return LastError.Get();
        }
        using SafeFd handle = new(fd);
        return Libc.fsync(fd) == 0 ? Errno.None : LastError.Get();
    }

    /// <summary>Fills <paramref name="buffer"/> (blocking); returns the bytes read, fewer only at EOF, or -errno.</summary>
    public static int ReadFully(int fd, Span<byte> buffer)
    {
        int done = 0;
        while (done < buffer.Length)
        {
            int n = Read(fd, buffer[done..]);
            if (n < 0)
            {
                return n;
            }
            if (n == 0)
            {
                break;
            }
            done += n;
        }
        return done;
    }

    /// <summary>Reads up to <paramref name="buffer"/>.Length bytes; returns count (0 at EOF) or -errno.</summary>
    public static int Read(int fd, Span<byte> buffer)
    {
        fixed (byte* p = buffer)
        {
            while (true)
            {
                nint n = Libc.read(fd, p, (nuint)buffer.Length);
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

    /// <summary>Reads up to <paramref name="buffer"/>.Length bytes at <paramref name="offset"/>; returns count (0 at EOF) or -errno.</summary>
    public static int ReadAt(int fd, Span<byte> buffer, long offset)
    {
        fixed (byte* p = buffer)
        {
            while (true)
            {
                nint n = Libc.pread(fd, p, (nuint)buffer.Length, offset);
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
    /// Moves <paramref name="length"/> bytes of <paramref name="file"/> from <paramref name="offset"/>
    /// into the pipe <paramref name="pipe"/> (blocking while it is full), its pages referenced rather
    /// than copied. Returns None, EOF as <see cref="Errno.ENODATA"/> when the file ends first, or the errno
    /// (EINVAL when the file system cannot splice: nothing was moved then).
    /// </summary>
    public static Errno SpliceToPipe(int file, long offset, int pipe, int length)
    {
        while (length > 0)
        {
            nint n = Libc.splice(file, &offset, pipe, null, (nuint)length, Libc.SPLICE_F_MORE);
            if (n < 0)
            {
                Errno e = LastError.Get();
                if (e == Errno.EINTR)
                {
                    continue;
                }
                return e;
            }
            if (n == 0)
            {
                return Errno.ENODATA;
            }
            length -= (int)n;
        }
        return Errno.None;
    }

    /// <summary>Sets or clears O_NONBLOCK.</summary>
    public static void SetNonBlocking(int fd, bool nonBlocking)
    {
        int flags = Libc.fcntl(fd, Libc.F_GETFL, 0);
        if (flags < 0)
        {
            throw new LinuxException("fcntl F_GETFL", LastError.Get());
        }
        flags = nonBlocking ? flags | Libc.O_NONBLOCK : flags & ~Libc.O_NONBLOCK;
        if (Libc.fcntl(fd, Libc.F_SETFL, flags) < 0)
        {
            throw new LinuxException("fcntl F_SETFL", LastError.Get());
        }
    }

    /// <summary>
    /// Marks every descriptor above 2 close-on-exec: what this process inherited (a pipe of the shell
    /// that started it, say) reaches none of the processes it starts. For daemons, at start.
    /// </summary>
    public static void CloseInheritedOnExec()
    {
        if (Libc.close_range(3, uint.MaxValue, Libc.CLOSE_RANGE_CLOEXEC) != 0)
        {
            throw new LinuxException("close_range", LastError.Get());
        }
    }

    /// <summary>Clears FD_CLOEXEC so that a started child process inherits the descriptor.</summary>
    public static void SetInheritable(int fd, bool inheritable)
    {
        if (Libc.fcntl(fd, Libc.F_SETFD, inheritable ? 0 : Libc.FD_CLOEXEC) < 0)
        {
            throw new LinuxException("fcntl F_SETFD", LastError.Get());
        }
    }

    /// <summary>
    /// Whether <paramref name="fd"/> reports a hang-up or an error now (poll's POLLHUP, POLLERR or
    /// POLLNVAL), without waiting and without regard to readability. A Unix stream socket hangs up
    /// when its peer closed it or shut down both directions; a peer that only shut down its write
    /// side leaves it readable at EOF, which is no hang-up. Returns 1 hung up, 0 not, or -errno.
    /// </summary>
    public static int HungUp(int fd)
    {
        Libc.pollfd p = new() { fd = fd, events = 0 }; // POLLHUP, POLLERR and POLLNVAL are reported whatever is asked
        while (true)
        {
            int r = Libc.poll(&p, 1, 0);
            if (r < 0)
            {
                Errno e = LastError.Get();
                if (e == Errno.EINTR)
                {
                    continue;
                }
                return -(int)e;
            }
            return r > 0 && (p.revents & (Libc.POLLHUP | Libc.POLLERR | Libc.POLLNVAL)) != 0 ? 1 : 0;
        }
    }

    /// <summary>Everything <paramref name="fd"/> gives until its end (or a read error, which ends it too).</summary>
    public static byte[] ReadToEnd(int fd)
    {
        byte[] data = new byte[4096];
        int length = 0;
        while (ReadMore(fd, ref data, ref length))
        {
        }
        return data.AsSpan(0, length).ToArray();
    }

    /// <summary>
    /// Everything two descriptors give until both end, read as it comes (a child's output and error
    /// pipes: reading one to its end first could leave the child blocked on a full other one).
    /// </summary>
    public static (byte[] First, byte[] Second) ReadToEnd(int first, int second)
    {
        byte[] a = new byte[4096], b = new byte[256];
        int lengthA = 0, lengthB = 0;
        bool openA = true, openB = true;
        Libc.pollfd* p = stackalloc Libc.pollfd[2];
        while (openA || openB)
        {
            p[0] = new() { fd = openA ? first : -1, events = Libc.POLLIN };
            p[1] = new() { fd = openB ? second : -1, events = Libc.POLLIN };
            if (Libc.poll(p, 2, -1) < 0)
            {
                if (LastError.Get() == Errno.EINTR)
                {
                    continue;
                }
                break;
            }
            if (p[0].revents != 0)
            {
                openA = ReadMore(first, ref a, ref lengthA);
            }
            if (p[1].revents != 0)
            {
                openB = ReadMore(second, ref b, ref lengthB);
            }
        }
        return (a.AsSpan(0, lengthA).ToArray(), b.AsSpan(0, lengthB).ToArray());
    }

    /// <summary>One read appended to <paramref name="data"/> (grown when full); whether there may be more.</summary>
    private static bool ReadMore(int fd, ref byte[] data, ref int length)
    {
        if (length == data.Length)
        {
            Array.Resize(ref data, data.Length * 2);
        }
        int n = Read(fd, data.AsSpan(length));
        if (n <= 0)
        {
            return false;
        }
        length += n;
        return true;
    }

    /// <summary>Waits until <paramref name="fd"/> is readable. Returns 1 readable, 0 timeout, -errno, or -EPIPE on hang-up without data.</summary>
    public static int PollIn(int fd, int timeoutMs)
    {
        Libc.pollfd p = new() { fd = fd, events = Libc.POLLIN };
        while (true)
        {
            int r = Libc.poll(&p, 1, timeoutMs);
            if (r < 0)
            {
                Errno e = LastError.Get();
                if (e == Errno.EINTR)
                {
                    continue;
                }
                return -(int)e;
            }
            if (r == 0)
            {
                return 0;
            }
            if ((p.revents & Libc.POLLIN) != 0)
            {
                return 1;
            }
            return -(int)Errno.EPIPE;
        }
    }
}
