using System;
using System.Collections.Generic;
using System.IO;
using System.Runtime.InteropServices;
using System.Text;

namespace Qubes.Interop.Linux;

/// <summary>
/// Copying and removing directory trees that a less trusted party wrote (a qube's volumes), as
/// dom0 must: every name is looked up relative to the descriptor of its directory, one component
/// at a time, with <c>openat2(RESOLVE_NO_SYMLINKS | RESOLVE_BENEATH | RESOLVE_NO_XDEV)</c> or
/// <c>AT_SYMLINK_NOFOLLOW</c>, so a link or a mount point planted in the tree never leads the walk
/// out of it, and an entry swapped between two steps is found out (a directory that became a link
/// is refused, a file that became something else is not opened as one). Links are copied as links;
/// owners, modes, times and extended attributes (overlayfs' own among them) are kept; holes stay
/// holes; overlayfs whiteouts (0/0 character devices) are kept and other device nodes are left out
/// (nothing in a qube can make them). The top paths given are dom0's own.
/// </summary>
public static unsafe class DirectoryTree
{
    /// <summary>Deepest tree walked: past it the walk fails instead of exhausting the stack.</summary>
    public const int MaxDepth = 512;

    private const ulong Resolve = Libc.RESOLVE_NO_SYMLINKS | Libc.RESOLVE_BENEATH | Libc.RESOLVE_NO_XDEV | Libc.RESOLVE_NO_MAGICLINKS;

    /// <summary>Copies the directory <paramref name="source"/> to <paramref name="destination"/>, which must not exist.</summary>
    public static void Copy(string source, string destination)
    {
        ArgumentNullException.ThrowIfNull(source);
        ArgumentNullException.ThrowIfNull(destination);
        using SafeFd from = OpenTop(source);
        (SafeFd parent, string name) = OpenParent(destination);
        using (parent)
        {
            Libc.stat st = Stat(from.Fd, null, source);
            MakeDirectory(parent.Fd, Name(name), destination);
            using SafeFd to = OpenBeneath(parent.Fd, Name(name), Libc.O_RDONLY | Libc.O_DIRECTORY, destination);
            CopyDirectory(from.Fd, to.Fd, source, 0);
            CopyMetadata(from.Fd, to.Fd, st, destination);
        }
    }

    /// <summary>Removes <paramref name="path"/> and everything below it; a missing path is not an error.</summary>
    public static void Remove(string path)
    {
        ArgumentNullException.ThrowIfNull(path);
        if (!Path.Exists(path) && new FileInfo(path).LinkTarget is null)
        {
            return;
        }
        (SafeFd parent, string name) = OpenParent(path);
        using (parent)
        {
            RemoveEntry(parent.Fd, Name(name), path, 0);
        }
    }

    /// <summary>Copies the regular file <paramref name="source"/> to a new <paramref name="destination"/>, only its data (its holes stay holes), fsynced.</summary>
    public static void CopyFile(string source, string destination)
    {
        using SafeFd from = Open(Libc.AT_FDCWD, Name(source), Libc.O_RDONLY | Libc.O_NOFOLLOW, 0, source);
        Libc.stat st = Stat(from.Fd, null, source);
        if ((st.st_mode & Libc.S_IFMT) != Libc.S_IFREG)
        {
            throw new IOException($"{source}: not a regular file");
        }
        using SafeFd to = Open(Libc.AT_FDCWD, Name(destination), Libc.O_WRONLY | Libc.O_CREAT | Libc.O_EXCL | Libc.O_NOFOLLOW, st.st_mode & 0x1FF, destination);
        try
        {
            CopyData(from.Fd, to.Fd, st.st_size, source);
            Check(Libc.fsync(to.Fd), "fsync", destination);
        }
        catch
        {
            File.Delete(destination);
            throw;
        }
    }

    private static void CopyDirectory(int from, int to, string path, int depth)
    {
        if (depth >= MaxDepth)
        {
            throw new IOException($"{path}: deeper than {MaxDepth} directories");
        }
        foreach (byte[] name in List(from, path))
        {
            string child = path + "/" + Shown(name);
            Libc.stat st = Stat(from, name, child);
            switch (st.st_mode & Libc.S_IFMT)
            {
                case Libc.S_IFDIR:
                {
                    using SafeFd source = OpenBeneath(from, name, Libc.O_RDONLY | Libc.O_DIRECTORY, child);
                    MakeDirectory(to, name, child);
                    using SafeFd target = OpenBeneath(to, name, Libc.O_RDONLY | Libc.O_DIRECTORY, child);
                    CopyDirectory(source.Fd, target.Fd, child, depth + 1);
                    CopyMetadata(source.Fd, target.Fd, Stat(source.Fd, null, child), child);
                    break;
                }
                case Libc.S_IFREG:
                {
                    // O_NONBLOCK: should the entry have become a fifo since the stat, opening does not hang
                    using SafeFd source = OpenBeneath(from, name, Libc.O_RDONLY | Libc.O_NONBLOCK, child);
                    Libc.stat now = Stat(source.Fd, null, child);
                    if ((now.st_mode & Libc.S_IFMT) != Libc.S_IFREG)
                    {
                        throw new IOException($"{child}: changed while copied");
                    }
                    using SafeFd target = Open(to, name, Libc.O_WRONLY | Libc.O_CREAT | Libc.O_EXCL | Libc.O_NOFOLLOW, 0x180, child);
                    CopyData(source.Fd, target.Fd, now.st_size, child);
                    CopyMetadata(source.Fd, target.Fd, now, child);
                    break;
                }
                case Libc.S_IFLNK:
                    CopyLink(from, to, name, st, child);
                    break;
                case Libc.S_IFCHR when st.st_rdev == 0:
                case Libc.S_IFIFO:
                    fixed (byte* n = name)
                    {
                        Check(Libc.mknodat(to, n, st.st_mode & (Libc.S_IFMT | 0xFFF), 0), "mknod", child);
                        Check(Libc.fchownat(to, n, st.st_uid, st.st_gid, Libc.AT_SYMLINK_NOFOLLOW), "chown", child);
                    }
                    break;
                default:
                    break; // devices and sockets: nothing a qube can make, nothing to keep
            }
        }
    }

    private static void CopyLink(int from, int to, byte[] name, in Libc.stat st, string path)
    {
        byte[] target = new byte[4097];
        fixed (byte* n = name)
        fixed (byte* t = target)
        {
            nint length = Libc.readlinkat(from, n, t, 4096);
            if (length < 0)
            {
                throw Error("readlink", path);
            }
            t[length] = 0;
            Check(Libc.symlinkat(t, to, n), "symlink", path);
            Check(Libc.fchownat(to, n, st.st_uid, st.st_gid, Libc.AT_SYMLINK_NOFOLLOW), "chown", path);
            Libc.timespec* times = stackalloc Libc.timespec[2];
            times[0] = new Libc.timespec { tv_sec = st.st_atime, tv_nsec = st.st_atime_nsec };
            times[1] = new Libc.timespec { tv_sec = st.st_mtime, tv_nsec = st.st_mtime_nsec };
            Check(Libc.utimensat(to, n, times, Libc.AT_SYMLINK_NOFOLLOW), "utimensat", path);
        }
    }

    /// <summary>Owner, mode (after the owner: chown clears set-id bits), extended attributes and times, through the descriptors.</summary>
    private static void CopyMetadata(int from, int to, in Libc.stat st, string path)
    {
        Check(Libc.fchown(to, st.st_uid, st.st_gid), "chown", path);
        Check(Libc.fchmod(to, st.st_mode & 0xFFF), "chmod", path);
        CopyAttributes(from, to, path);
        Libc.timespec* times = stackalloc Libc.timespec[2];
        times[0] = new Libc.timespec { tv_sec = st.st_atime, tv_nsec = st.st_atime_nsec };
        times[1] = new Libc.timespec { tv_sec = st.st_mtime, tv_nsec = st.st_mtime_nsec };
        Check(Libc.futimens(to, times), "futimens", path);
    }

    private static void CopyAttributes(int from, int to, string path)
    {
        nint size = Libc.flistxattr(from, null, 0);
        if (size <= 0)
        {
            return;
        }
        byte[] names = new byte[size];
        fixed (byte* list = names)
        {
            size = Libc.flistxattr(from, list, (nuint)names.Length);
            if (size < 0)
            {
                throw Error("listxattr", path);
            }
            byte[] value = new byte[65536];
            fixed (byte* v = value)
            {
                for (int start = 0; start < size;)
                {
                    int end = Array.IndexOf(names, (byte)0, start);
                    if (end < 0)
                    {
                        break;
                    }
                    byte* name = list + start;
                    nint length = Libc.fgetxattr(from, name, v, (nuint)value.Length);
                    if (length >= 0)
                    {
                        Check(Libc.fsetxattr(to, name, v, (nuint)length, 0), "setxattr", path);
                    }
                    start = end + 1;
                }
            }
        }
    }

    /// <summary>The data ranges of a file (SEEK_DATA/SEEK_HOLE), copied in the kernel; the size set at the end.</summary>
    private static void CopyData(int from, int to, long size, string path)
    {
        long offset = 0;
        while (offset < size)
        {
            long data = Libc.lseek(from, offset, Libc.SEEK_DATA);
            if (data < 0)
            {
                if (LastError.Get() == Errno.ENXIO)
                {
                    break; // only a hole is left
                }
                throw Error("lseek", path);
            }
            long hole = Libc.lseek(from, data, Libc.SEEK_HOLE);
            if (hole < 0)
            {
                throw Error("lseek", path);
            }
            long input = data, output = data;
            while (input < hole)
            {
                nint n = Libc.copy_file_range(from, &input, to, &output, (nuint)Math.Min(hole - input, 1L << 30), 0);
                if (n < 0)
                {
                    // between file systems the kernel may not copy (EXDEV before Linux 5.19, and
                    // between different types): through a buffer then
                    if (LastError.Get() is not (Errno.EXDEV or Errno.ENOTSUP or Errno.ENOSYS or Errno.EINVAL))
                    {
                        throw Error("copy_file_range", path);
                    }
                    CopyRange(from, to, input, hole, path);
                    break;
                }
                if (n == 0)
                {
                    break; // the file shrank while copied
                }
            }
            offset = hole;
        }
        Check(Libc.ftruncate(to, size), "ftruncate", path);
    }

    /// <summary>Copies [<paramref name="start"/>, <paramref name="end"/>) of one file to the same offsets of another, through a buffer.</summary>
    private static void CopyRange(int from, int to, long start, long end, string path)
    {
        byte[] buffer = new byte[1 << 20];
        fixed (byte* b = buffer)
        {
            while (start < end)
            {
                nint n = Libc.pread(from, b, (nuint)Math.Min(end - start, buffer.Length), start);
                if (n < 0)
                {
                    throw Error("read", path);
                }
                if (n == 0)
                {
                    return; // the file shrank while copied
                }
                for (nint written = 0; written < n;)
                {
                    nint w = Libc.pwrite(to, b + written, (nuint)(n - written), start + written);
                    if (w < 0)
                    {
                        throw Error("write", path);
                    }
                    written += w;
                }
                start += n;
            }
        }
    }

    private static void RemoveEntry(int parent, byte[] name, string path, int depth)
    {
        if (depth >= MaxDepth)
        {
            throw new IOException($"{path}: deeper than {MaxDepth} directories");
        }
        Libc.stat st;
        fixed (byte* n = name)
        {
            if (Libc.fstatat(parent, n, &st, Libc.AT_SYMLINK_NOFOLLOW) != 0)
            {
                if (LastError.Get() == Errno.ENOENT)
                {
                    return;
                }
                throw Error("stat", path);
            }
        }
        if ((st.st_mode & Libc.S_IFMT) == Libc.S_IFDIR)
        {
            using SafeFd dir = OpenBeneath(parent, name, Libc.O_RDONLY | Libc.O_DIRECTORY, path);
            foreach (byte[] child in List(dir.Fd, path))
            {
                RemoveEntry(dir.Fd, child, path + "/" + Shown(child), depth + 1);
            }
        }
        fixed (byte* n = name)
        {
            if (Libc.unlinkat(parent, n, (st.st_mode & Libc.S_IFMT) == Libc.S_IFDIR ? Libc.AT_REMOVEDIR : 0) != 0 && LastError.Get() != Errno.ENOENT)
            {
                throw Error("remove", path);
            }
        }
    }

    /// <summary>
    /// The names in the directory <paramref name="fd"/> (but . and ..) as the bytes they are
    /// (NUL-terminated), read through a duplicate of its descriptor; <paramref name="path"/> names it
    /// in errors. With <paramref name="types"/>, each entry's type as the directory reports it
    /// (<c>DT_REG</c>, <c>DT_DIR</c>, <c>DT_LNK</c>..., <c>DT_UNKNOWN</c> where the file system does not say).
    /// </summary>
    public static List<byte[]> List(int fd, string path, List<byte>? types = null)
    {
        int copy = Libc.fcntl(fd, Libc.F_DUPFD_CLOEXEC, 0);
        if (copy < 0)
        {
            throw Error("dup", path);
        }
        nint dir = Libc.fdopendir(copy);
        if (dir == 0)
        {
            Libc.close(copy);
            throw Error("opendir", path);
        }
        List<byte[]> names = [];
        try
        {
            Libc.lseek(copy, 0, Libc.SEEK_SET);
            nint entry;
            while ((entry = Libc.readdir(dir)) != 0)
            {
                ReadOnlySpan<byte> name = MemoryMarshal.CreateReadOnlySpanFromNullTerminated((byte*)(entry + Libc.DirentNameOffset));
                if (!name.SequenceEqual("."u8) && !name.SequenceEqual(".."u8))
                {
                    names.Add([.. name, 0]);
                    types?.Add(*(byte*)(entry + Libc.DirentNameOffset - 1));
                }
            }
        }
        finally
        {
            Libc.closedir(dir);
        }
        return names;
    }

    private static SafeFd OpenTop(string path) => Open(Libc.AT_FDCWD, Name(path), Libc.O_RDONLY | Libc.O_DIRECTORY | Libc.O_NOFOLLOW, 0, path);

    private static (SafeFd Parent, string Name) OpenParent(string path)
    {
        string full = Path.GetFullPath(path).TrimEnd('/');
        string? directory = Path.GetDirectoryName(full);
        string name = Path.GetFileName(full);
        if (directory is null || name.Length == 0)
        {
            throw new IOException($"{path}: not a path below a directory");
        }
        return (OpenTop(directory), name);
    }

    private static SafeFd OpenBeneath(int dir, byte[] name, int flags, string path)
    {
        Libc.open_how how = new() { flags = (ulong)(flags | Libc.O_CLOEXEC | Libc.O_NOFOLLOW), resolve = Resolve };
        fixed (byte* n = name)
        {
            int fd = Libc.openat2(dir, n, &how);
            if (fd < 0)
            {
                throw Error("open", path);
            }
            return new SafeFd(fd);
        }
    }

    private static SafeFd Open(int dir, byte[] name, int flags, uint mode, string path)
    {
        fixed (byte* n = name)
        {
            int fd = Libc.openat(dir, n, flags | Libc.O_CLOEXEC, mode);
            if (fd < 0)
            {
                throw Error("open", path);
            }
            return new SafeFd(fd);
        }
    }

    private static void MakeDirectory(int dir, byte[] name, string path)
    {
        fixed (byte* n = name)
        {
            Check(Libc.mkdirat(dir, n, 0x1C0), "mkdir", path);
        }
    }

    private static Libc.stat Stat(int dir, byte[]? name, string path)
    {
        Libc.stat st;
        if (name is null)
        {
            Check(Libc.fstat(dir, &st), "stat", path);
            return st;
        }
        fixed (byte* n = name)
        {
            Check(Libc.fstatat(dir, n, &st, Libc.AT_SYMLINK_NOFOLLOW), "stat", path);
        }
        return st;
    }

    /// <summary>A raw name as error messages show it.</summary>
    private static string Shown(byte[] name) => Encoding.UTF8.GetString(name, 0, name.Length - 1);

    private static byte[] Name(string name)
    {
        byte[] bytes = new byte[Encoding.UTF8.GetByteCount(name) + 1];
        Encoding.UTF8.GetBytes(name, bytes);
        return bytes;
    }

    private static void Check(int result, string operation, string path)
    {
        if (result != 0)
        {
            throw Error(operation, path);
        }
    }

    private static IOException Error(string operation, string path) => new($"{path}: {operation}: {LastError.Get()}");
}
