using System;
using System.Collections.Generic;
using System.Threading;
using Qubes.Interop.Linux;
using Qubes.Interop.X11;
using Qubes.Platform;

namespace Qubes.Gui.X11;

/// <summary>
/// The GUI agent in a qube: follows the top-level windows of the qube's own X server and shows them
/// through the GUI daemon. Each mapped window's content is kept in pages granted read-only to the
/// GUI domain: what XDamage reports changed is read from the window (MIT-SHM) into them and the
/// daemon told where. The daemon's input is played into the X server with XTest, its configure
/// requests applied (the window's own ConfigureNotify then answers them), its close requests sent
/// as WM_DELETE_WINDOW. The clipboard: on the daemon's request the agent reads the qube's CLIPBOARD
/// selection and sends it; what the daemon pastes, the agent owns as the CLIPBOARD selection and
/// gives to the qube's programs that ask for it.
/// </summary>
public sealed unsafe class GuiAgent : IDisposable
{
    private sealed class Window
    {
        public ulong Id;
        public int X, Y, Width, Height, BorderWidth;
        public bool OverrideRedirect, Mapped;
        public ulong Damage;
        /// <summary>What changed since the window was last read (empty when right ≤ left).</summary>
        public int DamageLeft, DamageTop, DamageRight, DamageBottom;
        public SharedWindowImage? Image;
        public SharedWindowImage? Retired;
        public ShmImage? Capture;
        /// <summary>Whether <see cref="Capture"/> is the granted pages themselves, attached to our X server by descriptor.</summary>
        public bool Direct;
        /// <summary>Whether <see cref="Image"/> is the X server's own pixmap of the window: nothing to read at a change.</summary>
        public bool FromPixmap;
        /// <summary>The inode of the pixmap's memfd, while <see cref="FromPixmap"/>.</summary>
        public ulong PixmapInode;
    }

    private readonly IPlatform _platform;
    private readonly GuiAgentConnection _connection;
    private readonly DisplayHandle _display;
    private readonly nint _d;
    private readonly ulong _root;
    private readonly int _damageEvent;
    /// <summary>XFixes' CursorNotify event type, or -1 without XFixes.</summary>
    private readonly int _cursorEvent;
    /// <summary>Windows with changes not read yet (<see cref="Damaged"/>), in the order they changed.</summary>
    private readonly List<Window> _damagedWindows = [];
    /// <summary>What CURSOR says for each cursor name seen so far (atom → message value).</summary>
    private readonly Dictionary<ulong, uint> _cursorByName = [];
    private readonly Dictionary<ulong, Window> _windows = [];
    private readonly ulong _wmName, _netWmName, _utf8String, _wmProtocols, _wmDelete;
    private readonly ulong _clipboard, _targets, _text, _clipboardProperty, _clipboardWindow;
    private readonly byte[] _message = new byte[Math.Max(GuiProtocol.MaxWindowDumpMessage, GuiProtocol.HeaderSize + GuiProtocol.MaxClipboardBufferSize + 1)];
    private readonly byte[] _pasted = new byte[GuiProtocol.MaxClipboardBufferSize + 1];
    private int _pastedLength = -1;
    private int _reads;
    /// <summary>The qube's X server's window pixmaps in shared memory, where it has them (null else, or once the platform refused to grant one).</summary>
    private WindowPixmaps? _pixmaps;

    private GuiAgent(IPlatform platform, GuiAgentConnection connection, DisplayHandle display)
    {
        _platform = platform;
        _connection = connection;
        _display = display;
        _d = display.Pointer;
        _root = display.RootWindow;
        int damageEvent, damageError, compositeEvent, compositeError;
        if (Xdamage.XDamageQueryExtension(_d, &damageEvent, &damageError) == 0 || Xcomposite.XCompositeQueryExtension(_d, &compositeEvent, &compositeError) == 0)
        {
            throw new X11Exception("the qube's X server lacks DAMAGE or Composite");
        }
        _damageEvent = damageEvent;
        int fixesEvent, fixesError;
        bool fixes = Xfixes.XFixesQueryExtension(_d, &fixesEvent, &fixesError) != 0;
        _cursorEvent = fixes ? fixesEvent + Xfixes.XFixesCursorNotify : -1;
        _wmName = Xlib.XA_WM_NAME;
        _netWmName = Xlib.XInternAtom(_d, "_NET_WM_NAME", 0);
        _utf8String = Xlib.XInternAtom(_d, "UTF8_STRING", 0);
        _wmProtocols = Xlib.XInternAtom(_d, "WM_PROTOCOLS", 0);
        _wmDelete = Xlib.XInternAtom(_d, "WM_DELETE_WINDOW", 0);
        _clipboard = Xlib.XInternAtom(_d, "CLIPBOARD", 0);
        _targets = Xlib.XInternAtom(_d, "TARGETS", 0);
        _text = Xlib.XInternAtom(_d, "TEXT", 0);
        _clipboardProperty = Xlib.XInternAtom(_d, "_QUBES_CLIPBOARD", 0);
        // the agent's own window, never shown: it asks for and owns the qube's CLIPBOARD selection
        _clipboardWindow = Xlib.XCreateSimpleWindow(_d, _root, -1, -1, 1, 1, 0, 0, 0);
    }

    /// <summary>
    /// Serves the GUI channel for <paramref name="guiDomain"/> (waiting for its daemon), then
    /// follows the windows of <paramref name="xDisplay"/>, the qube's X server; with
    /// <paramref name="pixmapSocket"/> (an <see cref="Xorg"/>'s), windows are granted from the
    /// server's own pixmaps where it has them.
    /// </summary>
    public static GuiAgent Start(IPlatform platform, int guiDomain, string xDisplay, string? pixmapSocket = null)
    {
        DisplayHandle display = DisplayHandle.Open(xDisplay);
        GuiAgentConnection? connection = null;
        WindowPixmaps? pixmaps = pixmapSocket == null ? null : WindowPixmaps.Connect(pixmapSocket);
        try
        {
            connection = GuiAgentConnection.Serve(platform, guiDomain);
            var agent = new GuiAgent(platform, connection, display) { _pixmaps = pixmaps };
            agent.Follow();
            return agent;
        }
        catch
        {
            pixmaps?.Dispose();
            connection?.Dispose();
            display.Dispose();
            throw;
        }
    }

    /// <summary>How many times a window's content was read from the qube's X server so far (for tests).</summary>
    internal int Reads => Volatile.Read(ref _reads);

    /// <summary>How many windows are shown from the X server's own pixmaps now (for tests).</summary>
    internal int PixmapWindows { get; private set; }

    /// <summary>dom0's screen, as its daemon described it.</summary>
    public XConf Screen => _connection.Screen;

    private void Follow()
    {
        Xlib.XSelectInput(_d, _root, Xlib.SubstructureNotifyMask);
        // every top-level window renders into its own pixmap, so its content is there to read even
        // when covered; redirected by hand, as a compositing manager does: nobody looks at this
        // screen, so the server does not paint the windows onto it as well
        Xcomposite.XCompositeRedirectSubwindows(_d, _root, Xcomposite.CompositeRedirectManual);
        if (_cursorEvent >= 0)
        {
            Xfixes.XFixesSelectCursorInput(_d, _root, Xfixes.XFixesDisplayCursorNotifyMask);
        }
        ulong rootReturn, parent;
        ulong* children;
        uint count;
        if (Xlib.XQueryTree(_d, _root, &rootReturn, &parent, &children, &count) != 0)
        {
            for (uint i = 0; i < count; i++)
            {
                XWindowAttributes a;
                if (children[i] != _clipboardWindow && Xlib.XGetWindowAttributes(_d, children[i], &a) != 0)
                {
                    Created(children[i], a.x, a.y, a.width, a.height, a.border_width, a.override_redirect != 0);
                    if (a.map_state == Xlib.IsViewable)
                    {
                        Mapped(children[i]);
                    }
                }
            }
            Xlib.XFree(children);
        }
        Xlib.XFlush(_d);
    }

    private bool Send(MessageType type, ulong window, ReadOnlySpan<uint> fields) => _connection.Send(type, (uint)window, fields);

    private void Created(ulong id, int x, int y, int width, int height, int borderWidth, bool overrideRedirect)
    {
        if (_windows.ContainsKey(id))
        {
            return;
        }
        // dom0 frames the window itself, as a window manager would, and the window's own border goes
        // as it does under one; its pixmap is then its content alone, which can be granted as it is
        if (borderWidth != 0 && !overrideRedirect)
        {
            XWindowChanges changes = default;
            Xlib.XConfigureWindow(_d, id, Xlib.CWBorderWidth, &changes);
        }
        var w = new Window { Id = id, X = x, Y = y, Width = width, Height = height, BorderWidth = borderWidth, OverrideRedirect = overrideRedirect };
        _windows[id] = w;
        Xlib.XSelectInput(_d, id, Xlib.PropertyChangeMask);
        Send(MessageType.Create, id, [(uint)x, (uint)y, (uint)width, (uint)height, 0, overrideRedirect ? 1u : 0u]);
    }

    private void Mapped(ulong id)
    {
        if (!_windows.TryGetValue(id, out Window? w) || w.Mapped)
        {
            return;
        }
        w.Mapped = true;
        SendTitle(w);
        SendClass(w);
        SendHints(w);
        NewImage(w);
        ulong transientFor = 0;
        Xlib.XGetTransientForHint(_d, id, &transientFor);
        Send(MessageType.Map, id, [(uint)(_windows.ContainsKey(transientFor) ? transientFor : 0), w.OverrideRedirect ? 1u : 0u]);
        w.Damage = Xdamage.XDamageCreate(_d, id, Xdamage.XDamageReportRawRectangles);
        Update(w, 0, 0, w.Width, w.Height);
    }

    /// <summary>
    /// New pages for the window's size, announced with WINDOW_DUMP: the X server's own pixmap of the
    /// window where it keeps one of exactly that size in shared memory, else pages the agent reads
    /// the window into. The old ones stay until the daemon acknowledges. Nothing changes while the
    /// pixmap granted is still the window's.
    /// </summary>
    private void NewImage(Window w)
    {
        int width = Math.Clamp(w.Width, 1, GuiProtocol.MaxWindowWidth), height = Math.Clamp(w.Height, 1, GuiProtocol.MaxWindowHeight);
        // the pixmap the window has now, where the X server keeps it in shared memory (one for a
        // later resize comes with its ConfigureNotify)
        int pixmapWidth = 0, pixmapHeight = 0;
        int pixmap = _pixmaps?.Take(w.Id, out pixmapWidth, out pixmapHeight) ?? -1;
        try
        {
            ulong inode = pixmap >= 0 ? Inode(pixmap) : 0;
            if (pixmap >= 0 && w.FromPixmap && inode == w.PixmapInode)
            {
                // the pixmap granted already (the window's own border went after it was granted)
                return;
            }
            w.Retired?.Dispose();
            w.Retired = w.Image;
            w.Image = null;
            w.Capture?.Dispose();
            w.Capture = null;
            if (w.FromPixmap)
            {
                w.FromPixmap = false;
                PixmapWindows--;
            }
            if (pixmap >= 0 && pixmapWidth == width && pixmapHeight == height && GrantPixmap(w, pixmap, width, height))
            {
                w.PixmapInode = inode;
            }
            else
            {
                ShareImage(w, width, height);
            }
        }
        finally
        {
            if (pixmap >= 0)
            {
                Libc.close(pixmap);
            }
        }
        int length = w.Image!.WriteDump(_message, (uint)w.Id);
        _connection.Send(_message.AsSpan(0, length));
    }

    private static ulong Inode(int file)
    {
        Libc.stat st;
        return Libc.fstat(file, &st) == 0 ? st.st_ino : 0;
    }

    /// <summary>Grants the X server's own pixmap of the window: the server draws the window into the granted pages itself.</summary>
    private bool GrantPixmap(Window w, int pixmap, int width, int height)
    {
        try
        {
            w.Image = new SharedWindowImage(_platform, _connection.PeerDomain, width, height, pixmap);
            w.FromPixmap = true;
            PixmapWindows++;
            return true;
        }
        catch (PlatformException e)
        {
            // a platform that grants only pages it allocates: windows are read back from now on
            if (e.Errno == Errno.ENOTSUP)
            {
                _pixmaps!.Dispose();
                _pixmaps = null;
            }
            return false;
        }
    }

    /// <summary>Pages of the agent's own for the window, which it reads the window into at each change.</summary>
    private void ShareImage(Window w, int width, int height)
    {
        Visual* visual = Xlib.XDefaultVisual(_d, _display.DefaultScreen);
        int depth = Xlib.XDefaultDepth(_d, _display.DefaultScreen);
        // where the platform keeps the pages in a file, our X server writes the window's pixels
        // into them itself (attached before the grant seals the file against writable mappings);
        // else into a segment of our own, copied into the pages at each damage
        ShmImage? direct = null;
        try
        {
            w.Image = new SharedWindowImage(_platform, _connection.PeerDomain, width, height,
                (file, address) => direct = ShmImage.OnFile(_display, visual, depth, width, height, width * GuiProtocol.BytesPerPixel, file, address, readOnly: false));
        }
        catch
        {
            // attached, but the grant was refused: the server lets go of the pages too
            direct?.Dispose();
            throw;
        }
        w.Direct = direct != null;
        w.Capture = direct ?? ShmImage.Create(_display, visual, depth, width, height);
    }

    /// <summary>
    /// Adds a rectangle the qube's X server reported changed (raw rectangles: each drawing's own,
    /// nothing kept or subtracted in the server) to what the window will read once the events that
    /// wait now have all been taken (<see cref="UpdateDamaged"/>).
    /// </summary>
    private void Damaged(Window w, in XRectangle area)
    {
        if (area.width == 0 || area.height == 0)
        {
            return;
        }
        int left = area.x, top = area.y, right = area.x + area.width, bottom = area.y + area.height;
        if (w.DamageRight <= w.DamageLeft || w.DamageBottom <= w.DamageTop)
        {
            (w.DamageLeft, w.DamageTop, w.DamageRight, w.DamageBottom) = (left, top, right, bottom);
            _damagedWindows.Add(w);
            return;
        }
        w.DamageLeft = Math.Min(w.DamageLeft, left);
        w.DamageTop = Math.Min(w.DamageTop, top);
        w.DamageRight = Math.Max(w.DamageRight, right);
        w.DamageBottom = Math.Max(w.DamageBottom, bottom);
    }

    /// <summary>
    /// Reads what changed in each damaged window, one request per window however many drawings
    /// changed it since: a client drawing faster than the daemon shows costs one read per burst.
    /// </summary>
    private void UpdateDamaged()
    {
        foreach (Window w in _damagedWindows)
        {
            int x = w.DamageLeft, y = w.DamageTop, width = w.DamageRight - x, height = w.DamageBottom - y;
            w.DamageLeft = w.DamageTop = w.DamageRight = w.DamageBottom = 0;
            if (w.Mapped && w.Damage != 0)
            {
                Update(w, x, y, width, height);
            }
        }
        _damagedWindows.Clear();
    }

    /// <summary>
    /// Tells the daemon a rectangle of the window changed, after reading it into the granted pages
    /// unless the window is granted from its own pixmap (the server drew it there already).
    /// </summary>
    private void Update(Window w, int x, int y, int width, int height)
    {
        if (w.Image == null || (w.Capture == null && !w.FromPixmap))
        {
            return;
        }
        x = Math.Clamp(x, 0, w.Image.Width);
        y = Math.Clamp(y, 0, w.Image.Height);
        width = Math.Min(width, w.Image.Width - x);
        height = Math.Min(height, w.Image.Height - y);
        if (width <= 0 || height <= 0)
        {
            return;
        }
        if (w.FromPixmap)
        {
            Send(MessageType.ShmImage, w.Id, [(uint)x, (uint)y, (uint)width, (uint)height]);
            return;
        }
        // the changed rows, whole, into the same rows of the capture (one request): the granted
        // pages themselves when our X server has them attached, else our own segment, whose
        // changed rectangle is copied over. The image's header is pointed at those rows for the
        // request: the server writes height rows at data - shmaddr.
        X11ErrorTrap.Reset(_d);
        XImage* image = w.Capture!.Image;
        byte* data = image->data;
        int rows = image->height;
        image->data = data + (long)y * image->bytes_per_line;
        image->height = height;
        int got = XShm.XShmGetImage(_d, w.Id, image, 0, y, Xlib.AllPlanes);
        Interlocked.Increment(ref _reads);
        image->data = data;
        image->height = rows;
        if (got == 0)
        {
            return;
        }
        if (!w.Direct)
        {
            Span<byte> source = w.Capture.Data, target = w.Image.Pixels;
            int stride = w.Image.Stride;
            for (int row = y; row < y + height; row++)
            {
                source.Slice(row * w.Capture.BytesPerLine + x * 4, width * 4).CopyTo(target.Slice(row * stride + x * 4));
            }
        }
        Send(MessageType.ShmImage, w.Id, [(uint)x, (uint)y, (uint)width, (uint)height]);
    }

    /// <summary>
    /// The qube's X server shows another cursor: the window under the pointer gets its shape from
    /// the cursor font when the cursor is named after one, else the default (spec §12).
    /// </summary>
    private void CursorChanged(ulong name)
    {
        if (!_cursorByName.TryGetValue(name, out uint cursor))
        {
            int glyph = -1;
            byte* text = name == 0 ? null : Xlib.XGetAtomName(_d, name);
            if (text != null)
            {
                glyph = CursorFont.Glyph(new string((sbyte*)text));
                Xlib.XFree(text);
            }
            cursor = glyph < 0 ? GuiProtocol.CursorDefault : GuiProtocol.CursorX11 | (uint)glyph;
            _cursorByName[name] = cursor;
        }
        ulong rootReturn, child;
        int rootX, rootY, x, y;
        uint mask;
        if (Xlib.XQueryPointer(_d, _root, &rootReturn, &child, &rootX, &rootY, &x, &y, &mask) != 0
            && _windows.TryGetValue(child, out Window? w) && w.Mapped)
        {
            Send(MessageType.Cursor, w.Id, [cursor]);
        }
    }

    private void SendTitle(Window w)
    {
        Span<byte> message = _message.AsSpan(0, GuiProtocol.HeaderSize + GuiProtocol.NameSize);
        message.Clear();
        GuiProtocol.WriteHeader(message, MessageType.WmName, (uint)w.Id, GuiProtocol.NameSize);
        if (!ReadText(w.Id, _netWmName, _utf8String, message[GuiProtocol.HeaderSize..^1]))
        {
            ReadText(w.Id, _wmName, Xlib.XA_STRING, message[GuiProtocol.HeaderSize..^1]);
        }
        _connection.Send(message);
    }

    /// <summary>WM_CLASS: the class and instance names a window manager groups windows by (the daemon takes it only before MAP).</summary>
    private void SendClass(Window w)
    {
        XClassHint hint = default;
        X11ErrorTrap.Reset(_d);
        if (Xlib.XGetClassHint(_d, w.Id, &hint) == 0)
        {
            return;
        }
        const int Field = GuiProtocol.ClassFieldSize;
        Span<byte> message = _message.AsSpan(0, GuiProtocol.HeaderSize + 2 * Field);
        message.Clear();
        GuiProtocol.WriteHeader(message, MessageType.WmClass, (uint)w.Id, 2 * Field);
        CopyCString(hint.res_class, message.Slice(GuiProtocol.HeaderSize, Field - 1));
        CopyCString(hint.res_name, message.Slice(GuiProtocol.HeaderSize + Field, Field - 1));
        Xlib.XFree(hint.res_class);
        Xlib.XFree(hint.res_name);
        _connection.Send(message);
    }

    private static void CopyCString(byte* text, Span<byte> destination)
    {
        if (text != null)
        {
            ReadOnlySpan<byte> value = System.Runtime.InteropServices.MemoryMarshal.CreateReadOnlySpanFromNullTerminated(text);
            value[..Math.Min(value.Length, destination.Length)].CopyTo(destination);
        }
    }

    /// <summary>WM_NORMAL_HINTS: the sizes the window accepts (the daemon keeps the flags it honours).</summary>
    private void SendHints(Window w)
    {
        XSizeHints hints = default;
        long supplied;
        X11ErrorTrap.Reset(_d);
        if (Xlib.XGetWMNormalHints(_d, w.Id, &hints, &supplied) == 0)
        {
            return;
        }
        Send(MessageType.WindowHints, w.Id, [(uint)hints.flags, (uint)hints.min_width, (uint)hints.min_height, (uint)hints.max_width, (uint)hints.max_height,
            (uint)hints.width_inc, (uint)hints.height_inc, (uint)hints.base_width, (uint)hints.base_height]);
    }

    private bool ReadText(ulong window, ulong property, ulong type, Span<byte> destination)
    {
        ulong actualType, items, after;
        int format;
        byte* data = null;
        if (Xlib.XGetWindowProperty(_d, window, property, 0, GuiProtocol.NameSize / 4, 0, type, &actualType, &format, &items, &after, &data) != Xlib.Success || data == null)
        {
            return false;
        }
        try
        {
            if (format != 8 || items == 0)
            {
                return false;
            }
            new ReadOnlySpan<byte>(data, (int)Math.Min(items, (ulong)destination.Length)).CopyTo(destination);
            return true;
        }
        finally
        {
            Xlib.XFree(data);
        }
    }

    /// <summary>
    /// Handles what the qube's X server reports, then reads the windows that changed; events that
    /// came in while the reads waited for their replies are handled before returning.
    /// </summary>
    private void HandleXEvents()
    {
        do
        {
            TakeXEvents();
            UpdateDamaged();
        }
        while (Xlib.XEventsQueued(_d, Xlib.QueuedAlready) > 0);
    }

    private void TakeXEvents()
    {
        XEvent e;
        while (Xlib.XPending(_d) > 0)
        {
            Xlib.XNextEvent(_d, &e);
            Window? w;
            switch (e.type)
            {
                case Xlib.CreateNotify when e.xcreatewindow.parent == _root:
                    Created(e.xcreatewindow.window, e.xcreatewindow.x, e.xcreatewindow.y, e.xcreatewindow.width, e.xcreatewindow.height, e.xcreatewindow.border_width, e.xcreatewindow.override_redirect != 0);
                    break;
                case Xlib.MapNotify when e.xmap.@event == _root:
                    Mapped(e.xmap.window);
                    break;
                case Xlib.UnmapNotify when e.xunmap.@event == _root && _windows.TryGetValue(e.xunmap.window, out w):
                    if (w.Mapped)
                    {
                        w.Mapped = false;
                        if (w.Damage != 0)
                        {
                            Xdamage.XDamageDestroy(_d, w.Damage);
                            w.Damage = 0;
                        }
                        Send(MessageType.Unmap, w.Id, []);
                    }
                    break;
                case Xlib.DestroyNotify when e.xdestroywindow.@event == _root && _windows.Remove(e.xdestroywindow.window, out w):
                    Send(MessageType.Destroy, w.Id, []);
                    // the daemon acknowledges DESTROY; the pages may go now that it has no window for them
                    w.Image?.Dispose();
                    w.Retired?.Dispose();
                    w.Capture?.Dispose();
                    PixmapWindows -= w.FromPixmap ? 1 : 0;
                    break;
                case Xlib.ConfigureNotify when e.xconfigure.@event == _root && _windows.TryGetValue(e.xconfigure.window, out w):
                    // a new size, or a new border (the agent takes managed windows' away), gives the window a new pixmap
                    bool resized = e.xconfigure.width != w.Width || e.xconfigure.height != w.Height || e.xconfigure.border_width != w.BorderWidth;
                    w.BorderWidth = e.xconfigure.border_width;
                    (w.X, w.Y, w.Width, w.Height) = (e.xconfigure.x, e.xconfigure.y, e.xconfigure.width, e.xconfigure.height);
                    Send(MessageType.Configure, w.Id, [(uint)w.X, (uint)w.Y, (uint)w.Width, (uint)w.Height, w.OverrideRedirect ? 1u : 0u]);
                    if (resized && w.Mapped)
                    {
                        NewImage(w);
                        Update(w, 0, 0, w.Width, w.Height);
                    }
                    break;
                case Xlib.SelectionNotify when e.xselection.requestor == _clipboardWindow && e.xselection.selection == _clipboard:
                    SendClipboard(e.xselection.property);
                    break;
                case Xlib.SelectionRequest when e.xselectionrequest.owner == _clipboardWindow:
                    ServeClipboard(ref e.xselectionrequest);
                    break;
                case Xlib.SelectionClear when e.xselectionclear.window == _clipboardWindow:
                    _pastedLength = -1;
                    break;
                case Xlib.PropertyNotify when e.xproperty.atom == Xlib.XA_WM_NORMAL_HINTS && _windows.TryGetValue(e.xproperty.window, out w) && w.Mapped:
                    SendHints(w);
                    break;
                case Xlib.PropertyNotify when (e.xproperty.atom == _wmName || e.xproperty.atom == _netWmName) && _windows.TryGetValue(e.xproperty.window, out w):
                    SendTitle(w);
                    break;
                default:
                    if (e.type == _damageEvent + Xdamage.XDamageNotify && _windows.TryGetValue(e.xdamage.drawable, out w) && w.Damage != 0)
                    {
                        Damaged(w, e.xdamage.area);
                    }
                    else if (e.type == _cursorEvent)
                    {
                        CursorChanged(e.xfixescursor.cursor_name);
                    }
                    break;
            }
        }
    }

    /// <summary>Plays the daemon's messages into the qube's X server.</summary>
    private void HandleDaemonMessages()
    {
        while (_connection.HasMessage)
        {
            if (!_connection.TryRead(out MessageType type, out uint id, out ReadOnlySpan<byte> body))
            {
                return;
            }
            _windows.TryGetValue(id, out Window? w);
            switch (type)
            {
                case MessageType.KeyPress when body.Length >= 20:
                    XTest.XTestFakeKeyEvent(_d, GuiProtocol.U32(body, 4), GuiProtocol.U32(body, 0) == Xlib.KeyPress ? 1 : 0, 0);
                    break;
                case MessageType.Button when body.Length >= 20 && w != null:
                    XTest.XTestFakeMotionEvent(_d, _display.DefaultScreen, w.X + GuiProtocol.I32(body, 1), w.Y + GuiProtocol.I32(body, 2), 0);
                    XTest.XTestFakeButtonEvent(_d, GuiProtocol.U32(body, 4), GuiProtocol.U32(body, 0) == Xlib.ButtonPress ? 1 : 0, 0);
                    break;
                case MessageType.Motion when body.Length >= 16 && w != null:
                    XTest.XTestFakeMotionEvent(_d, _display.DefaultScreen, w.X + GuiProtocol.I32(body, 0), w.Y + GuiProtocol.I32(body, 1), 0);
                    break;
                case MessageType.Focus when body.Length >= 12 && w != null && GuiProtocol.U32(body, 0) == Xlib.FocusIn:
                    X11ErrorTrap.Reset(_d);
                    Xlib.XSetInputFocus(_d, w.Id, Xlib.RevertToParent, Xlib.CurrentTime);
                    break;
                case MessageType.Configure when body.Length >= 20 && w != null:
                    Xlib.XMoveResizeWindow(_d, w.Id, GuiProtocol.I32(body, 0), GuiProtocol.I32(body, 1), Math.Max(GuiProtocol.U32(body, 2), 1), Math.Max(GuiProtocol.U32(body, 3), 1));
                    break;
                case MessageType.Close when w != null:
                    XEvent close = default;
                    close.xclient.type = Xlib.ClientMessage;
                    close.xclient.window = w.Id;
                    close.xclient.message_type = _wmProtocols;
                    close.xclient.format = 32;
                    close.xclient.data.l[0] = (long)_wmDelete;
                    close.xclient.data.l[1] = (long)Xlib.CurrentTime;
                    Xlib.XSendEvent(_d, w.Id, 0, Xlib.NoEventMask, &close);
                    break;
                case MessageType.ClipboardReq:
                    if (Xlib.XGetSelectionOwner(_d, _clipboard) == 0)
                    {
                        SendClipboard(0);
                    }
                    else
                    {
                        Xlib.XConvertSelection(_d, _clipboard, _utf8String, _clipboardProperty, _clipboardWindow, Xlib.CurrentTime);
                    }
                    break;
                case MessageType.ClipboardData:
                    body.CopyTo(_pasted);
                    _pastedLength = body.Length;
                    Xlib.XSetSelectionOwner(_d, _clipboard, _clipboardWindow, Xlib.CurrentTime);
                    break;
                case MessageType.WindowDumpAck when w != null:
                    w.Retired?.Dispose();
                    w.Retired = null;
                    break;
            }
        }
        Xlib.XFlush(_d);
    }

    /// <summary>
    /// Sends the qube's clipboard as converted into <paramref name="property"/> of the agent's
    /// window (0: there is none, an empty clipboard). More than the protocol carries goes as one
    /// byte more than the limit, so that the daemon reports it too large rather than cut it.
    /// </summary>
    private void SendClipboard(ulong property)
    {
        int length = 0;
        if (property != 0)
        {
            ulong actualType, items, after;
            int format;
            byte* data = null;
            const int Longest = GuiProtocol.MaxClipboardBufferSize + 1;
            if (Xlib.XGetWindowProperty(_d, _clipboardWindow, property, 0, (Longest + 3) / 4, 1, Xlib.AnyPropertyType, &actualType, &format, &items, &after, &data) == Xlib.Success && data != null)
            {
                if (format == 8)
                {
                    length = (int)Math.Min(items, (ulong)Longest);
                    new ReadOnlySpan<byte>(data, length).CopyTo(_message.AsSpan(GuiProtocol.HeaderSize));
                }
                Xlib.XFree(data);
            }
        }
        GuiProtocol.WriteHeader(_message, MessageType.ClipboardData, 0, (uint)length);
        _connection.Send(_message.AsSpan(0, GuiProtocol.HeaderSize + length));
    }

    /// <summary>Gives what dom0 pasted to a program of the qube that asks for the CLIPBOARD selection.</summary>
    private void ServeClipboard(ref XSelectionRequestEvent request)
    {
        ulong property = request.property == 0 ? request.target : request.property;
        bool served = false;
        if (_pastedLength >= 0 && request.target == _targets)
        {
            ulong* targets = stackalloc ulong[] { _targets, _utf8String, Xlib.XA_STRING, _text };
            Xlib.XChangeProperty(_d, request.requestor, property, Xlib.XA_ATOM, 32, Xlib.PropModeReplace, (byte*)targets, 4);
            served = true;
        }
        else if (_pastedLength >= 0 && (request.target == _utf8String || request.target == Xlib.XA_STRING || request.target == _text))
        {
            fixed (byte* data = _pasted)
            {
                Xlib.XChangeProperty(_d, request.requestor, property, request.target == _text ? _utf8String : request.target, 8, Xlib.PropModeReplace, data, _pastedLength);
            }
            served = true;
        }
        XEvent reply = default;
        reply.xselection.type = Xlib.SelectionNotify;
        reply.xselection.requestor = request.requestor;
        reply.xselection.selection = request.selection;
        reply.xselection.target = request.target;
        reply.xselection.property = served ? property : 0;
        reply.xselection.time = request.time;
        X11ErrorTrap.Reset(_d);
        Xlib.XSendEvent(_d, request.requestor, 0, Xlib.NoEventMask, &reply);
    }

    /// <summary>Runs until the daemon goes (0) or <paramref name="stopFd"/> becomes readable.</summary>
    public int Run(int stopFd = -1)
    {
        Span<Libc.pollfd> fds = stackalloc Libc.pollfd[3];
        fds[0] = new Libc.pollfd { fd = _connection.EventFd, events = Libc.POLLIN };
        fds[1] = new Libc.pollfd { fd = Xlib.XConnectionNumber(_d), events = Libc.POLLIN };
        fds[2] = new Libc.pollfd { fd = stopFd, events = Libc.POLLIN };
        while (true)
        {
            HandleXEvents();
            HandleDaemonMessages();
            if (!_connection.IsOpen || _display.IsConnectionLost)
            {
                return 0;
            }
            Xlib.XFlush(_d);
            fds[0].revents = fds[1].revents = fds[2].revents = 0;
            // events read while the daemon's messages waited for replies do not wake the poll
            int timeout = Xlib.XEventsQueued(_d, Xlib.QueuedAlready) > 0 ? 0 : 100;
            fixed (Libc.pollfd* p = fds)
            {
                Libc.poll(p, stopFd >= 0 ? 3u : 2u, timeout);
            }
            if (stopFd >= 0 && fds[2].revents != 0)
            {
                return 0;
            }
        }
    }

    public void Dispose()
    {
        foreach (Window w in _windows.Values)
        {
            w.Image?.Dispose();
            w.Retired?.Dispose();
            w.Capture?.Dispose();
        }
        _windows.Clear();
        Xlib.XDestroyWindow(_d, _clipboardWindow);
        _pixmaps?.Dispose();
        _connection.Dispose();
        _display.Dispose();
    }
}
