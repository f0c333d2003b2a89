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
    /// <summary>
    /// Checks <paramref name="paths"/>; a refusal is a <see cref="FatalError"/> with upstream's
    /// message. Without <paramref name="countBytes"/> (no progress to show) the summary's byte count
    /// is 0 and regular files the directory reports as such are not looked at one by one.
    /// </summary>
    public static SourceTreeSummary Check(IReadOnlyList<string> paths, bool ignoreSymlinks, bool countBytes = true)
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
            using SafeFd parent = TreeWalk.OpenParent(trimmed, out byte[] leaf, out byte[] transferName, out Errno error)
                ?? throw Refuse($"open({Escape(path)}): {FatalError.ErrorText(error)}");
            unsafeNames |= Visit(parent.Fd, leaf, transferName, ignoreSymlinks, countBytes, ref bytes);
        }
        return new(bytes, unsafeNames);
    }

    private static bool Visit(int directory, byte[] leaf, byte[] name, bool ignoreSymlinks, bool countBytes, ref ulong bytes)
    {
        if (TreeWalk.Status(directory, leaf, out Libc.stat status) is var error and not Errno.None)
        {
            throw Refuse($"fstatat({Escape(name)}): {FatalError.ErrorText(error)}");
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
        bool unsafeName = !PathValidator.IsSafeForDisplay(leaf);
        if (type == FileCopyProtocol.Directory)
        {
            int fd = TreeWalk.Open(directory, leaf, isDirectory: true);
            if (fd < 0)
            {
                throw Refuse($"open({Escape(name)}): {FatalError.ErrorText(LastError.Get())}");
            }
            using SafeFd children = new(fd);
            List<byte> types = [];
            List<byte[]> entries = TreeWalk.Children(fd, TreeWalk.Display(name), types);
            for (int i = 0; i < entries.Count; i++)
            {
                byte[] child = entries[i];
                // a regular file is only its name here, unless its size counts: no lstat for it
                unsafeName |= !countBytes && types[i] == TreeWalk.RegularEntry
                    ? !PathValidator.IsSafeForDisplay(child)
                    : Visit(fd, child, TreeWalk.Join(name, child), ignoreSymlinks, countBytes, ref bytes);
            }
            return unsafeName;
        }
        ulong size = countBytes ? (ulong)status.st_size : 0;
        if (bytes > ulong.MaxValue - size)
        {
            throw Refuse("Refusing to copy over 2**64 bytes");
        }
        bytes += size;
        if (type == FileCopyProtocol.Regular)
        {
            return unsafeName;
        }
        byte[] target = TreeWalk.ReadLink(directory, leaf, status.st_size, out Errno linkError)
            ?? throw Refuse(linkError == Errno.EAGAIN ? $"readlink({Escape(name)}) returned wrong size" : $"readlink({Escape(name)}): {FatalError.ErrorText(linkError)}");
        unsafeName |= !PathValidator.IsSafeForDisplay(target);
        // characters were looked at above: here only where the link leads
        if (PathValidator.ValidateSymbolicLink(name, target, NameRules.AllowAllNames | NameRules.AllowNonCanonicalSymlinks) != 0)
        {
            throw Refuse($"Refusing to copy unsafe symbolic link {Escape(name)}");
        }
        return unsafeName;
    }

    /// <summary>
    /// <paramref name="text"/> quoted for a message: in double quotes, <c>"</c> and <c>\</c> escaped,
    /// newline and tab as <c>\n</c> and <c>\t</c>, other bytes outside printable ASCII as octal <c>\ooo</c>.
    /// </summary>
    public static string Escape(string text) => Escape(Encoding.UTF8.GetBytes(text ?? throw new ArgumentNullException(nameof(text))));

    /// <inheritdoc cref="Escape(string)"/>
    public static string Escape(ReadOnlySpan<byte> text)
    {
        StringBuilder escaped = new("\"");
        foreach (byte b in text)
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
}
