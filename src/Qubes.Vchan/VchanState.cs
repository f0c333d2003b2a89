using System;

namespace Qubes.Vchan;

/// <summary>What <see cref="VchanEndpoint.IsOpen"/> reports (the Qubes wrapper's values).</summary>
public enum VchanState
{
    /// <summary>The peer closed, or its domain is dead.</summary>
    Disconnected = 0,

    /// <summary>Both ends are up.</summary>
    Connected = 1,

    /// <summary>A server with no client yet, or an asynchronous client still connecting.</summary>
    Waiting = 2,
}

/// <summary>A vchan could not be set up (bad arguments, no such channel, a server that published an invalid page).</summary>
public sealed class VchanException : Exception
{
    public VchanException(string message) : base(message) { }

    public VchanException(string message, Exception inner) : base(message, inner) { }
}
