using System;

namespace Qubes.Platform;

/// <summary>
/// The seam between the transport and whatever plays the hypervisor: Xen through /dev/xen, or the
/// loopback broker. Everything above this interface runs unchanged on either.
/// </summary>
public interface IPlatform : IDisposable
{
    /// <summary>Grant sharing and mapping for this domain.</summary>
    IGrantTable Grants { get; }

    /// <summary>Inter-domain event channels for this domain.</summary>
    IEventChannels EventChannels { get; }

    /// <summary>Domain queries (own id, liveness).</summary>
    IDomains Domains { get; }

    /// <summary>
    /// Opens a new connection to the store. Each connection has its own watches and a pollable
    /// descriptor, so an asynchronous waiter can own one. The caller disposes it.
    /// </summary>
    IStore OpenStore();

    /// <summary>
    /// This platform's own store connection, shared by every thread (one request or batch at a
    /// time) and disposed with the platform: for plain requests without the cost of a new
    /// connection. Watches belong on a connection of their own (<see cref="OpenStore"/>).
    /// </summary>
    IStore Store { get; }
}
