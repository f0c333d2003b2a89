using System;
using System.Buffers.Binary;
using System.Collections.Generic;
using System.Text;
using System.Text.Unicode;

namespace Qubes.Updates;

/// <summary>The data types of header entries.</summary>
public enum RpmTagType : uint
{
    /// <summary>Not valid in a package.</summary>
    Null = 0,

    /// <summary>Bytes read as characters.</summary>
    Char = 1,

    /// <summary>8-bit integers.</summary>
    Int8 = 2,

    /// <summary>16-bit big-endian integers.</summary>
    Int16 = 3,

    /// <summary>32-bit big-endian integers.</summary>
    Int32 = 4,

    /// <summary>64-bit big-endian integers.</summary>
    Int64 = 5,

    /// <summary>One NUL-terminated string.</summary>
    String = 6,

    /// <summary>Raw bytes, count of them.</summary>
    Bin = 7,

    /// <summary>count NUL-terminated strings.</summary>
    StringArray = 8,

    /// <summary>count NUL-terminated strings, one per locale of the header's table.</summary>
    I18nString = 9,
}

/// <summary>Which of a package's two headers is read: they differ in their region tag, their limits and their padding.</summary>
public enum RpmHeaderKind
{
    /// <summary>The signature header: region tag 62, small, padded to 8 bytes, strings printable ASCII.</summary>
    Signature,

    /// <summary>The main header: region tag 63 (immutable), strings UTF-8, not padded.</summary>
    Main,
}

/// <summary>One index entry, checked against the data store it points into.</summary>
public readonly record struct RpmIndexEntry(uint Tag, RpmTagType Type, int Offset, uint Count, int Length);

/// <summary>
/// A header read strictly: every entry inside the data store, of a known type, aligned, in
/// increasing tag order, its data laid out in the same order with no more padding than its
/// alignment asks (zero bytes), every string terminated inside the store; one region covering the
/// whole header, its trailer at the end of the store. What rpm writes is exactly this, so anything
/// else is refused rather than interpreted.
/// <code>
///  0        8         12        16                16+16*il         16+16*il+dl
///  +--------+---------+---------+-----------------+----------------+ (+ zeros to 8: signature)
///  | magic  | il (BE) | dl (BE) | il index entries| data store     |
///  | 8eade801 00000000|         | tag type off cnt| ...  trailer16 |
///  +--------+---------+---------+-----------------+----------------+
/// </code>
/// Entry 0 is the region: tag 62/63, type BIN, count 16, offset dl−16; the trailer there repeats
/// tag, type and count with offset −16·il.
/// </summary>
public sealed class RpmHeader
{
    /// <summary>The size of the header's introduction (magic, il, dl) and of one index entry.</summary>
    public const int IntroSize = 16;

    /// <summary>The size of an index entry and of the region trailer.</summary>
    public const int EntrySize = 16;

    /// <summary>The signature header's region tag (RPMTAG_HEADERSIGNATURES).</summary>
    public const uint SignatureRegionTag = 62;

    /// <summary>The main header's region tag (RPMTAG_HEADERIMMUTABLE).</summary>
    public const uint ImmutableRegionTag = 63;

    /// <summary>Tags below this are reserved for regions and header-internal uses.</summary>
    private const uint FirstDataTag = 100;

    /// <summary>rpm's own limits for a signature header: 32 entries, 64 MiB of data.</summary>
    public const uint SignatureMaxEntries = 32;

    /// <summary>The largest signature-header data store accepted.</summary>
    public const uint SignatureMaxData = 64u << 20;

    /// <summary>The most index entries a main header may have.</summary>
    public const uint MainMaxEntries = 0xFFFF;

    /// <summary>The largest main-header data store accepted (rpm's HEADER_DATA_MAX).</summary>
    public const uint MainMaxData = 256u << 20;

    private static ReadOnlySpan<byte> Magic => [0x8E, 0xAD, 0xE8, 0x01, 0x00, 0x00, 0x00, 0x00];

    private readonly byte[] _bytes;
    private readonly RpmIndexEntry[] _entries;

    private RpmHeader(RpmHeaderKind kind, byte[] bytes, RpmIndexEntry[] entries, int storeOffset, int paddedSize)
    {
        Kind = kind;
        _bytes = bytes;
        _entries = entries;
        StoreOffset = storeOffset;
        PaddedSize = paddedSize;
    }

    /// <summary>Which header this is.</summary>
    public RpmHeaderKind Kind { get; }

    /// <summary>The header's bytes, from its magic to the end of its data store (what the header digests cover).</summary>
    public ReadOnlySpan<byte> Bytes => _bytes;

    /// <summary>The entries after the region, in tag order.</summary>
    public IReadOnlyList<RpmIndexEntry> Entries => _entries;

    /// <summary>How many bytes the header takes in the package, its padding included.</summary>
    public int PaddedSize { get; }

    private int StoreOffset { get; }

    /// <summary>The entry for <paramref name="tag"/>, if there is one.</summary>
    public bool TryFind(uint tag, out RpmIndexEntry entry)
    {
        int lo = 0, hi = _entries.Length - 1;
        while (lo <= hi)
        {
            int mid = (lo + hi) >>> 1;
            uint t = _entries[mid].Tag;
            if (t == tag)
            {
                entry = _entries[mid];
                return true;
            }
            if (t < tag)
            {
                lo = mid + 1;
            }
            else
            {
                hi = mid - 1;
            }
        }
        entry = default;
        return false;
    }

    /// <summary>The data of <paramref name="entry"/> (strings with their NULs).</summary>
    public ReadOnlySpan<byte> Data(RpmIndexEntry entry) => _bytes.AsSpan(StoreOffset + entry.Offset, entry.Length);

    /// <summary>The first string of a string or string-array entry, without its NUL.</summary>
    public string FirstString(RpmIndexEntry entry)
    {
        ReadOnlySpan<byte> data = Data(entry);
        return Encoding.UTF8.GetString(data[..data.IndexOf((byte)0)]);
    }

    /// <summary>The first value of a 32-bit integer entry.</summary>
    public uint FirstInt32(RpmIndexEntry entry) => BinaryPrimitives.ReadUInt32BigEndian(Data(entry));

    /// <summary>The first value of a 64-bit integer entry.</summary>
    public ulong FirstInt64(RpmIndexEntry entry) => BinaryPrimitives.ReadUInt64BigEndian(Data(entry));

    /// <summary>
    /// Reads the header at the start of <paramref name="data"/>: <see cref="RpmParseStatus.NeedMoreData"/>
    /// with the whole size once the introduction is read (and its counts are within the limits),
    /// then the header itself.
    /// </summary>
    public static RpmParseResult Parse(ReadOnlySpan<byte> data, RpmHeaderKind kind, out RpmHeader? header)
    {
        header = null;
        if (data.Length < IntroSize)
        {
            return RpmParseResult.NeedMore(IntroSize);
        }
        if (!data[..8].SequenceEqual(Magic))
        {
            return RpmParseResult.Fail("bad header magic", 0);
        }
        uint il = BinaryPrimitives.ReadUInt32BigEndian(data[8..]);
        uint dl = BinaryPrimitives.ReadUInt32BigEndian(data[12..]);
        bool signature = kind == RpmHeaderKind.Signature;
        uint maxEntries = signature ? SignatureMaxEntries : MainMaxEntries;
        uint maxData = signature ? SignatureMaxData : MainMaxData;
        if (il < 2)
        {
            return RpmParseResult.Fail($"header has {il} index entries, fewer than a region and one entry", 8);
        }
        if (il > maxEntries)
        {
            return RpmParseResult.Fail($"header has {il} index entries, more than {maxEntries}", 8);
        }
        if (dl < EntrySize)
        {
            return RpmParseResult.Fail($"header data store of {dl} bytes cannot hold the region trailer", 12);
        }
        if (dl > maxData)
        {
            return RpmParseResult.Fail($"header data store of {dl} bytes is larger than {maxData}", 12);
        }
        // both within the limits above: no overflow in int
        int storeOffset = IntroSize + (EntrySize * (int)il);
        int size = storeOffset + (int)dl;
        int padded = signature ? (size + 7) & ~7 : size;
        if (data.Length < padded)
        {
            return RpmParseResult.NeedMore(padded);
        }
        ReadOnlySpan<byte> index = data[IntroSize..storeOffset];
        ReadOnlySpan<byte> store = data[storeOffset..size];
        uint regionTag = signature ? SignatureRegionTag : ImmutableRegionTag;
        int regionOffset = (int)dl - EntrySize;

        RpmParseResult region = CheckRegion(index[..EntrySize], store[regionOffset..], regionTag, il, regionOffset, storeOffset);
        if (!region.IsComplete)
        {
            return region;
        }
        RpmIndexEntry[] entries = new RpmIndexEntry[il - 1];
        int cursor = 0;
        uint lastTag = FirstDataTag - 1;
        for (int i = 1; i < il; i++)
        {
            int at = IntroSize + (EntrySize * i);
            ReadOnlySpan<byte> e = index.Slice(EntrySize * i, EntrySize);
            uint tag = BinaryPrimitives.ReadUInt32BigEndian(e);
            uint rawType = BinaryPrimitives.ReadUInt32BigEndian(e[4..]);
            uint offset = BinaryPrimitives.ReadUInt32BigEndian(e[8..]);
            uint count = BinaryPrimitives.ReadUInt32BigEndian(e[12..]);
            if (tag <= lastTag)
            {
                return RpmParseResult.Fail(tag < FirstDataTag ? $"reserved tag {tag} in the index" : $"tag {tag} out of order", at);
            }
            lastTag = tag;
            if (rawType is < (uint)RpmTagType.Char or > (uint)RpmTagType.I18nString)
            {
                return RpmParseResult.Fail($"tag {tag} has the invalid type {rawType}", at + 4);
            }
            RpmTagType type = (RpmTagType)rawType;
            if (count == 0 || count >= dl)
            {
                return RpmParseResult.Fail($"tag {tag} has the invalid count {count}", at + 12);
            }
            if (offset >= (uint)regionOffset)
            {
                return RpmParseResult.Fail($"tag {tag} has its data outside the store (offset {offset})", at + 8);
            }
            int alignment = Alignment(type);
            if ((offset & (alignment - 1)) != 0)
            {
                return RpmParseResult.Fail($"tag {tag} is not aligned (offset {offset})", at + 8);
            }
            if (offset < (uint)cursor)
            {
                return RpmParseResult.Fail($"tag {tag} overlaps the data before it", at + 8);
            }
            int padding = (int)offset - cursor;
            if (padding >= alignment)
            {
                return RpmParseResult.Fail($"tag {tag} has {padding} bytes of padding before its data", at + 8);
            }
            if (store.Slice(cursor, padding).ContainsAnyExcept((byte)0))
            {
                return RpmParseResult.Fail($"padding before tag {tag} is not zero", storeOffset + cursor);
            }
            ReadOnlySpan<byte> available = store[(int)offset..regionOffset];
            int length;
            if (FixedSize(type) is int elementSize)
            {
                // count < dl ≤ 256 MiB and elementSize ≤ 8: no overflow in long
                long needed = (long)count * elementSize;
                if (needed > available.Length)
                {
                    return RpmParseResult.Fail($"tag {tag} runs past the data store", at + 12);
                }
                length = (int)needed;
            }
            else
            {
                if (type == RpmTagType.String && count != 1)
                {
                    return RpmParseResult.Fail($"string tag {tag} has the count {count}", at + 12);
                }
                length = StringsLength(available, count);
                if (length < 0)
                {
                    return RpmParseResult.Fail($"strings of tag {tag} run past the data store", at + 12);
                }
                if (!ValidStrings(available[..length], signature))
                {
                    return RpmParseResult.Fail(signature ? $"tag {tag} has a string that is not printable ASCII" : $"tag {tag} has a string that is not UTF-8", storeOffset + (int)offset);
                }
            }
            entries[i - 1] = new RpmIndexEntry(tag, type, (int)offset, count, length);
            cursor = (int)offset + length;
        }
        if (cursor != regionOffset)
        {
            return RpmParseResult.Fail($"{regionOffset - cursor} bytes in the data store belong to no entry", storeOffset + cursor);
        }
        if (data[size..padded].ContainsAnyExcept((byte)0))
        {
            return RpmParseResult.Fail("padding after the signature header is not zero", size);
        }
        header = new RpmHeader(kind, data[..size].ToArray(), entries, storeOffset, padded);
        return RpmParseResult.Done(padded);
    }

    private static RpmParseResult CheckRegion(ReadOnlySpan<byte> entry, ReadOnlySpan<byte> trailer, uint regionTag, uint il, int regionOffset, int storeOffset)
    {
        uint tag = BinaryPrimitives.ReadUInt32BigEndian(entry);
        if (tag != regionTag)
        {
            return RpmParseResult.Fail($"first index entry has tag {tag}, not the region tag {regionTag}", IntroSize);
        }
        if (BinaryPrimitives.ReadUInt32BigEndian(entry[4..]) != (uint)RpmTagType.Bin
            || BinaryPrimitives.ReadUInt32BigEndian(entry[8..]) != (uint)regionOffset
            || BinaryPrimitives.ReadUInt32BigEndian(entry[12..]) != EntrySize)
        {
            return RpmParseResult.Fail("region entry is not a 16-byte trailer at the end of the data store", IntroSize);
        }
        int at = storeOffset + regionOffset;
        if (BinaryPrimitives.ReadUInt32BigEndian(trailer) != regionTag)
        {
            return RpmParseResult.Fail("region trailer has the wrong tag", at);
        }
        if (BinaryPrimitives.ReadUInt32BigEndian(trailer[4..]) != (uint)RpmTagType.Bin || BinaryPrimitives.ReadUInt32BigEndian(trailer[12..]) != EntrySize)
        {
            return RpmParseResult.Fail("region trailer has the wrong type or count", at);
        }
        // the region covers the whole index: its trailer points back over every entry
        if (BinaryPrimitives.ReadInt32BigEndian(trailer[8..]) != -(EntrySize * (int)il))
        {
            return RpmParseResult.Fail("region does not cover the whole header", at + 8);
        }
        return RpmParseResult.Done(0);
    }

    /// <summary>The alignment rpm gives the data of <paramref name="type"/>.</summary>
    public static int Alignment(RpmTagType type) => type switch
    {
        RpmTagType.Int16 => 2,
        RpmTagType.Int32 => 4,
        RpmTagType.Int64 => 8,
        _ => 1,
    };

    private static int? FixedSize(RpmTagType type) => type switch
    {
        RpmTagType.Char or RpmTagType.Int8 or RpmTagType.Bin => 1,
        RpmTagType.Int16 => 2,
        RpmTagType.Int32 => 4,
        RpmTagType.Int64 => 8,
        _ => null,
    };

    /// <summary>The length of <paramref name="count"/> NUL-terminated strings at the start of <paramref name="data"/>, or −1.</summary>
    private static int StringsLength(ReadOnlySpan<byte> data, uint count)
    {
        int length = 0;
        for (uint n = 0; n < count; n++)
        {
            int nul = data[length..].IndexOf((byte)0);
            if (nul < 0)
            {
                return -1;
            }
            length += nul + 1;
        }
        return length;
    }

    private static bool ValidStrings(ReadOnlySpan<byte> strings, bool printableAscii)
    {
        if (!printableAscii)
        {
            return Utf8.IsValid(strings);
        }
        foreach (byte b in strings)
        {
            if (b != 0 && b is < 0x20 or > 0x7E)
            {
                return false;
            }
        }
        return true;
    }
}
