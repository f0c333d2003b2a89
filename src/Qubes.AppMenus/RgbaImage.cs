using System;
using System.Globalization;
using System.IO;
using System.Runtime.InteropServices;
using SkiaSharp;

namespace Qubes.AppMenus;

/// <summary>
/// An image as qubes send it (<c>qubes.GetImageRGBA</c>, spec rpc-services §3): width × height pixels
/// of red, green, blue and alpha bytes, row by row. <see cref="Read"/> takes one from a qube with
/// every check of the spec; dom0 then only writes pixels it checked, as PNG through SkiaSharp.
/// </summary>
public sealed class RgbaImage : IEquatable<RgbaImage>
{
    /// <summary>The largest icon side dom0 takes (upstream's <c>ICON_MAXSIZE</c>).</summary>
    public const int IconMaxSize = 2048;

    /// <summary>The widest image dom0 takes otherwise (<c>MAX_WIDTH</c>).</summary>
    public const int MaxWidth = 8192;

    /// <summary>The tallest image dom0 takes otherwise (<c>MAX_HEIGHT</c>).</summary>
    public const int MaxHeight = 5120;

    private readonly byte[] _pixels;

    /// <summary>An image of <paramref name="width"/> × <paramref name="height"/> pixels; <paramref name="pixels"/> holds exactly four bytes each.</summary>
    public RgbaImage(int width, int height, byte[] pixels)
    {
        ArgumentNullException.ThrowIfNull(pixels);
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(width);
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(height);
        if (pixels.LongLength != (long)width * height * 4)
        {
            throw new ArgumentException($"{width}x{height} pixels need {(long)width * height * 4} bytes, not {pixels.LongLength}", nameof(pixels));
        }
        Width = width;
        Height = height;
        _pixels = pixels;
    }

    public int Width { get; }

    public int Height { get; }

    /// <summary>The pixels, RGBA.</summary>
    public ReadOnlySpan<byte> Pixels => _pixels;

    /// <summary>An image read from a qube, or why it was refused.</summary>
    public readonly record struct ReadResult(RgbaImage? Image, string? Error);

    /// <summary>
    /// Reads the header <c>WIDTH HEIGHT\n</c> (no longer than the two limits' digits and two bytes),
    /// checks <c>0 &lt; WIDTH ≤ <paramref name="maxWidth"/></c> and <c>0 &lt; HEIGHT ≤ <paramref name="maxHeight"/></c>,
    /// then exactly WIDTH × HEIGHT × 4 bytes of pixels; nothing after them is read.
    /// </summary>
    public static ReadResult Read(Stream input, int maxWidth = MaxWidth, int maxHeight = MaxHeight)
    {
        ArgumentNullException.ThrowIfNull(input);
        int headerLimit = Digits(maxWidth) + Digits(maxHeight) + 2;
        Span<byte> header = stackalloc byte[32];
        int length = 0;
        while (length < headerLimit && length < header.Length)
        {
            int b = input.ReadByte();
            if (b < 0)
            {
                break;
            }
            header[length++] = (byte)b;
            if (b == '\n')
            {
                break;
            }
        }
        if (length == 0)
        {
            return new(null, "No icon received");
        }
        if (!ParseHeader(header[..length], out long width, out long height))
        {
            return new(null, "Image format violation");
        }
        if (width <= 0 || width > maxWidth || height <= 0 || height > maxHeight)
        {
            return new(null, string.Create(CultureInfo.InvariantCulture,
                $"Image size constraint violation: width={width} height={height} max_width={maxWidth} max_height={maxHeight}"));
        }
        byte[] pixels = new byte[width * height * 4];
        int got = input.ReadAtLeast(pixels, pixels.Length, throwOnEndOfStream: false);
        if (got != pixels.Length)
        {
            return new(null, string.Create(CultureInfo.InvariantCulture, $"Image data length violation (is {got}, should be {pixels.Length})"));
        }
        return new(new RgbaImage((int)width, (int)height, pixels), null);
    }

    private static int Digits(int value) => value.ToString(CultureInfo.InvariantCulture).Length;

    /// <summary>Exactly <c>[0-9]+ [0-9]+\n</c>; the numbers are bounded by the header's length.</summary>
    internal static bool ParseHeader(ReadOnlySpan<byte> header, out long width, out long height)
    {
        width = height = 0;
        int space = header.IndexOf((byte)' ');
        if (space <= 0 || header.Length < space + 3 || header[^1] != (byte)'\n')
        {
            return false;
        }
        return Number(header[..space], out width) && Number(header[(space + 1)..^1], out height);

        static bool Number(ReadOnlySpan<byte> digits, out long value)
        {
            value = 0;
            if (digits.IsEmpty || digits.Length > 18)
            {
                return false;
            }
            foreach (byte d in digits)
            {
                if (d is < (byte)'0' or > (byte)'9')
                {
                    return false;
                }
                value = (value * 10) + (d - '0');
            }
            return true;
        }
    }

    /// <summary>
    /// The image in a label's colour (<c>0xRRGGBB</c>), as upstream tints icons: each pixel keeps its
    /// lightness and alpha, a quarter of its chroma range goes to the colour at full saturation (grey
    /// for a grey colour). The same integer arithmetic, so the same bytes.
    /// </summary>
    public RgbaImage Tint(string colour)
    {
        ArgumentNullException.ThrowIfNull(colour);
        if (colour.Length < 6 || !int.TryParse(colour.AsSpan(colour.Length - 6), NumberStyles.AllowHexSpecifier, CultureInfo.InvariantCulture, out int rgb))
        {
            throw new ArgumentException($"not a colour: {colour}", nameof(colour));
        }
        long tr = (rgb >> 16) & 0xff, tg = (rgb >> 8) & 0xff, tb = rgb & 0xff;
        long tMax = Math.Max(tr, Math.Max(tg, tb)), tMin = Math.Min(tr, Math.Min(tg, tb));
        long trn = 1, tgn = 1, tbn = 1, tdn = 2;
        if (tMax != tMin)
        {
            (trn, tgn, tbn, tdn) = (tr - tMin, tg - tMin, tb - tMin, tMax - tMin);
        }
        const long Tn = 1, Td = 4;
        byte[] tinted = new byte[_pixels.Length];
        for (int i = 0; i < _pixels.Length; i += 4)
        {
            long r = _pixels[i], g = _pixels[i + 1], b = _pixels[i + 2];
            long max = Math.Max(r, Math.Max(g, b)), min = Math.Min(r, Math.Min(g, b));
            long c = max - min;
            long c2 = (Tn * 255) + ((Td - Tn) * c);
            long m2 = ((255 * Td) - c2) * min;
            long m2d = Math.Max((255 - c) * Td, 1);
            long denominator = m2d * Td * tdn;
            long lightness = m2 * Td * tdn;
            long chroma = c2 * m2d;
            tinted[i] = (byte)((lightness + (trn * chroma)) / denominator);
            tinted[i + 1] = (byte)((lightness + (tgn * chroma)) / denominator);
            tinted[i + 2] = (byte)((lightness + (tbn * chroma)) / denominator);
            tinted[i + 3] = _pixels[i + 3];
        }
        return new RgbaImage(Width, Height, tinted);
    }

    /// <summary>The image as a PNG file's bytes (8 bits per channel, RGBA, not premultiplied).</summary>
    public byte[] EncodePng()
    {
        GCHandle pin = GCHandle.Alloc(_pixels, GCHandleType.Pinned);
        try
        {
            using SKPixmap pixmap = new(Info(Width, Height), pin.AddrOfPinnedObject(), Width * 4);
            using SKData? png = pixmap.Encode(SKPngEncoderOptions.Default);
            return png?.ToArray() ?? throw new InvalidOperationException("the PNG encoder failed");
        }
        finally
        {
            pin.Free();
        }
    }

    /// <summary>
    /// A PNG file dom0 wrote itself (an icon it stored), back to pixels; null when it cannot be read.
    /// Never for a file a qube made.
    /// </summary>
    public static RgbaImage? LoadTrustedPng(string path)
    {
        using SKCodec? codec = SKCodec.Create(path);
        if (codec == null)
        {
            return null;
        }
        SKImageInfo info = Info(codec.Info.Width, codec.Info.Height);
        byte[] pixels = new byte[info.BytesSize];
        GCHandle pin = GCHandle.Alloc(pixels, GCHandleType.Pinned);
        try
        {
            return codec.GetPixels(info, pin.AddrOfPinnedObject()) == SKCodecResult.Success ? new RgbaImage(info.Width, info.Height, pixels) : null;
        }
        finally
        {
            pin.Free();
        }
    }

    private static SKImageInfo Info(int width, int height) => new(width, height, SKColorType.Rgba8888, SKAlphaType.Unpremul);

    public bool Equals(RgbaImage? other) => other != null && Width == other.Width && Height == other.Height && Pixels.SequenceEqual(other.Pixels);

    public override bool Equals(object? obj) => Equals(obj as RgbaImage);

    public override int GetHashCode() => HashCode.Combine(Width, Height, _pixels.Length);
}
