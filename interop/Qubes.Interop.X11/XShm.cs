using System.Runtime.InteropServices;

namespace Qubes.Interop.X11;

/// <summary>
/// XShmSegmentInfo (XShm.h). XShmCreateImage keeps a pointer to it in XImage.obdata, so it must
/// stay at one address (native memory) for the image's whole life.
/// </summary>
[StructLayout(LayoutKind.Sequential)]
public unsafe struct XShmSegmentInfo
{
    /// <summary>The server's ShmSeg id, from XAllocID inside XShmAttach.</summary>
    public ulong shmseg;
    /// <summary>The kernel's SysV shm id.</summary>
    public int shmid;
    public byte* shmaddr;
    public int readOnly;
}

/// <summary>ShmCompletion: an XShmPutImage with send_event True has finished reading the segment.</summary>
[StructLayout(LayoutKind.Sequential)]
public struct XShmCompletionEvent
{
    public int type;
    public ulong serial;
    public int send_event;
    public nint display;
    public ulong drawable;
    public int major_code;
    public int minor_code;
    public ulong shmseg;
    public ulong offset;
}

/// <summary>
/// MIT-SHM (XShm.h, in libXext.so.6): images whose pixels the server reads and writes straight in a
/// shared segment. Debian 12's libXext 1.3.4 has no XShmAttachFd: segments are SysV ones.
/// </summary>
public static unsafe partial class XShm
{
    /// <summary>Event number ShmCompletion is offset by from XShmGetEventBase.</summary>
    public const int ShmCompletion = 0;
    public const int ShmNumberEvents = 1;
    public const int BadShmSeg = 0;

    [LibraryImport(Libraries.Xext)]
    public static partial int XShmQueryExtension(nint display);

    [LibraryImport(Libraries.Xext)]
    public static partial int XShmQueryVersion(nint display, int* majorVersion, int* minorVersion, int* sharedPixmaps);

    [LibraryImport(Libraries.Xext)]
    public static partial int XShmGetEventBase(nint display);

    [LibraryImport(Libraries.Xext)]
    public static partial int XShmPixmapFormat(nint display);

    /// <summary>Only fills in the XImage; shminfo->shmaddr and ->shmid are set by the caller before XShmAttach.</summary>
    [LibraryImport(Libraries.Xext)]
    public static partial XImage* XShmCreateImage(nint display, Visual* visual, uint depth, int format, byte* data,
        XShmSegmentInfo* shminfo, uint width, uint height);

    /// <summary>The server attaches when it processes the request: XSync before removing the SysV id.</summary>
    [LibraryImport(Libraries.Xext)]
    public static partial int XShmAttach(nint display, XShmSegmentInfo* shminfo);

    [LibraryImport(Libraries.Xext)]
    public static partial int XShmDetach(nint display, XShmSegmentInfo* shminfo);

    /// <summary>
    /// The server reads the segment after this returns: with <paramref name="send_event"/> True a
    /// ShmCompletion says when the memory may be rewritten.
    /// </summary>
    [LibraryImport(Libraries.Xext)]
    public static partial int XShmPutImage(nint display, ulong d, nint gc, XImage* image, int src_x, int src_y,
        int dst_x, int dst_y, uint src_width, uint src_height, int send_event);

    /// <summary>Synchronous: the pixels are in the segment when it returns True.</summary>
    [LibraryImport(Libraries.Xext)]
    public static partial int XShmGetImage(nint display, ulong d, XImage* image, int x, int y, ulong plane_mask);

    [LibraryImport(Libraries.Xext)]
    public static partial ulong XShmCreatePixmap(nint display, ulong d, byte* data, XShmSegmentInfo* shminfo,
        uint width, uint height, uint depth);
}
