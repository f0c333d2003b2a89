using System;
using System.Collections.Generic;
using System.IO;
using System.Linq;
using Qubes.Cli;

namespace Qubes.Core.Api;

/// <summary>
/// <c>qvm-features</c>, <c>qvm-service</c>, <c>qvm-tags</c> and <c>qvm-create</c> with upstream's
/// command lines and output (spec core-stack §10.1, §10.4-§10.7). <c>--help</c> prints the help;
/// usage errors print the usage line and <c>PROG: error: MESSAGE</c> and exit 2; errors from
/// qubesd print <c>PROG: error: MESSAGE</c> and exit 1.
/// </summary>
public static class QvmTools
{
    private static readonly Positional s_vmName = new("VMNAME", "VMNAME");

    /// <summary>The command line of the tool called <paramref name="prog"/>.</summary>
    public static Command CommandFor(string prog) => prog switch
    {
        "qvm-features" => new(prog, HelpStyle.Argparse, ToolText.QubesOptions(
            new Option("unset the feature", "--unset", "--default", "--delete", "-D")))
        {
            Description = "manage domain's features",
            Positionals = [s_vmName, new("[FEATURE]", "FEATURE", "name of the feature"), new("[VALUE]", "VALUE", "new value of the feature")],
        },
        "qvm-service" => new(prog, HelpStyle.Argparse, ToolText.QubesOptions(
            new Option("unset the service (default to the qube's preference)", "--unset", "--default", "--delete", "-D"),
            new Option("list services (default action)", "--list", "-l"),
            new Option("enable the service (same as setting \"on\" value)", "--enable", "-e"),
            new Option("disable the service (same as setting \"off\" value)", "--disable", "-d")))
        {
            Description = "manage domain's services",
            Positionals = [s_vmName, new("[SERVICE]", "SERVICE", "name of the service"), new("[VALUE]", "VALUE", "new value of the service (on/off)")],
        },
        "qvm-tags" => new(prog, HelpStyle.Argparse, ToolText.QubesOptions())
        {
            Description = "manage domain's tags",
            Positionals = [s_vmName, new("{list,ls,l,add,a,set,del,d,unset,u} ...", "COMMAND", "what to do with the tags (see the commands below)")],
            Sections =
            [
                new("commands", null, "{list,ls,l,add,a,set,del,d,unset,u}",
                [
                    new("list (ls, l)", "list the tags, or tell whether the qube has one (default action)"),
                    new("add (a, set)", "add tags"),
                    new("del (d, unset, u)", "remove a tag"),
                ]),
            ],
            Epilog = "Command 'list':\n  usage: qvm-tags VMNAME list [TAG]\n\n"
                + "Command 'add':\n  usage: qvm-tags VMNAME add TAG [TAG ...]\n\n"
                + "Command 'del':\n  usage: qvm-tags VMNAME del TAG",
        },
        "qvm-create" => new(prog, HelpStyle.Argparse, ToolText.QubesOptions(
            new Option("specify the class of the new domain (default: AppVM)", "--class", "-C") { Metavar = "CLS" },
            new Option("shortcut for --class StandaloneVM", "--standalone"),
            new Option("alias for --class DispVM --label red", "--disp"),
            new Option("set domain's property, like \"internal\", \"memory\" or \"vcpus\"", "--property", "--prop") { Metavar = "NAME=VALUE" },
            new Option("specify the TemplateVM to use", "--template", "-t") { Metavar = "VALUE" },
            new Option("specify the label to use for the new domain (e.g. red, yellow, green, ...)", "--label", "-l") { Metavar = "VALUE" },
            new Option("list available classes and exit", "--help-classes")))
        {
            Description = "create a new domain",
            Positionals = [new("[VMNAME]", "VMNAME", "name of the domain to create")],
        },
        _ => throw new ArgumentException($"unknown tool {prog}", nameof(prog)),
    };

    /// <summary>Runs the tool called <paramref name="prog"/>.</summary>
    public static int Run(string prog, IReadOnlyList<string> args, AdminClient client, TextWriter stdout, TextWriter stderr)
    {
        ArgumentNullException.ThrowIfNull(args);
        ArgumentNullException.ThrowIfNull(client);
        Command command = CommandFor(prog);
        Tool tool = new(command, client, stdout, stderr);
        return ToolText.Run(command, stdout, stderr, () => prog switch
        {
            "qvm-features" => tool.Features(args),
            "qvm-service" => tool.Service(args),
            "qvm-tags" => tool.Tags(args),
            _ => tool.Create(args),
        });
    }

    private sealed class Tool(Command command, AdminClient client, TextWriter stdout, TextWriter stderr)
    {
        /// <summary>Splits the options (by their first names) from the operands; the options end after the second operand, so that a value may start with a dash.</summary>
        private (HashSet<string> Flags, List<string> Operands) Split(IReadOnlyList<string> args)
        {
            HashSet<string> flags = new(StringComparer.Ordinal);
            List<string> operands = [];
            bool onlyOperands = false;
            for (int i = 0; i < args.Count; i++)
            {
                string a = args[i];
                if (!onlyOperands && a == "--")
                {
                    onlyOperands = true;
                }
                else if (!onlyOperands && command.IsOption(a) && operands.Count < 2)
                {
                    foreach (Parsed parsed in command.Read(args, ref i))
                    {
                        flags.Add(parsed.Option?.Name ?? throw new UsageException($"unrecognized arguments: {parsed.Text}"));
                    }
                }
                else
                {
                    operands.Add(a);
                }
            }
            return (flags, operands);
        }

        /// <summary>A qube named on the command line must exist (usage error otherwise).</summary>
        private string Qube(List<string> operands)
        {
            if (operands.Count == 0)
            {
                throw new UsageException("the following arguments are required: VMNAME");
            }
            string name = operands[0];
            if (!client.QubeExists(name))
            {
                throw new UsageException($"no such domain: '{name}'");
            }
            return name;
        }

        public int Features(IReadOnlyList<string> args)
        {
            (HashSet<string> flags, List<string> operands) = Split(args);
            string vm = Qube(operands);
            bool unset = flags.Contains("--unset");
            if (operands.Count > 3)
            {
                throw new UsageException($"unrecognized arguments: {string.Join(' ', operands.Skip(3))}");
            }
            if (unset && operands.Count < 2)
            {
                throw new UsageException("--unset requires a feature");
            }
            if (unset && operands.Count == 3)
            {
                throw new UsageException("cannot both set and unset a value");
            }
            if (operands.Count == 1)
            {
                ToolText.Table(stdout, client.Call("admin.vm.feature.List", vm).Split('\n', StringSplitOptions.RemoveEmptyEntries)
                    .Select(f => new[] { f, client.Call("admin.vm.feature.Get", vm, f) }).ToList());
                return 0;
            }
            string feature = operands[1];
            if (unset)
            {
                RemoveIgnoringMissing("admin.vm.feature.Remove", vm, feature);
                return 0;
            }
            if (operands.Count == 3)
            {
                client.Call("admin.vm.feature.Set", vm, feature, operands[2]);
                return 0;
            }
            string? value = GetOrNull("admin.vm.feature.Get", vm, feature);
            if (value == null)
            {
                return 1;
            }
            stdout.WriteLine(value);
            return 0;
        }

        public int Service(IReadOnlyList<string> args)
        {
            (HashSet<string> flags, List<string> operands) = Split(args);
            string vm = Qube(operands);
            bool enable = flags.Contains("--enable"), disable = flags.Contains("--disable"), unset = flags.Contains("--unset");
            if ((enable || disable || unset) && operands.Count < 2)
            {
                throw new UsageException($"--{(unset ? "unset" : enable ? "enable" : "disable")} requires a service");
            }
            if ((enable || disable || unset) && operands.Count == 3)
            {
                throw new UsageException("cannot both set and unset a value");
            }
            if (operands.Count == 1 || flags.Contains("--list"))
            {
                ToolText.Table(stdout, client.Call("admin.vm.feature.List", vm).Split('\n', StringSplitOptions.RemoveEmptyEntries)
                    .Where(static f => f.StartsWith("service.", StringComparison.Ordinal))
                    .Select(f => new[] { f["service.".Length..], client.Call("admin.vm.feature.Get", vm, f).Length > 0 ? "on" : "off" }).ToList());
                return 0;
            }
            string feature = "service." + operands[1];
            if (unset)
            {
                RemoveIgnoringMissing("admin.vm.feature.Remove", vm, feature);
                return 0;
            }
            if (enable || disable || operands.Count == 3)
            {
                bool on = enable || (!disable && operands[2].ToLowerInvariant() switch
                {
                    "1" or "yes" or "true" or "on" => true,
                    "0" or "no" or "false" or "off" => false,
                    _ => throw new QubesException("QubesValueError", $"Invalid literal for boolean value: '{operands[2]}'"),
                });
                client.Call("admin.vm.feature.Set", vm, feature, on ? "1" : "");
                return 0;
            }
            string? value = GetOrNull("admin.vm.feature.Get", vm, feature);
            if (value == null)
            {
                return 1;
            }
            stdout.WriteLine(value.Length > 0 ? "on" : "off");
            return 0;
        }

        public int Tags(IReadOnlyList<string> args)
        {
            (_, List<string> operands) = Split(args);
            string vm = Qube(operands);
            string command = operands.Count > 1 ? operands[1] : "list";
            List<string> tags = operands.Skip(2).ToList();
            switch (command)
            {
                case "list" or "ls" or "l":
                    string[] all = client.Call("admin.vm.tag.List", vm).Split('\n', StringSplitOptions.RemoveEmptyEntries);
                    if (tags.Count == 0)
                    {
                        foreach (string tag in all.Order(StringComparer.Ordinal))
                        {
                            stdout.WriteLine(tag);
                        }
                        return 0;
                    }
                    if (all.Contains(tags[0]))
                    {
                        stdout.WriteLine(tags[0]);
                        return 0;
                    }
                    return 1;
                case "add" or "a" or "set":
                    if (tags.Count == 0)
                    {
                        throw new UsageException("the following arguments are required: TAG");
                    }
                    foreach (string tag in tags)
                    {
                        client.Call("admin.vm.tag.Set", vm, tag);
                    }
                    return 0;
                case "del" or "d" or "unset" or "u":
                    if (tags.Count != 1)
                    {
                        throw new UsageException(tags.Count == 0 ? "the following arguments are required: TAG" : $"unrecognized arguments: {string.Join(' ', tags.Skip(1))}");
                    }
                    RemoveIgnoringMissing("admin.vm.tag.Remove", vm, tags[0]);
                    return 0;
                default:
                    throw new UsageException($"argument COMMAND: invalid choice: '{command}'");
            }
        }

        public int Create(IReadOnlyList<string> args)
        {
            string klass = "AppVM";
            string? template = null, label = null, name = null;
            List<(string Name, string Value)> properties = [];
            for (int i = 0; i < args.Count; i++)
            {
                string a = args[i];
                if (!command.IsOption(a))
                {
                    name = name == null ? a : throw new UsageException($"unrecognized arguments: {a}");
                    continue;
                }
                foreach (Parsed parsed in command.Read(args, ref i))
                {
                    switch (parsed.Option?.Name)
                    {
                        case "--class":
                            klass = parsed.Value!;
                            break;
                        case "--template":
                            template = parsed.Value;
                            break;
                        case "--label":
                            label = parsed.Value;
                            break;
                        case "--property":
                            string assignment = parsed.Value!;
                            int eq = assignment.IndexOf('=', StringComparison.Ordinal);
                            if (eq < 0)
                            {
                                throw new UsageException($"argument --property: expected NAME=VALUE, not '{assignment}'");
                            }
                            properties.Add((assignment[..eq].Replace('-', '_'), assignment[(eq + 1)..]));
                            break;
                        case "--standalone":
                            klass = "StandaloneVM";
                            break;
                        case "--disp":
                            klass = "DispVM";
                            label ??= "red";
                            break;
                        case "--help-classes":
                            foreach (string c in client.Call("admin.vmclass.List", "dom0").Split('\n', StringSplitOptions.RemoveEmptyEntries).Order(StringComparer.Ordinal))
                            {
                                stdout.WriteLine(c);
                            }
                            return 0;
                        case "--verbose" or "--quiet" or "--force-root":
                            break;
                        default:
                            throw new UsageException($"unrecognized arguments: {parsed.Text}");
                    }
                }
            }
            if (name == null)
            {
                throw new UsageException("the following arguments are required: VMNAME");
            }
            if (name.Contains(' ', StringComparison.Ordinal))
            {
                throw new UsageException("VM name cannot contain spaces");
            }
            if (label == null)
            {
                throw new UsageException("--label option is mandatory");
            }
            string[] labels = client.Call("admin.label.List", "dom0").Split('\n', StringSplitOptions.RemoveEmptyEntries);
            if (!labels.Contains(label))
            {
                throw new UsageException($"no such label: '{label}'; available: {string.Join(", ", labels)}");
            }
            if (klass == "StandaloneVM" && template != null)
            {
                // a standalone qube copied from its template needs volume cloning, which is not there yet
                stderr.WriteLine("app: Error creating VM: creating a StandaloneVM from a template is not supported yet");
                return 1;
            }
            try
            {
                client.Call("admin.vm.Create." + klass, "dom0", template ?? string.Empty, $"name={name} label={label}");
            }
            catch (QubesException e)
            {
                stderr.WriteLine($"app: Error creating VM: {e.Message}");
                return 1;
            }
            foreach ((string property, string value) in properties)
            {
                try
                {
                    client.Call("admin.vm.property.Set", name, property, value);
                }
                catch (QubesException e)
                {
                    stderr.WriteLine($"{name}: Error setting property {property} (but VM created): {e.Message}");
                    return 2;
                }
            }
            return 0;
        }

        private string? GetOrNull(string method, string vm, string argument)
        {
            try
            {
                return client.Call(method, vm, argument);
            }
            catch (QubesException e) when (e.TypeName is "QubesFeatureNotFoundError" or "QubesTagNotFoundError")
            {
                return null;
            }
        }

        private void RemoveIgnoringMissing(string method, string vm, string argument)
        {
            try
            {
                client.Call(method, vm, argument);
            }
            catch (QubesException e) when (e.TypeName is "QubesFeatureNotFoundError" or "QubesTagNotFoundError")
            {
            }
        }
    }
}
