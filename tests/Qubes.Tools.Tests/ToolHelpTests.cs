using System;
using System.Collections.Generic;
using System.Diagnostics;
using System.IO;
using System.Linq;
using System.Reflection;
using System.Text.RegularExpressions;
using System.Threading.Tasks;
using Qubes.Cli;
using Xunit;
using Qubes.Tests;

namespace Qubes.Tools.Tests;

/// <summary>
/// Every tool under src/daemons prints its help on <c>--help</c> (and its other help names) and
/// exits 0, the help lists every option its parser takes, and an unknown option is still a usage
/// error. The options come from the tool's own <c>Program.Command</c>, the definitions its parser
/// recognises options by.
/// </summary>
public sealed class ToolHelpTests
{
    private static readonly string s_root = TestRepository.Root;

    /// <summary>The native executables (<c>./qubes build</c>): a link named after each tool to the one executable of them all.</summary>
    private static string Bin => Path.Combine(s_root, "artifacts", "bin", "qubes", "aot");

    /// <summary>The tools' assemblies, as the front command's runtime build puts them.</summary>
    private static string Assemblies => Path.Combine(s_root, "artifacts", "bin", "qubes", "release");

    /// <summary>The tools: the projects under src/daemons.</summary>
    public static TheoryData<string> Tools => [.. Directory.GetDirectories(Path.Combine(s_root, "src", "daemons")).Select(static d => Path.GetFileName(d)!).Order(StringComparer.Ordinal)];

    [Theory]
    [MemberData(nameof(Tools))]
    public async Task Help_prints_usage_and_every_option(string tool)
    {
        Command command = CommandOf(tool);
        Assert.Equal(tool, command.Prog);
        string help = command.Help;
        foreach (string name in command.Options.Single(static o => o.IsHelp).Names)
        {
            (int status, string stdout, string stderr) = await RunAsync(tool, name);
            Assert.Equal((0, help, ""), (status, stdout, stderr));
        }
        Assert.StartsWith($"usage: {tool} ", help, StringComparison.Ordinal);
        // the entries of the option lists: a line indented by two spaces that starts with a dash
        string[] entries = [.. help.Split('\n').Where(static l => l.StartsWith("  -", StringComparison.Ordinal))];
        string flat = Flatten(help);
        foreach (Option option in command.Options)
        {
            Assert.False(string.IsNullOrWhiteSpace(option.Help), $"{tool} {option.Name}: no help text");
            if (option.Hidden)
            {
                Assert.DoesNotMatch(Token(option.Name), help);
                continue;
            }
            Assert.True(entries.Any(e => option.Names.All(n => Token(n).IsMatch(e))), $"{tool}: {string.Join(", ", option.Names)} not listed");
            Assert.Contains(Flatten(option.Help), flat, StringComparison.Ordinal);
        }
    }

    /// <summary>What a tool needs besides the unknown option for that to be the only error: argparse reports missing arguments first.</summary>
    private static readonly Dictionary<string, string[]> s_required = new()
    {
        ["qvm-start"] = ["--all"],
        ["qvm-shutdown"] = ["--all"],
        ["qvm-kill"] = ["--all"],
        ["qvm-remove"] = ["--all"],
        ["qvm-clone"] = ["work", "copy"],
    };

    [Theory]
    [MemberData(nameof(Tools))]
    public async Task An_unknown_option_is_still_a_usage_error(string tool)
    {
        Command command = CommandOf(tool);
        (int status, string stdout, string stderr) = await RunAsync(tool, [.. s_required.GetValueOrDefault(tool, []), "--no-such-option"]);
        Assert.Equal(command.UsageStatus, status);
        Assert.Equal("", stdout);
        if (command.Style == HelpStyle.Argparse)
        {
            Assert.Equal(2, status);
            Assert.Equal($"{command.Usage}\n{tool}: error: unrecognized arguments: --no-such-option\n", stderr);
        }
        else
        {
            Assert.Contains("--no-such-option", stderr, StringComparison.Ordinal);
        }
    }

    /// <summary>The tool's <c>Program.Command</c>, from its assembly.</summary>
    private static Command CommandOf(string tool)
    {
        Assembly assembly = Assembly.LoadFrom(Path.Combine(Assemblies, tool + ".dll"));
        PropertyInfo? property = assembly.EntryPoint?.DeclaringType?.GetProperty("Command", BindingFlags.Static | BindingFlags.NonPublic | BindingFlags.Public);
        Assert.True(property != null, $"{tool}: its Program has no Command");
        return Assert.IsType<Command>(property.GetValue(null));
    }

    private static async Task<(int Status, string Stdout, string Stderr)> RunAsync(string tool, params string[] args)
    {
        ProcessStartInfo psi = new(Path.Combine(Bin, tool), args)
        {
            RedirectStandardInput = true,
            RedirectStandardOutput = true,
            RedirectStandardError = true,
        };
        // nothing here is to reach a running system
        psi.Environment["QUBES_STATE_DIR"] = Path.Combine(Path.GetTempPath(), "qubes-tools-tests-none");
        using Process process = Process.Start(psi)!;
        process.StandardInput.Close();
        Task<string> stdout = process.StandardOutput.ReadToEndAsync();
        Task<string> stderr = process.StandardError.ReadToEndAsync();
        await process.WaitForExitAsync().WaitAsync(TimeSpan.FromSeconds(60));
        return (process.ExitCode, await stdout, await stderr);
    }

    /// <summary>An option name as a word of its own: not part of a longer name.</summary>
    private static Regex Token(string name) => new($"(?<![\\w-]){Regex.Escape(name)}(?![\\w-])", RegexOptions.CultureInvariant);

    private static string Flatten(string text) => string.Join(' ', text.Split((char[]?)null, StringSplitOptions.RemoveEmptyEntries));

}
