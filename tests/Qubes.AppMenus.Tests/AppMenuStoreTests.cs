using System;
using System.Collections.Generic;
using System.IO;
using System.Linq;
using Xunit;

namespace Qubes.AppMenus.Tests;

/// <summary>The menu store against qubes kept in memory: what dom0 writes of a qube's entries and the menus made of them.</summary>
public sealed class AppMenuStoreTests : IDisposable
{
    private readonly string _base = Path.Combine(Path.GetTempPath(), $"appmenus-{Environment.ProcessId}-{Guid.NewGuid():N}");
    private readonly FakeQubes _qubes = new();
    private readonly StringWriter _log = new();
    private readonly AppMenuStore _store;

    public AppMenuStoreTests()
    {
        _qubes.Add(new("debian-12", "TemplateVM", null, "black", "0x000000", "templatevm-black", new Dictionary<string, string>()));
        _qubes.Add(new("work", "AppVM", "debian-12", "blue", "0x3465a4", "appvm-blue", new Dictionary<string, string>()));
        _qubes.Add(new("personal", "AppVM", "debian-12", "yellow", "0xedd400", "appvm-yellow", new Dictionary<string, string>()));
        _store = new AppMenuStore(_base, _qubes, _log);
    }

    public void Dispose()
    {
        if (Directory.Exists(_base))
        {
            Directory.Delete(_base, recursive: true);
        }
    }

    private sealed class FakeQubes : IMenuQubes
    {
        private readonly Dictionary<string, MenuQube> _qubes = new(StringComparer.Ordinal);

        public void Add(MenuQube qube) => _qubes[qube.Name] = qube;

        public MenuQube Get(string name) => _qubes[name];

        public IEnumerable<MenuQube> All() => _qubes.Values;

        public string? FeatureWithTemplate(string qube, string feature)
            => _qubes[qube].Feature(feature) ?? (_qubes[qube].Template is { } t ? FeatureWithTemplate(t, feature) : null);

        public void SetFeature(string qube, string feature, string value)
            => _qubes[qube] = _qubes[qube] with { Features = new Dictionary<string, string>(_qubes[qube].Features) { [feature] = value } };
    }

    private static MenuEntry Entry(string name, params (string Key, string Value)[] values)
    {
        MenuEntry entry = new(name);
        foreach ((string key, string value) in values)
        {
            entry.Values[key] = value;
        }
        return entry;
    }

    private static readonly RgbaImage s_icon = new(2, 1, [10, 20, 30, 255, 200, 100, 50, 128]);

    private static RgbaImage.ReadResult Icons(string source) => source == "xdgicon:utilities-terminal" ? new(s_icon, null) : new(null, "No icon received");

    [Fact]
    public void An_entry_is_written_in_dom0s_own_format_with_the_icon_stored_untinted()
    {
        _store.ReceiveEntries(_qubes.Get("debian-12"), [Entry("org.gnome.Terminal", ("Name", "Terminal"), ("GenericName", "Terminal emulator"),
            ("Comment", "Use the command line"), ("Categories", "GNOME;System;"), ("Icon", "utilities-terminal"), ("StartupWMClass", "gnome-terminal-server"),
            ("Exec", "qubes-desktop-run org.gnome.Terminal.desktop"))], Icons);
        Assert.Equal("""
            [Desktop Entry]
            Version=1.0
            Type=Application
            Terminal=false
            X-Qubes-VmName=%VMNAME%
            X-Qubes-AppName=org.gnome.Terminal
            Icon=%VMDIR%/apps.icons/org.gnome.Terminal.png
            Name=%VMNAME%: Terminal
            GenericName=%VMNAME%: Terminal emulator
            StartupWMClass=%VMNAME%:gnome-terminal-server
            Comment=Use the command line
            Categories=GNOME;System;X-Qubes-VM;
            Exec=qvm-run -q -a --service -- %VMNAME% qubes.StartApp+org.gnome.Terminal
            X-Qubes-DispvmExec=qvm-run -q -a --service --dispvm=%VMNAME% -- qubes.StartApp+org.gnome.Terminal

            """, File.ReadAllText(Path.Combine(_store.TemplatesDirectory("debian-12"), "org.gnome.Terminal.desktop")));
        Assert.Equal(s_icon, RgbaImage.LoadTrustedPng(Path.Combine(_store.TemplateIconsDirectory("debian-12"), "org.gnome.Terminal.png")));
        // a template is not an AppVM: it has dom0's start entry
        Assert.True(File.Exists(Path.Combine(_store.TemplatesDirectory("debian-12"), "qubes-start.desktop")));
    }

    [Fact]
    public void Legacy_mode_quotes_the_qubes_command_and_needs_Exec()
    {
        _qubes.SetFeature("debian-12", "appmenus-legacy", "1");
        _store.ReceiveEntries(_qubes.Get("work"), [Entry("xterm", ("Name", "XTerm"), ("Exec", "xterm -e (top)")), Entry("noexec", ("Name", "No Exec"))], Icons);
        string xterm = File.ReadAllText(Path.Combine(_store.TemplatesDirectory("work"), "xterm.desktop"));
        Assert.Contains("\nIcon=%XDGICON%\n", xterm, StringComparison.Ordinal);
        Assert.Contains("\nCategories=X-Qubes-VM;\n", xterm, StringComparison.Ordinal);
        Assert.EndsWith("Exec=qvm-run -q -a %VMNAME% -- 'xterm -e (top)'\nX-Qubes-DispvmExec=qvm-run -q -a --dispvm=%VMNAME% -- 'xterm -e (top)'\n", xterm, StringComparison.Ordinal);
        Assert.False(File.Exists(Path.Combine(_store.TemplatesDirectory("work"), "noexec.desktop")));
        Assert.Contains("because of missing 'Exec' key", _log.ToString(), StringComparison.Ordinal);
    }

    [Fact]
    public void The_reserved_start_entry_entries_without_Name_and_entries_no_longer_sent_are_not_kept()
    {
        MenuQube work = _qubes.Get("work");
        _store.ReceiveEntries(work, [Entry("a", ("Name", "A")), Entry("b", ("Name", "B"))], Icons);
        _store.ReceiveEntries(work, [Entry("a", ("Name", "A")), Entry("qubes-start", ("Name", "Evil start"), ("Exec", "x")), Entry("nameless", ("Comment", "c"))], Icons);
        Assert.Equal(["a.desktop"], Directory.GetFiles(_store.TemplatesDirectory("work")).Select(Path.GetFileName));
        Assert.Contains("Warning: not creating/updating", _log.ToString(), StringComparison.Ordinal);
    }

    [Fact]
    public void An_icon_that_fails_keeps_the_stored_one_or_drops_the_Icon_key()
    {
        MenuQube t = _qubes.Get("debian-12");
        _store.ReceiveEntries(t, [Entry("term", ("Name", "T"), ("Icon", "utilities-terminal")), Entry("other", ("Name", "O"), ("Icon", "missing"))], Icons);
        Assert.Contains("Icon=%XDGICON%", File.ReadAllText(Path.Combine(_store.TemplatesDirectory("debian-12"), "other.desktop")), StringComparison.Ordinal);
        Assert.Contains("Failed to get icon for other: No icon received", _log.ToString(), StringComparison.Ordinal);
        _store.ReceiveEntries(t, [Entry("term", ("Name", "T"), ("Icon", "utilities-terminal"))], _ => new(null, "Image format violation"));
        Assert.Contains("Icon=%VMDIR%/apps.icons/term.png", File.ReadAllText(Path.Combine(_store.TemplatesDirectory("debian-12"), "term.desktop")), StringComparison.Ordinal);
        Assert.Contains("Found old icon, using it instead", _log.ToString(), StringComparison.Ordinal);
        Assert.Equal(s_icon, RgbaImage.LoadTrustedPng(Path.Combine(_store.TemplateIconsDirectory("debian-12"), "term.png")));
    }

    [Fact]
    public void A_templates_entries_reach_its_AppVMs_menus_in_their_label_colours()
    {
        _store.ReceiveEntries(_qubes.Get("debian-12"), [Entry("org.gnome.Terminal", ("Name", "Terminal"), ("Icon", "utilities-terminal")), Entry("firefox", ("Name", "Firefox"))], Icons);
        _store.Update(_qubes.Get("debian-12"), force: false);
        string menu = _store.MenuDirectory("work");
        string terminal = Path.Combine(menu, "org.qubes-os.vm._work.org.gnome.Terminal.desktop");
        Assert.True(File.Exists(terminal), string.Join(", ", Directory.GetFiles(menu)));
        string text = File.ReadAllText(terminal);
        Assert.Contains("\nName=work: Terminal\n", text, StringComparison.Ordinal);
        Assert.Contains("\nExec=qvm-run -q -a --service -- work qubes.StartApp+org.gnome.Terminal\n", text, StringComparison.Ordinal);
        Assert.Contains($"\nIcon={_store.QubeDirectory("work")}/apps.icons/org.gnome.Terminal.png\n", text, StringComparison.Ordinal);
        Assert.Contains("\nIcon=appvm-blue\n", File.ReadAllText(Path.Combine(menu, "org.qubes-os.vm._work.firefox.desktop")), StringComparison.Ordinal);
        Assert.True(File.Exists(Path.Combine(menu, "qubes-vm-directory_work.directory")));
        Assert.True(File.Exists(Path.Combine(menu, "org.qubes-os.qubes-vm-settings._work.desktop")));
        // an AppVM has no start entry of its own; the template's start entry is the template's
        Assert.False(File.Exists(Path.Combine(menu, "org.qubes-os.vm._work.qubes-start.desktop")) && !File.Exists(Path.Combine(_store.TemplatesDirectory("debian-12"), "qubes-start.desktop")));
        Assert.Equal(s_icon.Tint("0x3465a4"), RgbaImage.LoadTrustedPng(Path.Combine(_store.IconsDirectory("work"), "org.gnome.Terminal.png")));
        Assert.Equal(s_icon.Tint("0xedd400"), RgbaImage.LoadTrustedPng(Path.Combine(_store.IconsDirectory("personal"), "org.gnome.Terminal.png")));
        Assert.Equal(["firefox.desktop - Firefox", "org.gnome.Terminal.desktop - Terminal", "qubes-start.desktop - Start"],
            _store.Available(_qubes.Get("work"), null).Select(static r => $"{r[0]} - {r[1]}").Order(StringComparer.Ordinal));
    }

    [Fact]
    public void The_menu_items_feature_chooses_the_entries_and_the_others_are_removed()
    {
        _store.ReceiveEntries(_qubes.Get("debian-12"), [Entry("a", ("Name", "A")), Entry("b", ("Name", "B"))], Icons);
        _store.Update(_qubes.Get("debian-12"), force: false);
        Assert.True(File.Exists(Path.Combine(_store.MenuDirectory("work"), "org.qubes-os.vm._work.b.desktop")));
        _qubes.SetFeature("work", "menu-items", "a.desktop");
        _store.CreateMenu(_qubes.Get("work"), force: false);
        Assert.Equal(["org.qubes-os.qubes-vm-settings._work.desktop", "org.qubes-os.vm._work.a.desktop", "qubes-vm-directory_work.directory"],
            Directory.GetFiles(_store.MenuDirectory("work")).Select(Path.GetFileName).Order(StringComparer.Ordinal));
        Assert.Equal(["a.desktop"], _store.Whitelist(_qubes.Get("work")));
    }

    [Theory]
    [InlineData("work", "_work")]
    [InlineData("my-qube_1.x", "_my_dqube_u1_px")]
    public void Qube_names_are_escaped_in_file_names(string name, string escaped) => Assert.Equal(escaped, AppMenuStore.EscapeName(name));

    [Theory]
    [InlineData("", "''")]
    [InlineData("xterm", "xterm")]
    [InlineData("a b", "'a b'")]
    [InlineData("it's", "'it'\"'\"'s'")]
    public void Shell_quoting_is_Pythons_shlex_quote(string word, string quoted) => Assert.Equal(quoted, AppMenuStore.ShellQuote(word));
}
