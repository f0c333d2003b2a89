using System.Runtime.InteropServices;

namespace Qubes.Interop.X11;

public static partial class Xlib
{
    [LibraryImport(Libraries.X11)]
    public static partial int XSetSelectionOwner(nint display, ulong selection, ulong owner, ulong time);

    [LibraryImport(Libraries.X11)]
    public static partial ulong XGetSelectionOwner(nint display, ulong selection);

    /// <summary>Asks the owner to store <paramref name="selection"/> as <paramref name="target"/> into
    /// <paramref name="property"/> of <paramref name="requestor"/>; a SelectionNotify follows.</summary>
    [LibraryImport(Libraries.X11)]
    public static partial int XConvertSelection(nint display, ulong selection, ulong target, ulong property,
        ulong requestor, ulong time);
}
