using System;
using System.Runtime.InteropServices;

namespace Qubes.Interop.X11;

/// <summary>
/// An XImage that Xlib allocated (XGetImage, XShmCreateImage), destroyed on release through its
/// own f.destroy_image, as the XDestroyImage macro does: for an ordinary image that frees the pixels
/// too, for an MIT-SHM one only the struct.
/// </summary>
public sealed unsafe class XImageHandle : SafeHandle
{
    public XImageHandle(XImage* image) : base(IntPtr.Zero, ownsHandle: true) => SetHandle((IntPtr)image);

    public override bool IsInvalid => handle == IntPtr.Zero;

    public XImage* Image => (XImage*)handle;

    public int Width => Image->width;

    public int Height => Image->height;

    public int BytesPerLine => Image->bytes_per_line;

    /// <summary>The pixel rows, bytes_per_line * height bytes.</summary>
    public Span<byte> Data => new(Image->data, checked(Image->bytes_per_line * Image->height));

    /// <summary>Row <paramref name="y"/> of a 32 bits-per-pixel image as pixel values.</summary>
    public Span<uint> Row32(int y)
    {
        if (Image->bits_per_pixel != 32)
        {
            throw new InvalidOperationException($"image has {Image->bits_per_pixel} bits per pixel");
        }
        ArgumentOutOfRangeException.ThrowIfGreaterThanOrEqual((uint)y, (uint)Image->height, nameof(y));
        return new Span<uint>(Image->data + (long)y * Image->bytes_per_line, Image->width);
    }

    protected override bool ReleaseHandle()
    {
        XImage* image = (XImage*)handle;
        var destroy = (delegate* unmanaged[Cdecl]<XImage*, int>)image->f.destroy_image;
        return destroy(image) != 0;
    }
}
