using System;
using System.Collections.Generic;
using Qubes.Platform.Xenstore;

namespace Qubes.Platform.Xen;

/// <summary>Opens the store on a Xen machine.</summary>
public static class XenStore
{
    /// <summary>
    /// A store connection: xenstored's socket if one of <see cref="XenstoredSocketTransport.DefaultPaths"/>
    /// exists and accepts the connection (dom0), else the xenbus device (every domain). Throws
    /// <see cref="PlatformException"/> with the device's errno if neither works.
    /// </summary>
    public static IStore Open() => Open(XenstoredSocketTransport.DefaultPaths, XenbusTransport.DevicePath);

    /// <summary>As <see cref="Open()"/>, trying the given socket paths in order, then the given device.</summary>
    public static IStore Open(IReadOnlyList<string> socketPaths, string devicePath) =>
        new XenstoreClient(OpenTransport(socketPaths, devicePath));

    /// <summary>The transport <see cref="Open(IReadOnlyList{string}, string)"/> would use.</summary>
    public static IXenstoreTransport OpenTransport(IReadOnlyList<string> socketPaths, string devicePath)
    {
        ArgumentNullException.ThrowIfNull(socketPaths);
        foreach (string path in socketPaths)
        {
            // A missing socket (a domU), a stale one (xenstored not running) or one we may not use
            // (not root) all mean: try the next place.
            XenstoredSocketTransport? socket = XenstoredSocketTransport.TryConnect(path, out _);
            if (socket is not null)
            {
                return socket;
            }
        }
        return XenbusTransport.Open(devicePath);
    }
}
