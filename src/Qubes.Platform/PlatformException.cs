using System;
using Qubes.Interop.Linux;

namespace Qubes.Platform;

/// <summary>A hypervisor operation failed on a set-up path (grant map, bind, domain query).</summary>
public class PlatformException : Exception
{
    public PlatformException(string message, Errno errno) : base($"{message}: {errno}")
    {
        Errno = errno;
    }

    /// <summary>The errno the hypervisor (or broker) answered with.</summary>
    public Errno Errno { get; }
}

/// <summary>A store request failed; <see cref="PlatformException.Errno"/> holds the store's errno (ENOENT, EACCES, EAGAIN, ...).</summary>
public sealed class StoreException : PlatformException
{
    public StoreException(string operation, string path, Errno errno) : base($"store {operation} {path}", errno)
    {
    }
}
