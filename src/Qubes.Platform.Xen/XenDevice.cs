using Qubes.Interop.Linux;

namespace Qubes.Platform.Xen;

/// <summary>Opening and calling the /dev/xen character devices.</summary>
internal static unsafe class XenDevice
{
    public static SafeFd Open(string path)
    {
        int fd = Libc.open(path, Libc.O_RDWR | Libc.O_CLOEXEC, 0);
        if (fd < 0)
        {
            throw new PlatformException($"open {path}", LastError.Get());
        }
        return new SafeFd(fd);
    }

    /// <summary>ioctl returning its non-negative result, or throwing with errno (set-up paths).</summary>
    public static int Ioctl(SafeFd fd, uint request, void* arg, string what)
    {
        int r;
        do
        {
            r = Libc.ioctl(fd.Fd, request, arg);
        }
        while (r < 0 && LastError.Get() == Errno.EINTR);
        if (r < 0)
        {
            throw new PlatformException(what, LastError.Get());
        }
        return r;
    }
}
