using System;
using System.Collections.Generic;

namespace Qubes.Core;

/// <summary>The global properties of <c>qubes-prefs</c> (spec core-stack §4), all at load stage 3.</summary>
internal static class GlobalProperties
{
    internal static IReadOnlyDictionary<string, Property<QubesApp>> All { get; } = Build();

    private static Dictionary<string, Property<QubesApp>> Build()
    {
        Dictionary<string, Property<QubesApp>> all = new(StringComparer.Ordinal);
        void Add(Property<QubesApp> p) => all.Add(p.Name, p);
        Add(new("check_updates_vm", PropertyType.Bool, 3) { Default = _ => true, Setter = (_, v) => PropertyCatalog.Bool(v), Help = "Check for updates inside qubes." });
        Add(new("clockvm", PropertyType.Vm, 3) { Default = _ => null, Setter = AnyVm, Help = "Which VM to use as NTP proxy for updating AdminVM." });
        Add(new("default_audiovm", PropertyType.Vm, 3) { Default = _ => "dom0", Setter = AnyVm, Help = "Default AudioVM for VMs." });
        Add(new("default_dispvm", PropertyType.Vm, 3) { Default = _ => null, Setter = DispVmTemplate("default_dispvm"), Help = "Default DispVM base for service calls." });
        Add(new("default_guivm", PropertyType.Vm, 3) { Default = _ => "dom0", Setter = AnyVm, Help = "Default GuiVM for VMs." });
        Add(new("default_kernel", PropertyType.Str, 3) { Help = "Which kernel to use when not overriden in VM." });
        Add(new("default_netvm", PropertyType.Vm, 3) { Default = _ => null, Setter = AnyVm, Help = "Default NetVM for AppVMs. Initial state is None, which means that AppVMs are not connected to the Internet." });
        Add(new("default_pool", PropertyType.Str, 3) { Default = _ => "varlibqubes", Help = "Default storage pool." });
        Add(new("default_pool_kernel", PropertyType.Str, 3) { Default = app => app.Global("default_pool"), Help = "Default storage pool for kernel volumes." });
        Add(new("default_pool_private", PropertyType.Str, 3) { Default = app => app.Global("default_pool"), Help = "Default storage pool for private volumes." });
        Add(new("default_pool_root", PropertyType.Str, 3) { Default = app => app.Global("default_pool"), Help = "Default storage pool for root volumes." });
        Add(new("default_pool_volatile", PropertyType.Str, 3) { Default = app => app.Global("default_pool"), Help = "Default storage pool for volatile volumes." });
        Add(new("default_qrexec_timeout", PropertyType.Int, 3) { Default = _ => 60, Setter = (_, v) => PropertyCatalog.Int(v), Help = "Default time in seconds after which qrexec connection attempt is deemed failed." });
        Add(new("default_shutdown_timeout", PropertyType.Int, 3) { Default = _ => 60, Setter = (_, v) => PropertyCatalog.Int(v), Help = "Default time in seconds for VM shutdown to complete." });
        Add(new("default_template", PropertyType.Vm, 3) { Setter = DefaultTemplate, Help = "Default template for new AppVMs." });
        Add(new("management_dispvm", PropertyType.Vm, 3) { Default = _ => null, Setter = DispVmTemplate("management_dispvm"), Help = "Default DispVM base for managing VMs." });
        Add(new("maxmem", PropertyType.Int, 3) { ReadOnly = true, Default = _ => HostMemoryMiB(), Help = "Maximum memory of the host, in MiB." });
        Add(new("no_cpus", PropertyType.Int, 3) { ReadOnly = true, Default = _ => Environment.ProcessorCount, Help = "Number of available CPUs." });
        Add(new("stats_interval", PropertyType.Int, 3) { Default = _ => 3, Setter = (_, v) => PropertyCatalog.Int(v), Help = "Interval in seconds for VM stats reporting (memory, CPU usage)." });
        Add(new("updatevm", PropertyType.Vm, 3) { Default = _ => null, Setter = AnyVm, Help = "Which VM to use as `yum` proxy for updating AdminVM and TemplateVMs." });
        return all;
    }

    private static object? AnyVm(QubesApp app, object? value) => app.VmValue(PropertyCatalog.Str(value))?.Name ?? string.Empty;

    private static Func<QubesApp, object?, object?> DispVmTemplate(string property)
        => (app, value) => app.DispVmTemplateValue(PropertyCatalog.Str(value), "system", property);

    private static object? DefaultTemplate(QubesApp app, object? value)
    {
        Qube? target = app.VmValue(PropertyCatalog.Str(value));
        if (target != null && target.Class != "TemplateVM")
        {
            throw QubesException.PropertyValue($"wrong VM class: expected TemplateVM, got {target.Class}");
        }
        return target?.Name ?? string.Empty;
    }

    private static int HostMemoryMiB()
    {
        foreach (string line in System.IO.File.ReadLines("/proc/meminfo"))
        {
            if (line.StartsWith("MemTotal:", StringComparison.Ordinal))
            {
                string kib = line["MemTotal:".Length..].Trim().Split(' ')[0];
                return (int)(long.Parse(kib, System.Globalization.CultureInfo.InvariantCulture) / 1024);
            }
        }
        return 0;
    }
}
