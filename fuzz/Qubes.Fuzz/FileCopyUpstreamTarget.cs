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
/// in process with the qube's options. The invariant: the same reply, byte for byte (see
/// <see cref="SameReply"/> for the one difference the spec makes), and the same
/// tree left behind: names, types, permissions, modification times (a directory's, where the
/// stream set it), contents and link targets.
/// </summary>
internal sealed class FileCopyUpstreamTarget : ITarget, IDisposable
{
    private const string Source = "fuzz";

    private readonly string _upstream;
    private readonly string _base = Directory.CreateDirectory(Path.Combine(Path.GetTempPath(), $"fuzz-filecopy-upstream-{Environment.ProcessId}")).FullName;
    private readonly string _ours, _theirs, _stream, _theirReply;
    private readonly int _proc = Libc.open("/proc/self/fd", Libc.O_RDONLY | Libc.O_DIRECTORY | Libc.O_CLOEXEC, 0);
    private readonly int _input = Libc.memfd_create("stream", 1 /* MFD_CLOEXEC */);
    private readonly int _reply = Libc.memfd_create("reply", 1 /* MFD_CLOEXEC */);
    private readonly byte[] _replyBytes = new byte[FileCopyProtocol.ReplySize + 4 + FileCopyProtocol.MaxPathLength + 16];

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

    public void Run(ReadOnlySpan<byte> input)
    {
        Fresh(_ours);
        Fresh(_theirs);
        byte[] ourReply = RunOurs(input);
        byte[] theirReply = RunTheirs(input, out int exit);
        string ourTree = Snapshot(_ours);
        string theirTree = Snapshot(_theirs);
        if (!SameReply(ourReply, theirReply) || !SameTree(ourTree, theirTree, replied: ourReply.Length > 0))
        {
            throw new FuzzFailure(
                $"ours replied {Convert.ToHexString(ourReply)}, upstream {Convert.ToHexString(theirReply)} (exit {exit})\n"
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
        if (Directory.Exists(directory))
        {
            Directory.Delete(directory, recursive: true);
        }
        Directory.CreateDirectory(directory);
    }

    private byte[] RunOurs(ReadOnlySpan<byte> input)
    {
        Libc.ftruncate(_input, 0);
        Libc.ftruncate(_reply, 0);
        Libc.lseek(_input, 0, Libc.SEEK_SET);
        Libc.lseek(_reply, 0, Libc.SEEK_SET);
        Fd.WriteAll(_input, input);
        Libc.lseek(_input, 0, Libc.SEEK_SET);
        int root = Libc.open(_ours, Libc.O_RDONLY | Libc.O_DIRECTORY | Libc.O_CLOEXEC, 0);
        try
        {
            using Unpacker unpacker = new(root, _proc, UnpackOptions.Qube);
            unpacker.Run(_input, _reply);
        }
        finally
        {
            Libc.close(root);
        }
        Libc.lseek(_reply, 0, Libc.SEEK_SET);
        return _replyBytes.AsSpan(0, Fd.Read(_reply, _replyBytes)).ToArray();
    }

    private byte[] RunTheirs(ReadOnlySpan<byte> input, out int exit)
    {
        File.WriteAllBytes(_stream, input.ToArray());
        ProcessStartInfo start = new("/bin/sh", ["-c", "exec \"$0\" < \"$1\" > \"$2\" 2>/dev/null", _upstream, _stream, _theirReply])
        {
            UseShellExecute = false,
        };
        start.Environment["HOME"] = Path.Combine(_base, "home");
        start.Environment["QREXEC_REMOTE_DOMAIN"] = Source;
        using Process process = Process.Start(start)!;
        process.WaitForExit();
        exit = process.ExitCode;
        return File.ReadAllBytes(_theirReply);
    }

    /// <summary>One line per entry, sorted: path, type, permissions, modification time, size and content hash or link target.</summary>
    private static string Snapshot(string root)
    {
        List<string> lines = [];
        foreach (string entry in Directory.EnumerateFileSystemEntries(root, "*", new EnumerationOptions { RecurseSubdirectories = true, AttributesToSkip = 0, IgnoreInaccessible = false }))
        {
            FileInfo info = new(entry);
            string relative = Path.GetRelativePath(root, entry);
            if (info.LinkTarget is string target)
            {
                lines.Add($"{relative} link -> {target}");
            }
            else if (info.Attributes.HasFlag(FileAttributes.Directory))
            {
                // a directory's time is the stream's only when set by its second record (and nothing was added after)
                DateTime time = info.LastWriteTimeUtc;
                string set = Math.Abs((time - DateTime.UtcNow).TotalHours) > 1 ? time.Ticks.ToString(CultureInfo.InvariantCulture) : "now";
                lines.Add($"{relative} dir {Convert.ToString((int)info.UnixFileMode, 8)} {set}");
            }
            else
            {
                string content = info.UnixFileMode.HasFlag(UnixFileMode.UserRead)
                    ? Convert.ToHexStringLower(SHA256.HashData(File.ReadAllBytes(entry)))[..16]
                    : "unreadable";
                lines.Add($"{relative} file {Convert.ToString((int)info.UnixFileMode, 8)} {info.LastWriteTimeUtc.Ticks} {info.Length} {content}");
            }
        }
        lines.Sort(StringComparer.Ordinal);
        StringBuilder text = new();
        foreach (string line in lines)
        {
            text.Append("  ").Append(line).Append('\n');
        }
        return text.ToString();
    }

    public void Dispose()
    {
        Libc.close(_proc);
        Libc.close(_input);
        Libc.close(_reply);
        Fresh(_base);
        Directory.Delete(_base);
    }
}
