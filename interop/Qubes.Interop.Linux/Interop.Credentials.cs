using System.Runtime.InteropServices;

namespace Qubes.Interop.Linux;

public static unsafe partial class Libc
{
    /// <summary>struct statvfs of x86_64 glibc (112 bytes).</summary>
    [StructLayout(LayoutKind.Sequential)]
    public struct statvfs
    {
        public ulong f_bsize;
        public ulong f_frsize;
        public ulong f_blocks;
        public ulong f_bfree;
        public ulong f_bavail;
        public ulong f_files;
        public ulong f_ffree;
        public ulong f_favail;
        public ulong f_fsid;
        public ulong f_flag;
        public ulong f_namemax;
        private fixed int _spare[6];
    }

    [LibraryImport(Libraries.Libc, SetLastError = true)]
    public static partial int fstatvfs(int fd, out statvfs buf);

    [LibraryImport(Libraries.Libc)]
    public static partial uint umask(uint mask);

    [LibraryImport(Libraries.Libc)]
    public static partial uint getuid();

    [LibraryImport(Libraries.Libc)]
    public static partial uint geteuid();

    [LibraryImport(Libraries.Libc, SetLastError = true)]
    public static partial int setresuid(uint ruid, uint euid, uint suid);

    [LibraryImport(Libraries.Libc, SetLastError = true)]
    public static partial int setresgid(uint rgid, uint egid, uint sgid);

    [LibraryImport(Libraries.Libc, SetLastError = true)]
    public static partial int setgroups(nuint size, uint[] list);

    /// <summary>Sets the file-system uid; returns the previous one (no error is reported: read it back with -1).</summary>
    [LibraryImport(Libraries.Libc)]
    public static partial int setfsuid(uint fsuid);
}
