using System.IO;
using System.Runtime.InteropServices;
using Qubes.Qrexec.Services;
using Xunit;
using Libc = Qubes.Qrexec.Services.Interop.Libc;

namespace Qubes.Qrexec.Tests.Services;

public sealed class FileStatusTests
{
    [Fact]
    public void Statx_buffer_matches_the_kernel_layout()
    {
        // linux/stat.h: struct statx is 0x100 bytes; stx_mode is a __u16 at offset 0x1c.
        Assert.Equal(256, Marshal.SizeOf<Libc.StatxBuffer>());
        Assert.Equal(28, (int)Marshal.OffsetOf<Libc.StatxBuffer>(nameof(Libc.StatxBuffer.Mode)));
        Assert.Equal(20, (int)Marshal.OffsetOf<Libc.StatxBuffer>(nameof(Libc.StatxBuffer.Uid)));
    }

    [Fact]
    public void Get_mode_reports_types_and_errno()
    {
        using var t = new ServiceTestDirectory();
        string file = t.PlainFile(t.Root, "f");
        string link = t.Symlink(t.Root, "l", file);
        string dangling = t.Symlink(t.Root, "d", Path.Combine(t.Root, "missing"));

        Assert.Equal(0, FileStatus.GetMode(file, followLinks: true, out int mode));
        Assert.Equal(Libc.FileTypeRegular, FileStatus.FileType(mode));
        Assert.Equal(0x1a4, mode & 0xfff);

        Assert.Equal(0, FileStatus.GetMode(link, followLinks: false, out mode));
        Assert.Equal(Libc.FileTypeSymbolicLink, FileStatus.FileType(mode));
        Assert.Equal(0, FileStatus.GetMode(link, followLinks: true, out mode));
        Assert.Equal(Libc.FileTypeRegular, FileStatus.FileType(mode));

        Assert.Equal(0, FileStatus.GetMode(dangling, followLinks: false, out _));
        Assert.Equal(Libc.ErrorNoEntry, FileStatus.GetMode(dangling, followLinks: true, out _));

        Assert.Equal(0, FileStatus.GetMode(t.Root, followLinks: true, out mode));
        Assert.Equal(Libc.FileTypeDirectory, FileStatus.FileType(mode));
    }
}
