using Qubes.Interop.Linux;

namespace Qubes.Updates;

/// <summary>The file type of a path or descriptor, never through a link.</summary>
internal static unsafe class FileStatus
{
    /// <summary>lstat's st_mode and st_size of <paramref name="path"/>; false (with the errno) when it cannot be read.</summary>
    public static bool TryLstat(string path, out uint mode, out long size, out Errno error)
    {
        int fd = Libc.open(path, Libc.O_PATH | Libc.O_NOFOLLOW | Libc.O_CLOEXEC, 0);
        if (fd < 0)
        {
            error = LastError.Get();
            (mode, size) = (0, 0);
            return false;
        }
        try
        {
            return TryFstat(fd, out mode, out size, out error);
        }
        finally
        {
            Libc.close(fd);
        }
    }

    /// <summary>fstat's st_mode and st_size of <paramref name="fd"/>.</summary>
    public static bool TryFstat(int fd, out uint mode, out long size, out Errno error)
    {
        Libc.stat st;
        if (Libc.fstat(fd, &st) != 0)
        {
            error = LastError.Get();
            (mode, size) = (0, 0);
            return false;
        }
        error = Errno.None;
        (mode, size) = (st.st_mode, st.st_size);
        return true;
    }

    /// <summary>Whether <paramref name="mode"/> is a regular file's.</summary>
    public static bool IsRegular(uint mode) => (mode & Libc.S_IFMT) == Libc.S_IFREG;
}
