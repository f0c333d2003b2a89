using System;
using System.Collections.Generic;
using System.Threading;

namespace Qubes.Qrexec.Policy;

/// <summary>
/// Keeps a <see cref="PolicyEngine"/> up to date: before answering it looks at every file and
/// directory the last load read (and at the system information), and compiles the policy again
/// when anything changed, so a change of <c>policy.d</c> takes effect at the next call without a
/// restart. While the policy or the system information cannot be loaded, the engine denies every
/// call (spec qrexec-policy §1 rule 5); the reason is in <see cref="PolicyEngine.Error"/>.
/// </summary>
public sealed class PolicyHost
{
    private readonly PolicyLoader _loader;
    private readonly ISystemInfoSource _systemSource;
    private readonly Action<string>? _log;
    private readonly Lock _lock = new();
    private PolicyEngine? _engine;
    private (string Path, FileStamp Stamp)[] _watched = [];
    private long _loads;

    /// <summary><paramref name="log"/> hears of every (re)load and of every problem.</summary>
    public PolicyHost(PolicyLoader loader, ISystemInfoSource systemInfo, Action<string>? log = null)
    {
        ArgumentNullException.ThrowIfNull(loader);
        ArgumentNullException.ThrowIfNull(systemInfo);
        _loader = loader;
        _systemSource = systemInfo;
        _log = log;
    }

    /// <summary>How many times the policy was compiled.</summary>
    public long Loads => Interlocked.Read(ref _loads);

    /// <summary>The engine for the policy and system as they are now.</summary>
    public PolicyEngine Current
    {
        get
        {
            lock (_lock)
            {
                SystemInfo? system = null;
                bool systemChanged;
                string? systemError = null;
                try
                {
                    system = _systemSource.Current(out systemChanged);
                }
                catch (FormatException e)
                {
                    systemChanged = _engine?.Error != "system information: " + e.Message;
                    systemError = "system information: " + e.Message;
                }
                if (_engine != null && !systemChanged && !PolicyChanged())
                {
                    return _engine;
                }
                _engine = systemError != null ? PolicyEngine.Unusable(systemError) : Compile(system!);
                _loads++;
                _log?.Invoke(_engine.Error is string error
                    ? $"policy unusable, denying every call: {error}"
                    : $"policy loaded: {_engine.Rules.Count} rules, {_engine.System.Qubes.Count} qubes");
                return _engine;
            }
        }
    }

    private PolicyEngine Compile(SystemInfo system)
    {
        List<string> watched = [];
        try
        {
            return new PolicyEngine(_loader.Load(watched), system);
        }
        catch (PolicySyntaxException e)
        {
            return PolicyEngine.Unusable(e.Message, system, e.Notifies);
        }
        finally
        {
            // What was read up to an error is watched too: fixing that file reloads.
            _watched = [.. watched.ConvertAll(static p => (p, FileStamp.Of(p)))];
        }
    }

    private bool PolicyChanged()
    {
        foreach ((string path, FileStamp stamp) in _watched)
        {
            if (FileStamp.Of(path) != stamp)
            {
                return true;
            }
        }
        return false;
    }
}
