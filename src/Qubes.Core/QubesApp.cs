using System;
using System.Collections.Generic;
using System.Linq;

namespace Qubes.Core;

/// <summary>
/// The whole system (spec core-stack §1-§4): labels, global properties and the qubes, dom0 first
/// and the others by name. One instance is held by qubesd; every state change goes through it and
/// is then saved by <see cref="QubesXml"/>.
/// </summary>
public sealed class QubesApp
{
    private readonly SortedDictionary<string, Qube> _qubes = new(StringComparer.Ordinal);
    private readonly List<Label> _labels = [.. Label.Defaults];

    public QubesApp(IQubeRuntime? runtime = null)
    {
        Runtime = runtime ?? IQubeRuntime.None;
        Properties = new PropertyValues<QubesApp>(this, GlobalProperties.All, "Qubes");
    }

    /// <summary>Where running qubes' domain ids come from.</summary>
    public IQubeRuntime Runtime { get; }

    /// <summary>The global properties (<c>qubes-prefs</c>).</summary>
    public PropertyValues<QubesApp> Properties { get; }

    /// <summary>The labels, in index order.</summary>
    public IReadOnlyList<Label> Labels => _labels;

    /// <summary>dom0, then the other qubes by name.</summary>
    public IEnumerable<Qube> Qubes
    {
        get
        {
            if (_qubes.TryGetValue("dom0", out Qube? dom0))
            {
                yield return dom0;
            }
            foreach (Qube qube in _qubes.Values)
            {
                if (!qube.IsAdmin)
                {
                    yield return qube;
                }
            }
        }
    }

    /// <summary>The AdminVM.</summary>
    public Qube Dom0 => _qubes["dom0"];

    /// <summary>The qube called <paramref name="name"/> (or <c>uuid:UUID</c>), or null.</summary>
    public Qube? Find(string name)
    {
        ArgumentNullException.ThrowIfNull(name);
        if (name.StartsWith("uuid:", StringComparison.Ordinal))
        {
            return _qubes.Values.FirstOrDefault(q => "uuid:" + q.Uuid == name);
        }
        return _qubes.GetValueOrDefault(name);
    }

    /// <summary>The qube called <paramref name="name"/>; throws <c>QubesVMNotFoundError</c>.</summary>
    public Qube Get(string name) => Find(name) ?? throw QubesException.NotFound(name);

    /// <summary>A global property's value (null when it is none or unset).</summary>
    public object? Global(string name) => Properties.GetOrDefault(name);

    /// <summary>
    /// The value of a qube-valued property as given: empty means none; otherwise a valid name of an
    /// existing qube (spec §5), else <c>QubesValueError</c> / <c>QubesVMNotFoundError</c>.
    /// </summary>
    public Qube? VmValue(string text)
    {
        ArgumentNullException.ThrowIfNull(text);
        if (text.Length == 0)
        {
            return null;
        }
        VmName.Validate(text);
        return Get(text);
    }

    /// <summary>
    /// The value of <c>default_dispvm</c> or <c>management_dispvm</c>: none, or a template for
    /// disposables. <paramref name="holder"/> names the holder in the error: <c>qube 'work'</c> or
    /// <c>system</c>.
    /// </summary>
    internal string DispVmTemplateValue(string text, string holder, string property)
    {
        Qube? target = VmValue(text);
        if (target != null && !target.IsDispVmTemplate)
        {
            throw QubesException.PropertyValue($"Cannot set invalid property to {holder}, {property} '{target.Name}' has template_for_dispvms set to False");
        }
        return target?.Name ?? string.Empty;
    }

    /// <summary>Adds the AdminVM of a fresh system (qid 0, the all-zero uuid, label black).</summary>
    public Qube AddDom0()
    {
        Qube dom0 = new(this, "AdminVM");
        dom0.Properties.Load("name", "dom0");
        dom0.Properties.Load("qid", 0);
        dom0.Properties.Load("uuid", "00000000-0000-0000-0000-000000000000");
        dom0.Properties.Load("label", Label.Find(_labels, "black"));
        _qubes.Add("dom0", dom0);
        return dom0;
    }

    /// <summary>
    /// Creates a qube of <paramref name="klass"/> called <paramref name="name"/>: name rules, a free
    /// qid (the lowest in 1…9999), a random uuid, the label, then the other properties given.
    /// </summary>
    public Qube Create(string klass, string name, string label, IEnumerable<(string Property, object? Value)>? properties = null)
    {
        ArgumentNullException.ThrowIfNull(name);
        VmName.Validate(name);
        if (klass == "AdminVM")
        {
            throw QubesException.Value("AdminVM cannot be created");
        }
        if (_qubes.ContainsKey(name))
        {
            throw new QubesException("QubesVMAlreadyExistsError", $"Qube already exists: {name}");
        }
        Qube qube = new(this, klass);
        qube.Properties.Set("name", name);
        qube.Properties.Set("qid", FreeQid());
        qube.Properties.Set("uuid", Guid.NewGuid().ToString("D"));
        qube.Properties.Set("label", label);
        _qubes.Add(name, qube);
        try
        {
            foreach ((string property, object? value) in properties ?? [])
            {
                qube.Properties.Set(property, value);
            }
        }
        catch
        {
            _qubes.Remove(name);
            throw;
        }
        return qube;
    }

    /// <summary>Adds a qube read from qubes.xml.</summary>
    internal void AddLoaded(Qube qube)
    {
        if (!_qubes.TryAdd(qube.Name, qube))
        {
            throw new QubesException("QubesException", $"qube '{qube.Name}' is in qubes.xml twice");
        }
    }

    /// <summary>Creates an empty qube of a class for loading.</summary>
    internal Qube NewForLoad(string klass) => new(this, klass);

    /// <summary>Replaces the labels while loading.</summary>
    internal void SetLabels(IEnumerable<Label> labels)
    {
        _labels.Clear();
        _labels.AddRange(labels.OrderBy(static l => l.Index));
    }

    /// <summary>Removes a qube; refused for dom0 and for a qube something still refers to (spec §4, §9.6).</summary>
    public void Remove(string name)
    {
        Qube qube = Get(name);
        if (qube.IsAdmin)
        {
            throw new QubesException("QubesVMInUseError", "'dom0' cannot be removed");
        }
        if (qube.Has("installed_by_rpm") && (bool)qube.Properties.Get("installed_by_rpm")!)
        {
            throw new QubesException("QubesVMInUseError", $"VM installed by package manager: {name}");
        }
        if (!qube.IsHalted)
        {
            throw new QubesException("QubesVMNotHaltedError", $"Domain is not powered off: '{name}'");
        }
        if (IsReferenced(qube))
        {
            throw new QubesException("QubesVMInUseError", $"Domain is in use: '{name}';  see 'journalctl -u qubesd -e' in dom0 for details");
        }
        _qubes.Remove(qube.Name);
    }

    /// <summary>Whether a global qube-valued property or an explicitly set qube-valued property of another qube names <paramref name="qube"/>.</summary>
    public bool IsReferenced(Qube qube)
    {
        foreach ((Property<QubesApp> p, object? value) in Properties.Explicit())
        {
            if (p.Type == PropertyType.Vm && value as string == qube.Name)
            {
                return true;
            }
        }
        foreach (Qube other in _qubes.Values)
        {
            if (other != qube && other.Properties.Explicit().Any(e => e.Property.Type == PropertyType.Vm && e.Value as string == qube.Name))
            {
                return true;
            }
        }
        return false;
    }

    /// <summary>Why <paramref name="qube"/> must stay a disposable template (spec §3.5), or null when it need not.</summary>
    internal string? UsesAsDispVmTemplate(Qube qube)
    {
        foreach (string global in (string[])["default_dispvm", "management_dispvm"])
        {
            if (Properties.GetOrDefault(global) as string == qube.Name)
            {
                return $"Cannot change template_for_dispvms to False while it is in use by the system ({global})";
            }
        }
        foreach (Qube other in _qubes.Values)
        {
            foreach ((Property<Qube> p, object? value) in other.Properties.Explicit())
            {
                if ((p.Name is "default_dispvm" or "management_dispvm" || (p.Name == "template" && other.Class == "DispVM")) && value as string == qube.Name)
                {
                    return $"Cannot change template_for_dispvms to False while it is the disposable template of a qube ({other.Name}.{p.Name})";
                }
            }
        }
        return null;
    }

    private int FreeQid()
    {
        HashSet<int> used = [.. _qubes.Values.Select(static q => q.Qid)];
        for (int qid = 1; qid <= 9999; qid++)
        {
            if (!used.Contains(qid))
            {
                return qid;
            }
        }
        throw new QubesException("QubesException", "Cannot find unused qid!");
    }
}
