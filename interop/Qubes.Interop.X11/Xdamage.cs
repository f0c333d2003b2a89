using System.Runtime.InteropServices;

namespace Qubes.Interop.X11;

/// <summary>
/// DamageNotify (Xdamage.h), type = damage event base + XDamageNotify. <c>area</c> is the damaged
/// rectangle relative to the drawable, <c>geometry</c> the drawable's own.
/// </summary>
[StructLayout(LayoutKind.Sequential)]
public struct XDamageNotifyEvent
{
    public int type;
    public ulong serial;
    public int send_event;
    public nint display;
    public ulong drawable;
    public ulong damage;
    public int level;
    public int more;
    public ulong timestamp;
    public XRectangle area;
    public XRectangle geometry;
}

/// <summary>DAMAGE (libXdamage.so.1): what changed in a drawable, so the agent sends only that.</summary>
public static unsafe partial class Xdamage
{
    public const int XDamageNotify = 0;
    public const int XDamageReportRawRectangles = 0;
    public const int XDamageReportDeltaRectangles = 1;
    public const int XDamageReportBoundingBox = 2;
    public const int XDamageReportNonEmpty = 3;
    public const int BadDamage = 0;

    [LibraryImport(Libraries.Xdamage)]
    public static partial int XDamageQueryExtension(nint display, int* event_base_return, int* error_base_return);

    [LibraryImport(Libraries.Xdamage)]
    public static partial int XDamageQueryVersion(nint display, int* major_version_return, int* minor_version_return);

    [LibraryImport(Libraries.Xdamage)]
    public static partial ulong XDamageCreate(nint display, ulong drawable, int level);

    [LibraryImport(Libraries.Xdamage)]
    public static partial void XDamageDestroy(nint display, ulong damage);

    /// <summary>None for <paramref name="repair"/> and <paramref name="parts"/> clears all damage, re-arming the notifications.</summary>
    [LibraryImport(Libraries.Xdamage)]
    public static partial void XDamageSubtract(nint display, ulong damage, ulong repair, ulong parts);

    [LibraryImport(Libraries.Xdamage)]
    public static partial void XDamageAdd(nint display, ulong drawable, ulong region);
}
