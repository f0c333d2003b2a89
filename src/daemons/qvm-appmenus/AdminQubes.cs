using System;
using System.Collections.Generic;
using System.Linq;
using Qubes.AppMenus;
using Qubes.Core;
using Qubes.Core.Api;

namespace Qubes.Tools.QvmAppmenus;

/// <summary>The qubes as qubesd reports them, for the menu code.</summary>
internal sealed class AdminQubes(AdminClient admin) : IMenuQubes
{
    private readonly Dictionary<string, MenuQube> _cache = new(StringComparer.Ordinal);
    private Dictionary<string, string>? _classes;

    /// <summary>Each qube's class by name (<c>admin.vm.List</c>: <c>NAME class=CLASS state=STATE</c>).</summary>
    private Dictionary<string, string> Classes => _classes ??= admin.Call("admin.vm.List", "dom0")
        .Split('\n', StringSplitOptions.RemoveEmptyEntries)
        .Select(static line => line.Split(' '))
        .ToDictionary(static f => f[0], static f => f.FirstOrDefault(static x => x.StartsWith("class=", StringComparison.Ordinal))?[6..] ?? "", StringComparer.Ordinal);

    public bool Exists(string name) => Classes.ContainsKey(name);

    public bool IsRunning(string name) => admin.Call("admin.vm.CurrentState", name).Split(' ').Contains("power_state=Running");

    public MenuQube Get(string name)
    {
        if (_cache.TryGetValue(name, out MenuQube? known))
        {
            return known;
        }
        string klass = Classes.TryGetValue(name, out string? c) ? c : throw new QubesException("QubesVMNotFoundError", $"No such domain: '{name}'");
        string label = Property(name, "label") ?? "red";
        Dictionary<string, string> features = new(StringComparer.Ordinal);
        foreach (string feature in admin.Call("admin.vm.feature.List", name).Split('\n', StringSplitOptions.RemoveEmptyEntries))
        {
            features[feature] = admin.Call("admin.vm.feature.Get", name, feature);
        }
        MenuQube qube = new(name, klass,
            klass is "AppVM" or "DispVM" ? Property(name, "template") : null,
            label, admin.Call("admin.label.Get", "dom0", label), Property(name, "icon") ?? "appvm-" + label, features,
            TemplateForDispvms: Property(name, "template_for_dispvms") == "True",
            ProvidesNetwork: Property(name, "provides_network") == "True",
            AutoCleanup: klass == "DispVM" && Property(name, "auto_cleanup") == "True");
        _cache[name] = qube;
        return qube;
    }

    /// <summary>A property's value (<c>default=… type=… VALUE</c>); null when it has none.</summary>
    private string? Property(string qube, string property)
    {
        try
        {
            string[] reply = admin.Call("admin.vm.property.Get", qube, property).Split(' ', 3);
            return reply.Length == 3 && reply[2].Length > 0 ? reply[2] : null;
        }
        catch (QubesException e) when (e.TypeName == "QubesNoSuchPropertyError")
        {
            return null;
        }
    }

    public IEnumerable<MenuQube> All() => Classes.Keys.Where(static n => n != "dom0").Order(StringComparer.Ordinal).Select(Get);

    public string? FeatureWithTemplate(string qube, string feature)
    {
        try
        {
            return admin.Call("admin.vm.feature.CheckWithTemplate", qube, feature);
        }
        catch (QubesException e) when (e.TypeName == "QubesFeatureNotFoundError")
        {
            return null;
        }
    }

    public void SetFeature(string qube, string feature, string value)
    {
        admin.Call("admin.vm.feature.Set", qube, feature, value);
        _cache.Remove(qube);
    }
}
