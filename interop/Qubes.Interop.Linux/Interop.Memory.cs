using System.Runtime.InteropServices;

namespace Qubes.Interop.Linux;

public static unsafe partial class Libc
{
    public const int PROT_NONE = 0;
    public const int PROT_READ = 1;
    public const int PROT_WRITE = 2;

    public const int MAP_SHARED = 0x01;
    public const int MAP_PRIVATE = 0x02;
    public const int MAP_FIXED = 0x10;
    public const int MAP_ANONYMOUS = 0x20;
    public const int MAP_NORESERVE = 0x4000;
    public const int MAP_POPULATE = 0x8000;

    public static readonly void* MAP_FAILED = unchecked((void*)-1); // unchecked: Debug builds check overflow, and -1 is not a valid address

    public const uint MFD_CLOEXEC = 1;
    public const uint MFD_ALLOW_SEALING = 2;

    public const int F_ADD_SEALS = 1033;
    public const int F_GET_SEALS = 1034;
    public const int F_SEAL_SEAL = 0x01;
    public const int F_SEAL_SHRINK = 0x02;
    public const int F_SEAL_GROW = 0x04;
    public const int F_SEAL_WRITE = 0x08;
    public const int F_SEAL_FUTURE_WRITE = 0x10;

    [LibraryImport(Libraries.Libc, SetLastError = true)]
    public static partial void* mmap(void* addr, nuint length, int prot, int flags, int fd, long offset);

    [LibraryImport(Libraries.Libc, SetLastError = true)]
    public static partial int munmap(void* addr, nuint length);

    [LibraryImport(Libraries.Libc, SetLastError = true)]
    public static partial int mprotect(void* addr, nuint length, int prot);

    [LibraryImport(Libraries.Libc, EntryPoint = "memfd_create", SetLastError = true, StringMarshalling = StringMarshalling.Utf8)]
    public static partial int memfd_create(string name, uint flags);
}
