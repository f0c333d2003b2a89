using System.Runtime.InteropServices;

namespace Qubes.Interop.X11;

/// <summary>
/// SysV shared memory (sys/shm.h, glibc): the kind of segment MIT-SHM attaches by id, as Debian 12's
/// libXext has no fd-passing variant.
/// </summary>
public static unsafe partial class SysVShm
{
    public const int IPC_PRIVATE = 0;
    public const int IPC_CREAT = 0x200;
    public const int IPC_EXCL = 0x400;
    public const int IPC_RMID = 0;
    public const int IPC_STAT = 2;
    public const int SHM_RDONLY = 0x1000;

    /// <summary>shmat's failure value, (void*)-1.</summary>
    public static readonly void* SHM_FAILED = unchecked((void*)-1); // unchecked: Debug builds check overflow

    [LibraryImport(Libraries.Libc, SetLastError = true)]
    public static partial int shmget(int key, nuint size, int shmflg);

    [LibraryImport(Libraries.Libc, SetLastError = true)]
    public static partial void* shmat(int shmid, void* shmaddr, int shmflg);

    [LibraryImport(Libraries.Libc, SetLastError = true)]
    public static partial int shmdt(void* shmaddr);

    /// <summary><paramref name="buf"/> may be NULL for IPC_RMID.</summary>
    [LibraryImport(Libraries.Libc, SetLastError = true)]
    public static partial int shmctl(int shmid, int cmd, void* buf);
}
