using System;
using System.Collections.Generic;
using System.IO;
using System.Text;
using Qubes.FileCopy;
using Qubes.Interop.Linux;

namespace Qubes.Fuzz;

/// <summary>
/// The qubes.Filecopy receiver (spec filecopy §7, §8) on an untrusted stream, unpacking into a
/// scratch directory beside a directory it must never touch. Invariants: no exception; a reply
/// (unless aborted for bad nanoseconds) with a code the spec allows; the directory beside it
/// unchanged; every symbolic link created resolves, by its text, inside its own top-level
/// directory; no entry but regular files, directories and links.
/// </summary>
internal sealed unsafe class FileCopyStreamTarget : ITarget, IDisposable
{
    private static readonly HashSet<uint> s_codes =
    [
        0, FileCopyProtocol.LegalEof, (uint)Errno.EILSEQ, (uint)Errno.ENOLINK, (uint)Errno.EINVAL, (uint)Errno.EEXIST,
        (uint)Errno.EDQUOT, (uint)Errno.ENAMETOOLONG, (uint)Errno.EREMOTEIO, (uint)Errno.ENOENT, (uint)Errno.ENOTDIR,
        (uint)Errno.ELOOP, (uint)Errno.EISDIR,
    ];

    private readonly string _base = Directory.CreateDirectory(Path.Combine(Path.GetTempPath(), $"fuzz-filecopy-{Environment.ProcessId}")).FullName;
    private readonly string _incoming, _outside;
    private readonly ReceiverRun _receiver = new();

    public FileCopyStreamTarget()
    {
        _incoming = Path.Combine(_base, "incoming");
        _outside = Directory.CreateDirectory(Path.Combine(_base, "outside")).FullName;
        File.WriteAllText(Path.Combine(_outside, "secret"), "untouched");
    }

    public string Name => "filecopy-stream";

    private static byte[] Record(string name, uint mode, byte[] content, uint nanoseconds = 0)
    {
        byte[] nameField = [.. Encoding.UTF8.GetBytes(name), 0];
        byte[] header = new byte[FileCopyProtocol.HeaderSize];
        new FileHeader((uint)nameField.Length, mode, (ulong)content.Length, 1, nanoseconds, 2, nanoseconds).Write(header);
        return [.. header, .. nameField, .. content];
    }

    private static readonly byte[] s_end = new byte[FileCopyProtocol.HeaderSize];

    public byte[][] Seeds => StreamSeeds;

    /// <summary>Streams to start from: directories, files, links (one leading out through a directory link), a repeated name, a name not safe for display, a bad type, the largest nanoseconds.</summary>
    internal static byte[][] StreamSeeds =>
    [
        [.. Record("d", 0x41ED, []), .. Record("d/f", 0x81A4, "data"u8.ToArray()), .. Record("d/l", 0xA1FF, "f"u8.ToArray()), .. Record("d", 0x41C0, []), .. s_end],
        [.. Record("a", 0x41ED, []), .. Record("a/b", 0x41ED, []), .. Record("a/b/up", 0xA1FF, "../x"u8.ToArray()), .. Record("a/b/up/f", 0x81A4, [1]), .. s_end],
        [.. Record("f", 0x81A4, "x"u8.ToArray()), .. Record("f", 0x81A4, "y"u8.ToArray()), .. s_end],
        [.. Record("caf\u00e9", 0x81A4, []), .. Record("x", 0x11A4, []), .. s_end],
        [.. Record("t", 0x81A4, [1, 2], 999_999_999), .. s_end],
    ];

    public void Run(ReadOnlySpan<byte> input)
    {
        if (Directory.Exists(_incoming))
        {
            Directory.Delete(_incoming, recursive: true);
        }
        Directory.CreateDirectory(_incoming);
        UnpackResult result = _receiver.Run(_incoming, input, UnpackOptions.Qube, out ReadOnlySpan<byte> reply);
        int replied = reply.Length;
        if (result.Replied != replied > 0 || (result.Replied && replied < FileCopyProtocol.ReplySize))
        {
            throw new FuzzFailure($"reply of {replied} bytes for {result}");
        }
        if (result.Replied && !s_codes.Contains(result.Code))
        {
            throw new FuzzFailure($"unexpected code {result.Code}");
        }
        if (File.ReadAllText(Path.Combine(_outside, "secret")) != "untouched" || Directory.GetFileSystemEntries(_outside).Length != 1)
        {
            throw new FuzzFailure("the directory beside the incoming one changed");
        }
        Check(_incoming, depth: 0);
    }

    /// <summary>Every entry is a file, directory or link, and a link's text stays inside its top-level directory.</summary>
    private void Check(string directory, int depth)
    {
        foreach (string entry in Directory.EnumerateFileSystemEntries(directory))
        {
            FileInfo info = new(entry);
            if (info.LinkTarget is string target)
            {
                if (depth == 0 || target.StartsWith('/'))
                {
                    throw new FuzzFailure($"link {entry} -> {target} at the top or absolute");
                }
                // resolve the text against the link's directory, inside its top-level directory
                int level = depth;
                foreach (string part in target.Split('/'))
                {
                    level += part switch { ".." => -1, "" or "." => 0, _ => 1 };
                    if (level < 1)
                    {
                        throw new FuzzFailure($"link {entry} -> {target} leaves its top-level directory");
                    }
                }
            }
            else if (Directory.Exists(entry))
            {
                Check(entry, depth + 1);
            }
            else if (Type(entry) != FileCopyProtocol.Regular)
            {
                throw new FuzzFailure($"{entry} is neither file, directory nor link");
            }
        }
    }

    private static uint Type(string path)
    {
        byte[] name = [.. Encoding.UTF8.GetBytes(path), 0];
        Libc.stat status;
        fixed (byte* p = name)
        {
            return Libc.fstatat(Libc.AT_FDCWD, p, &status, Libc.AT_SYMLINK_NOFOLLOW) == 0 ? status.st_mode & FileCopyProtocol.TypeMask : 0;
        }
    }

    public void Dispose()
    {
        _receiver.Dispose();
        Directory.Delete(_base, recursive: true);
    }
}
