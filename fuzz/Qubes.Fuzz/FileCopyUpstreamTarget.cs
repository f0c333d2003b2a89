using System;
using System.Buffers.Binary;
using System.Collections.Generic;
using System.Diagnostics;
using System.Globalization;
using System.IO;
using System.Linq;
using System.Security.Cryptography;
using System.Text;
using Qubes.FileCopy;
using Qubes.Interop.Linux;

namespace Qubes.Fuzz;

/// <summary>
/// Our qubes.Filecopy receiver against upstream's on the same untrusted stream (differential):
/// upstream's receiving algorithm, built by tests/upstream/build-upstream-unpacker.sh, runs as a
/// process per input in a home of its own (it unpacks into <c>~/QubesIncoming/fuzz</c>); ours runs
/// in process. Inputs go in turn to each variant of the receiver (a qube's, with all names and
/// unsafe links, dom0's with limits, dom0's regular files only), both sides set alike. The
/// invariant: the same reply, byte for byte, and the same tree left behind: names, types,
/// permissions, modification times (a directory's, where the stream set it), contents and link
/// targets; but for the two differences the spec makes (<see cref="SameReply"/>,
/// <see cref="SameTree"/>).
/// </summary>
internal sealed class FileCopyUpstreamTarget : ITarget, IDisposable
{
    private const string Source = "fuzz";

    private readonly string _upstream;
    private readonly string _base = Directory.CreateDirectory(Path.Combine(Path.GetTempPath(), $"fuzz-filecopy-upstream-{Environment.ProcessId}")).FullName;
    private readonly string _ours, _theirs, _stream, _theirReply;
    private readonly ReceiverRun _receiver = new();

    public FileCopyUpstreamTarget(string upstream)
    {
        _upstream = Path.GetFullPath(upstream);
        _ours = Path.Combine(_base, "ours");
        _theirs = Path.Combine(_base, "home", "QubesIncoming", Source);
        _stream = Path.Combine(_base, "stream");
        _theirReply = Path.Combine(_base, "reply");
    }

    public string Name => "filecopy-upstream";

    public byte[][] Seeds => FileCopyStreamTarget.StreamSeeds;

    /// <summary>The receivers compared, in turn: ours with its options, upstream's with the same as its copy flags and limits.</summary>
    private static readonly (string Name, UnpackOptions Ours, int Flags, ulong BytesLimit, ulong FilesLimit)[] s_variants =
    [
        ("qube", UnpackOptions.Qube, CopySymlinks | CopyDirectories | CopyNonCanonicalSymlinks, 0, 0),
        ("qube --allow-all-names --allow-unsafe-symlinks",
            new(EntryTypes.All, NameRules.AllowAllNames | NameRules.AllowUnsafeSymlinks | NameRules.AllowNonCanonicalSymlinks),
            CopySymlinks | CopyDirectories | CopyUnsafeCharacters | CopyNonCanonicalSymlinks | CopyUnsafeSymlinks, 0, 0),
        ("dom0, limits 100 bytes and 3 files", new(EntryTypes.All, NameRules.Strict, 100, 3), CopySymlinks | CopyDirectories, 100, 3),
        ("dom0 --only-regular-files, limits 100 bytes and 3 files", new(EntryTypes.RegularFiles, NameRules.Strict, 100, 3), 0, 100, 3),
    ];

    private const int CopySymlinks = 1, CopyDirectories = 2, CopyUnsafeCharacters = 4, CopyNonCanonicalSymlinks = 8, CopyUnsafeSymlinks = 16;

    private long _runs;

    public void Run(ReadOnlySpan<byte> input)
    {
        var variant = s_variants[_runs++ % s_variants.Length];
        Fresh(_ours);
        Fresh(_theirs);
        _receiver.Run(_ours, input, variant.Ours, out ReadOnlySpan<byte> reply);
        byte[] ourReply = reply.ToArray();
        byte[] theirReply = RunTheirs(input, variant.Flags, variant.BytesLimit, variant.FilesLimit, out int exit);
        string ourTree = Snapshot(_ours);
        string theirTree = Snapshot(_theirs);
        if (!SameReply(ourReply, theirReply) || !SameTree(ourTree, theirTree, replied: ourReply.Length > 0))
        {
            throw new FuzzFailure(
                $"{variant.Name}: ours replied {Convert.ToHexString(ourReply)}, upstream {Convert.ToHexString(theirReply)} (exit {exit})\n"
                + $"ours left:\n{ourTree}upstream left:\n{theirTree}");
        }
    }

    /// <summary>
    /// Byte for byte, but for one known difference: for a directory record with an invalid name
    /// upstream replies the validator's negative errno (its directory path does not negate it, its
    /// file path does); the spec (§5) asks for the errno, which ours sends.
    /// </summary>
    private static bool SameReply(byte[] ours, byte[] theirs)
    {
        if (ours.Length >= 4 && theirs.Length == ours.Length)
        {
            int code = BinaryPrimitives.ReadInt32LittleEndian(theirs);
            if (code < 0 && BinaryPrimitives.ReadInt32LittleEndian(ours) == -code)
            {
                return ours.AsSpan(4).SequenceEqual(theirs.AsSpan(4));
            }
        }
        return ours.AsSpan().SequenceEqual(theirs);
    }

    /// <summary>
    /// The same entries; but a transfer ended without a reply (a file's nanoseconds out of range)
    /// leaves upstream one more: the file it linked before it refused its times, with the mode of
    /// its creation (0700). Ours never links it.
    /// </summary>
    private static bool SameTree(string ours, string theirs, bool replied)
    {
        if (replied || ours == theirs)
        {
            return ours == theirs;
        }
        List<string> extra = [.. theirs.Split('\n').Except(ours.Split('\n'))];
        return ours.Split('\n').All(theirs.Split('\n').Contains) && extra.Count == 1 && extra[0].Contains(" file 700 ", StringComparison.Ordinal);
    }

    private static void Fresh(string directory)
    {
        // by descriptors: names need not be UTF-8
        DirectoryTree.Remove(directory);
        Directory.CreateDirectory(directory);
    }

    private byte[] RunTheirs(ReadOnlySpan<byte> input, int flags, ulong bytesLimit, ulong filesLimit, out int exit)
    {
        File.WriteAllBytes(_stream, input.ToArray());
        ProcessStartInfo start = new("/bin/sh", ["-c", "exec \"$0\" < \"$1\" > \"$2\" 2>/dev/null", _upstream, _stream, _theirReply])
        {
            UseShellExecute = false,
        };
        start.Environment["HOME"] = Path.Combine(_base, "home");
        start.Environment["QREXEC_REMOTE_DOMAIN"] = Source;
        start.Environment["QFC_FLAGS"] = flags.ToString(CultureInfo.InvariantCulture);
        start.Environment["QFC_BYTES_LIMIT"] = bytesLimit.ToString(CultureInfo.InvariantCulture);
        start.Environment["QFC_FILES_LIMIT"] = filesLimit.ToString(CultureInfo.InvariantCulture);
        using Process process = Process.Start(start)!;
        process.WaitForExit();
        exit = process.ExitCode;
        return File.ReadAllBytes(_theirReply);
    }

    /// <summary>One line per entry, sorted: path (escaped), type, permissions, modification time, size and content hash or link target.</summary>
    private static unsafe string Snapshot(string root)
    {
        List<string> lines = [];
        int fd = Libc.open(root, Libc.O_RDONLY | Libc.O_DIRECTORY | Libc.O_CLOEXEC, 0);
        try
        {
            Walk(fd, "", lines);
        }
        finally
        {
            Libc.close(fd);
        }
        lines.Sort(StringComparer.Ordinal);
        StringBuilder text = new();
        foreach (string line in lines)
        {
            text.Append("  ").Append(line).Append('\n');
        }
        return text.ToString();
    }

    /// <summary>Printable ASCII as it is (a backslash doubled), every other byte as <c>\xNN</c>: one line per entry, whatever the names hold.</summary>
    private static string Escape(ReadOnlySpan<byte> bytes)
    {
        StringBuilder text = new();
        foreach (byte b in bytes)
        {
            _ = b is >= 0x20 and < 0x7F and not (byte)'\\' ? text.Append((char)b) : text.Append(CultureInfo.InvariantCulture, $"\\x{b:x2}");
        }
        return text.ToString();
    }

    private static unsafe void Walk(int directory, string prefix, List<string> lines)
    {
        foreach (byte[] name in DirectoryTree.List(directory, prefix))
        {
            string path = prefix + Escape(name.AsSpan(0, name.Length - 1));
            Libc.stat status;
            fixed (byte* n = name)
            {
                if (Libc.fstatat(directory, n, &status, Libc.AT_SYMLINK_NOFOLLOW) != 0)
                {
                    throw new FuzzFailure($"lstat {path}: {LastError.Get()}");
                }
                string mode = Convert.ToString(status.st_mode & 0xFFF, 8);
                switch (status.st_mode & FileCopyProtocol.TypeMask)
                {
                    case FileCopyProtocol.SymbolicLink:
                        byte[] target = new byte[status.st_size + 1];
                        fixed (byte* t = target)
                        {
                            nint length = Libc.readlinkat(directory, n, t, (nuint)target.Length);
                            lines.Add($"{path} link -> {Escape(target.AsSpan(0, (int)Math.Max(length, 0)))}");
                        }
                        break;
                    case FileCopyProtocol.Directory:
                        // a directory's time is the stream's only when set by its second record (and nothing was added after)
                        long now = DateTimeOffset.UtcNow.ToUnixTimeSeconds();
                        lines.Add($"{path} dir {mode} {(Math.Abs(status.st_mtime - now) > 3600 ? status.st_mtime.ToString(CultureInfo.InvariantCulture) : "now")}");
                        int child = Libc.openat(directory, n, Libc.O_RDONLY | Libc.O_DIRECTORY | Libc.O_NOFOLLOW | Libc.O_CLOEXEC, 0);
                        if (child < 0)
                        {
                            throw new FuzzFailure($"open {path}: {LastError.Get()}");
                        }
                        try
                        {
                            Walk(child, path + "/", lines);
                        }
                        finally
                        {
                            Libc.close(child);
                        }
                        break;
                    case FileCopyProtocol.Regular:
                        int file = Libc.openat(directory, n, Libc.O_RDONLY | Libc.O_NOFOLLOW | Libc.O_CLOEXEC, 0);
                        if (file < 0)
                        {
                            throw new FuzzFailure($"open {path}: {LastError.Get()}");
                        }
                        byte[] content = new byte[status.st_size];
                        int read = Fd.Read(file, content);
                        Libc.close(file);
                        lines.Add($"{path} file {mode} {status.st_mtime}.{status.st_mtime_nsec:D9} {status.st_size} {read} {Convert.ToHexStringLower(SHA256.HashData(content))[..16]}");
                        break;
                    default:
                        lines.Add($"{path} other {status.st_mode:x}");
                        break;
                }
            }
        }
    }

    public void Dispose()
    {
        _receiver.Dispose();
        DirectoryTree.Remove(_base);
    }
}
