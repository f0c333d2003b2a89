using System;
using System.Collections.Generic;
using System.Globalization;
using System.Linq;

namespace Qubes.Core;

/// <summary>
/// Every qube property of every class (spec core-stack §3.3, §3.5), with its default and checks.
/// Defaults are computed on each read: a template-based qube follows its template, the others the
/// global value.
/// </summary>
internal static class PropertyCatalog
{
    /// <summary>The classes, as <c>admin.vmclass.List</c> names them.</summary>
    internal static string[] Classes { get; } = ["AdminVM", "AppVM", "TemplateVM", "StandaloneVM", "DispVM", "RemoteVM"];

    private static readonly string[] s_qubesVm = ["AppVM", "TemplateVM", "StandaloneVM", "DispVM"];
    private static readonly Dictionary<string, Dictionary<string, Property<Qube>>> s_byClass = Build();

    internal static IReadOnlyDictionary<string, Property<Qube>> For(string klass)
        => s_byClass.TryGetValue(klass, out Dictionary<string, Property<Qube>>? properties)
            ? properties
            : throw new QubesException("QubesException", $"no such VM class: '{klass}'");

    private static Dictionary<string, Dictionary<string, Property<Qube>>> Build()
    {
        Dictionary<string, Dictionary<string, Property<Qube>>> byClass = [];
        foreach (string klass in Classes)
        {
            byClass[klass] = new Dictionary<string, Property<Qube>>(StringComparer.Ordinal);
        }
        void Add(Property<Qube> p, params string[] classes)
        {
            foreach (string klass in classes.Length == 0 ? Classes : classes)
            {
                byClass[klass][p.Name] = p;
            }
        }
        string[] q = s_qubesVm;
        string[] adminAndQ = ["AdminVM", .. q];

        // identity (all classes)
        Add(new("name", PropertyType.Str) { WriteOnce = true, Clone = false, Setter = (_, v) => { VmName.Validate(Str(v)); return v; }, Help = "User-specified name of the domain." });
        Add(new("qid", PropertyType.Int) { WriteOnce = true, Clone = false, Setter = (_, v) => Range(Int(v), 0, 10000, "qid"), Help = "Internal, persistent identificator of particular domain." });
        Add(new("uuid", PropertyType.Str) { WriteOnce = true, Clone = false, Setter = (_, v) => ParseUuid(Str(v)), Help = "UUID from libvirt." });
        Add(new("klass", PropertyType.Str) { ReadOnly = true, Clone = false, Default = vm => vm.Class, Help = "Domain class name." });
        Add(new("label", PropertyType.Label) { Setter = (vm, v) => v is Label l ? l : Core.Label.Find(vm.App.Labels, Str(v)), Help = "Colourful label assigned to VM. This is where the colour of the padlock is set." });
        Add(new("icon", PropertyType.Str) { ReadOnly = true, Clone = false, Default = Icon, Help = "freedesktop icon name, suitable for use in PyQt4.QtGui.QIcon.fromTheme()" });
        Add(new("include_in_backups", PropertyType.Bool) { Default = vm => vm.Class == "DispVM" ? !(bool)vm.Properties.Get("auto_cleanup")! : vm.Class != "RemoteVM", Setter = (_, v) => Bool(v), Help = "If this domain is to be included in default backup." });

        // dom0 and the QubesVM classes
        Add(new("default_dispvm", PropertyType.Vm, 4) { Default = vm => vm.Class == "DispVM" ? vm.Properties.GetOrDefault("template") : vm.App.Global("default_dispvm"), Setter = DispVmTemplate("default_dispvm"), Help = "Default VM to be used as Disposable VM for service calls." }, adminAndQ);
        Add(new("updateable", PropertyType.Bool) { ReadOnly = true, Default = vm => !vm.Has("template"), Help = "True if this machine may be updated on its own." }, adminAndQ);
        Add(new("maxmem", PropertyType.Int) { Default = vm => vm.IsAdmin ? 4096 : TemplateOr(vm, "maxmem", v => Math.Min((int)v.Properties.Get("memory")! * 10, 4000)), Setter = (vm, v) => vm.IsAdmin ? throw ReadOnly(vm, "maxmem") : NonNegative(Int(v), "maxmem"), Help = "Maximum amount of memory available for this VM (for the purpose of the memory balancer)." }, adminAndQ);
        Add(new("devices_denied", PropertyType.Str) { Default = _ => string.Empty, Setter = (_, v) => DevicesDenied(Str(v)), Help = "List of device interface codes the qube is denied." }, adminAndQ);
        Add(new("keyboard_layout", PropertyType.Str) { Default = vm => vm.IsAdmin ? "us++" : vm.Ref("guivm") is { } gui && gui != vm ? gui.Properties.Get("keyboard_layout") : "us++", Setter = (_, v) => KeyboardLayout(Str(v)), Help = "Keyboard layout for this VM." }, adminAndQ);

        // the QubesVM classes
        Add(new("netvm", PropertyType.Vm, 4) { Default = vm => vm.Class == "TemplateVM" ? null : vm.App.Global("default_netvm"), Setter = NetVm, Help = "VM that provides network connection to this domain. When empty, the domain has no network." }, q);
        Add(new("provides_network", PropertyType.Bool) { Default = _ => false, Setter = (_, v) => Bool(v), Help = "If this domain can act as network provider (formerly known as NetVM or ProxyVM)." }, q);
        Add(new("ip", PropertyType.Str) { Default = vm => vm.Ref("netvm") != null ? Address(vm) : null, Help = "IP address of this domain." }, q);
        Add(new("ip6", PropertyType.Str) { Default = _ => null, Help = "IPv6 address of this domain." }, q);
        Add(new("mac", PropertyType.Str) { Default = _ => "00:16:3e:5e:6c:00", Setter = (_, v) => Mac(Str(v)), Help = "MAC address of the NIC emulated inside VM." }, q);
        Add(new("visible_ip", PropertyType.Str) { ReadOnly = true, Default = vm => vm.FeatureWithTemplate("net.fake-ip") ?? vm.Properties.Get("ip"), Help = "IP address of this domain as seen by the domain." }, q);
        Add(new("visible_ip6", PropertyType.Str) { ReadOnly = true, Default = vm => vm.Properties.Get("ip6"), Help = "IPv6 address of this domain as seen by the domain." }, q);
        Add(new("visible_gateway", PropertyType.Str) { ReadOnly = true, Default = vm => vm.FeatureWithTemplate("net.fake-gateway") ?? vm.Ref("netvm")?.Properties.Get("gateway"), Help = "Default gateway of this domain as seen by the domain." }, q);
        Add(new("visible_gateway6", PropertyType.Str) { ReadOnly = true, Default = vm => vm.Ref("netvm")?.Properties.Get("gateway6"), Help = "Default (IPv6) gateway of this domain as seen by the domain." }, q);
        Add(new("visible_netmask", PropertyType.Str) { ReadOnly = true, Default = vm => vm.FeatureWithTemplate("net.fake-netmask") ?? (vm.Ref("netvm") != null ? "255.255.255.255" : null), Help = "Netmask as seen by the domain." }, q);
        Add(new("gateway", PropertyType.Str) { ReadOnly = true, Default = vm => (bool)vm.Properties.Get("provides_network")! ? vm.Properties.Get("visible_ip") : null, Help = "Gateway for other domains that use this domain as netvm." }, q);
        Add(new("gateway6", PropertyType.Str) { ReadOnly = true, Default = vm => (bool)vm.Properties.Get("provides_network")! ? vm.Properties.Get("visible_ip6") : null, Help = "Gateway (IPv6) for other domains that use this domain as netvm." }, q);
        Add(new("dns", PropertyType.Str) { ReadOnly = true, Default = vm => vm.Ref("netvm") != null || (bool)vm.Properties.Get("provides_network")! ? "10.139.1.1 10.139.1.2" : null, Help = "DNS servers set up for this domain." }, q);
        Add(new("management_dispvm", PropertyType.Vm, 4) { Default = vm => vm.Has("template") && vm.Ref("template") is { } t ? t.Properties.Get("management_dispvm") : vm.App.Global("management_dispvm"), Setter = DispVmTemplate("management_dispvm"), Help = "Default DVM template for Disposable VM for managing this VM." }, q);
        Add(new("memory", PropertyType.Int) { Default = vm => TemplateOr(vm, "memory", _ => 400), Setter = (_, v) => Positive(Int(v), "memory"), Help = "Memory currently available for this VM." }, q);
        Add(new("vcpus", PropertyType.Int) { Default = vm => TemplateOr(vm, "vcpus", _ => 2), Setter = (_, v) => Positive(Int(v), "vcpus"), Help = "Number of virtual CPUs for a qube." }, q);
        Add(new("virt_mode", PropertyType.Str) { Default = vm => TemplateOr(vm, "virt_mode", _ => "pvh"), Setter = (_, v) => VirtMode(Str(v)), Help = "Virtualisation mode: full virtualisation (\"HVM\"), or paravirtualisation (\"PV\"), or hybrid (\"PVH\")." }, q);
        Add(new("kernel", PropertyType.Str) { Default = vm => TemplateOr(vm, "kernel", v => v.App.Global("default_kernel") ?? string.Empty), Setter = (_, v) => Kernel(Str(v)), Help = "Kernel used by this domain." }, q);
        Add(new("kernelopts", PropertyType.Str, 4) { Default = vm => Str(vm.Properties.Get("kernel")).Length == 0 ? string.Empty : TemplateOr(vm, "kernelopts", _ => "swiotlb=2048"), Setter = (_, v) => MaxLength(Str(v), 512, "kernelopts"), Help = "Kernel command line passed to domain." }, q);
        Add(new("qrexec_timeout", PropertyType.Int) { Default = vm => TemplateOr(vm, "qrexec_timeout", v => v.App.Global("default_qrexec_timeout")), Setter = (_, v) => Positive(Int(v), "qrexec_timeout"), Help = "Time in seconds after which qrexec connection attempt is deemed failed." }, q);
        Add(new("shutdown_timeout", PropertyType.Int) { Default = vm => TemplateOr(vm, "shutdown_timeout", v => v.App.Global("default_shutdown_timeout")), Setter = (_, v) => Positive(Int(v), "shutdown_timeout"), Help = "Time in seconds for shutdown of the VM, after which VM may be forcefully powered off." }, q);
        Add(new("autostart", PropertyType.Bool) { Default = _ => false, Setter = (_, v) => Bool(v), Help = "Setting this to True means that VM should be autostarted on dom0 boot." }, q);
        Add(new("debug", PropertyType.Bool) { Default = _ => false, Setter = (_, v) => Bool(v), Help = "Turns on debugging features." }, q);
        Add(new("default_user", PropertyType.Str) { Default = vm => TemplateOr(vm, "default_user", _ => "user"), Setter = (_, v) => DefaultUser(Str(v)), Help = "Default user to start applications as." }, q);
        Add(new("backup_timestamp", PropertyType.Int) { Setter = (_, v) => Int(v), Help = "Time of last backup of the qube, in seconds since unix epoch." }, q);
        Add(new("installed_by_rpm", PropertyType.Bool) { Default = _ => false, Setter = (_, v) => Bool(v), Help = "If this domain's image was installed from package tracked by package manager." }, q);
        Add(new("guivm", PropertyType.Vm, 4) { Default = vm => vm.App.Global("default_guivm"), Setter = AnyVm, Help = "VM used for Gui." }, q);
        Add(new("audiovm", PropertyType.Vm, 4) { Default = vm => vm.App.Global("default_audiovm"), Setter = AnyVm, Help = "VM used for Audio." }, q);
        Add(new("stubdom_mem", PropertyType.Int) { Setter = (_, v) => Positive(Int(v), "stubdom_mem"), Help = "Memory amount allocated for the stubdom." }, q);
        Add(new("bootmode", PropertyType.Str, 4) { Default = vm => vm.Has("template") && vm.Ref("template") is { } t && t.Has("appvm_default_bootmode") ? t.Properties.Get("appvm_default_bootmode") : "default", Help = "Boot mode: which kernel options and services to use at start." }, q);
        Add(new("xid", PropertyType.Int) { ReadOnly = true, Clone = false, Default = vm => vm.App.Runtime.DomainId(vm), Help = "Xen ID." }, q);
        Add(new("stubdom_xid", PropertyType.Int) { ReadOnly = true, Clone = false, Default = _ => -1, Help = "Xen ID of the stub domain." }, q);
        Add(new("stubdom_uuid", PropertyType.Str) { ReadOnly = true, Clone = false, Default = _ => string.Empty, Help = "UUID of the stub domain." }, q);
        Add(new("start_time", PropertyType.Str) { ReadOnly = true, Clone = false, Default = vm => vm.App.Runtime.StartTime(vm), Help = "Tell when machine was started." }, q);

        // class-specific
        Add(new("template", PropertyType.Vm, 4) { Setter = Template, ResetCheck = vm => "Cannot unset template", Help = "Template, on which this domain is based." }, "AppVM", "DispVM");
        Add(new("template_for_dispvms", PropertyType.Bool) { Default = _ => false, Setter = TemplateForDispVms, Help = "Should this VM be allowed to start as Disposable VM" }, "AppVM", "StandaloneVM");
        Add(new("appvm_default_bootmode", PropertyType.Str, 4) { Default = _ => "default", Help = "Default boot mode for AppVMs based on this template." }, "TemplateVM");
        Add(new("dispid", PropertyType.Int) { WriteOnce = true, Clone = false, Setter = (_, v) => Range(Int(v), 0, 9999, "dispid"), Help = "Internal, persistent identifier of particular DispVM." }, "DispVM");
        Add(new("auto_cleanup", PropertyType.Bool) { Default = _ => false, Setter = (_, v) => Bool(v), Help = "Automatically remove this VM upon shutdown." }, "DispVM");
        Add(new("is_preload", PropertyType.Bool) { ReadOnly = true, Default = _ => false, Help = "Whether the disposable is a preloaded one." }, "DispVM");
        Add(new("relayvm", PropertyType.Vm, 4) { Setter = AnyVm, Help = "Local qube that relays calls to this remote qube." }, "RemoteVM");
        Add(new("transport_rpc", PropertyType.Str) { Help = "The qrexec service that carries calls to the remote qube." }, "RemoteVM");
        Add(new("remote_name", PropertyType.Str) { Help = "The qube's name on its own host." }, "RemoteVM");
        return byClass;
    }

    /// <summary>Every property's name in canonical order for a class.</summary>
    internal static IEnumerable<Property<Qube>> Canonical(string klass)
    {
        List<Property<Qube>> list = [.. For(klass).Values];
        list.Sort(Property<Qube>.CompareCanonical);
        return list;
    }

    private static object? TemplateOr(Qube vm, string property, Func<Qube, object?> otherwise)
        => vm.Has("template") && vm.Ref("template") is { } template ? template.Properties.Get(property) : otherwise(vm);

    private static object? Icon(Qube vm)
    {
        string label = vm.Label.Name;
        if (vm.IsAdmin)
        {
            return "adminvm-black";
        }
        if (vm.Class == "TemplateVM" || (vm.Class == "AppVM" && vm.IsDispVmTemplate))
        {
            return "templatevm-" + label;
        }
        if (vm.Features.TryGetValue("servicevm", out string? service) && service.Length > 0)
        {
            return "servicevm-" + label;
        }
        return vm.Class switch
        {
            "DispVM" => "dispvm-",
            "StandaloneVM" => "standalonevm-",
            "RemoteVM" => "remotevm-",
            _ => "appvm-",
        } + label;
    }

    /// <summary>§3.6: 10.137.x.y from the qid (DispVM: 10.138 from the dispid).</summary>
    internal static string Address(Qube vm)
    {
        bool disp = vm.Class == "DispVM";
        int id = disp ? (int)vm.Properties.Get("dispid")! : vm.Qid;
        string prefix = disp ? "10.138" : "10.137";
        if (id < 255)
        {
            return string.Create(CultureInfo.InvariantCulture, $"{prefix}.{id >> 8}.{id & 255}");
        }
        int shifted = id - 1;
        return string.Create(CultureInfo.InvariantCulture, $"{prefix}.{shifted / 254}.{shifted % 254 + 1}");
    }

    private static QubesException ReadOnly(Qube vm, string name) => QubesException.PropertyValue($"property '{name}' on {vm.Class} instance cannot be set");

    internal static string Str(object? value) => value as string ?? Property<Qube>.Format(value);

    internal static int Int(object? value) => value switch
    {
        int i => i,
        string s when int.TryParse(s, NumberStyles.AllowLeadingSign, CultureInfo.InvariantCulture, out int i) => i,
        _ => throw QubesException.Value($"Failed to parse property value as int: '{value}'"),
    };

    internal static object Bool(object? value) => value is bool b ? b : BoolLiteral.Parse(Str(value));

    private static object Range(int value, int min, int max, string name)
        => value >= min && value <= max ? value : throw QubesException.PropertyValue($"{name} out of range: {value}");

    private static object Positive(int value, string name)
        => value > 0 ? value : throw QubesException.PropertyValue($"{name} must be positive");

    private static object NonNegative(int value, string name)
        => value >= 0 ? value : throw QubesException.PropertyValue($"{name} must be non-negative");

    private static object MaxLength(string value, int max, string name)
        => value.Length <= max ? value : throw QubesException.PropertyValue($"{name} must be at most {max} characters");

    private static object ParseUuid(string text)
        => Guid.TryParseExact(text, "D", out Guid guid) ? guid.ToString("D") : throw QubesException.PropertyValue($"Invalid value {text} for property 'uuid'");

    private static object Mac(string text)
    {
        string lower = text.ToLowerInvariant();
        string[] parts = lower.Split(':');
        return parts.Length == 6 && parts.All(static p => p.Length == 2 && p.All(char.IsAsciiHexDigitLower))
            ? lower
            : throw QubesException.PropertyValue($"Invalid MAC address value: '{text}'");
    }

    private static object VirtMode(string text)
    {
        string lower = text.ToLowerInvariant();
        return lower is "hvm" or "pv" or "pvh" ? lower : throw QubesException.PropertyValue($"Invalid virtualization mode, supported values: hvm, pv, pvh");
    }

    private static object Kernel(string text)
        => text.Contains('/', StringComparison.Ordinal) ? throw QubesException.PropertyValue("Kernel name cannot contain '/'") : text;

    private static object DefaultUser(string text)
        => text.All(static c => char.IsAsciiLetterOrDigit(c) || c is '_' or '-' or '+' or ',' or '.') ? text : throw QubesException.PropertyValue("Username can contain only those characters: a-zA-Z0-9_-+,.");

    private static object KeyboardLayout(string text)
    {
        string[] parts = text.Split('+');
        bool ok = parts.Length == 3 && parts[0].All(char.IsAsciiLetter)
            && parts[1].All(static c => char.IsAsciiLetterOrDigit(c) || c is '_' or '-')
            && parts[2].All(static c => char.IsAsciiLetterOrDigit(c) || c is '_' or ':' or ',' or '-');
        return ok ? text : throw QubesException.PropertyValue("Invalid keyboard layout");
    }

    private static object DevicesDenied(string text)
    {
        if (text.Length % 7 != 0)
        {
            throw QubesException.PropertyValue("Interface code list should be in the form chhhhhhchhhhhh..., where c is an interface class and h a hex digit or '*'");
        }
        SortedSet<string> codes = new(StringComparer.Ordinal);
        for (int i = 0; i < text.Length; i += 7)
        {
            string code = text.Substring(i, 7);
            if (code[0] is not ('b' or 'u' or 'm' or 'p' or '*') || !code.Skip(1).All(static c => char.IsAsciiHexDigitLower(c) || char.IsAsciiDigit(c) || c == '*'))
            {
                throw QubesException.PropertyValue("Interface code list should be in the form chhhhhhchhhhhh..., where c is an interface class and h a hex digit or '*'");
            }
            codes.Add(code);
        }
        return string.Concat(codes);
    }

    /// <summary>A qube-valued property that accepts any qube (or none).</summary>
    private static object? AnyVm(Qube vm, object? value) => vm.App.VmValue(Str(value)) is { } q ? q.Name : string.Empty;

    private static Func<Qube, object?, object?> DispVmTemplate(string property)
        => (vm, value) => vm.App.DispVmTemplateValue(Str(value), $"qube '{vm.Name}'", property);

    private static object? NetVm(Qube vm, object? value)
    {
        Qube? netvm = vm.App.VmValue(Str(value));
        if (netvm == null)
        {
            return string.Empty;
        }
        if (!netvm.Has("provides_network") || !(bool)netvm.Properties.Get("provides_network")!)
        {
            throw QubesException.PropertyValue($"The {netvm.Name} qube does not provide network");
        }
        for (Qube? hop = netvm; hop != null; hop = hop.Has("netvm") ? hop.Ref("netvm") : null)
        {
            if (hop == vm)
            {
                throw QubesException.PropertyValue("Loops in network are unsupported");
            }
        }
        return netvm.Name;
    }

    private static object? Template(Qube vm, object? value)
    {
        Qube template = vm.App.VmValue(Str(value)) ?? throw QubesException.PropertyValue("Cannot unset template");
        if (!vm.IsHalted)
        {
            throw new QubesException("QubesVMNotHaltedError", "Cannot change template while qube is running");
        }
        if (vm.Class == "AppVM" && template.Class != "TemplateVM")
        {
            throw QubesException.PropertyValue($"wrong VM class: expected TemplateVM, got {template.Class}");
        }
        if (vm.Class == "DispVM" && !template.IsDispVmTemplate)
        {
            throw QubesException.PropertyValue("template for disposable must have template_for_dispvms=True");
        }
        return template.Name;
    }

    private static object? TemplateForDispVms(Qube vm, object? value)
    {
        bool enabled = (bool)Bool(value);
        if (!enabled && vm.App.UsesAsDispVmTemplate(vm) is string user)
        {
            throw new QubesException("QubesVMInUseError", user);
        }
        return enabled;
    }
}
