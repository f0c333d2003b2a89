using System;
using Qubes.Interop.Linux;
using Qubes.Platform.Xenstore;

namespace Qubes.Platform.Xen;

/// <summary>
/// xenstore through the xenbus character device (<c>/dev/xen/xenbus</c>), which the kernel offers
/// in dom0 and in every domU. Each request goes down in one write() of the whole message (the
/// device accepts one request per message and answers it, or rejects the write). read() returns up
/// to the buffer size of whatever is queued: replies and watch events, several at once or part of
/// one; <see cref="XenstoreStreamTransport"/> reassembles the frames. The descriptor polls
/// readable while anything is queued.
/// </summary>
public sealed class XenbusTransport : XenstoreStreamTransport
{
    /// <summary>Where the Linux xenbus frontend puts the device.</summary>
    public const string DevicePath = "/dev/xen/xenbus";

    private readonly SafeFd _device;

    /// <summary>
    /// Uses an open descriptor and takes ownership of it. Anything that behaves like the device
    /// works: a request per write, replies and events on read (tests use one end of a socketpair).
    /// The descriptor is switched to blocking mode.
    /// </summary>
    public XenbusTransport(SafeFd device) : base("xenstore connection (xenbus device)")
    {
        ArgumentNullException.ThrowIfNull(device);
        _device = device;
        Qubes.Interop.Linux.Fd.SetNonBlocking(device.Fd, false);
    }

    /// <inheritdoc/>
    public override int Fd => _device.Fd;

    /// <summary>Opens the device; throws <see cref="PlatformException"/> with the errno (ENOENT when not on Xen).</summary>
    public static XenbusTransport Open(string path = DevicePath)
    {
        int fd = Libc.open(path, Libc.O_RDWR | Libc.O_CLOEXEC, 0);
        if (fd < 0)
        {
            throw new PlatformException($"open {path}", LastError.Get());
        }
        var device = new SafeFd(fd);
        try
        {
            return new XenbusTransport(device);
        }
        catch (LinuxException e)
        {
            device.Dispose();
            throw new PlatformException($"xenbus device {path}", e.Errno);
        }
    }

    /// <summary>One write() of the whole message, retried only if a signal interrupted it before anything was taken.</summary>
    /// <summary>
    /// Batches go one request at a time here: with a transaction's requests sent ahead, a vchan
    /// server in dom0 never finished publishing on real Xen, and why is not known yet.
    /// </summary>
    protected override bool SendsAhead => false;

    protected override unsafe Errno Send(ReadOnlySpan<byte> message)
    {
        fixed (byte* p = message)
        {
            while (true)
            {
                nint n = Libc.write(_device.Fd, p, (nuint)message.Length);
                if (n == message.Length)
                {
                    return Errno.None;
                }
                if (n >= 0)
                {
                    // The device never takes part of a message; a short write means the stream is out of step.
                    return Errno.EIO;
                }
                Errno e = LastError.Get();
                if (e != Errno.EINTR)
                {
                    return e;
                }
            }
        }
    }

    /// <inheritdoc/>
    protected override int Receive(Span<byte> buffer) => Qubes.Interop.Linux.Fd.Read(_device.Fd, buffer);

    /// <inheritdoc/>
    protected override void ReleaseConnection() => _device.Dispose();
}
