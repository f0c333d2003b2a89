using System.Runtime.InteropServices;

namespace Qubes.Interop.Linux;

public static unsafe partial class Libc
{
    /// <summary>ioctl(2) with a pointer argument (the variadic third argument passes like a fixed one on x86_64).</summary>
    [LibraryImport(Libraries.Libc, SetLastError = true)]
    public static partial int ioctl(int fd, nuint request, void* arg);

    /// <summary>mlock(2): keep pages resident (hypercall argument buffers must not fault).</summary>
    [LibraryImport(Libraries.Libc, SetLastError = true)]
    public static partial int mlock(void* addr, nuint len);

    /// <summary>_IOC(dir, type, nr, size) of asm-generic/ioctl.h.</summary>
    public static uint _IOC(uint dir, char type, uint nr, int size) => (dir << 30) | ((uint)size << 16) | ((uint)type << 8) | nr;

    public const uint _IOC_NONE = 0;
}
