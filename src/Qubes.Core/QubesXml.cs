using System;
using System.Collections.Generic;
using System.Globalization;
using System.IO;
using System.Linq;
using System.Text;
using System.Xml;
using System.Xml.Linq;
using Qubes.Interop.Linux;

namespace Qubes.Core;

/// <summary>
/// <c>qubes.xml</c> (spec core-stack §2): the whole system in one file. Only explicitly set
/// properties are written; qube references and labels by name. A save writes a temporary file in
/// the same directory, fsyncs it, renames it over the store and fsyncs the directory, so a crash at
/// any point leaves either the old or the new file, never a mixture. Storage pools are not modelled
/// yet: the store names the one file pool <c>varlibqubes</c> that <c>default_pool</c> defaults to.
/// </summary>
public static class QubesXml
{
    /// <summary>Where the store lives unless <c>QUBES_XML_PATH</c> says otherwise.</summary>
    public const string DefaultPath = "/var/lib/qubes/qubes.xml";

    /// <summary>The store path of this system.</summary>
    public static string PathFromEnvironment => Environment.GetEnvironmentVariable("QUBES_XML_PATH") ?? DefaultPath;

    /// <summary>The document for <paramref name="app"/>, in the writer's element order.</summary>
    public static XDocument ToXml(QubesApp app)
    {
        ArgumentNullException.ThrowIfNull(app);
        XElement domains = new("domains");
        foreach (Qube qube in app.Qubes)
        {
            XElement domain = new("domain", new XAttribute("id", "domain-" + qube.Qid.ToString(CultureInfo.InvariantCulture)), new XAttribute("class", qube.Class),
                Properties(qube.Properties.Explicit().Select(static e => (e.Property.Name, e.Value))),
                new XElement("features", qube.Features.Select(static f => new XElement("feature", new XAttribute("name", f.Key), f.Value))),
                new XElement("tags", qube.Tags.Select(static t => new XElement("tag", new XAttribute("name", t)))));
            domains.Add(domain);
        }
        XElement root = new("qubes",
            new XElement("labels", app.Labels.Select(static l => new XElement("label", new XAttribute("id", l.XmlId), new XAttribute("color", l.Color), l.Name))),
            new XElement("pools", new XElement("pool", new XAttribute("dir_path", "/var/lib/qubes"), new XAttribute("driver", "file"), new XAttribute("name", "varlibqubes"), new XAttribute("revisions_to_keep", "1"))),
            Properties(app.Properties.Explicit().Select(static e => (e.Property.Name, e.Value))),
            domains);
        return new XDocument(root);
    }

    private static XElement Properties(IEnumerable<(string Name, object? Value)> properties)
        // string content, even empty, makes an explicit none a start and end tag with no content
        => new("properties", properties.Select(static p => new XElement("property", new XAttribute("name", p.Name), Property<Qube>.Format(p.Value))));

    /// <summary>The text of the store for <paramref name="app"/>: UTF-8, two-space indentation, no XML declaration.</summary>
    public static byte[] Serialize(QubesApp app)
    {
        using MemoryStream buffer = new();
        XmlWriterSettings settings = new() { Indent = true, IndentChars = "  ", OmitXmlDeclaration = true, Encoding = new UTF8Encoding(false), NewLineChars = "\n" };
        using (XmlWriter writer = XmlWriter.Create(buffer, settings))
        {
            ToXml(app).Save(writer);
        }
        buffer.WriteByte((byte)'\n');
        return buffer.ToArray();
    }

    /// <summary>
    /// Writes the store atomically: a temporary file <c>&lt;store&gt;~XXXX</c> in the same directory,
    /// written, fsynced and given mode 0660, renamed over the store, then the directory fsynced.
    /// </summary>
    public static void Save(QubesApp app, string path)
    {
        ArgumentNullException.ThrowIfNull(path);
        byte[] content = Serialize(app);
        string directory = System.IO.Path.GetDirectoryName(System.IO.Path.GetFullPath(path))!;
        Directory.CreateDirectory(directory);
        DurableFile.Replace(path, path + "~" + Guid.NewGuid().ToString("N")[..8], content,
            UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.GroupRead | UnixFileMode.GroupWrite);
    }

    /// <summary>Deletes temporary files a save left when it was killed before its rename: they were never acknowledged.</summary>
    public static void RemoveStaleTemporaries(string path)
    {
        string directory = System.IO.Path.GetDirectoryName(System.IO.Path.GetFullPath(path))!;
        if (Directory.Exists(directory))
        {
            foreach (string stale in Directory.EnumerateFiles(directory, System.IO.Path.GetFileName(path) + "~*"))
            {
                File.Delete(stale);
            }
        }
    }

    /// <summary>Loads the store at <paramref name="path"/>; a missing file or a malformed one is a <see cref="QubesException"/>.</summary>
    public static QubesApp Load(string path, IQubeRuntime? runtime = null)
    {
        if (!File.Exists(path))
        {
            throw new QubesException("QubesException", $"Qubes XML store '{path}' is missing; use qubes-create tool");
        }
        XDocument document;
        try
        {
            document = XDocument.Load(path);
        }
        catch (XmlException e)
        {
            throw new QubesException("QubesException", $"{path}: {e.Message}");
        }
        return FromXml(document, runtime);
    }

    /// <summary>Builds the system from a document, in the load stages of spec §2.4.</summary>
    public static QubesApp FromXml(XDocument document, IQubeRuntime? runtime = null)
    {
        ArgumentNullException.ThrowIfNull(document);
        XElement root = document.Root ?? throw new QubesException("QubesException", "qubes.xml has no root element");
        QubesApp app = new(runtime);

        // stage 1: labels (gray's old colour migrated)
        List<Label> labels = [];
        foreach (XElement label in root.Elements("labels").Elements("label"))
        {
            string id = (string?)label.Attribute("id") ?? string.Empty;
            if (!id.StartsWith("label-", StringComparison.Ordinal) || !int.TryParse(id.AsSpan(6), NumberStyles.None, CultureInfo.InvariantCulture, out int index))
            {
                throw new QubesException("QubesException", $"invalid label id '{id}'");
            }
            string color = (string?)label.Attribute("color") ?? "0x000000";
            labels.Add(new Label(index, label.Value, color == "0x555753" ? "0x555555" : color));
        }
        if (labels.Count > 0)
        {
            app.SetLabels(labels);
        }

        // stage 2: each domain's simple properties; stage 4 (qube references) once every qube exists
        List<(Qube Qube, List<(string Name, string Value)> Late)> loaded = [];
        foreach (XElement domain in root.Elements("domains").Elements("domain"))
        {
            string klass = (string?)domain.Attribute("class") ?? string.Empty;
            if (!PropertyCatalog.Classes.Contains(klass))
            {
                throw new QubesException("QubesException", $"no such VM class: '{klass}'");
            }
            Qube qube = app.NewForLoad(klass);
            List<(string, string)> late = [];
            foreach ((string name, string value) in PropertyElements(domain))
            {
                if (!qube.Properties.Properties.TryGetValue(name, out Property<Qube>? p))
                {
                    throw new QubesException("QubesException", $"property '{name}' not applicable to '{klass}'");
                }
                if (p.LoadStage == 4 || p.Type == PropertyType.Vm)
                {
                    late.Add((name, value));
                }
                else
                {
                    qube.Properties.Load(name, Parse(app, p.Type, name, value));
                }
            }
            if (!qube.Properties.HasValue("name") || !qube.Properties.HasValue("qid"))
            {
                throw new QubesException("QubesException", $"a {klass} in qubes.xml has no name or qid");
            }
            if (!qube.Properties.HasValue("uuid") || qube.Properties.IsDefault("uuid"))
            {
                qube.Properties.Load("uuid", qube.IsAdmin ? "00000000-0000-0000-0000-000000000000" : Guid.NewGuid().ToString("D"));
            }
            foreach (XElement feature in domain.Elements("features").Elements("feature"))
            {
                qube.Features[(string?)feature.Attribute("name") ?? string.Empty] = feature.Value;
            }
            foreach (XElement tag in domain.Elements("tags").Elements("tag"))
            {
                qube.Tags.Add((string?)tag.Attribute("name") ?? string.Empty);
            }
            app.AddLoaded(qube);
            loaded.Add((qube, late));
        }
        if (app.Find("dom0") == null)
        {
            app.AddDom0();
        }

        // stage 3: global properties
        foreach ((string name, string value) in PropertyElements(root))
        {
            Property<QubesApp> p = app.Properties.Definition(name);
            app.Properties.Load(name, p.Type == PropertyType.Vm ? RefName(app, value) : Parse(app, p.Type, name, value));
        }

        // stage 4: qube references, which may name any qube of the file
        foreach ((Qube qube, List<(string Name, string Value)> late) in loaded)
        {
            foreach ((string name, string value) in late)
            {
                Property<Qube> p = qube.Properties.Definition(name);
                qube.Properties.Load(name, p.Type == PropertyType.Vm ? RefName(app, value) : value);
            }
        }
        return app;
    }

    /// <summary>The <c>property</c> children of an element's <c>properties</c>: a <c>ref</c> attribute wins over the text.</summary>
    private static IEnumerable<(string Name, string Value)> PropertyElements(XElement holder)
        => holder.Elements("properties").Elements("property").Select(static p => ((string?)p.Attribute("name") ?? string.Empty, (string?)p.Attribute("ref") ?? p.Value));

    private static string RefName(QubesApp app, string value)
    {
        if (value.Length > 0 && app.Find(value) == null)
        {
            throw new QubesException("QubesException", $"qubes.xml refers to a qube that is not in it: '{value}'");
        }
        return value;
    }

    private static object? Parse(QubesApp app, PropertyType type, string name, string value) => type switch
    {
        PropertyType.Int => int.TryParse(value, NumberStyles.AllowLeadingSign, CultureInfo.InvariantCulture, out int i)
            ? i : throw new QubesException("QubesException", $"property '{name}': not an integer: '{value}'"),
        PropertyType.Bool => BoolLiteral.Parse(value),
        PropertyType.Label => Label.Find(app.Labels, value),
        _ => value,
    };
}
