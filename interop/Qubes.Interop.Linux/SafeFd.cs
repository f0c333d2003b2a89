using System;
using System.Runtime.InteropServices;

namespace Qubes.Interop.Linux;

/// <summary>An owned file descriptor, closed on release.</summary>
public sealed class SafeFd : SafeHandle
{
    public SafeFd() : base(-1, ownsHandle: true) { }

    public SafeFd(int fd, bool ownsHandle = true) : base(-1, ownsHandle) => SetHandle(fd);

    public override bool IsInvalid => handle.ToInt64() < 0;

    /// <summary>The raw descriptor. Valid while this handle is not disposed.</summary>
    public int Fd => (int)handle.ToInt64();

    /// <summary>Takes ownership of the descriptor away from this handle and returns it.</summary>
    public int Release()
    {
        int fd = Fd;
        SetHandleAsInvalid();
        return fd;
    }

    protected override bool ReleaseHandle() => Libc.close(Fd) == 0;

    /// <summary>Wraps a libc return value, throwing with errno on failure (set-up paths only).</summary>
    public static SafeFd FromResult(int fd, string what)
    {
        if (fd < 0)
        {
            throw new LinuxException(what, LastError.Get());
        }
        return new SafeFd(fd);
    }
}

/// <summary>An errno-carrying failure on a set-up path (never thrown for what a peer sends).</summary>
public sealed class LinuxException : Exception
{
    public LinuxException(string operation, Errno errno)
        : base($"{operation}: {errno} ({Marshal.GetPInvokeErrorMessage((int)errno)})")
    {
        Errno = errno;
    }

    public Errno Errno { get; }
}
