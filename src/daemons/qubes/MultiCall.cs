extern alias qfile_unpacker;
extern alias qrexec_agent;
extern alias qrexec_client_vm;
extern alias qrexec_client;
extern alias qrexec_daemon;
extern alias qrexec_policy_daemon;
extern alias qrexec_policy_exec;
extern alias qubes_lohv;
extern alias qubes_policy;
extern alias qubes_receive_updates;
extern alias qubesd;
extern alias qvchan;
extern alias rpmcanon;
extern alias qvm_appmenus;
extern alias qvm_copy;
extern alias qubes_guid;
extern alias qubes_gui_agent;

using System;

namespace Qubes.Front;

/// <summary>
/// The daemons and clients of the system in one native executable, <c>qubes</c>, with a link to it
/// for each program (publishing makes them): started by one of those names, it runs that program; by
/// any other, the front command. So the daemons of every qube share one image in memory. The admin
/// tools are the other executable (src/multicall/qvm-tools), which starts without loading these.
/// </summary>
internal static class MultiCall
{
    /// <summary>The daemons and clients, by name.</summary>
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
        "qubesd" => qubesd::Qubes.Tools.Qubesd.Program.Main,
        "qvchan" => qvchan::Qubes.Tools.Qvchan.Program.Main,
        "qfile-unpacker" or "qfile-dom0-unpacker" => qfile_unpacker::Qubes.Tools.QfileUnpacker.Program.Main,
        "qvm-copy" or "qvm-move" or "qvm-copy-to-vm" or "qvm-move-to-vm" or "qfile-agent" => qvm_copy::Qubes.Tools.QvmCopy.Program.Main,
        "qvm-appmenus" or "qvm-sync-appmenus" => qvm_appmenus::Qubes.Tools.QvmAppmenus.Program.Main,
        "qubes-receive-updates" => qubes_receive_updates::Qubes.Tools.QubesReceiveUpdates.Program.Main,
        "rpmcanon" => rpmcanon::Qubes.Tools.Rpmcanon.Program.Main,
        "qubes-guid" => qubes_guid::Qubes.Tools.Guid.Program.Main,
        "qubes-gui-agent" => qubes_gui_agent::Qubes.Tools.QubesGuiAgent.Program.Main,
        _ => null,
    };
}
