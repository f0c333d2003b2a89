using System;
using System.Collections.Generic;
using System.IO;
using System.Text;
using Qubes.Interop.Linux;

namespace Qubes.FileCopy;

/// <summary>What the sender found in the paths it is to send.</summary>
/// <param name="Bytes">The sum of the regular files' sizes and the links' target lengths.</param>
/// <param name="UnsafeNames">Whether a name (or a link's target) is not safe for display: the transfer then needs the receiver's <c>allow-all-names</c>.</param>
public readonly record struct SourceTreeSummary(ulong Bytes, bool UnsafeNames);

/// <summary>
/// The sender's look at what it is about to send, before the call is made (upstream's
/// <c>qubes-fs-tree-check --machine-readable --allow-symlinks --allow-directories</c>): refuses
/// arguments that name no entry (empty, <c>.</c>, <c>..</c>, the root), and links whose target
/// leaves their top-level directory; counts the bytes for the progress; notes names not safe for
/// display. Fifos, devices and sockets are skipped, as the sender skips them.
/// </summary>
public static class SourceTree
{
    /// <summary>Checks <paramref name="paths"/>; a refusal is a <see cref="FatalError"/> with upstream's message.</summary>
    public static SourceTreeSummary Check(IReadOnlyList<string> paths, bool ignoreSymlinks)
    {
        ArgumentNullException.ThrowIfNull(paths);
        if (paths.Count == 0)
        {
            throw Refuse("No paths provided");
        }
        ulong bytes = 0;
        bool unsafeNames = false;
        for (int i = 0; i < paths.Count; i++)
        {
            string path = paths[i];
            if (path is "" or "." or "..")
            {
                throw Refuse(path.Length == 0
                    ? $"Empty string (passed as argument {i + 1}) is not a valid path"
                    : $"Argument {i + 1} is \"{path}\", which is not allowed.  Try operating from the parent directory.");
            }
            string trimmed = path.TrimEnd('/');
            if (trimmed.Length == 0)
            {
                throw Refuse("Refusing to copy root directory");
            }
            string name = Path.GetFileName(trimmed);
            if (name is "" or "." or "..")
            {
                throw Refuse("Refusing to copy path with basename empty, ., or ..");
            }
            string parent = Path.GetDirectoryName(trimmed) is { Length: > 0 } p ? p : trimmed.StartsWith('/') ? "/" : ".";
            if (!Directory.Exists(parent))
            {
                throw Refuse($"open({Escape(path)}): {FatalError.ErrorText(Errno.ENOENT)}");
            }
            unsafeNames |= Visit(Path.Combine(parent, name), name, Encoding.UTF8.GetBytes(name), ignoreSymlinks, ref bytes);
        }
        return new(bytes, unsafeNames);
    }

    private static unsafe bool Visit(string path, string name, byte[] component, bool ignoreSymlinks, ref ulong bytes)
    {
        Libc.stat status;
        byte[] pathBytes = Terminated(path);
        fixed (byte* p = pathBytes)
        {
            if (Libc.fstatat(Libc.AT_FDCWD, p, &status, Libc.AT_SYMLINK_NOFOLLOW) != 0)
            {
                throw Refuse($"fstatat({Escape(name)}): {FatalError.ErrorText(LastError.Get())}");
            }
        }
        uint type = status.st_mode & FileCopyProtocol.TypeMask;
        if (type == FileCopyProtocol.SymbolicLink && ignoreSymlinks)
        {
            return false;
        }
        if (type is not (FileCopyProtocol.Regular or FileCopyProtocol.Directory or FileCopyProtocol.SymbolicLink))
        {
            return false;
        }
        bool unsafeName = !PathValidator.IsSafeForDisplay(component);
        if (type == FileCopyProtocol.Directory)
        {
            foreach (string child in Directory.EnumerateFileSystemEntries(path))
            {
                string childName = Path.GetFileName(child);
                unsafeName |= Visit(child, name + "/" + childName, Encoding.UTF8.GetBytes(childName), ignoreSymlinks, ref bytes);
            }
            return unsafeName;
        }
        ulong size = (ulong)status.st_size;
        if (bytes > ulong.MaxValue - size)
        {
            throw Refuse("Refusing to copy over 2**64 bytes");
        }
        bytes += size;
        if (type == FileCopyProtocol.Regular)
        {
            return unsafeName;
        }
        byte[] target = new byte[status.st_size + 1];
        nint n;
        fixed (byte* p = pathBytes)
        fixed (byte* t = target)
        {
            n = Libc.readlinkat(Libc.AT_FDCWD, p, t, (nuint)target.Length);
        }
        if (n != status.st_size)
        {
            throw Refuse(n < 0 ? $"readlink({Escape(name)}): {FatalError.ErrorText(LastError.Get())}" : $"readlink({Escape(name)}) returned wrong size");
        }
        unsafeName |= !PathValidator.IsSafeForDisplay(target.AsSpan(0, (int)n));
        // characters were looked at above: here only where the link leads
        if (PathValidator.ValidateSymbolicLink(Encoding.UTF8.GetBytes(name), target.AsSpan(0, (int)n), NameRules.AllowAllNames | NameRules.AllowNonCanonicalSymlinks) != 0)
        {
            throw Refuse($"Refusing to copy unsafe symbolic link {Escape(name)}");
        }
        return unsafeName;
    }

    /// <summary>
    /// <paramref name="text"/> quoted for a message: in double quotes, <c>"</c> and <c>\</c> escaped,
    /// newline and tab as <c>\n</c> and <c>\t</c>, other bytes outside printable ASCII as octal <c>\ooo</c>.
    /// </summary>
    public static string Escape(string text)
    {
        ArgumentNullException.ThrowIfNull(text);
        StringBuilder escaped = new("\"");
        foreach (byte b in Encoding.UTF8.GetBytes(text))
        {
            _ = b switch
            {
                (byte)'"' or (byte)'\\' => escaped.Append('\\').Append((char)b),
                (byte)'\n' => escaped.Append("\\n"),
                (byte)'\t' => escaped.Append("\\t"),
                >= 0x20 and <= 0x7E => escaped.Append((char)b),
                _ => escaped.Append('\\').Append((char)('0' + (b >> 6))).Append((char)('0' + ((b >> 3) & 7))).Append((char)('0' + (b & 7))),
            };
        }
        return escaped.Append('"').ToString();
    }

    private static FatalError Refuse(string message) => new(message, Errno.EINVAL) { Plain = true };

    private static byte[] Terminated(string text)
    {
        byte[] bytes = new byte[Encoding.UTF8.GetByteCount(text) + 1];
        Encoding.UTF8.GetBytes(text, bytes);
        return bytes;
    }
}
