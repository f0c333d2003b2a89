using System;
using System.Buffers.Binary;
using System.Collections.Generic;

namespace Qubes.Updates;

/// <summary>
/// The signature header's tags that rpm uses to verify a package, checked and kept; every other
/// tag (padding, file signatures, anything unknown) is dropped from a canonical package.
/// </summary>
public static class RpmSignatureTags
{
    /// <summary>DSA signature of the main header (RPMSIGTAG_DSA).</summary>
    public const uint HeaderDsa = 267;

    /// <summary>RSA (or any OpenPGP) signature of the main header (RPMSIGTAG_RSA).</summary>
    public const uint HeaderRsa = 268;

    /// <summary>Hex SHA-1 of the main header (RPMSIGTAG_SHA1).</summary>
    public const uint HeaderSha1 = 269;

    /// <summary>64-bit size of the main header and payload (RPMSIGTAG_LONGSIZE).</summary>
    public const uint LongSize = 270;

    /// <summary>64-bit uncompressed payload size (RPMSIGTAG_LONGARCHIVESIZE).</summary>
    public const uint LongArchiveSize = 271;

    /// <summary>Hex SHA-256 of the main header (RPMSIGTAG_SHA256).</summary>
    public const uint HeaderSha256 = 273;

    /// <summary>32-bit size of the main header and payload (RPMSIGTAG_SIZE).</summary>
    public const uint Size = 1000;

    /// <summary>OpenPGP RSA signature of the main header and payload (RPMSIGTAG_PGP).</summary>
    public const uint HeaderPayloadPgp = 1002;

    /// <summary>MD5 of the main header and payload (RPMSIGTAG_MD5).</summary>
    public const uint HeaderPayloadMd5 = 1004;

    /// <summary>OpenPGP DSA signature of the main header and payload (RPMSIGTAG_GPG).</summary>
    public const uint HeaderPayloadGpg = 1005;

    /// <summary>32-bit uncompressed payload size (RPMSIGTAG_PAYLOADSIZE).</summary>
    public const uint ArchiveSize = 1007;

    /// <summary>Zeros reserved for a later signature (RPMSIGTAG_RESERVEDSPACE).</summary>
    public const uint ReservedSpace = 1008;

    /// <summary>What a tag is for, which decides how it is checked and whether it is kept.</summary>
    internal enum Role
    {
        HeaderSignature,
        HeaderPayloadSignature,
        HeaderDigest,
        HeaderPayloadDigest,
        Size,
        ArchiveSize,
        Zeroed,
    }

    /// <summary>Each tag rpm knows in a signature header: its type, its exact data length (0: any) and its role.</summary>
    internal static bool TryDescribe(uint tag, out RpmTagType type, out int length, out Role role)
    {
        (type, length, role) = tag switch
        {
            HeaderDsa or HeaderRsa => (RpmTagType.Bin, 0, Role.HeaderSignature),
            HeaderSha1 => (RpmTagType.String, 41, Role.HeaderDigest),
            LongSize => (RpmTagType.Int64, 8, Role.Size),
            LongArchiveSize => (RpmTagType.Int64, 8, Role.ArchiveSize),
            HeaderSha256 => (RpmTagType.String, 65, Role.HeaderDigest),
            Size => (RpmTagType.Int32, 4, Role.Size),
            HeaderPayloadPgp or HeaderPayloadGpg => (RpmTagType.Bin, 0, Role.HeaderPayloadSignature),
            HeaderPayloadMd5 => (RpmTagType.Bin, 16, Role.HeaderPayloadDigest),
            ArchiveSize => (RpmTagType.Int32, 4, Role.ArchiveSize),
            ReservedSpace => (RpmTagType.Bin, 0, Role.Zeroed),
            _ => (RpmTagType.Null, -1, Role.Zeroed),
        };
        return length >= 0;
    }
}

/// <summary>The signature header's checked tags, and the canonical signature header made of them.</summary>
public sealed class RpmSignatureHeader
{
    /// <summary>The largest OpenPGP signature packet accepted (an RSA-16384 signature is about 2 KiB).</summary>
    public const int MaxSignatureLength = 16 * 1024;

    private readonly List<(uint Tag, RpmTagType Type, byte[] Data, uint Count)> _kept = [];

    private RpmSignatureHeader()
    {
    }

    /// <summary>The hex SHA-1 of the main header the package claims, if it has one.</summary>
    public string? HeaderSha1 { get; private set; }

    /// <summary>The hex SHA-256 of the main header the package claims, if it has one.</summary>
    public string? HeaderSha256 { get; private set; }

    /// <summary>The size of main header and payload the package claims (each size tag present must agree).</summary>
    public ulong? HeaderAndPayloadSize { get; private set; }

    /// <summary>
    /// Checks the verification tags of <paramref name="header"/> and keeps them: the header
    /// signature, digests, sizes and MD5 always, the header-and-payload signatures only for old
    /// packages (<paramref name="keepHeaderPayloadSignatures"/>).
    /// </summary>
    public static RpmParseResult Check(RpmHeader header, bool keepHeaderPayloadSignatures, out RpmSignatureHeader? signature)
    {
        ArgumentNullException.ThrowIfNull(header);
        signature = null;
        RpmSignatureHeader result = new();
        bool headerSignature = false, headerPayloadSignature = false;
        foreach (RpmIndexEntry entry in header.Entries)
        {
            if (!RpmSignatureTags.TryDescribe(entry.Tag, out RpmTagType type, out int length, out RpmSignatureTags.Role role))
            {
                continue;
            }
            if (entry.Type != type)
            {
                return RpmParseResult.Fail($"signature tag {entry.Tag} has the type {(uint)entry.Type}, not {(uint)type}", 0);
            }
            ReadOnlySpan<byte> data = header.Data(entry);
            if (length != 0 && data.Length != length)
            {
                return RpmParseResult.Fail($"signature tag {entry.Tag} is {data.Length} bytes long, not {length}", 0);
            }
            bool keep = true;
            switch (role)
            {
                case RpmSignatureTags.Role.HeaderSignature:
                case RpmSignatureTags.Role.HeaderPayloadSignature:
                    ref bool seen = ref role == RpmSignatureTags.Role.HeaderSignature ? ref headerSignature : ref headerPayloadSignature;
                    if (seen)
                    {
                        return RpmParseResult.Fail("more than one signature of the same kind", 0);
                    }
                    seen = true;
                    if (!IsSignaturePacket(data))
                    {
                        return RpmParseResult.Fail($"signature tag {entry.Tag} is not one OpenPGP signature packet", 0);
                    }
                    keep = role == RpmSignatureTags.Role.HeaderSignature || keepHeaderPayloadSignatures;
                    break;
                case RpmSignatureTags.Role.HeaderDigest:
                    if (!IsLowerHex(data[..^1]))
                    {
                        return RpmParseResult.Fail($"digest tag {entry.Tag} is not hexadecimal", 0);
                    }
                    string hex = System.Text.Encoding.ASCII.GetString(data[..^1]);
                    if (entry.Tag == RpmSignatureTags.HeaderSha1)
                    {
                        result.HeaderSha1 = hex;
                    }
                    else
                    {
                        result.HeaderSha256 = hex;
                    }
                    break;
                case RpmSignatureTags.Role.Size:
                    ulong size = entry.Type == RpmTagType.Int64 ? BinaryPrimitives.ReadUInt64BigEndian(data) : BinaryPrimitives.ReadUInt32BigEndian(data);
                    if (result.HeaderAndPayloadSize is ulong other && other != size)
                    {
                        return RpmParseResult.Fail($"the size tags disagree ({other} and {size})", 0);
                    }
                    result.HeaderAndPayloadSize = size;
                    break;
                case RpmSignatureTags.Role.Zeroed:
                    if (data.ContainsAnyExcept((byte)0))
                    {
                        return RpmParseResult.Fail("reserved space in the signature header is not zero", 0);
                    }
                    keep = false;
                    break;
                case RpmSignatureTags.Role.HeaderPayloadDigest:
                case RpmSignatureTags.Role.ArchiveSize:
                    break;
            }
            if (keep)
            {
                result._kept.Add((entry.Tag, entry.Type, data.ToArray(), entry.Count));
            }
        }
        signature = result;
        return RpmParseResult.Done(0);
    }

    /// <summary>The size of the canonical signature header, its padding included.</summary>
    public int CanonicalSize
    {
        get
        {
            (int store, _) = Layout();
            int size = RpmHeader.IntroSize + (RpmHeader.EntrySize * (_kept.Count + 1)) + store;
            return (size + 7) & ~7;
        }
    }

    /// <summary>Writes the canonical signature header (<see cref="CanonicalSize"/> bytes) to <paramref name="destination"/>.</summary>
    public void Write(Span<byte> destination)
    {
        (int storeLength, int[] offsets) = Layout();
        int il = _kept.Count + 1;
        int storeOffset = RpmHeader.IntroSize + (RpmHeader.EntrySize * il);
        Span<byte> output = destination[..CanonicalSize];
        output.Clear();
        ReadOnlySpan<byte> magic = [0x8E, 0xAD, 0xE8, 0x01, 0x00, 0x00, 0x00, 0x00];
        magic.CopyTo(output);
        BinaryPrimitives.WriteUInt32BigEndian(output[8..], (uint)il);
        BinaryPrimitives.WriteUInt32BigEndian(output[12..], (uint)storeLength);
        int regionOffset = storeLength - RpmHeader.EntrySize;
        WriteEntry(output[RpmHeader.IntroSize..], RpmHeader.SignatureRegionTag, RpmTagType.Bin, regionOffset, RpmHeader.EntrySize);
        for (int i = 0; i < _kept.Count; i++)
        {
            (uint tag, RpmTagType type, byte[] data, uint count) = _kept[i];
            WriteEntry(output[(RpmHeader.IntroSize + (RpmHeader.EntrySize * (i + 1)))..], tag, type, offsets[i], count);
            data.CopyTo(output[(storeOffset + offsets[i])..]);
        }
        WriteEntry(output[(storeOffset + regionOffset)..], RpmHeader.SignatureRegionTag, RpmTagType.Bin, -(RpmHeader.EntrySize * il), RpmHeader.EntrySize);
    }

    /// <summary>Each kept entry's offset in the store, in tag order and aligned as rpm aligns it, and the store's length with the trailer.</summary>
    private (int Store, int[] Offsets) Layout()
    {
        int[] offsets = new int[_kept.Count];
        int cursor = 0;
        for (int i = 0; i < _kept.Count; i++)
        {
            int alignment = RpmHeader.Alignment(_kept[i].Type);
            cursor = (cursor + alignment - 1) & -alignment;
            offsets[i] = cursor;
            cursor += _kept[i].Data.Length;
        }
        return (cursor + RpmHeader.EntrySize, offsets);
    }

    private static void WriteEntry(Span<byte> destination, uint tag, RpmTagType type, int offset, uint count)
    {
        BinaryPrimitives.WriteUInt32BigEndian(destination, tag);
        BinaryPrimitives.WriteUInt32BigEndian(destination[4..], (uint)type);
        BinaryPrimitives.WriteInt32BigEndian(destination[8..], offset);
        BinaryPrimitives.WriteUInt32BigEndian(destination[12..], count);
    }

    private static bool IsLowerHex(ReadOnlySpan<byte> text)
    {
        foreach (byte b in text)
        {
            if (b is not ((>= (byte)'0' and <= (byte)'9') or (>= (byte)'a' and <= (byte)'f')))
            {
                return false;
            }
        }
        return true;
    }

    /// <summary>
    /// Whether <paramref name="data"/> is exactly one OpenPGP signature packet (tag 2) of version 3
    /// or 4 with a definite length: rpm parses it again, this keeps anything else out of the
    /// canonical package.
    /// </summary>
    internal static bool IsSignaturePacket(ReadOnlySpan<byte> data)
    {
        if (data.Length is < 2 or > MaxSignatureLength || (data[0] & 0x80) == 0)
        {
            return false;
        }
        int tag, headerLength;
        long bodyLength;
        if ((data[0] & 0x40) != 0)
        {
            tag = data[0] & 0x3F;
            byte first = data[1];
            if (first < 192)
            {
                (headerLength, bodyLength) = (2, first);
            }
            else if (first < 224)
            {
                if (data.Length < 3)
                {
                    return false;
                }
                (headerLength, bodyLength) = (3, ((first - 192) << 8) + data[2] + 192);
            }
            else if (first == 255)
            {
                if (data.Length < 6)
                {
                    return false;
                }
                (headerLength, bodyLength) = (6, BinaryPrimitives.ReadUInt32BigEndian(data[2..]));
            }
            else
            {
                return false; // partial body lengths are not for signatures
            }
        }
        else
        {
            tag = (data[0] >> 2) & 0x0F;
            int lengthBytes = (data[0] & 3) switch { 0 => 1, 1 => 2, 2 => 4, _ => 0 };
            if (lengthBytes == 0 || data.Length < 1 + lengthBytes)
            {
                return false;
            }
            bodyLength = 0;
            foreach (byte b in data.Slice(1, lengthBytes))
            {
                bodyLength = (bodyLength << 8) | b;
            }
            headerLength = 1 + lengthBytes;
        }
        return tag == 2 && bodyLength >= 1 && headerLength + bodyLength == data.Length && data[headerLength] is 3 or 4;
    }
}
