using System.Runtime.InteropServices;

namespace Qubes.Interop.Linux;

public static unsafe partial class Libc
{
    public const int F_DUPFD_CLOEXEC = 1030;

    public const uint S_IFMT = 0xF000;
    public const uint S_IFREG = 0x8000;

    /// <summary>struct stat of x86_64 glibc (144 bytes; st_mode at 24, st_size at 48).</summary>
    [StructLayout(LayoutKind.Sequential)]
    public struct stat
    {
        public ulong st_dev;
        public ulong st_ino;
        public ulong st_nlink;
        public uint st_mode;
        public uint st_uid;
        public uint st_gid;
        public int __pad0;
        public ulong st_rdev;
        public long st_size;
        public long st_blksize;
        public long st_blocks;
        public long st_atime;
        public long st_atime_nsec;
        public long st_mtime;
        public long st_mtime_nsec;
        public long st_ctime;
        public long st_ctime_nsec;
        public long __reserved0;
        public long __reserved1;
        public long __reserved2;
    }

    [LibraryImport(Libraries.Libc, SetLastError = true)]
    public static partial int fstat(int fd, stat* buf);
}
