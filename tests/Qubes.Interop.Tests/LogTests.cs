using System;
using System.IO;
using Qubes.Interop.Linux;
using Xunit;

namespace Qubes.Interop.Tests;

/// <summary>What a qube can put into dom0's logs: lines it cannot forge or split, of bounded length, in files of bounded size.</summary>
public sealed class LogTests : IDisposable
{
    private readonly string _directory = Directory.CreateTempSubdirectory("log-test-").FullName;

    public void Dispose() => Directory.Delete(_directory, recursive: true);

    [Fact]
    public void Qube_chosen_text_is_escaped_and_capped()
    {
        Assert.Equal("plain text", LogText.Cap("plain text"));
        Assert.Equal("a\\x0aqrexec-policy-daemon: forged\\x1b[2J", LogText.Cap("a\nqrexec-policy-daemon: forged\u001b[2J"));
        Assert.Equal("x\\x7fy\\x85z\\x2028", LogText.Cap("x\u007fy\u0085z\u2028")); // C1 controls and the Unicode line separator too
        string capped = LogText.Cap(new string('A', 65536));
        Assert.StartsWith(new string('A', LogText.MaxLength), capped, StringComparison.Ordinal);
        Assert.EndsWith($"...({65536 - LogText.MaxLength} more)", capped, StringComparison.Ordinal);
        Assert.True(capped.Length < LogText.MaxLength + 32);
        Assert.Equal(string.Empty, LogText.Cap(null));
    }

    [Fact]
    public void A_rotating_log_caps_its_lines_and_its_size()
    {
        string path = Path.Combine(_directory, "qrexec.work.log");
        using (RotatingLog log = new(path, maxBytes: 64 * 1024))
        {
            log.WriteLine(new string('x', 100_000) + "\u001b");
            for (int i = 0; i < 1000; i++)
            {
                log.WriteLine($"line {i} " + new string('y', 200));
            }
        }
        string[] lines = File.ReadAllLines(path);
        Assert.All(lines, static l => Assert.True(l.Length <= RotatingLog.MaxLineLength + 32));
        Assert.True(new FileInfo(path).Length <= 64 * 1024);
        Assert.True(new FileInfo(path + ".1").Length <= 64 * 1024);
        Assert.False(File.Exists(path + ".2"));
        Assert.EndsWith("line 999 " + new string('y', 200), lines[^1], StringComparison.Ordinal); // the newest is kept
        Assert.DoesNotContain('\u001b', File.ReadAllText(path + ".1") + File.ReadAllText(path));
    }
}
