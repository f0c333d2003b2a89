using System;
using System.IO;
using System.Security.Cryptography;
using Microsoft.Win32.SafeHandles;
using Qubes.Interop.Linux;

namespace Qubes.Updates;

/// <summary>What canonicalising one package came to: success, or the reason it was refused.</summary>
public readonly record struct RpmCanonResult(bool Success, string? Error)
{
    /// <summary>The package was written.</summary>
    public static RpmCanonResult Ok => new(true, null);

    /// <summary>The package was refused (or could not be read or written) for <paramref name="error"/>.</summary>
    public static RpmCanonResult Failed(string error) => new(false, error);
}

/// <summary>
/// Rewrites a package received from a qube into the form dom0 verifies and installs: the package
/// is read strictly (<see cref="RpmLead"/>, <see cref="RpmHeader"/>), its signature header is
/// rebuilt from only the tags rpm verifies with (<see cref="RpmSignatureHeader"/>), and a fresh
/// lead, that header, and the main header and payload copied byte for byte make the output. The
/// main header's digests in the signature header and the payload digest in the main header are
/// checked on the way, and the sizes the signature header claims must be the file's. Whether the
/// package is signed by a trusted key is not decided here: rpmkeys checks the output.
/// <para>
/// The output is written to a temporary file in the destination's directory, fsynced and renamed
/// over the destination, so the destination is either absent or a whole canonical package.
/// </para>
/// </summary>
public sealed class RpmCanonicalizer(bool allowOldPackages)
{
    /// <summary>The main header's hex digest of the compressed payload (RPMTAG_PAYLOADDIGEST).</summary>
    public const uint PayloadDigestTag = 5092;

    /// <summary>The OpenPGP number of that digest's algorithm (RPMTAG_PAYLOADDIGESTALGO).</summary>
    public const uint PayloadDigestAlgorithmTag = 5093;

    private const int CopyChunk = 1 << 20;
    private const uint OutputMode = 0x1A4; // 0644: createrepo_c and the package manager read it

    /// <summary>Whether packages without a payload digest in the main header (built before rpm 4.14) are taken, with their header-and-payload signatures kept.</summary>
    public bool AllowOldPackages { get; } = allowOldPackages;

    /// <summary>Canonicalises the package <paramref name="source"/> into <paramref name="destination"/>. Never throws for what the package contains.</summary>
    public RpmCanonResult Canonicalize(string source, string destination)
    {
        ArgumentNullException.ThrowIfNull(source);
        ArgumentNullException.ThrowIfNull(destination);
        int fd = Libc.open(source, Libc.O_RDONLY | Libc.O_NOFOLLOW | Libc.O_NONBLOCK | Libc.O_CLOEXEC, 0);
        if (fd < 0)
        {
            return RpmCanonResult.Failed($"{source}: {Describe(LastError.Get())}");
        }
        using SafeFileHandle input = new(fd, ownsHandle: true);
        if (!FileStatus.TryFstat(fd, out uint mode, out long length, out Errno error))
        {
            return RpmCanonResult.Failed($"{source}: {Describe(error)}");
        }
        if (!FileStatus.IsRegular(mode))
        {
            return RpmCanonResult.Failed($"{source}: not a regular file");
        }
        try
        {
            return Canonicalize(input, length, destination);
        }
        catch (IOException e)
        {
            return RpmCanonResult.Failed(e.Message);
        }
        catch (UnauthorizedAccessException e)
        {
            return RpmCanonResult.Failed(e.Message);
        }
    }

    private RpmCanonResult Canonicalize(SafeFileHandle input, long length, string destination)
    {
        byte[] leadBytes = new byte[RpmLead.Size];
        if (!ReadAt(input, leadBytes, 0))
        {
            return RpmCanonResult.Failed("truncated package: the lead is incomplete");
        }
        RpmParseResult parsed = RpmLead.Parse(leadBytes, out RpmLead? lead);
        if (!parsed.IsComplete)
        {
            return Refused("lead", parsed, 0);
        }
        long offset = RpmLead.Size;
        parsed = ReadHeader(input, offset, length, RpmHeaderKind.Signature, out RpmHeader? signatureHeader);
        if (!parsed.IsComplete)
        {
            return Refused("signature header", parsed, offset);
        }
        offset += signatureHeader!.PaddedSize;
        parsed = RpmSignatureHeader.Check(signatureHeader, AllowOldPackages, out RpmSignatureHeader? signature);
        if (!parsed.IsComplete)
        {
            return Refused("signature header", parsed, RpmLead.Size);
        }
        long mainOffset = offset;
        parsed = ReadHeader(input, offset, length, RpmHeaderKind.Main, out RpmHeader? main);
        if (!parsed.IsComplete)
        {
            return Refused("main header", parsed, offset);
        }
        offset += main!.PaddedSize;
        if (signature!.HeaderAndPayloadSize is not ulong claimed)
        {
            return RpmCanonResult.Failed("the signature header gives no size of the header and payload");
        }
        if (claimed != (ulong)(length - mainOffset))
        {
            return RpmCanonResult.Failed($"the signature header gives {claimed} bytes of header and payload, the file has {length - mainOffset}");
        }
        if (signature.HeaderSha256 is string sha256 && !Convert.ToHexStringLower(SHA256.HashData(main.Bytes)).Equals(sha256, StringComparison.Ordinal))
        {
            return RpmCanonResult.Failed("the main header does not match its SHA-256 digest");
        }
        if (signature.HeaderSha1 is string sha1 && !Convert.ToHexStringLower(SHA1.HashData(main.Bytes)).Equals(sha1, StringComparison.Ordinal))
        {
            return RpmCanonResult.Failed("the main header does not match its SHA-1 digest");
        }
        RpmCanonResult digest = PayloadDigest(main, out IncrementalHash? payloadHash, out string? expected);
        if (!digest.Success)
        {
            return digest;
        }
        using (payloadHash)
        {
            return Write(input, offset, length, lead!, signature, main, payloadHash, expected, destination);
        }
    }

    /// <summary>The payload digest the main header claims and a hash to check it with; none for an old package, when allowed.</summary>
    private RpmCanonResult PayloadDigest(RpmHeader main, out IncrementalHash? hash, out string? expected)
    {
        hash = null;
        expected = null;
        bool hasDigest = main.TryFind(PayloadDigestTag, out RpmIndexEntry digest);
        bool hasAlgorithm = main.TryFind(PayloadDigestAlgorithmTag, out RpmIndexEntry algorithm);
        if (!hasDigest && !hasAlgorithm)
        {
            return AllowOldPackages ? RpmCanonResult.Ok : RpmCanonResult.Failed("the main header has no payload digest (a package older than rpm 4.14)");
        }
        if (!hasDigest || !hasAlgorithm || digest.Type != RpmTagType.StringArray || algorithm.Type != RpmTagType.Int32)
        {
            return RpmCanonResult.Failed("the main header's payload digest is malformed");
        }
        HashAlgorithmName? name = main.FirstInt32(algorithm) switch
        {
            2 => HashAlgorithmName.SHA1,
            8 => HashAlgorithmName.SHA256,
            9 => HashAlgorithmName.SHA384,
            10 => HashAlgorithmName.SHA512,
            _ => null,
        };
        if (name is not HashAlgorithmName algorithmName)
        {
            return RpmCanonResult.Failed($"unsupported payload digest algorithm {main.FirstInt32(algorithm)}");
        }
        expected = main.FirstString(digest);
        hash = IncrementalHash.CreateHash(algorithmName);
        return RpmCanonResult.Ok;
    }

    private static RpmCanonResult Write(SafeFileHandle input, long payloadOffset, long length, RpmLead lead, RpmSignatureHeader signature,
        RpmHeader main, IncrementalHash? payloadHash, string? expectedPayloadDigest, string destination)
    {
        string directory = Path.GetDirectoryName(Path.GetFullPath(destination))!;
        string temporary = Path.Combine(directory, $".rpmcanon-{Environment.ProcessId}-{Guid.NewGuid():N}.tmp");
        bool created = false, renamed = false;
        try
        {
            int fd = Libc.open(temporary, Libc.O_WRONLY | Libc.O_CREAT | Libc.O_EXCL | Libc.O_NOFOLLOW | Libc.O_CLOEXEC, (int)OutputMode);
            if (fd < 0)
            {
                return RpmCanonResult.Failed($"{temporary}: {Describe(LastError.Get())}");
            }
            created = true;
            using (FileStream output = new(new SafeFileHandle(fd, ownsHandle: true), FileAccess.Write, bufferSize: 0))
            {
                byte[] head = new byte[RpmLead.Size + signature.CanonicalSize];
                lead.Write(head);
                signature.Write(head.AsSpan(RpmLead.Size));
                output.Write(head);
                output.Write(main.Bytes);
                byte[] chunk = new byte[CopyChunk];
                for (long at = payloadOffset; at < length;)
                {
                    int n = RandomAccess.Read(input, chunk.AsSpan(0, (int)Math.Min(CopyChunk, length - at)), at);
                    if (n <= 0)
                    {
                        return RpmCanonResult.Failed("the package shrank while it was read");
                    }
                    payloadHash?.AppendData(chunk, 0, n);
                    output.Write(chunk, 0, n);
                    at += n;
                }
                if (payloadHash != null && !Convert.ToHexStringLower(payloadHash.GetCurrentHash()).Equals(expectedPayloadDigest, StringComparison.Ordinal))
                {
                    return RpmCanonResult.Failed("the payload does not match its digest");
                }
                output.Flush(flushToDisk: true);
            }
            File.Move(temporary, destination, overwrite: true);
            renamed = true;
            Errno synced = Fd.SyncDirectory(directory);
            return synced == Errno.None ? RpmCanonResult.Ok : RpmCanonResult.Failed($"{directory}: fsync: {Describe(synced)}");
        }
        finally
        {
            if (created && !renamed)
            {
                File.Delete(temporary);
            }
        }
    }

    /// <summary>Reads a header at <paramref name="offset"/>: its introduction, then as much as it says it needs.</summary>
    private static RpmParseResult ReadHeader(SafeFileHandle input, long offset, long length, RpmHeaderKind kind, out RpmHeader? header)
    {
        byte[] buffer = new byte[RpmHeader.IntroSize];
        while (true)
        {
            // the size comes from the package: nothing is allocated for more than the file holds
            if (offset + buffer.Length > length || !ReadAt(input, buffer, offset))
            {
                header = null;
                return RpmParseResult.Fail($"truncated package: {buffer.Length} bytes of header needed", 0);
            }
            RpmParseResult result = RpmHeader.Parse(buffer, kind, out header);
            if (result.Status != RpmParseStatus.NeedMoreData)
            {
                return result;
            }
            if (offset + result.Length > length)
            {
                header = null;
                return RpmParseResult.Fail($"truncated package: {result.Length} bytes of header needed, {length - offset} left", 0);
            }
            buffer = new byte[result.Length];
        }
    }

    /// <summary>Fills <paramref name="buffer"/> from <paramref name="offset"/>; false at the end of the file.</summary>
    private static bool ReadAt(SafeFileHandle input, byte[] buffer, long offset)
    {
        int filled = 0;
        while (filled < buffer.Length)
        {
            int n = RandomAccess.Read(input, buffer.AsSpan(filled), offset + filled);
            if (n <= 0)
            {
                return false;
            }
            filled += n;
        }
        return true;
    }

    private static RpmCanonResult Refused(string part, RpmParseResult result, long baseOffset)
        => RpmCanonResult.Failed($"invalid {part}: {result.Reason} (at byte {baseOffset + result.Offset})");

    private static string Describe(Errno error) => System.Runtime.InteropServices.Marshal.GetPInvokeErrorMessage((int)error);
}
