using System;
using System.Collections.Generic;
using System.Diagnostics;
using System.IO;
using System.Linq;
using Qubes.AppMenus;
using Qubes.Cli;
using Qubes.Core;
using Qubes.Core.Api;

namespace Qubes.Tools.QvmAppmenus;

/// <summary>
/// dom0's application-menu tools with upstream's command lines: <c>qvm-appmenus</c> (the menus dom0
/// keeps per qube) and, by that name, <c>qvm-sync-appmenus</c> (a qube's entries and icons, asked
/// from it or pushed by it through <c>qubes.SyncAppMenus</c>).
/// </summary>
internal static class Program
{
    private static readonly Positional s_vmNames = new("[VMNAME ...]", "VMNAME", "VMs on which perform requested actions");

    /// <summary>The command line of the program called <paramref name="prog"/>.</summary>
    internal static Command CommandFor(string prog) => prog == "qvm-sync-appmenus"
        ? new(prog, HelpStyle.Argparse, ToolText.QubesOptions(
            new Option("Force to start a new RPC call, even if called from existing one", "--force-rpc"),
            new Option("Only regenerate appmenus entries, do not synchronize with system in template", "--regenerate-only")))
        {
            Description = "retrieve appmenus",
            Positionals = [new("[VMNAME]", "VMNAME", "name of the domain")],
        }
        : new(prog, HelpStyle.Argparse, ToolText.QubesOptions(
            new Option("Initialize directory structure for appmenus (on VM creation)", "--init"),
            new Option("Create appmenus", "--create"),
            new Option("Remove appmenus", "--remove"),
            new Option("Update appmenus", "--update"),
            new Option("Get list of applications available", "--get-available"),
            new Option("Get list of applications to include in the menu", "--get-whitelist"),
            new Option("Set list of applications to include in the menu,use '-' to read from stdin", "--set-whitelist") { Metavar = "PATH", Group = "stdin" },
            new Option("Set default list of applications to include in menu for VMs based on this template,use '-' to read from stdin", "--set-default-whitelist") { Metavar = "PATH", Group = "stdin" },
            new Option("Get default list of applications to include in menu for VMs based on this template", "--get-default-whitelist"),
            new Option("Source VM to copy data from (for --init option)", "--source") { Metavar = "SOURCE" },
            new Option("Force refreshing files, even when looks up to date", "--force"),
            new Option("deprecated no-op for backward compatibility", "--i-understand-format-is-unstable"),
            new Option("File field to append to output for --get-available; can be used multiple times for multiple fields. This option changes output format to pipe-(\"|\") separated.", "--file-field") { Metavar = "FIELDS" },
            new Option("Use the following template for listed domains instead of their actual template. Requires --get-available.", "--template") { Metavar = "TEMPLATE" },
            new Option("perform the action on all qubes", "--all")))
        {
            Positionals = [s_vmNames],
        };

    /// <summary>The command line of the name this process was started by.</summary>
    internal static Command Command => CommandFor(Command.InvokedName() == "qvm-sync-appmenus" ? "qvm-sync-appmenus" : "qvm-appmenus");

    internal static int Main(string[] args)
    {
        Command command = Command;
        string prog = command.Prog;
        return ToolText.Run(command, Console.Out, Console.Error, () =>
        {
            (Dictionary<string, List<string>> options, List<string> operands) = Parse(command, args);
            AdminClient admin = new(SocketTransport.FromEnvironment());
            AdminQubes qubes = new(admin);
            AppMenuStore store = new(BaseDirectory(), qubes, Console.Error)
            {
                Verbose = options.ContainsKey("--verbose"),
                RegisterWithDesktop = Environment.GetEnvironmentVariable("QUBES_STATE_DIR") == null,
            };
            return prog == "qvm-sync-appmenus" ? Sync(options, operands, qubes, store) : AppMenus(options, operands, qubes, store);
        });
    }

    /// <summary>Where dom0 keeps the menus: the system's state directory on the loopback hypervisor, else upstream's <c>$XDG_DATA_HOME/qubes-appmenus</c>.</summary>
    private static string BaseDirectory()
    {
        if (Environment.GetEnvironmentVariable("QUBES_STATE_DIR") is { } state)
        {
            return new SystemLayout(state).Dom0AppMenus;
        }
        string data = Environment.GetEnvironmentVariable("XDG_DATA_HOME") is { Length: > 0 } xdg
            ? xdg : Path.Combine(Environment.GetFolderPath(Environment.SpecialFolder.UserProfile), ".local", "share");
        return Path.Combine(data, "qubes-appmenus");
    }

    /// <summary>Options (by first name, with their values in order) and operands, in any order, as argparse takes them.</summary>
    private static (Dictionary<string, List<string>>, List<string>) Parse(Command command, string[] args)
    {
        Dictionary<string, List<string>> options = new(StringComparer.Ordinal);
        List<Parsed> parsedOptions = command.ReadAll(args, out List<string> operands);
        foreach (Parsed parsed in parsedOptions)
        {
            Option option = parsed.Option ?? throw new UsageException($"unrecognized arguments: {parsed.Text}");
            if (!options.TryGetValue(option.Name, out List<string>? values))
            {
                options[option.Name] = values = [];
            }
            values.AddRange(parsed.Values);
        }
        return (options, operands);
    }

    private static int Sync(Dictionary<string, List<string>> options, List<string> operands, AdminQubes qubes, AppMenuStore store)
    {
        string? caller = Environment.GetEnvironmentVariable("QREXEC_REMOTE_DOMAIN");
        if (operands.Count > 1)
        {
            throw new UsageException($"unrecognized arguments: {string.Join(' ', operands.Skip(1))}");
        }
        string name = caller ?? (operands.Count == 1 ? operands[0] : throw new UsageException("You must specify at least the VM name!"));
        if (!qubes.Exists(name))
        {
            throw new UsageException($"no such domain: '{name}'");
        }
        MenuQube vm = qubes.Get(name);
        bool fromInput = caller != null && !options.ContainsKey("--force-rpc");
        if (!options.ContainsKey("--regenerate-only"))
        {
            if (!qubes.IsRunning(name))
            {
                throw new UsageException("Appmenus can be retrieved only from running VM");
            }
            MenuList.Result list = fromInput ? MenuList.Read(Console.OpenStandardInput(), pull: false, Console.Error) : Pull(name);
            IReadOnlyList<MenuEntry> entries = list.Entries ?? throw new QubesException("QubesException", list.Error!);
            if (entries.Count == 0 && vm.Class != "AppVM")
            {
                if (store.Verbose)
                {
                    Console.Error.WriteLine("No appmenus received, terminating");
                }
            }
            else
            {
                store.ReceiveEntries(vm, entries, source => ServiceCall.Icon(name, source));
            }
        }
        store.Update(vm, force: false);
        return 0;
    }

    /// <summary>The qube's list from its <c>qubes.GetAppmenus</c>; a failed service aborts.</summary>
    private static MenuList.Result Pull(string vm)
    {
        using Process p = ServiceCall.Start(vm, "qubes.GetAppmenus");
        p.StandardInput.Close();
        MenuList.Result list = MenuList.Read(p.StandardOutput.BaseStream, pull: true, Console.Error);
        p.StandardOutput.Close();
        p.WaitForExit();
        // a list refused whole says why; the qube's service may have failed only because reading stopped
        return list.Error == null && p.ExitCode != 0 ? new(null, "Error getting application list") : list;
    }

    private static int AppMenus(Dictionary<string, List<string>> options, List<string> operands, AdminQubes qubes, AppMenuStore store)
    {
        bool Has(string name) => options.ContainsKey(name);
        string? Value(string name) => options.TryGetValue(name, out List<string>? v) && v.Count > 0 ? v[^1] : null;
        if (Has("--i-understand-format-is-unstable"))
        {
            Console.Error.WriteLine("Warning: --i-understand-format-is-unstable is deprecated and has no effect.");
        }
        if (!Has("--all") && operands.Count == 0)
        {
            throw new UsageException("one of the arguments --all VMNAME is required");
        }
        MenuQube? source = Value("--source") is { } s ? Existing(qubes, s) : null;
        MenuQube? template = Value("--template") is { } t ? Existing(qubes, t) : null;
        IEnumerable<string> names = !Has("--all") ? operands
            : Has("--remove") ? (Directory.Exists(store.BaseDirectory) ? Directory.GetDirectories(store.BaseDirectory).Select(static d => Path.GetFileName(d)) : [])
            : qubes.All().Select(static q => q.Name);
        foreach (string name in names.ToList())
        {
            if (name == "dom0")
            {
                continue;
            }
            if (Has("--remove"))
            {
                store.Remove(name);
                continue;
            }
            MenuQube vm = Existing(qubes, name);
            if (Has("--init"))
            {
                store.Init(vm, source);
            }
            if (Has("--get-whitelist"))
            {
                Console.WriteLine(string.Join('\n', store.Whitelist(vm) ?? []));
            }
            if (Value("--set-default-whitelist") is { } defaults)
            {
                qubes.SetFeature(vm.Name, "default-menu-items", string.Join(' ', ReadList(defaults)));
            }
            if (Has("--get-default-whitelist"))
            {
                Console.WriteLine(string.Join('\n', (vm.Feature("default-menu-items") ?? "").Split(' ')));
            }
            if (Value("--set-whitelist") is { } whitelist)
            {
                qubes.SetFeature(vm.Name, "menu-items", string.Join(' ', ReadList(whitelist)));
                vm = qubes.Get(vm.Name);
            }
            if (Has("--create"))
            {
                store.CreateIcons(vm, Has("--force"));
                store.CreateMenu(vm, Has("--force"));
            }
            if (Has("--update"))
            {
                store.Update(vm, Has("--force"));
            }
            if (Has("--get-available"))
            {
                List<string>? fields = options.GetValueOrDefault("--file-field");
                foreach (string[] row in store.Available(vm, fields, template))
                {
                    Console.WriteLine(fields is { Count: > 0 } ? string.Join('|', row) : $"{row[0]} - {row[1]}");
                }
            }
        }
        return 0;
    }

    private static MenuQube Existing(AdminQubes qubes, string name)
        => qubes.Exists(name) ? qubes.Get(name) : throw new UsageException($"'{name}' is not an existing qube");

    /// <summary>A list of entries, one per line, from a file or from standard input (<c>-</c>).</summary>
    private static List<string> ReadList(string path)
    {
        string text = path == "-" ? Console.In.ReadToEnd() : File.ReadAllText(path);
        List<string> lines = text.Split('\n').ToList();
        if (lines[^1].Length == 0)
        {
            lines.RemoveAt(lines.Count - 1); // the newline that ends the last line
        }
        return lines.Select(static l => l.TrimEnd()).ToList();
    }
}
