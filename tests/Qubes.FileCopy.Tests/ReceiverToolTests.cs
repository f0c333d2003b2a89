using System;
using System.Collections.Generic;
using System.Diagnostics;
using System.IO;
using System.Threading.Tasks;
using Xunit;
using Qubes.Tests;

namespace Qubes.FileCopy.Tests;

/// <summary>
/// The receivers' executables (native build) run on the host with a stream on their stdin:
/// upstream's command lines of qfile-unpacker and qfile-dom0-unpacker, and dom0's limits and
/// regular-files-only mode, each refusal leaving the directory beside the target untouched.
/// </summary>
[System.Runtime.Versioning.SupportedOSPlatform("linux")]
public sealed class ReceiverToolTests : IDisposable
{
    private readonly string _base = Path.Combine(Path.GetTempPath(), $"receiver-tool-{Environment.ProcessId}-{Guid.NewGuid():N}");
    private readonly string _bin;

    public ReceiverToolTests()
    {
        _bin = TestRepository.NativeBin;
        Directory.CreateDirectory(Path.Combine(_base, "outside"));
        File.WriteAllText(Path.Combine(_base, "outside", "keep"), "untouched");
    }

    public void Dispose() => Directory.Delete(_base, recursive: true);

    private string Target => Path.Combine(_base, "in");

    /// <summary>Runs a receiver with <paramref name="stream"/> on stdin: its status, its reply's first word (the error code), its stderr.</summary>
    private (int Status, uint Code, string Errors) Receive(string program, byte[] stream, IReadOnlyList<string> args, Dictionary<string, string>? environment = null)
    {
        ProcessStartInfo psi = new(Path.Combine(_bin, program), args)
        {
            RedirectStandardInput = true,
            RedirectStandardOutput = true,
            RedirectStandardError = true,
        };
        foreach ((string key, string value) in environment ?? [])
        {
            psi.Environment[key] = value;
        }
        using Process p = Process.Start(psi)!;
        Task<string> errors = p.StandardError.ReadToEndAsync();
        using MemoryStream reply = new();
        Task output = p.StandardOutput.BaseStream.CopyToAsync(reply);
        try
        {
            p.StandardInput.BaseStream.Write(stream);
            p.StandardInput.Close();
        }
        catch (IOException)
        {
            // the receiver stopped reading: its reply says why
        }
        p.WaitForExit();
        output.Wait();
        byte[] bytes = reply.ToArray();
        Assert.Equal("untouched", File.ReadAllText(Path.Combine(_base, "outside", "keep")));
        Assert.Single(Directory.GetFileSystemEntries(Path.Combine(_base, "outside")));
        return (p.ExitCode, bytes.Length >= 4 ? BitConverter.ToUInt32(bytes, 0) : uint.MaxValue, errors.Result);
    }

    private static string Me => Environment.UserName;

    [Fact]
    public void Dom0s_receiver_takes_regular_files_only_when_told_and_strict_links()
    {
        byte[] files = new Stream().File("a.rpm", "rpm").File("b.rpm", "rpm").End().Bytes;
        Assert.Equal((0, 0u), Trim(Receive("qfile-dom0-unpacker", files, [Me, Target, "--only-regular-files"])));
        Assert.Equal("rpm", File.ReadAllText(Path.Combine(Target, "b.rpm")));
        Directory.Delete(Target, recursive: true);
        byte[] directory = new Stream().Dir("repodata").End().Bytes;
        Assert.Equal((22, 22u), Trim(Receive("qfile-dom0-unpacker", directory, [Me, Target, "--only-regular-files"])));
        Assert.Empty(Directory.GetFileSystemEntries(Target));
        byte[] link = new Stream().Dir("d").Symlink("d/l", "a.rpm").End().Bytes;
        Assert.Equal((22, 22u), Trim(Receive("qfile-dom0-unpacker", link, [Me, Target, "--only-regular-files"])));
        Directory.Delete(Target, recursive: true);
        // without the option links are taken, but only canonical ones (a qube's receiver tolerates "./")
        byte[] nonCanonical = new Stream().Dir("d").File("d/a", "x").Symlink("d/l", "./a").End().Bytes;
        Assert.Equal((84, 84u), Trim(Receive("qfile-dom0-unpacker", nonCanonical, [Me, Target])));
        Directory.Delete(Target, recursive: true);
        Directory.CreateDirectory(Target); // a qube's receiver makes only its default directory
        Assert.Equal((0, 0u), Trim(Receive("qfile-unpacker", nonCanonical, ["", Target])));
    }

    [Fact]
    public void Dom0s_receiver_keeps_to_its_file_and_byte_limits_and_their_overrides()
    {
        byte[] three = new Stream().File("1", "a").File("2", "b").File("3", "c").End().Bytes;
        Assert.Equal((122, 122u), Trim(Receive("qfile-dom0-unpacker", three, [Me, Target], new() { ["UPDATES_MAX_FILES"] = "2" })));
        Assert.Equal(2, Directory.GetFiles(Target).Length);
        Directory.Delete(Target, recursive: true);
        Assert.Equal((122, 122u), Trim(Receive("qfile-dom0-unpacker", three, [Me, Target], new() { ["UPDATES_MAX_BYTES"] = "2" })));
        Assert.Equal(2, Directory.GetFiles(Target).Length);
        Directory.Delete(Target, recursive: true);
        // 4 GiB + 1 announced: refused by the default limit before a byte of it is read or a file made
        byte[] huge = new Stream().Header(4, Stream.Regular | 0x1A4, (4UL << 30) + 1).Raw("big\0"u8).Bytes;
        Assert.Equal((122, 122u), Trim(Receive("qfile-dom0-unpacker", huge, [Me, Target])));
        Assert.Empty(Directory.GetFileSystemEntries(Target));
    }

    [Fact]
    public void The_command_lines_are_upstreams()
    {
        byte[] one = new Stream().File("x", "1").End().Bytes;
        (int status, _, string errors) = Receive("qfile-unpacker", one, ["--allow-all", Target]);
        Assert.Equal(1, status);
        Assert.Contains("Option --allow-all must be passed as --allow-all-names", errors, StringComparison.Ordinal);
        (status, _, errors) = Receive("qfile-unpacker", one, ["", Target, "extra"]);
        Assert.Equal(1, status);
        Assert.Contains("Wrong number of non-option arguments (expected no more than 2, got 3)", errors, StringComparison.Ordinal);
        (status, _, errors) = Receive("qfile-unpacker", one, ["-w", "01", "", Target]);
        Assert.Equal(1, status);
        Assert.Contains("Space amount 01 is invalid", errors, StringComparison.Ordinal);
        (status, _, errors) = Receive("qfile-unpacker", one, ["01", Target]);
        Assert.Equal(1, status);
        Assert.Contains("Invalid user ID argument", errors, StringComparison.Ordinal);
        Assert.False(Directory.Exists(Target));
        (status, _, errors) = Receive("qfile-unpacker", one, ["", Target]);
        Assert.Equal(1, status);
        Assert.Contains($"Error chdir to {Target}", errors, StringComparison.Ordinal);
        Directory.CreateDirectory(Target);
        // the older form: UID DIR [-v] [-w [BYTES]]; -v names each file on stderr
        (status, uint code, errors) = Receive("qfile-unpacker", one, [OwnUid, Target, "-v", "-w"]);
        Assert.Equal((0, 0u), (status, code));
        Assert.Equal("x\n", errors);
        (status, _, errors) = Receive("qfile-dom0-unpacker", one, [Me, Target, "-x"]);
        Assert.Equal(1, status);
        Assert.Contains("Invalid option -x", errors, StringComparison.Ordinal);
    }

    private static string OwnUid => Qubes.Interop.Linux.Libc.getuid().ToString(System.Globalization.CultureInfo.InvariantCulture);

    private static (int, uint) Trim((int Status, uint Code, string Errors) result) => (result.Status, result.Code);
}
