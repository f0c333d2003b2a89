using System;
using System.Diagnostics;
using System.IO;
using System.Threading.Tasks;
using Qubes.Interop.Linux;
using Qubes.Interop.X11;
using Qubes.Interop.X11.Tests;
using Qubes.Platform.Tests;
using Xunit;
using Qubes.Tests;

namespace Qubes.Gui.X11.Tests;

/// <summary>
/// The native programs as a system runs them: qubes-gui-agent in a qube's domain with its own
/// Xvfb, qubes-guid in dom0 with upstream's command line on dom0's display.
/// </summary>
public sealed class ProgramTests : IDisposable
{
    private readonly Xvfb _dom0Screen = new();
    private readonly TestBroker _broker = new();
    private readonly string _bin;

    public ProgramTests()
    {
        _bin = TestRepository.NativeBin;
    }

    public void Dispose()
    {
        _broker.Dispose();
        _dom0Screen.Dispose();
    }

    [Fact]
    public async Task A_client_of_the_agent_s_xvfb_shows_through_qubes_guid_which_ends_when_the_agent_is_killed()
    {
        (int id, SafeFd connection) = _broker.Dom0.CreateDomain("work");
        ProcessStartInfo agentStart = new(Path.Combine(_bin, "qubes-gui-agent"), ["--screen", "800x600x24", "--print-display"])
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
        };
        using Process agent = Qubes.Platform.Loopback.LoopbackPlatform.StartInDomain(connection, agentStart);
        connection.Dispose();
        string? qubeDisplay = await agent.StandardOutput.ReadLineAsync().WaitAsync(TimeSpan.FromSeconds(20));
        Assert.StartsWith(":", qubeDisplay, StringComparison.Ordinal);

        ProcessStartInfo guidStart = new(Path.Combine(_bin, "qubes-guid"), ["-d", id.ToString(System.Globalization.CultureInfo.InvariantCulture), "-N", "work", "-c", "0x3465a4", "-l", "6", "-f"])
        {
            RedirectStandardError = true,
        };
        guidStart.Environment[Qubes.Platform.Loopback.LoopbackPlatform.DirectoryVariable] = _broker.Directory;
        guidStart.Environment["DISPLAY"] = _dom0Screen.Name;
        using Process guid = Process.Start(guidStart)!;
        Task<string> guidErrors = guid.StandardError.ReadToEndAsync();

        using (DisplayHandle client = DisplayHandle.Open(qubeDisplay))
        using (DisplayHandle observer = DisplayHandle.Open(_dom0Screen.Name))
        {
            ulong window = X11Test.CreateMappedWindow(client, 30, 40, 64, 48);
            Fill(client, window, 0x00C0FFEE);
            Assert.True(TestBroker.Eventually(() => Color(observer, 60, 60) == 0xC0FFEE, 20_000), "dom0's screen shows the qube's client through the programs");
            Assert.Equal(0x3465a4u, Color(observer, 29, 39));
        }
        agent.Kill(entireProcessTree: true);
        await agent.WaitForExitAsync().WaitAsync(TimeSpan.FromSeconds(10));
        await guid.WaitForExitAsync().WaitAsync(TimeSpan.FromSeconds(10));
        Assert.Equal(0, guid.ExitCode);
        Assert.Contains("work: the agent closed the GUI connection", await guidErrors, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Qubes_guid_refuses_a_command_line_without_the_qube()
    {
        using Process guid = Process.Start(new ProcessStartInfo(Path.Combine(_bin, "qubes-guid"), ["-N", "work"]) { RedirectStandardError = true })!;
        string errors = await guid.StandardError.ReadToEndAsync();
        await guid.WaitForExitAsync();
        Assert.Equal(1, guid.ExitCode);
        Assert.Contains("the domain id (-d) and name (-N) are needed", errors, StringComparison.Ordinal);
    }

    private static unsafe void Fill(DisplayHandle display, ulong window, uint color)
    {
        nint gc = Xlib.XDefaultGC(display.Pointer, display.DefaultScreen);
        Xlib.XSetForeground(display.Pointer, gc, color);
        Xlib.XFillRectangle(display.Pointer, window, gc, 0, 0, 64, 48);
        Xlib.XSync(display.Pointer, 0);
    }

    private static uint Color(DisplayHandle display, int x, int y) => ScreenReader.Pixel(display, x, y);
}
