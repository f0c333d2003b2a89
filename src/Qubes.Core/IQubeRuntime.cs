using System.Collections.Generic;

namespace Qubes.Core;

/// <summary>
/// What the core asks of whatever runs the qubes and keeps their storage. The Admin API checks
/// the request first (state, names, templates) and then calls one of these; a failure is a
/// <see cref="QubesException"/> for the caller. qubesd calls them one at a time.
/// </summary>
public interface IQubeRuntime
{
    /// <summary>The runtime of a system whose qubes never run (loading, tools, tests of the model alone).</summary>
    static readonly IQubeRuntime None = new NoRuntime();

    /// <summary>The running qube's domain id, or -1.</summary>
    int DomainId(Qube qube);

    /// <summary>When the qube started (seconds since the epoch, as text), or empty.</summary>
    string StartTime(Qube qube);

    /// <summary>A qube's power state (spec §9.6: Halted, Transient, Running, Halting, …); dom0's is not asked.</summary>
    string PowerState(Qube qube);

    /// <summary>CPU time used by the running qube, in nanoseconds (0 when halted).</summary>
    long CpuTimeNs(Qube qube);

    /// <summary>Starts a halted qube and returns once its qrexec agent is connected.</summary>
    void Start(Qube qube);

    /// <summary>Asks a running qube to shut down; with <paramref name="wait"/>, returns once it has (else QubesVMShutdownTimeoutError after its shutdown_timeout).</summary>
    void Shutdown(Qube qube, bool wait);

    /// <summary>Stops a running qube at once.</summary>
    void Kill(Qube qube);

    /// <summary>Makes the storage of a qube just created: empty, or for a disposable a copy of its template's private volume.</summary>
    void CreateStorage(Qube qube);

    /// <summary>Deletes the storage of a qube just removed.</summary>
    void RemoveStorage(Qube qube);

    /// <summary>The qube's own volumes (those kept when it stops), by name.</summary>
    IReadOnlyList<string> Volumes(Qube qube);

    /// <summary>Replaces <paramref name="destination"/>'s volume with a copy of <paramref name="source"/>'s.</summary>
    void CloneVolume(Qube source, Qube destination, string volume);

    private sealed class NoRuntime : IQubeRuntime
    {
        public int DomainId(Qube qube) => -1;

        public string StartTime(Qube qube) => string.Empty;

        public string PowerState(Qube qube) => "Halted";

        public long CpuTimeNs(Qube qube) => 0;

        public void Start(Qube qube) => throw Unsupported();

        public void Shutdown(Qube qube, bool wait) => throw Unsupported();

        public void Kill(Qube qube) => throw Unsupported();

        public void CreateStorage(Qube qube)
        {
        }

        public void RemoveStorage(Qube qube)
        {
        }

        public IReadOnlyList<string> Volumes(Qube qube) => [];

        public void CloneVolume(Qube source, Qube destination, string volume) => throw Unsupported();

        private static QubesException Unsupported() => new("QubesNotImplementedError", "this qubesd runs no qubes");
    }
}
