using System;
using System.IO;
using Xunit;

namespace Qubes.FileCopy.Tests;

/// <summary>The sender's look before the call (upstream's qubes-fs-tree-check): what it counts, what it notices, what it refuses.</summary>
public sealed class SourceTreeTests : IDisposable
{
    private readonly string _base = Directory.CreateDirectory(Path.Combine(Path.GetTempPath(), $"tree-{Environment.ProcessId}-{Guid.NewGuid():N}")).FullName;

    public void Dispose() => Directory.Delete(_base, recursive: true);

    private string Tree(bool unsafeName)
    {
        string top = Directory.CreateDirectory(Path.Combine(_base, "top")).FullName;
        Directory.CreateDirectory(Path.Combine(top, "d", "e"));
        File.WriteAllText(Path.Combine(top, "a"), "12345");
        File.WriteAllText(Path.Combine(top, "d", "e", unsafeName ? "deep\u0001name" : "deep"), "1234567");
        File.CreateSymbolicLink(Path.Combine(top, "d", "l"), "../a");
        return top;
    }

    [Theory]
    [InlineData(true)]
    [InlineData(false)]
    public void A_name_unsafe_for_display_deep_in_the_tree_is_noticed_whether_or_not_bytes_are_counted(bool countBytes)
    {
        string top = Tree(unsafeName: true);
        SourceTreeSummary summary = SourceTree.Check([top], ignoreSymlinks: false, countBytes);
        Assert.True(summary.UnsafeNames);
        // the files' 5 + 7 bytes, the link's 4, and the directories' sizes as lstat gives them
        Assert.True(countBytes ? summary.Bytes >= 16 : summary.Bytes == 0, $"{summary.Bytes} bytes");
    }

    [Fact]
    public void A_tree_of_safe_names_needs_no_allow_all_names()
        => Assert.False(SourceTree.Check([Tree(unsafeName: false)], ignoreSymlinks: false, countBytes: false).UnsafeNames);

    [Fact]
    public void A_link_leaving_its_top_directory_is_refused_with_or_without_counting()
    {
        string top = Tree(unsafeName: false);
        File.CreateSymbolicLink(Path.Combine(top, "d", "out"), "../../elsewhere");
        foreach (bool count in (ReadOnlySpan<bool>)[true, false])
        {
            FatalError e = Assert.Throws<FatalError>(() => SourceTree.Check([top], ignoreSymlinks: false, count));
            Assert.Contains("Refusing to copy unsafe symbolic link \"top/d/out\"", e.Message, StringComparison.Ordinal);
        }
        Assert.False(SourceTree.Check([top], ignoreSymlinks: true, countBytes: false).UnsafeNames);
    }

    [Theory]
    [InlineData("", "Empty string (passed as argument 1) is not a valid path")]
    [InlineData(".", "Argument 1 is \".\", which is not allowed.  Try operating from the parent directory.")]
    [InlineData("/", "Refusing to copy root directory")]
    public void Arguments_that_name_no_entry_are_refused_with_upstreams_messages(string path, string message)
        => Assert.Equal(message, Assert.Throws<FatalError>(() => SourceTree.Check([path], ignoreSymlinks: false)).Message);
}
