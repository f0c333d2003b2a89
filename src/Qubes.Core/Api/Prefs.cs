using System;
using System.Collections.Generic;
using System.IO;
using System.Linq;
using Qubes.Cli;

namespace Qubes.Core.Api;

/// <summary>
/// <c>qvm-prefs VMNAME [PROPERTY [VALUE]]</c> and <c>qubes-prefs [PROPERTY [VALUE]]</c> (spec
/// core-stack §10.2): list with the <c>D</c> / <c>-</c> / <c>U</c> flags, print one value, set, or
/// reset with <c>--default</c>.
/// </summary>
public static class Prefs
{
    private static readonly string[] s_vmValued = ["netvm", "default_dispvm", "template", "guivm", "audiovm"];

    /// <summary>The command line of qubes-prefs (<paramref name="global"/>) or qvm-prefs.</summary>
    public static Command CommandFor(bool global)
    {
        Positional[] operands = [new("[PROPERTY]", "PROPERTY", "name of the property to show or change"), new("[VALUE]", "VALUE", "new value of the property")];
        return new(global ? "qubes-prefs" : "qvm-prefs", HelpStyle.Argparse, ToolText.QubesOptions(
            new Option("list all available properties with short descriptions and exit", "--help-properties"),
            new Option("do not show properties that are set to the default value", "--hide-default"),
            new Option("ignored; for compatibility with older scripts", "--get", "-g"),
            new Option("ignored; for compatibility with older scripts", "--set", "-s"),
            new Option("reset the property to its default value", "--default", "-D")))
        {
            Description = global ? "manipulate global properties" : "manipulate VM properties",
            Positionals = global ? operands : [new("VMNAME", "VMNAME"), .. operands],
        };
    }

    /// <summary>Runs the tool; <paramref name="global"/> for qubes-prefs. Returns the exit status.</summary>
    public static int Run(bool global, IReadOnlyList<string> args, AdminClient client, TextWriter stdout, TextWriter stderr)
    {
        ArgumentNullException.ThrowIfNull(args);
        ArgumentNullException.ThrowIfNull(client);
        Command command = CommandFor(global);
        return ToolText.Run(command, stdout, stderr, () => Run(command, global, args, client, stdout));
    }

    private static int Run(Command command, bool global, IReadOnlyList<string> args, AdminClient client, TextWriter stdout)
    {
        bool reset = false, hideDefault = false, helpProperties = false;
        List<string> positional = [];
        for (int i = 0; i < args.Count; i++)
        {
            string a = args[i];
            if (!command.IsOption(a))
            {
                positional.Add(a);
                continue;
            }
            IReadOnlyList<Parsed> options = command.Read(args, ref i);
            if (options[0].Option == null && positional.Count == (global ? 1 : 2))
            {
                positional.Add(a); // a value may start with '-'
                continue;
            }
            foreach (Parsed parsed in options)
            {
                switch (parsed.Option?.Name)
                {
                    case "--default":
                        reset = true;
                        break;
                    case "--hide-default":
                        hideDefault = true;
                        break;
                    case "--help-properties":
                        helpProperties = true;
                        break;
                    case "--get" or "--set" or "--verbose" or "--quiet" or "--force-root":
                        break;
                    default:
                        throw new UsageException($"unrecognized arguments: {parsed.Text}");
                }
            }
        }
        string destination = "dom0";
        if (!global)
        {
            if (positional.Count == 0)
            {
                throw new UsageException("the following arguments are required: VMNAME");
            }
            destination = positional[0];
            positional.RemoveAt(0);
        }
        string prefix = global ? "admin.property." : "admin.vm.property.";
        if (!global && !client.QubeExists(destination))
        {
            throw new UsageException($"no such domain: '{destination}'");
        }
        string[] names = client.Call(prefix + "List", destination).Split('\n', StringSplitOptions.RemoveEmptyEntries);
        if (helpProperties)
        {
            int width = names.Max(static n => n.Length);
            foreach (string name in names.Order(StringComparer.Ordinal))
            {
                string[] words = client.Call(prefix + "Help", destination, name).Split((char[]?)null, StringSplitOptions.RemoveEmptyEntries);
                stdout.WriteLine(ToolText.Wrap($"  {name.PadRight(width)} ", words, 80, new string(' ', width + 6)));
            }
            return 0;
        }
        if (positional.Count == 0)
        {
            if (reset)
            {
                throw new UsageException("--default requires a property");
            }
            List(client, prefix, destination, names, hideDefault, stdout);
            return 0;
        }
        string property = positional[0].Replace('-', '_');
        if (!names.Contains(property))
        {
            throw new UsageException($"no such property: '{property}'");
        }
        if (reset)
        {
            if (positional.Count > 1)
            {
                throw new UsageException("--default takes no value");
            }
            client.Call(prefix + "Reset", destination, property);
            return 0;
        }
        if (positional.Count == 1)
        {
            (bool isDefault, string type, string value) = ParseGet(client.Call(prefix + "Get", destination, property));
            if (!(type == "vm" && value.Length == 0) && !(hideDefault && isDefault))
            {
                stdout.WriteLine(value);
            }
            return 0;
        }
        if (positional.Count > 2)
        {
            throw new UsageException($"unrecognized arguments: {string.Join(' ', positional.Skip(2))}");
        }
        string newValue = positional[1];
        if (s_vmValued.Contains(property) && newValue.Equals("none", StringComparison.OrdinalIgnoreCase))
        {
            newValue = string.Empty;
        }
        client.Call(prefix + "Set", destination, property, newValue);
        return 0;
    }

    private static void List(AdminClient client, string prefix, string destination, string[] names, bool hideDefault, TextWriter stdout)
    {
        Dictionary<string, string> all = GetAll(client, prefix, destination);
        int width = names.Max(static n => n.Length);
        foreach (string name in names.Order(StringComparer.Ordinal))
        {
            (bool isDefault, string type, string value) = ParseGet(all.TryGetValue(name, out string? text) ? text : client.Call(prefix + "Get", destination, name));
            if (hideDefault && isDefault)
            {
                continue;
            }
            string padded = name.PadRight(width);
            if (value.Length == 0 && type is "int" or "bool")
            {
                stdout.WriteLine($"{padded}  U");
            }
            else
            {
                stdout.WriteLine($"{padded}  {(isDefault ? "D" : "-")}  {(type == "vm" && value.Length == 0 ? "None" : value)}");
            }
        }
    }

    /// <summary>One <c>*.property.GetAll</c> call: each property's <c>Get</c> text, unescaped.</summary>
    internal static Dictionary<string, string> GetAll(AdminClient client, string prefix, string destination)
    {
        Dictionary<string, string> all = [];
        foreach (string line in client.Call(prefix + "GetAll", destination).Split('\n', StringSplitOptions.RemoveEmptyEntries))
        {
            int space = line.IndexOf(' ', StringComparison.Ordinal);
            all[line[..space]] = Unescape(line.AsSpan(space + 1));
        }
        return all;
    }

    /// <summary>One property's <c>Get</c> text, unescaped, out of a whole <c>*.property.GetAll</c> reply; null when it has no line for the property.</summary>
    internal static string? FromGetAll(string reply, string property)
    {
        ReadOnlySpan<char> rest = reply;
        while (!rest.IsEmpty)
        {
            int end = rest.IndexOf('\n');
            ReadOnlySpan<char> line = end < 0 ? rest : rest[..end];
            if (line.Length > property.Length && line[property.Length] == ' ' && line.StartsWith(property, StringComparison.Ordinal))
            {
                return Unescape(line[(property.Length + 1)..]);
            }
            rest = end < 0 ? default : rest[(end + 1)..];
        }
        return null;
    }

    /// <summary><c>default=B type=T VALUE</c>.</summary>
    internal static (bool IsDefault, string Type, string Value) ParseGet(string text)
    {
        string[] parts = text.Split(' ', 3);
        if (parts.Length < 3 || !parts[0].StartsWith("default=", StringComparison.Ordinal) || !parts[1].StartsWith("type=", StringComparison.Ordinal))
        {
            throw new QubesException("QubesDaemonCommunicationError", $"malformed property reply: '{text}'");
        }
        return (parts[0] == "default=True", parts[1][5..], parts[2]);
    }

    /// <summary>Undoes the GetAll escaping (<c>\\</c> for a backslash, <c>\n</c> for a newline) in one pass.</summary>
    private static string Unescape(ReadOnlySpan<char> text)
    {
        if (!text.Contains('\\'))
        {
            return new string(text);
        }
        System.Text.StringBuilder result = new(text.Length);
        for (int i = 0; i < text.Length; i++)
        {
            if (text[i] == '\\' && i + 1 < text.Length)
            {
                result.Append(text[++i] == 'n' ? '\n' : text[i]);
            }
            else
            {
                result.Append(text[i]);
            }
        }
        return result.ToString();
    }
}
