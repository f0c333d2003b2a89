using System;
using System.Buffers.Binary;
using Qubes.Updates;

namespace Qubes.Fuzz;

/// <summary>
/// rpmcanon's reading of a package from the update qube: the lead, the signature header and its
/// check, the main header. A parser never throws, never claims more bytes than it was given once
/// complete, and reads nothing past the input (which ends at a guard page).
/// </summary>
internal sealed class RpmPackageTarget : ITarget
{
    private readonly GuardedMemory _memory = new(256 * 1024);

    public string Name => "rpm-package";

    public byte[][] Seeds => [Package(), RealPackage()];

    private static byte[] RealPackage()
    {
        using System.IO.Stream stream = typeof(RpmPackageTarget).Assembly.GetManifestResourceStream("seed.rpm")!;
        using System.IO.MemoryStream copy = new();
        stream.CopyTo(copy);
        return copy.ToArray();
    }

    /// <summary>A lead and two small headers: enough structure for mutations to reach every check.</summary>
    private static byte[] Package()
    {
        byte[] p = new byte[RpmLead.Size + 16 + 32 + 16 + 16 + 32 + 16];
        BinaryPrimitives.WriteUInt32BigEndian(p, 0xEDABEEDB);
        p[4] = 3;
        BinaryPrimitives.WriteUInt16BigEndian(p.AsSpan(78), 5);
        "hello-1.0-1"u8.CopyTo(p.AsSpan(10));
        int at = RpmLead.Size;
        foreach (uint region in (ReadOnlySpan<uint>)[62, 63])
        {
            p[at] = 0x8e; p[at + 1] = 0xad; p[at + 2] = 0xe8; p[at + 3] = 0x01;
            BinaryPrimitives.WriteUInt32BigEndian(p.AsSpan(at + 8), 2);
            BinaryPrimitives.WriteUInt32BigEndian(p.AsSpan(at + 12), 16);
            BinaryPrimitives.WriteUInt32BigEndian(p.AsSpan(at + 16), region);
            BinaryPrimitives.WriteUInt32BigEndian(p.AsSpan(at + 20), 7);
            BinaryPrimitives.WriteUInt32BigEndian(p.AsSpan(at + 28), 16);
            BinaryPrimitives.WriteUInt32BigEndian(p.AsSpan(at + 32), 1000);
            BinaryPrimitives.WriteUInt32BigEndian(p.AsSpan(at + 36), 4);
            BinaryPrimitives.WriteUInt32BigEndian(p.AsSpan(at + 44), 1);
            at += 16 + 32 + 16;
        }
        return p;
    }

    public void Run(ReadOnlySpan<byte> input)
    {
        ReadOnlySpan<byte> data = _memory.Place(input);
        RpmParseResult lead = RpmLead.Parse(data, out _);
        Check(lead, data.Length);
        if (!lead.IsComplete)
        {
            return;
        }
        ReadOnlySpan<byte> rest = data[RpmLead.Size..];
        RpmParseResult signature = RpmHeader.Parse(rest, RpmHeaderKind.Signature, out RpmHeader? header);
        Check(signature, rest.Length);
        if (!signature.IsComplete || header == null)
        {
            return;
        }
        RpmParseResult check = RpmSignatureHeader.Check(header, keepHeaderPayloadSignatures: true, out _);
        if (check.Status == RpmParseStatus.Invalid && string.IsNullOrEmpty(check.Reason))
        {
            throw new FuzzFailure("a refused signature header without a reason");
        }
        int padded = (int)((signature.Length + 7) & ~7L);
        if (padded > rest.Length)
        {
            return;
        }
        ReadOnlySpan<byte> main = rest[padded..];
        Check(RpmHeader.Parse(main, RpmHeaderKind.Main, out _), main.Length);
    }

    private static void Check(RpmParseResult result, long available)
    {
        if (result.IsComplete && (result.Length <= 0 || result.Length > available))
        {
            throw new FuzzFailure($"a complete parse claims {result.Length} of {available} bytes");
        }
        if (result.Status == RpmParseStatus.Invalid && string.IsNullOrEmpty(result.Reason))
        {
            throw new FuzzFailure("a refusal without a reason");
        }
    }
}
