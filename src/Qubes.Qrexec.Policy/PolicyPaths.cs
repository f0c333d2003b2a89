using System;
using Qubes.Cli;

namespace Qubes.Qrexec.Policy;

/// <summary>
/// Where the policy tools find the policy and the system information. Defaults are the system's
/// paths; the environment (<c>QREXEC_POLICY_DIR</c>, <c>QREXEC_POLICY_RUNTIME_DIR</c>,
/// <c>QREXEC_POLICY_LEGACY_DIR</c>, <c>QREXEC_SYSTEM_INFO</c>) overrides them, and command-line
/// options (<see cref="Options"/>: <c>--policy-path</c>, <c>--runtime-policy-path</c>, <c>--legacy-policy-path</c>,
/// <c>--system-info</c>) override both. The environment is how the qrexec daemon's policy program
/// fallback, which gets no options, is pointed elsewhere.
/// </summary>
public sealed class PolicyPaths
{
    /// <summary>The options that set these paths, for a policy tool's command line (<see cref="Take"/>).</summary>
    public static Option[] Options =>
    [
        new("the main policy directory (default: $QREXEC_POLICY_DIR, else /etc/qubes/policy.d)", "--policy-path") { Metavar = "DIR" },
        new("the runtime policy directory, whose files win over the main one's (default: $QREXEC_POLICY_RUNTIME_DIR, else /run/qubes/policy.d)", "--runtime-policy-path") { Metavar = "DIR" },
        new("the R4.0 policy directory that !compat-4.0 imports (default: $QREXEC_POLICY_LEGACY_DIR, else /etc/qubes-rpc/policy)", "--legacy-policy-path") { Metavar = "DIR" },
        new("the system information, as qubesd's internal.GetSystemInfo JSON (default: $QREXEC_SYSTEM_INFO, else /run/qubes/system-info.json)", "--system-info") { Metavar = "FILE" },
    ];

    /// <summary>The main policy directory.</summary>
    public string PolicyDirectory { get; private set; } = Environment.GetEnvironmentVariable("QREXEC_POLICY_DIR") ?? "/etc/qubes/policy.d";

    /// <summary>The runtime policy directory, whose files win over the main one's.</summary>
    public string RuntimeDirectory { get; private set; } = Environment.GetEnvironmentVariable("QREXEC_POLICY_RUNTIME_DIR") ?? "/run/qubes/policy.d";

    /// <summary>The R4.0 policy directory that <c>!compat-4.0</c> imports.</summary>
    public string LegacyDirectory { get; private set; } = Environment.GetEnvironmentVariable("QREXEC_POLICY_LEGACY_DIR") ?? "/etc/qubes-rpc/policy";

    /// <summary>The system information, as qubesd's <c>internal.GetSystemInfo</c> JSON.</summary>
    public string SystemInfoFile { get; private set; } = Environment.GetEnvironmentVariable("QREXEC_SYSTEM_INFO") ?? "/run/qubes/system-info.json";

    /// <summary>A loader for these directories.</summary>
    public PolicyLoader Loader() => new([RuntimeDirectory, PolicyDirectory], LegacyDirectory);

    /// <summary>Sets the path of <paramref name="parsed"/> when it is one of <see cref="Options"/>; false for any other option.</summary>
    public bool Take(Parsed parsed)
    {
        switch (parsed.Option?.Name)
        {
            case "--policy-path":
                PolicyDirectory = parsed.Value!;
                return true;
            case "--runtime-policy-path":
                RuntimeDirectory = parsed.Value!;
                return true;
            case "--legacy-policy-path":
                LegacyDirectory = parsed.Value!;
                return true;
            case "--system-info":
                SystemInfoFile = parsed.Value!;
                return true;
            default:
                return false;
        }
    }

    /// <summary>A host that keeps the policy of these paths compiled and current.</summary>
    public PolicyHost Host(Action<string>? log = null) => new(Loader(), new SystemInfoFile(SystemInfoFile), log);
}
