using System;
using Qubes.Interop.Linux;

namespace Qubes.Platform;

/// <summary>Inter-domain event channels.</summary>
public interface IEventChannels
{
    /// <summary>Allocates a local port that <paramref name="remoteDomain"/> may bind to.</summary>
    IEventChannel AllocateUnbound(int remoteDomain);

    /// <summary>
    /// Binds to the unbound port <paramref name="remotePort"/> that <paramref name="remoteDomain"/>
    /// allocated for this domain. Throws <see cref="PlatformException"/> if there is none.
    /// </summary>
    IEventChannel BindInterdomain(int remoteDomain, uint remotePort);
}

/// <summary>One end of an event channel. <see cref="Notify"/> and <see cref="Wait"/> are hot-path calls.</summary>
public interface IEventChannel : IDisposable
{
    /// <summary>This end's port number, as published to the peer.</summary>
    uint LocalPort { get; }

    /// <summary>A descriptor that polls readable while an event is pending.</summary>
    int Fd { get; }

    /// <summary>Signals the peer. Never blocks and never allocates. Returns <see cref="Errno.None"/> or the failure.</summary>
    Errno Notify();

    /// <summary>
    /// Waits until an event is pending, then consumes (acknowledges and unmasks) it.
    /// <paramref name="timeoutMs"/> −1 waits forever. Returns 1 when an event was consumed, 0 on
    /// time-out, −1 on error.
    /// </summary>
    int Wait(int timeoutMs);

    /// <summary>
    /// Whether the port is still bound to an interdomain peer (false once the peer closed it or its
    /// domain died). May cost a round trip to the hypervisor; not for hot paths.
    /// </summary>
    bool IsInterdomainBound();
}
