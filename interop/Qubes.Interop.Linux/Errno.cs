namespace Qubes.Interop.Linux;

/// <summary>Linux errno values (x86_64 / generic) that callers act on.</summary>
public enum Errno
{
    None = 0,
    EPERM = 1,
    ENOENT = 2,
    ESRCH = 3,
    EINTR = 4,
    EIO = 5,
    EBADF = 9,
    EAGAIN = 11,
    ENOMEM = 12,
    EACCES = 13,
    EFAULT = 14,
    EBUSY = 16,
    EEXIST = 17,
    EXDEV = 18,
    ENOTDIR = 20,
    EISDIR = 21,
    EINVAL = 22,
    ENFILE = 23,
    EMFILE = 24,
    ENOSPC = 28,
    EROFS = 30,
    EPIPE = 32,
    ERANGE = 34,
    ENAMETOOLONG = 36,
    ENOSYS = 38,
    ENOTEMPTY = 39,
    ELOOP = 40,
    ENXIO = 6,
    E2BIG = 7,
    ENODATA = 61,
    EPROTO = 71,
    EMSGSIZE = 90,
    ENOTSUP = 95,
    ECONNRESET = 104,
    ENOTCONN = 107,
    ETIMEDOUT = 110,
    ECONNREFUSED = 111,
    EISCONN = 106,
    ENOLINK = 67,
    EILSEQ = 84,
    EREMOTEIO = 121,
    EDQUOT = 122,
}

/// <summary>Access to the errno of the last P/Invoke made with SetLastError.</summary>
public static class LastError
{
    /// <summary>The errno left by the last libc call declared with SetLastError = true.</summary>
    public static Errno Get() => (Errno)System.Runtime.InteropServices.Marshal.GetLastPInvokeError();
}
