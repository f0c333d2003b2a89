using System;
using System.IO;
using Qubes.Core.Api;
using Xunit;

namespace Qubes.Core.Tests;

/// <summary>qvm-features, qvm-service, qvm-tags and qvm-create (spec core-stack §10.4-§10.7).</summary>
public sealed class QvmToolsTests
{
    private readonly QubesApp _app = ModelTests.System();

    private (int Status, string Stdout, string Stderr) Run(string prog, params string[] args)
    {
        StringWriter stdout = new(), stderr = new();
        int status = QvmTools.Run(prog, args, new AdminClient(new InProcessTransport(new AdminApi(_app))), stdout, stderr);
        return (status, stdout.ToString(), stderr.ToString());
    }

    [Theory]
    [InlineData("qvm-features")]
    [InlineData("qvm-service")]
    [InlineData("qvm-tags")]
    [InlineData("qvm-create")]
    public void Help_and_unknown_options(string prog)
    {
        string help = QvmTools.CommandFor(prog).Help;
        Assert.StartsWith($"usage: {prog} [--verbose] [--quiet] [--help]", help, StringComparison.Ordinal);
        Assert.Equal((0, help, ""), Run(prog, "--help"));
        Assert.Equal((0, help, ""), Run(prog, "-h"));
        Assert.Equal((0, help, ""), Run(prog, "-vh", "work"));
        (int status, string stdout, string stderr) = Run(prog, "--bogus", "work");
        Assert.Equal((2, ""), (status, stdout));
        Assert.Equal($"{QvmTools.CommandFor(prog).Usage}\n{prog}: error: unrecognized arguments: --bogus\n", stderr);
    }

    [Fact]
    public void Features_table_get_set_and_unset()
    {
        Assert.Equal((0, "", ""), Run("qvm-features", "work", "menu-items", "firefox.desktop xterm.desktop"));
        Assert.Equal((0, "", ""), Run("qvm-features", "work", "gui", ""));
        Assert.Equal((0, "menu-items  firefox.desktop xterm.desktop\ngui         \n", ""), Run("qvm-features", "work"));
        Assert.Equal((0, "\n", ""), Run("qvm-features", "work", "gui"));
        Assert.Equal((1, "", ""), Run("qvm-features", "work", "nope"));
        Assert.Equal((0, "", ""), Run("qvm-features", "-D", "work", "nope"));
        Assert.Equal((0, "", ""), Run("qvm-features", "--unset", "work", "gui"));
        Assert.False(_app.Get("work").Features.ContainsKey("gui"));
        Assert.EndsWith("qvm-features: error: --unset requires a feature\n", Run("qvm-features", "-D", "work").Stderr, StringComparison.Ordinal);
        Assert.Equal(2, Run("qvm-features", "-D", "work", "a", "b").Status);
        Assert.Equal(2, Run("qvm-features", "ghost").Status);
    }

    [Fact]
    public void Services_are_service_features_shown_on_or_off()
    {
        Assert.Equal(0, Run("qvm-service", "--enable", "work", "network-manager").Status);
        Assert.Equal(0, Run("qvm-service", "work", "cups", "off").Status);
        Assert.Equal("1", _app.Get("work").Features["service.network-manager"]);
        Assert.Equal("", _app.Get("work").Features["service.cups"]);
        Assert.Equal((0, "network-manager  on\ncups             off\n", ""), Run("qvm-service", "work"));
        Assert.Equal((0, "service.network-manager  1\nservice.cups             \n", ""), Run("qvm-features", "work"));
        Assert.Equal((0, "off\n", ""), Run("qvm-service", "work", "cups"));
        Assert.Equal((1, "", ""), Run("qvm-service", "work", "sshd"));
        Assert.Equal((1, "", "qvm-service: error: Invalid literal for boolean value: 'maybe'\n"), Run("qvm-service", "work", "cups", "maybe"));
        Assert.Equal(0, Run("qvm-service", "-D", "work", "cups").Status);
        Assert.Equal((0, "network-manager  on\n", ""), Run("qvm-service", "--list", "work"));
    }

    [Fact]
    public void Tags_list_add_and_delete()
    {
        Assert.Equal((0, "", ""), Run("qvm-tags", "work", "add", "work", "email"));
        Assert.Equal((0, "email\nwork\n", ""), Run("qvm-tags", "work"));
        Assert.Equal((0, "work\n", ""), Run("qvm-tags", "work", "list", "work"));
        Assert.Equal((1, "", ""), Run("qvm-tags", "work", "list", "other"));
        Assert.Equal((0, "", ""), Run("qvm-tags", "work", "del", "email"));
        Assert.Equal((0, "", ""), Run("qvm-tags", "work", "del", "email"));
        Assert.Equal((1, "", "qvm-tags: error: disallowed characters\n"), Run("qvm-tags", "work", "add", "a.b"));
        Assert.Equal(2, Run("qvm-tags", "work", "fly").Status);
    }

    [Fact]
    public void Create_with_label_template_and_properties()
    {
        Assert.Equal((0, "", ""), Run("qvm-create", "wallet", "-l", "blue", "--template", "debian-12", "--property", "netvm="));
        Qube wallet = _app.Get("wallet");
        Assert.Equal("blue", wallet.Label.Name);
        Assert.Equal("", wallet.Properties.Get("netvm"));
        Assert.Contains("created-by-dom0", wallet.Tags);
        Assert.EndsWith("qvm-create: error: --label option is mandatory\n", Run("qvm-create", "nolabel").Stderr, StringComparison.Ordinal);
        Assert.EndsWith("qvm-create: error: no such label: 'pink'; available: red, orange, yellow, green, gray, blue, purple, black\n",
            Run("qvm-create", "x", "-l", "pink").Stderr, StringComparison.Ordinal);
        Assert.Equal((1, "", "app: Error creating VM: Qube already exists: wallet\n"), Run("qvm-create", "wallet", "-l", "red", "-t", "debian-12"));
        Assert.Equal((2, "", "x2: Error setting property memory (but VM created): Failed to parse property value as int\n"),
            Run("qvm-create", "x2", "-l", "red", "-t", "debian-12", "--prop", "memory=lots"));
        Assert.NotNull(_app.Find("x2"));
        Assert.Equal((0, "AdminVM\nAppVM\nDispVM\nRemoteVM\nStandaloneVM\nTemplateVM\n", ""), Run("qvm-create", "--help-classes"));
        Assert.Equal(0, Run("qvm-create", "--class", "StandaloneVM", "solo", "--label=green").Status);
        Assert.Equal("StandaloneVM", _app.Get("solo").Class);
    }

    [Fact]
    public void A_disposable_needs_a_template_for_dispvms()
    {
        Assert.Equal((1, "", "app: Error creating VM: template for disposable (work) needs to be an AppVM with template_for_dispvms=True\n"),
            Run("qvm-create", "--disp", "-t", "work", "d1"));
        Assert.Equal(0, Run("qvm-create", "--disp", "-t", "default-dvm", "d1").Status);
        Assert.Equal("red", _app.Get("d1").Label.Name);
    }
}
