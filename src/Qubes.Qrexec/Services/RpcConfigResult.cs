using System.Diagnostics.CodeAnalysis;

namespace Qubes.Qrexec.Services;

/// <summary>The result of <see cref="RpcConfig.Load"/>.</summary>
public sealed class RpcConfigResult
{
    private RpcConfigResult(RpcConfig? config, string? path, string? error)
    {
        Config = config;
        Path = path;
        Error = error;
    }

    /// <summary>Whether a configuration is available (from a file, or the defaults when there is none).</summary>
    [MemberNotNullWhen(true, nameof(Config))]
    [MemberNotNullWhen(false, nameof(Error))]
    public bool IsSuccess => Config is not null;

    /// <summary>The configuration; null on failure.</summary>
    public RpcConfig? Config { get; }

    /// <summary>The file read (or that failed); null when no file was found or the search itself failed.</summary>
    public string? Path { get; }

    /// <summary>Why loading failed; null on success.</summary>
    public string? Error { get; }

    /// <summary>0 on success, 125 (<see cref="QrexecProtocol.ExitProblem"/>) on failure.</summary>
    public int ExitCode => IsSuccess ? 0 : QrexecProtocol.ExitProblem;

    internal static RpcConfigResult Loaded(RpcConfig config, string? path) => new(config, path, null);

    internal static RpcConfigResult Failed(string? path, string error) => new(null, path, error);
}
