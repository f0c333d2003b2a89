using System.Collections.Generic;
using Qubes.Qrexec.Services;

namespace Qubes.Qrexec.Runtime;

/// <summary>
/// A call's command line resolved by <see cref="ServiceRunner.Prepare"/>: the program, socket or
/// TCP address to serve it with, or the exit status that reports why it cannot be served.
/// </summary>
public sealed class PreparedService
{
    internal PreparedService(ServiceCommand command, ServiceKind kind, ServiceLocation? location, RpcConfig settings,
        string? path, IReadOnlyList<string> argv, IReadOnlyList<string> environment, string? workingDirectory = null)
    {
        WorkingDirectory = workingDirectory;
        Command = command;
        Kind = kind;
        Location = location;
        Settings = settings;
        Path = path;
        Argv = argv;
        Environment = environment;
    }

    private PreparedService(int failureStatus)
    {
        FailureStatus = failureStatus;
        Settings = RpcConfig.Default;
        Argv = [];
        Environment = [];
    }

    /// <summary>The parsed command line; null when the call cannot be served.</summary>
    public ServiceCommand? Command { get; }

    /// <summary>The status to report when <see cref="Command"/> is null (125, 126 or 127).</summary>
    public int FailureStatus { get; }

    /// <summary>How the service is reached: an executable (plain commands run under /bin/sh), a socket or a TCP address.</summary>
    public ServiceKind Kind { get; }

    /// <summary>Where the service was found; null for a plain command.</summary>
    public ServiceLocation? Location { get; }

    /// <summary>The service's configuration (defaults for a plain command).</summary>
    public RpcConfig Settings { get; }

    /// <summary>The program to start, for an executable.</summary>
    public string? Path { get; }

    /// <summary>Its argument vector.</summary>
    public IReadOnlyList<string> Argv { get; }

    /// <summary>Its environment, <c>KEY=VALUE</c>.</summary>
    public IReadOnlyList<string> Environment { get; }

    /// <summary>Where it starts (the user's home when it runs as another user), or null for the runner's own.</summary>
    public string? WorkingDirectory { get; }

    internal static PreparedService Failed(int status) => new(status);
}
