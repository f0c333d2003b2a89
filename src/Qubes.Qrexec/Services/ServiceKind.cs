namespace Qubes.Qrexec.Services;

/// <summary>What service lookup found (spec §9.3).</summary>
public enum ServiceKind
{
    /// <summary>No entry for the service in any directory of the path (exit 127).</summary>
    NotFound,
    /// <summary>A file executable by the effective uid: fork and exec it.</summary>
    Executable,
    /// <summary>A Unix stream socket: connect to it.</summary>
    Socket,
    /// <summary>A symbolic link to <c>/dev/tcp…</c>: connect to a TCP address.</summary>
    Tcp,
    /// <summary>The lookup itself failed or found something unusable (exit 125).</summary>
    Failure,
}
