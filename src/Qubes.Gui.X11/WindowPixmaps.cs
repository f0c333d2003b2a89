using System;
using System.Buffers.Binary;
using Qubes.Interop.Linux;

namespace Qubes.Gui.X11;

/// <summary>
/// The window pixmaps of a qube's Xorg that keeps them in shared memory (native/qubes-pixmaps.c):
/// for a redirected top-level window, the memfd its X server draws it into, which the agent grants
/// to the GUI domain as it is instead of copying the window out of the server at each change.
/// </summary>
internal sealed class WindowPixmaps : IDisposable
{
    private const int ReplySize = 20;

    private readonly SafeFd _socket;

    private WindowPixmaps(SafeFd socket) => _socket = socket;

    /// <summary>The server's pixmap socket at <paramref name="path"/>; null when it does not answer.</summary>
    public static WindowPixmaps? Connect(string path)
    {
        SafeFd? socket = UnixSocket.TryConnect(path, out _, Libc.SOCK_SEQPACKET);
        return socket == null ? null : new WindowPixmaps(socket);
    }

    /// <summary>
    /// The memfd holding <paramref name="window"/>'s pixels now, row after row, 4 bytes each,
    /// exactly <paramref name="width"/> × <paramref name="height"/> (the caller owns it); −1 when
    /// the window has no such pixmap (not redirected, a border, another depth) or the server is gone.
    /// </summary>
    public int Take(ulong window, out int width, out int height)
    {
        width = height = 0;
        Span<byte> request = stackalloc byte[4];
        BinaryPrimitives.WriteUInt32LittleEndian(request, (uint)window);
        if (FdPassing.Send(_socket.Fd, request, default) != Errno.None)
        {
            return -1;
        }
        Span<byte> reply = stackalloc byte[ReplySize];
        Span<int> fds = stackalloc int[1];
        int got = FdPassing.Receive(_socket.Fd, reply, fds, out int fdCount);
        int file = fdCount == 1 ? fds[0] : -1;
        uint error = BinaryPrimitives.ReadUInt32LittleEndian(reply);
        uint w = BinaryPrimitives.ReadUInt32LittleEndian(reply[4..]), h = BinaryPrimitives.ReadUInt32LittleEndian(reply[8..]);
        uint stride = BinaryPrimitives.ReadUInt32LittleEndian(reply[12..]), size = BinaryPrimitives.ReadUInt32LittleEndian(reply[16..]);
        if (got != ReplySize || error != 0 || file < 0 || w is 0 or > GuiProtocol.MaxWindowWidth || h is 0 or > GuiProtocol.MaxWindowHeight
            || stride != w * GuiProtocol.BytesPerPixel || size < (ulong)stride * h)
        {
            if (file >= 0)
            {
                Libc.close(file);
            }
            return -1;
        }
        width = (int)w;
        height = (int)h;
        return file;
    }

    public void Dispose() => _socket.Dispose();
}
