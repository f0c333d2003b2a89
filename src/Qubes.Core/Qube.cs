using System;
using System.Collections.Generic;

namespace Qubes.Core;

/// <summary>
/// One qube (spec core-stack §3): its class, its properties (explicit values and computed
/// defaults), features in insertion order and tags. Names never change: a rename is a clone and a
/// remove.
/// </summary>
public sealed class Qube
{
    internal Qube(QubesApp app, string klass)
    {
        App = app;
        Class = klass;
        Properties = new PropertyValues<Qube>(this, PropertyCatalog.For(klass), klass);
    }

    /// <summary>The system the qube belongs to.</summary>
    public QubesApp App { get; }

    /// <summary>AdminVM, AppVM, TemplateVM, StandaloneVM, DispVM or RemoteVM.</summary>
    public string Class { get; }

    /// <summary>Explicit values and defaults of its properties.</summary>
    public PropertyValues<Qube> Properties { get; }

    /// <summary>Features: name to value, in insertion order (spec §6.1: <c>""</c> is false, anything else true).</summary>
    public OrderedDictionary<string, string> Features { get; } = new(StringComparer.Ordinal);

    /// <summary>Tags.</summary>
    public SortedSet<string> Tags { get; } = new(StringComparer.Ordinal);

    /// <summary>The qube's name.</summary>
    public string Name => (string)Properties.Get("name")!;

    /// <summary>Its qid.</summary>
    public int Qid => (int)Properties.Get("qid")!;

    /// <summary>Its uuid, lowercase 8-4-4-4-12.</summary>
    public string Uuid => (string)Properties.Get("uuid")!;

    /// <summary>Its label.</summary>
    public Label Label => (Label)Properties.Get("label")!;

    /// <summary>Whether disposables may be made from it (an AppVM or StandaloneVM with <c>template_for_dispvms</c>).</summary>
    public bool IsDispVmTemplate => Has("template_for_dispvms") && (bool)Properties.Get("template_for_dispvms")!;

    /// <summary>Whether it is dom0.</summary>
    public bool IsAdmin => Class == "AdminVM";

    /// <summary>The power state: dom0 and RemoteVMs are always running, the others as the runtime says.</summary>
    public string PowerState => IsAdmin || Class == "RemoteVM" ? "Running" : App.Runtime.PowerState(this);

    /// <summary>Whether it is halted (neither running nor on its way up or down).</summary>
    public bool IsHalted => PowerState == "Halted";

    /// <summary>A qube-valued property: the qube, or null for none.</summary>
    public Qube? Ref(string property)
        => Properties.GetOrDefault(property) is string name && name.Length > 0 ? App.Find(name) : null;

    /// <summary>Whether the class has the property.</summary>
    public bool Has(string property) => Properties.Properties.ContainsKey(property);

    /// <summary>A feature's value looked up along the template chain (check-with-template), or null.</summary>
    public string? FeatureWithTemplate(string feature)
    {
        for (Qube? q = this; q != null; q = q.Has("template") ? q.Ref("template") : null)
        {
            if (q.Features.TryGetValue(feature, out string? value))
            {
                return value;
            }
        }
        return null;
    }

    /// <inheritdoc/>
    public override string ToString() => Name;
}
