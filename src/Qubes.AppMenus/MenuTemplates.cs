namespace Qubes.AppMenus;

/// <summary>
/// dom0's own menu files, with the placeholders <c>%VMNAME%</c>, <c>%VMDIR%</c> and <c>%XDGICON%</c>
/// that <see cref="AppMenuStore"/> fills per qube: the start entry of qubes that are not AppVMs,
/// the qube's settings entry and the menu's directory file.
/// </summary>
internal static class MenuTemplates
{
    public const string QubesStart = """
        [Desktop Entry]
        Version=1.0
        Type=Application
        Exec=qvm-start --quiet --tray %VMNAME%
        Icon=%XDGICON%
        Terminal=false
        Name=%VMNAME%: Start
        GenericName=%VMNAME%: Start
        StartupNotify=false
        Categories=System;X-Qubes-VM;

        """;

    public const string Settings = """
        [Desktop Entry]
        Version=1.0
        Type=Application
        Exec=qubes-vm-settings %VMNAME%
        Icon=qubes-vm-settings
        Terminal=false
        Name=%VMNAME%: Qube Settings
        GenericName=%VMNAME%: Qube Settings
        StartupNotify=false
        Categories=System;X-Qubes-VM;

        """;

    /// <summary>The directory file of a qube's submenu, by kind of qube (upstream's names for the kinds).</summary>
    public static string Directory(string kind) => kind switch
    {
        "dispvm" => Entry("Disposable: %VMNAME%", "Disposable"),
        "templatedispvm" => Entry("Disposable template: %VMNAME%", "Disposable template"),
        "templatevm" => Entry("Template: %VMNAME%", "Template"),
        "servicevm" => Entry("Service: %VMNAME%", "Service"),
        _ => Entry("%VMNAME%", "Qube"),
    };

    private static string Entry(string name, string comment) => $"""
        [Desktop Entry]
        Encoding=UTF-8
        Type=Directory
        Name={name}
        Comment={comment}
        Icon=%XDGICON%
        X-Qubes-VmName=%VMNAME%

        """;
}
