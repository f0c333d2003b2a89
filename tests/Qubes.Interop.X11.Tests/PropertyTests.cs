using System;
using System.Text;
using Qubes.Gui.X11;
using Xunit;

namespace Qubes.Interop.X11.Tests;

/// <summary>Window properties as the GUI daemon sets them, read back as a window manager would.</summary>
public sealed unsafe class PropertyTests : IClassFixture<Xvfb>
{
    private readonly Xvfb _server;

    public PropertyTests(Xvfb server) => _server = server;

    private readonly record struct Property(ulong Type, int Format, ulong Items, ulong BytesAfter, byte[] Data);

    private static Property Get(DisplayHandle display, ulong window, ulong property, ulong type = Xlib.AnyPropertyType)
    {
        ulong actualType, items, bytesAfter;
        int format;
        byte* data;
        int status = Xlib.XGetWindowProperty(display.Pointer, window, property, 0, 1024, Xlib.False, type,
            &actualType, &format, &items, &bytesAfter, &data);
        Assert.Equal(Xlib.Success, status);
        try
        {
            // format 32 items come back as C longs, 8 bytes each on x86-64
            int itemSize = format switch { 8 => 1, 16 => 2, 32 => sizeof(long), _ => 0 };
            return new Property(actualType, format, items, bytesAfter, new ReadOnlySpan<byte>(data, checked((int)items * itemSize)).ToArray());
        }
        finally
        {
            if (data != null)
            {
                Xlib.XFree(data);
            }
        }
    }

    private static void SetBytes(DisplayHandle display, ulong window, ulong property, ulong type, ReadOnlySpan<byte> value)
    {
        fixed (byte* p = value)
        {
            Xlib.XChangeProperty(display.Pointer, window, property, type, 8, Xlib.PropModeReplace, p, value.Length);
        }
    }

    [Fact]
    public void Names_class_and_cardinals_round_trip_through_the_server()
    {
        using DisplayHandle display = DisplayHandle.Open(_server.Name);
        nint d = display.Pointer;
        ulong window = X11Test.CreateMappedWindow(display, 10, 10, 50, 50);
        ulong utf8String = Xlib.XInternAtom(d, "UTF8_STRING", Xlib.False);
        ulong netWmName = Xlib.XInternAtom(d, "_NET_WM_NAME", Xlib.False);
        ulong vmName = Xlib.XInternAtom(d, "_QUBES_VMNAME", Xlib.False);
        ulong labelColor = Xlib.XInternAtom(d, "_QUBES_LABEL_COLOR", Xlib.False);
        Assert.NotEqual(Xlib.None, utf8String);
        Assert.NotEqual(netWmName, utf8String);
        Assert.Equal(Xlib.None, Xlib.XInternAtom(d, "_QUBES_SURELY_NOT_INTERNED_YET", Xlib.True));

        byte[] wmName = Encoding.Latin1.GetBytes("work: Terminal\0");
        fixed (byte* p = wmName)
        {
            Xlib.XStoreName(d, window, p);
        }
        byte[] title = Encoding.UTF8.GetBytes("[work] Zażółć gęślą jaźń ✓");
        SetBytes(display, window, netWmName, utf8String, title);
        SetBytes(display, window, vmName, Xlib.XA_STRING, "work"u8);

        byte[] resName = "qubes-work\0"u8.ToArray(), resClass = "Xterm\0"u8.ToArray();
        fixed (byte* n = resName)
        fixed (byte* c = resClass)
        {
            var hint = new XClassHint { res_name = n, res_class = c };
            Xlib.XSetClassHint(d, window, &hint);
        }

        long* colours = stackalloc long[] { 0xCC0000, 0xFFFFFFFFL, 42 };
        Xlib.XChangeProperty(d, window, labelColor, Xlib.XA_CARDINAL, 32, Xlib.PropModeReplace, (byte*)colours, 3);

        var hints = new XSizeHints { flags = Xlib.PMinSize | Xlib.PMaxSize | Xlib.PResizeInc, min_width = 20, min_height = 10, max_width = 800, max_height = 600, width_inc = 7, height_inc = 13 };
        Xlib.XSetWMNormalHints(d, window, &hints);
        Assert.False(X11ErrorTrap.Sync(d).IsError);

        Property name = Get(display, window, Xlib.XA_WM_NAME);
        Assert.Equal(0UL, name.BytesAfter);
        Assert.Equal((Xlib.XA_STRING, 8), (name.Type, name.Format));
        Assert.Equal("work: Terminal", Encoding.Latin1.GetString(name.Data));

        Property utf8 = Get(display, window, netWmName);
        Assert.Equal((utf8String, 8), (utf8.Type, utf8.Format));
        Assert.Equal(title, utf8.Data);

        Property vm = Get(display, window, vmName, Xlib.XA_STRING);
        Assert.Equal("work"u8.ToArray(), vm.Data);

        Property wmClass = Get(display, window, Xlib.XA_WM_CLASS);
        Assert.Equal(Xlib.XA_STRING, wmClass.Type);
        Assert.Equal("qubes-work\0Xterm\0"u8.ToArray(), wmClass.Data);
        XClassHint back;
        Assert.NotEqual(0, Xlib.XGetClassHint(d, window, &back));
        Assert.Equal("Xterm", Marshal8(back.res_class));
        Xlib.XFree(back.res_name);
        Xlib.XFree(back.res_class);

        Property cardinals = Get(display, window, labelColor);
        Assert.Equal((Xlib.XA_CARDINAL, 32, 3UL), (cardinals.Type, cardinals.Format, cardinals.Items));
        fixed (byte* p = cardinals.Data)
        {
            Assert.Equal(0xCC0000L, ((long*)p)[0]);
            // Xlib widens the 32-bit items to long with sign extension, whatever the type: mask CARDINALs
            Assert.Equal(-1L, ((long*)p)[1]);
            Assert.Equal(0xFFFFFFFFUL, unchecked((ulong)((long*)p)[1]) & 0xFFFFFFFF);
            Assert.Equal(42L, ((long*)p)[2]);
        }

        XSizeHints got;
        long supplied;
        Assert.NotEqual(0, Xlib.XGetWMNormalHints(d, window, &got, &supplied));
        Assert.Equal(Xlib.PMinSize | Xlib.PMaxSize | Xlib.PResizeInc, got.flags & (Xlib.PMinSize | Xlib.PMaxSize | Xlib.PResizeInc));
        Assert.Equal((20, 10, 800, 600, 7, 13), (got.min_width, got.min_height, got.max_width, got.max_height, got.width_inc, got.height_inc));

        // a type filter that does not match returns the type but no data
        Property mismatch = Get(display, window, netWmName, Xlib.XA_STRING);
        Assert.Equal(utf8String, mismatch.Type);
        Assert.Empty(mismatch.Data);
        Assert.Equal((ulong)title.Length, mismatch.BytesAfter);

        Xlib.XDeleteProperty(d, window, netWmName);
        Assert.Equal(Xlib.None, Get(display, window, netWmName).Type);
    }

    [Fact]
    public void WM_DELETE_WINDOW_arrives_as_a_ClientMessage_with_the_protocol_atom()
    {
        using DisplayHandle daemon = DisplayHandle.Open(_server.Name);
        using DisplayHandle windowManager = DisplayHandle.Open(_server.Name);
        nint d = daemon.Pointer;
        ulong window = X11Test.CreateMappedWindow(daemon, 60, 60, 30, 30);
        ulong protocols = Xlib.XInternAtom(d, "WM_PROTOCOLS", Xlib.False);
        ulong deleteWindow = Xlib.XInternAtom(d, "WM_DELETE_WINDOW", Xlib.False);
        Assert.NotEqual(0, Xlib.XSetWMProtocols(d, window, &deleteWindow, 1));
        Xlib.XSync(d, Xlib.False);

        Property set = Get(windowManager, window, protocols);
        Assert.Equal((Xlib.XA_ATOM, 32, 1UL), (set.Type, set.Format, set.Items));

        XEvent message = default;
        message.xclient.type = Xlib.ClientMessage;
        message.xclient.window = window;
        message.xclient.message_type = protocols;
        message.xclient.format = 32;
        message.xclient.data.l[0] = (long)deleteWindow;
        message.xclient.data.l[1] = 1234;
        Assert.NotEqual(0, Xlib.XSendEvent(windowManager.Pointer, window, Xlib.False, Xlib.NoEventMask, &message));
        Xlib.XSync(windowManager.Pointer, Xlib.False);

        XEvent got = X11Test.WaitForEvent(daemon, e => e.type == Xlib.ClientMessage, "ClientMessage");
        Assert.Equal(window, got.xclient.window);
        Assert.Equal(protocols, got.xclient.message_type);
        Assert.NotEqual(0, got.xclient.send_event);
        Assert.Equal((long)deleteWindow, got.xclient.data.l[0]);
        Assert.Equal(1234L, got.xclient.data.l[1]);
    }

    private static string Marshal8(byte* s) => System.Runtime.InteropServices.Marshal.PtrToStringUTF8((nint)s) ?? "";
}
