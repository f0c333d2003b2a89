using System;
using System.Diagnostics;
using System.IO;
using System.Text;
using Qubes.Interop.Linux;
using Xunit;

namespace Qubes.Interop.Tests;

/// <summary>
/// Copying and removing a tree a hostile qube wrote: links planted to lead dom0 out of the tree
/// (to a directory of dom0's holding a secret and a file it must not lose) are copied as links and
/// removed as links; the same links do lead out when followed, as a path-based walk would.
/// </summary>
public sealed class DirectoryTreeTests : IDisposable
{
    private readonly string _root = Path.Combine(Path.GetTempPath(), "tree-test-" + Guid.NewGuid().ToString("N")[..12]);

    public DirectoryTreeTests()
    {
        Directory.CreateDirectory(Outside);
        File.WriteAllText(Path.Combine(Outside, "secret"), "dom0's secret");
        File.WriteAllText(Path.Combine(Outside, "keep"), "must survive");
        Directory.CreateDirectory(Path.Combine(Hostile, "dir", "sub"));
        File.WriteAllText(Path.Combine(Hostile, "dir", "sub", "file"), "content");
        File.CreateSymbolicLink(Path.Combine(Hostile, "out-dir"), Outside);
        File.CreateSymbolicLink(Path.Combine(Hostile, "dir", "out-file"), Path.Combine(Outside, "secret"));
        File.CreateSymbolicLink(Path.Combine(Hostile, "dir", "up"), "../../outside");
    }

    private string Outside => Path.Combine(_root, "outside");

    private string Hostile => Path.Combine(_root, "volume");

    public void Dispose()
    {
        Run("rm", "-rf", "--one-file-system", _root);
    }

    [Fact]
    public void The_planted_links_lead_out_of_the_tree_when_followed()
    {
        Assert.Equal("dom0's secret", File.ReadAllText(Path.Combine(Hostile, "out-dir", "secret")));
        Assert.Equal("dom0's secret", File.ReadAllText(Path.Combine(Hostile, "dir", "out-file")));
        Assert.Equal("must survive", File.ReadAllText(Path.Combine(Hostile, "dir", "up", "keep")));
    }

    [Fact]
    public void A_copy_keeps_links_as_links_and_reads_nothing_outside()
    {
        string copy = Path.Combine(_root, "copy");
        DirectoryTree.Copy(Hostile, copy);
        Assert.Equal("content", File.ReadAllText(Path.Combine(copy, "dir", "sub", "file")));
        Assert.Equal(Outside, new FileInfo(Path.Combine(copy, "out-dir")).LinkTarget);
        Assert.Equal("../../outside", new FileInfo(Path.Combine(copy, "dir", "up")).LinkTarget);
        Assert.Equal(Path.Combine(Outside, "secret"), new FileInfo(Path.Combine(copy, "dir", "out-file")).LinkTarget);
        // nothing of the outside directory was copied in
        Assert.Equal(["dir", "out-dir"], Sorted(Directory.GetFileSystemEntries(copy)));
        Assert.Equal(["out-file", "sub", "up"], Sorted(Directory.GetFileSystemEntries(Path.Combine(copy, "dir"))));
    }

    [Fact]
    public void Removal_removes_the_links_not_what_they_point_at()
    {
        DirectoryTree.Remove(Hostile);
        Assert.False(Directory.Exists(Hostile));
        Assert.Equal("must survive", File.ReadAllText(Path.Combine(Outside, "keep")));
        Assert.Equal("dom0's secret", File.ReadAllText(Path.Combine(Outside, "secret")));
        DirectoryTree.Remove(Hostile); // missing: fine
    }

    [Fact]
    public void A_top_path_that_is_a_link_is_refused()
    {
        string link = Path.Combine(_root, "link-to-outside");
        File.CreateSymbolicLink(link, Outside);
        IOException e = Assert.Throws<IOException>(() => DirectoryTree.Copy(link, Path.Combine(_root, "copy")));
        Assert.Contains("link-to-outside: open", e.Message, StringComparison.Ordinal);
        Assert.False(Directory.Exists(Path.Combine(_root, "copy")));
        DirectoryTree.Remove(link); // removes the link itself
        Assert.True(File.Exists(Path.Combine(Outside, "keep")));
        Assert.False(File.Exists(link));
    }

    [Fact]
    public void Owners_modes_times_holes_names_and_whiteouts_survive_a_copy()
    {
        string file = Path.Combine(Hostile, "sparse");
        using (FileStream f = new(file, FileMode.Create))
        {
            f.Write("head"u8);
            f.SetLength(64L << 20);
            f.Seek(32L << 20, SeekOrigin.Begin);
            f.Write("middle"u8);
        }
        Run("chown", "1000:1000", file);
        Run("chmod", "4750", file);
        Run("touch", "-h", "-d", "2001-02-03 04:05:06", Path.Combine(Hostile, "dir", "out-file"));
        Run("mknod", Path.Combine(Hostile, "whiteout"), "c", "0", "0");
        Run("mkfifo", Path.Combine(Hostile, "fifo"));
        Run("setfattr", "-n", "trusted.overlay.opaque", "-v", "y", Path.Combine(Hostile, "dir"));
        string odd = Path.Combine(Hostile, "bad-\u00ff-name");
        Run("sh", "-c", "touch \"$1\"/$(printf 'x\\377y')", "sh", Hostile); // not UTF-8

        string copy = Path.Combine(_root, "copy");
        DirectoryTree.Copy(Hostile, copy);
        string copied = Path.Combine(copy, "sparse");
        Assert.Equal("1000 1000 4750 67108864", Run("stat", "-c", "%u %g %a %s", copied));
        Assert.True(long.Parse(Run("stat", "-c", "%b", copied), System.Globalization.CultureInfo.InvariantCulture) < 64, "the hole was filled");
        Assert.Equal("2001-02-03 04:05:06", Run("stat", "-c", "%y", Path.Combine(copy, "dir", "out-file"))[..19]);
        Assert.Equal("character special file 0,0", Run("stat", "-c", "%F %t,%T", Path.Combine(copy, "whiteout")));
        Assert.Equal("fifo", Run("stat", "-c", "%F", Path.Combine(copy, "fifo")));
        Assert.Contains("trusted.overlay.opaque=\"y\"", Run("getfattr", "-n", "trusted.overlay.opaque", Path.Combine(copy, "dir")), StringComparison.Ordinal);
        Assert.Equal("x\\377y", Run("sh", "-c", "ls -b \"$1\" | grep '^x'", "sh", copy));
        Assert.False(File.Exists(odd));
    }

    [Fact]
    public void A_sparse_file_copies_only_its_data()
    {
        string image = Path.Combine(_root, "image");
        using (FileStream f = new(image, FileMode.Create))
        {
            f.SetLength(2L << 30);
            f.Seek(1L << 30, SeekOrigin.Begin);
            f.Write(Encoding.ASCII.GetBytes("data in the middle"));
        }
        Stopwatch clock = Stopwatch.StartNew();
        DirectoryTree.CopyFile(image, image + ".copy");
        Assert.True(clock.ElapsedMilliseconds < 5000, $"a 2 GiB sparse copy took {clock.ElapsedMilliseconds} ms");
        Assert.Equal(2L << 30, new FileInfo(image + ".copy").Length);
        Assert.Equal(Run("sha256sum", "-b", image)[..64], Run("sha256sum", "-b", image + ".copy")[..64]);
        Assert.Throws<IOException>(() => DirectoryTree.CopyFile(image, image + ".copy")); // never over an existing file
        File.CreateSymbolicLink(image + ".link", image);
        Assert.Throws<IOException>(() => DirectoryTree.CopyFile(image + ".link", image + ".copy2")); // nor from a link
    }

    [Fact]
    public void A_file_copies_from_a_memory_file_system_to_the_disk_and_back()
    {
        // copy_file_range refuses some pairs of file systems (EXDEV): the copy then goes through a buffer
        string shm = Path.Combine("/dev/shm", "tree-test-" + Guid.NewGuid().ToString("N")[..12]);
        string disk = Path.Combine(_root, "from-shm");
        byte[] data = new byte[3 << 20];
        new Random(7).NextBytes(data);
        try
        {
            File.WriteAllBytes(shm, data);
            DirectoryTree.CopyFile(shm, disk);
            Assert.Equal(data, File.ReadAllBytes(disk));
            File.Delete(shm);
            DirectoryTree.CopyFile(disk, shm);
            Assert.Equal(data, File.ReadAllBytes(shm));
        }
        finally
        {
            File.Delete(shm);
        }
    }

    private static string[] Sorted(string[] paths)
    {
        string[] names = Array.ConvertAll(paths, Path.GetFileName)!;
        Array.Sort(names, StringComparer.Ordinal);
        return names;
    }

    private static string Run(string file, params string[] args)
    {
        ProcessStartInfo psi = new(file, args) { RedirectStandardOutput = true, RedirectStandardError = true };
        using Process p = Process.Start(psi)!;
        string output = p.StandardOutput.ReadToEnd();
        string error = p.StandardError.ReadToEnd();
        p.WaitForExit();
        Assert.True(p.ExitCode == 0, $"{file} {string.Join(' ', args)}: {error}");
        return output.TrimEnd('\n');
    }
}
