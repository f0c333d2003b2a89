using System.Collections.Generic;
using System.IO;

namespace Qubes.Core;

/// <summary>
/// Where a system on the loopback hypervisor keeps everything, under one state directory:
/// <c>qubes.xml</c>; <c>lohv/</c> the hypervisor's sockets; <c>run/</c> the daemons' sockets and
/// pid files, <c>run/qrexec/</c> the qrexec daemons' sockets, <c>run/sandbox/NAME</c> where a
/// qube's root is assembled; <c>policy.d/</c> and <c>system-info.json</c> for the policy daemon;
/// <c>dom0/rpc/</c> dom0's qrexec services (the Admin API methods and the policy daemon's
/// <c>policy.EvalSimple</c> and <c>policy.EvalGUI</c> sockets among them);
/// <c>vm/NAME/{private,root}</c> each qube's volumes; <c>log/</c> the logs.
/// </summary>
public sealed class SystemLayout(string stateDirectory)
{
    /// <summary>The state directory, absolute.</summary>
    public string State { get; } = Path.GetFullPath(stateDirectory);

    public string QubesXml => Path.Combine(State, "qubes.xml");

    public string Broker => Path.Combine(State, "lohv");

    public string Run => Path.Combine(State, "run");

    public string QubesdSocket => Path.Combine(Run, "qubesd.sock");

    public string QubesdInternalSocket => Path.Combine(Run, "qubesd.internal.sock");

    public string PolicySocket => Path.Combine(Run, "policy.sock");

    /// <summary>The terminal the policy daemon asks on for <c>ask</c> rules (<c>qubes up --ask-tty</c>), when this file names one.</summary>
    public string AskTtyFile => Path.Combine(Run, "ask-tty");

    /// <summary>The name of dom0's display where the qubes' windows go (written by the supervisor while the system is up).</summary>
    public string DisplayFile => Path.Combine(Run, "display");

    public string QrexecSockets => Path.Combine(Run, "qrexec");

    public string PolicyDirectory => Path.Combine(State, "policy.d");

    public string RuntimePolicyDirectory => Path.Combine(Run, "policy.d");

    public string LegacyPolicyDirectory => Path.Combine(State, "policy");

    public string SystemInfo => Path.Combine(State, "system-info.json");

    public string Dom0Services => Path.Combine(State, "dom0", "rpc");

    /// <summary>dom0's updates directory (upstream's <c>/var/lib/qubes/updates</c>): the packages qubes.ReceiveUpdates accepted and their repository metadata.</summary>
    public string Dom0Updates => Path.Combine(State, "dom0", "updates");

    /// <summary>dom0's rpm database, which holds the keys that updates must be signed with (upstream: dom0's own rpm database).</summary>
    public string Dom0RpmDatabase => Path.Combine(State, "dom0", "rpmdb");

    /// <summary>dom0's application-menu store (upstream's <c>~/.local/share/qubes-appmenus</c>): per qube, the entries and icons it sent, and the menu files made from them.</summary>
    public string Dom0AppMenus => Path.Combine(State, "dom0", "appmenus");

    /// <summary>The policy daemon's <c>policy.EvalSimple</c> socket: a dom0 qrexec socket service, as upstream's <c>/etc/qubes-rpc/policy.EvalSimple</c>.</summary>
    public string PolicyEvalSimpleSocket => Path.Combine(Dom0Services, "policy.EvalSimple");

    /// <summary>The policy daemon's <c>policy.EvalGUI</c> socket: a dom0 qrexec socket service, as upstream's <c>/etc/qubes-rpc/policy.EvalGUI</c>.</summary>
    public string PolicyEvalGuiSocket => Path.Combine(Dom0Services, "policy.EvalGUI");

    public string Logs => Path.Combine(State, "log");

    /// <summary>The environment variables that point the policy tools (daemon, policy program, qubes-policy) at this system.</summary>
    public IEnumerable<(string Name, string Value)> PolicyVariables =>
    [
        ("QREXEC_POLICY_DIR", PolicyDirectory),
        ("QREXEC_POLICY_RUNTIME_DIR", RuntimePolicyDirectory),
        ("QREXEC_POLICY_LEGACY_DIR", LegacyPolicyDirectory),
        ("QREXEC_SYSTEM_INFO", SystemInfo),
    ];

    /// <summary>A daemon's pid file.</summary>
    public string PidFile(string daemon) => Path.Combine(Run, daemon + ".pid");

    /// <summary>A daemon's or a qube's log.</summary>
    public string Log(string name) => Path.Combine(Logs, name + ".log");

    /// <summary>A qube's storage directory.</summary>
    public string Qube(string name) => Path.Combine(State, "vm", name);

    /// <summary>One of a qube's volumes.</summary>
    public string Volume(string name, string volume) => Path.Combine(Qube(name), volume);

    /// <summary>Where a running qube's root is assembled.</summary>
    public string Staging(string name) => Path.Combine(Run, "sandbox", name);
}
