using System;
using System.Collections.Generic;
using System.Diagnostics;
using System.IO;
using System.Linq;
using System.Text;

namespace Qubes.AppMenus;

/// <summary>
/// dom0's store of application menus, one directory per qube under <see cref="BaseDirectory"/>, as
/// upstream's <c>qvm-appmenus</c> lays it out:
/// <code>
///   NAME/apps.templates/APP.desktop      entries made from what the qube sent (placeholders kept)
///   NAME/apps.tempicons/APP.png          icons it sent, untinted
///   NAME/apps/org.qubes-os.vm._ESC.APP.desktop, the directory and settings files: the menu
///   NAME/apps.icons/APP.png              icons in the qube's label colour
///   NAME/whitelisted-appmenus.list       the menu's entries when no menu-items feature names them
/// </code>
/// An AppVM's menu comes from its own templates and its template's, so a template's entries reach
/// every qube based on it. Nothing the qube sent is written but checked values in dom0's own format
/// (spec rpc-services §2.5, §2.6).
/// </summary>
public sealed class AppMenuStore(string baseDirectory, IMenuQubes qubes, TextWriter log)
{
    private const string TemplatesSubdir = "apps.templates";
    private const string TemplateIconsSubdir = "apps.tempicons";
    private const string MenuSubdir = "apps";
    private const string IconsSubdir = "apps.icons";
    private const string WhitelistFile = "whitelisted-appmenus.list";
    private const string VmPrefix = "org.qubes-os.vm";
    private const string DispvmPrefix = "org.qubes-os.dispvm";
    private const string SettingsPrefix = "org.qubes-os.qubes-vm-settings";

    /// <summary>The entry name a qube may not send: non-AppVMs get dom0's own start entry by it.</summary>
    public const string StartEntry = "qubes-start";

    public string BaseDirectory { get; } = Path.GetFullPath(baseDirectory);

    /// <summary>Informational messages go to the log too (upstream's <c>--verbose</c>).</summary>
    public bool Verbose { get; init; }

    /// <summary>Whether to register the menu files with the desktop (<c>xdg-desktop-menu</c>), as a real dom0 does.</summary>
    public bool RegisterWithDesktop { get; init; }

    public string QubeDirectory(string qube) => Path.Combine(BaseDirectory, qube);

    public string TemplatesDirectory(string qube) => Path.Combine(BaseDirectory, qube, TemplatesSubdir);

    public string TemplateIconsDirectory(string qube) => Path.Combine(BaseDirectory, qube, TemplateIconsSubdir);

    public string MenuDirectory(string qube) => Path.Combine(BaseDirectory, qube, MenuSubdir);

    public string IconsDirectory(string qube) => Path.Combine(BaseDirectory, qube, IconsSubdir);

    public string WhitelistPath(string qube) => Path.Combine(BaseDirectory, qube, WhitelistFile);

    /// <summary>A qube's name as it appears in file names: <c>_</c> then <c>_</c>, <c>-</c>, <c>.</c> as <c>_u</c>, <c>_d</c>, <c>_p</c>.</summary>
    public static string EscapeName(string qube) => "_" + qube.Replace("_", "_u", StringComparison.Ordinal)
        .Replace("-", "_d", StringComparison.Ordinal).Replace(".", "_p", StringComparison.Ordinal);

    /// <summary>The menu file of an entry: <c>org.qubes-os.vm._ESC.APP.desktop</c> (<c>org.qubes-os.dispvm</c> for disposables).</summary>
    public static string MenuFileName(string qube, string templateFile, bool dispvm)
        => $"{(dispvm ? DispvmPrefix : VmPrefix)}.{EscapeName(qube)}.{templateFile}";

    private void Info(string message)
    {
        if (Verbose)
        {
            log.WriteLine(message);
        }
    }

    private void Warning(string message) => log.WriteLine(message);

    // ---- what a qube sent: its entries' templates and icons (§2.5, §2.6) ----

    /// <summary>
    /// Replaces the templates of <paramref name="vm"/> by <paramref name="entries"/>: each written in
    /// dom0's own format (only when it changes), its icon fetched through <paramref name="fetchIcon"/>
    /// (stored untinted when it differs), and the templates of entries no longer sent removed.
    /// </summary>
    public void ReceiveEntries(MenuQube vm, IReadOnlyList<MenuEntry> entries, Func<string, RgbaImage.ReadResult> fetchIcon)
    {
        ArgumentNullException.ThrowIfNull(vm);
        ArgumentNullException.ThrowIfNull(entries);
        ArgumentNullException.ThrowIfNull(fetchIcon);
        bool legacy = !string.IsNullOrEmpty(qubes.FeatureWithTemplate(vm.Name, "appmenus-legacy"));
        string templates = TemplatesDirectory(vm.Name), icons = TemplateIconsDirectory(vm.Name);
        Directory.CreateDirectory(templates);
        Directory.CreateDirectory(icons);
        bool hasStart = vm.Class != "AppVM";
        string startFile = Path.Combine(templates, StartEntry + ".desktop");
        if (hasStart && !File.Exists(startFile))
        {
            Info("Creating Start");
            WriteIfChanged(startFile, MenuTemplates.QubesStart);
        }
        HashSet<string> sent = new(StringComparer.Ordinal);
        foreach (MenuEntry entry in entries)
        {
            if (entry.Name == StartEntry)
            {
                continue;
            }
            sent.Add(entry.Name);
            string path = Path.Combine(templates, entry.Name + ".desktop");
            Info((File.Exists(path) ? "Updating " : "Creating ") + entry.Name);
            Dictionary<string, string> values = new(entry.Values, StringComparer.Ordinal);
            if (values.TryGetValue("Icon", out string? icon))
            {
                string stored = Path.Combine(icons, entry.Name + ".png");
                RgbaImage.ReadResult got = fetchIcon(icon.StartsWith('/') ? icon : "xdgicon:" + icon);
                if (got.Image is { } image)
                {
                    byte[] png = image.EncodePng();
                    if (!File.Exists(stored) || !File.ReadAllBytes(stored).AsSpan().SequenceEqual(png))
                    {
                        AtomicFile.Write(stored, png);
                    }
                }
                else
                {
                    Warning($"Failed to get icon for {entry.Name}: {got.Error}");
                    if (File.Exists(stored))
                    {
                        Warning("Found old icon, using it instead");
                    }
                    else
                    {
                        values.Remove("Icon");
                    }
                }
            }
            if (DesktopTemplate(path, entry.Name, values, legacy) is { } content)
            {
                WriteIfChanged(path, content);
            }
        }
        foreach (string file in Directory.GetFiles(templates, "*.desktop"))
        {
            string name = Path.GetFileName(file);
            if ((hasStart && name == StartEntry + ".desktop") || sent.Contains(name[..^".desktop".Length]))
            {
                continue;
            }
            Info("Removing " + name);
            File.Delete(file);
        }
    }

    /// <summary>The template of one entry, or null (with a warning) when a required key is missing.</summary>
    internal string? DesktopTemplate(string path, string name, Dictionary<string, string> values, bool legacy)
    {
        foreach (string key in legacy ? ["Name", "Exec"] : (string[])["Name"])
        {
            if (!values.ContainsKey(key))
            {
                Warning($"Warning: not creating/updating '{path}' because of missing '{key}' key");
                return null;
            }
        }
        StringBuilder d = new();
        d.Append("[Desktop Entry]\nVersion=1.0\nType=Application\nTerminal=false\n");
        d.Append("X-Qubes-VmName=%VMNAME%\n");
        d.Append("X-Qubes-AppName=").Append(name).Append('\n');
        d.Append(values.ContainsKey("Icon") ? $"Icon=%VMDIR%/{IconsSubdir}/{name}.png\n" : "Icon=%XDGICON%\n");
        foreach (string key in (ReadOnlySpan<string>)["Name", "GenericName"])
        {
            if (values.TryGetValue(key, out string? value))
            {
                d.Append(key).Append("=%VMNAME%: ").Append(value).Append('\n');
            }
        }
        if (values.TryGetValue("StartupWMClass", out string? wmClass))
        {
            d.Append("StartupWMClass=%VMNAME%:").Append(wmClass).Append('\n');
        }
        if (values.TryGetValue("Comment", out string? comment))
        {
            d.Append("Comment=").Append(comment).Append('\n');
        }
        d.Append("Categories=").Append(values.GetValueOrDefault("Categories", "")).Append("X-Qubes-VM;\n");
        if (legacy)
        {
            string exec = ShellQuote(values["Exec"]);
            d.Append("Exec=qvm-run -q -a %VMNAME% -- ").Append(exec).Append('\n');
            d.Append("X-Qubes-DispvmExec=qvm-run -q -a --dispvm=%VMNAME% -- ").Append(exec).Append('\n');
        }
        else
        {
            // the name is [a-zA-Z0-9._-]+: no space, ';' or '%' can change the command
            Debug.Assert(name.All(MenuText.IsNameChar));
            d.Append("Exec=qvm-run -q -a --service -- %VMNAME% qubes.StartApp+").Append(name).Append('\n');
            d.Append("X-Qubes-DispvmExec=qvm-run -q -a --service --dispvm=%VMNAME% -- qubes.StartApp+").Append(name).Append('\n');
        }
        return d.ToString();
    }

    /// <summary>A word for the shell, as Python's <c>shlex.quote</c> makes it.</summary>
    internal static string ShellQuote(string word)
    {
        if (word.Length == 0)
        {
            return "''";
        }
        return word.All(static c => char.IsAsciiLetterOrDigit(c) || "_@%+=:,./-".Contains(c))
            ? word : "'" + word.Replace("'", "'\"'\"'", StringComparison.Ordinal) + "'";
    }

    // ---- the menus dom0 makes of them ----

    /// <summary>The templates directories a qube's menu comes from: its own, then its template's, up the chain.</summary>
    public List<string> TemplatesDirectories(MenuQube vm, MenuQube? template = null)
    {
        List<string> dirs = [TemplatesDirectory(vm.Name)];
        MenuQube? next = template ?? (vm.Template != null ? qubes.Get(vm.Template) : null);
        for (int depth = 0; next != null && depth < 8; depth++)
        {
            dirs.Add(TemplatesDirectory(next.Name));
            next = next.Template != null ? qubes.Get(next.Template) : null;
        }
        return dirs;
    }

    private List<string> TemplateIconsDirectories(MenuQube vm)
        => TemplatesDirectories(vm).Select(static d => Path.Combine(Path.GetDirectoryName(d)!, TemplateIconsSubdir)).ToList();

    /// <summary>The template files available to a qube's menu, each name once (its own first).</summary>
    public List<string> AvailableFiles(MenuQube vm, MenuQube? template = null)
    {
        List<string> files = [];
        HashSet<string> listed = new(StringComparer.Ordinal);
        foreach (string dir in TemplatesDirectories(vm, template).Where(Directory.Exists))
        {
            foreach (string file in Directory.GetFiles(dir).Order(StringComparer.Ordinal))
            {
                if (listed.Add(Path.GetFileName(file)))
                {
                    files.Add(file);
                }
            }
        }
        return files;
    }

    /// <summary><c>--get-available</c>: each available entry's file name and name, then the asked fields' values.</summary>
    public IEnumerable<string[]> Available(MenuQube vm, IReadOnlyList<string>? fields, MenuQube? template = null)
    {
        foreach (string file in AvailableFiles(vm, template))
        {
            string? name = null;
            Dictionary<string, string> found = new(StringComparer.Ordinal);
            bool main = false;
            foreach (string line in File.ReadLines(file))
            {
                if (line.StartsWith('['))
                {
                    main = line == "[Desktop Entry]";
                    continue;
                }
                if (!main || !line.Contains('=', StringComparison.Ordinal))
                {
                    continue;
                }
                if (line.StartsWith("Name=%VMNAME%: ", StringComparison.Ordinal))
                {
                    name = line["Name=%VMNAME%: ".Length..].Trim();
                    if (fields == null || fields.Count == 0)
                    {
                        break;
                    }
                }
                if (fields is { Count: > 0 })
                {
                    int eq = line.IndexOf('=', StringComparison.Ordinal);
                    string key = line[..eq].Trim();
                    if (fields.Contains(key))
                    {
                        found[key] = line[(eq + 1)..].Trim();
                    }
                }
            }
            if (name == null)
            {
                continue;
            }
            List<string> result = [Path.GetFileName(file), name];
            foreach (string field in fields ?? [])
            {
                result.Add(found.GetValueOrDefault(field, ""));
            }
            yield return [.. result];
        }
    }

    /// <summary>The entries chosen for a qube's menu: its <c>menu-items</c> feature, else its whitelist file; null when neither is set.</summary>
    public List<string>? Whitelist(MenuQube vm)
    {
        if (vm.Feature("menu-items") is { } items)
        {
            return items.Split(' ').Select(static s => s.Trim()).Where(static s => s.Length > 0).ToList();
        }
        string path = WhitelistPath(vm.Name);
        return File.Exists(path) ? File.ReadAllLines(path).Select(static s => s.Trim()).Where(static s => s.Length > 0).ToList() : null;
    }

    /// <summary><c>--init</c>: the qube's directory; a qube without a template gets its start entry; with <paramref name="source"/> its templates, icons and lists are copied.</summary>
    public void Init(MenuQube vm, MenuQube? source)
    {
        string own = QubeDirectory(vm.Name);
        Directory.CreateDirectory(own);
        bool cloning = source != null;
        MenuQube? src = source ?? (vm.Template != null ? qubes.Get(vm.Template) : null);
        if (src == null)
        {
            Directory.CreateDirectory(TemplatesDirectory(vm.Name));
            Directory.CreateDirectory(TemplateIconsDirectory(vm.Name));
            Info("Creating appmenus directory: " + TemplatesDirectory(vm.Name));
            WriteIfChanged(Path.Combine(TemplatesDirectory(vm.Name), StartEntry + ".desktop"), MenuTemplates.QubesStart);
        }
        string sourceList = Path.Combine(own, "vm-" + WhitelistFile);
        if (src != null && (src.Feature("default-menu-items") != null || File.Exists(sourceList)) && vm.Feature("menu-items") == null)
        {
            Info($"Creating default whitelisted apps list: {own}/{WhitelistFile}");
            qubes.SetFeature(vm.Name, "menu-items", src.Feature("default-menu-items")
                ?? string.Join(' ', File.ReadAllLines(sourceList).Select(static l => l.TrimEnd())));
        }
        if (!cloning)
        {
            return;
        }
        foreach (string prefix in (ReadOnlySpan<string>)["", "vm-", "netvm-"])
        {
            string list = Path.Combine(own, prefix + WhitelistFile);
            if (File.Exists(list) && vm.Feature(prefix + "menu-items") == null)
            {
                Info("Copying whitelisted apps list: " + prefix + WhitelistFile);
                qubes.SetFeature(vm.Name, prefix + "menu-items", string.Join(' ', File.ReadAllLines(list).Select(static l => l.TrimEnd())));
            }
        }
        Info("Creating/copying appmenus templates");
        CopyFiles(TemplatesDirectory(src!.Name), TemplatesDirectory(vm.Name));
        CopyFiles(TemplateIconsDirectory(src.Name), TemplateIconsDirectory(vm.Name));
    }

    private static void CopyFiles(string from, string to)
    {
        if (!Directory.Exists(from))
        {
            return;
        }
        Directory.CreateDirectory(to);
        foreach (string file in Directory.GetFiles(from))
        {
            File.Copy(file, Path.Combine(to, Path.GetFileName(file)), overwrite: true);
        }
    }

    /// <summary><c>--update</c>: the qube's icons and menu, then, for a template, those of every qube based on it.</summary>
    public void Update(MenuQube vm, bool force)
    {
        ArgumentNullException.ThrowIfNull(vm);
        if (!Directory.Exists(QubeDirectory(vm.Name)))
        {
            Init(vm, null);
        }
        CreateIcons(vm, force);
        CreateMenu(vm, force);
        foreach (MenuQube child in qubes.All().Where(q => q.Template == vm.Name))
        {
            try
            {
                CreateIcons(child, force);
                CreateMenu(child, force: false);
            }
            catch (Exception e) when (e is IOException or UnauthorizedAccessException or InvalidOperationException)
            {
                log.WriteLine($"Failed to recreate appmenus for '{child.Name}': {e.Message}");
            }
        }
        Desktop("forceupdate");
    }

    private static bool Skipped(MenuQube vm) => !string.IsNullOrEmpty(vm.Feature("internal")) || (vm.Class == "DispVM" && vm.AutoCleanup);

    /// <summary>The qube's icons in its label's colour, for the entries of its menu; others removed.</summary>
    public void CreateIcons(MenuQube vm, bool force)
    {
        if (Skipped(vm))
        {
            return;
        }
        List<string> sources = TemplateIconsDirectories(vm);
        string destination = IconsDirectory(vm.Name);
        if (File.Exists(destination))
        {
            File.Delete(destination);
        }
        Directory.CreateDirectory(destination);
        List<string> expected = Whitelist(vm) is { } list
            ? list.Select(static x => Path.GetFileNameWithoutExtension(x) + ".png").ToList()
            : sources.Where(Directory.Exists).SelectMany(static d => Directory.GetFiles(d)).Select(static f => Path.GetFileName(f)).ToList();
        foreach (string icon in expected)
        {
            string? source = sources.Select(d => Path.Combine(d, icon)).FirstOrDefault(File.Exists);
            if (source == null)
            {
                continue;
            }
            string target = Path.Combine(destination, icon);
            if (force || !File.Exists(target) || File.GetLastWriteTimeUtc(source) > File.GetLastWriteTimeUtc(target))
            {
                RgbaImage image = RgbaImage.LoadTrustedPng(source) ?? throw new InvalidOperationException($"cannot read the stored icon {source}");
                AtomicFile.Write(target, image.Tint(vm.LabelColour).EncodePng());
            }
        }
        foreach (string file in Directory.GetFiles(destination))
        {
            if (!expected.Contains(Path.GetFileName(file)))
            {
                File.Delete(file);
            }
        }
    }

    /// <summary>The qube's menu files (and its disposables' when it is a disposable template with the <c>appmenus-dispvm</c> feature).</summary>
    public void CreateMenu(MenuQube vm, bool force)
    {
        if (Skipped(vm))
        {
            return;
        }
        Info("Creating appmenus");
        bool dispvm = vm.TemplateForDispvms && !string.IsNullOrEmpty(vm.Feature("appmenus-dispvm"));
        CreateMenu(vm, force, dispvm: false, keepDispvm: dispvm);
        if (dispvm)
        {
            CreateMenu(vm, force, dispvm: true, keepDispvm: false);
        }
    }

    private string DirectoryFile(MenuQube vm, bool dispvm)
        => Path.Combine(MenuDirectory(vm.Name), (dispvm ? "qubes-dispvm-directory" : "qubes-vm-directory") + EscapeName(vm.Name) + ".directory");

    private void CreateMenu(MenuQube vm, bool force, bool dispvm, bool keepDispvm)
    {
        string menu = MenuDirectory(vm.Name);
        Directory.CreateDirectory(menu);
        string directoryFile = DirectoryFile(vm, dispvm);
        string kind = dispvm ? "dispvm" : vm.TemplateForDispvms ? "templatedispvm" : vm.Class == "TemplateVM" ? "templatevm" : vm.ProvidesNetwork ? "servicevm" : "vm";
        bool directoryChanged = WriteMenuFile(vm, MenuTemplates.Directory(kind), directoryFile, dispvm) == true;
        List<string> available = AvailableFiles(vm);
        if (Whitelist(vm) is { } chosen)
        {
            available = available.Where(f => chosen.Contains(Path.GetFileName(f))).ToList();
        }
        List<string> changed = [];
        List<string> target = [];
        foreach (string file in available)
        {
            string name = MenuFileName(vm.Name, Path.GetFileName(file), dispvm);
            target.Add(name);
            string path = Path.Combine(menu, name);
            switch (WriteMenuFile(vm, File.ReadAllText(file), path, dispvm))
            {
                case true:
                    changed.Add(path);
                    break;
                case null:
                    File.Delete(path); // an entry that cannot start in a disposable
                    break;
            }
        }
        if (!dispvm)
        {
            string settings = $"{SettingsPrefix}.{EscapeName(vm.Name)}.desktop";
            target.Add(settings);
            if (WriteMenuFile(vm, MenuTemplates.Settings, Path.Combine(menu, settings), dispvm: false) == true)
            {
                changed.Add(Path.Combine(menu, settings));
            }
        }
        IEnumerable<string> remove = Directory.GetFiles(menu).Select(static f => Path.GetFileName(f)).Where(f => f != Path.GetFileName(directoryFile) && !target.Contains(f));
        if (keepDispvm)
        {
            remove = remove.Where(static f => !f.StartsWith(DispvmPrefix, StringComparison.Ordinal) && !f.StartsWith("qubes-dispvm-directory_", StringComparison.Ordinal));
        }
        else if (dispvm)
        {
            remove = remove.Where(static f => !f.StartsWith(VmPrefix, StringComparison.Ordinal) && !f.StartsWith("qubes-vm-directory_", StringComparison.Ordinal)
                && !f.StartsWith(SettingsPrefix, StringComparison.Ordinal));
        }
        List<string> removed = remove.Select(f => Path.Combine(menu, f)).ToList();
        if (removed.Count > 0)
        {
            Desktop("uninstall", removed);
        }
        foreach (string file in removed)
        {
            Warning($"Removing appmenu '{file}'");
            File.Delete(file);
        }
        if (force || directoryChanged || changed.Count > 0)
        {
            List<string> install = (directoryChanged && changed.Count == 0) || force ? target.Select(t => Path.Combine(menu, t)).ToList() : changed;
            if (install.Count > 0)
            {
                Desktop("install", [directoryFile, .. install]);
            }
        }
    }

    /// <summary>
    /// Fills a template for the qube and writes it where it differs: true when written, false when it
    /// was current, null when a disposable cannot start the entry (it has an Exec but no disposable one).
    /// </summary>
    private bool? WriteMenuFile(MenuQube vm, string template, string path, bool dispvm)
    {
        string icon = vm.Icon;
        if (dispvm)
        {
            if (!template.Contains("\nX-Qubes-DispvmExec=", StringComparison.Ordinal) && template.Contains("\nExec=", StringComparison.Ordinal))
            {
                return null;
            }
            template = template.Replace("\nExec=", "\nX-Qubes-NonDispvmExec=", StringComparison.Ordinal)
                .Replace("\nX-Qubes-DispvmExec=", "\nExec=", StringComparison.Ordinal)
                .Replace("\nName=%VMNAME%", "\nName=%VMNAME% (dvm)", StringComparison.Ordinal);
            icon = "dispvm-" + vm.LabelName;
        }
        string data = template.Replace("%VMNAME%", vm.Name, StringComparison.Ordinal)
            .Replace("%VMDIR%", QubeDirectory(vm.Name), StringComparison.Ordinal)
            .Replace("%XDGICON%", icon, StringComparison.Ordinal);
        return WriteIfChanged(path, data);
    }

    /// <summary><c>--remove</c>: the qube's menu, icons and whole directory (the qube may be gone already).</summary>
    public void Remove(string qube)
    {
        string menu = MenuDirectory(qube);
        if (Directory.Exists(menu))
        {
            Info("Removing appmenus");
            List<string> installed = Directory.GetFiles(menu).ToList();
            if (installed.Count > 0)
            {
                Desktop("uninstall", installed);
            }
        }
        if (Directory.Exists(QubeDirectory(qube)))
        {
            Directory.Delete(QubeDirectory(qube), recursive: true);
        }
    }

    private static bool WriteIfChanged(string path, string content)
    {
        if (File.Exists(path) && File.ReadAllText(path) == content)
        {
            return false;
        }
        AtomicFile.Write(path, Encoding.UTF8.GetBytes(content));
        return true;
    }

    /// <summary>Registers files with the desktop's menu on a real dom0 (<c>xdg-desktop-menu</c>, C collation, as upstream).</summary>
    private void Desktop(string verb, IEnumerable<string>? files = null)
    {
        if (!RegisterWithDesktop)
        {
            return;
        }
        ProcessStartInfo start = new("xdg-desktop-menu") { UseShellExecute = false };
        start.ArgumentList.Add(verb);
        if (verb != "forceupdate")
        {
            start.ArgumentList.Add("--noupdate");
        }
        foreach (string file in files ?? [])
        {
            start.ArgumentList.Add(file);
        }
        start.Environment["LC_COLLATE"] = "C";
        try
        {
            using Process? p = Process.Start(start);
            p?.WaitForExit();
            if (p is { ExitCode: not 0 })
            {
                Warning($"Problem {(verb == "uninstall" ? "removing" : "creating")} appmenus");
            }
        }
        catch (System.ComponentModel.Win32Exception e)
        {
            Warning($"xdg-desktop-menu: {e.Message}");
        }
    }
}
