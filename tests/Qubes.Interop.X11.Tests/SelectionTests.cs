using System.Text;
using Qubes.Gui.X11;
using Xunit;

namespace Qubes.Interop.X11.Tests;

/// <summary>The clipboard protocol between two clients, as the daemon and an application play it.</summary>
public sealed unsafe class SelectionTests : IClassFixture<Xvfb>
{
    private readonly Xvfb _server;

    public SelectionTests(Xvfb server) => _server = server;

    [Fact]
    public void CLIPBOARD_text_travels_from_the_owner_to_the_requestor()
    {
        using DisplayHandle owner = DisplayHandle.Open(_server.Name);
        using DisplayHandle requestor = DisplayHandle.Open(_server.Name);
        nint o = owner.Pointer;
        nint r = requestor.Pointer;
        ulong ownerWindow = X11Test.CreateMappedWindow(owner, 0, 0, 1, 1);
        ulong requestorWindow = X11Test.CreateMappedWindow(requestor, 0, 0, 1, 1);
        ulong clipboard = Xlib.XInternAtom(o, "CLIPBOARD", Xlib.False);
        ulong utf8String = Xlib.XInternAtom(o, "UTF8_STRING", Xlib.False);
        ulong target = Xlib.XInternAtom(r, "QUBES_CLIPBOARD_TRANSFER", Xlib.False);
        byte[] text = Encoding.UTF8.GetBytes("copied in work, pasted in personal — ✓");

        Xlib.XSetSelectionOwner(o, clipboard, ownerWindow, Xlib.CurrentTime);
        Xlib.XSync(o, Xlib.False);
        Assert.Equal(ownerWindow, Xlib.XGetSelectionOwner(r, clipboard));

        Xlib.XConvertSelection(r, clipboard, utf8String, target, requestorWindow, Xlib.CurrentTime);
        Xlib.XFlush(r);

        XEvent request = X11Test.WaitForEvent(owner, e => e.type == Xlib.SelectionRequest, "SelectionRequest");
        XSelectionRequestEvent asked = request.xselectionrequest;
        Assert.Equal(ownerWindow, asked.owner);
        Assert.Equal(requestorWindow, asked.requestor);
        Assert.Equal(clipboard, asked.selection);
        Assert.Equal(utf8String, asked.target);
        Assert.Equal(target, asked.property);

        fixed (byte* p = text)
        {
            Xlib.XChangeProperty(o, asked.requestor, asked.property, utf8String, 8, Xlib.PropModeReplace, p, text.Length);
        }
        XEvent reply = default;
        reply.xselection.type = Xlib.SelectionNotify;
        reply.xselection.requestor = asked.requestor;
        reply.xselection.selection = asked.selection;
        reply.xselection.target = asked.target;
        reply.xselection.property = asked.property;
        reply.xselection.time = asked.time;
        Assert.NotEqual(0, Xlib.XSendEvent(o, asked.requestor, Xlib.False, Xlib.NoEventMask, &reply));
        Assert.False(X11ErrorTrap.Sync(o).IsError);

        XEvent notify = X11Test.WaitForEvent(requestor, e => e.type == Xlib.SelectionNotify, "SelectionNotify");
        Assert.Equal(clipboard, notify.xselection.selection);
        Assert.Equal(target, notify.xselection.property);

        ulong type, items, after;
        int format;
        byte* data;
        Assert.Equal(Xlib.Success, Xlib.XGetWindowProperty(r, requestorWindow, target, 0, 4096, Xlib.True, utf8String,
            &type, &format, &items, &after, &data));
        try
        {
            Assert.Equal((utf8String, 8, 0UL), (type, format, after));
            Assert.Equal(text, new System.ReadOnlySpan<byte>(data, (int)items).ToArray());
            Assert.Equal(0, data[items]); // Xlib's extra NUL
        }
        finally
        {
            Xlib.XFree(data);
        }

        // deleted on read, as ICCCM asks the requestor to
        Assert.Equal(Xlib.Success, Xlib.XGetWindowProperty(r, requestorWindow, target, 0, 4096, Xlib.False, Xlib.AnyPropertyType,
            &type, &format, &items, &after, &data));
        Assert.Equal(Xlib.None, type);
        if (data != null)
        {
            Xlib.XFree(data);
        }

        // another owner takes over: the first one is told
        Xlib.XSetSelectionOwner(r, clipboard, requestorWindow, Xlib.CurrentTime);
        Xlib.XSync(r, Xlib.False);
        XEvent lost = X11Test.WaitForEvent(owner, e => e.type == Xlib.SelectionClear, "SelectionClear");
        Assert.Equal(ownerWindow, lost.xselectionclear.window);
        Assert.Equal(clipboard, lost.xselectionclear.selection);
    }

    [Fact]
    public void XFixes_reports_a_change_of_selection_owner()
    {
        using DisplayHandle watcher = DisplayHandle.Open(_server.Name);
        using DisplayHandle application = DisplayHandle.Open(_server.Name);
        nint w = watcher.Pointer;
        int eventBase, errorBase, major = 5, minor = 0;
        Assert.NotEqual(0, Xfixes.XFixesQueryExtension(w, &eventBase, &errorBase));
        Assert.NotEqual(0, Xfixes.XFixesQueryVersion(w, &major, &minor));
        int selectionNotify = eventBase + Xfixes.XFixesSelectionNotify;
        ulong clipboard = Xlib.XInternAtom(w, "CLIPBOARD", Xlib.False);
        Xfixes.XFixesSelectSelectionInput(w, watcher.RootWindow, clipboard, Xfixes.XFixesSetSelectionOwnerNotifyMask);
        Assert.False(X11ErrorTrap.Sync(w).IsError);

        ulong appWindow = X11Test.CreateMappedWindow(application, 0, 0, 1, 1);
        Xlib.XSetSelectionOwner(application.Pointer, clipboard, appWindow, Xlib.CurrentTime);
        Xlib.XSync(application.Pointer, Xlib.False);

        XEvent ev = X11Test.WaitForEvent(watcher, e => e.type == selectionNotify, "XFixesSelectionNotify");
        Assert.Equal(Xfixes.XFixesSetSelectionOwnerNotify, ev.xfixesselection.subtype);
        Assert.Equal(appWindow, ev.xfixesselection.owner);
        Assert.Equal(clipboard, ev.xfixesselection.selection);
        Assert.Equal(watcher.RootWindow, ev.xfixesselection.window);
    }
}
