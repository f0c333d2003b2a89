namespace Qubes.Interop.X11;

// The predefined atoms of <X11/Xatom.h> that window properties and selections use; every other
// atom (_NET_WM_NAME, UTF8_STRING, CLIPBOARD, ...) comes from XInternAtom.
public static partial class Xlib
{
    public const ulong XA_PRIMARY = 1;
    public const ulong XA_SECONDARY = 2;
    public const ulong XA_ATOM = 4;
    public const ulong XA_BITMAP = 5;
    public const ulong XA_CARDINAL = 6;
    public const ulong XA_CURSOR = 8;
    public const ulong XA_DRAWABLE = 17;
    public const ulong XA_INTEGER = 19;
    public const ulong XA_PIXMAP = 20;
    public const ulong XA_STRING = 31;
    public const ulong XA_VISUALID = 32;
    public const ulong XA_WINDOW = 33;
    public const ulong XA_WM_COMMAND = 34;
    public const ulong XA_WM_HINTS = 35;
    public const ulong XA_WM_CLIENT_MACHINE = 36;
    public const ulong XA_WM_ICON_NAME = 37;
    public const ulong XA_WM_ICON_SIZE = 38;
    public const ulong XA_WM_NAME = 39;
    public const ulong XA_WM_NORMAL_HINTS = 40;
    public const ulong XA_WM_SIZE_HINTS = 41;
    public const ulong XA_WM_CLASS = 67;
    public const ulong XA_WM_TRANSIENT_FOR = 68;
}
