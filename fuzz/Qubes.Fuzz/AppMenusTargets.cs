using System;
using System.IO;
using System.Linq;
using System.Text;
using System.Text.RegularExpressions;
using Qubes.AppMenus;

namespace Qubes.Fuzz;

/// <summary>
/// dom0's reader of a qube's menu list (rpc-services spec §2.2-§2.4), asked (ASCII) and pushed
/// (UTF-8): every line's match and comment test against the spec's regular expressions, and what
/// is accepted must be inside the whitelists. Input: the qube's output, ending at a guard page.
/// </summary>
internal sealed unsafe class AppMenuListTarget : ITarget
{
    private static readonly Regex s_line = new(@"([a-zA-Z0-9._-]+?)(?:\.desktop)?:([a-zA-Z0-9-]+(?:\[[a-zA-Z@_]+\])?)\s*=\s*(.*)", RegexOptions.CultureInvariant);
    private static readonly Regex s_comment = new(@"\A.*([a-zA-Z0-9._-]+.desktop):(#.*|\s*)\z", RegexOptions.CultureInvariant);

    private readonly GuardedMemory _memory = new(64 * 1024);

    public string Name => "appmenus-list";

    public byte[][] Seeds =>
    [
        "org.gnome.Terminal.desktop:Name=Terminal\norg.gnome.Terminal.desktop:Categories=GNOME;System;\n/usr/share/applications/x.desktop:Exec=qubes-desktop-run x.desktop\n"u8.ToArray(),
        "a.desktop:Name[de] = B\na.desktop:# comment\nb.desktop:Icon=../x\n\n\r\n"u8.ToArray(),
        "a:b:Name=c\n.desktop:Name=d\nodd.desktop.desktop:Comment=(x) & y\n"u8.ToArray(),
    ];

    public void Run(ReadOnlySpan<byte> input)
    {
        ReadOnlySpan<byte> placed = _memory.Place(input);
        fixed (byte* start = placed)
        {
            foreach (bool pull in (ReadOnlySpan<bool>)[true, false])
            {
                using Stream stream = placed.IsEmpty ? new MemoryStream() : new UnmanagedMemoryStream(start, placed.Length);
                MenuList.Result result = MenuList.Read(stream, pull, TextWriter.Null);
                if ((result.Entries == null) == (result.Error == null))
                {
                    throw new FuzzFailure("a list is either read or refused");
                }
                foreach (MenuEntry entry in result.Entries ?? [])
                {
                    if (entry.Name.Length == 0 || !entry.Name.All(static c => char.IsAsciiLetterOrDigit(c) || c is '.' or '_' or '-'))
                    {
                        throw new FuzzFailure($"entry name {entry.Name} outside [a-zA-Z0-9._-]");
                    }
                    foreach ((string key, string value) in entry.Values)
                    {
                        if (!MenuFields.IsAccepted(key) || !MenuFields.IsValid(key, value) || value.Any(static c => c > '~'))
                        {
                            throw new FuzzFailure($"accepted {key}={value}");
                        }
                    }
                }
            }
        }
        // the matcher against the patterns, line by line (whitespace U+001C-U+001F is Python's, not .NET's: left out)
        foreach (string line in Encoding.Latin1.GetString(input).Split('\n'))
        {
            if (line.Any(static c => c is >= '\x1c' and <= '\x1f'))
            {
                continue;
            }
            Match expected = s_line.Match(line);
            MenuList.Line? actual = MenuList.Match(line);
            if (expected.Success != actual.HasValue || (expected.Success && (expected.Groups[1].Value != actual!.Value.Name
                || expected.Groups[2].Value != actual.Value.Key || expected.Groups[3].Value.Trim() != actual.Value.Value)))
            {
                throw new FuzzFailure($"match of {line} differs from the pattern's");
            }
            if (s_comment.IsMatch(line) != MenuList.IsComment(line))
            {
                throw new FuzzFailure($"comment test of {line} differs from the pattern's");
            }
        }
    }
}

/// <summary>
/// dom0's reader of a qube's image (rpc-services spec §3.2): against an oracle written from the
/// spec (the header's bytes up to the limit, <c>^[0-9]+ [0-9]+\n$</c>, the bounds, exactly the pixels), and
/// never a byte read past the pixels. Input: the qube's reply, ending at a guard page.
/// </summary>
internal sealed unsafe class ImageRgbaTarget : ITarget
{
    private readonly GuardedMemory _memory = new(RgbaImage.IconMaxSize * 8 + 64);

    public string Name => "image-rgba";

    public byte[][] Seeds =>
    [
        [.. "2 2\n"u8, .. new byte[16]],
        [.. "1 3\n"u8, .. new byte[12], 7, 7],
        "2048 2048\n"u8.ToArray(),
        "0 1\n"u8.ToArray(),
    ];

    public void Run(ReadOnlySpan<byte> input)
    {
        ReadOnlySpan<byte> placed = _memory.Place(input);
        fixed (byte* start = placed)
        {
            using Stream stream = placed.IsEmpty ? new MemoryStream() : new UnmanagedMemoryStream(start, placed.Length);
            RgbaImage.ReadResult result = RgbaImage.Read(stream, RgbaImage.IconMaxSize, RgbaImage.IconMaxSize);
            (int width, int height, int headerLength)? oracle = Oracle(placed);
            if (oracle is not { } o)
            {
                if (result.Image != null)
                {
                    throw new FuzzFailure("an image the spec refuses was accepted");
                }
                return;
            }
            if (result.Image is not { } image || image.Width != o.width || image.Height != o.height
                || !image.Pixels.SequenceEqual(placed.Slice(o.headerLength, o.width * o.height * 4)))
            {
                throw new FuzzFailure($"an image the spec accepts ({o.width}x{o.height}) was refused or read wrong: {result.Error}");
            }
            if (stream.Position != o.headerLength + (o.width * o.height * 4))
            {
                throw new FuzzFailure("the reader went past the pixels");
            }
        }
    }

    /// <summary>The spec, slowly: the header is the bytes through the first newline within 10 bytes.</summary>
    private static (int, int, int)? Oracle(ReadOnlySpan<byte> data)
    {
        int limit = Math.Min(data.Length, 10);
        int newline = data[..limit].IndexOf((byte)'\n');
        if (newline < 0)
        {
            return null;
        }
        string header = Encoding.Latin1.GetString(data[..newline]);
        if (!Regex.IsMatch(header, "^[0-9]+ [0-9]+$"))
        {
            return null;
        }
        string[] parts = header.Split(' ');
        long width = long.Parse(parts[0], System.Globalization.CultureInfo.InvariantCulture), height = long.Parse(parts[1], System.Globalization.CultureInfo.InvariantCulture);
        if (width is <= 0 or > RgbaImage.IconMaxSize || height is <= 0 or > RgbaImage.IconMaxSize || data.Length - newline - 1 < width * height * 4)
        {
            return null;
        }
        return ((int)width, (int)height, newline + 1);
    }
}
