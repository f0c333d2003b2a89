extern alias qrexec_agent;
extern alias qrexec_client_vm;
extern alias qrexec_client;
extern alias qrexec_daemon;
extern alias qrexec_policy_daemon;
extern alias qrexec_policy_exec;
extern alias qubes_lohv;
extern alias qubes_policy;
extern alias qubes_prefs;
extern alias qubesd;
extern alias qvchan;
extern alias qvm_clone;
extern alias qvm_create;
extern alias qvm_features;
extern alias qvm_kill;
extern alias qvm_ls;
extern alias qvm_prefs;
extern alias qvm_remove;
extern alias qvm_run;
extern alias qvm_service;
extern alias qvm_shutdown;
extern alias qvm_start;
extern alias qvm_tags;

using System;

namespace Qubes.Front;

/// <summary>
/// The programs of the system in one executable. The native build is one ahead-of-time compiled
/// executable, <c>qubes</c>, with a link to it for each program (publishing makes them): started by
/// one of those names, it runs that program; by any other, the front command. So every program
/// shares one image in memory and the build compiles once.
/// </summary>
internal static class MultiCall
{
    /// <summary>The programs other than the front command, by name.</summary>
    public static Func<string[], int>? Find(string name) => name switch
    {
        "qrexec-agent" => qrexec_agent::Qubes.Tools.QrexecAgent.Program.Main,
        "qrexec-client-vm" => qrexec_client_vm::Qubes.Tools.QrexecClientVm.Program.Main,
        "qrexec-client" => qrexec_client::Qubes.Tools.QrexecClient.Program.Main,
        "qrexec-daemon" => qrexec_daemon::Qubes.Tools.QrexecDaemon.Program.Main,
        "qrexec-policy-daemon" => qrexec_policy_daemon::Qubes.Tools.PolicyDaemon.Program.Main,
        "qrexec-policy-exec" => qrexec_policy_exec::Qubes.Tools.PolicyExec.Program.Main,
        "qubes-lohv" => qubes_lohv::Qubes.Daemons.Lohv.Program.Main,
        "qubes-policy" => qubes_policy::Qubes.Tools.QubesPolicy.Program.Main,
        "qubes-prefs" => qubes_prefs::Qubes.Tools.Program.Main,
        "qubesd" => qubesd::Qubes.Tools.Qubesd.Program.Main,
        "qvchan" => qvchan::Qubes.Tools.Qvchan.Program.Main,
        "qvm-clone" => qvm_clone::Qubes.Tools.Program.Main,
        "qvm-create" => qvm_create::Qubes.Tools.Program.Main,
        "qvm-features" => qvm_features::Qubes.Tools.Program.Main,
        "qvm-kill" => qvm_kill::Qubes.Tools.Program.Main,
        "qvm-ls" => qvm_ls::Qubes.Tools.Program.Main,
        "qvm-prefs" => qvm_prefs::Qubes.Tools.Program.Main,
        "qvm-remove" => qvm_remove::Qubes.Tools.Program.Main,
        "qvm-run" => qvm_run::Qubes.Tools.Program.Main,
        "qvm-service" => qvm_service::Qubes.Tools.Program.Main,
        "qvm-shutdown" => qvm_shutdown::Qubes.Tools.Program.Main,
        "qvm-start" => qvm_start::Qubes.Tools.Program.Main,
        "qvm-tags" => qvm_tags::Qubes.Tools.Program.Main,
        _ => null,
    };
}
