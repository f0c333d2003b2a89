using System;
using System.Runtime.InteropServices;
using System.Text;

namespace Qubes.Interop.Linux;

/// <summary>A pseudo-terminal: this process holds the master, another opens the terminal by its path.</summary>
public sealed partial class Pty : IDisposable
{
    private Pty(SafeFd master, string terminal)
    {
        Master = master;
        Terminal = terminal;
    }

    /// <summary>The master side: what the terminal's user reads and types.</summary>
    public SafeFd Master { get; }

    /// <summary>The terminal's path (/dev/pts/N).</summary>
    public string Terminal { get; }

    /// <summary>A new pseudo-terminal.</summary>
    public static Pty Open()
    {
        int fd = posix_openpt(Libc.O_RDWR | Libc.O_NOCTTY | Libc.O_CLOEXEC);
        if (fd < 0)
        {
            throw new LinuxException("posix_openpt", LastError.Get());
        }
        SafeFd master = new(fd);
        byte[] name = new byte[128];
        if (grantpt(fd) != 0 || unlockpt(fd) != 0 || ptsname_r(fd, name, (nuint)name.Length) != 0)
        {
            Errno error = LastError.Get();
            master.Dispose();
            throw new LinuxException("ptsname", error);
        }
        return new Pty(master, Encoding.ASCII.GetString(name, 0, Array.IndexOf(name, (byte)0)));
    }

    public void Dispose() => Master.Dispose();

    [LibraryImport(Libraries.Libc, SetLastError = true)]
    private static partial int posix_openpt(int flags);

    [LibraryImport(Libraries.Libc, SetLastError = true)]
    private static partial int grantpt(int fd);

    [LibraryImport(Libraries.Libc, SetLastError = true)]
    private static partial int unlockpt(int fd);

    [LibraryImport(Libraries.Libc, SetLastError = true)]
    private static partial int ptsname_r(int fd, byte[] buf, nuint buflen);
}
