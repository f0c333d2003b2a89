using System;
using System.Collections.Generic;
using System.Globalization;

namespace Qubes.Core;

/// <summary>The API type of a property (spec core-stack §9.6): how it is parsed, shown and saved.</summary>
public enum PropertyType : byte
{
    /// <summary>A string.</summary>
    Str,
    /// <summary>An integer.</summary>
    Int,
    /// <summary>A boolean, shown <c>True</c>/<c>False</c>.</summary>
    Bool,
    /// <summary>A qube, by name; empty for none.</summary>
    Vm,
    /// <summary>A label, by name.</summary>
    Label,
}

/// <summary>
/// One property (spec core-stack §3.4): name, type, load stage (2, 3 for globals, 4 for qube
/// references), flags, and how its default is computed and a new value checked. A default is
/// evaluated on every read, so it follows the template or global value. No default and no value
/// means unset.
/// </summary>
/// <typeparam name="THolder">What holds it: a qube or the system.</typeparam>
public sealed class Property<THolder>
{
    public Property(string name, PropertyType type, int loadStage = 2)
    {
        Name = name;
        Type = type;
        LoadStage = loadStage;
    }

    /// <summary>The property's name.</summary>
    public string Name { get; }

    /// <summary>Its API type.</summary>
    public PropertyType Type { get; }

    /// <summary>2 (or 3 for globals) for simple properties, 4 for qube references.</summary>
    public int LoadStage { get; }

    /// <summary>Once it has a value it cannot be set or reset (<c>name</c>, <c>qid</c>, <c>uuid</c>, <c>dispid</c>).</summary>
    public bool WriteOnce { get; init; }

    /// <summary>Computed: any set is refused, and it is never saved.</summary>
    public bool ReadOnly { get; init; }

    /// <summary>Copied by clone operations.</summary>
    public bool Clone { get; init; } = true;

    /// <summary>The default, computed from the holder; null: the property has no default (unset until set).</summary>
    public Func<THolder, object?>? Default { get; init; }

    /// <summary>Checks (and may convert) a new value; throws a <see cref="QubesException"/> to refuse it.</summary>
    public Func<THolder, object?, object?>? Setter { get; init; }

    /// <summary>Refuses a reset when it returns a message.</summary>
    public Func<THolder, string?>? ResetCheck { get; init; }

    /// <summary>What <c>property.Help</c> says.</summary>
    public string Help { get; init; } = string.Empty;

    /// <summary>Canonical order (spec §3.4): load stage, then name.</summary>
    public static int CompareCanonical(Property<THolder> a, Property<THolder> b)
        => a.LoadStage != b.LoadStage ? a.LoadStage.CompareTo(b.LoadStage) : string.CompareOrdinal(a.Name, b.Name);

    /// <summary>A value as the API and qubes.xml write it: VM → name, label → name, bool → True/False, none → empty.</summary>
    public static string Format(object? value) => value switch
    {
        null => string.Empty,
        bool b => b ? "True" : "False",
        int i => i.ToString(CultureInfo.InvariantCulture),
        Label label => label.Name,
        IFormattable f => f.ToString(null, CultureInfo.InvariantCulture),
        _ => value.ToString() ?? string.Empty,
    };
}

/// <summary>Bool literals (spec core-stack §3.5): case-insensitive <c>1 yes true on</c> / <c>0 no false off</c>.</summary>
public static class BoolLiteral
{
    /// <summary>The value of <paramref name="text"/>; throws <c>QubesValueError</c> for anything else.</summary>
    public static bool Parse(string text)
    {
        ArgumentNullException.ThrowIfNull(text);
        switch (text.ToLowerInvariant())
        {
            case "1" or "yes" or "true" or "on":
                return true;
            case "0" or "no" or "false" or "off":
                return false;
            default:
                throw QubesException.Value($"Invalid literal for boolean property: '{text}'");
        }
    }
}

/// <summary>Explicit property values of one holder, and the machinery to read, set and reset them.</summary>
/// <typeparam name="THolder">The holder type.</typeparam>
public sealed class PropertyValues<THolder>(THolder holder, IReadOnlyDictionary<string, Property<THolder>> properties, string holderName)
{
    private readonly Dictionary<string, object?> _explicit = new(StringComparer.Ordinal);

    /// <summary>The properties this holder has.</summary>
    public IReadOnlyDictionary<string, Property<THolder>> Properties => properties;

    /// <summary>The property called <paramref name="name"/>; throws <c>QubesNoSuchPropertyError</c>.</summary>
    public Property<THolder> Definition(string name)
        => properties.TryGetValue(name, out Property<THolder>? p) ? p : throw new QubesException("QubesNoSuchPropertyError", $"Invalid property '{name}' of {holderName}");

    /// <summary>Whether the property is at its default (never set, or reset).</summary>
    public bool IsDefault(string name) => !_explicit.ContainsKey(Definition(name).Name);

    /// <summary>Whether the property has a value: explicit, or a default (null defaults count as a value of none).</summary>
    public bool HasValue(string name) => _explicit.ContainsKey(name) || Definition(name).Default != null;

    /// <summary>The value: explicit, else the default computed now; throws <c>QubesPropertyValueError</c> when unset.</summary>
    public object? Get(string name)
    {
        Property<THolder> p = Definition(name);
        if (_explicit.TryGetValue(name, out object? value))
        {
            return value;
        }
        return p.Default != null ? p.Default(holder) : throw new QubesException("QubesPropertyValueError", $"Property '{name}' of {holderName} is unset");
    }

    /// <summary>The value, or <paramref name="fallback"/> when unset.</summary>
    public object? GetOrDefault(string name, object? fallback = null) => HasValue(name) ? Get(name) : fallback;

    /// <summary>Sets a value after the property's checks.</summary>
    public void Set(string name, object? value)
    {
        Property<THolder> p = Definition(name);
        if (p.ReadOnly)
        {
            throw QubesException.PropertyValue($"property '{name}' on {holderName} instance cannot be set");
        }
        if (p.WriteOnce && _explicit.ContainsKey(name))
        {
            throw new QubesException("AttributeError", $"property '{name}' is write-once and already set");
        }
        _explicit[name] = p.Setter != null ? p.Setter(holder, value) : value;
    }

    /// <summary>Sets a value while loading, without the checks that depend on other qubes.</summary>
    internal void Load(string name, object? value) => _explicit[Definition(name).Name] = value;

    /// <summary>Back to the default.</summary>
    public void Reset(string name)
    {
        Property<THolder> p = Definition(name);
        if (p.ReadOnly)
        {
            throw QubesException.PropertyValue($"property '{name}' on {holderName} instance cannot be set");
        }
        if (p.WriteOnce && _explicit.ContainsKey(name))
        {
            throw new QubesException("AttributeError", $"property '{name}' is write-once and already set");
        }
        if (p.ResetCheck?.Invoke(holder) is string refusal)
        {
            throw QubesException.PropertyValue(refusal);
        }
        _explicit.Remove(name);
    }

    /// <summary>The explicitly set properties, in canonical order (what qubes.xml keeps).</summary>
    public IEnumerable<(Property<THolder> Property, object? Value)> Explicit()
    {
        List<Property<THolder>> set = [];
        foreach (string name in _explicit.Keys)
        {
            set.Add(properties[name]);
        }
        set.Sort(Property<THolder>.CompareCanonical);
        foreach (Property<THolder> p in set)
        {
            yield return (p, _explicit[p.Name]);
        }
    }
}
