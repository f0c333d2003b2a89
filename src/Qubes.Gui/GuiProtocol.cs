using System;
using System.Buffers.Binary;

namespace Qubes.Gui;

/// <summary>The message types of the GUI protocol (spec gui-protocol §5).</summary>
public enum MessageType : uint
{
    KeyPress = 124,
    Button = 125,
    Motion = 126,
    Crossing = 127,
    Focus = 128,
    Resize = 129,
    Create = 130,
    Destroy = 131,
    Map = 132,
    Unmap = 133,
    Configure = 134,
    MfnDump = 135,
    ShmImage = 136,
    Close = 137,
    Execute = 138,
    ClipboardReq = 139,
    ClipboardData = 140,
    WmName = 141,
    KeymapNotify = 142,
    Dock = 143,
    WindowHints = 144,
    WindowFlags = 145,
    WmClass = 146,
    WindowDump = 147,
    Cursor = 148,
    WindowDumpAck = 149,
}

/// <summary>
/// Constants, limits and the header of the GUI protocol between the agent in a qube and the daemon
/// (spec gui-protocol §2-§7). Every message is a 12-byte header and a body; all fields are
/// little-endian 32-bit.
/// <code>
///  0        4        8        12
///  +--------+--------+--------+----------- - -
///  |  type  | window |  len   |  body (len bytes as claimed; fixed for most types)
///  +--------+--------+--------+----------- - -
/// </code>
/// </summary>
public static class GuiProtocol
{
    /// <summary>The vchan port of the GUI connection; the agent serves it.</summary>
    public const int VchanPort = 6000;

    /// <summary>The rings of the GUI vchan (read and write).</summary>
    public const int RingSize = 4096;

    public const uint MajorVersion = 1, MinorVersion = 8;

    /// <summary>This implementation's version, <c>major &lt;&lt; 16 | minor</c>.</summary>
    public const uint Version = MajorVersion << 16 | MinorVersion;

    /// <summary>At or above: clipboard length in <c>untrusted_len</c>, below in <c>window</c>.</summary>
    public const uint ClipboardDataLenInLen = 0x00010002;

    /// <summary>At or above: the daemon sends its version before <c>xconf</c>.</summary>
    public const uint BidirectionalNegotiation = 0x00010004;

    /// <summary>At or above: the daemon acknowledges DESTROY.</summary>
    public const uint BidirectionalDestroy = 0x00010005;

    /// <summary>At or above: a body length that differs from the type's size is fatal.</summary>
    public const uint StrictLengths = 0x00010006;

    /// <summary>At or above: the daemon sends WINDOW_DUMP_ACK.</summary>
    public const uint WindowDumpAckVersion = 0x00010007;

    /// <summary>At or above: clipboard up to 256000 bytes.</summary>
    public const uint Clipboard4x = 0x00010008;

    public const int HeaderSize = 12;

    public const int MaxWindowWidth = 16384, MaxWindowHeight = 6144;

    public const int BytesPerPixel = 4;

    public const long MaxWindowMemory = (long)MaxWindowWidth * MaxWindowHeight * BytesPerPixel;

    public const int PageSize = 4096;

    /// <summary>MAX_GRANT_REFS_COUNT (= MAX_MFN_COUNT): the pages of the largest window.</summary>
    public const int MaxGrantRefs = (int)(MaxWindowMemory / PageSize);

    /// <summary>The fixed parts of WINDOW_DUMP and MFNDUMP.</summary>
    public const int WindowDumpHeaderSize = 16, MfnDumpHeaderSize = 28;

    /// <summary>The only WINDOW_DUMP type defined.</summary>
    public const uint WindowDumpGrantRefs = 0;

    /// <summary>The largest WINDOW_DUMP message: header, dump header and every grant reference.</summary>
    public const int MaxWindowDumpMessage = HeaderSize + WindowDumpHeaderSize + MaxGrantRefs * 4;

    /// <summary>Clipboard limit of sessions below 1.8.</summary>
    public const int MaxClipboardSizeOld = 65000;

    /// <summary>Clipboard limit at 1.8; an agent holding more sends one byte more to say so.</summary>
    public const int MaxClipboardBufferSize = 256000;

    public const int MinClipboardBufferSize = 256, DefaultClipboardBufferSize = 64000;

    public const uint CursorDefault = 0, CursorX11 = 0x100, CursorX11Max = 0x19a;

    public const int MaxOverrideRedirectPercentage = 90;

    /// <summary>The window flags of WINDOW_FLAGS.</summary>
    public const uint FlagFullscreen = 1, FlagDemandsAttention = 2, FlagMinimize = 4;

    /// <summary>The X11 size-hint bits WINDOW_HINTS may carry (Xutil.h).</summary>
    public const uint USPosition = 1, PPosition = 4, PMinSize = 16, PMaxSize = 32, PResizeInc = 64, PBaseSize = 256;

    /// <summary>WMNAME and WMCLASS bodies, and each half of WMCLASS.</summary>
    public const int NameSize = 128, ClassFieldSize = 64;

    /// <summary>
    /// The body size of a type with a fixed size (§5), or −1 for the variable ones (MFNDUMP,
    /// CLIPBOARD_DATA, WINDOW_DUMP) and unknown values.
    /// </summary>
    public static int FixedBodySize(uint type) => (MessageType)type switch
    {
        MessageType.KeyPress or MessageType.Button => 20,
        MessageType.Motion => 16,
        MessageType.Crossing => 28,
        MessageType.Focus => 12,
        MessageType.Resize => 8,
        MessageType.Create => 24,
        MessageType.Destroy or MessageType.Unmap or MessageType.Close or MessageType.ClipboardReq
            or MessageType.Dock or MessageType.WindowDumpAck => 0,
        MessageType.Map => 8,
        MessageType.Configure => 20,
        MessageType.ShmImage => 16,
        MessageType.Execute => 255,
        MessageType.WmName or MessageType.WmClass => NameSize,
        MessageType.KeymapNotify => 32,
        MessageType.WindowHints => 36,
        MessageType.WindowFlags => 8,
        MessageType.Cursor => 4,
        _ => -1,
    };

    /// <summary>Writes a message header.</summary>
    public static void WriteHeader(Span<byte> destination, MessageType type, uint window, uint length)
    {
        BinaryPrimitives.WriteUInt32LittleEndian(destination, (uint)type);
        BinaryPrimitives.WriteUInt32LittleEndian(destination[4..], window);
        BinaryPrimitives.WriteUInt32LittleEndian(destination[8..], length);
    }

    /// <summary>Reads the u32 at field index <paramref name="field"/> of a body.</summary>
    public static uint U32(ReadOnlySpan<byte> body, int field) => BinaryPrimitives.ReadUInt32LittleEndian(body[(field * 4)..]);

    /// <summary>Reads the i32 at field index <paramref name="field"/> of a body.</summary>
    public static int I32(ReadOnlySpan<byte> body, int field) => BinaryPrimitives.ReadInt32LittleEndian(body[(field * 4)..]);

    /// <summary>
    /// Writes a message of 32-bit fields (header and body) and returns its length. Input events,
    /// CONFIGURE, MAP, WINDOW_FLAGS and the acknowledgements are all of this form.
    /// </summary>
    public static int WriteMessage(Span<byte> destination, MessageType type, uint window, ReadOnlySpan<uint> fields)
    {
        WriteHeader(destination, type, window, (uint)(fields.Length * 4));
        for (int i = 0; i < fields.Length; i++)
        {
            BinaryPrimitives.WriteUInt32LittleEndian(destination[(HeaderSize + i * 4)..], fields[i]);
        }
        return HeaderSize + fields.Length * 4;
    }

    /// <summary>The major and minor parts of a version value.</summary>
    public static (uint Major, uint Minor) Split(uint version) => (version >> 16, version & 0xFFFF);
}
