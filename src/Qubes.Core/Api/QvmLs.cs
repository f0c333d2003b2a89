using System;
using System.Collections.Generic;
using System.Globalization;
using System.IO;
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
        string[] formats = FormatNames();
        Array.Sort(formats, StringComparer.Ordinal);
        for (int i = 0; i < formats.Length - 1; i++)
        {
            formats[i] += ",";
        }
        List<string> columns = [.. s_columns.Keys, "NAME"];
        columns.Sort(StringComparer.Ordinal);
        for (int i = 0; i < columns.Count; i++)
        {
            columns[i] += ",";
        }
        columns.AddRange(["and", "any", "VM", "property"]);
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
            Epilog = "available formats (see --help-formats):\n" + ToolText.Wrap(" ", formats, 80, "  ")
                + "\n\navailable columns (see --help-columns):\n" + ToolText.Wrap(" ", [.. columns], 80, "  "),
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
        string[] fields = o.Flags.Contains("--raw-list") ? ["name"]
            : o.Fields?.Split(',', StringSplitOptions.TrimEntries) ?? Preset(o.Format ?? "simple");
        var columns = new (string Head, Func<Vm, string?> Value)[fields.Length];
        string[] heads = new string[fields.Length];
        for (int c = 0; c < fields.Length; c++)
        {
            columns[c] = Column(fields[c]);
            heads[c] = columns[c].Head;
        }
        Dictionary<string, Vm> qubes = new(StringComparer.Ordinal);
        foreach (string line in client.Call("admin.vm.List", "dom0").Split('\n', StringSplitOptions.RemoveEmptyEntries))
        {
            string name = line.Split(' ')[0];
            qubes[name] = new Vm(name, KeyValues(line), client, qubes);
        }
        List<Vm> selected = Select(o, qubes);
        bool tree = o.Flags.Contains("--tree");
        List<(int Level, Vm Vm)> entries = tree ? Tree(selected) : selected.ConvertAll(static vm => (0, vm));
        List<string[]> rows = new(entries.Count + 1);
        foreach ((int level, Vm vm) in entries)
        {
            string[] row = new string[columns.Length];
            for (int c = 0; c < columns.Length; c++)
            {
                row[c] = columns[c].Head == "NAME" && level > 0 ? new string(' ', 2 * (level - 1)) + "└─" + vm.Name
                    : columns[c].Value(vm) is { Length: > 0 } value ? value : "-";
            }
            rows.Add(row);
        }
        int index = Array.IndexOf(heads, o.Sort.ToUpperInvariant().Replace('_', '-'));
        if (!tree && index >= 0)
        {
            Comparison<string> compare = Array.IndexOf(s_numeric, heads[index]) >= 0 ? static (x, y) => Number(x).CompareTo(Number(y))
                : o.Flags.Contains("--ignore-case") ? static (x, y) => string.CompareOrdinal(x.ToUpperInvariant(), y.ToUpperInvariant())
                : string.CompareOrdinal;
            int sign = o.Flags.Contains("--reverse") ? -1 : 1;
            // stable: rows that compare equal stay in name order, reversed or not
            int[] order = new int[rows.Count];
            for (int r = 0; r < order.Length; r++)
            {
                order[r] = r;
            }
            List<string[]> unsorted = rows;
            Array.Sort(order, (x, y) => sign * compare(unsorted[x][index], unsorted[y][index]) is int d and not 0 ? d : x.CompareTo(y));
            rows = new(order.Length + 1);
            foreach (int r in order)
            {
                rows.Add(unsorted[r]);
            }
        }
        if (o.Flags.Contains("--raw-data") || o.Flags.Contains("--raw-list"))
        {
            foreach (string[] row in rows)
            {
                stdout.WriteLine(string.Join('|', row));
            }
        }
        else
        {
            rows.Insert(0, heads);
            ToolText.Table(stdout, rows);
        }
        return 0;
    }

    /// <summary>The preset formats' names, in upstream's order.</summary>
    private static string[] FormatNames()
    {
        string[] names = new string[s_formats.Length];
        for (int i = 0; i < names.Length; i++)
        {
            names[i] = s_formats[i].Name;
        }
        return names;
    }

    /// <summary>The length of the longest of <paramref name="words"/>.</summary>
    private static int Widest(string[] words)
    {
        int width = 0;
        foreach (string word in words)
        {
            width = Math.Max(width, word.Length);
        }
        return width;
    }

    /// <summary>The columns of a preset format.</summary>
    private static string[] Preset(string format)
    {
        foreach ((string name, string[] columns) in s_formats)
        {
            if (name == format)
            {
                return columns;
            }
        }
        throw new UsageException($"argument --format/-o: invalid choice: '{format}'");
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
                        o.Format = Choice(FormatNames());
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
                        string[] formats = FormatNames();
                        Array.Sort(formats, StringComparer.Ordinal);
                        int width = Widest(formats);
                        stdout.WriteLine("Available formats:");
                        foreach (string name in formats)
                        {
                            stdout.WriteLine($"  {name.PadRight(width)}  {string.Join(',', Preset(name)).ToUpperInvariant()}");
                        }
                        stdout.WriteLine();
                        return null;
                    case "--help-columns":
                        string[] heads = [.. s_columns.Keys];
                        Array.Sort(heads, StringComparer.Ordinal);
                        int headWidth = Widest(heads);
                        stdout.WriteLine("Available columns:");
                        foreach (string head in heads)
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
    private static List<Vm> Select(Options o, Dictionary<string, Vm> qubes)
    {
        List<Vm> candidates = [];
        if (o.Names.Count == 0)
        {
            foreach (Vm vm in qubes.Values)
            {
                if (!o.Exclude.Contains(vm.Name))
                {
                    candidates.Add(vm);
                }
            }
        }
        else
        {
            HashSet<Vm> seen = [];
            foreach (string pattern in o.Names)
            {
                bool found = false;
                foreach (Vm vm in qubes.Values)
                {
                    if (Glob.Match(pattern, vm.Name))
                    {
                        found = true;
                        if (seen.Add(vm))
                        {
                            candidates.Add(vm);
                        }
                    }
                }
                if (!found)
                {
                    throw new UsageException($"no such domain: '{pattern}'");
                }
            }
        }
        candidates.Sort(static (x, y) => string.CompareOrdinal(x.Name, y.Name));

        List<Func<Vm, bool>> filters = [];
        string[]? Values(string option) => o.Lists.GetValueOrDefault(option);
        if (Values("--class") is string[] classes)
        {
            filters.Add(vm => Array.IndexOf(classes, vm.Class) >= 0);
        }
        if (Values("--label") is string[] labels)
        {
            filters.Add(vm => Array.IndexOf(labels, vm.Property("label")) >= 0);
        }
        if (Values("--tags") is string[] tags)
        {
            filters.Add(vm => HasAny(vm.Tags(), tags));
        }
        if (Values("--exclude-tags") is string[] excludeTags)
        {
            filters.Add(vm => !HasAny(vm.Tags(), excludeTags));
        }
        if (Values("--template-source") is string[] templates)
        {
            filters.Add(vm => Array.IndexOf(templates, vm.Property("template") ?? "") >= 0);
        }
        if (Values("--netvm-is") is string[] netvms)
        {
            filters.Add(vm => Array.IndexOf(netvms, vm.Property("netvm") ?? "") >= 0);
        }
        foreach (string feature in (ReadOnlySpan<string>)["internal", "servicevm"])
        {
            if (o.Choices.TryGetValue("--" + feature, out string? yes))
            {
                filters.Add(vm => (vm.Feature(feature) is "1" or "true" or "True") == yes.StartsWith('y'));
            }
        }
        if (o.Flags.Contains("--pending-update"))
        {
            filters.Add(static vm => !string.IsNullOrEmpty(vm.Feature("updates-available")));
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
                filters.Add(option == "--features"
                    ? vm => vm.Feature(key) == wanted
                    : vm => vm.Shown(key) == (wanted ?? "None"));
            }
        }
        List<string> states = [];
        foreach (string state in (ReadOnlySpan<string>)["running", "paused", "halted"])
        {
            if (o.Flags.Contains("--" + state))
            {
                states.Add(state);
            }
        }
        if (states.Count > 0)
        {
            filters.Add(vm => states.Contains(vm.State.ToLowerInvariant()));
        }
        return candidates.FindAll(vm => filters.TrueForAll(filter => filter(vm)));
    }

    /// <summary>Whether the two lists share a value.</summary>
    private static bool HasAny(string[] values, string[] wanted)
    {
        foreach (string value in values)
        {
            if (Array.IndexOf(wanted, value) >= 0)
            {
                return true;
            }
        }
        return false;
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
        List<(int Level, Vm Vm)> tree = [];
        void Connected(Vm parent, int level)
        {
            foreach (Vm child in vms)
            {
                if (child.Property("netvm") == parent.Name)
                {
                    tree.Add((level, child));
                    if (child.ProvidesNetwork)
                    {
                        Connected(child, level + 1);
                    }
                }
            }
        }
        foreach (Vm vm in vms)
        {
            if (vm.Property("netvm") == null && !vm.ProvidesNetwork)
            {
                tree.Add((0, vm));
            }
        }
        foreach (Vm root in vms)
        {
            if (root.Property("netvm") == null && root.ProvidesNetwork)
            {
                tree.Add((0, root));
                Connected(root, 1);
            }
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
    {
        Dictionary<string, string> values = new(StringComparer.Ordinal);
        foreach (string item in line.Split(' '))
        {
            int eq = item.IndexOf('=', StringComparison.Ordinal);
            if (eq >= 0)
            {
                values.TryAdd(item[..eq], item[(eq + 1)..]);
            }
        }
        return values;
    }

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
        private readonly Dictionary<string, (string Type, string Value)?> _properties = new(StringComparer.Ordinal);
        private string? _all;
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

        /// <summary>Type and value from one GetAll call (read only for the properties asked for), or, if that fails, one Get per property.</summary>
        private (string Type, string Value)? Typed(string property)
        {
            if (_properties.TryGetValue(property, out (string Type, string Value)? value))
            {
                return value;
            }
            if (_all == null && !_onePerCall)
            {
                try
                {
                    _all = client.Call("admin.vm.property.GetAll", name);
                }
                catch (QubesException)
                {
                    _onePerCall = true;
                }
            }
            try
            {
                value = _all != null ? Prefs.FromGetAll(_all, property) is string text ? Parse(text) : null
                    : Parse(client.Call("admin.vm.property.Get", name, property));
            }
            catch (QubesException)
            {
                value = null;
            }
            return _properties[property] = value;
        }

        private static (string Type, string Value)? Parse(string text)
        {
            (_, string type, string value) = Prefs.ParseGet(text);
            return (type, value);
        }
    }
}
