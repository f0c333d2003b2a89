using System.Runtime.InteropServices;

namespace Qubes.Interop.X11;

/// <summary>xcb_void_cookie_t: the sequence number of a request whose error can be waited for.</summary>
[StructLayout(LayoutKind.Sequential)]
public struct xcb_void_cookie_t
{
    public uint sequence;
}

/// <summary>
/// The XCB side of an Xlib display (Xlib-xcb.h, libX11-xcb) and MIT-SHM 1.2's AttachFd (xcb/shm.h,
/// libxcb-shm): the server maps a segment from a descriptor the client passes (memfd and the
/// like), where XShmAttach can name only a SysV segment. Requests made here and through Xlib share
/// one connection and one sequence.
/// </summary>
public static unsafe partial class XcbShm
{
    /// <summary>The display's XCB connection; owned by the display.</summary>
    [LibraryImport(Libraries.X11Xcb)]
    public static partial nint XGetXCBConnection(nint display);

    [LibraryImport(Libraries.Xcb)]
    public static partial uint xcb_generate_id(nint connection);

    /// <summary>Sends <paramref name="shm_fd"/> to the server, which maps all of the file; XCB closes the descriptor once sent.</summary>
    [LibraryImport(Libraries.XcbShm)]
    public static partial xcb_void_cookie_t xcb_shm_attach_fd_checked(nint connection, uint shmseg, int shm_fd, byte read_only);

    /// <summary>Waits for the request's outcome: null, or an error the caller frees (libc free).</summary>
    [LibraryImport(Libraries.Xcb)]
    public static partial void* xcb_request_check(nint connection, xcb_void_cookie_t cookie);
}
