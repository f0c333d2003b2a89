using System;
using System.Buffers.Binary;

namespace Qubes.FileCopy;

/// <summary>
/// The qubes.Filecopy stream (spec filecopy §2-§5): records of a 32-byte header, a name and the
/// content, an all-zero header at the end, and one reply from the receiver.
/// <code>
///  0        4        8                16       20       24       28       32
///  +--------+--------+----------------+--------+--------+--------+--------+
///  |namelen |  mode  |    filelen     | atime  | a_nsec | mtime  | m_nsec |  then namelen bytes of
///  +--------+--------+----------------+--------+--------+--------+--------+  name, then the content
/// </code>
/// </summary>
public static class FileCopyProtocol
{
    /// <summary>Size of a record header and of the end marker.</summary>
    public const int HeaderSize = 32;

    /// <summary>MAX_PATH_LENGTH: a name field (with its NUL) and a link target stay below it.</summary>
    public const int MaxPathLength = 16384;

    /// <summary>The reply's error code when the stream ended inside a record.</summary>
    public const uint LegalEof = 31415926;

    /// <summary>Size of the reply without its extension.</summary>
    public const int ReplySize = 16;

    /// <summary>Largest valid nanoseconds field.</summary>
    public const uint MaxNanoseconds = 999_999_999;

    /// <summary>Largest <c>last_namelen</c> a sender accepts in a reply.</summary>
    public const int MaxReplyNameLength = 16384;

    /// <summary>The type bits of a mode (S_IFMT) and the three types the stream carries.</summary>
    public const uint TypeMask = 0xF000, Regular = 0x8000, Directory = 0x4000, SymbolicLink = 0xA000;

    /// <summary>The permission bits applied to files and directories (07777).</summary>
    public const uint PermissionMask = 0xFFF;

    /// <summary>
    /// Writes the reply up to its name (spec §3): error code, padding, the CRC as u64, and, when the
    /// reply names an entry, the name's length (the name follows it). Returns the bytes written,
    /// 16 or 20.
    /// </summary>
    public static int WriteReplyHead(Span<byte> destination, uint errorCode, uint crc, int? lastNameLength)
    {
        BinaryPrimitives.WriteUInt32LittleEndian(destination, errorCode);
        BinaryPrimitives.WriteUInt32LittleEndian(destination[4..], 0);
        BinaryPrimitives.WriteUInt64LittleEndian(destination[8..], crc);
        if (lastNameLength is not int length)
        {
            return ReplySize;
        }
        BinaryPrimitives.WriteUInt32LittleEndian(destination[16..], (uint)length);
        return ReplySize + 4;
    }

    /// <summary>
    /// A reply's name made safe for a terminal as upstream's sender shows it: every byte below
    /// 0x20, above 0x7E, or <c>"</c> becomes <c>_</c>.
    /// </summary>
    public static string SanitizeForDisplay(ReadOnlySpan<byte> untrustedName)
    {
        return string.Create(untrustedName.Length, untrustedName, static (chars, name) =>
        {
            for (int i = 0; i < name.Length; i++)
            {
                byte b = name[i];
                chars[i] = b is < 0x20 or > 0x7E or (byte)'"' ? '_' : (char)b;
            }
        });
    }
}

/// <summary>A record header (spec filecopy §2); the end marker has <see cref="NameLength"/> 0.</summary>
public readonly record struct FileHeader(uint NameLength, uint Mode, ulong FileLength, uint ATime, uint ATimeNanoseconds, uint MTime, uint MTimeNanoseconds)
{
    /// <summary>Whether this is the end of the transfer.</summary>
    public bool IsEnd => NameLength == 0;

    /// <summary>The type bits of <see cref="Mode"/>.</summary>
    public uint Type => Mode & FileCopyProtocol.TypeMask;

    /// <summary>The header in <paramref name="source"/> (at least 32 bytes).</summary>
    public static FileHeader Read(ReadOnlySpan<byte> source) => new(
        BinaryPrimitives.ReadUInt32LittleEndian(source),
        BinaryPrimitives.ReadUInt32LittleEndian(source[4..]),
        BinaryPrimitives.ReadUInt64LittleEndian(source[8..]),
        BinaryPrimitives.ReadUInt32LittleEndian(source[16..]),
        BinaryPrimitives.ReadUInt32LittleEndian(source[20..]),
        BinaryPrimitives.ReadUInt32LittleEndian(source[24..]),
        BinaryPrimitives.ReadUInt32LittleEndian(source[28..]));

    /// <summary>Writes the 32 bytes of this header.</summary>
    public void Write(Span<byte> destination)
    {
        BinaryPrimitives.WriteUInt32LittleEndian(destination, NameLength);
        BinaryPrimitives.WriteUInt32LittleEndian(destination[4..], Mode);
        BinaryPrimitives.WriteUInt64LittleEndian(destination[8..], FileLength);
        BinaryPrimitives.WriteUInt32LittleEndian(destination[16..], ATime);
        BinaryPrimitives.WriteUInt32LittleEndian(destination[20..], ATimeNanoseconds);
        BinaryPrimitives.WriteUInt32LittleEndian(destination[24..], MTime);
        BinaryPrimitives.WriteUInt32LittleEndian(destination[28..], MTimeNanoseconds);
    }
}
