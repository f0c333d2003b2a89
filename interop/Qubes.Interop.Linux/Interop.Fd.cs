using System.Runtime.InteropServices;

namespace Qubes.Interop.Linux;

/// <summary>Raw libc declarations. Blittable signatures only; wrappers live outside this class.</summary>
public static unsafe partial class Libc
{
    public const int O_RDONLY = 0;
    public const int O_WRONLY = 1;
    public const int O_RDWR = 2;
    public const int O_CLOEXEC = 0x80000;
    public const int O_NONBLOCK = 0x800;
    /// <summary>Reads and writes go between the buffer and the device, past the page cache (aligned offsets, lengths and buffers).</summary>
    public const int O_DIRECT = 0x4000;
    public const int O_DIRECTORY = 0x10000;

    public const int F_GETFD = 1;
    public const int F_SETFD = 2;
    public const int F_GETFL = 3;
    public const int F_SETPIPE_SZ = 1031;
    public const int F_SETFL = 4;
    public const int FD_CLOEXEC = 1;

    [LibraryImport(Libraries.Libc, SetLastError = true)]
    public static partial int close(int fd);

    [LibraryImport(Libraries.Libc, SetLastError = true)]
    public static partial nint read(int fd, void* buf, nuint count);

    [LibraryImport(Libraries.Libc, SetLastError = true)]
    public static partial nint write(int fd, void* buf, nuint count);

    [LibraryImport(Libraries.Libc, SetLastError = true)]
    public static partial nint pwrite(int fd, void* buf, nuint count, long offset);

    [LibraryImport(Libraries.Libc, SetLastError = true)]
    public static partial nint pread(int fd, void* buf, nuint count, long offset);

    public const uint SPLICE_F_MORE = 4;

    /// <summary>Moves up to <paramref name="length"/> bytes between a pipe and another descriptor without a copy through user memory.</summary>
    [LibraryImport(Libraries.Libc, SetLastError = true)]
    public static partial nint splice(int fdIn, long* offIn, int fdOut, long* offOut, nuint length, uint flags);

    [LibraryImport(Libraries.Libc, EntryPoint = "open", SetLastError = true, StringMarshalling = StringMarshalling.Utf8)]
    public static partial int open(string path, int flags, int mode);

    [LibraryImport(Libraries.Libc, SetLastError = true)]
    public static partial int fsync(int fd);

    [LibraryImport(Libraries.Libc, SetLastError = true)]
    public static partial int fcntl(int fd, int cmd, int arg);

    [LibraryImport(Libraries.Libc, SetLastError = true)]
    public static partial int dup(int fd);

    [LibraryImport(Libraries.Libc, SetLastError = true)]
    public static partial int dup3(int oldFd, int newFd, int flags);

    public const int KCMP_FILE = 0;

    [LibraryImport(Libraries.Libc, EntryPoint = "syscall", SetLastError = true)]
    private static partial long syscall_kcmp(long number, int pid1, int pid2, int type, nuint idx1, nuint idx2);

    /// <summary>kcmp(2) (no glibc wrapper): 0 when both descriptors of process <paramref name="pid"/> share one open file description.</summary>
    public static int kcmp(int pid, int type, int fd1, int fd2)
    {
        long number = System.Runtime.InteropServices.RuntimeInformation.ProcessArchitecture == System.Runtime.InteropServices.Architecture.Arm64 ? 272 : 312;
        return (int)syscall_kcmp(number, pid, pid, type, (nuint)fd1, (nuint)fd2);
    }

    [LibraryImport(Libraries.Libc, SetLastError = true)]
    public static partial int pipe2(int* fds, int flags);

    [LibraryImport(Libraries.Libc, SetLastError = true)]
    public static partial int ftruncate(int fd, long length);

    [LibraryImport(Libraries.Libc)]
    public static partial int getpid();

    [LibraryImport(Libraries.Libc, SetLastError = true)]
    public static partial int kill(int pid, int sig);

    public const int SIGKILL = 9;
    public const int SIGTERM = 15;
    public const int SIGUSR2 = 12;

    [LibraryImport(Libraries.Libc, SetLastError = true)]
    public static partial int prctl(int option, nuint arg2, nuint arg3, nuint arg4, nuint arg5);

    public const int PR_SET_PDEATHSIG = 1;

    public const uint CLOSE_RANGE_CLOEXEC = 4;

    [LibraryImport(Libraries.Libc, SetLastError = true)]
    public static partial int close_range(uint first, uint last, uint flags);
}
