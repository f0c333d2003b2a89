using System.Runtime.InteropServices;

namespace Qubes.Interop.Linux;

/// <summary>Descriptor-relative file operations, for walking trees a less trusted party can write.</summary>
public static unsafe partial class Libc
{
    public const int O_PATH = 0x200000;
    public const int O_NOFOLLOW = 0x20000;
    public const int O_CREAT = 0x40;
    public const int O_EXCL = 0x80;

    public const int AT_FDCWD = -100;
    public const int AT_SYMLINK_NOFOLLOW = 0x100;
    public const int AT_REMOVEDIR = 0x200;
    public const int AT_EMPTY_PATH = 0x1000;
    public const int AT_SYMLINK_FOLLOW = 0x400;

    /// <summary>An unnamed file in the given directory (__O_TMPFILE | O_DIRECTORY).</summary>
    public const int O_TMPFILE = 0x410000;
    public const int O_NOCTTY = 0x100;

    public const uint S_IFDIR = 0x4000;
    public const uint S_IFLNK = 0xA000;
    public const uint S_IFCHR = 0x2000;
    public const uint S_IFIFO = 0x1000;

    public const ulong RESOLVE_NO_XDEV = 0x01;
    public const ulong RESOLVE_NO_MAGICLINKS = 0x02;
    public const ulong RESOLVE_NO_SYMLINKS = 0x04;
    public const ulong RESOLVE_BENEATH = 0x08;

    public const int SEEK_SET = 0;
    public const int SEEK_DATA = 3;
    public const int SEEK_HOLE = 4;

    private const long SysOpenat2 = 437;

    /// <summary>struct open_how of openat2(2).</summary>
    [StructLayout(LayoutKind.Sequential)]
    public struct open_how
    {
        public ulong flags;
        public ulong mode;
        public ulong resolve;
    }

    /// <summary>struct timespec.</summary>
    [StructLayout(LayoutKind.Sequential)]
    public struct timespec
    {
        public long tv_sec;
        public long tv_nsec;
    }

    [LibraryImport(Libraries.Libc, EntryPoint = "syscall", SetLastError = true)]
    private static partial long syscall_openat2(long number, int dirfd, byte* path, open_how* how, nuint size);

    /// <summary>openat2(2) (no glibc wrapper in Debian 12).</summary>
    public static int openat2(int dirfd, byte* path, open_how* how) => (int)syscall_openat2(SysOpenat2, dirfd, path, how, (nuint)sizeof(open_how));

    [LibraryImport(Libraries.Libc, SetLastError = true)]
    public static partial int openat(int dirfd, byte* path, int flags, uint mode);

    [LibraryImport(Libraries.Libc, SetLastError = true)]
    public static partial int fstatat(int dirfd, byte* path, stat* buf, int flags);

    [LibraryImport(Libraries.Libc, SetLastError = true)]
    public static partial int mkdirat(int dirfd, byte* path, uint mode);

    [LibraryImport(Libraries.Libc, SetLastError = true, StringMarshalling = StringMarshalling.Utf8)]
    public static partial int mkdir(string path, uint mode);

    [LibraryImport(Libraries.Libc, SetLastError = true)]
    public static partial int unlinkat(int dirfd, byte* path, int flags);

    [LibraryImport(Libraries.Libc, SetLastError = true)]
    public static partial nint readlinkat(int dirfd, byte* path, byte* buf, nuint size);

    [LibraryImport(Libraries.Libc, SetLastError = true)]
    public static partial int symlinkat(byte* target, int dirfd, byte* path);

    [LibraryImport(Libraries.Libc, SetLastError = true)]
    public static partial int linkat(int olddirfd, byte* oldpath, int newdirfd, byte* newpath, int flags);

    [LibraryImport(Libraries.Libc, SetLastError = true)]
    public static partial int syncfs(int fd);

    public const uint SYNC_FILE_RANGE_WAIT_BEFORE = 1;
    public const uint SYNC_FILE_RANGE_WRITE = 2;

    [LibraryImport(Libraries.Libc, SetLastError = true)]
    public static partial int sync_file_range(int fd, long offset, long count, uint flags);

    [LibraryImport(Libraries.Libc, SetLastError = true)]
    public static partial int mknodat(int dirfd, byte* path, uint mode, ulong dev);

    [LibraryImport(Libraries.Libc, SetLastError = true)]
    public static partial int fchownat(int dirfd, byte* path, uint owner, uint group, int flags);

    [LibraryImport(Libraries.Libc, SetLastError = true)]
    public static partial int fchown(int fd, uint owner, uint group);

    [LibraryImport(Libraries.Libc, SetLastError = true)]
    public static partial int fchmod(int fd, uint mode);

    [LibraryImport(Libraries.Libc, SetLastError = true)]
    public static partial int utimensat(int dirfd, byte* path, timespec* times, int flags);

    [LibraryImport(Libraries.Libc, SetLastError = true)]
    public static partial int futimens(int fd, timespec* times);

    [LibraryImport(Libraries.Libc, SetLastError = true)]
    public static partial long lseek(int fd, long offset, int whence);

    [LibraryImport(Libraries.Libc, SetLastError = true)]
    public static partial nint copy_file_range(int fdIn, long* offIn, int fdOut, long* offOut, nuint length, uint flags);

    [LibraryImport(Libraries.Libc, SetLastError = true)]
    public static partial nint flistxattr(int fd, byte* list, nuint size);

    [LibraryImport(Libraries.Libc, SetLastError = true)]
    public static partial nint fgetxattr(int fd, byte* name, byte* value, nuint size);

    [LibraryImport(Libraries.Libc, SetLastError = true)]
    public static partial int fsetxattr(int fd, byte* name, byte* value, nuint size, int flags);

    [LibraryImport(Libraries.Libc, SetLastError = true)]
    public static partial nint fdopendir(int fd);

    [LibraryImport(Libraries.Libc, SetLastError = true)]
    public static partial nint readdir(nint dir);

    [LibraryImport(Libraries.Libc, SetLastError = true)]
    public static partial int closedir(nint dir);

    /// <summary>Offset of d_name in glibc's struct dirent on x86-64 (d_ino 8, d_off 8, d_reclen 2, d_type 1).</summary>
    public const int DirentNameOffset = 19;
}
