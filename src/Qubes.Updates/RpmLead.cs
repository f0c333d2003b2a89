using System;
using System.Buffers.Binary;

namespace Qubes.Updates;

/// <summary>
/// The 96-byte lead at the start of every package. rpm ignores most of it today, which is why a
/// canonical package gets one written afresh from the few fields that were checked here:
/// <code>
///  0      4     5     6       8        10          76      78        80          96
///  +------+-----+-----+-------+--------+-----------+-------+---------+-----------+
///  |magic |major|minor| type  | arch   | name (66, | os    | sigtype | reserved  |
///  |edabeedb| 3 |  0  | 0 / 1 | number | NUL-ended)| number|    5    | 16 zeros  |
///  +------+-----+-----+-------+--------+-----------+-------+---------+-----------+
/// </code>
/// (integers big-endian).
/// </summary>
public sealed class RpmLead
{
    /// <summary>The lead's size.</summary>
    public const int Size = 96;

    private const int NameOffset = 10;
    private const int NameSize = 66;
    private const int OsOffset = 76;
    private const int SignatureTypeOffset = 78;
    private const int ReservedOffset = 80;
    private const int ReservedSize = 16;
    private const byte MajorVersion = 3;

    /// <summary>The only signature type rpm reads: a header-structured signature block.</summary>
    private const ushort HeaderSignatureType = 5;

    private static ReadOnlySpan<byte> Magic => [0xED, 0xAB, 0xEE, 0xDB];

    private readonly byte[] _name;

    private RpmLead(ushort type, ushort arch, ushort os, byte[] name)
    {
        Type = type;
        ArchNumber = arch;
        OsNumber = os;
        _name = name;
    }

    /// <summary>0 for a binary package, 1 for a source package.</summary>
    public ushort Type { get; }

    /// <summary>The architecture number.</summary>
    public ushort ArchNumber { get; }

    /// <summary>The operating-system number.</summary>
    public ushort OsNumber { get; }

    /// <summary>The package name the lead carries (up to 65 characters, without its NUL).</summary>
    public ReadOnlySpan<byte> Name => _name;

    /// <summary>Parses a lead from the start of <paramref name="data"/>.</summary>
    public static RpmParseResult Parse(ReadOnlySpan<byte> data, out RpmLead? lead)
    {
        lead = null;
        if (data.Length < Size)
        {
            return RpmParseResult.NeedMore(Size);
        }
        if (!data[..4].SequenceEqual(Magic))
        {
            return RpmParseResult.Fail("not an RPM package (bad lead magic)", 0);
        }
        if (data[4] != MajorVersion || data[5] != 0)
        {
            return RpmParseResult.Fail($"unsupported package format version {data[4]}.{data[5]}", 4);
        }
        ushort type = BinaryPrimitives.ReadUInt16BigEndian(data[6..]);
        if (type > 1)
        {
            return RpmParseResult.Fail($"unknown package type {type}", 6);
        }
        ReadOnlySpan<byte> nameField = data.Slice(NameOffset, NameSize);
        int end = nameField.IndexOf((byte)0);
        if (end < 0)
        {
            return RpmParseResult.Fail("package name in the lead is not NUL-terminated", NameOffset);
        }
        for (int i = 0; i < end; i++)
        {
            if (!IsNameByte(nameField[i]))
            {
                return RpmParseResult.Fail("invalid character in the lead's package name", NameOffset + i);
            }
        }
        if (nameField[end..].ContainsAnyExcept((byte)0))
        {
            return RpmParseResult.Fail("bytes after the lead's package name are not zero", NameOffset + end);
        }
        ushort signatureType = BinaryPrimitives.ReadUInt16BigEndian(data[SignatureTypeOffset..]);
        if (signatureType != HeaderSignatureType)
        {
            return RpmParseResult.Fail($"unsupported signature type {signatureType}", SignatureTypeOffset);
        }
        if (data.Slice(ReservedOffset, ReservedSize).ContainsAnyExcept((byte)0))
        {
            return RpmParseResult.Fail("reserved bytes of the lead are not zero", ReservedOffset);
        }
        lead = new RpmLead(type, BinaryPrimitives.ReadUInt16BigEndian(data[8..]), BinaryPrimitives.ReadUInt16BigEndian(data[OsOffset..]), nameField[..end].ToArray());
        return RpmParseResult.Done(Size);
    }

    /// <summary>Writes a fresh lead with these fields (everything else zero) to <paramref name="destination"/>.</summary>
    public void Write(Span<byte> destination)
    {
        Span<byte> lead = destination[..Size];
        lead.Clear();
        Magic.CopyTo(lead);
        lead[4] = MajorVersion;
        BinaryPrimitives.WriteUInt16BigEndian(lead[6..], Type);
        BinaryPrimitives.WriteUInt16BigEndian(lead[8..], ArchNumber);
        _name.CopyTo(lead[NameOffset..]);
        BinaryPrimitives.WriteUInt16BigEndian(lead[OsOffset..], OsNumber);
        BinaryPrimitives.WriteUInt16BigEndian(lead[SignatureTypeOffset..], HeaderSignatureType);
    }

    /// <summary>rpm writes name-version-release here; '^' appears in versions of snapshots.</summary>
    private static bool IsNameByte(byte b)
        => char.IsAsciiLetterOrDigit((char)b) || b is (byte)'.' or (byte)'-' or (byte)'_' or (byte)'+' or (byte)'~' or (byte)':' or (byte)'^';
}
