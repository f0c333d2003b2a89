using System;
using System.Runtime.InteropServices;
using Qubes.Interop.Linux;

namespace Qubes.Interop.X11;

/// <summary>
/// A ZPixmap XImage whose pixels live in a SysV segment the X server has attached: XShmPutImage
/// shows them and XShmGetImage fills them without copying through the socket.
///
/// The XShmSegmentInfo sits in native memory because the image points at it (XImage.obdata) for
/// its whole life. The segment id is removed as soon as the server has attached, so a crash of
/// either side cannot leak it.
/// </summary>
public sealed unsafe class ShmImage : IDisposable
{
    private readonly DisplayHandle _display;
    private XShmSegmentInfo* _info;
    private XImage* _image;
    private SysVSharedMemory? _segment;

    private ShmImage(DisplayHandle display) => _display = display;

    public XImage* Image => _image;

    /// <summary>What XShmPutImage/XShmGetImage need besides the image; also names the segment in ShmCompletion.</summary>
    public XShmSegmentInfo* SegmentInfo => _info;

    public int Width => _image->width;

    public int Height => _image->height;

    public int BytesPerLine => _image->bytes_per_line;

    public int BitsPerPixel => _image->bits_per_pixel;

    /// <summary>The pixel rows, bytes_per_line * height bytes, shared with the server.</summary>
    public Span<byte> Data => new(_image->data, checked(_image->bytes_per_line * _image->height));

    /// <summary>Row <paramref name="y"/> of a 32 bits-per-pixel image as pixel values.</summary>
    public Span<uint> Row32(int y)
    {
        if (_image->bits_per_pixel != 32)
        {
            throw new InvalidOperationException($"image has {_image->bits_per_pixel} bits per pixel");
        }
        ArgumentOutOfRangeException.ThrowIfGreaterThanOrEqual((uint)y, (uint)_image->height, nameof(y));
        return new Span<uint>(_image->data + (long)y * _image->bytes_per_line, _image->width);
    }

    /// <summary>
    /// Creates the image and its segment and has the server attach it; throws when the server lacks
    /// MIT-SHM or refuses the segment (a remote or sandboxed server). With <paramref name="readOnly"/>
    /// the server attaches read-only: enough for XShmPutImage, not for XShmGetImage.
    /// </summary>
    public static ShmImage Create(DisplayHandle display, Visual* visual, int depth, int width, int height, bool readOnly = false)
    {
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(width);
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(height);
        nint d = display.Pointer;
        if (XShm.XShmQueryExtension(d) == 0)
        {
            throw new X11Exception("the X server has no MIT-SHM");
        }
        var result = new ShmImage(display);
        try
        {
            result._info = (XShmSegmentInfo*)NativeMemory.AllocZeroed((nuint)sizeof(XShmSegmentInfo));
            result._image = XShm.XShmCreateImage(d, visual, (uint)depth, Xlib.ZPixmap, null, result._info, (uint)width, (uint)height);
            if (result._image == null)
            {
                throw new X11Exception("XShmCreateImage failed");
            }
            result._segment = SysVSharedMemory.Create(checked(result._image->bytes_per_line * result._image->height));
            result._info->shmid = result._segment.Id;
            result._info->shmaddr = result._segment.Pointer;
            result._info->readOnly = readOnly ? Xlib.True : Xlib.False;
            result._image->data = result._segment.Pointer;

            X11ErrorTrap.Reset(d);
            XShm.XShmAttach(d, result._info);
            X11Error error = X11ErrorTrap.Sync(d);
            if (error.IsError)
            {
                result._info->shmseg = 0;
                throw new X11Exception("XShmAttach", error);
            }
            result._segment.MarkForRemoval();
            return result;
        }
        catch
        {
            result.Dispose();
            throw;
        }
    }

    /// <summary>
    /// An image over memory the caller owns and keeps mapped at <paramref name="address"/> for the
    /// image's life, which the server maps through <paramref name="file"/> (MIT-SHM AttachFd; the
    /// whole file, whose start is <paramref name="address"/>): the server reads and writes those
    /// pages themselves. Null when the server cannot attach it (no MIT-SHM 1.2, or the mapping is
    /// refused, e.g. a file sealed against writing asked for read-write), or when the server's
    /// rows would not be <paramref name="bytesPerLine"/> apart.
    /// </summary>
    public static ShmImage? OnFile(DisplayHandle display, Visual* visual, int depth, int width, int height, int bytesPerLine, int file, nint address, bool readOnly)
    {
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(width);
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(height);
        nint d = display.Pointer;
        int major = 0, minor = 0, pixmaps = 0;
        if (XShm.XShmQueryExtension(d) == 0 || XShm.XShmQueryVersion(d, &major, &minor, &pixmaps) == 0 || (major, minor) is ( < 1, _) or (1, < 2))
        {
            return null;
        }
        var result = new ShmImage(display);
        try
        {
            result._info = (XShmSegmentInfo*)NativeMemory.AllocZeroed((nuint)sizeof(XShmSegmentInfo));
            result._image = XShm.XShmCreateImage(d, visual, (uint)depth, Xlib.ZPixmap, (byte*)address, result._info, (uint)width, (uint)height);
            if (result._image == null || result._image->bytes_per_line != bytesPerLine)
            {
                result.Dispose();
                return null;
            }
            result._info->shmid = -1;
            result._info->shmaddr = (byte*)address;
            result._info->readOnly = readOnly ? Xlib.True : Xlib.False;
            // XCB closes what it sends: a duplicate goes
            int sent = Libc.fcntl(file, Libc.F_DUPFD_CLOEXEC, 0);
            if (sent < 0)
            {
                result.Dispose();
                return null;
            }
            nint connection = XcbShm.XGetXCBConnection(d);
            uint segment = XcbShm.xcb_generate_id(connection);
            void* error = XcbShm.xcb_request_check(connection, XcbShm.xcb_shm_attach_fd_checked(connection, segment, sent, readOnly ? (byte)1 : (byte)0));
            if (error != null)
            {
                NativeMemory.Free(error);
                result.Dispose();
                return null;
            }
            result._info->shmseg = segment;
            return result;
        }
        catch
        {
            result.Dispose();
            throw;
        }
    }

    public void Dispose()
    {
        if (_info != null && _info->shmseg != 0 && !_display.IsClosed && !_display.IsConnectionLost)
        {
            XShm.XShmDetach(_display.Pointer, _info);
            Xlib.XFlush(_display.Pointer);
        }
        if (_image != null)
        {
            // an MIT-SHM image's destroy_image frees only the struct, never the segment
            var destroy = (delegate* unmanaged[Cdecl]<XImage*, int>)_image->f.destroy_image;
            destroy(_image);
            _image = null;
        }
        _segment?.Dispose();
        _segment = null;
        if (_info != null)
        {
            NativeMemory.Free(_info);
            _info = null;
        }
    }
}
