using System;
using System.Collections.Generic;
using System.Globalization;
using System.IO;
using System.Linq;
using Qubes.Cli;

namespace Qubes.Core.Api;

/// <summary>
/// <c>qvm-ls [VMNAME…]</c> (spec core-stack §10.3): one row per qube with the columns of a preset
/// format or of <c>--fields</c>, filtered, then sorted by a column or laid out as the network tree.
/// Usage errors print the usage line and <c>qvm-ls: error: MESSAGE</c> and exit 2; errors from
/// qubesd print <c>qvm-ls: error: MESSAGE</c> and exit 1.
/// </summary>
public static class QvmLs
{

    private static readonly (string Name, string[] Columns)[] s_formats =
    [
        ("simple", ["name", "state", "class", "label", "template", "netvm"]),
        ("network", ["name", "state", "netvm", "ip", "ipback", "gateway"]),
        ("kernel", ["name", "state", "class", "template", "kernel", "kernelopts"]),
        ("full", ["name", "state", "class", "label", "qid", "xid", "uuid"]),
        ("prefs", ["name", "label", "template", "netvm", "vcpus", "initialmem", "maxmem", "virt_mode"]),
        ("disk", ["name", "state", "disk", "priv-curr", "priv-max", "priv-used", "root-curr", "root-max", "root-used"]),
    ];

    /// <summary>The columns that are not VM properties (<c>--help-columns</c>); any other name is a property. Volume sizes are not served, so the disk columns stay empty.</summary>
    private static readonly Dictionary<string, (string Doc, Func<Vm, string?> Value)> s_columns = new(StringComparer.Ordinal)
    {
        ["CLASS"] = ("Class of the qube.", static vm => vm.Class),
        ["DISK"] = ("Total disk utilisation.", static _ => null),
        ["FLAGS"] = ("Some fancy flags that describe general status of the domain.", Flags),
        ["GATEWAY"] = ("Network gateway.", static vm => vm.Property("netvm") is string netvm ? vm.Other(netvm)?.Property("gateway") : null),
        ["MEMORY"] = ("Memory currently used by VM", static vm => vm.State is "Halted" or "NA" ? null : (Number(vm.Current("mem") ?? "") / 1024).ToString(CultureInfo.InvariantCulture)),
        ["PRIV-CURR"] = ("Disk utilisation by private image (/home, /usr/local).", static _ => null),
        ["PRIV-MAX"] = ("Maximum available space for private image.", static _ => null),
        ["PRIV-USED"] = ("Disk utilisation by private image as a percentage of available space.", static _ => null),
        ["ROOT-CURR"] = ("Disk utilisation by root image (/usr, /lib, /etc, ...).", static _ => null),
        ["ROOT-MAX"] = ("Maximum available space for root image.", static _ => null),
        ["ROOT-USED"] = ("Disk utilisation by root image as a percentage of available space.", static _ => null),
        ["STATE"] = ("Current power state.", static vm => vm.State),
    };

    private static readonly string[] s_numeric = ["MEMORY", "DISK", "PRIV-CURR", "PRIV-MAX", "PRIV-USED", "ROOT-CURR", "ROOT-MAX", "ROOT-USED", "XID", "MAXMEM", "QREXEC-TIMEOUT", "SHUTDOWN-TIMEOUT", "VCPUS"];

    private static readonly string[] s_listOptions = ["--class", "--label", "--tags", "--exclude-tags", "--template-source", "--netvm-is", "--features", "--prefs"];

    /// <summary>qvm-ls's command line.</summary>
    public static Command Command { get; } = MakeCommand();

    private static Command MakeCommand()
    {
        const string Formatting = "formatting options", Filtering = "filtering options", Sorting = "sorting options";
        Option Format(string help, string? metavar, params string[] names) => new(help, names) { Section = Formatting, Group = "format", Metavar = metavar };
        Option Filter(string help, string? metavar, params string[] names) => new(help, names) { Section = Filtering, Metavar = metavar, Arity = metavar == null ? Arity.None : Arity.OneOrMore };
        Option Choice(string help, string name) => new(help, name) { Section = Filtering, Metavar = "<y|n>" };
        string[] formats = [.. s_formats.Select(static f => f.Name).Order(StringComparer.Ordinal)];
        string[] columns = [.. s_columns.Keys.Append("NAME").Order(StringComparer.Ordinal).Select(static c => c + ","), "and", "any", "VM", "property"];
        return new("qvm-ls", HelpStyle.Argparse, ToolText.QubesOptions(
            new Option("perform the action on all qubes", "--all"),
            new Option("exclude the qube from --all", "--exclude") { Metavar = "EXCLUDE" },
            Format("preset format", "FORMAT", "--format", "-o"),
            Format("user specified format (see available columns below)", "FIELD,...", "--fields", "-O"),
            new Option("sort domain list as network tree", "--tree", "-t") { Section = Formatting },
            new Option("display specific data of the specified VMs; intended for bash-parsing", "--raw-data") { Section = Formatting },
            new Option("same as --raw-data --fields=name", "--raw-list") { Section = Formatting },
            Format("same as --format=disk", null, "--disk", "-d"),
            Format("same as --format=network", null, "--network", "-n"),
            Format("same as --format=kernel", null, "--kernel", "-k"),
            new Option("list the available formats and exit", "--help-formats") { Section = Formatting },
            new Option("list the available columns and exit", "--help-columns") { Section = Formatting },
            Filter("show only qubes of specific class(es)", "CLASS", "--class"),
            Filter("show only qubes with specific label(s)", "LABEL", "--label"),
            Filter("show only qubes having specific tag(s)", "TAG", "--tags"),
            Filter("exclude qubes having specific tag(s)", "TAG", "--exclude-tags"),
            Filter("show running VMs", null, "--running"),
            Filter("show paused VMs", null, "--paused"),
            Filter("show halted VMs", null, "--halted"),
            Filter("filter results to the qubes based on the TEMPLATE; \"\" means None", "TEMPLATE", "--template-source"),
            Filter("filter results to the qubes connecting via NETVM", "NETVM", "--netvm-is"),
            Choice("show only internal qubes or option to hide them", "--internal"),
            Choice("show only ServiceVMs or option to hide them", "--servicevm"),
            Filter("filter results to qubes pending for update", null, "--pending-update"),
            Filter("filter results to qubes that match all specified features; omitted VALUE means None (unset), empty value means \"\" (blank)", "FEATURE=VALUE", "--features"),
            Filter("filter results to qubes that match all specified preferences; omitted VALUE means None (unset), empty value means \"\" (blank)", "PREFERENCE=VALUE", "--prefs"),
            new Option("sort based on provided column rather than NAME", "--sort") { Section = Sorting, Metavar = "COLUMN" },
            new Option("reverse sort", "--reverse") { Section = Sorting },
            new Option("ignore case distinctions when sorting", "--ignore-case") { Section = Sorting },
            new Option("accepted for compatibility; there is no spinner", "--spinner"),
            new Option("accepted for compatibility; there is no spinner", "--no-spinner")))
        {
            Description = "List Qubes domains and their parameters.",
            Positionals = [new("[VMNAME ...]", "VMNAME")],
            Epilog = "available formats (see --help-formats):\n" + ToolText.Wrap(" ", [.. formats.SkipLast(1).Select(static f => f + ","), formats[^1]], 80, "  ")
                + "\n\navailable columns (see --help-columns):\n" + ToolText.Wrap(" ", columns, 80, "  "),
        };
    }

    /// <summary>Runs the tool; returns the exit status.</summary>
    public static int Run(IReadOnlyList<string> args, AdminClient client, TextWriter stdout, TextWriter stderr)
    {
        ArgumentNullException.ThrowIfNull(args);
        ArgumentNullException.ThrowIfNull(client);
        return ToolText.Run(Command, stdout, stderr, () => List(args, client, stdout));
    }

    private static int List(IReadOnlyList<string> args, AdminClient client, TextWriter stdout)
    {
        if (Parse(args, stdout) is not Options o)
        {
            return 0;
        }
        IEnumerable<string> fields = o.Flags.Contains("--raw-list") ? ["name"]
            : o.Fields?.Split(',').Select(static f => f.Trim()) ?? s_formats.First(f => f.Name == (o.Format ?? "simple")).Columns;
        (string Head, Func<Vm, string?> Value)[] columns = [.. fields.Select(Column)];
        Dictionary<string, Vm> qubes = new(StringComparer.Ordinal);
        foreach (string line in client.Call("admin.vm.List", "dom0").Split('\n', StringSplitOptions.RemoveEmptyEntries))
        {
            string name = line.Split(' ')[0];
            qubes[name] = new Vm(name, KeyValues(line), client, qubes);
        }
        List<Vm> selected = [.. Select(o, qubes)];
        bool tree = o.Flags.Contains("--tree");
        string Cell((string Head, Func<Vm, string?> Value) column, int level, Vm vm)
            => column.Head == "NAME" && level > 0 ? new string(' ', 2 * (level - 1)) + "└─" + vm.Name
            : column.Value(vm) is { Length: > 0 } value ? value : "-";
        List<string[]> rows = [.. (tree ? Tree(selected) : selected.Select(static vm => (Level: 0, Vm: vm)))
            .Select(e => columns.Select(c => Cell(c, e.Level, e.Vm)).ToArray())];
        string sortHead = o.Sort.ToUpperInvariant().Replace('_', '-');
        int index = Array.FindIndex(columns, c => c.Head == sortHead);
        if (!tree && index >= 0)
        {
            Comparison<string> compare = s_numeric.Contains(sortHead) ? static (x, y) => Number(x).CompareTo(Number(y))
                : o.Flags.Contains("--ignore-case") ? static (x, y) => string.CompareOrdinal(x.ToUpperInvariant(), y.ToUpperInvariant())
                : string.CompareOrdinal;
            int sign = o.Flags.Contains("--reverse") ? -1 : 1;
            rows = [.. rows.Order(Comparer<string[]>.Create((x, y) => sign * compare(x[index], y[index])))];
        }
        if (o.Flags.Contains("--raw-data") || o.Flags.Contains("--raw-list"))
        {
            rows.ForEach(row => stdout.WriteLine(string.Join('|', row)));
        }
        else
        {
            ToolText.Table(stdout, [[.. columns.Select(static c => c.Head)], .. rows]);
        }
        return 0;
    }

    /// <summary>The options and VM names, or null when a help text was printed instead.</summary>
    private static Options? Parse(IReadOnlyList<string> args, TextWriter stdout)
    {
        Options o = new();
        bool onlyNames = false;
        for (int i = 0; i < args.Count; i++)
        {
            string a = args[i];
            if (!onlyNames && a == "--")
            {
                onlyNames = true;
                continue;
            }
            if (onlyNames || !Command.IsOption(a))
            {
                o.Names.Add(a);
                continue;
            }
            foreach (Parsed parsed in Command.Read(args, ref i))
            {
                string Choice(params string[] allowed) => allowed.Contains(parsed.Value)
                    ? parsed.Value!
                    : throw new UsageException($"argument {parsed.Option!.Display}: invalid choice: '{parsed.Value}' (choose from {string.Join(", ", allowed)})");
                string? option = parsed.Option?.Name;
                switch (option)
                {
                    case "--format":
                        o.Format = Choice([.. s_formats.Select(static f => f.Name)]);
                        break;
                    case "--disk" or "--network" or "--kernel":
                        o.Format = option[2..];
                        break;
                    case "--fields":
                        o.Fields = parsed.Value;
                        break;
                    case "--sort":
                        o.Sort = parsed.Value!;
                        break;
                    case "--exclude":
                        o.Exclude.Add(parsed.Value!);
                        break;
                    case "--internal" or "--servicevm":
                        o.Choices[option] = Choice("y", "yes", "n", "no");
                        break;
                    case not null when s_listOptions.Contains(option):
                        o.Lists[option] = [.. parsed.Values];
                        break;
                    case "--all" or "--tree" or "--raw-data" or "--raw-list" or "--running" or "--paused" or "--halted" or "--pending-update" or "--reverse" or "--ignore-case":
                        o.Flags.Add(option);
                        break;
                    case "--verbose" or "--quiet" or "--force-root" or "--spinner" or "--no-spinner":
                        break;
                    case "--help-formats":
                        int width = s_formats.Max(static f => f.Name.Length);
                        stdout.WriteLine("Available formats:");
                        foreach ((string name, string[] preset) in s_formats.OrderBy(static f => f.Name, StringComparer.Ordinal))
                        {
                            stdout.WriteLine($"  {name.PadRight(width)}  {string.Join(',', preset).ToUpperInvariant()}");
                        }
                        stdout.WriteLine();
                        return null;
                    case "--help-columns":
                        int headWidth = s_columns.Keys.Max(static k => k.Length);
                        stdout.WriteLine("Available columns:");
                        foreach (string head in s_columns.Keys.Order(StringComparer.Ordinal))
                        {
                            stdout.WriteLine(ToolText.Wrap($"  {head.PadRight(headWidth)} ", s_columns[head].Doc.Split(' '), 80, new string(' ', headWidth + 6)));
                        }
                        stdout.WriteLine();
                        stdout.WriteLine("Additionally any VM property may be used as a column, see qvm-prefs --help-properties for available values");
                        stdout.WriteLine();
                        return null;
                    default:
                        throw new UsageException($"unrecognized arguments: {parsed.Text}");
                }
            }
        }
        if (o.Format != null && o.Fields != null)
        {
            throw new UsageException("argument --fields/-O: not allowed with argument --format/-o");
        }
        bool all = o.Flags.Contains("--all");
        if (all && o.Names.Count > 0)
        {
            throw new UsageException("argument VMNAME: not allowed with argument --all");
        }
        if (o.Exclude.Count > 0 && !all)
        {
            throw new UsageException("--exclude can only be used with --all");
        }
        return o;
    }

    /// <summary>The named qubes (or all but the excluded ones) in name order, through the filters.</summary>
    private static IEnumerable<Vm> Select(Options o, Dictionary<string, Vm> qubes)
    {
        List<Vm> named = [];
        foreach (string pattern in o.Names)
        {
            List<Vm> found = [.. qubes.Values.Where(vm => Glob.Match(pattern, vm.Name))];
            named.AddRange(found.Count > 0 ? found : throw new UsageException($"no such domain: '{pattern}'"));
        }
        IEnumerable<Vm> vms = (o.Names.Count == 0 ? qubes.Values.Where(vm => !o.Exclude.Contains(vm.Name)) : named.Distinct())
            .OrderBy(static vm => vm.Name, StringComparer.Ordinal);
        string[]? Values(string option) => o.Lists.GetValueOrDefault(option);
        if (Values("--class") is string[] classes)
        {
            vms = vms.Where(vm => classes.Contains(vm.Class));
        }
        if (Values("--label") is string[] labels)
        {
            vms = vms.Where(vm => labels.Contains(vm.Property("label")));
        }
        if (Values("--tags") is string[] tags)
        {
            vms = vms.Where(vm => vm.Tags().Intersect(tags).Any());
        }
        if (Values("--exclude-tags") is string[] excludeTags)
        {
            vms = vms.Where(vm => !vm.Tags().Intersect(excludeTags).Any());
        }
        if (Values("--template-source") is string[] templates)
        {
            vms = vms.Where(vm => templates.Contains(vm.Property("template") ?? ""));
        }
        if (Values("--netvm-is") is string[] netvms)
        {
            vms = vms.Where(vm => netvms.Contains(vm.Property("netvm") ?? ""));
        }
        foreach (string feature in (ReadOnlySpan<string>)["internal", "servicevm"])
        {
            if (o.Choices.TryGetValue("--" + feature, out string? yes))
            {
                vms = vms.Where(vm => (vm.Feature(feature) is "1" or "true" or "True") == yes.StartsWith('y'));
            }
        }
        if (o.Flags.Contains("--pending-update"))
        {
            vms = vms.Where(static vm => !string.IsNullOrEmpty(vm.Feature("updates-available")));
        }
        foreach (string option in (ReadOnlySpan<string>)["--features", "--prefs"])
        {
            foreach (string pair in Values(option) ?? [])
            {
                int eq = pair.IndexOf('=', StringComparison.Ordinal);
                if (eq <= 0)
                {
                    throw new UsageException($"Invalid argument: {option} {pair}");
                }
                string key = pair[..eq], text = pair[(eq + 1)..];
                string? wanted = text.Length == 0 ? null : text is "''" or "\"\"" ? "" : text;
                vms = option == "--features"
                    ? vms.Where(vm => vm.Feature(key) == wanted)
                    : vms.Where(vm => vm.Shown(key) == (wanted ?? "None"));
            }
        }
        string[] states = [.. new[] { "running", "paused", "halted" }.Where(s => o.Flags.Contains("--" + s))];
        if (states.Length > 0)
        {
            vms = vms.Where(vm => states.Contains(vm.State.ToLowerInvariant()));
        }
        return vms;
    }

    /// <summary>A column by name: NAME, one of <see cref="s_columns"/>, else the VM property of that (lower-cased) name.</summary>
    private static (string Head, Func<Vm, string?> Value) Column(string field)
    {
        string head = field.ToUpperInvariant().Replace('_', '-');
        string property = field.ToLowerInvariant();
        return (head, head == "NAME" ? static vm => vm.Name : s_columns.TryGetValue(head, out var column) ? column.Value : vm => vm.Property(property));
    }

    /// <summary>Qubes without a netvm first (by name), then each network provider without a netvm followed by the qubes behind it, indented by depth.</summary>
    private static List<(int Level, Vm Vm)> Tree(List<Vm> vms)
    {
        List<(int Level, Vm Vm)> tree = [.. vms.Where(static vm => vm.Property("netvm") == null && !vm.ProvidesNetwork).Select(static vm => (0, vm))];
        void Connected(Vm parent, int level)
        {
            foreach (Vm child in vms.Where(vm => vm.Property("netvm") == parent.Name))
            {
                tree.Add((level, child));
                if (child.ProvidesNetwork)
                {
                    Connected(child, level + 1);
                }
            }
        }
        foreach (Vm root in vms.Where(static vm => vm.Property("netvm") == null && vm.ProvidesNetwork))
        {
            tree.Add((0, root));
            Connected(root, 1);
        }
        return tree;
    }

    /// <summary>The 8-character FLAGS cell (spec core-stack §10.3).</summary>
    private static string Flags(Vm vm)
    {
        char type = vm.Class switch { "AdminVM" => '0', "AppVM" => 'a', "TemplateVM" => 't', "StandaloneVM" => 's', "DispVM" => 'd', _ => '-' };
        string state = vm.State.ToLowerInvariant();
        char power = state switch
        {
            "unknown" => '?',
            "running" or "transient" or "paused" or "suspended" or "halting" or "dying" or "crashed" => state[0],
            _ => '-',
        };
        char Flag(string property, char letter) => vm.Property(property) == "True" ? letter : '-';
        return string.Concat(
            type is not ('0' or '-') && vm.Property("virt_mode") == "hvm" ? char.ToUpperInvariant(type) : type,
            power,
            Flag("updateable", 'U'),
            Flag("provides_network", 'N'),
            Flag("installed_by_rpm", 'R'),
            Flag("internal", 'i'),
            Flag("debug", 'D'),
            Flag("autostart", 'A'));
    }

    /// <summary>An integer cell for sorting, <c>%</c> stripped; anything else counts as 0.</summary>
    private static long Number(string text)
        => long.TryParse(text.EndsWith('%') ? text[..^1] : text, NumberStyles.AllowLeadingSign, CultureInfo.InvariantCulture, out long n) ? n : 0;

    /// <summary>The <c>key=value</c> items of a space-separated line.</summary>
    private static Dictionary<string, string> KeyValues(string line)
        => line.Split(' ').Where(static item => item.Contains('=', StringComparison.Ordinal))
            .Select(static item => item.Split('=', 2)).DistinctBy(static kv => kv[0]).ToDictionary(static kv => kv[0], static kv => kv[1], StringComparer.Ordinal);

    /// <summary>The command line, parsed.</summary>
    private sealed class Options
    {
        public string? Format { get; set; }

        public string? Fields { get; set; }

        public string Sort { get; set; } = "NAME";

        public HashSet<string> Flags { get; } = new(StringComparer.Ordinal);

        public Dictionary<string, string> Choices { get; } = new(StringComparer.Ordinal);

        public Dictionary<string, string[]> Lists { get; } = new(StringComparer.Ordinal);

        public List<string> Names { get; } = [];

        public List<string> Exclude { get; } = [];
    }

    /// <summary>A qube as admin.vm.List reports it, with its properties fetched on first use.</summary>
    private sealed class Vm(string name, Dictionary<string, string> listed, AdminClient client, Dictionary<string, Vm> qubes)
    {
        private Dictionary<string, (string Type, string Value)?>? _properties;
        private bool _onePerCall;
        private Dictionary<string, string>? _current;

        public string Name => name;

        public string? Class => listed.GetValueOrDefault("class") ?? Property("klass");

        public string State => listed.GetValueOrDefault("state") ?? Current("power_state") ?? "NA";

        public bool ProvidesNetwork => Property("provides_network") == "True";

        public Vm? Other(string other) => qubes.GetValueOrDefault(other);

        /// <summary>The property's value; null when the qube has no such property or it is none, unset or empty.</summary>
        public string? Property(string property) => Typed(property) is { Value.Length: > 0 } p ? p.Value : null;

        /// <summary>The value as upstream's <c>str(getattr(vm, key, None))</c> gives it (<c>None</c> for none, unset or missing).</summary>
        public string Shown(string property) => Typed(property) is { } p && (p.Value.Length > 0 || p.Type == "str") ? p.Value : "None";

        public string? Current(string key)
        {
            if (_current == null)
            {
                try
                {
                    _current = KeyValues(client.Call("admin.vm.CurrentState", name));
                }
                catch (QubesException)
                {
                    _current = [];
                }
            }
            return _current.GetValueOrDefault(key);
        }

        public string? Feature(string feature)
        {
            try
            {
                return client.Call("admin.vm.feature.Get", name, feature);
            }
            catch (QubesException e) when (e.TypeName == "QubesFeatureNotFoundError")
            {
                return null;
            }
        }

        public string[] Tags() => client.Call("admin.vm.tag.List", name).Split('\n', StringSplitOptions.RemoveEmptyEntries);

        /// <summary>Type and value from one GetAll call, or, if that fails, one Get per property asked for.</summary>
        private (string Type, string Value)? Typed(string property)
        {
            if (_properties == null)
            {
                try
                {
                    _properties = Prefs.GetAll(client, "admin.vm.property.", name).ToDictionary(static p => p.Key, static p => Parse(p.Value), StringComparer.Ordinal);
                }
                catch (QubesException)
                {
                    _properties = new(StringComparer.Ordinal);
                    _onePerCall = true;
                }
            }
            if (!_properties.TryGetValue(property, out (string Type, string Value)? value) && _onePerCall)
            {
                try
                {
                    value = Parse(client.Call("admin.vm.property.Get", name, property));
                }
                catch (QubesException)
                {
                    value = null;
                }
                _properties[property] = value;
            }
            return value;
        }

        private static (string Type, string Value)? Parse(string text)
        {
            (_, string type, string value) = Prefs.ParseGet(text);
            return (type, value);
        }
    }
}
