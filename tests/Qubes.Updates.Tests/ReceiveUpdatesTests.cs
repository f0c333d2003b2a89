using System;
using System.Collections.Generic;
using System.IO;
using System.Linq;
using System.Text;
using System.Threading.Tasks;
using Qubes.FileCopy;
using Qubes.Interop.Linux;
using Xunit;

namespace Qubes.Updates.Tests;

/// <summary>
/// The procedure of qubes.ReceiveUpdates with the real unpacker, rpmcanon, rpmkeys and
/// createrepo_c, fed by the file-copy sender (<see cref="Packer"/>) or by hand-made hostile
/// streams. Every refusal is checked for its message in the error log and for the package
/// directory being gone.
/// </summary>
[Collection(PackageCollection.Name)]
public sealed class ReceiveUpdatesTests : IDisposable
{
    private const string UpdateQube = "sys-update";

    private readonly PackageWorld _world;
    private readonly string _base;
    private readonly UpdatePaths _paths;
    private readonly string _bin;

    public ReceiveUpdatesTests(PackageWorld world)
    {
        _world = world;
        _base = Directory.CreateDirectory(Path.Combine(world.Root, "receive-" + Guid.NewGuid().ToString("N"))).FullName;
        _paths = new UpdatePaths(Directory.CreateDirectory(Path.Combine(_base, "updates")).FullName, Directory.CreateDirectory(Path.Combine(_base, "tmp")).FullName, null);
        // dom0's unpacker is the receiver under its dom0 name
        _bin = Directory.CreateDirectory(Path.Combine(_base, "bin")).FullName;
        File.CreateSymbolicLink(Path.Combine(_bin, "qfile-dom0-unpacker"), world.Program("qfile-unpacker", "qfile-unpacker"));
        Directory.CreateDirectory(Path.Combine(_base, "send"));
    }

    public void Dispose() => Directory.Delete(_base, recursive: true);

    private UpdateTools Tools(string? rpmKeys = null, string? canonicalizer = null)
        => new(Path.Combine(_bin, "qfile-dom0-unpacker"), canonicalizer ?? _world.Program("rpmcanon", "rpmcanon"), rpmKeys ?? "/usr/bin/rpmkeys", "/usr/bin/createrepo_c", _world.RpmDatabase);

    /// <summary>A file to send, named <paramref name="name"/>, with <paramref name="source"/>'s content (or text).</summary>
    private string Stage(string name, string? source = null, string text = "not a package")
    {
        string path = Path.Combine(_base, "send", name);
        if (source != null)
        {
            File.Copy(source, path);
        }
        else
        {
            File.WriteAllText(path, text);
        }
        return path;
    }

    /// <summary>Sends <paramref name="paths"/> with the sender to the procedure; its status and stderr.</summary>
    private (int Status, string Errors) Send(ReceiveUpdates receive, string? sender, params string[] paths)
        => Feed(receive, sender, (stream, replies) =>
        {
            try
            {
                Packer packer = new(stream, replies);
                foreach (string path in paths)
                {
                    packer.Send(path);
                }
                packer.Finish();
            }
            catch (FileCopyException)
            {
                // a refusing receiver ends the transfer: the procedure's outcome is what is checked
            }
        });

    /// <summary>Writes raw <paramref name="stream"/> bytes to the procedure.</summary>
    private (int Status, string Errors) SendRaw(ReceiveUpdates receive, byte[] stream)
        => Feed(receive, UpdateQube, (output, replies) =>
        {
            Fd.WriteAll(output, stream);
            Fd.ReadToEnd(replies);
        });

    private (int Status, string Errors) Feed(ReceiveUpdates receive, string? sender, Action<int, int> send)
    {
        (SafeFd streamRead, SafeFd streamWrite) = Fd.Pipe();
        (SafeFd replyRead, SafeFd replyWrite) = Fd.Pipe();
        StringWriter errors = new();
        Task<int> service = Task.Run(() =>
        {
            using (streamRead)
            using (replyWrite)
            {
                return receive.Run(sender, UpdateQube, streamRead.Fd, replyWrite.Fd, errors);
            }
        });
        using (streamWrite)
        using (replyRead)
        {
            send(streamWrite.Fd, replyRead.Fd);
        }
        return (service.Result, errors.ToString());
    }

    private ReceiveUpdates Receiver(UpdateTools? tools = null) => new(_paths, tools ?? Tools()) { GroupFile = Path.Combine(_base, "no-group-file") };

    private string[] StagingLeft => Directory.GetFileSystemEntries(_paths.StagingParent);

    /// <summary>Refused: status 1, <paramref name="message"/> in the error log (and on stderr), no package directory, no staging left.</summary>
    private void AssertRefused((int Status, string Errors) result, string message)
    {
        Assert.Equal(1, result.Status);
        Assert.True(File.Exists(_paths.ErrorLog), $"no error log; stderr: {result.Errors}");
        string log = File.ReadAllText(_paths.ErrorLog);
        Assert.Contains(message, log, StringComparison.Ordinal);
        Assert.EndsWith("\n", log, StringComparison.Ordinal);
        Assert.Contains(message, result.Errors, StringComparison.Ordinal);
        Assert.False(Directory.Exists(_paths.Rpm));
        Assert.False(Directory.Exists(_paths.Repodata));
        Assert.Empty(StagingLeft);
    }

    [Fact]
    public void A_signed_package_is_canonicalised_verified_and_indexed()
    {
        // rpmkeys seen through a wrapper: what it runs in, and whether the staged file was gone by then
        string seen = Path.Combine(_base, "seen");
        string wrapper = Script("rpmkeys", $$"""
            #!/bin/sh
            { env; pwd; ls -A {{_paths.StagingParent}}/qubes-updates-tmp*.UNTRUSTED; } > {{seen}} 2>&1 < /dev/null
            read -r line || echo "stdin: end" >> {{seen}}
            exec /usr/bin/rpmkeys "$@"
            """);
        // an earlier transfer's leftovers go
        Directory.CreateDirectory(_paths.Repodata);
        File.WriteAllText(_paths.ErrorLog, "old\n");
        Directory.CreateDirectory(_paths.Rpm);
        File.WriteAllText(Path.Combine(_paths.Rpm, "stale.rpm"), "stale");
        (int status, string errors) = Send(Receiver(Tools(rpmKeys: wrapper)), UpdateQube, Stage("tiny-1.0-1.noarch.rpm", _world.Signed));
        Assert.True(status == 0, errors);
        string package = Path.Combine(_paths.Rpm, "tiny-1.0-1.noarch.rpm");
        Assert.Equal(["tiny-1.0-1.noarch.rpm"], Directory.GetFileSystemEntries(_paths.Rpm).Select(static p => Path.GetFileName(p)!).ToArray());
        Assert.True(new RpmCanonicalizer(true).Canonicalize(_world.Signed, Path.Combine(_base, "expected.rpm")).Success);
        Assert.Equal(File.ReadAllBytes(Path.Combine(_base, "expected.rpm")), File.ReadAllBytes(package));
        Assert.True(File.Exists(Path.Combine(_paths.Repodata, "repomd.xml")));
        using (FileStream primary = File.OpenRead(Directory.GetFiles(_paths.Repodata, "*-primary.xml.gz").Single()))
        using (StreamReader text = new(new System.IO.Compression.GZipStream(primary, System.IO.Compression.CompressionMode.Decompress)))
        {
            Assert.Contains("<location href=\"rpm/tiny-1.0-1.noarch.rpm\"/>", text.ReadToEnd(), StringComparison.Ordinal);
        }
        Assert.False(File.Exists(_paths.ErrorLog));
        Assert.Empty(StagingLeft);
        UnixFileMode rwxrwxr_x = (UnixFileMode)0x1FD;
        Assert.Equal(rwxrwxr_x, File.GetUnixFileMode(_paths.Rpm));
        Assert.Equal(rwxrwxr_x, File.GetUnixFileMode(_paths.Repodata));
        string[] wrapperSaw = File.ReadAllLines(seen);
        Assert.Equal(["LC_ALL=C", "/", "stdin: end"], wrapperSaw.Where(static l => !l.StartsWith("PWD=", StringComparison.Ordinal) && !l.StartsWith("SHLVL=", StringComparison.Ordinal) && !l.StartsWith("_=", StringComparison.Ordinal) && !l.StartsWith("OLDPWD=", StringComparison.Ordinal)).ToArray());
    }

    [Fact]
    public void Several_packages_are_all_taken_and_the_qubes_group_is_given_when_it_exists()
    {
        // root can give any group, others only their own
        bool root = Libc.geteuid() == 0;
        uint gid = root ? 4242u : uint.Parse(_world.Run("/usr/bin/id", "-g").Trim(), System.Globalization.CultureInfo.InvariantCulture);
        string groups = Path.Combine(_base, "group");
        File.WriteAllText(groups, $"wheel:x:10:\nqubes:x:{gid}:user\n");
        ReceiveUpdates receive = new(_paths, Tools()) { GroupFile = groups };
        (int status, string errors) = Send(receive, UpdateQube, Stage("tiny-1.0-1.noarch.rpm", _world.Signed), Stage("other-2.5-1.noarch.rpm", _world.Second));
        Assert.True(status == 0, errors);
        Assert.Equal(2, Directory.GetFiles(_paths.Rpm).Length);
        Assert.Equal(gid, GroupOf(_paths.Rpm));
        Assert.Equal(gid, GroupOf(_paths.Repodata));
    }

    [Fact]
    public void A_qube_other_than_the_updatevm_changes_nothing()
    {
        Directory.CreateDirectory(_paths.Rpm);
        File.WriteAllText(Path.Combine(_paths.Rpm, "kept.rpm"), "kept");
        File.WriteAllText(_paths.ErrorLog, "earlier\n");
        (int status, string errors) = Send(Receiver(), "sys-net", Stage("tiny-1.0-1.noarch.rpm", _world.Signed));
        Assert.Equal(1, status);
        Assert.Equal("Domain sys-net not allowed to send dom0 updates\n", errors);
        Assert.Equal("kept", File.ReadAllText(Path.Combine(_paths.Rpm, "kept.rpm")));
        Assert.Single(Directory.GetFileSystemEntries(_paths.Rpm));
        Assert.Equal("earlier\n", File.ReadAllText(_paths.ErrorLog));
        Assert.Empty(StagingLeft);
        (status, errors) = Send(Receiver(), null);
        Assert.Equal((1, "Domain None not allowed to send dom0 updates\n"), (status, errors));
        Assert.True(File.Exists(Path.Combine(_paths.Rpm, "kept.rpm")));
    }

    [Theory]
    [InlineData(".hidden.rpm")]
    [InlineData("tiny.rpm.txt")]
    [InlineData("tiny")]
    [InlineData("_tiny.rpm")]
    [InlineData("tiny pkg.rpm")]
    [InlineData("t\u00e9ny.rpm")]
    public void A_name_the_pattern_refuses_refuses_the_transfer(string name)
    {
        AssertRefused(Send(Receiver(), UpdateQube, Stage("tiny-1.0-1.noarch.rpm", _world.Signed), Stage(name, _world.Signed)), $"Domain {UpdateQube} sent unexpected file");
    }

    [Fact]
    public void Names_the_unpacker_cannot_or_will_not_make_refuse_the_transfer()
    {
        // ESC is not a safe character for dom0's unpacker; 261 characters are more than a file name can hold
        foreach (string name in new[] { "tiny\u001b[31m.rpm", new string('a', 257) + ".rpm" })
        {
            byte[] nameBytes = [.. Encoding.UTF8.GetBytes(name), 0];
            AssertRefused(SendRaw(Receiver(), Entry(nameBytes, 0x81A4, "x"u8.ToArray())), "qfile-dom0-unpacker");
            File.Delete(_paths.ErrorLog);
        }
    }

    [Fact]
    public void The_name_pattern_is_upstreams()
    {
        Assert.True(ReceiveUpdates.IsPackageName("a.rpm"));
        Assert.True(ReceiveUpdates.IsPackageName("A0._+^~-.rpm"));
        Assert.True(ReceiveUpdates.IsPackageName("x.rpm.rpm"));
        Assert.True(ReceiveUpdates.IsPackageName("a" + new string('b', 255) + ".rpm"));
        Assert.False(ReceiveUpdates.IsPackageName("a" + new string('b', 256) + ".rpm"));
        Assert.Equal(260, ("a" + new string('b', 255) + ".rpm").Length);
        Assert.False(ReceiveUpdates.IsPackageName(".rpm"));
        Assert.False(ReceiveUpdates.IsPackageName("a.rpm\n")); // Python's \Z: no newline before the end
        Assert.False(ReceiveUpdates.IsPackageName("a.RPM"));
        Assert.False(ReceiveUpdates.IsPackageName("-a.rpm"));
        Assert.False(ReceiveUpdates.IsPackageName("a\u001b.rpm"));
        Assert.False(ReceiveUpdates.IsPackageName("a/b.rpm"));
        Assert.False(ReceiveUpdates.IsPackageName("a\0.rpm"));
        Assert.False(ReceiveUpdates.IsPackageName("\u0661.rpm")); // a digit, but not an ASCII one
        Assert.False(ReceiveUpdates.IsPackageName("a\u00e9.rpm"));
    }

    [Fact]
    public void A_directory_a_link_or_a_fifo_in_the_stream_is_refused_by_the_unpacker()
    {
        string directory = Directory.CreateDirectory(Path.Combine(_base, "send", "repo.rpm")).FullName;
        AssertRefused(Send(Receiver(), UpdateQube, directory), "returned non-zero exit status");
        File.Delete(_paths.ErrorLog);
        string link = Path.Combine(_base, "send", "link.rpm");
        File.CreateSymbolicLink(link, _world.Signed);
        AssertRefused(Send(Receiver(), UpdateQube, link), "returned non-zero exit status");
        File.Delete(_paths.ErrorLog);
        AssertRefused(SendRaw(Receiver(), Entry("pipe.rpm\0"u8.ToArray(), 0x11A4, [])), "returned non-zero exit status");
    }

    [Fact]
    public void An_unsigned_package_is_refused()
    {
        AssertRefused(Send(Receiver(), UpdateQube, Stage("tiny-1.0-1.noarch.rpm", _world.Unsigned)),
            $"Error while verifying tiny-1.0-1.noarch.rpm signature: b'{_paths.Rpm}/tiny-1.0-1.noarch.rpm: digests SIGNATURES NOT OK\\n'");
    }

    [Fact]
    public void A_package_signed_by_an_unknown_key_is_refused()
    {
        AssertRefused(Send(Receiver(), UpdateQube, Stage("tiny-1.0-1.noarch.rpm", _world.SignedByStranger)), "Error while verifying tiny-1.0-1.noarch.rpm signature");
    }

    [Fact]
    public void Output_other_than_the_one_success_line_is_not_signed()
    {
        // rpmkeys exiting 0 with only digests checked, or with more to say, is not a verification
        foreach (string output in new[] { "$2: digests OK", "$2: digests signatures OK\nextra", "$2: digests signatures OK ", "x$2: digests signatures OK" })
        {
            string fake = Script("rpmkeys-" + Guid.NewGuid().ToString("N"), $"#!/bin/sh\nshift $(($# - 2))\nprintf '%s\\n' \"{output}\"\n");
            AssertRefused(Send(Receiver(Tools(rpmKeys: fake)), UpdateQube, Stage($"tiny{Guid.NewGuid():N}.rpm", _world.Signed)), $"Domain {UpdateQube} sent not signed rpm: tiny");
            File.Delete(_paths.ErrorLog);
        }
    }

    [Fact]
    public void A_tampered_package_is_refused_by_rpmcanon_and_by_rpmkeys_on_its_own()
    {
        byte[] signed = File.ReadAllBytes(_world.Signed);
        Assert.Equal(RpmParseStatus.Complete, RpmHeader.Parse(signed.AsSpan(RpmLead.Size), RpmHeaderKind.Signature, out RpmHeader? signature).Status);
        int mainStore = RpmLead.Size + signature!.PaddedSize + 16 + (16 * (int)System.Buffers.Binary.BinaryPrimitives.ReadUInt32BigEndian(signed.AsSpan(RpmLead.Size + signature.PaddedSize + 8)));
        byte[] header = (byte[])signed.Clone();
        header[mainStore + 60] ^= 1;
        byte[] payload = (byte[])signed.Clone();
        payload[^20] ^= 1;
        string plainCopy = Script("copy", "#!/bin/sh\nshift 2\nexec cp -- \"$1\" \"$2\"\n");
        foreach (byte[] tampered in new[] { header, payload })
        {
            string staged = Path.Combine(_base, "send", "tiny-1.0-1.noarch.rpm");
            File.WriteAllBytes(staged, tampered);
            AssertRefused(Send(Receiver(), UpdateQube, staged), $"Error canonicalizing {_paths.StagingParent}/qubes-updates-tmp");
            File.Delete(_paths.ErrorLog);
            // with a canonicaliser that lets anything through, rpmkeys still refuses
            AssertRefused(Send(Receiver(Tools(canonicalizer: plainCopy)), UpdateQube, staged), "Error while verifying tiny-1.0-1.noarch.rpm signature");
            File.Delete(_paths.ErrorLog);
            File.Delete(staged);
        }
    }

    [Fact]
    public void A_truncated_package_is_refused()
    {
        byte[] signed = File.ReadAllBytes(_world.Signed);
        foreach (int length in new[] { 50, 200, signed.Length - 1 })
        {
            string staged = Stage($"cut{length}.rpm", null);
            File.WriteAllBytes(staged, signed.AsSpan(0, length).ToArray());
            AssertRefused(Send(Receiver(), UpdateQube, staged), "Error canonicalizing");
            File.Delete(_paths.ErrorLog);
        }
    }

    [Fact]
    public void A_refused_file_after_good_ones_leaves_no_package()
    {
        AssertRefused(Send(Receiver(), UpdateQube, Stage("tiny-1.0-1.noarch.rpm", _world.Signed), Stage("zzz.rpm", _world.Unsigned)), "Error while verifying zzz.rpm signature");
    }

    [Fact]
    public void Python_bytes_are_written_as_upstream_shows_them()
    {
        Assert.Equal(@"b'a: digests SIGNATURES NOT OK\n'", ReceiveUpdates.PythonBytes("a: digests SIGNATURES NOT OK\n"u8));
        Assert.Equal(@"b""it's""", ReceiveUpdates.PythonBytes("it's"u8));
        Assert.Equal(@"b'\'""\\\t\r\x1b\xff'", ReceiveUpdates.PythonBytes([.. "'\"\\\t\r"u8, 0x1B, 0xFF]));
        Assert.Equal("b''", ReceiveUpdates.PythonBytes([]));
    }

    [Fact]
    public void The_updatevm_is_read_from_the_property_reply()
    {
        Assert.Equal("sys-firewall", UpdateVm.ParseValue("default=False type=vm sys-firewall"));
        Assert.Null(UpdateVm.ParseValue("default=True type=vm "));
        Assert.Null(UpdateVm.ParseValue("garbage"));
    }

    private uint GroupOf(string path) => uint.Parse(_world.Run("/usr/bin/stat", "-c", "%g", path).Trim(), System.Globalization.CultureInfo.InvariantCulture);

    /// <summary>A file-copy stream of one entry and the end marker.</summary>
    private static byte[] Entry(byte[] name, uint mode, byte[] content)
    {
        byte[] header = new byte[FileCopyProtocol.HeaderSize];
        List<byte> stream = [];
        new FileHeader((uint)name.Length, mode, (ulong)content.Length, 1_600_000_000, 0, 1_600_000_000, 0).Write(header);
        stream.AddRange(header);
        stream.AddRange(name);
        stream.AddRange(content);
        new FileHeader(0, 0, 0, 0, 0, 0, 0).Write(header);
        stream.AddRange(header);
        return [.. stream];
    }

    private string Script(string name, string text)
    {
        string path = Path.Combine(_bin, name);
        File.WriteAllText(path, text.Replace("\r", "", StringComparison.Ordinal));
        File.SetUnixFileMode(path, (UnixFileMode)0x1ED);
        return path;
    }
}
