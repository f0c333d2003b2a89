namespace Qubes.Interop.X11;

// Constants of <X11/X.h> and <X11/Xlib.h>, typed as the calls and fields that take them:
// event masks are C long, CW* attribute masks and GC* masks unsigned long, CWX.. unsigned int,
// modifier and button state unsigned int.
public static partial class Xlib
{
    public const ulong None = 0;
    public const ulong ParentRelative = 1;
    public const int CopyFromParent = 0;
    public const ulong PointerRoot = 1;
    public const ulong AnyPropertyType = 0;
    public const ulong CurrentTime = 0;
    public const ulong NoSymbol = 0;
    public const int False = 0;
    public const int True = 1;

    /// <summary>(unsigned long)~0L: every plane, the plane mask XGetImage wants for full pixels.</summary>
    public const ulong AllPlanes = ulong.MaxValue;

    // event masks (XSelectInput, XSetWindowAttributes.event_mask, XSendEvent)
    public const long NoEventMask = 0;
    public const long KeyPressMask = 1L << 0;
    public const long KeyReleaseMask = 1L << 1;
    public const long ButtonPressMask = 1L << 2;
    public const long ButtonReleaseMask = 1L << 3;
    public const long EnterWindowMask = 1L << 4;
    public const long LeaveWindowMask = 1L << 5;
    public const long PointerMotionMask = 1L << 6;
    public const long PointerMotionHintMask = 1L << 7;
    public const long Button1MotionMask = 1L << 8;
    public const long Button2MotionMask = 1L << 9;
    public const long Button3MotionMask = 1L << 10;
    public const long Button4MotionMask = 1L << 11;
    public const long Button5MotionMask = 1L << 12;
    public const long ButtonMotionMask = 1L << 13;
    public const long KeymapStateMask = 1L << 14;
    public const long ExposureMask = 1L << 15;
    public const long VisibilityChangeMask = 1L << 16;
    public const long StructureNotifyMask = 1L << 17;
    public const long ResizeRedirectMask = 1L << 18;
    public const long SubstructureNotifyMask = 1L << 19;
    public const long SubstructureRedirectMask = 1L << 20;
    public const long FocusChangeMask = 1L << 21;
    public const long PropertyChangeMask = 1L << 22;
    public const long ColormapChangeMask = 1L << 23;
    public const long OwnerGrabButtonMask = 1L << 24;

    // event types
    public const int KeyPress = 2;
    public const int KeyRelease = 3;
    public const int ButtonPress = 4;
    public const int ButtonRelease = 5;
    public const int MotionNotify = 6;
    public const int EnterNotify = 7;
    public const int LeaveNotify = 8;
    public const int FocusIn = 9;
    public const int FocusOut = 10;
    public const int KeymapNotify = 11;
    public const int Expose = 12;
    public const int GraphicsExpose = 13;
    public const int NoExpose = 14;
    public const int VisibilityNotify = 15;
    public const int CreateNotify = 16;
    public const int DestroyNotify = 17;
    public const int UnmapNotify = 18;
    public const int MapNotify = 19;
    public const int MapRequest = 20;
    public const int ReparentNotify = 21;
    public const int ConfigureNotify = 22;
    public const int ConfigureRequest = 23;
    public const int GravityNotify = 24;
    public const int ResizeRequest = 25;
    public const int CirculateNotify = 26;
    public const int CirculateRequest = 27;
    public const int PropertyNotify = 28;
    public const int SelectionClear = 29;
    public const int SelectionRequest = 30;
    public const int SelectionNotify = 31;
    public const int ColormapNotify = 32;
    public const int ClientMessage = 33;
    public const int MappingNotify = 34;
    public const int GenericEvent = 35;
    public const int LASTEvent = 36;

    // key and button state
    public const uint ShiftMask = 1 << 0;
    public const uint LockMask = 1 << 1;
    public const uint ControlMask = 1 << 2;
    public const uint Mod1Mask = 1 << 3;
    public const uint Mod2Mask = 1 << 4;
    public const uint Mod3Mask = 1 << 5;
    public const uint Mod4Mask = 1 << 6;
    public const uint Mod5Mask = 1 << 7;
    public const uint Button1Mask = 1 << 8;
    public const uint Button2Mask = 1 << 9;
    public const uint Button3Mask = 1 << 10;
    public const uint Button4Mask = 1 << 11;
    public const uint Button5Mask = 1 << 12;
    public const uint AnyModifier = 1 << 15;
    public const uint Button1 = 1;
    public const uint Button2 = 2;
    public const uint Button3 = 3;
    public const uint Button4 = 4;
    public const uint Button5 = 5;

    // crossing and focus mode / detail
    public const int NotifyNormal = 0;
    public const int NotifyGrab = 1;
    public const int NotifyUngrab = 2;
    public const int NotifyWhileGrabbed = 3;
    public const int NotifyHint = 1;
    public const int NotifyAncestor = 0;
    public const int NotifyVirtual = 1;
    public const int NotifyInferior = 2;
    public const int NotifyNonlinear = 3;
    public const int NotifyNonlinearVirtual = 4;
    public const int NotifyPointer = 5;
    public const int NotifyPointerRoot = 6;
    public const int NotifyDetailNone = 7;

    public const int VisibilityUnobscured = 0;
    public const int VisibilityPartiallyObscured = 1;
    public const int VisibilityFullyObscured = 2;

    public const int PropertyNewValue = 0;
    public const int PropertyDelete = 1;

    public const int RevertToNone = 0;
    public const int RevertToPointerRoot = 1;
    public const int RevertToParent = 2;

    public const int GrabModeSync = 0;
    public const int GrabModeAsync = 1;
    public const int GrabSuccess = 0;

    // error codes (XErrorEvent.error_code)
    public const int Success = 0;
    public const int BadRequest = 1;
    public const int BadValue = 2;
    public const int BadWindow = 3;
    public const int BadPixmap = 4;
    public const int BadAtom = 5;
    public const int BadCursor = 6;
    public const int BadFont = 7;
    public const int BadMatch = 8;
    public const int BadDrawable = 9;
    public const int BadAccess = 10;
    public const int BadAlloc = 11;
    public const int BadColor = 12;
    public const int BadGC = 13;
    public const int BadIDChoice = 14;
    public const int BadName = 15;
    public const int BadLength = 16;
    public const int BadImplementation = 17;
    public const int FirstExtensionError = 128;

    // window class
    public const uint InputOutput = 1;
    public const uint InputOnly = 2;

    // XSetWindowAttributes value mask
    public const ulong CWBackPixmap = 1UL << 0;
    public const ulong CWBackPixel = 1UL << 1;
    public const ulong CWBorderPixmap = 1UL << 2;
    public const ulong CWBorderPixel = 1UL << 3;
    public const ulong CWBitGravity = 1UL << 4;
    public const ulong CWWinGravity = 1UL << 5;
    public const ulong CWBackingStore = 1UL << 6;
    public const ulong CWBackingPlanes = 1UL << 7;
    public const ulong CWBackingPixel = 1UL << 8;
    public const ulong CWOverrideRedirect = 1UL << 9;
    public const ulong CWSaveUnder = 1UL << 10;
    public const ulong CWEventMask = 1UL << 11;
    public const ulong CWDontPropagate = 1UL << 12;
    public const ulong CWColormap = 1UL << 13;
    public const ulong CWCursor = 1UL << 14;

    // XWindowChanges value mask
    public const uint CWX = 1 << 0;
    public const uint CWY = 1 << 1;
    public const uint CWWidth = 1 << 2;
    public const uint CWHeight = 1 << 3;
    public const uint CWBorderWidth = 1 << 4;
    public const uint CWSibling = 1 << 5;
    public const uint CWStackMode = 1 << 6;

    // gravity
    public const int ForgetGravity = 0;
    public const int NorthWestGravity = 1;
    public const int NorthGravity = 2;
    public const int NorthEastGravity = 3;
    public const int WestGravity = 4;
    public const int CenterGravity = 5;
    public const int EastGravity = 6;
    public const int SouthWestGravity = 7;
    public const int SouthGravity = 8;
    public const int SouthEastGravity = 9;
    public const int StaticGravity = 10;

    public const int NotUseful = 0;
    public const int WhenMapped = 1;
    public const int Always = 2;

    // XWindowAttributes.map_state
    public const int IsUnmapped = 0;
    public const int IsUnviewable = 1;
    public const int IsViewable = 2;

    // stack mode
    public const int Above = 0;
    public const int Below = 1;
    public const int TopIf = 2;
    public const int BottomIf = 3;
    public const int Opposite = 4;

    public const int PropModeReplace = 0;
    public const int PropModePrepend = 1;
    public const int PropModeAppend = 2;

    // GC
    public const int GXcopy = 0x3;
    public const int GXxor = 0x6;
    public const int LineSolid = 0;
    public const int FillSolid = 0;
    public const int ClipByChildren = 0;
    public const int IncludeInferiors = 1;
    public const ulong GCFunction = 1UL << 0;
    public const ulong GCPlaneMask = 1UL << 1;
    public const ulong GCForeground = 1UL << 2;
    public const ulong GCBackground = 1UL << 3;
    public const ulong GCLineWidth = 1UL << 4;
    public const ulong GCLineStyle = 1UL << 5;
    public const ulong GCFillStyle = 1UL << 8;
    public const ulong GCSubwindowMode = 1UL << 15;
    public const ulong GCGraphicsExposures = 1UL << 16;

    // image formats and byte order
    public const int XYBitmap = 0;
    public const int XYPixmap = 1;
    public const int ZPixmap = 2;
    public const int LSBFirst = 0;
    public const int MSBFirst = 1;

    public const int AllocNone = 0;
    public const int AllocAll = 1;

    // visual classes
    public const int StaticGray = 0;
    public const int GrayScale = 1;
    public const int StaticColor = 2;
    public const int PseudoColor = 3;
    public const int TrueColor = 4;
    public const int DirectColor = 5;

    // XEventsQueued mode
    public const int QueuedAlready = 0;
    public const int QueuedAfterReading = 1;
    public const int QueuedAfterFlush = 2;

    public const int MappingModifier = 0;
    public const int MappingKeyboard = 1;
    public const int MappingPointer = 2;
}
