using System;
using System.Text;

namespace Qubes.Gui;

/// <summary>The per-qube settings of a GUI daemon that the message checks depend on.</summary>
public sealed class GuiDaemonOptions
{
    /// <summary>
    /// Most windows a qube may have at once. The protocol sets none; past this the qube loses its
    /// GUI rather than dom0 its memory.
    /// </summary>
    public const int DefaultMaxWindows = 10000;

    public GuiDaemonOptions(string vmName) => VmName = Encoding.UTF8.GetBytes(vmName);

    /// <summary>The qube's name, prefixed to titles and classes.</summary>
    public ReadOnlyMemory<byte> VmName { get; }

    /// <summary>Titles become <c>[name] title</c> (upstream's <c>-T</c>; on by default here).</summary>
    public bool PrefixTitles { get; init; } = true;

    /// <summary>Keep valid UTF-8 in titles (feature <c>gui-allow-utf8-titles</c>; off by default).</summary>
    public bool AllowUtf8Titles { get; init; }

    /// <summary>Refuse override-redirect windows larger than 90% of the work area (on by default).</summary>
    public bool OverrideRedirectProtection { get; init; } = true;

    /// <summary>No override-redirect windows at all for this qube.</summary>
    public bool OverrideRedirectDisabled { get; init; }

    /// <summary>Real fullscreen allowed (feature <c>gui-allow-fullscreen</c>; off by default: maximized instead).</summary>
    public bool AllowFullscreen { get; init; }

    /// <summary>Largest clipboard taken from the qube, 256 to 256000 (default 64000).</summary>
    public int ClipboardLimit { get; init; } = GuiProtocol.DefaultClipboardBufferSize;

    /// <summary>The daemon runs in dom0, where MFNDUMP may map frames.</summary>
    public bool InDom0 { get; init; } = true;

    /// <summary>The daemon shows nothing (windows are followed but never mapped).</summary>
    public bool Invisible { get; init; }

    /// <summary>The size of dom0's screen.</summary>
    public int ScreenWidth { get; init; } = 1920;

    public int ScreenHeight { get; init; } = 1080;

    /// <summary>The part of the screen windows may use (without panels); the whole screen by default.</summary>
    public WindowGeometry? WorkArea { get; init; }

    public int MaxWindows { get; init; } = DefaultMaxWindows;

    internal WindowGeometry Area => WorkArea ?? new(0, 0, ScreenWidth, ScreenHeight);

    /// <summary>Checks the values against the protocol's bounds.</summary>
    public void Validate()
    {
        if (ClipboardLimit is < GuiProtocol.MinClipboardBufferSize or > GuiProtocol.MaxClipboardBufferSize)
        {
            throw new ArgumentException($"the clipboard limit must be from {GuiProtocol.MinClipboardBufferSize} to {GuiProtocol.MaxClipboardBufferSize} bytes, not {ClipboardLimit}");
        }
        WindowGeometry area = Area;
        if (ScreenWidth <= 0 || ScreenHeight <= 0 || area.Width <= 0 || area.Height <= 0)
        {
            throw new ArgumentException("the screen and its work area must not be empty");
        }
        if (MaxWindows <= 0)
        {
            throw new ArgumentException("a qube must be allowed at least one window");
        }
    }
}
