using System;
using System.Collections.Generic;
using System.IO;
using System.Text;
using Qubes.Interop.Linux;

namespace Qubes.FileCopy;

/// <summary>
/// The sender's walk over what it sends, by descriptors: each entry is looked at relative to its
/// directory's descriptor, by its name as the bytes it is (names that are not UTF-8 go as they are),
/// without following a link. Used by <see cref="Packer"/> and <see cref="SourceTree"/>.
/// </summary>
internal static unsafe class TreeWalk
{
    /// <summary>
    /// The directory holding the last component of <paramref name="path"/> (an argument as the user
    /// gave it, its trailing slashes gone), opened; that component as a NUL-terminated name, and
    /// without the NUL as the entry's name in the transfer. Null with the errno when the directory
    /// cannot be opened.
    /// </summary>
    public static SafeFd? OpenParent(string path, out byte[] leaf, out byte[] transferName, out Errno error)
    {
        string name = Path.GetFileName(path);
        string parent = Path.GetDirectoryName(path) is { Length: > 0 } p ? p : path.StartsWith('/') ? "/" : ".";
        transferName = Encoding.UTF8.GetBytes(name);
        leaf = [.. transferName, 0];
        int fd = Libc.open(parent, Libc.O_RDONLY | Libc.O_DIRECTORY | Libc.O_CLOEXEC, 0);
        error = fd < 0 ? LastError.Get() : Errno.None;
        return fd < 0 ? null : new SafeFd(fd);
    }

    /// <summary>lstat of <paramref name="leaf"/> in <paramref name="directory"/>; the errno, or None.</summary>
    public static Errno Status(int directory, byte[] leaf, out Libc.stat status)
    {
        fixed (byte* n = leaf)
        fixed (Libc.stat* s = &status)
        {
            return Libc.fstatat(directory, n, s, Libc.AT_SYMLINK_NOFOLLOW) == 0 ? Errno.None : LastError.Get();
        }
    }

    /// <summary>Opens <paramref name="leaf"/> of <paramref name="directory"/> without following a link: a directory to walk, or a file to read; −1 with the errno set.</summary>
    public static int Open(int directory, byte[] leaf, bool isDirectory)
    {
        fixed (byte* n = leaf)
        {
            return Libc.openat(directory, n, Libc.O_RDONLY | Libc.O_NOFOLLOW | Libc.O_CLOEXEC | Libc.O_NOCTTY | (isDirectory ? Libc.O_DIRECTORY : 0), 0);
        }
    }

    /// <summary>The entries of the open directory <paramref name="fd"/>, NUL-terminated (with their <c>d_type</c>s when <paramref name="types"/> is given).</summary>
    public static List<byte[]> Children(int fd, string display, List<byte>? types = null) => DirectoryTree.List(fd, display, types);

    /// <summary><c>d_type</c> of a regular file.</summary>
    public const byte RegularEntry = 8;

    /// <summary>The target of the link <paramref name="leaf"/>, which lstat said is <paramref name="size"/> bytes long; null with the errno (EAGAIN when it changed meanwhile).</summary>
    public static byte[]? ReadLink(int directory, byte[] leaf, long size, out Errno error)
    {
        byte[] target = new byte[size + 1];
        nint n;
        fixed (byte* p = leaf)
        fixed (byte* t = target)
        {
            n = Libc.readlinkat(directory, p, t, (nuint)target.Length);
        }
        error = n < 0 ? LastError.Get() : n != size ? Errno.EAGAIN : Errno.None;
        return error == Errno.None ? target[..(int)n] : null;
    }

    /// <summary>The transfer name of a child: <paramref name="parent"/>/<paramref name="child"/> (the child's NUL dropped).</summary>
    public static byte[] Join(byte[] parent, byte[] child) => [.. parent, (byte)'/', .. child.AsSpan(0, child.Length - 1)];

    /// <summary>A name for messages (invalid UTF-8 shown as replacement characters).</summary>
    public static string Display(ReadOnlySpan<byte> name) => Encoding.UTF8.GetString(name);
}
