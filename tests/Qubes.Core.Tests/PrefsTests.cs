using System;
using System.IO;
using System.Linq;
using Qubes.Core.Api;
using Xunit;

namespace Qubes.Core.Tests;

/// <summary>qvm-prefs and qubes-prefs output and behaviour (spec core-stack §10.2).</summary>
public sealed class PrefsTests
{
    private readonly QubesApp _app = ModelTests.System();

    private (int Status, string Stdout, string Stderr) Run(bool global, params string[] args)
    {
        StringWriter stdout = new(), stderr = new();
        int status = Prefs.Run(global, args, new AdminClient(new InProcessTransport(new AdminApi(_app))), stdout, stderr);
        return (status, stdout.ToString(), stderr.ToString());
    }

    [Fact]
    public void Listing_shows_flags_and_values_aligned_to_the_longest_name()
    {
        _app.Get("work").Properties.Set("netvm", "sys-net");
        (int status, string stdout, _) = Run(false, "work");
        Assert.Equal(0, status);
        string[] lines = stdout.Split('\n', StringSplitOptions.RemoveEmptyEntries);
        Assert.Equal(48, lines.Length);
        Assert.Contains("autostart             D  False", lines);
        Assert.Contains("backup_timestamp      U", lines);
        Assert.Contains("label                 -  blue", lines);
        Assert.Contains("netvm                 -  sys-net", lines);
        Assert.Contains("default_dispvm        D  None", lines);
        Assert.Contains("template              -  debian-12", lines);
        Assert.Contains("template_for_dispvms  D  False", lines);
        Assert.Contains("xid                   D  -1", lines);
        Assert.Contains("kernelopts            D  ", lines);
        Assert.Equal(lines.OrderBy(static l => l.Split(' ')[0], StringComparer.Ordinal), lines);
    }

    [Fact]
    public void Hide_default_leaves_only_explicit_values()
    {
        (_, string stdout, _) = Run(false, "--hide-default", "work");
        Assert.Equal(["label                 -  blue", "name                  -  work", "qid                   -  3", "template              -  debian-12"],
            stdout.Split('\n', StringSplitOptions.RemoveEmptyEntries).Where(l => !l.StartsWith("uuid", StringComparison.Ordinal)));
    }

    [Fact]
    public void One_property_prints_its_value_and_none_prints_nothing()
    {
        Assert.Equal((0, "400\n", ""), Run(false, "work", "memory"));
        Assert.Equal((0, "", ""), Run(false, "work", "netvm"));
        Assert.Equal((0, "", ""), Run(false, "--hide-default", "work", "memory"));
        Assert.Equal((0, "blue\n", ""), Run(false, "work", "label"));
    }

    [Fact]
    public void Set_reset_and_none()
    {
        Assert.Equal(0, Run(false, "work", "memory", "800").Status);
        Assert.Equal("800\n", Run(false, "work", "memory").Stdout);
        Assert.Equal(0, Run(false, "--default", "work", "memory").Status);
        Assert.Equal("400\n", Run(false, "work", "memory").Stdout);
        Assert.Equal(0, Run(false, "work", "netvm", "sys-net").Status);
        Assert.Equal(0, Run(false, "work", "netvm", "None").Status);
        Assert.Equal("", _app.Get("work").Properties.Get("netvm"));
        Assert.False(_app.Get("work").Properties.IsDefault("netvm"));
        Assert.Equal(0, Run(false, "--set", "work", "default-user", "alice").Status);
        Assert.Equal("alice", _app.Get("work").Properties.Get("default_user"));
    }

    [Fact]
    public void Errors_say_prog_error_and_usage_errors_exit_2()
    {
        Assert.Equal((1, "", "qvm-prefs: error: The debian-12 qube does not provide network\n"), Run(false, "work", "netvm", "debian-12"));
        (int status, _, string stderr) = Run(false, "work", "colour");
        Assert.Equal(2, status);
        Assert.EndsWith("qvm-prefs: error: no such property: 'colour'\n", stderr, StringComparison.Ordinal);
        (status, _, stderr) = Run(false, "ghost");
        Assert.Equal(2, status);
        Assert.EndsWith("qvm-prefs: error: no such domain: 'ghost'\n", stderr, StringComparison.Ordinal);
        Assert.Equal(2, Run(false).Status);
    }

    [Fact]
    public void Qubes_prefs_lists_the_global_properties()
    {
        _app.Properties.Set("default_template", "debian-12");
        (int status, string stdout, _) = Run(true);
        Assert.Equal(0, status);
        string[] lines = stdout.Split('\n', StringSplitOptions.RemoveEmptyEntries);
        Assert.Equal(20, lines.Length);
        Assert.Contains("check_updates_vm          D  True", lines);
        Assert.Contains("default_template          -  debian-12", lines);
        Assert.Contains("default_netvm             D  None", lines);
        Assert.Contains("default_qrexec_timeout    D  60", lines);
        Assert.Equal((0, "dom0\n", ""), Run(true, "default_guivm"));
        Assert.Equal(1, Run(true, "default_dispvm", "work").Status);
    }

    [Fact]
    public void Help_properties_wraps_at_80_columns()
    {
        (int status, string stdout, _) = Run(false, "--help-properties", "work");
        Assert.Equal(0, status);
        string[] lines = stdout.Split('\n', StringSplitOptions.RemoveEmptyEntries);
        Assert.All(lines, static l => Assert.True(l.Length <= 80 || !l.TrimStart().Contains(' ', StringComparison.Ordinal), l));
        Assert.Contains(lines, static l => l.StartsWith("  memory                ", StringComparison.Ordinal) && l.EndsWith("Memory currently available for this VM.", StringComparison.Ordinal));
    }
}
