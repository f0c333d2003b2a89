using System;

namespace Qubes.Interop.X11;

/// <summary>A failure on a set-up path (opening a display, attaching shared memory).</summary>
public sealed class X11Exception : Exception
{
    public X11Exception(string message) : base(message) { }

    public X11Exception(string operation, X11Error error)
        : base($"{operation}: X error {error.ErrorCode} (request {error.RequestCode}.{error.MinorCode}, resource 0x{error.ResourceId:x})")
    {
        Error = error;
    }

    /// <summary>The protocol error, when the failure was one.</summary>
    public X11Error Error { get; }
}
