using System;
using System.Globalization;
using System.IO;
using System.Text;
using Qubes.Core.Tests;
using Xunit;

namespace Qubes.FileCopy.Tests;

/// <summary>
/// qvm-copy and the qubes.Filecopy service on a whole system (<c>qubes up</c>, native build):
/// files between qubes under the policy's tag rules, from dom0, and hostile streams sent by a qube
/// straight to another's service, which must leave everything of the receiving qube outside
/// <c>~/QubesIncoming/SOURCE</c> as it was. work and untrusted carry the tag <c>work</c>.
/// </summary>
[System.Runtime.Versioning.SupportedOSPlatform("linux")]
public sealed class FileCopySystemTests : IClassFixture<FileCopySystemTests.RunningSystem>
{
    private readonly LoopbackSystem _system;

    public FileCopySystemTests(RunningSystem system) => _system = system.System;

    /// <summary>The system, with the seed's file-copy rules by tag; down and deleted after the class.</summary>
    public sealed class RunningSystem : IDisposable
    {
        public RunningSystem()
        {
            System = new("filecopy-test");
            try
            {
                // no X server in these qubes: its start-up files in /tmp would race with the snapshots of /tmp
                foreach (string qube in (string[])["work", "untrusted", "personal"])
                {
                    Assert.Equal(0, System.Tool("qvm-features", qube, "gui", "").Status);
                }
                Assert.Equal(0, System.Tool("qvm-tags", "work", "add", "work").Status);
                Assert.Equal(0, System.Tool("qvm-tags", "untrusted", "add", "work").Status);
                File.WriteAllText(Path.Combine(System.State, "policy.d", "40-filecopy.policy"),
                    "qubes.Filecopy  *  @tag:work  @tag:work  allow\nqubes.Filecopy  *  @tag:work  @anyvm  deny\n");
                Assert.Equal("no X server\n", System.Run("untrusted", "test -e /tmp/.X11-unix || echo no X server").Output);
            }
            catch
            {
                // a fixture that fails is never disposed of: the system goes down here
                System.Dispose();
                throw;
            }
        }

        public LoopbackSystem System { get; }

        public void Dispose() => System.Dispose();
    }

    /// <summary>Runs <paramref name="command"/> in <paramref name="qube"/>; asserts it succeeded and returns its output.</summary>
    private string In(string qube, string command)
    {
        (int status, string output) = _system.Run(qube, command);
        Assert.True(status == 0, $"{qube}: {command}: exit {status}: {output}");
        return output;
    }

    /// <summary>What a qube has outside its incoming directory from <paramref name="source"/>: every path of its home and /tmp with type, mode, size and target.</summary>
    private string Outside(string qube, string source)
        => In(qube, $"find ~ /tmp -path ~/QubesIncoming -prune -o -printf '%p %y %m %s %l\\n' | sort; find ~/QubesIncoming -mindepth 1 -maxdepth 1 ! -name {source} -printf '%p\\n' 2>/dev/null; true");

    [Fact]
    public void Copy_and_move_deliver_files_directories_links_modes_and_times_into_QubesIncoming_of_the_source()
    {
        In("work", "rm -rf ~/t && mkdir -p ~/t/d/sub && cd ~/t && printf one > d/a && printf two > d/sub/b && chmod 640 d/a && chmod 750 d/sub"
            + " && printf '#!/bin/sh\\n' > d/run && chmod 755 d/run && ln -s sub/b d/l && touch -d '2001-02-03 04:05:06.123456789' d/a d/sub"
            + " && mkdir m && printf moved > m/f");
        In("untrusted", "rm -rf ~/QubesIncoming");
        (int status, string output) = _system.Run("work", "cd ~/t && qvm-copy-to-vm untrusted d && qvm-move-to-vm untrusted m && if test -e m; then echo kept; else echo removed; fi");
        Assert.True(status == 0, output);
        Assert.Contains("removed\n", output, StringComparison.Ordinal);
        // links carry no times of their own across
        const string Listing = "{ find ENTRIES ! -type l -printf '%p %y %m %s %T@ %u\\n'; find ENTRIES -type l -printf '%p %l %u\\n'; } | sort";
        string sent = In("work", "cd ~/t && " + Listing.Replace("ENTRIES", "d", StringComparison.Ordinal));
        string received = In("untrusted", "cd ~/QubesIncoming/work && " + Listing.Replace("ENTRIES", "d", StringComparison.Ordinal));
        Assert.Equal(sent, received);
        Assert.Contains("d/a f 640 3 ", received, StringComparison.Ordinal);
        Assert.Contains("d/run f 755 10 ", received, StringComparison.Ordinal);
        Assert.Contains("d/l sub/b user", received, StringComparison.Ordinal);
        Assert.Equal("onetwomoved", In("untrusted", "cd ~/QubesIncoming/work && cat d/a d/sub/b m/f"));
    }

    [Fact]
    public void The_policy_decides_tag_rules_allow_work_to_work_deny_the_rest_and_an_ask_without_a_prompt_is_refused()
    {
        In("personal", "rm -rf ~/QubesIncoming && printf diary > ~/diary");
        In("work", "rm -rf ~/QubesIncoming && printf report > ~/report");
        (int status, string output) = _system.Run("work", "qvm-copy-to-vm personal ~/report");
        Assert.True(status == 126, output);
        Assert.Contains("Request refused", output, StringComparison.Ordinal);
        // qvm-copy names no target: the default policy asks, and with no prompt the answer is no
        (status, output) = _system.Run("personal", "qvm-copy ~/diary");
        Assert.True(status == 126, output);
        (status, output) = _system.Run("personal", "qvm-copy-to-vm work ~/diary");
        Assert.True(status == 126, output);
        Assert.Equal("none\n", In("personal", "ls ~/QubesIncoming 2>/dev/null || echo none"));
        Assert.Equal("none\n", In("work", "ls ~/QubesIncoming 2>/dev/null || echo none"));
        Assert.Contains("ask", _system.Tool("qubes", "qubes-policy", "--eval", "personal", "work", "qubes.Filecopy").Output, StringComparison.Ordinal);
    }

    [Fact]
    public void From_dom0_qvm_copy_to_vm_delivers_into_QubesIncoming_dom0_and_qvm_copy_refuses()
    {
        string directory = Path.Combine(_system.State, "from-dom0");
        Directory.CreateDirectory(directory);
        File.WriteAllText(Path.Combine(directory, "notes"), "from dom0");
        (int status, string output) = _system.Tool("qvm-copy-to-vm", "untrusted", directory);
        Assert.True(status == 0, output);
        Assert.Equal("from dom0", In("untrusted", "cat ~/QubesIncoming/dom0/from-dom0/notes"));
        (status, output) = _system.Tool("qvm-copy", directory);
        Assert.Equal(1, status);
        Assert.Contains("qvm-copy is not supported in dom0; use qvm-copy-to-vm instead.", output, StringComparison.Ordinal);
    }

    /// <summary>Each stream, sent by work to untrusted's qubes.Filecopy (ARG), with the exit status untrusted's receiver must give.</summary>
    public static TheoryData<string, string, byte[], int> HostileStreams() => new()
    {
        { "parent component", "", new Stream().File("../escaped", "x").End().Bytes, 84 },           // EILSEQ
        { "absolute name", "", new Stream().File("/home/user/escaped", "x").End().Bytes, 84 },
        { "link out of the transfer", "", new Stream().Dir("d").Symlink("d/l", "../../../../home/user").End().Bytes, 67 }, // ENOLINK
        { "file through a sent link", "", new Stream().Dir("d").Symlink("d/l", ".").File("d/l/escaped", "x").End().Bytes, 20 }, // ENOTDIR
        { "escape character without allow-all-names", "", new Stream().File("bad\u001Bname", "x").End().Bytes, 84 },
        { "the same name twice", "", new Stream().File("twice", "1").File("twice", "2").End().Bytes, 17 }, // EEXIST
        { "a fifo", "", new Stream().Entry([.. "fifo"u8, 0], 0x1000 | 0x1A4, []).End().Bytes, 22 }, // EINVAL
        { "a device", "", new Stream().Entry([.. "dev"u8, 0], 0x2000 | 0x1A4, []).End().Bytes, 22 },
        { "cut in a file's data", "", new Stream().Header(8, Stream.Regular | 0x1A4, 100).Raw("partial\0"u8).Raw("only this"u8).Bytes, 118 }, // LEGAL_EOF & 0xff
        { "no end marker", "", new Stream().File("complete", "x").Bytes, 121 }, // EREMOTEIO
    };

    [Theory]
    [MemberData(nameof(HostileStreams))]
    public void A_hostile_stream_leaves_nothing_outside_QubesIncoming_and_nothing_that_looks_complete(string attack, string argument, byte[] stream, int expected)
    {
        In("untrusted", "rm -rf ~/QubesIncoming && printf mine > ~/escaped-target");
        string before = Outside("untrusted", "work");
        In("work", "base64 -d > ~/stream", Convert.ToBase64String(stream));
        string service = argument.Length == 0 ? "qubes.Filecopy" : "qubes.Filecopy+" + argument;
        string output = In("work", $"qrexec-client-vm untrusted {service} < ~/stream > ~/reply; echo $?; od -An -tu4 -N4 ~/reply");
        string[] lines = output.Split('\n', StringSplitOptions.RemoveEmptyEntries);
        Assert.True(int.Parse(lines[0], CultureInfo.InvariantCulture) == expected, $"{attack}: {output}");
        Assert.True(lines.Length > 1 && uint.Parse(lines[1].Trim(), CultureInfo.InvariantCulture) != 0, $"{attack}: the reply reports no error: {output}");
        Assert.Equal(before, Outside("untrusted", "work"));
        Assert.Equal("mine", In("untrusted", "cat ~/escaped-target"));
        // nothing partial under its name: a file that did not arrive whole is not there
        Assert.Equal(string.Empty, In("untrusted", "find ~/QubesIncoming -name partial -o -name escaped"));
    }

    /// <summary><see cref="In(string, string)"/> with <paramref name="input"/> on the command's stdin.</summary>
    private string In(string qube, string command, string input)
    {
        (int status, string output) = _system.Run(qube, command, input);
        Assert.True(status == 0, $"{qube}: {command}: exit {status}: {output}");
        return output;
    }

    [Fact]
    public void The_service_takes_only_allow_all_names_and_then_takes_any_valid_name()
    {
        (int status, string output) = _system.Run("work", "qrexec-client-vm untrusted qubes.Filecopy+bogus < /dev/null");
        Assert.NotEqual(0, status);
        Assert.Contains("Unexpected argument bogus", output, StringComparison.Ordinal);
        In("untrusted", "rm -rf ~/QubesIncoming");
        byte[] stream = new Stream().Entry([.. Encoding.UTF8.GetBytes("bad\u001Bname"), 0], Stream.Regular | 0x1A4, "x"u8.ToArray()).End().Bytes;
        In("work", "base64 -d > ~/stream", Convert.ToBase64String(stream));
        Assert.Equal("0\n", In("work", "qrexec-client-vm untrusted qubes.Filecopy+allow-all-names < ~/stream > /dev/null; echo $?"));
        Assert.Equal("1\n", In("untrusted", "ls ~/QubesIncoming/work | wc -l"));
    }

    [Fact]
    public void The_receiver_runs_as_the_qubes_user_and_refuses_to_unpack_as_another()
    {
        (int status, string output) = _system.Run("untrusted", "qfile-unpacker 0 /tmp/as-root < /dev/null");
        Assert.Equal(1, status);
        Assert.Contains("Refusing to change to UID other than the caller's UID", output, StringComparison.Ordinal);
        Assert.Equal("absent\n", In("untrusted", "test -e /tmp/as-root && echo present || echo absent"));
    }
}
