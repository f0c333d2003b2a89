using System;

namespace Qubes.Gui;

/// <summary>A window's place and size on dom0's screen.</summary>
public readonly record struct WindowGeometry(int X, int Y, int Width, int Height);

/// <summary>The size hints a window may have (only those the daemon accepted are in <see cref="Flags"/>).</summary>
public readonly record struct SizeHints(uint Flags, int MinWidth, int MinHeight, int MaxWidth, int MaxHeight,
    int WidthIncrement, int HeightIncrement, int BaseWidth, int BaseHeight);

/// <summary>
/// A state change a qube asked for with WINDOW_FLAGS, already masked (§8.3): when the window is
/// not mapped, <see cref="Set"/> replaces its state; when it is, both apply. Fullscreen is to be
/// shown maximized when <see cref="FullscreenAsMaximize"/>.
/// </summary>
public readonly record struct FlagsRequest(bool Mapped, uint Set, uint Unset, bool FullscreenAsMaximize);

/// <summary>What became of the clipboard a qube sent after the user asked to copy it (§9.1).</summary>
public enum ClipboardOutcome
{
    /// <summary>The data is the global clipboard now.</summary>
    Stored,

    /// <summary>The qube's clipboard was empty: the global clipboard is cleared.</summary>
    Cleared,

    /// <summary>More than the qube's limit: the global clipboard is cleared and the user told.</summary>
    TooLarge,
}

/// <summary>
/// What the daemon does on dom0's side for the messages a <see cref="GuiDispatcher{THost}"/> has
/// checked: real windows on the display, the shared pages, the global clipboard. Windows are
/// named by their slot, a small index the dispatcher gives each window of the qube.
/// </summary>
public interface IGuiHost
{
    /// <summary>Sends a message (header and body) to the agent.</summary>
    void Send(ReadOnlySpan<byte> message);

    void CreateWindow(int slot, in WindowGeometry geometry, bool overrideRedirect);

    /// <summary>Destroys the window and releases its shared memory.</summary>
    void DestroyWindow(int slot);

    /// <summary>Shows the window; <paramref name="transientFor"/> is the slot of the window it belongs to, or −1.</summary>
    void MapWindow(int slot, in WindowGeometry geometry, int transientFor, bool overrideRedirect);

    /// <summary>Unmaps the window and releases its shared memory.</summary>
    void UnmapWindow(int slot);

    void ConfigureWindow(int slot, in WindowGeometry geometry);

    /// <summary>A rectangle of the window's image changed (already inside the image).</summary>
    void Damage(int slot, int x, int y, int width, int height);

    /// <summary>The sanitised title, prefixed with the qube's name when the daemon prefixes titles.</summary>
    void SetTitle(int slot, ReadOnlySpan<byte> title);

    /// <summary>The sanitised class and name, each prefixed with the qube's name and ':'.</summary>
    void SetClass(int slot, ReadOnlySpan<byte> resClass, ReadOnlySpan<byte> resName);

    void SetHints(int slot, in SizeHints hints);

    void SetFlags(int slot, in FlagsRequest request);

    /// <summary>The X cursor-font glyph to show over the window, or −1 for the default cursor.</summary>
    void SetCursor(int slot, int glyph);

    /// <summary>Docks the window into the tray if there is one.</summary>
    void Dock(int slot);

    /// <summary>Maps the qube's granted pages (u32 references) as the window's image; false if they could not be mapped.</summary>
    bool AttachGrants(int slot, int width, int height, ReadOnlySpan<byte> references);

    /// <summary>Maps the qube's frames (u32 each, the image at <paramref name="offset"/> in the first) as the window's image.</summary>
    bool AttachFrames(int slot, int width, int height, int offset, ReadOnlySpan<byte> frames);

    /// <summary>Releases the window's image.</summary>
    void DetachImage(int slot);

    /// <summary>Once per qube: an override-redirect request was refused (the window is managed normally).</summary>
    void OverrideRedirectRefused(int slot);

    /// <summary>Whether another clipboard operation took place after the X time <paramref name="requestTime"/>.</summary>
    bool ClipboardChangedSince(uint requestTime);

    /// <summary>The qube answered the user's copy: store, clear, or report the clipboard too large.</summary>
    void ClipboardReceived(ReadOnlySpan<byte> data, ClipboardOutcome outcome);
}
