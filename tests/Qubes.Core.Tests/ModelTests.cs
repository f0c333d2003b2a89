using System;
using System.Linq;
using Xunit;

namespace Qubes.Core.Tests;

/// <summary>Names, labels, bool literals, properties with their defaults and checks (spec core-stack §3-§5, §11).</summary>
public sealed class ModelTests
{
    /// <summary>dom0, a template, an AppVM on it, a network qube and a disposable template.</summary>
    internal static QubesApp System()
    {
        QubesApp app = new();
        app.AddDom0();
        app.Create("TemplateVM", "debian-12", "black");
        app.Create("AppVM", "sys-net", "red", [("template", "debian-12"), ("provides_network", "True")]);
        app.Create("AppVM", "work", "blue", [("template", "debian-12")]);
        app.Create("AppVM", "default-dvm", "red", [("template", "debian-12"), ("template_for_dispvms", "yes")]);
        return app;
    }

    [Theory]
    [InlineData("work", null)]
    [InlineData("a", null)]
    [InlineData("Work_2.x-y", null)]
    [InlineData("abcdefghijklmnopqrstuvwxyz01234", null)]
    [InlineData("abcdefghijklmnopqrstuvwxyz012345", "VM name must be shorter than 32 characters")]
    [InlineData("1work", "VM name cannot start with hyphen, underscore, dot or numbers")]
    [InlineData("-work", "VM name cannot start with hyphen, underscore, dot or numbers")]
    [InlineData("_work", "VM name cannot start with hyphen, underscore, dot or numbers")]
    [InlineData(".work", "VM name cannot start with hyphen, underscore, dot or numbers")]
    [InlineData("", "VM name contains illegal characters")]
    [InlineData("wo rk", "VM name contains illegal characters")]
    [InlineData("wörk", "VM name contains illegal characters")]
    [InlineData("work/x", "VM name contains illegal characters")]
    [InlineData("Domain-0", "VM name cannot be 'Domain-0'")]
    [InlineData("none", "VM name cannot be 'none' nor 'default'")]
    [InlineData("default", "VM name cannot be 'none' nor 'default'")]
    [InlineData("None", null)]
    [InlineData("work-dm", "VM name cannot end with -dm")]
    public void Names_follow_the_rules_in_order(string name, string? error) => Assert.Equal(error, VmName.Check(name));

    [Theory]
    [InlineData("blue", 6)]
    [InlineData("6", 6)]
    [InlineData("label-1", 1)]
    [InlineData("black", 8)]
    public void Labels_are_found_by_name_index_or_xml_id(string text, int index)
        => Assert.Equal(index, Label.Find(Label.Defaults, text).Index);

    [Fact]
    public void An_unknown_label_is_a_label_not_found_error()
    {
        QubesException e = Assert.Throws<QubesException>(() => Label.Find(Label.Defaults, "untrusted"));
        Assert.Equal("QubesLabelNotFoundError", e.TypeName);
        Assert.Equal("Label does not exist: 'untrusted'", e.Message);
    }

    [Theory]
    [InlineData("1", true)]
    [InlineData("YES", true)]
    [InlineData("True", true)]
    [InlineData("on", true)]
    [InlineData("0", false)]
    [InlineData("No", false)]
    [InlineData("false", false)]
    [InlineData("OFF", false)]
    public void Bool_literals(string text, bool value) => Assert.Equal(value, BoolLiteral.Parse(text));

    [Fact]
    public void A_bad_bool_literal_is_refused()
        => Assert.Equal("Invalid literal for boolean property: 'maybe'", Assert.Throws<QubesException>(() => BoolLiteral.Parse("maybe")).Message);

    [Fact]
    public void Property_lists_per_class_have_the_spec_counts_and_canonical_order()
    {
        Assert.Equal(12, PropertyCatalog.Canonical("AdminVM").Count());
        Assert.Equal(48, PropertyCatalog.Canonical("AppVM").Count());
        Assert.Equal(47, PropertyCatalog.Canonical("TemplateVM").Count());
        Assert.Equal(47, PropertyCatalog.Canonical("StandaloneVM").Count());
        Assert.Equal(50, PropertyCatalog.Canonical("DispVM").Count());
        Assert.Equal(10, PropertyCatalog.Canonical("RemoteVM").Count());
        Assert.Equal(["devices_denied", "icon", "include_in_backups", "keyboard_layout", "klass", "label", "maxmem", "name", "qid", "updateable", "uuid", "default_dispvm"],
            PropertyCatalog.Canonical("AdminVM").Select(static p => p.Name));
        Assert.Equal(["audiovm", "bootmode", "default_dispvm", "guivm", "kernelopts", "management_dispvm", "netvm", "template"],
            PropertyCatalog.Canonical("AppVM").Select(static p => p.Name).TakeLast(8));
        Assert.Equal(20, GlobalProperties.All.Count);
    }

    [Fact]
    public void Defaults_follow_the_template_until_set_and_again_after_reset()
    {
        QubesApp app = System();
        Qube template = app.Get("debian-12");
        Qube work = app.Get("work");
        Assert.Equal(400, work.Properties.Get("memory"));
        Assert.True(work.Properties.IsDefault("memory"));
        template.Properties.Set("memory", "800");
        Assert.Equal(800, work.Properties.Get("memory"));
        work.Properties.Set("memory", 1000);
        Assert.False(work.Properties.IsDefault("memory"));
        Assert.Equal(1000, work.Properties.Get("memory"));
        work.Properties.Reset("memory");
        Assert.Equal(800, work.Properties.Get("memory"));
        Assert.Equal("user", work.Properties.Get("default_user"));
        Assert.Equal(60, work.Properties.Get("qrexec_timeout"));
        Assert.Equal("pvh", work.Properties.Get("virt_mode"));
    }

    [Fact]
    public void Computed_defaults_icon_updateable_klass_and_addresses()
    {
        QubesApp app = System();
        Qube work = app.Get("work");
        Assert.Equal("appvm-blue", work.Properties.Get("icon"));
        Assert.Equal("templatevm-red", app.Get("default-dvm").Properties.Get("icon"));
        Assert.Equal("templatevm-black", app.Get("debian-12").Properties.Get("icon"));
        Assert.Equal("adminvm-black", app.Dom0.Properties.Get("icon"));
        Assert.Equal(false, work.Properties.Get("updateable"));
        Assert.Equal(true, app.Get("debian-12").Properties.Get("updateable"));
        Assert.Equal("AppVM", work.Properties.Get("klass"));
        Assert.Null(work.Properties.Get("ip"));
        work.Properties.Set("netvm", "sys-net");
        Assert.Equal("10.137.0." + work.Qid, work.Properties.Get("ip"));
        Assert.Equal("10.139.1.1 10.139.1.2", work.Properties.Get("dns"));
        Assert.Equal(-1, work.Properties.Get("xid"));
    }

    [Theory]
    [InlineData(1, "10.137.0.1")]
    [InlineData(254, "10.137.0.254")]
    [InlineData(255, "10.137.1.1")]
    [InlineData(508, "10.137.1.254")]
    [InlineData(509, "10.137.2.1")]
    public void Addresses_avoid_dot_zero_and_dot_255(int qid, string address)
    {
        QubesApp app = new();
        app.AddDom0();
        Qube q = app.NewForLoad("StandaloneVM");
        q.Properties.Load("name", "x");
        q.Properties.Load("qid", qid);
        Assert.Equal(address, PropertyCatalog.Address(q));
    }

    [Fact]
    public void Write_once_and_read_only_properties_refuse_changes()
    {
        QubesApp app = System();
        Qube work = app.Get("work");
        Assert.Equal("AttributeError", Assert.Throws<QubesException>(() => work.Properties.Set("name", "other")).TypeName);
        Assert.Equal("AttributeError", Assert.Throws<QubesException>(() => work.Properties.Reset("qid")).TypeName);
        QubesException e = Assert.Throws<QubesException>(() => work.Properties.Set("klass", "TemplateVM"));
        Assert.Equal("QubesPropertyValueError", e.TypeName);
        Assert.Equal("property 'klass' on AppVM instance cannot be set", e.Message);
        Assert.Equal("QubesNoSuchPropertyError", Assert.Throws<QubesException>(() => work.Properties.Get("colour")).TypeName);
    }

    [Fact]
    public void Unset_properties_have_no_value()
    {
        QubesApp app = System();
        Qube work = app.Get("work");
        Assert.False(work.Properties.HasValue("backup_timestamp"));
        Assert.Equal("QubesPropertyValueError", Assert.Throws<QubesException>(() => work.Properties.Get("backup_timestamp")).TypeName);
        Assert.False(app.Properties.HasValue("default_template"));
        app.Properties.Set("default_template", "debian-12");
        Assert.Equal("debian-12", app.Global("default_template"));
    }

    [Fact]
    public void Netvm_must_provide_network_and_make_no_loop()
    {
        QubesApp app = System();
        Qube work = app.Get("work");
        Assert.Equal("The debian-12 qube does not provide network", Assert.Throws<QubesException>(() => work.Properties.Set("netvm", "debian-12")).Message);
        Qube net = app.Get("sys-net");
        Assert.Equal("Loops in network are unsupported", Assert.Throws<QubesException>(() => net.Properties.Set("netvm", "sys-net")).Message);
        Assert.Equal("QubesVMNotFoundError", Assert.Throws<QubesException>(() => work.Properties.Set("netvm", "ghost")).TypeName);
        work.Properties.Set("netvm", "");
        Assert.Equal("", work.Properties.Get("netvm"));
        Assert.Null(work.Ref("netvm"));
    }

    [Fact]
    public void Dispvm_templates_are_checked_where_they_are_named()
    {
        QubesApp app = System();
        Qube work = app.Get("work");
        Assert.Equal("Cannot set invalid property to qube 'work', default_dispvm 'work' has template_for_dispvms set to False",
            Assert.Throws<QubesException>(() => work.Properties.Set("default_dispvm", "work")).Message);
        work.Properties.Set("default_dispvm", "default-dvm");
        QubesException inUse = Assert.Throws<QubesException>(() => app.Get("default-dvm").Properties.Set("template_for_dispvms", false));
        Assert.Equal("QubesVMInUseError", inUse.TypeName);
        Assert.Equal("Cannot set invalid property to system, default_dispvm 'work' has template_for_dispvms set to False",
            Assert.Throws<QubesException>(() => app.Properties.Set("default_dispvm", "work")).Message);
    }

    [Fact]
    public void Template_must_be_a_template_and_cannot_be_unset()
    {
        QubesApp app = System();
        Qube work = app.Get("work");
        Assert.Equal("wrong VM class: expected TemplateVM, got AppVM", Assert.Throws<QubesException>(() => work.Properties.Set("template", "sys-net")).Message);
        Assert.Equal("Cannot unset template", Assert.Throws<QubesException>(() => work.Properties.Reset("template")).Message);
    }

    [Theory]
    [InlineData("mac", "00:16:3E:5E:6C:01", "00:16:3e:5e:6c:01")]
    [InlineData("virt_mode", "HVM", "hvm")]
    [InlineData("devices_denied", "u******b******", "b******u******")]
    [InlineData("keyboard_layout", "de+nodeadkeys+", "de+nodeadkeys+")]
    public void Setters_normalise_values(string property, string value, string stored)
    {
        Qube work = System().Get("work");
        work.Properties.Set(property, value);
        Assert.Equal(stored, work.Properties.Get(property));
    }

    [Theory]
    [InlineData("mac", "00:16:3e:5e:6c")]
    [InlineData("virt_mode", "kvm")]
    [InlineData("memory", "0")]
    [InlineData("memory", "lots")]
    [InlineData("vcpus", "-1")]
    [InlineData("kernel", "../vmlinuz")]
    [InlineData("default_user", "us er")]
    [InlineData("keyboard_layout", "us")]
    [InlineData("devices_denied", "x123456")]
    [InlineData("autostart", "maybe")]
    public void Setters_refuse_bad_values(string property, string value)
    {
        Qube work = System().Get("work");
        Assert.Throws<QubesException>(() => work.Properties.Set(property, value));
        Assert.True(work.Properties.IsDefault(property));
    }

    [Fact]
    public void Creation_assigns_the_lowest_free_qid_and_a_uuid_and_refuses_duplicates()
    {
        QubesApp app = System();
        Assert.Equal([0, 1, 2, 3, 4], app.Qubes.Select(static q => q.Qid).Order());
        app.Remove("work");
        Qube again = app.Create("AppVM", "again", "green", [("template", "debian-12")]);
        Assert.Equal(3, again.Qid);
        Assert.True(Guid.TryParse(again.Uuid, out _));
        Assert.Equal("QubesVMAlreadyExistsError", Assert.Throws<QubesException>(() => app.Create("AppVM", "again", "green")).TypeName);
        Assert.Equal("QubesValueError", Assert.Throws<QubesException>(() => app.Create("AppVM", "1bad", "green")).TypeName);
        Assert.Equal(["dom0", "again", "debian-12", "default-dvm", "sys-net"], app.Qubes.Select(static q => q.Name));
    }

    [Fact]
    public void A_referenced_qube_or_dom0_cannot_be_removed()
    {
        QubesApp app = System();
        Assert.Equal("Domain is in use: 'debian-12';  see 'journalctl -u qubesd -e' in dom0 for details",
            Assert.Throws<QubesException>(() => app.Remove("debian-12")).Message);
        Assert.Equal("'dom0' cannot be removed", Assert.Throws<QubesException>(() => app.Remove("dom0")).Message);
        app.Properties.Set("default_netvm", "sys-net");
        Assert.Throws<QubesException>(() => app.Remove("sys-net"));
        Assert.Equal("QubesVMNotFoundError", Assert.Throws<QubesException>(() => app.Remove("ghost")).TypeName);
    }
}
