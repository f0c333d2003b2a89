using System;
using System.Buffers.Binary;
using Qubes.Interop.Linux;

namespace Qubes.Platform.Xenstore;

/// <summary>
/// Limits and error names of the xenstore wire protocol (xs_wire.h). Every message is an
/// <c>xsd_sockmsg</c> header followed by its payload:
/// <code>
///  0        4        8        12       16
///  +--------+--------+--------+--------+------------------------+
///  | type   | req_id | tx_id  | len    | payload (len bytes)    |
///  +--------+--------+--------+--------+------------------------+
///  all u32 little-endian (host order; Xen guests and dom0 share it); len &lt;= 4096
/// </code>
/// </summary>
public static class XenstoreWire
{
    /// <summary>sizeof(struct xsd_sockmsg).</summary>
    public const int HeaderSize = 16;

    /// <summary>XENSTORE_PAYLOAD_MAX: a message whose len exceeds this cannot be framed.</summary>
    public const int MaxPayload = 4096;

    /// <summary>Largest whole message.</summary>
    public const int MaxMessage = HeaderSize + MaxPayload;

    /// <summary>Longest absolute store path (XENSTORE_ABS_PATH_MAX).</summary>
    public const int MaxPathLength = 3072;

    /// <summary>Longest name in an XS_ERROR payload that <see cref="ParseErrorName"/> considers.</summary>
    private const int MaxErrorName = 16;

    /// <summary>
    /// The xenstore wire name of an errno ("EACCES"). The names of <c>xsd_errors[]</c> (EINVAL,
    /// EACCES, EEXIST, EISDIR, ENOENT, ENOMEM, ENOSPC, EIO, ENOTEMPTY, ENOSYS, EROFS, EBUSY, EAGAIN,
    /// EISCONN, E2BIG) are all <see cref="Errno"/> members; any other known errno is sent by its
    /// name too, unknown ones as EIO.
    /// </summary>
    public static string ErrorName(Errno errno) =>
        errno != Errno.None && Enum.IsDefined(errno) ? errno.ToString() : "EIO";

    /// <summary>The XS_ERROR payload for <paramref name="errno"/>: its name and a NUL.</summary>
    public static byte[] ErrorPayload(Errno errno) => XenstorePayload.Strings(ErrorName(errno));

    /// <summary>
    /// Parses an XS_ERROR payload ("EACCES\0", the NUL optional). Anything that is not the name of a
    /// known errno becomes EIO, so the result is never <see cref="Errno.None"/>. Never throws.
    /// </summary>
    public static Errno ParseErrorName(ReadOnlySpan<byte> payload)
    {
        int nul = payload.IndexOf((byte)0);
        ReadOnlySpan<byte> name = nul >= 0 ? payload[..nul] : payload;
        if (name.Length < 2 || name.Length > MaxErrorName || name[0] != (byte)'E')
        {
            return Errno.EIO;
        }
        Span<char> chars = stackalloc char[MaxErrorName];
        for (int i = 0; i < name.Length; i++)
        {
            byte b = name[i];
            bool upper = b >= (byte)'A' && b <= (byte)'Z';
            bool digit = b >= (byte)'0' && b <= (byte)'9';
            if (!upper && !digit)
            {
                return Errno.EIO;
            }
            chars[i] = (char)b;
        }
        // The leading 'E' keeps Enum.TryParse from reading the text as a number.
        return Enum.TryParse(chars[..name.Length], ignoreCase: false, out Errno errno) && Enum.IsDefined(errno) && errno != Errno.None
            ? errno
            : Errno.EIO;
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

/// <summary>A decoded <c>xsd_sockmsg</c> header.</summary>
/// <param name="Type">The message type; peers may send values that are not <see cref="XenstoreMessageType"/> members.</param>
/// <param name="RequestId">req_id: echoed in the reply.</param>
/// <param name="TransactionId">tx_id: 0 outside a transaction.</param>
/// <param name="Length">len: payload bytes, at most <see cref="XenstoreWire.MaxPayload"/> once parsed.</param>
public readonly record struct XenstoreHeader(XenstoreMessageType Type, uint RequestId, uint TransactionId, int Length)
{
    /// <summary>Header plus payload length.</summary>
    public int TotalLength => XenstoreWire.HeaderSize + Length;

    /// <summary>
    /// Looks for one whole message at the start of <paramref name="buffer"/>. <see cref="FrameStatus.Invalid"/>
    /// when len exceeds <see cref="XenstoreWire.MaxPayload"/> (the stream cannot be resynchronised).
    /// Never throws.
    /// </summary>
    public static FrameStatus TryRead(ReadOnlySpan<byte> buffer, out XenstoreHeader header)
    {
        header = default;
        if (buffer.Length < XenstoreWire.HeaderSize)
        {
            return FrameStatus.NeedMore;
        }
        uint length = BinaryPrimitives.ReadUInt32LittleEndian(buffer[12..]);
        if (length > XenstoreWire.MaxPayload)
        {
            return FrameStatus.Invalid;
        }
        header = new XenstoreHeader(
            (XenstoreMessageType)BinaryPrimitives.ReadUInt32LittleEndian(buffer),
            BinaryPrimitives.ReadUInt32LittleEndian(buffer[4..]),
            BinaryPrimitives.ReadUInt32LittleEndian(buffer[8..]),
            (int)length);
        return buffer.Length >= header.TotalLength ? FrameStatus.Complete : FrameStatus.NeedMore;
    }

    /// <summary>Writes the 16 header bytes to the start of <paramref name="destination"/>.</summary>
    public void Write(Span<byte> destination)
    {
        BinaryPrimitives.WriteUInt32LittleEndian(destination, (uint)Type);
        BinaryPrimitives.WriteUInt32LittleEndian(destination[4..], RequestId);
        BinaryPrimitives.WriteUInt32LittleEndian(destination[8..], TransactionId);
        BinaryPrimitives.WriteUInt32LittleEndian(destination[12..], (uint)Length);
    }

    /// <summary>A whole message: this header (with <see cref="Length"/> set from the payload) and the payload.</summary>
    public static byte[] Message(XenstoreMessageType type, uint requestId, uint transactionId, ReadOnlySpan<byte> payload)
    {
        byte[] message = new byte[XenstoreWire.HeaderSize + payload.Length];
        new XenstoreHeader(type, requestId, transactionId, payload.Length).Write(message);
        payload.CopyTo(message.AsSpan(XenstoreWire.HeaderSize));
        return message;
    }
}
