using System;
using System.Diagnostics;
using System.IO;
using System.Threading;
using Qubes.AppMenus;
using Qubes.Gui.X11;
using Qubes.Interop.X11;

namespace Qubes.Front;

/// <summary>The GUI scenario: qubes' windows on dom0's screen, typing into one, the clipboard under policy.</summary>
internal sealed partial class Scenarios
{
    private void Gui()
    {
        string display = File.ReadAllText(_system.Layout.DisplayFile).Trim();
        _step($"GUI: xterm in work and in untrusted side by side on dom0's screen ({display}); each qube has its own X server, qubes-guid shows its windows framed in the label's colour and titled [name]");
        _say("$ qvm-run work 'xterm -title notes -e sh -c \"read line; echo $line > ~/typed.txt\"' &");
        using Process notes = Start("qvm-run", ["work", "xterm -geometry 60x12+20+40 -title notes -e sh -c 'read line; echo \"$line\" > ~/typed.txt; read wait'"], null);
        _say("$ qvm-run untrusted 'xterm -title browser -e sh' &");
        using Process browser = Start("qvm-run", ["untrusted", "xterm -geometry 60x12+460+40 -title browser -e sh"], null);
        using DisplayHandle screen = DisplayHandle.Open(display);
        ulong workWindow = WaitForWindow(screen, "[work] notes"), untrustedWindow = WaitForWindow(screen, "[untrusted] browser");
        Expect(workWindow != 0, "dom0's screen has the window [work] notes");
        Expect(untrustedWindow != 0, "dom0's screen has the window [untrusted] browser");
        // the title comes with the window; qubes-guid paints the frame when the window is first exposed, just after
        (int workX, int workY, uint workFrame) = FrameOf(screen, workWindow, 0x3465a4);
        (int untrustedX, int untrustedY, uint untrustedFrame) = FrameOf(screen, untrustedWindow, 0xcc0000);
        _say($"[work] notes at {workX},{workY}, frame 0x{workFrame:x6}; [untrusted] browser at {untrustedX},{untrustedY}, frame 0x{untrustedFrame:x6}");
        Expect(workFrame == 0x3465a4 && untrustedFrame == 0xcc0000, "the frames are in the labels' colours: work blue (0x3465a4), untrusted red (0xcc0000)");
        string png = Path.Combine(Path.GetTempPath(), $"qubes-demo-screen-{Environment.ProcessId}.png");
        Screenshot(screen, png);
        _say($"screenshot of dom0's screen: {png}");

        _step("a key typed on dom0's screen into [work] notes reaches the program in work (dom0's input, through qubes-guid and the agent's XTest)");
        Type(display, workX + 60, workY + 60, "type", "hello-from-dom0");
        Type(display, workX + 60, workY + 60, "key", "Return");
        string typed = WaitForOutput("work", "cat ~/typed.txt 2>/dev/null", "hello-from-dom0\n");
        Expect(typed == "hello-from-dom0\n", "work's program read the line typed on dom0's screen");

        _step("the clipboard: untrusted copies (Ctrl+Shift+C), work pastes (Ctrl+Shift+V); first refused by a policy rule, then allowed by the default policy");
        Run("untrusted", "printf 'text from untrusted' | xclip -selection clipboard -i >/dev/null 2>&1");
        Policy("10-clipboard.policy", "qubes.ClipboardPaste  *  untrusted  work  deny\n");
        string workLog = _system.Layout.Log("guid.work");
        long logStart = new FileInfo(workLog).Length;
        CopyAndPaste(display, (untrustedX + 60, untrustedY + 60), (workX + 60, workY + 60));
        Expect(WaitForLog(workLog, logStart, "the policy refuses qubes.ClipboardPaste from untrusted"), "the paste into work is refused by the policy, and the global clipboard emptied");
        (_, string pasted) = Run("work", "xclip -o -selection clipboard 2>/dev/null; true");
        Expect(pasted.Length == 0, "work's clipboard is still empty");
        File.Delete(Path.Combine(_system.Layout.PolicyDirectory, "10-clipboard.policy"));
        _say("policy.d/10-clipboard.policy removed: the default rule qubes.ClipboardPaste * @anyvm @anyvm allow decides");
        logStart = new FileInfo(workLog).Length;
        CopyAndPaste(display, (untrustedX + 60, untrustedY + 60), (workX + 60, workY + 60));
        Expect(WaitForLog(workLog, logStart, "pasted 19 bytes copied from untrusted"), "the paste into work is allowed");
        pasted = WaitForOutput("work", "xclip -o -selection clipboard 2>/dev/null", "text from untrusted");
        Expect(pasted == "text from untrusted", "work's clipboard has the text copied in untrusted");
        foreach (string line in File.ReadAllLines(_system.Layout.Log("guid.untrusted")))
        {
            _say("  guid.untrusted.log | " + line);
        }

        // the notes window ends with its program; the browser is closed from inside the qube
        Type(display, workX + 60, workY + 60, "key", "Return");
        Run("untrusted", "pkill -x xterm; true");
        Expect(notes.WaitForExit(20_000) && browser.WaitForExit(20_000), "both xterms ended, and qvm-run with them");
        Expect(WaitForWindow(screen, "[work] notes", 5_000, untilGone: true) == 0 && WaitForWindow(screen, "[untrusted] browser", 5_000, untilGone: true) == 0, "their windows are gone from dom0's screen");
    }

    /// <summary>Ctrl+Shift+C in the window at <paramref name="from"/>, then Ctrl+Shift+V in the one at <paramref name="to"/>, as a user would.</summary>
    private void CopyAndPaste(string display, (int X, int Y) from, (int X, int Y) to)
    {
        _say($"dom0$ xdotool mousemove {from.X} {from.Y} key ctrl+shift+c; xdotool mousemove {to.X} {to.Y} key ctrl+shift+v");
        string source = Path.Combine(_system.Layout.Run, "qubes-clipboard.bin.source");
        File.Delete(source);
        Type(display, from.X, from.Y, "key", "ctrl+shift+c");
        Stopwatch clock = Stopwatch.StartNew();
        while ((!File.Exists(source) || File.ReadAllText(source) != "untrusted") && clock.Elapsed < TimeSpan.FromSeconds(10))
        {
            Thread.Sleep(20);
        }
        Expect(File.Exists(source) && File.ReadAllText(source) == "untrusted", "dom0's global clipboard holds untrusted's copy");
        Type(display, to.X, to.Y, "key", "ctrl+shift+v");
    }

    /// <summary>Moves dom0's pointer to (x, y) and types there with xdotool (through XTEST, as a keyboard would).</summary>
    private static void Type(string display, int x, int y, string action, string what)
    {
        ProcessStartInfo psi = new("xdotool", ["mousemove", x.ToString(System.Globalization.CultureInfo.InvariantCulture), y.ToString(System.Globalization.CultureInfo.InvariantCulture), "sleep", "0.2", action, what]) { UseShellExecute = false };
        psi.Environment["DISPLAY"] = display;
        using Process p = Process.Start(psi)!;
        p.WaitForExit();
    }

    private string WaitForOutput(string qube, string command, string expected)
    {
        string output = string.Empty;
        Stopwatch clock = Stopwatch.StartNew();
        while (clock.Elapsed < TimeSpan.FromSeconds(10))
        {
            output = Execute("qvm-run", ["-p", qube, command], null).Output;
            if (output == expected)
            {
                break;
            }
            Thread.Sleep(100);
        }
        _say($"$ qvm-run -p {qube} {Quote(command)}");
        Lines(output);
        return output;
    }

    private bool WaitForLog(string log, long from, string text)
    {
        Stopwatch clock = Stopwatch.StartNew();
        while (clock.Elapsed < TimeSpan.FromSeconds(10))
        {
            string added = ReadLogFrom(log, from);
            if (added.Contains(text, StringComparison.Ordinal))
            {
                foreach (string line in added.Split('\n', StringSplitOptions.RemoveEmptyEntries))
                {
                    _say($"  {Path.GetFileName(log)} | " + line.Replace(_system.Layout.State + "/", string.Empty, StringComparison.Ordinal));
                }
                return true;
            }
            Thread.Sleep(50);
        }
        return false;
    }

    /// <summary>The top-level window of dom0's screen with this title (0 when none appears in <paramref name="timeoutMs"/>, or, with <paramref name="untilGone"/>, when it is gone).</summary>
    private static ulong WaitForWindow(DisplayHandle screen, string title, int timeoutMs = 20_000, bool untilGone = false)
        => Poll(() => ScreenReader.FindWindow(screen, title), found => (found != 0) != untilGone, timeoutMs);

    /// <summary>
    /// Where a window's frame starts on dom0's screen, and the colour of its corner as the screen
    /// shows it: read again for up to 5 s until it is <paramref name="expected"/>.
    /// </summary>
    private static (int X, int Y, uint Color) FrameOf(DisplayHandle screen, ulong window, uint expected)
        => Poll(() =>
        {
            (int x, int y) = ScreenReader.Position(screen, window);
            return (x, y, ScreenReader.Pixel(screen, Math.Max(x, 0), Math.Max(y, 0)));
        }, frame => frame.Item3 == expected, 5_000);

    /// <summary>Reads every 50 ms until <paramref name="done"/> holds for the reading or <paramref name="timeoutMs"/> have passed; the last reading.</summary>
    private static T Poll<T>(Func<T> read, Func<T, bool> done, int timeoutMs)
    {
        Stopwatch clock = Stopwatch.StartNew();
        while (true)
        {
            T value = read();
            if (done(value) || clock.ElapsedMilliseconds > timeoutMs)
            {
                return value;
            }
            Thread.Sleep(50);
        }
    }

    /// <summary>dom0's whole screen as a PNG file.</summary>
    private static void Screenshot(DisplayHandle screen, string path)
    {
        byte[] rgba = ScreenReader.CaptureRgba(screen, out int width, out int height);
        File.WriteAllBytes(path, new RgbaImage(width, height, rgba).EncodePng());
    }
}
