using System.Collections.Generic;

namespace Qubes.AppMenus;

/// <summary>What the menu code needs to know of a qube; dom0's tools fill it from qubesd.</summary>
/// <param name="Name">The qube's name.</param>
/// <param name="Class">Its class: <c>AppVM</c>, <c>TemplateVM</c>, <c>StandaloneVM</c>, <c>DispVM</c>.</param>
/// <param name="Template">Its template's name, for the classes that have one.</param>
/// <param name="LabelName">Its label's name.</param>
/// <param name="LabelColour">Its label's colour, <c>0xRRGGBB</c>.</param>
/// <param name="Icon">Its icon's name (the <c>icon</c> property, e.g. <c>appvm-blue</c>).</param>
/// <param name="Features">Its own features.</param>
/// <param name="TemplateForDispvms">Whether disposables are made from it.</param>
/// <param name="ProvidesNetwork">Whether it is a service qube for the network.</param>
/// <param name="AutoCleanup">Whether it is a disposable removed when it stops.</param>
public sealed record MenuQube(string Name, string Class, string? Template, string LabelName, string LabelColour, string Icon,
    IReadOnlyDictionary<string, string> Features, bool TemplateForDispvms = false, bool ProvidesNetwork = false, bool AutoCleanup = false)
{
    /// <summary>A feature's value, or null.</summary>
    public string? Feature(string name) => Features.TryGetValue(name, out string? value) ? value : null;
}

/// <summary>The qubes of the system, as the menu code sees and changes them.</summary>
public interface IMenuQubes
{
    /// <summary>The qube called <paramref name="name"/>; throws when there is none.</summary>
    MenuQube Get(string name);

    /// <summary>Every qube but dom0.</summary>
    IEnumerable<MenuQube> All();

    /// <summary>A feature looked up through the template chain, as qubesd's <c>admin.vm.feature.CheckWithTemplate</c>.</summary>
    string? FeatureWithTemplate(string qube, string feature);

    /// <summary>Sets a feature of a qube.</summary>
    void SetFeature(string qube, string feature, string value);
}
