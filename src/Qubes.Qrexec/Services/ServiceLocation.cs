namespace Qubes.Qrexec.Services;

/// <summary>The result of <see cref="ServiceLookup.Find"/>.</summary>
public sealed record ServiceLocation
{
    private ServiceLocation(ServiceKind kind)
    {
        Kind = kind;
    }

    /// <summary>What was found.</summary>
    public ServiceKind Kind { get; }

    /// <summary>Full path of the entry found (the symbolic link itself for <see cref="ServiceKind.Tcp"/>); null when nothing was found.</summary>
    public string? Path { get; private init; }

    /// <summary>For <see cref="ServiceKind.Tcp"/>: the numeric host address (IPv6 with ':').</summary>
    public string? Host { get; private init; }

    /// <summary>For <see cref="ServiceKind.Tcp"/>: the port, 1…65535; otherwise 0.</summary>
    public int Port { get; private init; }

    /// <summary>For <see cref="ServiceKind.Failure"/>: why.</summary>
    public string? Error { get; private init; }

    /// <summary>The exit code the call ends with when it cannot go on: 127 for not found, 125 for failure, else 0.</summary>
    public int ExitCode => Kind switch
    {
        ServiceKind.NotFound => QrexecProtocol.ExitServiceNotFound,
        ServiceKind.Failure => QrexecProtocol.ExitProblem,
        _ => 0,
    };

    internal static ServiceLocation NotFound { get; } = new(ServiceKind.NotFound);

    internal static ServiceLocation Executable(string path) => new(ServiceKind.Executable) { Path = path };

    internal static ServiceLocation Socket(string path) => new(ServiceKind.Socket) { Path = path };

    internal static ServiceLocation Tcp(string path, string host, int port) =>
        new(ServiceKind.Tcp) { Path = path, Host = host, Port = port };

    internal static ServiceLocation Failure(string? path, string error) =>
        new(ServiceKind.Failure) { Path = path, Error = error };
}
