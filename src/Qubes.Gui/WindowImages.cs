using System;
using System.Runtime.InteropServices;
using Qubes.Platform;

namespace Qubes.Gui;

/// <summary>
/// A window's image in the agent's qube: 32-bit pixels, row after row, in pages granted read-only
/// to the GUI domain. The daemon maps them from the references of <see cref="WriteDump"/>; the
/// agent keeps them until the daemon's WINDOW_DUMP_ACK (or its own next image) says it may let go.
/// </summary>
public sealed unsafe class SharedWindowImage : IDisposable
{
    private readonly IGrantedPages _pages;

    /// <summary>
    /// Pages for a <paramref name="width"/> × <paramref name="height"/> image granted to
    /// <paramref name="guiDomain"/>; <paramref name="prepare"/> as in <see cref="IGrantTable.Share"/>.
    /// </summary>
    public SharedWindowImage(IPlatform platform, int guiDomain, int width, int height, PreparePages? prepare = null)
    {
        Width = width;
        Height = height;
        _pages = platform.Grants.Share(guiDomain, PagesFor(width, height), readOnly: true, prepare);
    }

    /// <summary>
    /// The first pages of <paramref name="file"/>, shared memory that holds the image already, row
    /// after row (an X server's pixmap of the window), granted to <paramref name="guiDomain"/>.
    /// </summary>
    public SharedWindowImage(IPlatform platform, int guiDomain, int width, int height, int file)
    {
        Width = width;
        Height = height;
        _pages = platform.Grants.ShareFile(guiDomain, file, PagesFor(width, height), readOnly: true);
    }

    private static int PagesFor(int width, int height)
    {
        if (width is < 1 or > GuiProtocol.MaxWindowWidth || height is < 1 or > GuiProtocol.MaxWindowHeight)
        {
            throw new ArgumentOutOfRangeException(nameof(width), $"a window image of {width}x{height} is outside the protocol's bounds");
        }
        return (int)(((long)width * height * GuiProtocol.BytesPerPixel + GuiProtocol.PageSize - 1) / GuiProtocol.PageSize);
    }

    public int Width { get; }

    public int Height { get; }

    /// <summary>Bytes per row.</summary>
    public int Stride => Width * GuiProtocol.BytesPerPixel;

    /// <summary>The pixels, as the agent writes them.</summary>
    public Span<byte> Pixels => new((void*)_pages.Address, Stride * Height);

    /// <summary>The grant references, one per page.</summary>
    public ReadOnlySpan<uint> References => _pages.Refs;

    /// <summary>Length of the WINDOW_DUMP message for this image.</summary>
    public int DumpLength => GuiProtocol.HeaderSize + GuiProtocol.WindowDumpHeaderSize + 4 * _pages.Refs.Length;

    /// <summary>Writes the WINDOW_DUMP message that hands the image of <paramref name="window"/> to the daemon.</summary>
    public int WriteDump(Span<byte> destination, uint window)
    {
        ReadOnlySpan<uint> refs = _pages.Refs;
        GuiProtocol.WriteHeader(destination, MessageType.WindowDump, window, (uint)(GuiProtocol.WindowDumpHeaderSize + 4 * refs.Length));
        Span<byte> body = destination[GuiProtocol.HeaderSize..];
        System.Buffers.Binary.BinaryPrimitives.WriteUInt32LittleEndian(body, GuiProtocol.WindowDumpGrantRefs);
        System.Buffers.Binary.BinaryPrimitives.WriteUInt32LittleEndian(body[4..], (uint)Width);
        System.Buffers.Binary.BinaryPrimitives.WriteUInt32LittleEndian(body[8..], (uint)Height);
        System.Buffers.Binary.BinaryPrimitives.WriteUInt32LittleEndian(body[12..], 24);
        for (int i = 0; i < refs.Length; i++)
        {
            System.Buffers.Binary.BinaryPrimitives.WriteUInt32LittleEndian(body[(GuiProtocol.WindowDumpHeaderSize + 4 * i)..], refs[i]);
        }
        return DumpLength;
    }

    public void Dispose() => _pages.Dispose();
}

/// <summary>
/// The daemon's mappings of a qube's window images, by window slot: read-only, so the qube's
/// pages can change under the daemon but never the other way round. A reference the qube did not
/// grant to this domain fails the attach, not the daemon.
/// </summary>
public sealed unsafe class MappedWindowImages : IDisposable
{
    private readonly IPlatform _platform;
    private readonly int _domain;
    private readonly IMappedPages?[] _images;
    private readonly int[] _widths, _heights;

    public MappedWindowImages(IPlatform platform, int domain, int maxWindows = GuiDaemonOptions.DefaultMaxWindows)
    {
        _platform = platform;
        _domain = domain;
        _images = new IMappedPages?[maxWindows];
        _widths = new int[maxWindows];
        _heights = new int[maxWindows];
    }

    /// <summary>The last attach's failure, for the log.</summary>
    public string? LastError { get; private set; }

    /// <summary>Maps the references as the image of <paramref name="slot"/>; false if the qube's grants could not be mapped.</summary>
    public bool Attach(int slot, int width, int height, ReadOnlySpan<byte> references)
    {
        Detach(slot);
        try
        {
            // the references are little-endian u32, as this machine's own
            _images[slot] = _platform.Grants.Map(_domain, MemoryMarshal.Cast<byte, uint>(references), writable: false);
        }
        catch (PlatformException e)
        {
            LastError = e.Message;
            return false;
        }
        _widths[slot] = width;
        _heights[slot] = height;
        return true;
    }

    public void Detach(int slot)
    {
        _images[slot]?.Dispose();
        _images[slot] = null;
    }

    /// <summary>The mapped pages of <paramref name="slot"/>'s image, or null.</summary>
    public IMappedPages? Pages(int slot) => _images[slot];

    /// <summary>The image of <paramref name="slot"/> (rows of width × 4 bytes), empty without one.</summary>
    public ReadOnlySpan<byte> Pixels(int slot, out int width, out int height)
    {
        IMappedPages? image = _images[slot];
        width = image == null ? 0 : _widths[slot];
        height = image == null ? 0 : _heights[slot];
        return image == null ? default : new((void*)image.Address, width * height * GuiProtocol.BytesPerPixel);
    }

    public void Dispose()
    {
        for (int slot = 0; slot < _images.Length; slot++)
        {
            Detach(slot);
        }
    }
}
