using System.Linq;
using System.Text;
using Qubes.Core.Api;
using Xunit;

namespace Qubes.Core.Tests;

/// <summary>Admin API framing, method shapes, replies and the main methods (spec core-stack §9).</summary>
public sealed class AdminApiTests
{
    private readonly QubesApp _app = ModelTests.System();

    private (string Reply, bool Changed) Call(string header, string payload = "")
    {
        Assert.True(AdminRequest.TryParse(Encoding.UTF8.GetBytes(header + "\0" + payload), out AdminRequest? request, out string? error), error);
        (byte[] reply, bool changed) = new AdminApi(_app).Handle(request);
        return (Encoding.UTF8.GetString(reply), changed);
    }

    private string Ok(string header, string payload = "")
    {
        string reply = Call(header, payload).Reply;
        Assert.StartsWith("0\0", reply, System.StringComparison.Ordinal);
        return reply[2..];
    }

    private (string Type, string Message) Error(string header, string payload = "")
    {
        string[] parts = Call(header, payload).Reply.Split('\0');
        Assert.Equal("2", parts[0]);
        Assert.Equal("", parts[2]);
        return (parts[1], parts[3]);
    }

    [Theory]
    [InlineData("admin.vm.List+ dom0 name dom0")]
    [InlineData("admin.vm.List dom0 name dom0")]
    [InlineData("admin.vm.List+ dom0 keyword adminvm")]
    public void Requests_are_framed_with_or_without_the_plus_and_the_adminvm_keyword(string header)
    {
        Assert.True(AdminRequest.TryParse(Encoding.ASCII.GetBytes(header + "\0"), out AdminRequest? r, out _));
        Assert.Equal("admin.vm.List", r.Method);
        Assert.Equal("", r.Argument);
        Assert.Equal("dom0", r.Destination);
    }

    [Theory]
    [InlineData("admin.vm.List+ dom0 name dom0")]
    [InlineData("admin.vm.List+ dom0 name\0")]
    [InlineData("admin.vm.List+ dom0 uuid dom0\0")]
    [InlineData("admin.vm.List+ dom0 name dom0 extra\0")]
    public void A_request_that_cannot_be_framed_gets_no_reply(string raw)
        => Assert.False(AdminRequest.TryParse(Encoding.ASCII.GetBytes(raw), out _, out _));

    [Fact]
    public void A_request_over_64_KiB_is_dropped()
    {
        Assert.False(AdminRequest.TryParse(new byte[AdminRequest.MaxLength + 1], out _, out string? error));
        Assert.Equal("request too long", error);
    }

    [Fact]
    public void Vm_list_shows_dom0_first_then_by_name()
    {
        string[] lines = Ok("admin.vm.List+ dom0 name dom0").Split('\n', System.StringSplitOptions.RemoveEmptyEntries);
        Assert.Equal(["dom0", "debian-12", "default-dvm", "sys-net", "work"], lines.Select(static l => l.Split(' ')[0]));
        Assert.Equal("dom0 class=AdminVM state=Running uuid=00000000-0000-0000-0000-000000000000", lines[0]);
        Assert.StartsWith("work class=AppVM state=Halted uuid=", Ok("admin.vm.List+ dom0 name work"), System.StringComparison.Ordinal);
    }

    [Fact]
    public void Property_get_shows_default_flag_type_and_value_without_newline()
    {
        Assert.Equal("default=True type=int 400", Ok("admin.vm.property.Get+memory dom0 name work"));
        Assert.Equal("default=False type=vm debian-12", Ok("admin.vm.property.Get+template dom0 name work"));
        Assert.Equal("default=False type=label blue", Ok("admin.vm.property.Get+label dom0 name work"));
        Assert.Equal("default=True type=bool False", Ok("admin.vm.property.Get+debug dom0 name work"));
        Assert.Equal("default=True type=vm ", Ok("admin.vm.property.Get+netvm dom0 name work"));
        Assert.Equal("default=True type=int ", Ok("admin.vm.property.Get+backup_timestamp dom0 name work"));
        Assert.Equal(("QubesNoSuchPropertyError", "Invalid property 'colour' of AppVM"), Error("admin.vm.property.Get+colour dom0 name work"));
    }

    [Fact]
    public void Property_set_parses_by_type_and_reports_a_change()
    {
        Assert.Equal(("0\0", true), Call("admin.vm.property.Set+memory dom0 name work", "1024"));
        Assert.Equal("default=False type=int 1024", Ok("admin.vm.property.Get+memory dom0 name work"));
        Assert.Equal(("QubesPropertyValueError", "Failed to parse property value as int"), Error("admin.vm.property.Set+memory dom0 name work", "many"));
        Assert.Equal(("QubesValueError", "Invalid literal for boolean property: 'perhaps'"), Error("admin.vm.property.Set+debug dom0 name work", "perhaps"));
        Assert.Equal("QubesPropertyValueError", Error("admin.vm.property.Set+default_user dom0 name work", "a\tb").Type);
        Ok("admin.vm.property.Set+netvm dom0 name work", "sys-net");
        Assert.Equal("default=False type=vm sys-net", Ok("admin.vm.property.Get+netvm dom0 name work"));
        Ok("admin.vm.property.Reset+memory dom0 name work");
        Assert.Equal("default=True type=int 400", Ok("admin.vm.property.Get+memory dom0 name work"));
        Assert.Equal("type=int 400", Ok("admin.vm.property.GetDefault+memory dom0 name work"));
        Assert.Equal("", Ok("admin.vm.property.GetDefault+backup_timestamp dom0 name work"));
        Assert.False(Call("admin.vm.property.Get+memory dom0 name work").Changed);
    }

    [Fact]
    public void Property_list_and_getall_follow_the_canonical_order()
    {
        string[] names = Ok("admin.vm.property.List+ dom0 name dom0").Split('\n', System.StringSplitOptions.RemoveEmptyEntries);
        Assert.Equal(12, names.Length);
        Assert.Equal("default_dispvm", names[^1]);
        string[] all = Ok("admin.vm.property.GetAll+ dom0 name work").Split('\n', System.StringSplitOptions.RemoveEmptyEntries);
        Assert.Equal(48, all.Length);
        Assert.Contains("memory default=True type=int 400", all);
        Assert.Equal(20, Ok("admin.property.List+ dom0 name dom0").Split('\n', System.StringSplitOptions.RemoveEmptyEntries).Length);
        Assert.Equal("default=True type=int 60", Ok("admin.property.Get+default_qrexec_timeout dom0 name dom0"));
    }

    [Fact]
    public void Method_shapes_are_checked()
    {
        Assert.Equal(("ProtocolError", "no such method: 'admin.vm.Fly'"), Error("admin.vm.Fly+ dom0 name dom0"));
        Assert.Equal(("ProtocolError", "expected an argument"), Error("admin.vm.property.Get+ dom0 name work"));
        Assert.Equal(("ProtocolError", "unexpected argument"), Error("admin.vm.List+x dom0 name dom0"));
        Assert.Equal(("ProtocolError", "unexpected payload"), Error("admin.vm.List+ dom0 name dom0", "x"));
        Assert.Equal(("ProtocolError", "expected destination to be AdminVM"), Error("admin.property.List+ dom0 name work"));
        Assert.Equal(("QubesVMNotFoundError", "No such domain: 'ghost'"), Error("admin.vm.List+ dom0 name ghost"));
        Assert.Equal(("QubesValueError", "VM name contains illegal characters"), Error("admin.vm.List+ dom0 name a/b"));
        Assert.Equal(("QubesVMInvalidUUIDError", "VM UUID is not valid: 'uuid:XYZ'"), Error("admin.vm.List+ dom0 name uuid:XYZ"));
        Assert.StartsWith("work ", Ok($"admin.vm.List+ dom0 name uuid:{_app.Get("work").Uuid}"), System.StringComparison.Ordinal);
    }

    [Fact]
    public void Create_tags_the_creator_and_checks_options_and_the_disposable_template()
    {
        _app.Get("sys-net").Features["tag-created-vm-with"] = "managed net";
        Assert.Equal(("0\0", true), Call("admin.vm.Create.AppVM+debian-12 sys-net name dom0", "name=mail label=green"));
        Qube mail = _app.Get("mail");
        Assert.Equal(["created-by-sys-net", "managed", "net"], mail.Tags);
        Assert.Equal("debian-12", mail.Ref("template")!.Name);
        Assert.Equal(("QubesVMAlreadyExistsError", "Qube already exists: mail"), Error("admin.vm.Create.AppVM+debian-12 dom0 name dom0", "name=mail label=green"));
        Assert.Equal(("ProtocolError", "Creation requested without key: label"), Error("admin.vm.Create.AppVM+debian-12 dom0 name dom0", "name=x"));
        Assert.Equal(("ProtocolError", "Options must be unique"), Error("admin.vm.Create.AppVM+debian-12 dom0 name dom0", "name=x name=y label=red"));
        Assert.Equal(("ProtocolError", "TemplateVM cannot be based on template"), Error("admin.vm.Create.TemplateVM+debian-12 dom0 name dom0", "name=x label=red"));
        Assert.Equal(("QubesLabelNotFoundError", "Label does not exist: 'untrusted'"), Error("admin.vm.Create.StandaloneVM dom0 name dom0", "name=x label=untrusted"));
        Assert.Equal(("QubesValueError", "template for disposable (work) needs to be an AppVM with template_for_dispvms=True"),
            Error("admin.vm.Create.DispVM+work dom0 name dom0", "name=d label=red"));
        Ok("admin.vm.Create.DispVM+default-dvm dom0 name dom0", "name=d label=red");
        Assert.Equal("default-dvm", _app.Get("d").Ref("default_dispvm")!.Name);
    }

    [Fact]
    public void Features_keep_insertion_order_and_are_validated()
    {
        Ok("admin.vm.feature.Set+zeta dom0 name work", "1");
        Ok("admin.vm.feature.Set+alpha dom0 name work", "");
        Assert.Equal("zeta\nalpha\n", Ok("admin.vm.feature.List+ dom0 name work"));
        Assert.Equal("", Ok("admin.vm.feature.Get+alpha dom0 name work"));
        Assert.Equal(("QubesFeatureNotFoundError", "Feature not set for domain work: nope"), Error("admin.vm.feature.Get+nope dom0 name work"));
        Assert.Equal(("ProtocolError", "feature name contains illegal characters"), Error("admin.vm.feature.Set+a/b dom0 name work", "1"));
        Assert.Equal(("ProtocolError", "x value contains illegal characters"), Error("admin.vm.feature.Set+x dom0 name work", "a\nb"));
        Assert.Equal("PermissionDenied", Error("admin.vm.feature.Set+preload-dispvm dom0 name work", "1").Type);
        Assert.Equal(("QubesValueError", "Service name must not exceed 48 bytes"), Error("admin.vm.feature.Set+service." + new string('s', 49) + " dom0 name work", "1"));
        _app.Get("debian-12").Features["os"] = "Linux";
        Assert.Equal("Linux", Ok("admin.vm.feature.CheckWithTemplate+os dom0 name work"));
        Ok("admin.vm.feature.Remove+zeta dom0 name work");
        Assert.Equal("alpha\n", Ok("admin.vm.feature.List+ dom0 name work"));
    }

    [Fact]
    public void Tags_are_validated_and_created_by_is_reserved_to_dom0()
    {
        Ok("admin.vm.tag.Set+work dom0 name work");
        Assert.Equal("1", Ok("admin.vm.tag.Get+work dom0 name work"));
        Assert.Equal("0", Ok("admin.vm.tag.Get+other dom0 name work"));
        Assert.Equal(("QubesInvalidTagError", "disallowed characters"), Error("admin.vm.tag.Set+a.b dom0 name work"));
        Assert.Equal("PermissionDenied", Error("admin.vm.tag.Set+created-by-x sys-net name work").Type);
        Ok("admin.vm.tag.Set+created-by-x dom0 name work");
        Assert.Equal("created-by-x\nwork\n", Ok("admin.vm.tag.List+ dom0 name work"));
        Assert.Equal(("QubesTagNotFoundError", "Tag not set for domain work: gone"), Error("admin.vm.tag.Remove+gone dom0 name work"));
    }

    [Fact]
    public void Labels_and_classes_are_listed()
    {
        Assert.Equal("red\norange\nyellow\ngreen\ngray\nblue\npurple\nblack\n", Ok("admin.label.List+ dom0 name dom0"));
        Assert.Equal("0x3465a4", Ok("admin.label.Get+blue dom0 name dom0"));
        Assert.Equal("6", Ok("admin.label.Index+blue dom0 name dom0"));
        Assert.Equal("AdminVM\nAppVM\nDispVM\nRemoteVM\nStandaloneVM\nTemplateVM\n", Ok("admin.vmclass.List+ dom0 name dom0"));
    }

    [Fact]
    public void Remove_refuses_dom0_and_referenced_qubes()
    {
        Assert.Equal(("QubesVMInUseError", "'dom0' cannot be removed"), Error("admin.vm.Remove+ dom0 name dom0"));
        Assert.Equal("QubesVMInUseError", Error("admin.vm.Remove+ dom0 name debian-12").Type);
        Assert.Equal(("0\0", true), Call("admin.vm.Remove+ dom0 name work"));
        Assert.Null(_app.Find("work"));
    }

    [Fact]
    public void System_info_feeds_the_policy_engine()
    {
        Qube work = _app.Get("work");
        work.Tags.Add("work");
        work.Properties.Set("default_dispvm", "default-dvm");
        _app.Get("default-dvm").Features["internal"] = "1";
        string json = Ok("internal.GetSystemInfo+ dom0 name dom0");
        Assert.StartsWith("{\"domains\": {\"dom0\": {\"internal\": null, \"tags\": [], \"type\": \"AdminVM\", \"template_for_dispvms\": false, \"default_dispvm\": null, \"icon\": \"appvm-black\", \"label\": \"0x000000\", \"guivm\": null, \"relayvm\": null, \"transport_rpc\": null, \"power_state\": \"Running\", \"uuid\": \"00000000-0000-0000-0000-000000000000\"}, \"debian-12\": {",
            json, System.StringComparison.Ordinal);
        Qrexec.Policy.SystemInfo info = Qrexec.Policy.SystemInfo.Parse(json);
        Assert.Equal(["dom0", "debian-12", "default-dvm", "sys-net", "work"], info.Qubes.Select(static q => q.Name));
        Qrexec.Policy.QubeInfo w = info.Find("work")!;
        Assert.Equal(["work"], w.Tags);
        Assert.Equal("default-dvm", w.DefaultDispVm);
        Assert.Equal("dom0", w.GuiVm);
        Assert.True(info.Find("default-dvm")!.TemplateForDispVms);
        Assert.True(info.Find("default-dvm")!.Internal);
        Assert.Same(w, info.Find("uuid:" + work.Uuid));
    }
}
