using System;
using System.Collections.Generic;
using System.Text;

namespace Qubes.Gui.Tests;

/// <summary>A host that writes down what the dispatcher asked of it, one line per call.</summary>
internal sealed class RecordingHost : IGuiHost
{
    public List<string> Calls { get; } = [];

    public List<byte[]> Sent { get; } = [];

    public bool AttachSucceeds { get; set; } = true;

    public bool ClipboardChanged { get; set; }

    public byte[]? Clipboard { get; private set; }

    public int Damages { get; private set; }

    private void Add(string call) => Calls.Add(call);

    public void Send(ReadOnlySpan<byte> message) => Sent.Add(message.ToArray());

    public void CreateWindow(int slot, in WindowGeometry geometry, bool overrideRedirect) => Add($"create {slot} {G(geometry)}{(overrideRedirect ? " or" : "")}");

    public void DestroyWindow(int slot) => Add($"destroy {slot}");

    public void MapWindow(int slot, in WindowGeometry geometry, int transientFor, bool overrideRedirect)
        => Add($"map {slot} {G(geometry)} transient {transientFor}{(overrideRedirect ? " or" : "")}");

    public void UnmapWindow(int slot) => Add($"unmap {slot}");

    public void ConfigureWindow(int slot, in WindowGeometry geometry) => Add($"configure {slot} {G(geometry)}");

    public void Damage(int slot, int x, int y, int width, int height)
    {
        Damages++;
        Add($"damage {slot} {x},{y} {width}x{height}");
    }

    public void SetTitle(int slot, ReadOnlySpan<byte> title) => Add($"title {slot} {Encoding.Latin1.GetString(title)}");

    public void SetClass(int slot, ReadOnlySpan<byte> resClass, ReadOnlySpan<byte> resName)
        => Add($"class {slot} {Encoding.Latin1.GetString(resClass)} {Encoding.Latin1.GetString(resName)}");

    public void SetHints(int slot, in SizeHints hints) => Add($"hints {slot} {hints.Flags} min {hints.MinWidth}x{hints.MinHeight} max {hints.MaxWidth}x{hints.MaxHeight} inc {hints.WidthIncrement}x{hints.HeightIncrement} base {hints.BaseWidth}x{hints.BaseHeight}");

    public void SetFlags(int slot, in FlagsRequest request) => Add($"flags {slot} mapped {request.Mapped} set {request.Set} unset {request.Unset} maximize {request.FullscreenAsMaximize}");

    public void SetCursor(int slot, int glyph) => Add($"cursor {slot} {glyph}");

    public void Dock(int slot) => Add($"dock {slot}");

    public bool AttachGrants(int slot, int width, int height, ReadOnlySpan<byte> references)
    {
        Add($"grants {slot} {width}x{height} refs {references.Length / 4} first {(references.Length >= 4 ? BitConverter.ToUInt32(references) : 0)}");
        return AttachSucceeds;
    }

    public bool AttachFrames(int slot, int width, int height, int offset, ReadOnlySpan<byte> frames)
    {
        Add($"frames {slot} {width}x{height} offset {offset} count {frames.Length / 4}");
        return AttachSucceeds;
    }

    public void DetachImage(int slot) => Add($"detach {slot}");

    public void OverrideRedirectRefused(int slot) => Add($"or-refused {slot}");

    public bool ClipboardChangedSince(uint requestTime) => ClipboardChanged;

    public void ClipboardReceived(ReadOnlySpan<byte> data, ClipboardOutcome outcome)
    {
        Clipboard = outcome == ClipboardOutcome.Stored ? data.ToArray() : null;
        Add($"clipboard {outcome} {data.Length}");
    }

    private static string G(in WindowGeometry g) => $"{g.X},{g.Y} {g.Width}x{g.Height}";
}
