namespace Qubes.Interop.X11;

// Constants of <X11/Xutil.h>: hint flags, window states and XGetVisualInfo masks.
public static partial class Xlib
{
    // XSizeHints.flags
    public const long USPosition = 1L << 0;
    public const long USSize = 1L << 1;
    public const long PPosition = 1L << 2;
    public const long PSize = 1L << 3;
    public const long PMinSize = 1L << 4;
    public const long PMaxSize = 1L << 5;
    public const long PResizeInc = 1L << 6;
    public const long PAspect = 1L << 7;
    public const long PBaseSize = 1L << 8;
    public const long PWinGravity = 1L << 9;

    // XWMHints.flags
    public const long InputHint = 1L << 0;
    public const long StateHint = 1L << 1;
    public const long IconPixmapHint = 1L << 2;
    public const long IconWindowHint = 1L << 3;
    public const long IconPositionHint = 1L << 4;
    public const long IconMaskHint = 1L << 5;
    public const long WindowGroupHint = 1L << 6;
    public const long XUrgencyHint = 1L << 8;

    public const int WithdrawnState = 0;
    public const int NormalState = 1;
    public const int IconicState = 3;

    // XGetVisualInfo vinfo_mask
    public const long VisualNoMask = 0x0;
    public const long VisualIDMask = 0x1;
    public const long VisualScreenMask = 0x2;
    public const long VisualDepthMask = 0x4;
    public const long VisualClassMask = 0x8;
    public const long VisualAllMask = 0x1FF;
}
