using System;
using System.Buffers.Binary;
using Qubes.Interop.Linux;

namespace Qubes.Platform.Loopback;

/// <summary>
/// Message types of the broker protocol. Store operations use the xenstore numbers of xs_wire.h;
/// broker operations (the hypervisor's part) start at 0x100.
/// </summary>
public enum MessageType : uint
{
    Directory = 1,
    Read = 2,
    GetPerms = 3,
    Watch = 4,
    Unwatch = 5,
    TransactionStart = 6,
    TransactionEnd = 7,
    GetDomainPath = 10,
    Write = 11,
    Mkdir = 12,
    Rm = 13,
    SetPerms = 14,
    WatchEvent = 15,
    Error = 16,

    CreateDomain = 0x100,
    DestroyDomain = 0x101,
    Connect = 0x102,
    IsAlive = 0x103,
    GrantAlloc = 0x104,
    GrantMap = 0x105,
    GrantFree = 0x106,
    UnmapNotifySet = 0x107,
    UnmapNotifyClear = 0x108,
    EvtchnAllocUnbound = 0x109,
    EvtchnBind = 0x10A,
    EvtchnClose = 0x10B,
    EvtchnStatus = 0x10C,
}

/// <summary>
/// Framing shared by broker and client: the xenstore header (xsd_sockmsg) and its limits.
/// <code>
///  0        4        8        12       16
///  +--------+--------+--------+--------+------------------------+
///  | type   | req_id | tx_id  | len    | payload (len bytes)    |
///  +--------+--------+--------+--------+------------------------+
///  all u32 little-endian; len &lt;= 4096
/// </code>
/// </summary>
public static class Wire
{
    /// <summary>sizeof(struct xsd_sockmsg).</summary>
    public const int HeaderSize = 16;

    /// <summary>XENSTORE_PAYLOAD_MAX.</summary>
    public const int MaxPayload = 4096;

    /// <summary>Largest whole message.</summary>
    public const int MaxMessage = HeaderSize + MaxPayload;

    /// <summary>Longest absolute store path (XENSTORE_ABS_PATH_MAX).</summary>
    public const int MaxPathLength = 3072;

    /// <summary>Largest store value.</summary>
    public const int MaxValueLength = 4096;

    /// <summary>Most grant refs a single GrantMap request names.</summary>
    public const int MaxMapRefs = 256;

    /// <summary>Most pages one GrantAlloc may share.</summary>
    public const int MaxGrantPages = 1024;

    /// <summary>Flag bit of GrantAlloc (read-only grant) and GrantMap (writable mapping).</summary>
    public const uint FlagReadOnly = 1;

    /// <summary>Flag bit of GrantMap asking for a writable mapping.</summary>
    public const uint FlagWritable = 1;

    public static void WriteHeader(Span<byte> destination, MessageType type, uint requestId, uint transactionId, int length)
    {
        BinaryPrimitives.WriteUInt32LittleEndian(destination, (uint)type);
        BinaryPrimitives.WriteUInt32LittleEndian(destination[4..], requestId);
        BinaryPrimitives.WriteUInt32LittleEndian(destination[8..], transactionId);
        BinaryPrimitives.WriteUInt32LittleEndian(destination[12..], (uint)length);
    }

    /// <summary>The xenstore wire name of an errno ("EACCES").</summary>
    public static string ErrorName(Errno errno) => errno switch
    {
        Errno.None => "EIO",
        _ => Enum.IsDefined(errno) ? errno.ToString() : "EIO",
    };

    /// <summary>Parses an XS_ERROR payload ("EACCES\0"); unknown names become EIO.</summary>
    public static Errno ParseErrorName(ReadOnlySpan<byte> payload)
    {
        int nul = payload.IndexOf((byte)0);
        ReadOnlySpan<byte> name = nul >= 0 ? payload[..nul] : payload;
        if (name.Length == 0 || name.Length > 16)
        {
            return Errno.EIO;
        }
        Span<char> chars = stackalloc char[16];
        for (int i = 0; i < name.Length; i++)
        {
            byte b = name[i];
            if (b < (byte)'0' || b > (byte)'Z')
            {
                return Errno.EIO;
            }
            chars[i] = (char)b;
        }
        return Enum.TryParse(chars[..name.Length], ignoreCase: false, out Errno errno) && errno != Errno.None ? errno : Errno.EIO;
    }
}

/// <summary>Outcome of looking for one whole message at the start of a buffer.</summary>
public enum FrameStatus
{
    /// <summary>More bytes are needed.</summary>
    NeedMore,

    /// <summary>A whole message is present.</summary>
    Complete,

    /// <summary>The header is impossible (payload over the limit): the stream cannot be resynchronised.</summary>
    Invalid,
}

/// <summary>A decoded xsd_sockmsg header.</summary>
public readonly record struct MessageHeader(MessageType Type, uint RequestId, uint TransactionId, int Length)
{
    /// <summary>Header plus payload length.</summary>
    public int TotalLength => Wire.HeaderSize + Length;

    /// <summary>Looks for one whole message at the start of <paramref name="buffer"/>. Never throws.</summary>
    public static FrameStatus TryRead(ReadOnlySpan<byte> buffer, out MessageHeader header)
    {
        header = default;
        if (buffer.Length < Wire.HeaderSize)
        {
            return FrameStatus.NeedMore;
        }
        uint length = BinaryPrimitives.ReadUInt32LittleEndian(buffer[12..]);
        if (length > Wire.MaxPayload)
        {
            return FrameStatus.Invalid;
        }
        header = new MessageHeader(
            (MessageType)BinaryPrimitives.ReadUInt32LittleEndian(buffer),
            BinaryPrimitives.ReadUInt32LittleEndian(buffer[4..]),
            BinaryPrimitives.ReadUInt32LittleEndian(buffer[8..]),
            (int)length);
        return buffer.Length >= header.TotalLength ? FrameStatus.Complete : FrameStatus.NeedMore;
    }
}
