using System;
using System.Diagnostics;
using System.Globalization;
using System.IO;
using Qubes.Cli;
using Qubes.Gui;
using Qubes.Gui.X11;
using Qubes.Interop.X11;
using Qubes.Platform;

namespace Qubes.Tools.Guid;

/// <summary>
/// qubes-guid -d DOMID -N NAME -c COLOR -l LABEL: one qube's windows on dom0's display
/// (<c>$DISPLAY</c>), framed in its label's colour, until its agent goes.
/// </summary>
internal static class Program
{
    internal static Command Command { get; } = new("qubes-guid", HelpStyle.Getopt,
        Command.GetoptHelp,
        new Option("domain id of the qube", "-d", "--domid") { Metavar = "DOMID" },
        new Option("name of the qube", "-N", "--name") { Metavar = "NAME" },
        new Option("label colour, 0xRRGGBB", "-c", "--color") { Metavar = "COLOR" },
        new Option("label index", "-l", "--label") { Metavar = "LABEL" },
        new Option("run in the foreground (always: the caller supervises)", "-f", "--foreground"),
        new Option("more messages", "-v", "--verbose"),
        new Option("do not prefix window titles with the qube's name", "--no-title-prefix"),
        new Option("keep valid UTF-8 in window titles", "--allow-utf8-titles"),
        new Option("let the qube go real fullscreen", "--allow-fullscreen"),
        new Option("largest clipboard taken from the qube, in bytes (256-256000)", "--clipboard-limit") { Metavar = "BYTES" })
    {
        Synopsis = "qubes-guid -d domain_id -N domain_name -c color -l label [options]",
        UsageStatus = 1,
    };

    internal static int Main(string[] args) => Command.Run(Console.Out, Console.Error, () =>
    {
        try
        {
            return Run(args);
        }
        catch (Exception e) when (e is PlatformException or X11Exception or InvalidOperationException)
        {
            Console.Error.WriteLine($"qubes-guid: {e.Message}");
            return 1;
        }
    });

    private static int Run(string[] args)
    {
        int domain = -1, label = 0, clipboard = GuiProtocol.DefaultClipboardBufferSize;
        string? name = null;
        uint color = 0;
        bool verbose = false, prefix = true, utf8 = false, fullscreen = false;
        System.Collections.Generic.List<Parsed> parsedOptions = Command.ReadAll(args, out System.Collections.Generic.List<string> positional);
        foreach (Parsed parsed in parsedOptions)
        {
            switch (parsed.Option?.Name)
            {
                case "-d":
                    domain = Number(parsed.Value!, "domain id");
                    break;
                case "-N":
                    name = parsed.Value;
                    break;
                case "-c":
                    string text = parsed.Value!;
                    if (!uint.TryParse(text.StartsWith("0x", StringComparison.OrdinalIgnoreCase) ? text[2..] : text, NumberStyles.HexNumber, CultureInfo.InvariantCulture, out color) || color > 0xFFFFFF)
                    {
                        throw new UsageException($"invalid colour {text}: 0xRRGGBB");
                    }
                    break;
                case "-l":
                    label = Number(parsed.Value!, "label");
                    break;
                case "-f":
                    break;
                case "-v":
                    verbose = true;
                    break;
                case "--no-title-prefix":
                    prefix = false;
                    break;
                case "--allow-utf8-titles":
                    utf8 = true;
                    break;
                case "--allow-fullscreen":
                    fullscreen = true;
                    break;
                case "--clipboard-limit":
                    clipboard = Number(parsed.Value!, "clipboard limit");
                    break;
                default:
                    throw new UsageException($"unknown option {parsed.Text}");
            }
        }
        if (positional.Count > 0 || domain < 0 || string.IsNullOrEmpty(name))
        {
            throw new UsageException("the domain id (-d) and name (-N) are needed");
        }
        using IPlatform platform = GuiPlatform.FromEnvironment();
        using DisplayHandle display = DisplayHandle.Open(Environment.GetEnvironmentVariable("DISPLAY"));
        int screen = display.DefaultScreen;
        var options = new GuiDaemonOptions(name)
        {
            ScreenWidth = Xlib.XDisplayWidth(display.Pointer, screen),
            ScreenHeight = Xlib.XDisplayHeight(display.Pointer, screen),
            PrefixTitles = prefix,
            AllowUtf8Titles = utf8,
            AllowFullscreen = fullscreen,
            ClipboardLimit = clipboard,
        };
        options.Validate();
        using GuiDaemon daemon = GuiDaemon.Start(platform, domain, new QubeIdentity(name, label, color), display, () => options);
        if (verbose)
        {
            Console.Error.WriteLine($"qubes-guid: {name}: connected, protocol {daemon.Dispatcher.Version >> 16}.{daemon.Dispatcher.Version & 0xFFFF}");
        }
        daemon.Host.Clipboard = new GlobalClipboard(Environment.GetEnvironmentVariable(ClipboardDirectoryVariable) is { Length: > 0 } directory ? directory : "/run/qubes");
        daemon.Host.PastePolicy = source => PasteAllowed(source, name);
        int status = daemon.Run();
        Console.Error.WriteLine($"qubes-guid: {daemon.Ending}");
        return status;
    }

    /// <summary>Where the global clipboard's files are (default: upstream's <c>/run/qubes</c>).</summary>
    private const string ClipboardDirectoryVariable = "QUBES_CLIPBOARD_DIR";

    /// <summary>
    /// Asks the policy whether <paramref name="source"/>'s clipboard may be pasted into
    /// <paramref name="target"/>, as upstream: <c>qrexec-policy-exec --just-evaluate</c> on
    /// <c>qubes.ClipboardPaste</c>, whose exit status 0 means allowed.
    /// </summary>
    private static bool PasteAllowed(string source, string target)
    {
        ProcessStartInfo start = new(Path.Combine(AppContext.BaseDirectory, "qrexec-policy-exec"), ["--just-evaluate", "--", source, target, "qubes.ClipboardPaste"])
        {
            UseShellExecute = false,
            RedirectStandardInput = true,
            RedirectStandardOutput = true,
        };
        try
        {
            using Process policy = Process.Start(start)!;
            policy.StandardInput.Close();
            policy.StandardOutput.ReadToEnd();
            policy.WaitForExit();
            return policy.ExitCode == 0;
        }
        catch (System.ComponentModel.Win32Exception e)
        {
            Console.Error.WriteLine($"qubes-guid: cannot ask the policy ({start.FileName}: {e.Message}); paste refused");
            return false;
        }
    }

    private static int Number(string text, string what)
        => int.TryParse(text, NumberStyles.None, CultureInfo.InvariantCulture, out int value) ? value : throw new UsageException($"invalid {what} {text}");
}
