extern alias qubes_prefs;
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
using System.IO;

namespace Qubes.Tools.MultiCall;

/// <summary>
/// The admin tools in one native executable, <c>qvm-tools</c>: started by a link named after a
/// tool, it runs that tool.
/// </summary>
internal static class MultiCall
{
    /// <summary>The tools, by name.</summary>
    private static Func<string[], int>? Find(string name) => name switch
    {
        "qubes-prefs" => qubes_prefs::Qubes.Tools.Program.Main,
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

    private static int Main(string[] args)
    {
        if (Find(Path.GetFileName(Environment.GetCommandLineArgs()[0])) is { } tool)
        {
            return tool(args);
        }
        Console.Error.WriteLine("qvm-tools: run this executable by the name of one of its tools: qubes-prefs, qvm-clone, qvm-create, qvm-features, qvm-kill, qvm-ls, qvm-prefs, qvm-remove, qvm-run, qvm-service, qvm-shutdown, qvm-start, qvm-tags");
        return 2;
    }
}
