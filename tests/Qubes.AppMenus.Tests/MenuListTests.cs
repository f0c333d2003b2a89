using System;
using System.Collections.Generic;
using System.IO;
using System.Linq;
using System.Text;
using System.Text.RegularExpressions;
using Xunit;

namespace Qubes.AppMenus.Tests;

public sealed class MenuListTests
{
    private static (List<MenuEntry> Entries, string Warnings) Parse(params string[] lines)
    {
        StringWriter warnings = new();
        return (MenuList.Parse(lines, warnings), warnings.ToString());
    }

    private static MenuList.Result Read(byte[] input, bool pull, StringWriter? warnings = null)
        => MenuList.Read(new MemoryStream(input), pull, warnings ?? new StringWriter());

    [Fact]
    public void Accepted_keys_with_allowed_values_are_kept_per_entry_in_order_and_later_values_win()
    {
        (List<MenuEntry> entries, string warnings) = Parse(
            "org.gnome.Terminal.desktop:Name=Terminal",
            "/usr/share/applications/org.gnome.Terminal.desktop:Comment=Use the command line",
            "org.gnome.Terminal.desktop:Name[de]=Terminal DE",
            "org.gnome.Terminal.desktop:X-GNOME-Foo=bar",
            "org.gnome.Terminal.desktop:Categories=GNOME;GTK;System;TerminalEmulator;Screensaver;Bogus;",
            "org.gnome.Terminal.desktop:Icon=org.gnome.Terminal",
            "org.gnome.Terminal.desktop:Exec=qubes-desktop-run org.gnome.Terminal.desktop",
            "firefox.desktop:Name = Firefox",
            "firefox.desktop:Name=Firefox ESR",
            "org.gnome.Terminal.desktop:StartupWMClass=gnome-terminal-server");
        Assert.Equal("", warnings);
        Assert.Equal(["org.gnome.Terminal", "firefox"], entries.Select(static e => e.Name));
        Dictionary<string, string> terminal = entries[0].Values;
        Assert.Equal("Terminal", terminal["Name"]);
        Assert.Equal("Use the command line", terminal["Comment"]);
        Assert.Equal("GNOME;GTK;System;TerminalEmulator;", terminal["Categories"]);
        Assert.Equal("org.gnome.Terminal", terminal["Icon"]);
        Assert.Equal("qubes-desktop-run org.gnome.Terminal.desktop", terminal["Exec"]);
        Assert.Equal("gnome-terminal-server", terminal["StartupWMClass"]);
        Assert.Equal(6, terminal.Count); // not Name[de], not X-GNOME-Foo
        Assert.Equal("Firefox ESR", entries[1].Values["Name"]);
    }

    [Theory]
    [InlineData("Name", "Evil; rm -rf /")]
    [InlineData("Name", "tab\there")]
    [InlineData("Comment", "quote's")]
    [InlineData("Exec", "sh -c 'x'")]
    [InlineData("Exec", "a;b")]
    [InlineData("Exec", "$(id)")]
    [InlineData("Icon", "../../x y")]
    [InlineData("StartupWMClass", "a b")]
    [InlineData("Categories", "Utility;%s")]
    [InlineData("Name", "Ünïcode")]
    public void A_value_outside_its_whitelist_is_dropped_with_a_warning(string key, string value)
    {
        (List<MenuEntry> entries, string warnings) = Parse($"app.desktop:{key}={value}");
        Assert.Empty(entries);
        Assert.Equal($"Warning: ignoring key '{key}' of app\n", warnings);
    }

    [Theory]
    [InlineData("", ";")]
    [InlineData(";;;", ";")]
    [InlineData(" Utility ; Office;", "Utility;Office;")]
    [InlineData("TrayIcon;Applet;Shell;Screensaver;", ";")]
    [InlineData("Network;WebBrowser", "Network;WebBrowser;")]
    public void Categories_keep_only_the_menu_specifications_names(string value, string expected)
        => Assert.Equal(expected, Parse($"a.desktop:Categories={value}").Entries.Single().Values["Categories"]);

    [Theory]
    [InlineData("")]
    [InlineData("app.desktop:")]
    [InlineData("app.desktop:   ")]
    [InlineData("app.desktop:# Name=x")]
    [InlineData("/usr/share/applications/app.desktop:#Name=Hidden")]
    [InlineData("no colon Name=x")]
    [InlineData("app.desktop:=x")]
    [InlineData("app.desktop:Name[]=x")]
    public void Comments_empty_and_malformed_lines_give_nothing(string line) => Assert.Empty(Parse(line).Entries);

    [Fact]
    public void The_entry_name_is_the_last_path_component_without_desktop_and_cannot_hold_a_separator()
    {
        (List<MenuEntry> entries, _) = Parse(
            "../../../etc/passwd.desktop:Name=a",
            "x/y/.desktop.desktop:Name=b",
            "/a:b:Name=c",
            "odd.desktop.desktop:Name=d",
            ".desktop:Name=e");
        Assert.Equal(["passwd", ".desktop", "b", "odd.desktop"], entries.Select(static e => e.Name));
        Assert.Equal("e", entries[1].Values["Name"]);
        Assert.All(entries, static e => Assert.DoesNotContain('/', e.Name));
    }

    // ---- the hand-written matcher against the spec's regular expressions ----

    private static readonly Regex s_line = new(@"([a-zA-Z0-9._-]+?)(?:\.desktop)?:([a-zA-Z0-9-]+(?:\[[a-zA-Z@_]+\])?)\s*=\s*(.*)", RegexOptions.CultureInvariant);
    private static readonly Regex s_comment = new(@"\A.*([a-zA-Z0-9._-]+.desktop):(#.*|\s*)\z", RegexOptions.CultureInvariant);

    /// <summary>Lines built from the pieces that matter to the patterns, with .NET's regular expressions (whose whitespace is Python's less U+001C-U+001F, left out here) as the oracle.</summary>
    [Fact]
    public void The_matcher_agrees_with_the_specs_patterns_on_a_hundred_thousand_lines()
    {
        string[] pieces = ["a", "Z9", ".", "-", "_", ".desktop", "desktop", ":", "=", " ", "\t", "#", "[", "]", "de", "@", "/", "Name", "x y", ";", "é", "\r", "\u00a0"];
        Random random = new(12345);
        for (int n = 0; n < 100_000; n++)
        {
            StringBuilder line = new();
            int count = random.Next(1, 12);
            for (int i = 0; i < count; i++)
            {
                line.Append(pieces[random.Next(pieces.Length)]);
            }
            string text = line.ToString();
            Match expected = s_line.Match(text);
            MenuList.Line? actual = MenuList.Match(text);
            Assert.True(expected.Success == actual.HasValue, $"match of {Escape(text)}: regex {expected.Success}");
            if (expected.Success)
            {
                Assert.Equal(expected.Groups[1].Value, actual!.Value.Name);
                Assert.Equal(expected.Groups[2].Value, actual.Value.Key);
                Assert.Equal(expected.Groups[3].Value.Trim(), actual.Value.Value);
            }
            Assert.True(s_comment.IsMatch(text) == MenuList.IsComment(text), $"comment test of {Escape(text)}");
        }

        static string Escape(string s) => string.Concat(s.Select(static c => c < ' ' || c > '~' ? $"\\u{(int)c:x4}" : c.ToString()));
    }

    [Fact]
    public void Python_whitespace_includes_the_four_information_separators()
    {
        MenuEntry entry = Parse("a.desktop:Name\u001f=\u001cValue\u001d").Entries.Single();
        Assert.Equal("Value", entry.Values["Name"]);
    }

    // ---- reading: limits and encodings ----

    [Fact]
    public void A_list_of_99999_lines_is_read_and_one_of_100000_is_refused_whole()
    {
        byte[] Lines(int n) => Encoding.ASCII.GetBytes(string.Concat(Enumerable.Range(0, n).Select(static i => $"app{i % 5}.desktop:Name=App {i % 5}\n")));
        MenuList.Result ok = Read(Lines(MenuList.MaxLines - 1), pull: true);
        Assert.Null(ok.Error);
        Assert.Equal(5, ok.Entries!.Count);
        MenuList.Result refused = Read(Lines(MenuList.MaxLines), pull: true);
        Assert.Null(refused.Entries);
        Assert.Equal("Line count limit exceeded", refused.Error);
    }

    [Fact]
    public void A_line_longer_than_1024_bytes_is_split_and_each_piece_is_a_line()
    {
        // 1024 bytes of padding then a whole entry line: the second piece is a line of its own
        string line = new string('x', 1024) + "app.desktop:Name=Tail\n";
        MenuList.Result result = Read(Encoding.ASCII.GetBytes(line), pull: true);
        Assert.Equal("Tail", result.Entries!.Single().Values["Name"]);
        // 99999 long lines count twice: the budget runs out
        byte[] many = Encoding.ASCII.GetBytes(string.Concat(Enumerable.Repeat(new string('y', 1030) + "\n", (MenuList.MaxLines / 2) + 1)));
        Assert.Equal("Line count limit exceeded", Read(many, pull: true).Error);
    }

    [Fact]
    public void Asked_for_a_line_with_a_byte_outside_ASCII_is_dropped_pushed_invalid_UTF8_refuses_the_list()
    {
        byte[] input = [.. "a.desktop:Name=A\n"u8, .. "b.desktop:Name=B"u8, 0xff, (byte)'\n', .. "c"u8, 0xc3, 0xa9, .. " c.desktop:Name=C\n"u8];
        MenuList.Result pulled = Read(input, pull: true);
        Assert.Equal(["a"], pulled.Entries!.Select(static e => e.Name));
        MenuList.Result pushed = Read(input, pull: false);
        Assert.Null(pushed.Entries);
        Assert.Equal("Input is not valid UTF-8", pushed.Error);
        MenuList.Result valid = Read([.. "a.desktop:Name=A\r"u8, .. "x"u8, 0xc3, 0xa9, .. " c.desktop:Name=C\r\n"u8], pull: false);
        Assert.Equal(["a", "c"], valid.Entries!.Select(static e => e.Name));
    }
}
