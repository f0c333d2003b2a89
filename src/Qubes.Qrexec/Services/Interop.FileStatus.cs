using System.Runtime.InteropServices;

namespace Qubes.Qrexec.Services;

/// <summary>
/// The few libc calls service lookup needs and .NET does not expose: the file type (a Unix socket is
/// invisible to <see cref="System.IO.FileSystemInfo"/>) and the kernel's own execute-permission check.
/// statx is used instead of stat because its structure has one layout on every architecture.
/// </summary>
internal static partial class Interop
{
    internal static partial class Libc
    {
        /// <summary>glibc by its soname: the unversioned "libc.so" is a linker script on Debian.</summary>
        internal const string LibraryName = "libc.so.6";

        /// <summary>AT_FDCWD: resolve relative paths against the working directory.</summary>
        internal const int AtFdCwd = -100;
        /// <summary>AT_SYMLINK_NOFOLLOW: statx describes the link itself (lstat).</summary>
        internal const int AtSymlinkNoFollow = 0x100;
        /// <summary>AT_EACCESS: faccessat checks with the effective uid and gid (euidaccess).</summary>
        internal const int AtEAccess = 0x200;
        /// <summary>X_OK.</summary>
        internal const int ExecuteOk = 1;
        /// <summary>STATX_TYPE | STATX_MODE.</summary>
        internal const uint StatxTypeAndMode = 0x3;

        /// <summary>S_IFMT and the file types of st_mode.</summary>
        internal const int FileTypeMask = 0xF000;
        internal const int FileTypeSocket = 0xC000;
        internal const int FileTypeSymbolicLink = 0xA000;
        internal const int FileTypeRegular = 0x8000;
        internal const int FileTypeDirectory = 0x4000;

        /// <summary>ENOENT.</summary>
        internal const int ErrorNoEntry = 2;

        /// <summary>
        /// The head of <c>struct statx</c> (linux/stat.h); the kernel writes all 256 bytes, so the size
        /// is fixed even though only the fields up to <c>stx_mode</c> are named here.
        /// </summary>
        [StructLayout(LayoutKind.Sequential, Size = 256)]
        internal struct StatxBuffer
        {
            public uint Mask;
            public uint BlockSize;
            public ulong Attributes;
            public uint LinkCount;
            public uint Uid;
            public uint Gid;
            public ushort Mode;
        }

        [LibraryImport(LibraryName, EntryPoint = "statx", SetLastError = true, StringMarshalling = StringMarshalling.Utf8)]
        internal static partial int Statx(int dirFd, string path, int flags, uint mask, out StatxBuffer buffer);

        [LibraryImport(LibraryName, EntryPoint = "faccessat", SetLastError = true, StringMarshalling = StringMarshalling.Utf8)]
        internal static partial int FAccessAt(int dirFd, string path, int mode, int flags);
    }
}

/// <summary>Safe wrappers over <see cref="Interop.Libc"/> that return errno instead of throwing.</summary>
internal static class FileStatus
{
    /// <summary>stat (or lstat when <paramref name="followLinks"/> is false): 0 and the st_mode, or the errno.</summary>
    internal static int GetMode(string path, bool followLinks, out int mode)
    {
        int flags = followLinks ? 0 : Interop.Libc.AtSymlinkNoFollow;
        if (Interop.Libc.Statx(Interop.Libc.AtFdCwd, path, flags, Interop.Libc.StatxTypeAndMode, out Interop.Libc.StatxBuffer buffer) != 0)
        {
            mode = 0;
            return Marshal.GetLastPInvokeError();
        }
        mode = buffer.Mode;
        return 0;
    }

    /// <summary>access(path, X_OK) for the effective uid: 0 when allowed, else the errno.</summary>
    internal static int CheckExecutable(string path)
    {
        if (Interop.Libc.FAccessAt(Interop.Libc.AtFdCwd, path, Interop.Libc.ExecuteOk, Interop.Libc.AtEAccess) != 0)
        {
            return Marshal.GetLastPInvokeError();
        }
        return 0;
    }

    internal static int FileType(int mode) => mode & Interop.Libc.FileTypeMask;

    /// <summary>The C library's text for an errno, with its number.</summary>
    internal static string Describe(int errno) => $"{Marshal.GetPInvokeErrorMessage(errno)} (errno {errno})";
}
