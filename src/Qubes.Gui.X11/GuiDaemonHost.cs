using System;
using System.Collections.Generic;
using System.IO;
using System.Text;
using Qubes.Interop.X11;
using Qubes.Platform;

namespace Qubes.Gui.X11;

/// <summary>Which qube a daemon serves and how its windows are marked.</summary>
/// <param name="Name">The qube's name (titles, classes, <c>_QUBES_VMNAME</c>).</param>
/// <param name="Label">Its label's index (<c>_QUBES_LABEL</c>).</param>
/// <param name="Color">Its label's colour, 0xRRGGBB: the frame and <c>_QUBES_LABEL_COLOR</c>.</param>
public sealed record QubeIdentity(string Name, int Label, uint Color);

/// <summary>
/// The X side of the GUI daemon on dom0's display: a real window for each of the qube's windows,
/// framed in the qube's label colour by the X server at guid's request (a border of
/// <see cref="GuiDispatcher{THost}.FrameWidth"/> pixels that the qube cannot draw over), titled
/// <c>[name] …</c> and carrying the qube's name, label and colour for a decorating window manager.
/// A window's content is the qube's granted pages: what the qube says changed is copied from them
/// into a shared-memory image of dom0's X server and put with MIT-SHM, nothing through the vchan.
/// Dom0's input on these windows goes to the agent, in the window's coordinates.
/// </summary>
public sealed unsafe class GuiDaemonHost : IGuiHost, IDisposable
{
    private const long WindowEvents = Xlib.KeyPressMask | Xlib.KeyReleaseMask | Xlib.ButtonPressMask | Xlib.ButtonReleaseMask
        | Xlib.PointerMotionMask | Xlib.EnterWindowMask | Xlib.LeaveWindowMask | Xlib.FocusChangeMask | Xlib.ExposureMask | Xlib.StructureNotifyMask;

    private readonly DisplayHandle _display;
    private readonly nint _d;
    private readonly QubeIdentity _qube;
    private readonly MappedWindowImages _images;
    private readonly Func<ReadOnlySpan<byte>, bool> _send;
    private readonly ulong[] _windows;
    private readonly ShmImage?[] _content;
    /// <summary>Whether the slot's image is the qube's pages themselves, attached by descriptor.</summary>
    private readonly bool[] _direct;
    private readonly Dictionary<ulong, int> _slots;
    private readonly nint _gc;
    private readonly ulong _wmName, _utf8String, _wmProtocols, _wmDelete, _vmName, _label, _labelColor;
    private readonly Visual* _visual;
    private readonly int _depth;
    private readonly uint _copyKey, _pasteKey;
    private readonly ulong[] _cursors = new ulong[GuiProtocol.CursorX11Max - GuiProtocol.CursorX11];
    private uint _clipboardTime;
    private GuiDispatcher<GuiDaemonHost>? _dispatcher;

    /// <summary>The modifiers of the clipboard keys (upstream's default: Ctrl+Shift+C copies, Ctrl+Shift+V pastes).</summary>
    private const uint ClipboardModifiers = Xlib.ControlMask | Xlib.ShiftMask;
    private const uint ConsideredModifiers = Xlib.ShiftMask | Xlib.ControlMask | Xlib.Mod1Mask | Xlib.Mod4Mask;

    /// <param name="display">dom0's display.</param>
    /// <param name="qube">The qube this daemon serves.</param>
    /// <param name="images">The qube's window images as mapped from its grants.</param>
    /// <param name="send">Sends a message to the agent.</param>
    /// <param name="maxWindows">Most windows the qube may have (the dispatcher's limit).</param>
    public GuiDaemonHost(DisplayHandle display, QubeIdentity qube, MappedWindowImages images, Func<ReadOnlySpan<byte>, bool> send, int maxWindows = GuiDaemonOptions.DefaultMaxWindows)
    {
        _display = display;
        _d = display.Pointer;
        _qube = qube;
        _images = images;
        _send = send;
        _windows = new ulong[maxWindows];
        _content = new ShmImage?[maxWindows];
        _direct = new bool[maxWindows];
        _slots = new Dictionary<ulong, int>(maxWindows);
        int screen = display.DefaultScreen;
        _visual = Xlib.XDefaultVisual(_d, screen);
        _depth = Xlib.XDefaultDepth(_d, screen);
        _gc = Xlib.XDefaultGC(_d, screen);
        _wmName = Xlib.XInternAtom(_d, "_NET_WM_NAME", 0);
        _utf8String = Xlib.XInternAtom(_d, "UTF8_STRING", 0);
        _wmProtocols = Xlib.XInternAtom(_d, "WM_PROTOCOLS", 0);
        _wmDelete = Xlib.XInternAtom(_d, "WM_DELETE_WINDOW", 0);
        _vmName = Xlib.XInternAtom(_d, "_QUBES_VMNAME", 0);
        _label = Xlib.XInternAtom(_d, "_QUBES_LABEL", 0);
        _labelColor = Xlib.XInternAtom(_d, "_QUBES_LABEL_COLOR", 0);
        _copyKey = Xlib.XKeysymToKeycode(_d, 'c');
        _pasteKey = Xlib.XKeysymToKeycode(_d, 'v');
    }

    /// <summary>dom0's global clipboard; none: the clipboard keys go to the qube like any others.</summary>
    public GlobalClipboard? Clipboard { get; set; }

    /// <summary>Whether the policy lets the clipboard of a qube (the argument) be pasted into this one (<c>qubes.ClipboardPaste</c>).</summary>
    public Func<string, bool> PastePolicy { get; set; } = static _ => false;

    /// <summary>Tells the user what the clipboard did (upstream: a desktop notification).</summary>
    public Action<string> Notify { get; set; } = static message => Console.Error.WriteLine("qubes-guid: " + message);

    /// <summary>The dispatcher whose checked messages this host carries out (set once, before the first message).</summary>
    public GuiDispatcher<GuiDaemonHost> Dispatcher
    {
        get => _dispatcher ?? throw new InvalidOperationException("no dispatcher yet");
        set => _dispatcher = value;
    }

    /// <summary>The width of the frame in the qube's colour around each of its windows.</summary>
    public static int FrameWidth => GuiDispatcher<GuiDaemonHost>.FrameWidth;

    /// <summary>dom0's X window of the slot (0 if none): for tests and screenshots.</summary>
    public ulong XWindow(int slot) => _windows[slot];

    public void Send(ReadOnlySpan<byte> message) => _send(message);

    public void CreateWindow(int slot, in WindowGeometry geometry, bool overrideRedirect)
    {
        XSetWindowAttributes attributes = default;
        attributes.override_redirect = overrideRedirect ? 1 : 0;
        attributes.border_pixel = _qube.Color;
        attributes.background_pixel = Xlib.XBlackPixel(_d, _display.DefaultScreen);
        attributes.event_mask = WindowEvents;
        // the X position is the frame's corner: the content lands where the qube put it
        ulong window = Xlib.XCreateWindow(_d, _display.RootWindow, geometry.X - FrameWidth, geometry.Y - FrameWidth,
            (uint)Math.Max(geometry.Width, 1), (uint)Math.Max(geometry.Height, 1), (uint)FrameWidth, _depth, (int)Xlib.InputOutput, _visual,
            Xlib.CWOverrideRedirect | Xlib.CWBorderPixel | Xlib.CWBackPixel | Xlib.CWEventMask, &attributes);
        _windows[slot] = window;
        _slots[window] = slot;
        ulong delete = _wmDelete;
        Xlib.XSetWMProtocols(_d, window, &delete, 1);
        SetCardinal(window, _label, (uint)_qube.Label);
        SetCardinal(window, _labelColor, _qube.Color);
        byte[] name = Encoding.UTF8.GetBytes(_qube.Name);
        fixed (byte* p = name)
        {
            Xlib.XChangeProperty(_d, window, _vmName, Xlib.XA_STRING, 8, Xlib.PropModeReplace, p, name.Length);
        }
        // until the qube names it, the window is at least the qube's
        SetTitle(slot, Encoding.UTF8.GetBytes($"[{_qube.Name}]"));
    }

    private void SetCardinal(ulong window, ulong property, uint value)
    {
        // format-32 properties travel as C longs
        long item = value;
        Xlib.XChangeProperty(_d, window, property, Xlib.XA_CARDINAL, 32, Xlib.PropModeReplace, (byte*)&item, 1);
    }

    public void DestroyWindow(int slot)
    {
        DetachImage(slot);
        ulong window = _windows[slot];
        if (window != 0)
        {
            _slots.Remove(window);
            Xlib.XDestroyWindow(_d, window);
            _windows[slot] = 0;
        }
    }

    public void MapWindow(int slot, in WindowGeometry geometry, int transientFor, bool overrideRedirect)
    {
        ulong window = _windows[slot];
        XSetWindowAttributes attributes = default;
        attributes.override_redirect = overrideRedirect ? 1 : 0;
        Xlib.XChangeWindowAttributes(_d, window, Xlib.CWOverrideRedirect, &attributes);
        Xlib.XMoveResizeWindow(_d, window, geometry.X - FrameWidth, geometry.Y - FrameWidth, (uint)Math.Max(geometry.Width, 1), (uint)Math.Max(geometry.Height, 1));
        Xlib.XSetTransientForHint(_d, window, transientFor >= 0 ? _windows[transientFor] : 0);
        if (overrideRedirect)
        {
            Xlib.XMapRaised(_d, window);
        }
        else
        {
            Xlib.XMapWindow(_d, window);
        }
    }

    public void UnmapWindow(int slot)
    {
        DetachImage(slot);
        Xlib.XUnmapWindow(_d, _windows[slot]);
    }

    public void ConfigureWindow(int slot, in WindowGeometry geometry)
        => Xlib.XMoveResizeWindow(_d, _windows[slot], geometry.X - FrameWidth, geometry.Y - FrameWidth, (uint)Math.Max(geometry.Width, 1), (uint)Math.Max(geometry.Height, 1));

    public void Damage(int slot, int x, int y, int width, int height)
    {
        ShmImage? content = _content[slot];
        ReadOnlySpan<byte> pixels = _images.Pixels(slot, out int imageWidth, out int imageHeight);
        if (content == null || pixels.IsEmpty)
        {
            return;
        }
        // the dispatcher has bounded the rectangle by the image; the window may be smaller than it
        if (!_direct[slot])
        {
            int stride = imageWidth * GuiProtocol.BytesPerPixel;
            for (int row = y; row < y + height && row < imageHeight; row++)
            {
                pixels.Slice(row * stride + x * GuiProtocol.BytesPerPixel, width * GuiProtocol.BytesPerPixel)
                    .CopyTo(content.Data.Slice(row * content.BytesPerLine + x * GuiProtocol.BytesPerPixel));
            }
        }
        XShm.XShmPutImage(_d, _windows[slot], _gc, content.Image, x, y, x, y, (uint)width, (uint)height, 0);
    }

    public void SetTitle(int slot, ReadOnlySpan<byte> title)
    {
        ulong window = _windows[slot];
        Span<byte> text = stackalloc byte[title.Length + 1];
        title.CopyTo(text);
        text[^1] = 0;
        fixed (byte* p = text)
        {
            Xlib.XStoreName(_d, window, p);
            Xlib.XChangeProperty(_d, window, _wmName, _utf8String, 8, Xlib.PropModeReplace, p, title.Length);
        }
    }

    public void SetClass(int slot, ReadOnlySpan<byte> resClass, ReadOnlySpan<byte> resName)
    {
        Span<byte> klass = stackalloc byte[resClass.Length + 1];
        Span<byte> name = stackalloc byte[resName.Length + 1];
        resClass.CopyTo(klass);
        resName.CopyTo(name);
        klass[^1] = name[^1] = 0;
        fixed (byte* c = klass)
        fixed (byte* n = name)
        {
            XClassHint hint = new() { res_class = c, res_name = n };
            Xlib.XSetClassHint(_d, _windows[slot], &hint);
        }
    }

    public void SetHints(int slot, in SizeHints hints)
    {
        XSizeHints x = default;
        x.flags = hints.Flags;
        x.min_width = hints.MinWidth;
        x.min_height = hints.MinHeight;
        x.max_width = hints.MaxWidth;
        x.max_height = hints.MaxHeight;
        x.width_inc = hints.WidthIncrement;
        x.height_inc = hints.HeightIncrement;
        x.base_width = hints.BaseWidth;
        x.base_height = hints.BaseHeight;
        Xlib.XSetWMNormalHints(_d, _windows[slot], &x);
    }

    public void SetFlags(int slot, in FlagsRequest request)
    {
        // window states are the window manager's; without one there is nothing to change
    }

    public void SetCursor(int slot, int glyph)
    {
        ulong window = _windows[slot];
        if (glyph < 0)
        {
            Xlib.XUndefineCursor(_d, window);
            return;
        }
        // the dispatcher let through only the cursor font's glyphs; each is made once
        ref ulong cursor = ref _cursors[glyph];
        if (cursor == 0)
        {
            cursor = Xlib.XCreateFontCursor(_d, (uint)glyph);
        }
        Xlib.XDefineCursor(_d, window, cursor);
    }

    public void Dock(int slot)
    {
        // no tray on this display: the window stays unmapped, as the protocol has it
    }

    public bool AttachGrants(int slot, int width, int height, ReadOnlySpan<byte> references)
    {
        DetachImage(slot);
        if (width == 0 || height == 0 || !_images.Attach(slot, width, height, references))
        {
            return false;
        }
        // the X server maps the qube's pages themselves where the platform has them in a file;
        // else they are copied into a segment of our own at each damage
        IMappedPages pages = _images.Pages(slot)!;
        ShmImage? direct = pages.PagesFile < 0 ? null
            : ShmImage.OnFile(_display, _visual, _depth, width, height, width * GuiProtocol.BytesPerPixel, pages.PagesFile, pages.Address, readOnly: true);
        _direct[slot] = direct != null;
        _content[slot] = direct ?? ShmImage.Create(_display, _visual, _depth, width, height, readOnly: true);
        return true;
    }

    public bool AttachFrames(int slot, int width, int height, int offset, ReadOnlySpan<byte> frames) => false;

    public void DetachImage(int slot)
    {
        _content[slot]?.Dispose();
        _content[slot] = null;
        _direct[slot] = false;
        _images.Detach(slot);
    }

    public void OverrideRedirectRefused(int slot)
        => Console.Error.WriteLine($"qubes-guid: {_qube.Name}: a window asked to cover most of the screen without a frame of the window manager; it is managed as a normal window");

    public bool ClipboardChangedSince(uint requestTime) => Clipboard?.ChangedSince(requestTime) ?? false;

    public void ClipboardReceived(ReadOnlySpan<byte> data, ClipboardOutcome outcome)
    {
        if (Clipboard is not { } clipboard)
        {
            return;
        }
        try
        {
            UpdateGlobalClipboard(clipboard, data, outcome);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            Notify($"{_qube.Name}: the global clipboard could not be written ({e.Message})");
        }
    }

    private void UpdateGlobalClipboard(GlobalClipboard clipboard, ReadOnlySpan<byte> data, ClipboardOutcome outcome)
    {
        switch (outcome)
        {
            case ClipboardOutcome.Stored:
                clipboard.Store(data, _qube.Name, _clipboardTime);
                Notify($"{_qube.Name}: copied {data.Length} bytes to the global clipboard; Ctrl+Shift+V pastes them into the focused qube");
                break;
            case ClipboardOutcome.TooLarge:
                clipboard.Clear(_clipboardTime);
                Notify($"{_qube.Name}: the clipboard is too large for the global clipboard; nothing was copied and the global clipboard is empty");
                break;
            default:
                clipboard.Clear(_clipboardTime);
                Notify($"{_qube.Name}: the clipboard is empty; so is the global clipboard");
                break;
        }
    }

    /// <summary>Whether a key event is a clipboard key, handled here (copy or paste) and not given to the qube.</summary>
    private bool ClipboardKey(int slot, in XKeyEvent key)
    {
        if (Clipboard == null || (key.state & ConsideredModifiers) != ClipboardModifiers || (key.keycode != _copyKey && key.keycode != _pasteKey))
        {
            return false;
        }
        if (key.type != Xlib.KeyPress)
        {
            return true;
        }
        _clipboardTime = (uint)key.time;
        if (key.keycode == _copyKey)
        {
            Dispatcher.RequestClipboard(slot, _clipboardTime);
            return true;
        }
        // the clipboard is emptied by every paste attempt, allowed or not
        byte[] data;
        string source;
        bool changedSince;
        try
        {
            (data, source) = Clipboard.Take(_clipboardTime, out changedSince);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            Notify($"{_qube.Name}: the global clipboard could not be read ({e.Message}); nothing pasted");
            return true;
        }
        if (source.Length == 0)
        {
            Notify($"{_qube.Name}: the global clipboard is empty; nothing to paste");
        }
        else if (changedSince)
        {
            // spec §9.2: the copy is stamped after this paste key, another clipboard operation came between
            Notify($"{_qube.Name}: the global clipboard changed after the paste key; nothing pasted, the global clipboard was emptied");
        }
        else if (!PastePolicy(source))
        {
            Notify($"{_qube.Name}: the policy refuses qubes.ClipboardPaste from {source}; the global clipboard was emptied");
        }
        else
        {
            Dispatcher.Paste(slot, data);
            Notify($"{_qube.Name}: pasted {data.Length} bytes copied from {source}; the global clipboard was emptied");
        }
        return true;
    }

    /// <summary>
    /// Handles the X events of dom0's display that concern this qube's windows: input goes to the
    /// agent, exposed areas are put again from the image, a close request becomes CLOSE.
    /// </summary>
    public void HandleXEvents()
    {
        XEvent e;
        while (Xlib.XPending(_d) > 0)
        {
            Xlib.XNextEvent(_d, &e);
            if (!_slots.TryGetValue(e.xany.window, out int slot))
            {
                continue;
            }
            GuiDispatcher<GuiDaemonHost> d = Dispatcher;
            switch (e.type)
            {
                case Xlib.KeyPress or Xlib.KeyRelease when !ClipboardKey(slot, e.xkey):
                    d.SendToWindow(slot, MessageType.KeyPress, [(uint)e.type, (uint)e.xkey.x, (uint)e.xkey.y, e.xkey.state, e.xkey.keycode]);
                    break;
                case Xlib.ButtonPress or Xlib.ButtonRelease:
                    d.SendToWindow(slot, MessageType.Button, [(uint)e.type, (uint)e.xbutton.x, (uint)e.xbutton.y, e.xbutton.state, e.xbutton.button]);
                    break;
                case Xlib.MotionNotify:
                    d.SendToWindow(slot, MessageType.Motion, [(uint)e.xmotion.x, (uint)e.xmotion.y, e.xmotion.state, e.xmotion.is_hint]);
                    break;
                case Xlib.EnterNotify or Xlib.LeaveNotify:
                    d.SendToWindow(slot, MessageType.Crossing, [(uint)e.type, (uint)e.xcrossing.x, (uint)e.xcrossing.y, e.xcrossing.state,
                        (uint)e.xcrossing.mode, (uint)e.xcrossing.detail, (uint)e.xcrossing.focus]);
                    break;
                case Xlib.FocusIn or Xlib.FocusOut:
                    d.SendToWindow(slot, MessageType.Focus, [(uint)e.type, (uint)e.xfocus.mode, (uint)e.xfocus.detail]);
                    break;
                case Xlib.Expose:
                    Redraw(slot, e.xexpose.x, e.xexpose.y, e.xexpose.width, e.xexpose.height);
                    break;
                case Xlib.ConfigureNotify:
                    // a window manager or the user moved or resized it: the qube follows
                    if (d.IsMapped(slot) && !d.IsOverrideRedirect(slot))
                    {
                        d.RequestConfigure(slot, new WindowGeometry(e.xconfigure.x + FrameWidth, e.xconfigure.y + FrameWidth, e.xconfigure.width, e.xconfigure.height));
                    }
                    break;
                case Xlib.ClientMessage when e.xclient.message_type == _wmProtocols && (ulong)e.xclient.data.l[0] == _wmDelete:
                    d.SendToWindow(slot, MessageType.Close, []);
                    break;
            }
        }
    }

    private void Redraw(int slot, int x, int y, int width, int height)
    {
        (int imageWidth, int imageHeight) = Dispatcher.ImageSize(slot);
        x = Math.Clamp(x, 0, imageWidth);
        y = Math.Clamp(y, 0, imageHeight);
        width = Math.Min(width, imageWidth - x);
        height = Math.Min(height, imageHeight - y);
        if (width > 0 && height > 0)
        {
            Damage(slot, x, y, width, height);
        }
    }

    /// <summary>The X connection's descriptor, to wait on beside the vchan's.</summary>
    public int ConnectionFd => Xlib.XConnectionNumber(_d);

    public void Flush() => Xlib.XFlush(_d);

    public void Dispose()
    {
        for (int slot = 0; slot < _windows.Length; slot++)
        {
            if (_windows[slot] != 0)
            {
                DestroyWindow(slot);
            }
        }
        foreach (ulong cursor in _cursors)
        {
            if (cursor != 0)
            {
                Xlib.XFreeCursor(_d, cursor);
            }
        }
        Xlib.XFlush(_d);
    }
}
