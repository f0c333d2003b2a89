using System.Runtime.InteropServices;

namespace Qubes.Interop.X11;

// The event structs of <X11/Xlib.h>. Each starts with type, serial, send_event, display; XEvent
// overlays them all in 192 bytes, the size Xlib reads and writes for every event.

/// <summary>Fields every core event starts with; <c>window</c> is the one the event is reported on.</summary>
[StructLayout(LayoutKind.Sequential)]
public struct XAnyEvent
{
    public int type;
    public ulong serial;
    public int send_event;
    public nint display;
    public ulong window;
}

/// <summary>KeyPress / KeyRelease.</summary>
[StructLayout(LayoutKind.Sequential)]
public struct XKeyEvent
{
    public int type;
    public ulong serial;
    public int send_event;
    public nint display;
    public ulong window;
    public ulong root;
    public ulong subwindow;
    public ulong time;
    public int x;
    public int y;
    public int x_root;
    public int y_root;
    public uint state;
    public uint keycode;
    public int same_screen;
}

/// <summary>ButtonPress / ButtonRelease.</summary>
[StructLayout(LayoutKind.Sequential)]
public struct XButtonEvent
{
    public int type;
    public ulong serial;
    public int send_event;
    public nint display;
    public ulong window;
    public ulong root;
    public ulong subwindow;
    public ulong time;
    public int x;
    public int y;
    public int x_root;
    public int y_root;
    public uint state;
    public uint button;
    public int same_screen;
}

/// <summary>MotionNotify.</summary>
[StructLayout(LayoutKind.Sequential)]
public struct XMotionEvent
{
    public int type;
    public ulong serial;
    public int send_event;
    public nint display;
    public ulong window;
    public ulong root;
    public ulong subwindow;
    public ulong time;
    public int x;
    public int y;
    public int x_root;
    public int y_root;
    public uint state;
    public byte is_hint;
    public int same_screen;
}

/// <summary>EnterNotify / LeaveNotify.</summary>
[StructLayout(LayoutKind.Sequential)]
public struct XCrossingEvent
{
    public int type;
    public ulong serial;
    public int send_event;
    public nint display;
    public ulong window;
    public ulong root;
    public ulong subwindow;
    public ulong time;
    public int x;
    public int y;
    public int x_root;
    public int y_root;
    public int mode;
    public int detail;
    public int same_screen;
    public int focus;
    public uint state;
}

/// <summary>FocusIn / FocusOut.</summary>
[StructLayout(LayoutKind.Sequential)]
public struct XFocusChangeEvent
{
    public int type;
    public ulong serial;
    public int send_event;
    public nint display;
    public ulong window;
    public int mode;
    public int detail;
}

/// <summary>KeymapNotify: the whole keyboard state after EnterNotify/FocusIn, one bit per keycode.</summary>
[StructLayout(LayoutKind.Sequential)]
public unsafe struct XKeymapEvent
{
    public int type;
    public ulong serial;
    public int send_event;
    public nint display;
    public ulong window;
    public fixed byte key_vector[32];
}

/// <summary>Expose.</summary>
[StructLayout(LayoutKind.Sequential)]
public struct XExposeEvent
{
    public int type;
    public ulong serial;
    public int send_event;
    public nint display;
    public ulong window;
    public int x;
    public int y;
    public int width;
    public int height;
    public int count;
}

/// <summary>GraphicsExpose, from XCopyArea when graphics_exposures is on.</summary>
[StructLayout(LayoutKind.Sequential)]
public struct XGraphicsExposeEvent
{
    public int type;
    public ulong serial;
    public int send_event;
    public nint display;
    public ulong drawable;
    public int x;
    public int y;
    public int width;
    public int height;
    public int count;
    public int major_code;
    public int minor_code;
}

/// <summary>NoExpose, from XCopyArea when graphics_exposures is on and nothing was obscured.</summary>
[StructLayout(LayoutKind.Sequential)]
public struct XNoExposeEvent
{
    public int type;
    public ulong serial;
    public int send_event;
    public nint display;
    public ulong drawable;
    public int major_code;
    public int minor_code;
}

/// <summary>VisibilityNotify.</summary>
[StructLayout(LayoutKind.Sequential)]
public struct XVisibilityEvent
{
    public int type;
    public ulong serial;
    public int send_event;
    public nint display;
    public ulong window;
    public int state;
}

/// <summary>CreateNotify (SubstructureNotify on the parent).</summary>
[StructLayout(LayoutKind.Sequential)]
public struct XCreateWindowEvent
{
    public int type;
    public ulong serial;
    public int send_event;
    public nint display;
    public ulong parent;
    public ulong window;
    public int x;
    public int y;
    public int width;
    public int height;
    public int border_width;
    public int override_redirect;
}

/// <summary>DestroyNotify.</summary>
[StructLayout(LayoutKind.Sequential)]
public struct XDestroyWindowEvent
{
    public int type;
    public ulong serial;
    public int send_event;
    public nint display;
    public ulong @event;
    public ulong window;
}

/// <summary>UnmapNotify.</summary>
[StructLayout(LayoutKind.Sequential)]
public struct XUnmapEvent
{
    public int type;
    public ulong serial;
    public int send_event;
    public nint display;
    public ulong @event;
    public ulong window;
    public int from_configure;
}

/// <summary>MapNotify.</summary>
[StructLayout(LayoutKind.Sequential)]
public struct XMapEvent
{
    public int type;
    public ulong serial;
    public int send_event;
    public nint display;
    public ulong @event;
    public ulong window;
    public int override_redirect;
}

/// <summary>MapRequest (SubstructureRedirect on the parent).</summary>
[StructLayout(LayoutKind.Sequential)]
public struct XMapRequestEvent
{
    public int type;
    public ulong serial;
    public int send_event;
    public nint display;
    public ulong parent;
    public ulong window;
}

/// <summary>ReparentNotify.</summary>
[StructLayout(LayoutKind.Sequential)]
public struct XReparentEvent
{
    public int type;
    public ulong serial;
    public int send_event;
    public nint display;
    public ulong @event;
    public ulong window;
    public ulong parent;
    public int x;
    public int y;
    public int override_redirect;
}

/// <summary>ConfigureNotify.</summary>
[StructLayout(LayoutKind.Sequential)]
public struct XConfigureEvent
{
    public int type;
    public ulong serial;
    public int send_event;
    public nint display;
    public ulong @event;
    public ulong window;
    public int x;
    public int y;
    public int width;
    public int height;
    public int border_width;
    public ulong above;
    public int override_redirect;
}

/// <summary>ConfigureRequest (SubstructureRedirect on the parent); value_mask holds CW* bits.</summary>
[StructLayout(LayoutKind.Sequential)]
public struct XConfigureRequestEvent
{
    public int type;
    public ulong serial;
    public int send_event;
    public nint display;
    public ulong parent;
    public ulong window;
    public int x;
    public int y;
    public int width;
    public int height;
    public int border_width;
    public ulong above;
    public int detail;
    public ulong value_mask;
}

/// <summary>PropertyNotify; state is PropertyNewValue or PropertyDelete.</summary>
[StructLayout(LayoutKind.Sequential)]
public struct XPropertyEvent
{
    public int type;
    public ulong serial;
    public int send_event;
    public nint display;
    public ulong window;
    public ulong atom;
    public ulong time;
    public int state;
}

/// <summary>SelectionClear: this client lost ownership of <c>selection</c>.</summary>
[StructLayout(LayoutKind.Sequential)]
public struct XSelectionClearEvent
{
    public int type;
    public ulong serial;
    public int send_event;
    public nint display;
    public ulong window;
    public ulong selection;
    public ulong time;
}

/// <summary>SelectionRequest: another client asks the owner to convert <c>selection</c> to <c>target</c> into <c>property</c> of <c>requestor</c>.</summary>
[StructLayout(LayoutKind.Sequential)]
public struct XSelectionRequestEvent
{
    public int type;
    public ulong serial;
    public int send_event;
    public nint display;
    public ulong owner;
    public ulong requestor;
    public ulong selection;
    public ulong target;
    public ulong property;
    public ulong time;
}

/// <summary>SelectionNotify: the conversion is done; <c>property</c> is None when it was refused.</summary>
[StructLayout(LayoutKind.Sequential)]
public struct XSelectionEvent
{
    public int type;
    public ulong serial;
    public int send_event;
    public nint display;
    public ulong requestor;
    public ulong selection;
    public ulong target;
    public ulong property;
    public ulong time;
}

/// <summary>ClientMessage, e.g. WM_PROTOCOLS / WM_DELETE_WINDOW with the protocol atom in data.l[0].</summary>
[StructLayout(LayoutKind.Sequential)]
public struct XClientMessageEvent
{
    public int type;
    public ulong serial;
    public int send_event;
    public nint display;
    public ulong window;
    public ulong message_type;
    public int format;
    public XClientMessageData data;
}

/// <summary>MappingNotify: the keyboard or pointer mapping changed (call XRefreshKeyboardMapping).</summary>
[StructLayout(LayoutKind.Sequential)]
public struct XMappingEvent
{
    public int type;
    public ulong serial;
    public int send_event;
    public nint display;
    public ulong window;
    public int request;
    public int first_keycode;
    public int count;
}

/// <summary>The data union of XClientMessageEvent: 20 bytes read as format 8, 16 or 32 (C long) items.</summary>
[StructLayout(LayoutKind.Explicit, Size = 40)]
public unsafe struct XClientMessageData
{
    [FieldOffset(0)] public fixed byte b[20];
    [FieldOffset(0)] public fixed short s[10];
    [FieldOffset(0)] public fixed long l[5];
}

/// <summary>
/// XErrorEvent: what an error handler receives. Unlike the events it has no send_event, and display
/// comes second.
/// </summary>
[StructLayout(LayoutKind.Sequential)]
public struct XErrorEvent
{
    public int type;
    public nint display;
    public ulong resourceid;
    public ulong serial;
    public byte error_code;
    public byte request_code;
    public byte minor_code;
}

/// <summary>
/// The XEvent union. The x* members are its C members; the last four are the extension events
/// Xlib delivers in the same 192 bytes (C code casts XEvent* to them), laid over it here so readers
/// need no pointer cast. Check <c>type</c> before reading a member.
/// </summary>
[StructLayout(LayoutKind.Explicit, Size = 192)]
public unsafe struct XEvent
{
    [FieldOffset(0)] public int type;
    [FieldOffset(0)] public XAnyEvent xany;
    [FieldOffset(0)] public XKeyEvent xkey;
    [FieldOffset(0)] public XButtonEvent xbutton;
    [FieldOffset(0)] public XMotionEvent xmotion;
    [FieldOffset(0)] public XCrossingEvent xcrossing;
    [FieldOffset(0)] public XFocusChangeEvent xfocus;
    [FieldOffset(0)] public XExposeEvent xexpose;
    [FieldOffset(0)] public XGraphicsExposeEvent xgraphicsexpose;
    [FieldOffset(0)] public XNoExposeEvent xnoexpose;
    [FieldOffset(0)] public XVisibilityEvent xvisibility;
    [FieldOffset(0)] public XCreateWindowEvent xcreatewindow;
    [FieldOffset(0)] public XDestroyWindowEvent xdestroywindow;
    [FieldOffset(0)] public XUnmapEvent xunmap;
    [FieldOffset(0)] public XMapEvent xmap;
    [FieldOffset(0)] public XMapRequestEvent xmaprequest;
    [FieldOffset(0)] public XReparentEvent xreparent;
    [FieldOffset(0)] public XConfigureEvent xconfigure;
    [FieldOffset(0)] public XConfigureRequestEvent xconfigurerequest;
    [FieldOffset(0)] public XPropertyEvent xproperty;
    [FieldOffset(0)] public XSelectionClearEvent xselectionclear;
    [FieldOffset(0)] public XSelectionRequestEvent xselectionrequest;
    [FieldOffset(0)] public XSelectionEvent xselection;
    [FieldOffset(0)] public XClientMessageEvent xclient;
    [FieldOffset(0)] public XMappingEvent xmapping;
    [FieldOffset(0)] public XErrorEvent xerror;
    [FieldOffset(0)] public XKeymapEvent xkeymap;
    [FieldOffset(0)] public XDamageNotifyEvent xdamage;
    [FieldOffset(0)] public XShmCompletionEvent xshmcompletion;
    [FieldOffset(0)] public XFixesSelectionNotifyEvent xfixesselection;
    [FieldOffset(0)] public XFixesCursorNotifyEvent xfixescursor;
    [FieldOffset(0)] public fixed long pad[24];
}
