using System;

namespace Qubes.Gui;

/// <summary>
/// A host that only counts what the dispatcher asks of it, allocating nothing: for the steady-state
/// allocation test, the dispatch benchmark and the fuzz target.
/// </summary>
internal sealed class CountingHost : IGuiHost
{
    public long Calls { get; private set; }

    public long Damages { get; private set; }

    public long SentBytes { get; private set; }

    public void Send(ReadOnlySpan<byte> message) => SentBytes += message.Length;

    public void CreateWindow(int slot, in WindowGeometry geometry, bool overrideRedirect) => Calls++;

    public void DestroyWindow(int slot) => Calls++;

    public void MapWindow(int slot, in WindowGeometry geometry, int transientFor, bool overrideRedirect) => Calls++;

    public void UnmapWindow(int slot) => Calls++;

    public void ConfigureWindow(int slot, in WindowGeometry geometry) => Calls++;

    public void Damage(int slot, int x, int y, int width, int height) => Damages++;

    public void SetTitle(int slot, ReadOnlySpan<byte> title) => Calls++;

    public void SetClass(int slot, ReadOnlySpan<byte> resClass, ReadOnlySpan<byte> resName) => Calls++;

    public void SetHints(int slot, in SizeHints hints) => Calls++;

    public void SetFlags(int slot, in FlagsRequest request) => Calls++;

    public void SetCursor(int slot, int glyph) => Calls++;

    public void Dock(int slot) => Calls++;

    public bool AttachGrants(int slot, int width, int height, ReadOnlySpan<byte> references) => ++Calls > 0;

    public bool AttachFrames(int slot, int width, int height, int offset, ReadOnlySpan<byte> frames) => ++Calls > 0;

    public void DetachImage(int slot) => Calls++;

    public void OverrideRedirectRefused(int slot) => Calls++;

    public bool ClipboardChangedSince(uint requestTime) => false;

    public void ClipboardReceived(ReadOnlySpan<byte> data, ClipboardOutcome outcome) => Calls++;
}
