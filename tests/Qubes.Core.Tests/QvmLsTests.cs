using System;
using System.IO;
using System.Linq;
using System.Text;
using Qubes.Core.Api;
using Xunit;

namespace Qubes.Core.Tests;

/// <summary>qvm-ls (spec core-stack §10.3).</summary>
public sealed class QvmLsTests
{
    private readonly QubesApp _app = ModelTests.System();

    private (int Status, string Stdout, string Stderr) Run(params string[] args) => Run(new InProcessTransport(new AdminApi(_app)), args);

    private static (int Status, string Stdout, string Stderr) Run(IAdminTransport transport, params string[] args)
    {
        StringWriter stdout = new(), stderr = new();
        int status = QvmLs.Run(args, new AdminClient(transport), stdout, stderr);
        return (status, stdout.ToString(), stderr.ToString());
    }

    private const string Simple = """
        NAME         STATE    CLASS       LABEL  TEMPLATE   NETVM
        debian-12    Halted   TemplateVM  black  -          -
        default-dvm  Halted   AppVM       red    debian-12  -
        dom0         Running  AdminVM     black  -          -
        sys-net      Halted   AppVM       red    debian-12  -
        work         Halted   AppVM       blue   debian-12  -

        """;

    [Fact]
    public void Default_format_is_a_simple_aligned_table_sorted_by_name() => Assert.Equal((0, Simple, ""), Run());

    [Fact]
    public void Properties_come_from_per_property_Get_when_GetAll_fails()
    {
        FailingGetAll transport = new(new InProcessTransport(new AdminApi(_app)));
        Assert.Equal((0, Simple, ""), Run(transport));
        Assert.True(transport.Gets > 0);
    }

    [Fact]
    public void Filters_select_by_class_label_state_tags_and_names()
    {
        _app.Get("work").Tags.Add("mail");
        Assert.Equal("debian-12\ndom0\n", Run("--raw-list", "--class", "TemplateVM", "AdminVM").Stdout);
        Assert.Equal("default-dvm\nsys-net\n", Run("--raw-list", "--label", "red").Stdout);
        Assert.Equal("dom0\n", Run("--raw-list", "--running").Stdout);
        Assert.Equal("debian-12\ndefault-dvm\nsys-net\nwork\n", Run("--raw-list", "--halted").Stdout);
        Assert.Equal("work\n", Run("--raw-list", "--tags", "mail", "other").Stdout);
        Assert.Equal("debian-12\ndefault-dvm\ndom0\nsys-net\n", Run("--raw-list", "--exclude-tags", "mail").Stdout);
        Assert.Equal("debian-12\ndefault-dvm\nsys-net\nwork\n", Run("--raw-list", "--all", "--exclude", "dom0").Stdout);
        Assert.Equal("dom0\nwork\n", Run("--raw-list", "w*", "d?m0", "work").Stdout);
        Assert.Equal("sys-net\n", Run("--raw-list", "--prefs", "provides_network=True").Stdout);
        Assert.Equal("default-dvm\n", Run("--raw-list", "--label", "red", "--template-source", "debian-12", "--prefs", "template_for_dispvms=True").Stdout);
        Assert.Equal("", Run("--raw-list", "--paused").Stdout);
    }

    [Fact]
    public void Raw_output_joins_cells_with_bars_and_has_no_header()
    {
        Assert.Equal((0, "debian-12\ndefault-dvm\ndom0\nsys-net\nwork\n", ""), Run("--raw-list"));
        Assert.Equal("debian-12|black|1\ndefault-dvm|red|4\ndom0|black|0\nsys-net|red|2\nwork|blue|3\n", Run("--raw-data", "-O", "name,label,qid").Stdout);
    }

    [Fact]
    public void Fields_may_name_any_property_with_a_dashed_upper_case_header()
    {
        _app.Get("sys-net").Properties.Set("ip", "10.137.0.2");
        _app.Get("work").Properties.Set("netvm", "sys-net");
        Assert.Equal((0, """
            NAME     VIRT-MODE  NETVM    IP          GATEWAY     NO-SUCH-THING
            dom0     -          -        -           -           -
            sys-net  pvh        -        10.137.0.2  -           -
            work     pvh        sys-net  10.137.0.3  10.137.0.2  -

            """, ""), Run("-O", "name,virt_mode,NetVM,ip,gateway,no_such_thing", "dom0", "sys-net", "work"));
    }

    [Fact]
    public void Sort_orders_by_a_shown_column_numerically_or_as_text()
    {
        _app.Get("work").Properties.Set("maxmem", "10000");
        _app.Get("sys-net").Properties.Set("maxmem", "900");
        Assert.Equal("sys-net|900\ndebian-12|4000\ndefault-dvm|4000\ndom0|4096\nwork|10000\n", Run("--raw-data", "-O", "name,maxmem", "--sort", "maxmem").Stdout);
        Assert.Equal("work|10000\ndom0|4096\ndebian-12|4000\ndefault-dvm|4000\nsys-net|900\n", Run("--raw-data", "-O", "name,maxmem", "--sort", "MAXMEM", "--reverse").Stdout);
        Assert.Equal("default-dvm|red\nsys-net|red\nwork|blue\ndebian-12|black\ndom0|black\n", Run("--raw-data", "-O", "name,label", "--sort", "label", "--reverse").Stdout);
        Assert.Equal("work\nsys-net\ndom0\ndefault-dvm\ndebian-12\n", Run("--raw-list", "--reverse").Stdout);
        Assert.Equal("debian-12\ndefault-dvm\ndom0\nsys-net\nwork\n", Run("--raw-list", "--reverse", "--sort", "label").Stdout);
        _app.Create("AppVM", "Zed", "green", [("template", "debian-12")]);
        Assert.Equal("Zed\ndebian-12\n", Run("--raw-list", "Zed", "debian-12").Stdout);
        Assert.Equal("debian-12\nZed\n", Run("--raw-list", "--ignore-case", "Zed", "debian-12").Stdout);
    }

    [Fact]
    public void Tree_puts_qubes_behind_their_netvm()
    {
        _app.Get("work").Properties.Set("netvm", "sys-net");
        Assert.Equal((0, """
            NAME         NETVM
            debian-12    -
            default-dvm  -
            dom0         -
            sys-net      -
            └─work       sys-net

            """, ""), Run("--tree", "-O", "name,netvm"));
    }

    [Fact]
    public void Flags_show_type_power_and_boolean_properties()
    {
        Qube work = _app.Get("work");
        work.Properties.Set("virt_mode", "hvm");
        work.Properties.Set("debug", "True");
        Assert.Equal((0, """
            NAME         FLAGS
            debian-12    t-U-----
            default-dvm  a-------
            dom0         0rU-----
            sys-net      a--N----
            work         A-----D-

            """, ""), Run("-O", "name,flags"));
    }

    [Fact]
    public void Usage_errors_exit_2()
    {
        (int status, string stdout, string stderr) = Run("work", "ghost");
        Assert.Equal((2, ""), (status, stdout));
        Assert.StartsWith("usage: qvm-ls [--verbose]", stderr, StringComparison.Ordinal);
        Assert.EndsWith("\nqvm-ls: error: no such domain: 'ghost'\n", stderr, StringComparison.Ordinal);
        Assert.EndsWith("qvm-ls: error: argument --format/-o: invalid choice: 'wide' (choose from simple, network, kernel, full, prefs, disk)\n", Run("-o", "wide").Stderr, StringComparison.Ordinal);
        Assert.EndsWith("qvm-ls: error: --exclude can only be used with --all\n", Run("--exclude", "work").Stderr, StringComparison.Ordinal);
        Assert.EndsWith("qvm-ls: error: argument --class: expected at least one argument\n", Run("--class", "--running").Stderr, StringComparison.Ordinal);
        Assert.Equal(2, Run("--bogus").Status);
        Assert.Equal(2, Run("-o", "full", "-O", "name").Status);
    }

    [Fact]
    public void Preset_formats_and_help()
    {
        Assert.Equal("NAME  STATE    DISK  PRIV-CURR  PRIV-MAX  PRIV-USED  ROOT-CURR  ROOT-MAX  ROOT-USED\ndom0  Running  -     -          -         -          -          -         -\n", Run("-d", "dom0").Stdout);
        Assert.Equal("NAME  LABEL  TEMPLATE   NETVM  VCPUS  INITIALMEM  MAXMEM  VIRT-MODE\nwork  blue   debian-12  -      2      -           4000    pvh\n", Run("--format", "prefs", "work").Stdout);
        Assert.Contains("\n  simple   NAME,STATE,CLASS,LABEL,TEMPLATE,NETVM\n", Run("--help-formats").Stdout, StringComparison.Ordinal);
        string columns = Run("--help-columns").Stdout;
        Assert.Equal(["CLASS", "DISK", "FLAGS", "GATEWAY", "MEMORY", "PRIV-CURR", "PRIV-MAX", "PRIV-USED", "ROOT-CURR", "ROOT-MAX", "ROOT-USED", "STATE"],
            columns.Split('\n').Where(static l => l.StartsWith("  ", StringComparison.Ordinal) && l[2] != ' ').Select(static l => l.Split(' ', StringSplitOptions.RemoveEmptyEntries)[0]));
    }

    /// <summary>Refuses <c>admin.vm.property.GetAll</c> as an older qubesd would, counting the per-property calls.</summary>
    private sealed class FailingGetAll(IAdminTransport inner) : IAdminTransport
    {
        public int Gets { get; private set; }

        public byte[] Call(string method, string argument, string destination, byte[] payload)
        {
            Gets += method == "admin.vm.property.Get" ? 1 : 0;
            return method == "admin.vm.property.GetAll"
                ? Encoding.ASCII.GetBytes("2\0QubesException\0\0Unknown method\0")
                : inner.Call(method, argument, destination, payload);
        }
    }
}
