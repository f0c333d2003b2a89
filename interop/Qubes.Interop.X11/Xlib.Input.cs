using System.Runtime.InteropServices;

namespace Qubes.Interop.X11;

public static unsafe partial class Xlib
{
    /// <summary>0 when no key of the current mapping produces the keysym.</summary>
    [LibraryImport(Libraries.X11)]
    public static partial byte XKeysymToKeycode(nint display, ulong keysym);

    /// <summary>NoSymbol when the name is unknown.</summary>
    [LibraryImport(Libraries.X11, StringMarshalling = StringMarshalling.Utf8)]
    public static partial ulong XStringToKeysym(string @string);

    [LibraryImport(Libraries.X11)]
    public static partial ulong XLookupKeysym(XKeyEvent* key_event, int index);

    /// <summary>After a MappingNotify, so keysym lookups see the new mapping.</summary>
    [LibraryImport(Libraries.X11)]
    public static partial int XRefreshKeyboardMapping(XMappingEvent* event_map);

    /// <summary>Fills 32 bytes, one bit per keycode that is down.</summary>
    [LibraryImport(Libraries.X11)]
    public static partial int XQueryKeymap(nint display, byte* keys_return);

    [LibraryImport(Libraries.X11)]
    public static partial int XQueryPointer(nint display, ulong w, ulong* root_return, ulong* child_return,
        int* root_x_return, int* root_y_return, int* win_x_return, int* win_y_return, uint* mask_return);

    [LibraryImport(Libraries.X11)]
    public static partial int XWarpPointer(nint display, ulong src_w, ulong dest_w, int src_x, int src_y,
        uint src_width, uint src_height, int dest_x, int dest_y);

    [LibraryImport(Libraries.X11)]
    public static partial int XSetInputFocus(nint display, ulong focus, int revert_to, ulong time);

    [LibraryImport(Libraries.X11)]
    public static partial int XGetInputFocus(nint display, ulong* focus_return, int* revert_to_return);
}
