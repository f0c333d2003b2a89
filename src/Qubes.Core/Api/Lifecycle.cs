using System;
using System.Collections.Generic;
using System.Globalization;
using System.IO;
using System.Linq;
using System.Threading;
using Qubes.Cli;

namespace Qubes.Core.Api;

/// <summary>
/// <c>qvm-start</c>, <c>qvm-shutdown</c>, <c>qvm-kill</c>, <c>qvm-remove</c> and <c>qvm-clone</c> with the
/// command lines, messages and exit codes of upstream's R4.2 tools (spec core-stack §9, §10.1).
/// Usage errors print the usage line and <c>PROG: error: MESSAGE</c> and exit 2; an error from qubesd
/// that the tool does not handle itself prints <c>PROG: error: MESSAGE</c> and exits 1. Log lines go to
/// stderr as <c>LOGGER: MESSAGE</c> (the logger is a qube's name or <c>app</c>); with <c>--quiet</c> only
/// errors are logged, without the logger name.
/// </summary>
public static class Lifecycle
{
    /// <summary>How often <c>qvm-shutdown --wait</c> asks for the power state.</summary>
    private static readonly TimeSpan s_pollInterval = TimeSpan.FromSeconds(0.1);

    /// <summary>Upstream's <c>--timeout</c> default for <c>qvm-shutdown --wait</c>, in seconds.</summary>
    private const double DefaultShutdownTimeout = 60;

    /// <summary>Runs the tool called <paramref name="prog"/> against qubesd through <paramref name="client"/>.</summary>
    public static int Run(string prog, IReadOnlyList<string> args, AdminClient client, TextReader stdin, TextWriter stdout, TextWriter stderr)
        => Run(prog, args, client, stdin, stdout, stderr, TimeProvider.System);

    /// <summary>As <see cref="Run(string, IReadOnlyList{string}, AdminClient, TextReader, TextWriter, TextWriter)"/>, with the clock <c>qvm-shutdown --wait</c> waits on.</summary>
    public static int Run(string prog, IReadOnlyList<string> args, AdminClient client, TextReader stdin, TextWriter stdout, TextWriter stderr, TimeProvider time)
    {
        ArgumentNullException.ThrowIfNull(args);
        ArgumentNullException.ThrowIfNull(client);
        ArgumentNullException.ThrowIfNull(stdin);
        ArgumentNullException.ThrowIfNull(stdout);
        ArgumentNullException.ThrowIfNull(stderr);
        ArgumentNullException.ThrowIfNull(time);
        Command command = CommandFor(prog);
        Tool tool = new(command, client, stdin, stdout, stderr, time);
        return ToolText.Run(command, stdout, stderr, () => prog switch
        {
            "qvm-start" => tool.Start(args),
            "qvm-shutdown" => tool.Shutdown(args),
            "qvm-kill" => tool.Kill(args),
            "qvm-remove" => tool.Remove(args),
            _ => tool.Clone(args),
        });
    }

    /// <summary>The command line of the tool called <paramref name="prog"/>.</summary>
    public static Command CommandFor(string prog)
    {
        Positional[] vmNames = [new("[VMNAME ...]", "VMNAME")];
        Option[] all =
        [
            new("perform the action on all qubes", "--all"),
            new("exclude the qube from --all", "--exclude") { Metavar = "EXCLUDE" },
        ];
        return prog switch
        {
            "qvm-start" => new(prog, HelpStyle.Argparse, ToolText.QubesOptions([.. all,
                new Option("do not fail if the qube is already running", "--skip-if-running")]))
            {
                Description = "start a domain",
                Positionals = vmNames,
            },
            "qvm-shutdown" => new(prog, HelpStyle.Argparse, ToolText.QubesOptions([.. all,
                new Option("wait for the VMs to shut down", "--wait"),
                new Option($"with --wait, how long to wait before the qubes still running are killed, in seconds (default: {DefaultShutdownTimeout})", "--timeout") { Metavar = "TIMEOUT" },
                new Option("shut down even if other qubes depend on this one (e.g. as NetVM or AudioVM); does not affect how the qube itself is shut down; use with caution", "--force"),
                new Option("don't really shut down or kill the domains; useful with --wait", "--dry-run")]))
            {
                Description = "shut down a qube",
                Positionals = vmNames,
            },
            "qvm-kill" => new(prog, HelpStyle.Argparse, ToolText.QubesOptions(all))
            {
                Description = "immediately terminate a qube without a graceful shutdown sequence",
                Positionals = vmNames,
            },
            "qvm-remove" => new(prog, HelpStyle.Argparse, ToolText.QubesOptions([.. all,
                new Option("do not prompt for confirmation", "--force", "-f")]))
            {
                Description = "remove domains from the system",
                Positionals = vmNames,
            },
            "qvm-clone" => new(prog, HelpStyle.Argparse, ToolText.QubesOptions(
                new Option("specify the class of the new domain (default: same as source)", "--class", "-C") { Metavar = "CLS" },
                new Option("log errors encountered while setting metadata but continue the clone operation", "--ignore-errors"),
                new Option("pool to use for the new domain", "-P") { Metavar = "POOL", Group = "pool" },
                new Option("specify the pool to use for the specific volume", "-p", "--pool") { Metavar = "VOLUME=POOL", Group = "pool" }))
            {
                Description = "clone a domain",
                Positionals = [new("VMNAME", "VMNAME"), new("NEWVM", "NEWVM", "name of the domain to create")],
            },
            _ => throw new ArgumentException($"unknown tool {prog}", nameof(prog)),
        };
    }

    /// <summary>A qube as <c>admin.vm.List</c> names it.</summary>
    private sealed record Domain(string Name, string Class);

    /// <summary>A parsed command line: option values in order, runs of operands, and what argparse would not recognise.</summary>
    private sealed class Arguments
    {
        public Dictionary<string, List<string>> Values { get; } = new(StringComparer.Ordinal);
        public Dictionary<string, int> FirstSeen { get; } = new(StringComparer.Ordinal);
        public List<(int Position, List<string> Operands)> Runs { get; } = [];
        public List<(int Position, string Text)> Unknown { get; } = [];

        public int Count(string key) => Values.TryGetValue(key, out List<string>? v) ? v.Count : 0;

        public bool Has(string key) => Count(key) > 0;

        public string? Last(string key) => Values.TryGetValue(key, out List<string>? v) ? v[^1] : null;

        public IReadOnlyList<string> All(string key) => Values.TryGetValue(key, out List<string>? v) ? v : [];

        public void Add(string key, string value, int position)
        {
            if (!Values.TryGetValue(key, out List<string>? list))
            {
                Values[key] = list = [];
                FirstSeen[key] = position;
            }
            list.Add(value);
        }
    }

    /// <summary>Global properties that can name a qube, in the order upstream's <c>vm_dependencies</c> checks them.</summary>
    private static readonly string[] s_globalReferences = ["default_dispvm", "default_netvm", "default_guivm", "default_audiovm", "default_template", "clockvm", "updatevm", "management_dispvm"];

    /// <summary>Qube properties that can name another qube, in the order upstream's <c>vm_dependencies</c> checks them.</summary>
    private static readonly string[] s_qubeReferences = ["template", "netvm", "guivm", "audiovm", "default_dispvm", "management_dispvm"];

    /// <summary>Properties <c>qvm-clone</c> does not copy: set by the creation call, or not settable.</summary>
    private static readonly HashSet<string> s_notCloned = new(["name", "qid", "uuid", "template", "label", "installed_by_rpm", "xid", "klass"], StringComparer.Ordinal);

    private sealed class Tool(Command command, AdminClient client, TextReader stdin, TextWriter stdout, TextWriter stderr, TimeProvider time)
    {
        private int _verbosity = 1;

        public int Start(IReadOnlyList<string> args)
        {
            Arguments a = Parse(args);
            List<Domain> domains = Domains(a);
            int status = 0;
            foreach (Domain domain in domains)
            {
                if (PowerState(domain.Name) != "Halted")
                {
                    if (a.Has("--skip-if-running"))
                    {
                        continue;
                    }
                    stderr.WriteLine($"domain {domain.Name} is already running");
                    return 1;
                }
                try
                {
                    client.Call("admin.vm.Start", domain.Name);
                }
                catch (QubesException e)
                {
                    stderr.WriteLine(e.Message);
                    status = 1;
                }
            }
            return status;
        }

        public int Shutdown(IReadOnlyList<string> args)
        {
            Arguments a = Parse(args);
            double timeout = DefaultShutdownTimeout;
            if (a.Last("--timeout") is string text && !double.TryParse(text.Trim(), NumberStyles.Float, CultureInfo.InvariantCulture, out timeout))
            {
                throw new UsageException($"argument --timeout: invalid float value: '{text}'");
            }
            List<Domain> domains = Domains(a);
            bool force = a.Has("--force") || (a.Has("--all") && !a.Has("--exclude"));
            bool wait = a.Has("--wait"), dryRun = a.Has("--dry-run");
            List<Domain> remaining = [.. domains.DistinctBy(static d => d.Name).OrderBy(static d => d.Name, StringComparer.Ordinal)];
            for (int round = 0; round < domains.Count && remaining.Count > 0; round++)
            {
                List<Domain> failed = [];
                if (!dryRun)
                {
                    foreach (Domain domain in remaining)
                    {
                        try
                        {
                            client.Call("admin.vm.Shutdown", domain.Name, force ? "force" : string.Empty);
                        }
                        catch (QubesException e) when (IsNotStarted(e))
                        {
                        }
                        catch (QubesException e)
                        {
                            if (!wait)
                            {
                                Log(domain.Name, $"Shutdown error: {e.Message}", error: true);
                            }
                            failed.Add(domain);
                        }
                    }
                }
                if (!wait)
                {
                    if (failed.Count > 0)
                    {
                        stderr.WriteLine($"{command.Prog}: error: Failed to shut down: {string.Join(", ", failed.Select(static d => d.Name))}");
                        return failed.Count;
                    }
                    return 0;
                }
                List<Domain> awaiting = [.. remaining.Except(failed)];
                remaining = failed;
                if (awaiting.Count == 0)
                {
                    break;
                }
                if (!WaitForHalt(awaiting, timeout) && !dryRun)
                {
                    List<Domain> running = NotHalted(awaiting);
                    if (running.Count > 0)
                    {
                        Log("app", $"Killing remaining qubes: {string.Join(", ", running.Select(static d => d.Name))}", error: false);
                    }
                    foreach (Domain domain in running)
                    {
                        try
                        {
                            client.Call("admin.vm.Kill", domain.Name);
                        }
                        catch (QubesException e) when (IsNotStarted(e))
                        {
                        }
                    }
                }
            }
            List<Domain> notHalted = NotHalted(domains);
            if (notHalted.Count > 0)
            {
                stderr.WriteLine($"{command.Prog}: error: Failed to shut down: {string.Join(", ", notHalted.Select(static d => d.Name))}");
                return notHalted.Count;
            }
            return 0;
        }

        public int Kill(IReadOnlyList<string> args)
        {
            Arguments a = Parse(args);
            int status = 0;
            foreach (Domain domain in Domains(a))
            {
                try
                {
                    client.Call("admin.vm.Kill", domain.Name);
                }
                catch (QubesException e) when (IsNotStarted(e))
                {
                }
                catch (QubesException e)
                {
                    stderr.WriteLine($"Failed to kill '{domain.Name}': {e.Message}");
                    status = 1;
                }
            }
            return status;
        }

        public int Remove(IReadOnlyList<string> args)
        {
            Arguments a = Parse(args);
            List<Domain> domains = Domains(a);
            bool noConfirm = a.Has("--force");
            if (domains.Any(static d => d.Name == "dom0"))
            {
                stderr.WriteLine("Domain 'dom0' cannot be removed.");
                return 1;
            }
            if (a.Has("--all") && !(noConfirm || a.Has("--exclude")))
            {
                stdout.WriteLine("WARNING!!! Removing all domains may leave your system in an unrecoverable state!");
                stdout.Write("Are you certain? [N/IKNOWWHATIAMDOING]");
                stdout.Flush();
                if (stdin.ReadLine() != "IKNOWWHATIAMDOING")
                {
                    stdout.WriteLine("Remove cancelled.");
                    return 1;
                }
            }
            string answer = string.Empty;
            if (!noConfirm)
            {
                stdout.WriteLine("This will completely remove the selected VM(s)...");
                foreach (Domain domain in domains)
                {
                    stdout.WriteLine($"  {domain.Name}");
                }
                stdout.Write("Are you sure? [y/N] ");
                stdout.Flush();
                answer = (stdin.ReadLine() ?? string.Empty).ToUpperInvariant();
            }
            if (!noConfirm && answer != "Y")
            {
                stdout.WriteLine("Remove cancelled.");
                return 1;
            }
            foreach (Domain domain in domains)
            {
                try
                {
                    client.Call("admin.vm.Remove", domain.Name);
                }
                catch (QubesException e) when (e.TypeName == "QubesVMInUseError")
                {
                    List<string> uses = Dependencies(domain.Name);
                    if (uses.Count > 0)
                    {
                        stdout.WriteLine($"VM {domain.Name} cannot be removed. It is in use as:");
                        foreach (string use in uses)
                        {
                            stdout.WriteLine(use);
                        }
                    }
                    throw;
                }
            }
            return 0;
        }

        public int Clone(IReadOnlyList<string> args)
        {
            Arguments a = Parse(args);
            Option one = command.Find("-P")!, perVolume = command.Find("-p")!;
            if (a.Has("-P") && a.Has("-p"))
            {
                bool poolFirst = a.FirstSeen["-P"] < a.FirstSeen["-p"];
                throw new UsageException(poolFirst ? $"argument {perVolume.Display}: not allowed with argument {one.Display}" : $"argument {one.Display}: not allowed with argument {perVolume.Display}");
            }
            List<(int Position, string Text)> operands = [.. a.Runs.SelectMany(static r => r.Operands.Select((o, i) => (r.Position + i, o)))];
            if (operands.Count < 2)
            {
                throw new UsageException($"the following arguments are required: {(operands.Count == 0 ? "VMNAME, NEWVM" : "NEWVM")}");
            }
            Unrecognized(a.Unknown.Concat(operands.Skip(2)));
            Domain source = Lookup(List(), operands[0].Text);
            string name = operands[1].Text;
            string? pool = a.Last("-P") is { Length: > 0 } p ? p : null;
            SortedDictionary<string, string> pools = new(StringComparer.Ordinal);
            foreach (string assignment in a.All("-p"))
            {
                string[] parts = assignment.Split('=');
                if (parts.Length != 2)
                {
                    throw new UsageException("Pool argument must be of form: -p volume_name=pool_name");
                }
                pools[parts[0]] = parts[1];
            }
            bool ignoreErrors = a.Has("--ignore-errors");

            Dictionary<string, string> properties = Prefs.GetAll(client, "admin.vm.property.", source.Name);
            string? template = properties.TryGetValue("template", out string? t) && Prefs.ParseGet(t).Value is { Length: > 0 } v ? v : null;
            string label = Prefs.ParseGet(properties["label"]).Value;
            string method = "admin.vm.Create.";
            string payload = $"name={name} label={label}";
            if (pool != null)
            {
                payload += $" pool={pool}";
                method = "admin.vm.CreateInPool.";
            }
            if (pools.Count > 0)
            {
                payload += string.Concat(pools.Select(static kv => $" pool:{kv.Key}={kv.Value}"));
                method = "admin.vm.CreateInPool.";
            }
            client.Call(method + (a.Last("--class") ?? source.Class), "dom0", template ?? string.Empty, payload);

            try
            {
                CopyMetadata(source.Name, name, properties, ignoreErrors);
            }
            catch (QubesException) when (!ignoreErrors)
            {
                client.Call("admin.vm.Remove", name);
                throw;
            }
            try
            {
                foreach (string volume in client.Call("admin.vm.volume.List", name).Split('\n', StringSplitOptions.RemoveEmptyEntries).Order(StringComparer.Ordinal))
                {
                    if (!VolumeInfo(name, volume).TryGetValue("save_on_stop", out string? persistent) || persistent != "True")
                    {
                        continue;
                    }
                    Log(name, $"Cloning {volume} volume", error: false);
                    string token = client.Call("admin.vm.volume.CloneFrom", source.Name, volume);
                    client.Call("admin.vm.volume.CloneTo", name, volume, token);
                }
            }
            catch (QubesException)
            {
                client.Call("admin.vm.Remove", name);
                throw;
            }
            return 0;
        }

        /// <summary>The explicitly set properties (those qubesd creates itself aside), the tags but <c>created-by-*</c>, and the features.</summary>
        private void CopyMetadata(string source, string name, Dictionary<string, string> properties, bool ignoreErrors)
        {
            foreach ((string property, string text) in properties)
            {
                (bool isDefault, _, string value) = Prefs.ParseGet(text);
                if (s_notCloned.Contains(property) || isDefault)
                {
                    continue;
                }
                try
                {
                    client.Call("admin.vm.property.Set", name, property, value);
                }
                catch (QubesException e) when (e.TypeName == "QubesNoSuchPropertyError")
                {
                }
                catch (QubesException e)
                {
                    Log(name, $"Failed to set {property} property: {e.Message}", error: true);
                    if (!ignoreErrors)
                    {
                        throw;
                    }
                }
            }
            foreach (string tag in client.Call("admin.vm.tag.List", source).Split('\n', StringSplitOptions.RemoveEmptyEntries))
            {
                if (tag.StartsWith("created-by-", StringComparison.Ordinal))
                {
                    continue;
                }
                try
                {
                    client.Call("admin.vm.tag.Set", name, tag);
                }
                catch (QubesException e)
                {
                    Log(name, $"Failed to add {tag} tag: {e.Message}", error: true);
                    if (!ignoreErrors)
                    {
                        throw;
                    }
                }
            }
            foreach (string feature in client.Call("admin.vm.feature.List", source).Split('\n', StringSplitOptions.RemoveEmptyEntries))
            {
                try
                {
                    client.Call("admin.vm.feature.Set", name, feature, client.Call("admin.vm.feature.Get", source, feature));
                }
                catch (QubesException e)
                {
                    Log(name, $"Failed to set {feature} feature: {e.Message}", error: true);
                    if (!ignoreErrors)
                    {
                        throw;
                    }
                }
            }
        }

        /// <summary><c>admin.vm.volume.Info</c>: one <c>key=value</c> per line.</summary>
        private Dictionary<string, string> VolumeInfo(string qube, string volume)
        {
            Dictionary<string, string> info = new(StringComparer.Ordinal);
            foreach (string line in client.Call("admin.vm.volume.Info", qube, volume).Split('\n', StringSplitOptions.RemoveEmptyEntries))
            {
                int eq = line.IndexOf('=', StringComparison.Ordinal);
                if (eq > 0)
                {
                    info[line[..eq]] = line[(eq + 1)..];
                }
            }
            return info;
        }

        /// <summary>Where <paramref name="name"/> is used, as upstream's <c>vm_dependencies</c> finds it: global properties, then explicitly set properties of the other qubes.</summary>
        private List<string> Dependencies(string name)
        {
            List<string> uses = [];
            Dictionary<string, string> global = Prefs.GetAll(client, "admin.property.", "dom0");
            foreach (string property in s_globalReferences)
            {
                if (global.TryGetValue(property, out string? text) && Prefs.ParseGet(text).Value == name)
                {
                    uses.Add($" - global property {property}");
                }
            }
            foreach (Domain holder in List())
            {
                if (holder.Name == name)
                {
                    continue;
                }
                Dictionary<string, string> properties = Prefs.GetAll(client, "admin.vm.property.", holder.Name);
                foreach (string property in s_qubeReferences)
                {
                    if (properties.TryGetValue(property, out string? text) && Prefs.ParseGet(text) is (false, _, string value) && value == name)
                    {
                        uses.Add($" - {property} for {holder.Name}");
                    }
                }
            }
            return uses;
        }

        /// <summary>Polls the power states until every qube is halted (true) or <paramref name="timeout"/> seconds have passed (false).</summary>
        private bool WaitForHalt(List<Domain> domains, double timeout)
        {
            long start = time.GetTimestamp();
            while (true)
            {
                if (NotHalted(domains).Count == 0)
                {
                    return true;
                }
                if (time.GetElapsedTime(start).TotalSeconds >= timeout)
                {
                    return false;
                }
                Sleep(s_pollInterval);
            }
        }

        private void Sleep(TimeSpan span)
        {
            using ManualResetEventSlim done = new();
            using (time.CreateTimer(static state => ((ManualResetEventSlim)state!).Set(), done, span, Timeout.InfiniteTimeSpan))
            {
                done.Wait();
            }
        }

        /// <summary>The qubes not shut down: neither halted nor a disposable already gone.</summary>
        private List<Domain> NotHalted(IEnumerable<Domain> domains)
            => [.. domains.Where(d => PowerState(d.Name) is string state && !(state == "Halted" || (d.Class == "DispVM" && state == "NA")))];

        /// <summary><c>power_state</c> of <c>admin.vm.CurrentState</c>; <c>NA</c> for a qube that no longer exists.</summary>
        private string PowerState(string qube)
        {
            string reply;
            try
            {
                reply = client.Call("admin.vm.CurrentState", qube);
            }
            catch (QubesException e) when (e.TypeName == "QubesVMNotFoundError")
            {
                return "NA";
            }
            foreach (string field in reply.Split(' ', StringSplitOptions.RemoveEmptyEntries))
            {
                if (field.StartsWith("power_state=", StringComparison.Ordinal))
                {
                    return field["power_state=".Length..];
                }
            }
            return "NA";
        }

        private static bool IsNotStarted(QubesException e) => e.TypeName is "QubesVMNotStartedError" or "QubesVMNotRunningError";

        private void Log(string logger, string message, bool error)
        {
            if (_verbosity >= 1)
            {
                stderr.WriteLine($"{logger}: {message}");
            }
            else if (error)
            {
                stderr.WriteLine(message);
            }
        }

        /// <summary>The qubes named by <c>VMNAME...</c>, or by <c>--all</c> (every qube but dom0) less <c>--exclude</c>.</summary>
        private List<Domain> Domains(Arguments a)
        {
            bool all = a.Has("--all");
            (int position, List<string> names) = a.Runs.Count > 0 ? a.Runs[0] : (-1, []);
            if (all && names.Count > 0)
            {
                throw new UsageException(a.FirstSeen["--all"] < position
                    ? "argument VMNAME: not allowed with argument --all"
                    : "argument --all: not allowed with argument VMNAME");
            }
            if (!all && names.Count == 0)
            {
                throw new UsageException("one of the arguments --all VMNAME is required");
            }
            Unrecognized(a.Unknown.Concat(a.Runs.Skip(1).SelectMany(static r => r.Operands.Select((o, i) => (r.Position + i, o)))));
            if (!all && a.Has("--exclude"))
            {
                throw new UsageException("--exclude can only be used with --all");
            }
            List<Domain> domains = List();
            if (all)
            {
                IReadOnlyList<string> excluded = a.All("--exclude");
                return [.. domains.Where(d => d.Class != "AdminVM" && !excluded.Contains(d.Name))];
            }
            return [.. names.Select(n => Lookup(domains, n))];
        }

        private static Domain Lookup(List<Domain> domains, string name)
            => domains.Find(d => d.Name == name) ?? throw new UsageException($"no such domain: '{name}'");

        /// <summary>Every qube, in <c>admin.vm.List</c>'s order.</summary>
        private List<Domain> List()
        {
            List<Domain> domains = [];
            foreach (string line in client.Call("admin.vm.List", "dom0").Split('\n', StringSplitOptions.RemoveEmptyEntries))
            {
                string[] fields = line.Split(' ');
                string klass = fields.Skip(1).FirstOrDefault(static f => f.StartsWith("class=", StringComparison.Ordinal))?["class=".Length..] ?? string.Empty;
                domains.Add(new Domain(fields[0], klass));
            }
            return domains;
        }

        private static void Unrecognized(IEnumerable<(int Position, string Text)> extras)
        {
            List<string> ordered = [.. extras.OrderBy(static e => e.Position).Select(static e => e.Text)];
            if (ordered.Count > 0)
            {
                throw new UsageException($"unrecognized arguments: {string.Join(' ', ordered)}");
            }
        }

        /// <summary>
        /// Splits the command line as argparse does (<see cref="Command.Read"/>): operands come in runs
        /// between options, <c>--</c> ends the options. Options the command does not have are kept
        /// for the "unrecognized arguments" error.
        /// </summary>
        private Arguments Parse(IReadOnlyList<string> args)
        {
            Arguments result = new();
            List<string>? run = null;
            for (int i = 0; i < args.Count; i++)
            {
                string arg = args[i];
                if (arg == "--")
                {
                    if (run == null)
                    {
                        run = [];
                        result.Runs.Add((i + 1, run));
                    }
                    run.AddRange(args.Skip(i + 1));
                    break;
                }
                if (!command.IsOption(arg))
                {
                    if (run == null)
                    {
                        run = [];
                        result.Runs.Add((i, run));
                    }
                    run.Add(arg);
                    continue;
                }
                run = null;
                int position = i;
                foreach (Parsed parsed in command.Read(args, ref i))
                {
                    if (parsed.Option == null)
                    {
                        result.Unknown.Add((position, parsed.Text));
                    }
                    else
                    {
                        result.Add(parsed.Option.Name, parsed.Value ?? string.Empty, position);
                    }
                }
            }
            _verbosity = 1 + result.Count("--verbose") - result.Count("--quiet");
            return result;
        }
    }
}
