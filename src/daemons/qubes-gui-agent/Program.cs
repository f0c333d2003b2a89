using System;
using System.Globalization;
using Qubes.Cli;
using Qubes.Gui;
using Qubes.Gui.X11;
using Qubes.Interop.X11;
using Qubes.Platform;

namespace Qubes.Tools.QubesGuiAgent;

/// <summary>
/// qubes-gui-agent [--display :N] [--screen WxHxD] [--gui-domain ID]: in a qube, shows the windows
/// of its X server through the GUI domain's daemon. With --screen, or without any display, it
/// starts the qube's own X server (Xorg with the window-pixmap module where installed, else Xvfb;
/// on --display's number when given; dom0's screen size is not known before the handshake, so
/// 1920x1080x24 by default) and stops it when it ends.
/// </summary>
internal static class Program
{
    internal static Command Command { get; } = new("qubes-gui-agent", HelpStyle.Getopt,
        Command.GetoptHelp,
        new Option("the qube's X server (default: $DISPLAY, else a new one); with --screen, the number of the one to start", "--display") { Metavar = "DISPLAY" },
        new Option("start the qube's X server with this screen, WIDTHxHEIGHTxDEPTH (default 1920x1080x24)", "--screen") { Metavar = "GEOMETRY" },
        new Option("the GUI domain (default 0, dom0)", "--gui-domain") { Metavar = "ID" },
        new Option("print the display's name on stdout once it serves", "--print-display"))
    {
        Synopsis = "qubes-gui-agent [--display DISPLAY] [--screen WxHxD] [--gui-domain ID]",
        UsageStatus = 1,
    };

    internal static int Main(string[] args) => Command.Run(Console.Out, Console.Error, () =>
    {
        try
        {
            return Run(args);
        }
        catch (Exception e) when (e is PlatformException or X11Exception or GuiHandshakeException or InvalidOperationException)
        {
            Console.Error.WriteLine($"qubes-gui-agent: {e.Message}");
            return 1;
        }
    });

    private static int Run(string[] args)
    {
        string? display = null, screen = null;
        int guiDomain = 0;
        bool print = false;
        System.Collections.Generic.List<Parsed> parsedOptions = Command.ReadAll(args, out System.Collections.Generic.List<string> positional);
        foreach (Parsed parsed in parsedOptions)
        {
            switch (parsed.Option?.Name)
            {
                case "--display":
                    display = parsed.Value;
                    break;
                case "--screen":
                    screen = parsed.Value;
                    break;
                case "--gui-domain":
                    guiDomain = int.TryParse(parsed.Value, NumberStyles.None, CultureInfo.InvariantCulture, out int id) ? id : throw new UsageException($"invalid domain {parsed.Value}");
                    break;
                case "--print-display":
                    print = true;
                    break;
                default:
                    throw new UsageException($"unknown option {parsed.Text}");
            }
        }
        if (positional.Count > 0)
        {
            throw new UsageException($"unexpected argument {positional[0]}");
        }
        // the hypervisor connection first: it stops being inheritable before the X server is started
        using IPlatform platform = GuiPlatform.FromEnvironment();
        if (screen == null && string.IsNullOrEmpty(display))
        {
            display = Environment.GetEnvironmentVariable("DISPLAY");
        }
        // our own server: Xorg with the window-pixmap module where installed (windows are granted
        // from the pixmaps the server draws them into), else Xvfb (windows are read back)
        bool start = screen != null || string.IsNullOrEmpty(display);
        string? number = string.IsNullOrEmpty(display) ? null : display;
        using Xorg? xorg = start && Xorg.IsAvailable ? StartXorg(screen ?? "1920x1080x24", number) : null;
        using Xvfb? xvfb = start && xorg == null ? Xvfb.WithScreen(screen ?? "1920x1080x24", number) : null;
        display = xorg?.Name ?? xvfb?.Name ?? display!;
        if (print)
        {
            Console.Out.WriteLine(display);
            Console.Out.Flush();
        }
        using GuiAgent agent = GuiAgent.Start(platform, guiDomain, display, xorg?.PixmapSocket);
        return agent.Run();
    }

    /// <summary>The qube's Xorg, or null (with the reason on standard error) where it does not start here: the qube then gets an Xvfb.</summary>
    private static Xorg? StartXorg(string screen, string? display)
    {
        try
        {
            return new Xorg(screen, display);
        }
        catch (InvalidOperationException e)
        {
            Console.Error.WriteLine($"qubes-gui-agent: {e.Message}; starting Xvfb instead");
            return null;
        }
    }
}
