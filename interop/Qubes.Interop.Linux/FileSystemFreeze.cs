namespace Qubes.Interop.Linux;

/// <summary>FIFREEZE and FITHAW: a file system's writes flushed and held, then let go (host root only).</summary>
public static unsafe class FileSystemFreeze
{
    private static readonly nuint s_freeze = Libc._IOC(3, (char)0x58, 119, sizeof(int)); // _IOWR('X', 119, int)
    private static readonly nuint s_thaw = Libc._IOC(3, (char)0x58, 120, sizeof(int)); // _IOWR('X', 120, int)

    /// <summary>Freezes the file system of the open descriptor <paramref name="fd"/>; false (errno set) when it cannot.</summary>
    public static bool Freeze(int fd)
    {
        int unused = 0;
        return Libc.ioctl(fd, s_freeze, &unused) == 0;
    }

    /// <summary>Thaws it.</summary>
    public static bool Thaw(int fd)
    {
        int unused = 0;
        return Libc.ioctl(fd, s_thaw, &unused) == 0;
    }
}
