using System;
using System.Buffers.Binary;
using System.IO;
using System.Linq;
using Xunit;

namespace Qubes.Updates.Tests;

/// <summary>rpmcanon: real packages come out verifiable and stable; malformed ones are refused and leave nothing behind.</summary>
[Collection(PackageCollection.Name)]
public sealed class RpmCanonicalizerTests(PackageWorld world) : IDisposable
{
    private readonly string _out = Directory.CreateDirectory(Path.Combine(world.Root, "canon-" + Guid.NewGuid().ToString("N"))).FullName;

    public void Dispose() => Directory.Delete(_out, recursive: true);

    private string Verify(string package)
    {
        System.Diagnostics.ProcessStartInfo psi = new("/usr/bin/rpmkeys", ["-K", "--define=_pkgverify_level all", "--define=_pkgverify_flags 0x0", "--dbpath", world.RpmDatabase, "--", package])
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
        };
        psi.Environment.Clear();
        psi.Environment["LC_ALL"] = "C";
        using System.Diagnostics.Process p = System.Diagnostics.Process.Start(psi)!;
        string output = p.StandardOutput.ReadToEnd();
        p.StandardError.ReadToEnd();
        p.WaitForExit();
        return output;
    }

    private RpmCanonResult Canon(byte[] package, bool allowOld = true)
    {
        string source = Path.Combine(_out, "in.rpm");
        File.WriteAllBytes(source, package);
        return new RpmCanonicalizer(allowOld).Canonicalize(source, Path.Combine(_out, "out.rpm"));
    }

    /// <summary>Refused, with a reason, and the destination directory holds nothing but the input.</summary>
    private void AssertRefused(byte[] package, string? reason = null)
    {
        RpmCanonResult result = Canon(package);
        Assert.False(result.Success, "a malformed package was accepted");
        Assert.False(string.IsNullOrEmpty(result.Error));
        if (reason != null)
        {
            Assert.Contains(reason, result.Error, StringComparison.Ordinal);
        }
        Assert.Equal([Path.Combine(_out, "in.rpm")], Directory.GetFileSystemEntries(_out));
    }

    [Fact]
    public void A_signed_package_comes_out_verifiable_and_a_second_pass_changes_no_byte()
    {
        string first = Path.Combine(_out, "first.rpm"), second = Path.Combine(_out, "second.rpm");
        Assert.Equal(RpmCanonResult.Ok, new RpmCanonicalizer(true).Canonicalize(world.Signed, first));
        Assert.Equal($"{first}: digests signatures OK\n", Verify(first));
        Assert.Equal(RpmCanonResult.Ok, new RpmCanonicalizer(false).Canonicalize(first, second));
        Assert.Equal(File.ReadAllBytes(first), File.ReadAllBytes(second));
        // the reserved space rpmsign leaves is dropped; main header and payload are the input's
        byte[] input = File.ReadAllBytes(world.Signed), output = File.ReadAllBytes(first);
        Assert.True(output.Length < input.Length);
        Assert.Equal(input.AsSpan(input.Length - MainAndPayload(input)).ToArray(), output.AsSpan(output.Length - MainAndPayload(output)).ToArray());
    }

    [Fact]
    public void Header_and_payload_signatures_are_kept_only_for_old_packages()
    {
        string old = Path.Combine(_out, "old.rpm"), modern = Path.Combine(_out, "modern.rpm");
        Assert.True(new RpmCanonicalizer(true).Canonicalize(world.SignedV3, old).Success);
        Assert.True(new RpmCanonicalizer(false).Canonicalize(world.SignedV3, modern).Success);
        Assert.True(SignatureTags(File.ReadAllBytes(world.SignedV3)).Contains(RpmSignatureTags.HeaderPayloadPgp));
        Assert.Contains(RpmSignatureTags.HeaderPayloadPgp, SignatureTags(File.ReadAllBytes(old)));
        Assert.DoesNotContain(RpmSignatureTags.HeaderPayloadPgp, SignatureTags(File.ReadAllBytes(modern)));
        Assert.DoesNotContain(RpmSignatureTags.ReservedSpace, SignatureTags(File.ReadAllBytes(modern)));
        Assert.Equal($"{old}: digests signatures OK\n", Verify(old));
        Assert.Equal($"{modern}: digests signatures OK\n", Verify(modern));
    }

    [Fact]
    public void The_command_line_is_upstreams_and_a_failure_leaves_no_file()
    {
        string rpmcanon = world.Program("rpmcanon", "rpmcanon");
        string output = Path.Combine(_out, "cli.rpm");
        Assert.Equal(0, Exec(rpmcanon, "--allow-old-pkgs", "--", world.Signed, output).Status);
        Assert.Equal($"{output}: digests signatures OK\n", Verify(output));
        Assert.Equal(1, Exec(rpmcanon, world.Signed, output).Status); // the "--" is required
        Assert.Equal(1, Exec(rpmcanon, "--bogus", "--", world.Signed, output).Status);
        Assert.Equal(0, Exec(rpmcanon, "--help").Status);
        string broken = Path.Combine(_out, "broken.rpm"), refused = Path.Combine(_out, "refused.rpm");
        File.WriteAllBytes(broken, File.ReadAllBytes(world.Signed).AsSpan(0, 500).ToArray());
        (int status, string errors) = Exec(rpmcanon, "--", broken, refused);
        Assert.Equal(1, status);
        Assert.Contains("Error canonicalizing file", errors, StringComparison.Ordinal);
        Assert.False(File.Exists(refused));
        Assert.Empty(Directory.GetFiles(_out, ".rpmcanon-*"));
        // a link is not followed
        string link = Path.Combine(_out, "link.rpm");
        File.CreateSymbolicLink(link, world.Signed);
        Assert.Equal(1, Exec(rpmcanon, "--", link, refused).Status);
        Assert.False(File.Exists(refused));
        // --directory: each file of one directory into another
        string from = Directory.CreateDirectory(Path.Combine(_out, "from")).FullName, to = Directory.CreateDirectory(Path.Combine(_out, "to")).FullName;
        File.Copy(world.Signed, Path.Combine(from, "a.rpm"));
        File.Copy(world.Second, Path.Combine(from, "b.rpm"));
        Assert.Equal(0, Exec(rpmcanon, "--directory", "--", from, to).Status);
        Assert.Equal(["a.rpm", "b.rpm"], Directory.GetFiles(to).Select(static p => Path.GetFileName(p)!).Order().ToArray());
    }

    [Fact]
    public void Malformed_leads_are_refused()
    {
        byte[] good = File.ReadAllBytes(world.Signed);
        AssertRefused(With(good, 0, 0x00), "lead magic");
        AssertRefused(With(good, 4, 4), "version");
        AssertRefused(With(good, 7, 2), "package type");
        AssertRefused(With(good, 79, 1), "signature type");
        AssertRefused(With(good, 90, 1), "reserved");
        AssertRefused(With(good, 10, (byte)'/'), "name");
        byte[] unterminated = (byte[])good.Clone();
        unterminated.AsSpan(10, 66).Fill((byte)'a');
        AssertRefused(unterminated, "NUL-terminated");
    }

    [Fact]
    public void Headers_with_bad_counts_offsets_types_or_regions_are_refused()
    {
        byte[] good = File.ReadAllBytes(world.Signed);
        const int Sig = RpmLead.Size;
        int main = Sig + SignatureSize(good);
        uint sigEntries = BinaryPrimitives.ReadUInt32BigEndian(good.AsSpan(Sig + 8));
        AssertRefused(WithU32(good, Sig + 8, RpmHeader.SignatureMaxEntries + 1), "index entries");
        AssertRefused(WithU32(good, Sig + 8, 1), "index entries");
        AssertRefused(WithU32(good, Sig + 12, RpmHeader.SignatureMaxData + 1), "larger than");
        AssertRefused(WithU32(good, Sig + 12, uint.MaxValue), "larger than");
        AssertRefused(WithU32(good, main + 8, 0x10000), "index entries");
        AssertRefused(WithU32(good, main + 12, 0x7FFF_FFF0), "larger than");
        AssertRefused(With(good, Sig + 1, 0), "header magic");
        AssertRefused(With(good, main + 3, 2), "header magic");
        // the first entry after the region: its type, offset and count
        int entry = Sig + 16 + 16;
        AssertRefused(WithU32(good, entry + 4, 0), "invalid type");
        AssertRefused(WithU32(good, entry + 4, 10), "invalid type");
        AssertRefused(WithU32(good, entry + 8, BinaryPrimitives.ReadUInt32BigEndian(good.AsSpan(Sig + 12))));
        AssertRefused(WithU32(good, entry + 8, 0xFFFF_FFF0));
        AssertRefused(WithU32(good, entry + 12, 0));
        AssertRefused(WithU32(good, entry + 12, 0x0FFF_FFFF), "count");
        // an entry's tag below 100, or out of order
        AssertRefused(WithU32(good, entry, 64), "reserved tag");
        AssertRefused(WithU32(good, entry + 16, 1), "reserved tag");
        AssertRefused(WithU32(good, entry + (16 * ((int)sigEntries - 3)), 0xFFFF), "out of order");
        // the region entry and its trailer
        AssertRefused(WithU32(good, Sig + 16, 63), "region tag");
        AssertRefused(WithU32(good, main + 16, 62), "region tag");
        AssertRefused(WithU32(good, Sig + 16 + 12, 17), "region");
        int trailer = Sig + 16 + (16 * (int)sigEntries) + (int)BinaryPrimitives.ReadUInt32BigEndian(good.AsSpan(Sig + 12)) - 16;
        AssertRefused(WithU32(good, trailer + 8, unchecked((uint)-16)), "region does not cover");
        AssertRefused(WithU32(good, trailer, 61), "trailer");
    }

    [Fact]
    public void Size_and_digest_claims_must_hold()
    {
        byte[] good = File.ReadAllBytes(world.Signed);
        AssertRefused([.. good, 0], "bytes of header and payload");
        // a byte of the main header (in its data store, past its index) or of the payload
        int main = RpmLead.Size + SignatureSize(good);
        int mainStore = main + 16 + (16 * (int)BinaryPrimitives.ReadUInt32BigEndian(good.AsSpan(main + 8)));
        AssertRefused(Flip(good, mainStore + 40), "SHA-256");
        AssertRefused(Flip(good, good.Length - 10), "payload does not match");
        // the signature packet must be one OpenPGP signature
        Assert.False(RpmSignatureHeader.IsSignaturePacket([0x89, 0x01, 0x04]));
        Assert.False(RpmSignatureHeader.IsSignaturePacket([0xC2, 0x02, 0x04, 0x00, 0x00]));
        Assert.True(RpmSignatureHeader.IsSignaturePacket([0xC2, 0x02, 0x04, 0x00]));
        Assert.True(RpmSignatureHeader.IsSignaturePacket([0x88, 0x02, 0x03, 0x00]));
        Assert.False(RpmSignatureHeader.IsSignaturePacket([0xB4, 0x02, 0x04, 0x00])); // a user id
    }

    [Fact]
    public void A_package_truncated_anywhere_is_refused_with_no_output()
    {
        byte[] good = File.ReadAllBytes(world.Signed);
        for (int length = 0; length < good.Length; length += length < 600 ? 1 : 37)
        {
            AssertRefused(good.AsSpan(0, length).ToArray());
        }
    }

    [Fact]
    public void A_changed_byte_anywhere_in_the_main_header_is_refused_and_no_change_before_it_breaks_the_reader()
    {
        byte[] good = File.ReadAllBytes(world.Signed);
        int main = RpmLead.Size + SignatureSize(good);
        string output = Path.Combine(_out, "out.rpm");
        for (int at = 0; at < main; at++)
        {
            // lead fields and signature bytes may still parse (rpmkeys judges those): no exception, no stray file
            if (Canon(Flip(good, at)).Success)
            {
                File.Delete(output);
            }
            Assert.Empty(Directory.GetFiles(_out, ".rpmcanon-*"));
        }
        for (int at = main; at < main + 400; at++)
        {
            AssertRefused(Flip(good, at));
        }
    }

    private static int SignatureSize(byte[] package)
    {
        Assert.Equal(RpmParseStatus.Complete, RpmHeader.Parse(package.AsSpan(RpmLead.Size), RpmHeaderKind.Signature, out RpmHeader? header).Status);
        return header!.PaddedSize;
    }

    private static int MainAndPayload(byte[] package) => package.Length - RpmLead.Size - SignatureSize(package);

    private static uint[] SignatureTags(byte[] package)
    {
        Assert.Equal(RpmParseStatus.Complete, RpmHeader.Parse(package.AsSpan(RpmLead.Size), RpmHeaderKind.Signature, out RpmHeader? header).Status);
        uint[] tags = new uint[header!.Entries.Count];
        for (int i = 0; i < tags.Length; i++)
        {
            tags[i] = header.Entries[i].Tag;
        }
        return tags;
    }

    private static byte[] With(byte[] package, int at, byte value)
    {
        byte[] copy = (byte[])package.Clone();
        copy[at] = value;
        return copy;
    }

    private static byte[] Flip(byte[] package, int at) => With(package, at, (byte)(package[at] ^ 0x55));

    private static byte[] WithU32(byte[] package, int at, uint value)
    {
        byte[] copy = (byte[])package.Clone();
        BinaryPrimitives.WriteUInt32BigEndian(copy.AsSpan(at), value);
        return copy;
    }

    private static (int Status, string Errors) Exec(string program, params string[] args)
    {
        System.Diagnostics.ProcessStartInfo psi = new(program, args) { RedirectStandardError = true, RedirectStandardOutput = true };
        using System.Diagnostics.Process p = System.Diagnostics.Process.Start(psi)!;
        p.StandardOutput.ReadToEnd();
        string errors = p.StandardError.ReadToEnd();
        p.WaitForExit();
        return (p.ExitCode, errors);
    }
}
