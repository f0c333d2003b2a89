using System;
using System.IO;
using Qubes.Core.Tests;
using Xunit;

namespace Qubes.AppMenus.Tests;

/// <summary>
/// Application menus on a whole system (<c>qubes up</c>, native build): a template's entries and
/// icons asked by dom0 and reaching its AppVMs, a qube pushing its own, and qubes answering with
/// hostile lists and images, which must change nothing but what the checks let through.
/// </summary>
[System.Runtime.Versioning.SupportedOSPlatform("linux")]
public sealed class AppMenuSystemTests : IClassFixture<AppMenuSystemTests.RunningSystem>
{
    private readonly LoopbackSystem _system;

    public AppMenuSystemTests(RunningSystem system) => _system = system.System;

    /// <summary>The system, with a Notes application in the template debian-12.</summary>
    public sealed class RunningSystem : IDisposable
    {
        public RunningSystem()
        {
            System = new("appmenus-test");
            (int status, string output) = System.RunAsRoot("debian-12", "mkdir -p /usr/share/applications /usr/share/icons/hicolor/32x32/apps"
                + " && gm convert -size 32x32 gradient:yellow-navy /usr/share/icons/hicolor/32x32/apps/notes.png"
                + " && cat > /usr/share/applications/notes.desktop",
                "[Desktop Entry]\nType=Application\nName=Notes\nName[de]=Notizen\nComment=Write notes\nExec=touch /tmp/notes-started %F\nIcon=notes\n"
                + "Categories=Utility;TextEditor;Screensaver;\n[Desktop Action new]\nName=Injected\n");
            Assert.True(status == 0, output);
            Assert.Equal(0, System.Tool("qvm-shutdown", "--wait", "debian-12").Status);
        }

        public LoopbackSystem System { get; }

        public void Dispose() => System.Dispose();
    }

    private string Store => Path.Combine(_system.State, "dom0", "appmenus");

    private string Template(string qube, string entry) => Path.Combine(Store, qube, "apps.templates", entry + ".desktop");

    private string Menu(string qube, string entry) => Path.Combine(Store, qube, "apps", $"org.qubes-os.vm.{AppMenuStore.EscapeName(qube)}.{entry}.desktop");

    private string Sync(string qube, int expect = 0)
    {
        (int status, string output) = _system.Tool("qvm-sync-appmenus", qube);
        Assert.True(status == expect, $"qvm-sync-appmenus {qube}: exit {status}: {output}");
        return output;
    }

    [Fact]
    public void A_templates_menu_reaches_its_AppVMs_in_their_colours_and_starts_the_application()
    {
        Assert.Equal(0, _system.Tool("qvm-start", "debian-12").Status);
        Sync("debian-12");
        string template = File.ReadAllText(Template("debian-12", "notes"));
        Assert.Contains("\nName=%VMNAME%: Notes\n", template, StringComparison.Ordinal);
        Assert.Contains("\nCategories=Utility;TextEditor;X-Qubes-VM;\n", template, StringComparison.Ordinal);
        Assert.DoesNotContain("Injected", template, StringComparison.Ordinal);
        Assert.DoesNotContain("touch", template, StringComparison.Ordinal); // the qube's Exec is never dom0's command

        string work = File.ReadAllText(Menu("work", "notes"));
        Assert.Contains("\nName=work: Notes\n", work, StringComparison.Ordinal);
        Assert.Contains("\nExec=qvm-run -q -a --service -- work qubes.StartApp+notes\n", work, StringComparison.Ordinal);
        RgbaImage untinted = RgbaImage.LoadTrustedPng(Path.Combine(Store, "debian-12", "apps.tempicons", "notes.png"))!;
        Assert.Equal((32, 32), (untinted.Width, untinted.Height));
        Assert.Equal(untinted.Tint("0x3465a4"), RgbaImage.LoadTrustedPng(Path.Combine(Store, "work", "apps.icons", "notes.png")));
        Assert.Equal(untinted.Tint("0xedd400"), RgbaImage.LoadTrustedPng(Path.Combine(Store, "personal", "apps.icons", "notes.png")));

        (int status, string available) = _system.Tool("qvm-appmenus", "--get-available", "work");
        Assert.Equal(0, status);
        Assert.Contains("notes.desktop - Notes\n", available, StringComparison.Ordinal);

        // the menu's command, as the desktop would run it
        Assert.Equal(0, _system.Tool("qvm-run", "-q", "-a", "--service", "--", "work", "qubes.StartApp+notes").Status);
        Assert.True(LoopbackSystem.Eventually(() => _system.Run("work", "test -e /tmp/notes-started").Status == 0, 10_000), "Notes started in work");
        Assert.Equal(0, _system.Tool("qvm-shutdown", "--wait", "debian-12").Status);
    }

    [Fact]
    public void A_qube_that_pushes_its_menu_changes_its_own_entries_only()
    {
        (int status, string output) = _system.Run("untrusted",
            "printf 'evil.desktop:Name=Evil\\n/usr/share/applications/notes.desktop:Name=Hijacked\\n' | qrexec-client-vm dom0 qubes.SyncAppMenus");
        Assert.True(status == 0, output);
        Assert.Contains("Name=%VMNAME%: Evil", File.ReadAllText(Template("untrusted", "evil")), StringComparison.Ordinal);
        Assert.Contains("Name=%VMNAME%: Hijacked", File.ReadAllText(Template("untrusted", "notes")), StringComparison.Ordinal);
        Assert.False(File.Exists(Template("debian-12", "evil")));
        Assert.False(File.Exists(Template("work", "evil")));
        Assert.True(!File.Exists(Template("debian-12", "notes")) || !File.ReadAllText(Template("debian-12", "notes")).Contains("Hijacked", StringComparison.Ordinal));
    }

    [Fact]
    public void Hostile_images_are_refused_and_the_entry_keeps_no_icon_of_theirs()
    {
        foreach ((string name, string reply) in (ReadOnlySpan<(string, string)>)[
            ("huge", "printf '99999 99999\\n'; head -c 100000 /dev/zero"),
            ("wide", "printf '2049 1\\n'; head -c 8196 /dev/zero"),
            ("short", "printf '4 4\\n'; head -c 63 /dev/zero"),
            ("garbage", "printf 'P6\\n4 4\\n255\\n'; head -c 48 /dev/zero"),
            ("failing", "printf '1 1\\n'; printf 'abcd'; exit 3")])
        {
            (int status, string output) = _system.RunAsRoot("untrusted", "mkdir -p /usr/local/etc/qubes-rpc && cat > /usr/local/etc/qubes-rpc/qubes.GetImageRGBA"
                + " && chmod +x /usr/local/etc/qubes-rpc/qubes.GetImageRGBA && mkdir -p /home/user/.local/share/applications"
                + $" && printf '[Desktop Entry]\\nName=App\\nIcon={name}\\n' > /home/user/.local/share/applications/app.desktop && chown -R user /home/user/.local",
                $"#!/bin/sh\nread -r line\n{reply}\n");
            Assert.True(status == 0, output);
            string log = Sync("untrusted");
            Assert.Contains("Failed to get icon for app: ", log, StringComparison.Ordinal);
            Assert.Contains("\nIcon=%XDGICON%\n", File.ReadAllText(Template("untrusted", "app")), StringComparison.Ordinal);
            Assert.False(File.Exists(Path.Combine(Store, "untrusted", "apps.tempicons", "app.png")), name);
        }
        _system.RunAsRoot("untrusted", "rm -f /usr/local/etc/qubes-rpc/qubes.GetImageRGBA");
    }

    [Fact]
    public void A_list_over_the_line_limit_changes_nothing()
    {
        (int status, string output) = _system.RunAsRoot("personal", "mkdir -p /home/user/.local/share/applications"
            + " && printf '[Desktop Entry]\\nName=Kept\\n' > /home/user/.local/share/applications/kept.desktop && chown -R user /home/user/.local");
        Assert.True(status == 0, output);
        Sync("personal");
        string before = File.ReadAllText(Template("personal", "kept"));
        (status, output) = _system.RunAsRoot("personal", "mkdir -p /usr/local/etc/qubes-rpc && cat > /usr/local/etc/qubes-rpc/qubes.GetAppmenus && chmod +x /usr/local/etc/qubes-rpc/qubes.GetAppmenus",
            "#!/bin/sh\nyes 'flood.desktop:Name=Flood' | head -n 100000\n");
        Assert.True(status == 0, output);
        string log = Sync("personal", expect: 1);
        Assert.Contains("Line count limit exceeded", log, StringComparison.Ordinal);
        Assert.Equal(before, File.ReadAllText(Template("personal", "kept")));
        Assert.False(File.Exists(Template("personal", "flood")));
        _system.RunAsRoot("personal", "rm -f /usr/local/etc/qubes-rpc/qubes.GetAppmenus");
    }
}
