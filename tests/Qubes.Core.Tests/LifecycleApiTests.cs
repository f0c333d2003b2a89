using System.Collections.Generic;
using System.Linq;
using System.Text;
using Qubes.Core.Api;
using Xunit;

namespace Qubes.Core.Tests;

/// <summary>The lifecycle, disposable and volume methods' checks (spec core-stack §8, §9.5, §9.6) on a runtime that records what it is asked.</summary>
public sealed class LifecycleApiTests
{
    private readonly FakeRuntime _runtime = new();
    private readonly QubesApp _app;
    private readonly AdminApi _api;

    public LifecycleApiTests()
    {
        _app = new QubesApp(_runtime);
        _app.AddDom0();
        _app.Create("TemplateVM", "debian-12", "black");
        _app.Create("AppVM", "sys-net", "red", [("template", "debian-12"), ("provides_network", "True")]);
        _app.Create("AppVM", "work", "blue", [("template", "debian-12"), ("netvm", "sys-net")]);
        _api = new AdminApi(_app);
    }

    private sealed class FakeRuntime : IQubeRuntime
    {
        public HashSet<string> Running { get; } = [];
        public List<string> Log { get; } = [];

        public int DomainId(Qube qube) => Running.Contains(qube.Name) ? 7 : -1;
        public string StartTime(Qube qube) => string.Empty;
        public string PowerState(Qube qube) => Running.Contains(qube.Name) ? "Running" : "Halted";
        public long CpuTimeNs(Qube qube) => 1234;
        public void Start(Qube qube) { Log.Add("start " + qube.Name); Running.Add(qube.Name); }
        public void Shutdown(Qube qube, bool wait) { Log.Add($"shutdown {qube.Name} {wait}"); Running.Remove(qube.Name); }
        public void Kill(Qube qube) { Log.Add("kill " + qube.Name); Running.Remove(qube.Name); }
        public void CreateStorage(Qube qube) => Log.Add("storage " + qube.Name);
        public void RemoveStorage(Qube qube) => Log.Add("remove-storage " + qube.Name);
        public IReadOnlyList<string> Volumes(Qube qube) => qube.Class == "TemplateVM" ? ["private", "root"] : ["private"];
        public void CloneVolume(Qube source, Qube destination, string volume) => Log.Add($"clone {source.Name} {destination.Name} {volume}");
    }

    private string Call(string method, string destination, string argument = "", string payload = "", string source = "dom0")
        => Encoding.UTF8.GetString(_api.Handle(new AdminRequest(method, argument, source, destination, Encoding.UTF8.GetBytes(payload))).Reply);

    [Fact]
    public void Start_starts_the_network_qube_first_and_refuses_a_running_qube_or_dom0()
    {
        Assert.Equal("0\0", Call("admin.vm.Start", "work"));
        Assert.Equal(["start sys-net", "start work"], _runtime.Log);
        Assert.Equal("2\0QubesVMNotHaltedError\0\0Domain is not powered off: 'work'\0", Call("admin.vm.Start", "work"));
        Assert.StartsWith("2\0QubesVMError\0", Call("admin.vm.Start", "dom0"), System.StringComparison.Ordinal);
        Assert.Equal("0\0mem=409600 mem_static_max=4096000 cputime=1234 power_state=Running", Call("admin.vm.CurrentState", "work"));
        Assert.Equal("0\0mem=0 mem_static_max=0 cputime=0 power_state=Halted", Call("admin.vm.CurrentState", "debian-12"));
    }

    [Fact]
    public void Shutdown_is_refused_while_other_qubes_use_the_network_unless_forced()
    {
        Call("admin.vm.Start", "work");
        Assert.Equal("2\0QubesVMInUseError\0\0There are other VMs connected to this VM: work\0", Call("admin.vm.Shutdown", "sys-net"));
        Assert.StartsWith("2\0ProtocolError\0", Call("admin.vm.Shutdown", "sys-net", "now"), System.StringComparison.Ordinal);
        Assert.Equal("0\0", Call("admin.vm.Shutdown", "sys-net", "force+wait"));
        Assert.Contains("shutdown sys-net True", _runtime.Log);
        Assert.Equal("2\0QubesVMNotStartedError\0\0Domain is powered off: 'sys-net'\0", Call("admin.vm.Kill", "sys-net"));
        Assert.Equal("0\0", Call("admin.vm.Kill", "work"));
    }

    [Fact]
    public void A_disposable_needs_a_disposable_template_and_inherits_from_it()
    {
        Assert.Equal("2\0QubesException\0\0Refusing to create DispVM out of this AppVM, because template_for_dispvms=False\0", Call("admin.vm.CreateDisposable", "work"));
        Assert.DoesNotContain(_app.Qubes, static q => q.Class == "DispVM");
        Call("admin.vm.property.Set", "work", "template_for_dispvms", "True");
        Call("admin.vm.property.Set", "work", "memory", "555");
        Call("admin.vm.tag.Set", "work", "project");
        Call("admin.vm.feature.Set", "work", "gui", "1");
        string name = Call("admin.vm.CreateDisposable", "work", source: "work")[2..];
        Assert.Matches("^disp[0-9]{1,4}$", name);
        Qube disp = _app.Get(name);
        Assert.Equal(("DispVM", "work", 555, true), (disp.Class, disp.Ref("template")!.Name, (int)disp.Properties.Get("memory")!, (bool)disp.Properties.Get("auto_cleanup")!));
        Assert.Equal(["created-by-work", "disp-created-by-work", "project"], disp.Tags.ToArray());
        Assert.Equal("1", disp.Features["gui"]);
        Assert.Contains("storage " + name, _runtime.Log);
        Assert.StartsWith("0\0uuid:", Call("admin.vm.CreateDisposable", "work", payload: "uuid"), System.StringComparison.Ordinal);
        Assert.StartsWith("2\0ProtocolError\0", Call("admin.vm.CreateDisposable", "work", payload: "name"), System.StringComparison.Ordinal);
    }

    [Fact]
    public void A_volume_clone_token_is_good_once_and_for_its_own_volume()
    {
        Call("admin.vm.Create.TemplateVM", "dom0", payload: "name=copy label=red");
        string token = Call("admin.vm.volume.CloneFrom", "debian-12", "root")[2..];
        Assert.Equal(64, token.Length);
        Assert.StartsWith("2\0ProtocolError\0", Call("admin.vm.volume.CloneTo", "copy", "private", token), System.StringComparison.Ordinal);
        token = Call("admin.vm.volume.CloneFrom", "debian-12", "root")[2..];
        Assert.Equal("0\0", Call("admin.vm.volume.CloneTo", "copy", "root", token));
        Assert.Contains("clone debian-12 copy root", _runtime.Log);
        Assert.Equal("2\0ProtocolError\0\0Invalid token\0", Call("admin.vm.volume.CloneTo", "copy", "root", token));
        Assert.StartsWith("2\0ProtocolError\0", Call("admin.vm.volume.CloneFrom", "work", "root"), System.StringComparison.Ordinal);
        Assert.Equal("0\0private\nroot\n", Call("admin.vm.volume.List", "copy"));
    }

    [Fact]
    public void A_qube_other_than_dom0_lists_only_what_the_visibility_check_allows()
    {
        _api.Visibility = static (service, source, target) => service == "admin.vm.List+" && source == "work" && target is "dom0" or "work";
        Assert.Equal(["dom0", "work"], Call("admin.vm.List", "dom0", source: "work")[2..].Split('\n', System.StringSplitOptions.RemoveEmptyEntries).Select(static l => l.Split(' ')[0]));
        Assert.Equal(4, Call("admin.vm.List", "dom0")[2..].Split('\n', System.StringSplitOptions.RemoveEmptyEntries).Length); // dom0 sees every qube
    }
}
