using System;
using System.IO;
using System.Linq;
using System.Text;
using Xunit;

namespace Qubes.AppMenus.Tests;

public sealed class RgbaImageTests
{
    private static RgbaImage.ReadResult Read(byte[] input, int max = RgbaImage.IconMaxSize) => RgbaImage.Read(new MemoryStream(input), max, max);

    private static byte[] Image(string header, int pixelBytes, byte[]? trailer = null)
        => [.. Encoding.ASCII.GetBytes(header), .. Enumerable.Range(0, pixelBytes).Select(static i => (byte)i), .. trailer ?? []];

    [Fact]
    public void A_well_formed_image_is_read_and_what_follows_it_is_left_unread()
    {
        MemoryStream input = new(Image("3 2\n", 24, [1, 2, 3]));
        RgbaImage image = RgbaImage.Read(input, 2048, 2048).Image!;
        Assert.Equal((3, 2), (image.Width, image.Height));
        Assert.Equal(Enumerable.Range(0, 24).Select(static i => (byte)i), image.Pixels.ToArray());
        Assert.Equal(4 + 24, input.Position);
    }

    [Theory]
    [InlineData("", "No icon received")]
    [InlineData("3 2", "Image format violation")]
    [InlineData("3  2\n", "Image format violation")]
    [InlineData(" 3 2\n", "Image format violation")]
    [InlineData("+3 2\n", "Image format violation")]
    [InlineData("3 -2\n", "Image format violation")]
    [InlineData("3x2\n", "Image format violation")]
    [InlineData("3 2 \n", "Image format violation")]
    [InlineData("3 2\r\n", "Image format violation")]
    [InlineData("\u0663 2\n", "Image format violation")]
    [InlineData("2048000 100\n", "Image format violation")] // longer than the header may be (10 bytes)
    [InlineData("99999999999999999999 1\n", "Image format violation")]
    [InlineData("0 5\n", "Image size constraint violation: width=0 height=5 max_width=2048 max_height=2048")]
    [InlineData("5 0\n", "Image size constraint violation: width=5 height=0 max_width=2048 max_height=2048")]
    [InlineData("2049 1\n", "Image size constraint violation: width=2049 height=1 max_width=2048 max_height=2048")]
    [InlineData("1 9999\n", "Image size constraint violation: width=1 height=9999 max_width=2048 max_height=2048")]
    [InlineData("2 2\n", "Image data length violation (is 15, should be 16)")]
    public void A_malformed_or_oversized_image_is_refused_with_its_reason(string header, string error)
    {
        RgbaImage.ReadResult result = Read(header.Length == 0 ? [] : Image(header, 15));
        Assert.Null(result.Image);
        Assert.Equal(error, result.Error);
    }

    [Fact]
    public void The_general_limits_are_8192_by_5120()
    {
        Assert.Equal("Image format violation", RgbaImage.Read(new MemoryStream(Image("81920000 1\n", 0)), RgbaImage.MaxWidth, RgbaImage.MaxHeight).Error);
        Assert.StartsWith("Image size constraint violation: width=8193", RgbaImage.Read(new MemoryStream(Image("8193 1\n", 0))).Error);
        Assert.StartsWith("Image data length violation (is 0, should be 83886080)", RgbaImage.Read(new MemoryStream(Image("4096 5120\n", 0))).Error);
    }

    private static readonly byte[] s_pixels = [0, 0, 0, 255, 255, 255, 255, 128, 200, 30, 90, 7, 12, 250, 13, 0, 128, 128, 128, 255];

    /// <summary>The expected bytes come from upstream's arithmetic evaluated separately (Python integers).</summary>
    [Theory]
    [InlineData("0x3465a4", new byte[] { 0, 27, 63, 255, 191, 219, 255, 128, 22, 106, 213, 7, 9, 114, 251, 0, 96, 123, 159, 255 })]
    [InlineData("0xcc0000", new byte[] { 63, 0, 0, 255, 255, 191, 191, 128, 213, 22, 22, 7, 251, 9, 9, 0, 159, 96, 96, 255 })]
    [InlineData("0x555555", new byte[] { 31, 31, 31, 255, 223, 223, 223, 128, 118, 118, 118, 7, 130, 130, 130, 0, 127, 127, 127, 255 })]
    public void Tinting_gives_upstreams_bytes(string colour, byte[] expected)
        => Assert.Equal(expected, new RgbaImage(5, 1, s_pixels).Tint(colour).Pixels.ToArray());

    [Fact]
    public void PNG_encoding_is_deterministic_and_decodes_to_the_same_pixels()
    {
        byte[] pixels = Enumerable.Range(0, 17 * 9 * 4).Select(static i => (byte)(i * 31)).ToArray();
        RgbaImage image = new(17, 9, pixels);
        byte[] png = image.EncodePng();
        Assert.Equal(png, image.EncodePng());
        Assert.Equal([0x89, (byte)'P', (byte)'N', (byte)'G'], png[..4]);
        string path = Path.Combine(Path.GetTempPath(), $"icon-{Environment.ProcessId}.png");
        File.WriteAllBytes(path, png);
        try
        {
            Assert.Equal(image, RgbaImage.LoadTrustedPng(path));
        }
        finally
        {
            File.Delete(path);
        }
    }
}
