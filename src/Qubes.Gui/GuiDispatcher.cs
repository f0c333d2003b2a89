using System;
using System.Buffers.Binary;
using System.Collections.Generic;

namespace Qubes.Gui;

/// <summary>What became of a message, or why none was taken.</summary>
public enum DispatchStatus
{
    /// <summary>Not a whole message yet (nor enough of one to refuse it): read more.</summary>
    NeedMore,

    /// <summary>Checked and applied, possibly with values clamped.</summary>
    Applied,

    /// <summary>Read and dropped (or a field of it); <see cref="DispatchResult.Fault"/> says why.</summary>
    Ignored,

    /// <summary>Read and not applied: the user decides whether the qube may go on (class VERIFY).</summary>
    Verify,

    /// <summary>The qube broke the protocol: close its connection; its windows go.</summary>
    Fatal,
}

/// <summary>The outcome of one <see cref="GuiDispatcher{THost}.Dispatch"/>.</summary>
public readonly record struct DispatchResult(DispatchStatus Status, int Consumed, GuiFault Fault, uint Type, uint Window);

/// <summary>
/// The daemon's side of the GUI protocol for one qube: takes the agent's messages from a buffer,
/// checks each in the order of spec gui-protocol §8.2 and the rules of §8.3-§12, keeps the
/// qube's windows, and hands what passed to <typeparamref name="THost"/>.
/// <para>
/// Nothing the qube sends is trusted: lengths come from the message type except where a rule
/// allows the claimed length after checking it, every value is bounded before use, and a
/// message is taken only whole (at most <see cref="GuiProtocol.MaxWindowDumpMessage"/> bytes; a
/// caller's buffer of <see cref="MaxMessage"/> bytes always suffices). Dispatch allocates nothing:
/// the window table and its index are made at construction for the most windows a qube may have.
/// </para>
/// </summary>
public sealed class GuiDispatcher<THost> where THost : IGuiHost
{
    /// <summary>The longest message the dispatcher takes whole: a clipboard at its limit or a full WINDOW_DUMP.</summary>
    public const int MaxMessage = GuiProtocol.MaxWindowDumpMessage;

    /// <summary>
    /// The frame in the qube's colour the daemon draws around each window; an override-redirect
    /// window is kept on screen with its frame.
    /// </summary>
    public const int FrameWidth = 2;

    private struct Window
    {
        public uint Id;
        public bool Used, Mapped, Docked, OverrideRedirect, ConfigurePending, HasImage;
        public int X, Y, Width, Height;
        public int ImageWidth, ImageHeight;
        public int TransientFor;
        public int PendingX, PendingY, PendingWidth, PendingHeight;

        public readonly WindowGeometry Geometry => new(X, Y, Width, Height);
    }

    private readonly THost _host;
    private readonly GuiDaemonOptions _options;
    private readonly uint _version;
    private readonly Window[] _windows;
    private readonly Dictionary<uint, int> _slots;
    private readonly Stack<int> _free;
    private readonly byte[] _title = new byte[GuiProtocol.NameSize * 2 + 8];
    private readonly byte[] _class = new byte[GuiProtocol.ClassFieldSize * 2 + 4];
    private readonly byte[] _name = new byte[GuiProtocol.ClassFieldSize * 2 + 4];
    private readonly byte[] _out = new byte[64];
    private int _highest;
    private bool _overrideRedirectRefusalShown;
    private bool _clipboardRequested;
    private uint _clipboardRequestTime;

    public GuiDispatcher(THost host, GuiDaemonOptions options, uint sessionVersion)
    {
        options.Validate();
        _host = host;
        _options = options;
        _version = sessionVersion;
        _windows = new Window[options.MaxWindows];
        _slots = new Dictionary<uint, int>(options.MaxWindows);
        _free = new Stack<int>(options.MaxWindows);
        for (int slot = options.MaxWindows - 1; slot >= 0; slot--)
        {
            _free.Push(slot);
        }
    }

    /// <summary>The session's protocol version.</summary>
    public uint Version => _version;

    /// <summary>How many windows the qube has.</summary>
    public int WindowCount => _slots.Count;

    /// <summary>The qube's id of the window in <paramref name="slot"/> (for the messages to the agent).</summary>
    public uint WindowId(int slot) => _windows[slot].Id;

    /// <summary>Whether <paramref name="slot"/> holds a window.</summary>
    public bool IsWindow(int slot) => (uint)slot < (uint)_windows.Length && _windows[slot].Used;

    /// <summary>The window's geometry on dom0's screen.</summary>
    public WindowGeometry Geometry(int slot) => _windows[slot].Geometry;

    public bool IsMapped(int slot) => _windows[slot].Mapped;

    public bool IsOverrideRedirect(int slot) => _windows[slot].OverrideRedirect;

    /// <summary>The size of the window's attached image (0×0 without one).</summary>
    public (int Width, int Height) ImageSize(int slot) => _windows[slot].HasImage ? (_windows[slot].ImageWidth, _windows[slot].ImageHeight) : (0, 0);

    /// <summary>The slot of the qube's window <paramref name="id"/>, or −1.</summary>
    public int Slot(uint id) => _slots.TryGetValue(id, out int slot) ? slot : -1;

    /// <summary>
    /// Takes the first message of <paramref name="input"/>: checks it, applies it, and says how
    /// many bytes it was. On <see cref="DispatchStatus.NeedMore"/> nothing was consumed; on
    /// <see cref="DispatchStatus.Fatal"/> the connection must end.
    /// </summary>
    public DispatchResult Dispatch(ReadOnlySpan<byte> input)
    {
        if (input.Length < GuiProtocol.HeaderSize)
        {
            return new(DispatchStatus.NeedMore, 0, GuiFault.None, 0, 0);
        }
        uint type = BinaryPrimitives.ReadUInt32LittleEndian(input);
        uint id = BinaryPrimitives.ReadUInt32LittleEndian(input[4..]);
        uint length = BinaryPrimitives.ReadUInt32LittleEndian(input[8..]);
        ReadOnlySpan<byte> rest = input[GuiProtocol.HeaderSize..];
        if (type == (uint)MessageType.ClipboardData)
        {
            return Result(ClipboardData(rest, length), type, id);
        }
        int slot = Slot(id);
        if (type == (uint)MessageType.Create)
        {
            if (slot >= 0)
            {
                return Fatal(GuiFault.WindowExists, type, id);
            }
            if (_free.Count == 0)
            {
                return Fatal(GuiFault.TooManyWindows, type, id);
            }
        }
        else if (slot < 0)
        {
            return Fatal(GuiFault.UnknownWindow, type, id);
        }
        int size = GuiProtocol.FixedBodySize(type);
        GuiFault lengthWarning = GuiFault.None;
        if (size >= 0 && length != (uint)size)
        {
            if (_version >= GuiProtocol.StrictLengths)
            {
                return Fatal(GuiFault.LengthMismatch, type, id);
            }
            lengthWarning = GuiFault.LengthWarning;
        }
        (DispatchStatus status, int consumed, GuiFault fault) outcome;
        switch ((MessageType)type)
        {
            case MessageType.MfnDump:
                outcome = MfnDump(slot, rest, length);
                break;
            case MessageType.WindowDump:
                outcome = WindowDump(slot, rest, length);
                break;
            case MessageType.Create or MessageType.Destroy or MessageType.Map or MessageType.Unmap or MessageType.Configure
                or MessageType.ShmImage or MessageType.WmName or MessageType.Dock or MessageType.WindowHints
                or MessageType.WindowFlags or MessageType.WmClass or MessageType.Cursor:
                if (rest.Length < size)
                {
                    return new(DispatchStatus.NeedMore, 0, GuiFault.None, type, id);
                }
                outcome = Fixed((MessageType)type, id, slot, rest[..size]);
                outcome.consumed = size;
                break;
            default:
                // input events, requests and acknowledgements go the other way; anything else is unknown
                return Fatal(GuiFault.UnexpectedType, type, id);
        }
        if (outcome.status == DispatchStatus.Applied && lengthWarning != GuiFault.None)
        {
            outcome.fault = lengthWarning;
        }
        return Result(outcome, type, id);
    }

    private static DispatchResult Result((DispatchStatus Status, int Consumed, GuiFault Fault) outcome, uint type, uint id)
        => new(outcome.Status, outcome.Status is DispatchStatus.NeedMore or DispatchStatus.Fatal ? 0 : GuiProtocol.HeaderSize + outcome.Consumed, outcome.Fault, type, id);

    private static DispatchResult Fatal(GuiFault fault, uint type, uint id) => new(DispatchStatus.Fatal, 0, fault, type, id);

    private static (DispatchStatus, int, GuiFault) Applied => (DispatchStatus.Applied, 0, GuiFault.None);

    private static (DispatchStatus, int, GuiFault) Ignored(GuiFault fault) => (DispatchStatus.Ignored, 0, fault);

    private static (DispatchStatus, int, GuiFault) Verify(GuiFault fault) => (DispatchStatus.Verify, 0, fault);

    private static (DispatchStatus, int, GuiFault) FatalOutcome(GuiFault fault) => (DispatchStatus.Fatal, 0, fault);

    private (DispatchStatus status, int consumed, GuiFault fault) Fixed(MessageType type, uint id, int slot, ReadOnlySpan<byte> body) => type switch
    {
        MessageType.Create => Create(id, body),
        MessageType.Destroy => Destroy(slot),
        MessageType.Map => Map(slot, body),
        MessageType.Unmap => Unmap(slot),
        MessageType.Configure => Configure(slot, body),
        MessageType.ShmImage => ShmImage(slot, body),
        MessageType.WmName => WmName(slot, body),
        MessageType.WmClass => WmClass(slot, body),
        MessageType.Dock => Dock(slot),
        MessageType.WindowHints => WindowHints(slot, body),
        MessageType.WindowFlags => WindowFlags(slot, body),
        _ => Cursor(slot, body),
    };

    private (DispatchStatus, int, GuiFault) Create(uint id, ReadOnlySpan<byte> body)
    {
        int width = GuiProtocol.I32(body, 2), height = GuiProtocol.I32(body, 3);
        if (width < 0 || height < 0)
        {
            return Verify(GuiFault.NegativeSize);
        }
        int slot = _free.Pop();
        _slots.Add(id, slot);
        _highest = Math.Max(_highest, slot + 1);
        ref Window w = ref _windows[slot];
        w = default;
        w.Used = true;
        w.Id = id;
        w.TransientFor = -1;
        w.Width = Math.Min(width, GuiProtocol.MaxWindowWidth);
        w.Height = Math.Min(height, GuiProtocol.MaxWindowHeight);
        w.X = Math.Clamp(GuiProtocol.I32(body, 0), -GuiProtocol.MaxWindowWidth, GuiProtocol.MaxWindowWidth);
        w.Y = Math.Clamp(GuiProtocol.I32(body, 1), -GuiProtocol.MaxWindowHeight, GuiProtocol.MaxWindowHeight);
        // body field 4, the parent, means nothing to the daemon
        w.OverrideRedirect = GrantOverrideRedirect(slot, GuiProtocol.U32(body, 5) != 0);
        if (w.OverrideRedirect)
        {
            ForceOnScreen(ref w);
        }
        _host.CreateWindow(slot, w.Geometry, w.OverrideRedirect);
        return Applied;
    }

    /// <summary>
    /// Whether a window that asks to be override-redirect may be (§8.3 CREATE 4): not turned off
    /// for the qube, not docked, and, with the protection on, no larger than 90% of the work area.
    /// </summary>
    private bool GrantOverrideRedirect(int slot, bool requested)
    {
        if (!requested)
        {
            return false;
        }
        ref Window w = ref _windows[slot];
        WindowGeometry area = _options.Area;
        bool granted = !_options.OverrideRedirectDisabled && !w.Docked
            && (!_options.OverrideRedirectProtection
                || (long)w.Width * w.Height <= (long)area.Width * area.Height * GuiProtocol.MaxOverrideRedirectPercentage / 100);
        if (!granted && !_overrideRedirectRefusalShown)
        {
            _overrideRedirectRefusalShown = true;
            _host.OverrideRedirectRefused(slot);
        }
        return granted;
    }

    /// <summary>
    /// Moves and shrinks an override-redirect window so that it lies inside the work area, where
    /// nothing frames it but the daemon's own border. One wholly off the screen covers nothing and
    /// stays where it is.
    /// </summary>
    private void ForceOnScreen(ref Window w)
    {
        if (w.X >= _options.ScreenWidth || w.Y >= _options.ScreenHeight || w.X + w.Width <= 0 || w.Y + w.Height <= 0)
        {
            return;
        }
        WindowGeometry area = _options.Area;
        int border = FrameWidth;
        int maxWidth = area.Width - 2 * border, maxHeight = area.Height - 2 * border;
        w.Width = Math.Min(w.Width, maxWidth);
        w.Height = Math.Min(w.Height, maxHeight);
        w.X = Math.Clamp(w.X, area.X + border, area.X + border + maxWidth - w.Width);
        w.Y = Math.Clamp(w.Y, area.Y + border, area.Y + border + maxHeight - w.Height);
    }

    private (DispatchStatus, int, GuiFault) Destroy(int slot)
    {
        for (int other = 0; other < _highest; other++)
        {
            if (_windows[other].TransientFor == slot)
            {
                _windows[other].TransientFor = -1;
            }
        }
        uint id = _windows[slot].Id;
        _host.DestroyWindow(slot);
        _windows[slot] = default;
        _windows[slot].TransientFor = -1;
        _slots.Remove(id);
        _free.Push(slot);
        if (_version >= GuiProtocol.BidirectionalDestroy)
        {
            GuiProtocol.WriteHeader(_out, MessageType.Destroy, id, 0);
            _host.Send(_out.AsSpan(0, GuiProtocol.HeaderSize));
        }
        return Applied;
    }

    private (DispatchStatus, int, GuiFault) Map(int slot, ReadOnlySpan<byte> body)
    {
        ref Window w = ref _windows[slot];
        if (w.Mapped || w.Docked || _options.Invisible)
        {
            return Ignored(w.Docked ? GuiFault.Docked : GuiFault.AlreadyMapped);
        }
        uint transientFor = GuiProtocol.U32(body, 0);
        int transient = transientFor != 0 ? Slot(transientFor) : -1;
        w.TransientFor = transient == slot ? -1 : transient;
        w.OverrideRedirect = GrantOverrideRedirect(slot, GuiProtocol.U32(body, 1) != 0);
        if (w.OverrideRedirect)
        {
            ForceOnScreen(ref w);
        }
        w.Mapped = true;
        _host.MapWindow(slot, w.Geometry, w.TransientFor, w.OverrideRedirect);
        return Applied;
    }

    private (DispatchStatus, int, GuiFault) Unmap(int slot)
    {
        ref Window w = ref _windows[slot];
        if (w.Docked)
        {
            return Ignored(GuiFault.Docked);
        }
        w.Mapped = false;
        w.HasImage = false;
        _host.UnmapWindow(slot);
        return Applied;
    }

    private (DispatchStatus, int, GuiFault) Configure(int slot, ReadOnlySpan<byte> body)
    {
        ref Window w = ref _windows[slot];
        int width = (int)Math.Min(GuiProtocol.U32(body, 2), GuiProtocol.MaxWindowWidth);
        int height = (int)Math.Min(GuiProtocol.U32(body, 3), GuiProtocol.MaxWindowHeight);
        if (width <= 0 || height <= 0)
        {
            return Verify(GuiFault.EmptySize);
        }
        int x = Math.Clamp(GuiProtocol.I32(body, 0), -GuiProtocol.MaxWindowWidth, GuiProtocol.MaxWindowWidth);
        int y = Math.Clamp(GuiProtocol.I32(body, 1), -GuiProtocol.MaxWindowHeight, GuiProtocol.MaxWindowHeight);
        // field 4, override-redirect, cannot change this way
        bool same = x == w.X && y == w.Y && width == w.Width && height == w.Height;
        if (w.Docked)
        {
            if (!same)
            {
                SendConfigure(w.Id, w.Geometry, w.OverrideRedirect);
            }
            return same ? Applied : Ignored(GuiFault.Docked);
        }
        if (w.ConfigurePending)
        {
            if (x != w.PendingX || y != w.PendingY || width != w.PendingWidth || height != w.PendingHeight)
            {
                // the agent has not seen the daemon's last change yet: insist on it
                SendConfigure(w.Id, new(w.PendingX, w.PendingY, w.PendingWidth, w.PendingHeight), w.OverrideRedirect);
                return Applied;
            }
            w.ConfigurePending = false;
        }
        w.X = x;
        w.Y = y;
        w.Width = width;
        w.Height = height;
        if (w.OverrideRedirect)
        {
            ForceOnScreen(ref w);
        }
        _host.ConfigureWindow(slot, w.Geometry);
        return Applied;
    }

    private (DispatchStatus, int, GuiFault) ShmImage(int slot, ReadOnlySpan<byte> body)
    {
        ref Window w = ref _windows[slot];
        if (!w.Mapped && !w.Docked)
        {
            return Ignored(GuiFault.NotMappable);
        }
        int x = GuiProtocol.I32(body, 0), y = GuiProtocol.I32(body, 1), width = GuiProtocol.I32(body, 2), height = GuiProtocol.I32(body, 3);
        if (x < 0 || y < 0 || width < 0 || height < 0)
        {
            return Ignored(GuiFault.NegativeDamage);
        }
        int imageWidth = w.HasImage ? w.ImageWidth : 0, imageHeight = w.HasImage ? w.ImageHeight : 0;
        x = Math.Min(x, imageWidth);
        y = Math.Min(y, imageHeight);
        width = Math.Min(width, imageWidth - x);
        height = Math.Min(height, imageHeight - y);
        if (width > 0 && height > 0)
        {
            _host.Damage(slot, x, y, width, height);
        }
        return Applied;
    }

    private (DispatchStatus, int, GuiFault) WmName(int slot, ReadOnlySpan<byte> body)
    {
        Span<byte> title = _title;
        int start = 0;
        if (_options.PrefixTitles)
        {
            title[start++] = (byte)'[';
            ReadOnlySpan<byte> vm = _options.VmName.Span;
            int n = Math.Min(vm.Length, GuiProtocol.NameSize);
            vm[..n].CopyTo(title[start..]);
            start += n;
            title[start++] = (byte)']';
            title[start++] = (byte)' ';
        }
        Span<byte> name = title.Slice(start, GuiProtocol.NameSize);
        body.CopyTo(name);
        int length = TextSanitizer.PrepareTitle(name, _options.AllowUtf8Titles);
        _host.SetTitle(slot, title[..(start + length)]);
        return Applied;
    }

    private (DispatchStatus, int, GuiFault) WmClass(int slot, ReadOnlySpan<byte> body)
    {
        if (_windows[slot].Mapped)
        {
            return Ignored(GuiFault.AlreadyMapped);
        }
        int classLength = PrefixedClassField(_class, body[..GuiProtocol.ClassFieldSize]);
        int nameLength = PrefixedClassField(_name, body[GuiProtocol.ClassFieldSize..]);
        _host.SetClass(slot, _class.AsSpan(0, classLength), _name.AsSpan(0, nameLength));
        return Applied;
    }

    /// <summary>Writes <c>vmname:field</c>, the field cut at its 64th byte and sanitised without UTF-8.</summary>
    private int PrefixedClassField(Span<byte> destination, ReadOnlySpan<byte> field)
    {
        ReadOnlySpan<byte> vm = _options.VmName.Span;
        int n = Math.Min(vm.Length, GuiProtocol.ClassFieldSize);
        vm[..n].CopyTo(destination);
        destination[n++] = (byte)':';
        Span<byte> value = destination.Slice(n, GuiProtocol.ClassFieldSize);
        field.CopyTo(value);
        value[^1] = 0;
        return n + TextSanitizer.Sanitize(value, allowUtf8: false);
    }

    private (DispatchStatus, int, GuiFault) Dock(int slot)
    {
        ref Window w = ref _windows[slot];
        if (w.Mapped)
        {
            return Ignored(GuiFault.AlreadyMapped);
        }
        w.OverrideRedirect = false;
        _host.Dock(slot);
        w.Docked = true;
        return Applied;
    }

    private (DispatchStatus, int, GuiFault) WindowHints(int slot, ReadOnlySpan<byte> body)
    {
        uint flags = GuiProtocol.U32(body, 0);
        uint minWidth = GuiProtocol.U32(body, 1), minHeight = GuiProtocol.U32(body, 2);
        uint maxWidth = GuiProtocol.U32(body, 3), maxHeight = GuiProtocol.U32(body, 4);
        uint widthIncrement = GuiProtocol.U32(body, 5), heightIncrement = GuiProtocol.U32(body, 6);
        uint baseWidth = GuiProtocol.U32(body, 7), baseHeight = GuiProtocol.U32(body, 8);
        uint accepted = flags & (GuiProtocol.PPosition | GuiProtocol.USPosition);
        if ((flags & GuiProtocol.PMinSize) != 0 && minWidth <= GuiProtocol.MaxWindowWidth && minHeight <= GuiProtocol.MaxWindowHeight)
        {
            accepted |= GuiProtocol.PMinSize;
        }
        if ((flags & GuiProtocol.PMaxSize) != 0 && maxWidth is > 0 and <= GuiProtocol.MaxWindowWidth && maxHeight is > 0 and <= GuiProtocol.MaxWindowHeight)
        {
            accepted |= GuiProtocol.PMaxSize;
        }
        if ((flags & GuiProtocol.PResizeInc) != 0 && widthIncrement < GuiProtocol.MaxWindowWidth && heightIncrement < GuiProtocol.MaxWindowHeight)
        {
            accepted |= GuiProtocol.PResizeInc;
        }
        if ((flags & GuiProtocol.PBaseSize) != 0 && baseWidth <= GuiProtocol.MaxWindowWidth && baseHeight <= GuiProtocol.MaxWindowHeight)
        {
            accepted |= GuiProtocol.PBaseSize;
        }
        // a value goes to the host only with its accepted bit; the others are zero
        _host.SetHints(slot, new SizeHints(accepted,
            (accepted & GuiProtocol.PMinSize) != 0 ? (int)minWidth : 0, (accepted & GuiProtocol.PMinSize) != 0 ? (int)minHeight : 0,
            (accepted & GuiProtocol.PMaxSize) != 0 ? (int)maxWidth : 0, (accepted & GuiProtocol.PMaxSize) != 0 ? (int)maxHeight : 0,
            (accepted & GuiProtocol.PResizeInc) != 0 ? (int)widthIncrement : 0, (accepted & GuiProtocol.PResizeInc) != 0 ? (int)heightIncrement : 0,
            (accepted & GuiProtocol.PBaseSize) != 0 ? (int)baseWidth : 0, (accepted & GuiProtocol.PBaseSize) != 0 ? (int)baseHeight : 0));
        return Applied;
    }

    private (DispatchStatus, int, GuiFault) WindowFlags(int slot, ReadOnlySpan<byte> body)
    {
        uint set = GuiProtocol.U32(body, 0), unset = GuiProtocol.U32(body, 1);
        if ((set & unset) != 0)
        {
            return Verify(GuiFault.ConflictingFlags);
        }
        set &= GuiProtocol.FlagFullscreen | GuiProtocol.FlagDemandsAttention | GuiProtocol.FlagMinimize;
        unset &= GuiProtocol.FlagFullscreen | GuiProtocol.FlagDemandsAttention;
        bool mapped = _windows[slot].Mapped;
        if (mapped && (set & GuiProtocol.FlagMinimize) != 0)
        {
            set &= ~GuiProtocol.FlagFullscreen;
        }
        _host.SetFlags(slot, new FlagsRequest(mapped, set, unset, !_options.AllowFullscreen));
        return Applied;
    }

    private (DispatchStatus, int, GuiFault) Cursor(int slot, ReadOnlySpan<byte> body)
    {
        uint cursor = GuiProtocol.U32(body, 0);
        int glyph;
        if ((cursor & GuiProtocol.CursorX11) != 0)
        {
            if (cursor >= GuiProtocol.CursorX11Max)
            {
                return Verify(GuiFault.InvalidCursor);
            }
            glyph = (int)(cursor & ~GuiProtocol.CursorX11);
        }
        else if (cursor != GuiProtocol.CursorDefault)
        {
            return Verify(GuiFault.InvalidCursor);
        }
        else
        {
            glyph = -1;
        }
        _host.SetCursor(slot, glyph);
        return Applied;
    }

    /// <summary>Releases the window's image before a new one is attached (§11).</summary>
    private void ReleaseImage(int slot)
    {
        ref Window w = ref _windows[slot];
        if (w.HasImage)
        {
            w.HasImage = false;
            _host.DetachImage(slot);
        }
    }

    private (DispatchStatus, int, GuiFault) MfnDump(int slot, ReadOnlySpan<byte> rest, uint length)
    {
        if (_version >= GuiProtocol.StrictLengths && length < GuiProtocol.MfnDumpHeaderSize)
        {
            return FatalOutcome(GuiFault.DumpTooShort);
        }
        if (rest.Length < GuiProtocol.MfnDumpHeaderSize)
        {
            return (DispatchStatus.NeedMore, 0, GuiFault.None);
        }
        if (!_options.InDom0)
        {
            return FatalOutcome(GuiFault.FramesOutsideDom0);
        }
        uint width = GuiProtocol.U32(rest, 1), height = GuiProtocol.U32(rest, 2);
        uint offset = GuiProtocol.U32(rest, 4), count = GuiProtocol.U32(rest, 5);
        if (count > GuiProtocol.MaxGrantRefs)
        {
            return FatalOutcome(GuiFault.FramesCount);
        }
        if (width > GuiProtocol.MaxWindowWidth || height > GuiProtocol.MaxWindowHeight)
        {
            return FatalOutcome(GuiFault.FramesSize);
        }
        if (offset >= GuiProtocol.PageSize)
        {
            return FatalOutcome(GuiFault.FramesOffset);
        }
        if (length != GuiProtocol.MfnDumpHeaderSize + 4 * count && _version >= GuiProtocol.StrictLengths)
        {
            return FatalOutcome(GuiFault.LengthMismatch);
        }
        int total = GuiProtocol.MfnDumpHeaderSize + 4 * (int)count;
        if (rest.Length < total)
        {
            return (DispatchStatus.NeedMore, 0, GuiFault.None);
        }
        ReleaseImage(slot);
        if ((long)count * GuiProtocol.PageSize < (long)width * height * GuiProtocol.BytesPerPixel + offset)
        {
            return FatalOutcome(GuiFault.FramesTooFew);
        }
        ref Window w = ref _windows[slot];
        w.ImageWidth = (int)width;
        w.ImageHeight = (int)height;
        w.HasImage = _host.AttachFrames(slot, (int)width, (int)height, (int)offset, rest[GuiProtocol.MfnDumpHeaderSize..total]);
        GuiFault fault = length != GuiProtocol.MfnDumpHeaderSize + 4 * count ? GuiFault.LengthWarning : GuiFault.None;
        return (DispatchStatus.Applied, total, fault);
    }

    private (DispatchStatus, int, GuiFault) WindowDump(int slot, ReadOnlySpan<byte> rest, uint length)
    {
        if (length < GuiProtocol.WindowDumpHeaderSize)
        {
            return FatalOutcome(GuiFault.DumpTooShort);
        }
        if (rest.Length < GuiProtocol.WindowDumpHeaderSize)
        {
            return (DispatchStatus.NeedMore, 0, GuiFault.None);
        }
        if (GuiProtocol.U32(rest, 0) != GuiProtocol.WindowDumpGrantRefs)
        {
            return FatalOutcome(GuiFault.DumpType);
        }
        uint width = GuiProtocol.U32(rest, 1), height = GuiProtocol.U32(rest, 2);
        // field 3, bits per pixel, is not checked: the image is always 32 bits
        if (width > GuiProtocol.MaxWindowWidth || height > GuiProtocol.MaxWindowHeight)
        {
            return FatalOutcome(GuiFault.DumpSize);
        }
        uint references = length - GuiProtocol.WindowDumpHeaderSize;
        if (references > GuiProtocol.MaxGrantRefs * 4u || references % 4 != 0)
        {
            return FatalOutcome(GuiFault.DumpReferences);
        }
        int total = GuiProtocol.WindowDumpHeaderSize + (int)references;
        if (rest.Length < total)
        {
            return (DispatchStatus.NeedMore, 0, GuiFault.None);
        }
        ReleaseImage(slot);
        if ((long)(references / 4) * GuiProtocol.PageSize < (long)width * height * GuiProtocol.BytesPerPixel)
        {
            return FatalOutcome(GuiFault.DumpTooFewReferences);
        }
        ref Window w = ref _windows[slot];
        w.ImageWidth = (int)width;
        w.ImageHeight = (int)height;
        w.HasImage = _host.AttachGrants(slot, (int)width, (int)height, rest[GuiProtocol.WindowDumpHeaderSize..total]);
        if (_version >= GuiProtocol.WindowDumpAckVersion)
        {
            // attached or not, the agent may now release its grants
            GuiProtocol.WriteHeader(_out, MessageType.WindowDumpAck, w.Id, 0);
            _host.Send(_out.AsSpan(0, GuiProtocol.HeaderSize));
        }
        return (DispatchStatus.Applied, total, GuiFault.None);
    }

    private (DispatchStatus, int, GuiFault) ClipboardData(ReadOnlySpan<byte> rest, uint length)
    {
        if (_version < GuiProtocol.Clipboard4x && length > GuiProtocol.MaxClipboardSizeOld)
        {
            return FatalOutcome(GuiFault.ClipboardTooLong);
        }
        if (length > GuiProtocol.MaxClipboardBufferSize + 1)
        {
            return FatalOutcome(GuiFault.ClipboardTooLong);
        }
        bool oversized = length > (uint)_options.ClipboardLimit;
        if (rest.Length < length)
        {
            return (DispatchStatus.NeedMore, 0, GuiFault.None);
        }
        ReadOnlySpan<byte> data = rest[..(int)length];
        if (!_clipboardRequested)
        {
            return (DispatchStatus.Ignored, (int)length, GuiFault.ClipboardNotRequested);
        }
        _clipboardRequested = false;
        if (oversized)
        {
            _host.ClipboardReceived(default, ClipboardOutcome.TooLarge);
        }
        else if (length == 0)
        {
            _host.ClipboardReceived(default, ClipboardOutcome.Cleared);
        }
        else if (_host.ClipboardChangedSince(_clipboardRequestTime))
        {
            return (DispatchStatus.Ignored, (int)length, GuiFault.ClipboardSuperseded);
        }
        else
        {
            _host.ClipboardReceived(data, ClipboardOutcome.Stored);
        }
        return (DispatchStatus.Applied, (int)length, GuiFault.None);
    }

    /// <summary>
    /// The user pressed the copy keys in the window in <paramref name="slot"/> at X time
    /// <paramref name="time"/>: asks the agent for its clipboard.
    /// </summary>
    public void RequestClipboard(int slot, uint time)
    {
        _clipboardRequested = true;
        _clipboardRequestTime = time;
        GuiProtocol.WriteHeader(_out, MessageType.ClipboardReq, _windows[slot].Id, 0);
        _host.Send(_out.AsSpan(0, GuiProtocol.HeaderSize));
    }

    /// <summary>
    /// Pastes <paramref name="data"/> (the global clipboard, which the policy allowed for this
    /// qube) into the window in <paramref name="slot"/>. Nothing is sent for an empty clipboard.
    /// </summary>
    public void Paste(int slot, ReadOnlySpan<byte> data)
    {
        if (data.IsEmpty)
        {
            return;
        }
        // agents before 1.2 read the length from the window field
        uint window = _version >= GuiProtocol.ClipboardDataLenInLen ? _windows[slot].Id : (uint)data.Length;
        GuiProtocol.WriteHeader(_out, MessageType.ClipboardData, window, (uint)data.Length);
        _host.Send(_out.AsSpan(0, GuiProtocol.HeaderSize));
        _host.Send(data);
    }

    /// <summary>
    /// The user moved or resized the window in <paramref name="slot"/> on dom0's screen: tells the
    /// agent, whose CONFIGURE with the same geometry acknowledges it.
    /// </summary>
    public void RequestConfigure(int slot, in WindowGeometry geometry)
    {
        ref Window w = ref _windows[slot];
        int width = Math.Clamp(geometry.Width, 1, GuiProtocol.MaxWindowWidth), height = Math.Clamp(geometry.Height, 1, GuiProtocol.MaxWindowHeight);
        int x = Math.Clamp(geometry.X, -GuiProtocol.MaxWindowWidth, GuiProtocol.MaxWindowWidth);
        int y = Math.Clamp(geometry.Y, -GuiProtocol.MaxWindowHeight, GuiProtocol.MaxWindowHeight);
        if (w.ConfigurePending ? x == w.PendingX && y == w.PendingY && width == w.PendingWidth && height == w.PendingHeight
                : x == w.X && y == w.Y && width == w.Width && height == w.Height)
        {
            return;
        }
        w.ConfigurePending = true;
        (w.PendingX, w.PendingY, w.PendingWidth, w.PendingHeight) = (x, y, width, height);
        SendConfigure(w.Id, new(x, y, width, height), w.OverrideRedirect);
    }

    private void SendConfigure(uint id, in WindowGeometry geometry, bool overrideRedirect)
    {
        Span<uint> fields = [(uint)geometry.X, (uint)geometry.Y, (uint)geometry.Width, (uint)geometry.Height, overrideRedirect ? 1u : 0u];
        int length = GuiProtocol.WriteMessage(_out, MessageType.Configure, id, fields);
        _host.Send(_out.AsSpan(0, length));
    }

    /// <summary>Sends an input event or request of 32-bit fields to the agent for the window in <paramref name="slot"/>.</summary>
    public void SendToWindow(int slot, MessageType type, ReadOnlySpan<uint> fields)
    {
        int length = GuiProtocol.WriteMessage(_out, type, _windows[slot].Id, fields);
        _host.Send(_out.AsSpan(0, length));
    }

    /// <summary>Every window of the qube goes (its connection ended).</summary>
    public void DestroyAll()
    {
        for (int slot = 0; slot < _highest; slot++)
        {
            if (_windows[slot].Used)
            {
                _host.DestroyWindow(slot);
                _slots.Remove(_windows[slot].Id);
                _windows[slot] = default;
                _free.Push(slot);
            }
        }
        _highest = 0;
    }
}
