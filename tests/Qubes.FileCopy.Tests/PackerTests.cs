using System;
using System.Collections.Generic;
using System.IO;
using System.Linq;
using System.Threading.Tasks;
using Qubes.Interop.Linux;
using Xunit;

namespace Qubes.FileCopy.Tests;

/// <summary>The sender (spec filecopy §2-§4) against our receiver and against hostile replies.</summary>
[System.Runtime.Versioning.SupportedOSPlatform("linux")]
public sealed class PackerTests : IDisposable
{
    private readonly string _base = Directory.CreateDirectory(Path.Combine(Path.GetTempPath(), $"packer-{Environment.ProcessId}-{Guid.NewGuid():N}")).FullName;

    public void Dispose()
    {
        using System.Diagnostics.Process rm = System.Diagnostics.Process.Start("rm", ["-rf", _base]);
        rm.WaitForExit();
    }

    /// <summary>
    /// Sends <paramref name="paths"/> through a pipe to <paramref name="receive"/> (given the stream's
    /// read end and the reply's write end, on its own thread); the sender's error, if any. With
    /// <paramref name="socket"/> the stream goes through a socket pair instead.
    /// </summary>
    private static string? Send(string[] paths, Action<int, int> receive, bool socket = false)
    {
        (SafeFd streamRead, SafeFd streamWrite) = socket ? FdPassing.SocketPair() : Fd.Pipe();
        (SafeFd replyRead, SafeFd replyWrite) = Fd.Pipe();
        Task receiver = Task.Run(() =>
        {
            using (streamRead)
            using (replyWrite)
            {
                receive(streamRead.Fd, replyWrite.Fd);
            }
        });
        try
        {
            using (streamWrite)
            using (replyRead)
            {
                Packer packer = new(streamWrite.Fd, replyRead.Fd);
                foreach (string path in paths)
                {
                    packer.Send(path);
                }
                packer.Finish();
            }
            return null;
        }
        catch (FileCopyException e)
        {
            return e.Message;
        }
        finally
        {
            receiver.Wait();
        }
    }

    /// <summary>Sends <paramref name="paths"/> to our receiver unpacking into <paramref name="into"/>; the sender's error, if any.</summary>
    private static string? Copy(string into, params string[] paths) => Copy(into, socket: false, paths);

    /// <summary>One transfer into a receiver of its own, which is let go after it.</summary>
    private static UnpackResult Unpack(Unpacker unpacker, int input, int output)
    {
        using (unpacker)
        {
            return unpacker.Run(input, output);
        }
    }

    private static string? Copy(string into, bool socket, params string[] paths)
    {
        int root = Libc.open(into, Libc.O_RDONLY | Libc.O_DIRECTORY | Libc.O_CLOEXEC, 0);
        int proc = Libc.open("/proc/self/fd", Libc.O_RDONLY | Libc.O_DIRECTORY | Libc.O_CLOEXEC, 0);
        try
        {
            return Send(paths, (input, output) => Unpack(new(root, proc, UnpackOptions.Qube), input, output), socket);
        }
        finally
        {
            Libc.close(root);
            Libc.close(proc);
        }
    }

    [Fact]
    public void A_tree_arrives_the_same_with_modes_and_times_to_the_nanosecond_and_special_files_are_skipped()
    {
        string source = Directory.CreateDirectory(Path.Combine(_base, "src", "tree")).FullName;
        Directory.CreateDirectory(Path.Combine(source, "sub", "deeper"));
        File.WriteAllText(Path.Combine(source, "a"), "alpha");
        File.WriteAllBytes(Path.Combine(source, "sub", "big"), [.. Enumerable.Range(0, 700_000).Select(static i => (byte)(i * 7))]);
        File.WriteAllText(Path.Combine(source, "sub", "deeper", "c"), "");
        File.CreateSymbolicLink(Path.Combine(source, "sub", "link"), "../a");
        File.SetUnixFileMode(Path.Combine(source, "a"), (UnixFileMode)0x180);
        File.SetUnixFileMode(Path.Combine(source, "sub"), (UnixFileMode)0x1E8);
        using (System.Diagnostics.Process mkfifo = System.Diagnostics.Process.Start("mkfifo", [Path.Combine(source, "fifo")]))
        using (System.Diagnostics.Process touch = System.Diagnostics.Process.Start("touch", ["-d", "2021-02-03 04:05:06.123456789", Path.Combine(source, "a")]))
        {
            mkfifo.WaitForExit();
            touch.WaitForExit();
        }
        string into = Directory.CreateDirectory(Path.Combine(_base, "into")).FullName;
        Assert.Null(Copy(into, source));

        string[] Tree(string root) => [.. Directory.GetFileSystemEntries(root, "*", SearchOption.AllDirectories).Select(p => Path.GetRelativePath(root, p)).Order(StringComparer.Ordinal)];
        Assert.Equal(Tree(source).Where(static p => p != "fifo"), Tree(Path.Combine(into, "tree")));
        Assert.Equal(File.ReadAllBytes(Path.Combine(source, "sub", "big")), File.ReadAllBytes(Path.Combine(into, "tree", "sub", "big")));
        Assert.Equal("../a", new FileInfo(Path.Combine(into, "tree", "sub", "link")).LinkTarget);
        Assert.Equal((UnixFileMode)0x180, File.GetUnixFileMode(Path.Combine(into, "tree", "a")));
        Assert.Equal((UnixFileMode)0x1E8, File.GetUnixFileMode(Path.Combine(into, "tree", "sub")));
        using System.Diagnostics.Process stat = System.Diagnostics.Process.Start(new System.Diagnostics.ProcessStartInfo("stat", ["-c", "%y", Path.Combine(source, "a"), Path.Combine(into, "tree", "a")]) { RedirectStandardOutput = true })!;
        string[] times = stat.StandardOutput.ReadToEnd().Split('\n', StringSplitOptions.RemoveEmptyEntries);
        Assert.Contains(".123456789", times[0], StringComparison.Ordinal);
        Assert.Equal(times[0], times[1]);
    }

    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public void Large_files_spliced_into_a_pipe_or_read_for_a_socket_arrive_whole_between_small_ones(bool socket)
    {
        string source = Directory.CreateDirectory(Path.Combine(_base, "src", "mixed")).FullName;
        Random random = new(11);
        Dictionary<string, byte[]> files = [];
        foreach ((string name, int length) in (ReadOnlySpan<(string, int)>)[("a", 100), ("b", 3 << 20), ("c", 7), ("d", (1 << 20) + 1), ("e", 5 << 20)])
        {
            byte[] content = new byte[length];
            random.NextBytes(content);
            File.WriteAllBytes(Path.Combine(source, name), content);
            files[name] = content;
        }
        string into = Directory.CreateDirectory(Path.Combine(_base, "into")).FullName;
        Assert.Null(Copy(into, socket, source));
        foreach ((string name, byte[] content) in files)
        {
            Assert.True(content.AsSpan().SequenceEqual(File.ReadAllBytes(Path.Combine(into, "mixed", name))), name);
        }
    }

    [Fact]
    public unsafe void Names_that_are_not_UTF8_go_as_the_bytes_they_are_and_arrive_with_allow_all_names()
    {
        string source = Directory.CreateDirectory(Path.Combine(_base, "src", "raw")).FullName;
        byte[] name = [(byte)'a', 0xFF, 0xFE, (byte)'z', 0];
        int directory = Libc.open(source, Libc.O_RDONLY | Libc.O_DIRECTORY | Libc.O_CLOEXEC, 0);
        fixed (byte* n = name)
        {
            int file = Libc.openat(directory, n, Libc.O_WRONLY | Libc.O_CREAT | Libc.O_EXCL | Libc.O_CLOEXEC, 0x1A4);
            Assert.True(file >= 0);
            Fd.WriteAll(file, "raw"u8);
            Libc.close(file);
        }
        Libc.close(directory);
        for (int i = 0; i < 2000; i++)
        {
            File.WriteAllText(Path.Combine(source, $"small{i}"), $"file {i}");
        }
        string into = Directory.CreateDirectory(Path.Combine(_base, "into")).FullName;
        int root = Libc.open(into, Libc.O_RDONLY | Libc.O_DIRECTORY | Libc.O_CLOEXEC, 0);
        try
        {
            // the strict receiver refuses the name, one that takes all names keeps its bytes
            Assert.StartsWith("Forbidden character", Send([source], (input, output) => Unpack(new(root, -1, UnpackOptions.Qube), input, output)), StringComparison.Ordinal);
            using (System.Diagnostics.Process rm = System.Diagnostics.Process.Start("rm", ["-rf", Path.Combine(into, "raw")]))
            {
                rm.WaitForExit();
            }
            Assert.Null(Send([source], (input, output) => Unpack(new(root, -1, UnpackOptions.Qube with { Rules = NameRules.AllowAllNames }), input, output)));
            int copy = Libc.open(Path.Combine(into, "raw"), Libc.O_RDONLY | Libc.O_DIRECTORY | Libc.O_CLOEXEC, 0);
            fixed (byte* n = name)
            {
                int file = Libc.openat(copy, n, Libc.O_RDONLY | Libc.O_CLOEXEC, 0);
                Assert.True(file >= 0, "the file with the raw name is there");
                byte[] content = new byte[8];
                Assert.Equal(3, Fd.Read(file, content));
                Libc.close(file);
            }
            Libc.close(copy);
            Assert.Equal("file 1999", File.ReadAllText(Path.Combine(into, "raw", "small1999")));
            Assert.Equal(2001, Directory.GetFileSystemEntries(Path.Combine(into, "raw")).Length);
        }
        finally
        {
            Libc.close(root);
        }
    }

    [Fact]
    public void A_file_that_exists_at_the_receiver_stops_the_copy_with_upstreams_message()
    {
        string source = Path.Combine(_base, "f");
        File.WriteAllText(source, "x");
        string into = Directory.CreateDirectory(Path.Combine(_base, "into")).FullName;
        File.WriteAllText(Path.Combine(into, "f"), "already");
        Assert.Equal("A file named \"f\" already exists in QubesIncoming dir", Copy(into, source));
        Assert.Equal("already", File.ReadAllText(Path.Combine(into, "f")));
    }

    [Fact]
    public void A_hostile_reply_name_is_sanitised_before_it_is_shown()
    {
        byte[] name = "\u001b[31mevil\"\n"u8.ToArray();
        byte[] reply = new byte[20 + name.Length];
        reply[0] = (byte)Errno.EEXIST;
        reply[16] = (byte)name.Length;
        name.CopyTo(reply, 20);
        string? message = CopyWithReply(reply);
        Assert.Equal("A file named \"_[31mevil__\" already exists in QubesIncoming dir", message);
    }

    [Fact]
    public void A_reply_whose_crc_differs_from_what_was_sent_fails_the_copy()
    {
        byte[] reply = new byte[20];
        reply[8] = 0x42;
        Assert.Equal("File transfer failed: checksum mismatch", CopyWithReply(reply));
    }

    [Fact]
    public void A_receiver_that_ends_without_a_reply_fails_the_copy()
        => Assert.Equal("File copy: the receiver ended without a reply", CopyWithReply([]));

    /// <summary>A whole copy of one file to a fake receiver that reads the stream up to its end marker and then answers <paramref name="reply"/>.</summary>
    private string? CopyWithReply(byte[] reply)
    {
        string source = Path.Combine(_base, "f");
        File.WriteAllText(source, "payload");
        return Send([source], (input, output) =>
        {
            byte[] all = [];
            byte[] buffer = new byte[4096];
            while (all.Length < 32 || all.AsSpan(all.Length - 32).ContainsAnyExcept((byte)0))
            {
                int n = Fd.Read(input, buffer);
                if (n <= 0)
                {
                    break;
                }
                all = [.. all, .. buffer.AsSpan(0, n)];
            }
            Fd.WriteAll(output, reply);
        });
    }
}
