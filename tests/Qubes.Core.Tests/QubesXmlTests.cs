using System;
using System.IO;
using System.Linq;
using System.Text;
using System.Xml.Linq;
using Xunit;

namespace Qubes.Core.Tests;

/// <summary>qubes.xml writing and reading (spec core-stack §2).</summary>
public sealed class QubesXmlTests : IDisposable
{
    private readonly string _dir = Directory.CreateTempSubdirectory("qxml-").FullName;

    public void Dispose() => Directory.Delete(_dir, recursive: true);

    [Fact]
    public void Only_explicit_properties_are_written_by_name_with_features_and_tags()
    {
        QubesApp app = ModelTests.System();
        Qube work = app.Get("work");
        work.Properties.Set("netvm", "");
        work.Features["service.network-manager"] = "1";
        work.Features["check-updates"] = "";
        work.Tags.Add("created-by-dom0");
        app.Properties.Set("default_template", "debian-12");
        XElement domain = QubesXml.ToXml(app).Root!.Element("domains")!.Elements("domain").Single(d => d.Descendants("property").Any(p => p.Value == "work"));
        Assert.Equal("AppVM", (string?)domain.Attribute("class"));
        Assert.Equal("domain-" + work.Qid, (string?)domain.Attribute("id"));
        Assert.Equal(["label", "name", "qid", "uuid", "netvm", "template"], domain.Element("properties")!.Elements().Select(p => (string)p.Attribute("name")!));
        Assert.Equal("blue", domain.Element("properties")!.Elements().First().Value);
        Assert.Equal(["service.network-manager=1", "check-updates="], domain.Element("features")!.Elements().Select(f => $"{f.Attribute("name")!.Value}={f.Value}"));
        Assert.Equal("created-by-dom0", (string?)domain.Element("tags")!.Element("tag")!.Attribute("name"));

        string text = Encoding.UTF8.GetString(QubesXml.Serialize(app));
        Assert.StartsWith("<qubes>\n  <labels>\n    <label id=\"label-1\" color=\"0xcc0000\">red</label>", text, StringComparison.Ordinal);
        Assert.Contains("<property name=\"netvm\"></property>", text, StringComparison.Ordinal);
        Assert.Contains("<property name=\"default_template\">debian-12</property>", text, StringComparison.Ordinal);
        Assert.DoesNotContain("memory", text, StringComparison.Ordinal);
    }

    [Fact]
    public void A_saved_store_loads_back_to_the_same_system()
    {
        QubesApp app = ModelTests.System();
        Qube work = app.Get("work");
        work.Properties.Set("memory", 1234);
        work.Properties.Set("debug", "yes");
        work.Properties.Set("default_dispvm", "default-dvm");
        work.Features["a"] = "x";
        work.Tags.Add("t1");
        app.Properties.Set("default_netvm", "sys-net");
        string path = Path.Combine(_dir, "qubes.xml");
        QubesXml.Save(app, path);
        Assert.Equal(["qubes.xml"], Directory.GetFiles(_dir).Select(Path.GetFileName));
        Assert.True(OperatingSystem.IsLinux());
        if (OperatingSystem.IsLinux())
        {
            Assert.Equal(UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.GroupRead | UnixFileMode.GroupWrite, File.GetUnixFileMode(path));
        }

        QubesApp loaded = QubesXml.Load(path);
        Assert.Equal(app.Qubes.Select(q => (q.Name, q.Class, q.Qid, q.Uuid)), loaded.Qubes.Select(q => (q.Name, q.Class, q.Qid, q.Uuid)));
        Qube again = loaded.Get("work");
        Assert.Equal(1234, again.Properties.Get("memory"));
        Assert.Equal(true, again.Properties.Get("debug"));
        Assert.True(again.Properties.IsDefault("vcpus"));
        Assert.Equal("default-dvm", again.Ref("default_dispvm")!.Name);
        Assert.Equal("sys-net", again.Ref("netvm")!.Name);
        Assert.True(again.Properties.IsDefault("netvm"));
        Assert.Equal("x", again.Features["a"]);
        Assert.Contains("t1", again.Tags);
        Assert.Equal(QubesXml.Serialize(app), QubesXml.Serialize(loaded));
    }

    [Fact]
    public void Legacy_forms_are_read_ref_attributes_and_the_old_gray()
    {
        XDocument document = XDocument.Parse("""
            <?xml version="1.0" encoding="utf-8"?>
            <qubes version="3.0">
              <labels><label id="label-5" color="0x555753">gray</label><label id="label-8" color="0x000000">black</label></labels>
              <domains>
                <domain id="domain-3" class="StandaloneVM">
                  <properties>
                    <property name="name">old</property><property name="qid">3</property>
                    <property name="label" ref="label-5">ignored</property>
                  </properties>
                </domain>
              </domains>
            </qubes>
            """);
        QubesApp app = QubesXml.FromXml(document);
        Qube old = app.Get("old");
        Assert.Equal("gray", old.Label.Name);
        Assert.Equal("0x555555", old.Label.Color);
        Assert.True(Guid.TryParse(old.Uuid, out _));
        Assert.Equal("00000000-0000-0000-0000-000000000000", app.Dom0.Uuid);
    }

    [Theory]
    [InlineData("<qubes><domains><domain class=\"FancyVM\"><properties/></domain></domains></qubes>", "no such VM class: 'FancyVM'")]
    [InlineData("<qubes><domains><domain class=\"TemplateVM\"><properties><property name=\"name\">t</property><property name=\"qid\">1</property><property name=\"template\">x</property></properties></domain></domains></qubes>", "property 'template' not applicable to 'TemplateVM'")]
    [InlineData("<qubes><domains><domain class=\"AppVM\"><properties><property name=\"name\">a</property><property name=\"qid\">1</property><property name=\"netvm\">ghost</property></properties></domain></domains></qubes>", "qubes.xml refers to a qube that is not in it: 'ghost'")]
    public void A_bad_store_is_refused_with_the_reason(string xml, string message)
        => Assert.Equal(message, Assert.Throws<QubesException>(() => QubesXml.FromXml(XDocument.Parse(xml))).Message);

    [Fact]
    public void A_missing_store_says_so()
    {
        string path = Path.Combine(_dir, "none.xml");
        Assert.Equal($"Qubes XML store '{path}' is missing; use qubes-create tool", Assert.Throws<QubesException>(() => QubesXml.Load(path)).Message);
    }
}
