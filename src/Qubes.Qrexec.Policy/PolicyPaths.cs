using System;
using System.Collections.Generic;

namespace Qubes.Qrexec.Policy;

/// <summary>
/// Where the policy tools find the policy and the system information. Defaults are the system's
/// paths; the environment (<c>QREXEC_POLICY_DIR</c>, <c>QREXEC_POLICY_RUNTIME_DIR</c>,
/// <c>QREXEC_POLICY_LEGACY_DIR</c>, <c>QREXEC_SYSTEM_INFO</c>) overrides them, and command-line
/// options (<c>--policy-path</c>, <c>--runtime-policy-path</c>, <c>--legacy-policy-path</c>,
/// <c>--system-info</c>) override both. The environment is how the qrexec daemon's policy program
/// fallback, which gets no options, is pointed elsewhere.
/// </summary>
public sealed class PolicyPaths
{
    /// <summary>The options <see cref="TryParse"/> takes, for usage texts.</summary>
    public const string Usage = "[--policy-path DIR] [--runtime-policy-path DIR] [--legacy-policy-path DIR] [--system-info FILE]";

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

    /// <summary>
    /// Takes the option at <c>args[i]</c> (and its value) when it is one of these; false when it is
    /// not. Throws <see cref="ArgumentException"/> when its value is missing.
    /// </summary>
    public bool TryParse(IReadOnlyList<string> args, ref int i)
    {
        ArgumentNullException.ThrowIfNull(args);
        string option = args[i];
        string? value = null;
        int equals = option.IndexOf('=', StringComparison.Ordinal);
        if (option.StartsWith("--", StringComparison.Ordinal) && equals > 0)
        {
            value = option[(equals + 1)..];
            option = option[..equals];
        }
        if (option is not ("--policy-path" or "--runtime-policy-path" or "--legacy-policy-path" or "--system-info"))
        {
            return false;
        }
        if (value == null)
        {
            if (i + 1 >= args.Count)
            {
                throw new ArgumentException($"{option} needs a value");
            }
            value = args[++i];
        }
        switch (option)
        {
            case "--policy-path":
                PolicyDirectory = value;
                break;
            case "--runtime-policy-path":
                RuntimeDirectory = value;
                break;
            case "--legacy-policy-path":
                LegacyDirectory = value;
                break;
            default:
                SystemInfoFile = value;
                break;
        }
        return true;
    }

    /// <summary>A host that keeps the policy of these paths compiled and current.</summary>
    public PolicyHost Host(Action<string>? log = null) => new(Loader(), new SystemInfoFile(SystemInfoFile), log);
}
