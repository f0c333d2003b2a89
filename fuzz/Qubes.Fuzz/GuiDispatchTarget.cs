using System;
using Qubes.Gui;

namespace Qubes.Fuzz;

/// <summary>
/// The GUI daemon's dispatch of what a qube's agent sends (spec gui-protocol §8-§12). Input: a
/// byte choosing the session version and the qube's settings, then the message stream, ending at
/// a guard page. Invariants: whatever reaches the host is inside the protocol's bounds
/// (geometry, override-redirect windows on screen, damage inside the image, printable titles and
/// classes, cursors, hints, enough pages for an image), consumption is exact, and the stream
/// dispatched whole gives the same results as fed to the dispatcher a byte more at a time.
/// </summary>
internal sealed class GuiDispatchTarget : ITarget
{
    private const int Screen = 800, ScreenHeight = 600;

    private readonly GuardedMemory _memory = new(64 * 1024);
    private readonly CheckingHost _whole = new(), _growing = new();

    public string Name => "gui-dispatch";

    public byte[][] Seeds => [Seed()];

    /// <summary>A session's worth of honest messages.</summary>
    private static byte[] Seed()
    {
        byte[] seed = new byte[1 + 1024];
        Span<byte> s = seed.AsSpan(1);
        seed[0] = 8;
        int n = 0;
        n += GuiProtocol.WriteMessage(s[n..], MessageType.Create, 1, [10, 10, 300, 200, 0, 0]);
        n += GuiProtocol.WriteMessage(s[n..], MessageType.Create, 2, [20, 20, 50, 40, 0, 1]);
        n += GuiProtocol.WriteMessage(s[n..], MessageType.Map, 1, [0, 0]);
        n += GuiProtocol.WriteMessage(s[n..], MessageType.Map, 2, [1, 1]);
        n += GuiProtocol.WriteMessage(s[n..], MessageType.WindowDump, 1, [0, 300, 200, 24, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16, 17, 18, 19, 20, 21, 22, 23, 24, 25, 26, 27, 28, 29, 30, 31, 32, 33, 34, 35, 36, 37, 38, 39, 40, 41, 42, 43, 44, 45, 46, 47, 48, 49, 50, 51, 52, 53, 54, 55, 56, 57, 58, 59]);
        n += GuiProtocol.WriteMessage(s[n..], MessageType.ShmImage, 1, [5, 5, 100, 100]);
        n += GuiProtocol.WriteMessage(s[n..], MessageType.ShmImage, 1, [250, 150, 100, 100]);
        n += GuiProtocol.WriteMessage(s[n..], MessageType.Configure, 2, [700, 500, 200, 200, 1]);
        n += GuiProtocol.WriteMessage(s[n..], MessageType.WindowHints, 1, [0x1F4, 10, 10, 400, 400, 2, 2, 1, 1]);
        n += GuiProtocol.WriteMessage(s[n..], MessageType.WindowFlags, 1, [1, 2]);
        n += GuiProtocol.WriteMessage(s[n..], MessageType.Cursor, 1, [0x144]);
        GuiProtocol.WriteHeader(s[n..], MessageType.WmName, 1, 128);
        "title \x1b\xe2\x80\xa6"u8.CopyTo(s[(n + 12)..]);
        n += 12 + 128;
        GuiProtocol.WriteHeader(s[n..], MessageType.ClipboardData, 0, 5);
        "hello"u8.CopyTo(s[(n + 12)..]);
        n += 17;
        n += GuiProtocol.WriteMessage(s[n..], MessageType.Unmap, 2, []);
        n += GuiProtocol.WriteMessage(s[n..], MessageType.Destroy, 2, []);
        return seed[..(1 + n)];
    }

    public void Run(ReadOnlySpan<byte> input)
    {
        if (input.IsEmpty)
        {
            return;
        }
        byte settings = input[0];
        ReadOnlySpan<byte> stream = _memory.Place(input[1..]);
        uint version = GuiProtocol.MajorVersion << 16 | (uint)(settings & 0x0F) % 9;
        var options = new GuiDaemonOptions("fuzz")
        {
            ScreenWidth = Screen,
            ScreenHeight = ScreenHeight,
            AllowUtf8Titles = (settings & 0x10) != 0,
            OverrideRedirectProtection = (settings & 0x20) == 0,
            InDom0 = (settings & 0x40) == 0,
            ClipboardLimit = (settings & 0x80) != 0 ? GuiProtocol.MinClipboardBufferSize : GuiProtocol.MaxClipboardBufferSize,
            MaxWindows = 16,
        };
        _whole.Reset(options.AllowUtf8Titles);
        _growing.Reset(options.AllowUtf8Titles);
        var whole = new GuiDispatcher<CheckingHost>(_whole, options, version);
        var growing = new GuiDispatcher<CheckingHost>(_growing, options, version);
        _whole.Dispatcher = whole;
        _growing.Dispatcher = growing;
        whole.RequestClipboard(0, 1);
        growing.RequestClipboard(0, 1);
        int offset = 0, available = 0;
        while (offset < stream.Length)
        {
            DispatchResult result = whole.Dispatch(stream[offset..]);
            // the same stream arriving a byte at a time: nothing but NeedMore until the message is whole
            DispatchResult partial;
            do
            {
                available = Math.Min(available + 1, stream.Length);
                partial = growing.Dispatch(stream[offset..available]);
            }
            while (partial.Status == DispatchStatus.NeedMore && available < stream.Length);
            if (partial != result)
            {
                throw new FuzzFailure($"whole {result}, a byte at a time {partial}");
            }
            if (_whole.Digest != _growing.Digest)
            {
                throw new FuzzFailure("the host saw different calls for the stream whole and in pieces");
            }
            switch (result.Status)
            {
                case DispatchStatus.NeedMore or DispatchStatus.Fatal:
                    if (result.Consumed != 0)
                    {
                        throw new FuzzFailure($"{result} consumed bytes");
                    }
                    return;
                default:
                    if (result.Consumed < GuiProtocol.HeaderSize || result.Consumed > stream.Length - offset)
                    {
                        throw new FuzzFailure($"{result} consumed {result.Consumed} of {stream.Length - offset}");
                    }
                    offset += result.Consumed;
                    available = offset;
                    break;
            }
        }
    }

    /// <summary>Checks every call against the protocol's bounds and folds it into a digest.</summary>
    private sealed class CheckingHost : IGuiHost
    {
        private bool _utf8;

        public GuiDispatcher<CheckingHost>? Dispatcher { get; set; }

        public ulong Digest { get; private set; }

        public void Reset(bool utf8)
        {
            _utf8 = utf8;
            Digest = 0;
        }

        private void Mix(ulong value) => Digest = (Digest ^ value) * 0x100000001B3UL + 0x9E3779B97F4A7C15UL;

        private void Slot(int slot)
        {
            if (Dispatcher == null || !Dispatcher.IsWindow(slot))
            {
                throw new FuzzFailure($"a call for slot {slot}, which holds no window");
            }
            Mix((ulong)slot);
        }

        private static void Check(bool condition, string what)
        {
            if (!condition)
            {
                throw new FuzzFailure(what);
            }
        }

        private void Geometry(in WindowGeometry g, bool overrideRedirect)
        {
            Check(g.Width is >= 0 and <= GuiProtocol.MaxWindowWidth && g.Height is >= 0 and <= GuiProtocol.MaxWindowHeight, $"size {g}");
            Check(Math.Abs(g.X) <= GuiProtocol.MaxWindowWidth && Math.Abs(g.Y) <= GuiProtocol.MaxWindowHeight, $"place {g}");
            bool offScreen = g.X >= Screen || g.Y >= ScreenHeight || g.X + g.Width <= 0 || g.Y + g.Height <= 0;
            const int Frame = GuiDispatcher<CheckingHost>.FrameWidth;
            Check(!overrideRedirect || offScreen || (g.X >= Frame && g.Y >= Frame && g.X + g.Width <= Screen - Frame && g.Y + g.Height <= ScreenHeight - Frame), $"override-redirect window {g} or its frame partly off the screen");
            Mix((ulong)(uint)g.X << 32 | (uint)g.Y);
            Mix((ulong)(uint)g.Width << 32 | (uint)g.Height);
        }

        private void Text(ReadOnlySpan<byte> text, bool utf8, int max)
        {
            Check(text.Length <= max, $"text of {text.Length} bytes");
            for (int i = 0; i < text.Length;)
            {
                if (text[i] is >= 0x20 and <= 0x7E)
                {
                    i++;
                    continue;
                }
                System.Buffers.OperationStatus status = System.Text.Rune.DecodeFromUtf8(text[i..], out System.Text.Rune rune, out int consumed);
                Check(utf8 && status == System.Buffers.OperationStatus.Done && rune.Value >= 0x80, $"byte 0x{text[i]:x2} in shown text");
                i += consumed;
            }
            Mix((ulong)text.Length);
        }

        public void Send(ReadOnlySpan<byte> message)
        {
            Check(message.Length >= GuiProtocol.HeaderSize, "a message to the agent without its header");
            Mix((ulong)message.Length);
        }

        public void CreateWindow(int slot, in WindowGeometry geometry, bool overrideRedirect)
        {
            Slot(slot);
            Geometry(geometry, overrideRedirect);
        }

        public void DestroyWindow(int slot) => Slot(slot);

        public void MapWindow(int slot, in WindowGeometry geometry, int transientFor, bool overrideRedirect)
        {
            Slot(slot);
            Check(transientFor == -1 || (transientFor != slot && Dispatcher!.IsWindow(transientFor)), $"transient for {transientFor}");
            Geometry(geometry, overrideRedirect);
        }

        public void UnmapWindow(int slot) => Slot(slot);

        public void ConfigureWindow(int slot, in WindowGeometry geometry)
        {
            Slot(slot);
            Check(geometry.Width > 0 && geometry.Height > 0, $"configured to {geometry}");
            Geometry(geometry, Dispatcher!.IsOverrideRedirect(slot));
        }

        public void Damage(int slot, int x, int y, int width, int height)
        {
            Slot(slot);
            (int w, int h) = Dispatcher!.ImageSize(slot);
            Check(x >= 0 && y >= 0 && width > 0 && height > 0 && x + width <= w && y + height <= h, $"damage {x},{y} {width}x{height} of a {w}x{h} image");
            Mix((ulong)(uint)x << 32 | (uint)y);
        }

        public void SetTitle(int slot, ReadOnlySpan<byte> title)
        {
            Slot(slot);
            Check(title.StartsWith("[fuzz] "u8), "a title without the qube's name");
            Text(title["[fuzz] ".Length..], _utf8, GuiProtocol.NameSize - 1);
        }

        public void SetClass(int slot, ReadOnlySpan<byte> resClass, ReadOnlySpan<byte> resName)
        {
            Slot(slot);
            Check(resClass.StartsWith("fuzz:"u8) && resName.StartsWith("fuzz:"u8), "a class without the qube's name");
            Text(resClass[5..], utf8: false, GuiProtocol.ClassFieldSize - 1);
            Text(resName[5..], utf8: false, GuiProtocol.ClassFieldSize - 1);
        }

        public void SetHints(int slot, in SizeHints hints)
        {
            Slot(slot);
            const uint Known = GuiProtocol.USPosition | GuiProtocol.PPosition | GuiProtocol.PMinSize | GuiProtocol.PMaxSize | GuiProtocol.PResizeInc | GuiProtocol.PBaseSize;
            Check((hints.Flags & ~Known) == 0, $"hint flags {hints.Flags:x}");
            Check(hints.MinWidth is >= 0 and <= GuiProtocol.MaxWindowWidth && hints.MinHeight is >= 0 and <= GuiProtocol.MaxWindowHeight
                && hints.MaxWidth is >= 0 and <= GuiProtocol.MaxWindowWidth && hints.MaxHeight is >= 0 and <= GuiProtocol.MaxWindowHeight
                && hints.WidthIncrement is >= 0 and < GuiProtocol.MaxWindowWidth && hints.HeightIncrement is >= 0 and < GuiProtocol.MaxWindowHeight
                && hints.BaseWidth is >= 0 and <= GuiProtocol.MaxWindowWidth && hints.BaseHeight is >= 0 and <= GuiProtocol.MaxWindowHeight, $"hints {hints}");
            Check((hints.Flags & GuiProtocol.PMaxSize) == 0 || (hints.MaxWidth > 0 && hints.MaxHeight > 0), $"hints {hints}");
            Mix(hints.Flags);
        }

        public void SetFlags(int slot, in FlagsRequest request)
        {
            Slot(slot);
            Check((request.Set & ~7u) == 0 && (request.Unset & ~3u) == 0 && (request.Set & request.Unset) == 0, $"flags {request}");
            Mix(request.Set << 8 | request.Unset);
        }

        public void SetCursor(int slot, int glyph)
        {
            Slot(slot);
            Check(glyph >= -1 && glyph < (int)(GuiProtocol.CursorX11Max - GuiProtocol.CursorX11), $"cursor glyph {glyph}");
            Mix((ulong)glyph);
        }

        public void Dock(int slot) => Slot(slot);

        public bool AttachGrants(int slot, int width, int height, ReadOnlySpan<byte> references)
        {
            Slot(slot);
            Check(references.Length % 4 == 0 && (long)references.Length / 4 * GuiProtocol.PageSize >= (long)width * height * 4
                && width is >= 0 and <= GuiProtocol.MaxWindowWidth && height is >= 0 and <= GuiProtocol.MaxWindowHeight, $"grants for {width}x{height}: {references.Length} bytes");
            Mix((ulong)references.Length);
            // some attaches fail, as a mapping can
            return (width & 1) == 0;
        }

        public bool AttachFrames(int slot, int width, int height, int offset, ReadOnlySpan<byte> frames)
        {
            Slot(slot);
            Check(frames.Length % 4 == 0 && offset is >= 0 and < GuiProtocol.PageSize
                && (long)frames.Length / 4 * GuiProtocol.PageSize >= (long)width * height * 4 + offset, $"frames for {width}x{height}+{offset}: {frames.Length} bytes");
            Mix((ulong)frames.Length);
            return true;
        }

        public void DetachImage(int slot) => Slot(slot);

        public void OverrideRedirectRefused(int slot) => Slot(slot);

        public bool ClipboardChangedSince(uint requestTime) => false;

        public void ClipboardReceived(ReadOnlySpan<byte> data, ClipboardOutcome outcome)
        {
            Check(data.Length <= GuiProtocol.MaxClipboardBufferSize && (outcome == ClipboardOutcome.Stored) == !data.IsEmpty, $"clipboard {outcome} of {data.Length} bytes");
            Mix((ulong)data.Length);
        }
    }
}
