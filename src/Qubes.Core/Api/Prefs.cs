using System;
using System.Collections.Generic;
using System.IO;
using System.Linq;

namespace Qubes.Core.Api;

/// <summary>
/// <c>qvm-prefs VMNAME [PROPERTY [VALUE]]</c> and <c>qubes-prefs [PROPERTY [VALUE]]</c> (spec
/// core-stack §10.2): list with the <c>D</c> / <c>-</c> / <c>U</c> flags, print one value, set, or
/// reset with <c>--default</c>.
/// </summary>
public static class Prefs
{
    private static readonly string[] s_vmValued = ["netvm", "default_dispvm", "template", "guivm", "audiovm"];

    /// <summary>Runs the tool; <paramref name="global"/> for qubes-prefs. Returns the exit status.</summary>
    public static int Run(bool global, IReadOnlyList<string> args, AdminClient client, TextWriter stdout, TextWriter stderr)
    {
        ArgumentNullException.ThrowIfNull(args);
        ArgumentNullException.ThrowIfNull(client);
        string prog = global ? "qubes-prefs" : "qvm-prefs";
        string usage = global
            ? "usage: qubes-prefs [--verbose] [--quiet] [--help] [--help-properties] [--hide-default] [--get] [--set] [--default] [PROPERTY [VALUE]]"
            : "usage: qvm-prefs [--verbose] [--quiet] [--help] [--help-properties] [--hide-default] [--get] [--set] [--default] VMNAME [PROPERTY [VALUE]]";
        int UsageError(string message)
        {
            stderr.WriteLine(usage);
            stderr.WriteLine($"{prog}: error: {message}");
            return 2;
        }
        bool reset = false, hideDefault = false, helpProperties = false;
        List<string> positional = [];
        foreach (string a in args)
        {
            switch (a)
            {
                case "-D" or "--default":
                    reset = true;
                    break;
                case "--hide-default":
                    hideDefault = true;
                    break;
                case "--help-properties":
                    helpProperties = true;
                    break;
                case "-g" or "--get" or "-s" or "--set" or "-v" or "--verbose" or "-q" or "--quiet":
                    break;
                case "-h" or "--help":
                    stdout.WriteLine(usage);
                    return 0;
                default:
                    if (a.StartsWith('-') && a.Length > 1 && positional.Count == (global ? 1 : 2))
                    {
                        positional.Add(a); // a value may start with '-'
                    }
                    else if (a.StartsWith('-') && a.Length > 1)
                    {
                        return UsageError($"unrecognized arguments: {a}");
                    }
                    else
                    {
                        positional.Add(a);
                    }
                    break;
            }
        }
        string destination = "dom0";
        if (!global)
        {
            if (positional.Count == 0)
            {
                return UsageError("the following arguments are required: VMNAME");
            }
            destination = positional[0];
            positional.RemoveAt(0);
        }
        string prefix = global ? "admin.property." : "admin.vm.property.";
        try
        {
            if (!global && !client.QubeExists(destination))
            {
                return UsageError($"no such domain: '{destination}'");
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
                    return UsageError("--default requires a property");
                }
                List(client, prefix, destination, names, hideDefault, stdout);
                return 0;
            }
            string property = positional[0].Replace('-', '_');
            if (!names.Contains(property))
            {
                return UsageError($"no such property: '{property}'");
            }
            if (reset)
            {
                if (positional.Count > 1)
                {
                    return UsageError("--default takes no value");
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
                return UsageError($"unrecognized arguments: {string.Join(' ', positional.Skip(2))}");
            }
            string newValue = positional[1];
            if (s_vmValued.Contains(property) && newValue.Equals("none", StringComparison.OrdinalIgnoreCase))
            {
                newValue = string.Empty;
            }
            client.Call(prefix + "Set", destination, property, newValue);
            return 0;
        }
        catch (QubesException e)
        {
            stderr.WriteLine($"{prog}: error: {e.Message}");
            return 1;
        }
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
            all[line[..space]] = Unescape(line[(space + 1)..]);
        }
        return all;
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
    private static string Unescape(string text)
    {
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
