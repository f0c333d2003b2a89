using System.Runtime.InteropServices;

namespace Qubes.Qrexec.Policy;

/// <summary>
/// The type of a file as stat(2) reports it, following symbolic links. .NET tells only directories
/// from the rest: a FIFO or a device looks like a file to <see cref="System.IO.FileInfo"/>, and
/// reading one would block or never end. statx is used because its structure has one layout on
/// every architecture.
/// </summary>
internal static partial class FileType
{
    private const int AtFdCwd = -100;
    private const uint StatxType = 0x1;
    private const int TypeMask = 0xF000;
    private const int Regular = 0x8000;
    private const int Directory = 0x4000;

    /// <summary>Whether <paramref name="path"/> is, or is a symbolic link that ends at, a regular file.</summary>
    internal static bool IsRegularFile(string path) => Type(path) == Regular;

    /// <summary>Whether <paramref name="path"/> is, or is a symbolic link that ends at, a directory.</summary>
    internal static bool IsDirectory(string path) => Type(path) == Directory;

    /// <summary>The S_IFMT bits of the file's mode; 0 when it cannot be looked at (missing, dangling link, no permission).</summary>
    private static int Type(string path)
        => path.Length > 0 && Statx(AtFdCwd, path, 0, StatxType, out StatxBuffer buffer) == 0 ? buffer.Mode & TypeMask : 0;

    /// <summary>The head of <c>struct statx</c>; the kernel writes all 256 bytes.</summary>
    [StructLayout(LayoutKind.Sequential, Size = 256)]
    private struct StatxBuffer
    {
        public uint Mask;
        public uint BlockSize;
        public ulong Attributes;
        public uint LinkCount;
        public uint Uid;
        public uint Gid;
        public ushort Mode;
    }

    [LibraryImport("libc.so.6", EntryPoint = "statx", StringMarshalling = StringMarshalling.Utf8)]
    private static partial int Statx(int dirFd, string path, int flags, uint mask, out StatxBuffer buffer);
}
