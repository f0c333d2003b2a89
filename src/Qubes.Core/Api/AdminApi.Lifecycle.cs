using System;
using System.Collections.Concurrent;
using System.Collections.Generic;
using System.Globalization;
using System.Linq;
using System.Security.Cryptography;

namespace Qubes.Core.Api;

/// <summary>
/// The methods that run qubes and move their storage (spec core-stack §8, §9.5, §9.6): Start,
/// Shutdown, Kill, CurrentState, CreateDisposable and the volume methods. The checks are here;
/// the work is the runtime's (<see cref="IQubeRuntime"/>).
/// </summary>
public sealed partial class AdminApi
{
    /// <summary>Volume clone tokens handed out by CloneFrom and not yet used by CloneTo: token to (qube, volume).</summary>
    private readonly ConcurrentDictionary<string, (Qube Qube, string Volume)> _cloneTokens = new(StringComparer.Ordinal);

    private static void AddLifecycle(Adder add)
    {
        add("admin.vm.Start", Dest.Any, Need.No, Need.No, false, static c => { Start(c.Api, c.Destination); return string.Empty; });
        add("admin.vm.Shutdown", Dest.Any, Need.Maybe, Need.No, false, Shutdown);
        add("admin.vm.Kill", Dest.Any, Need.No, Need.No, false, static c =>
        {
            Qube q = c.Destination;
            RequireRunning(q);
            q.App.Runtime.Kill(q);
            return string.Empty;
        });
        add("admin.Events", Dest.Any, Need.No, Need.No, false, static _ => string.Empty); // qubesd streams the events after this check
        add("admin.vm.CurrentState", Dest.Any, Need.No, Need.No, false, static c => CurrentState(c.Destination));
        add("admin.vm.CreateDisposable", Dest.Any, Need.No, Need.Maybe, true, CreateDisposable);
        add("admin.vm.volume.List", Dest.Any, Need.No, Need.No, false, static c => Lines(c.Destination.App.Runtime.Volumes(c.Destination)));
        add("admin.vm.volume.Info", Dest.Any, Need.Yes, Need.No, false, static c =>
        {
            RequireVolume(c.Destination, c.Arg);
            return $"pool=loopback\nvid={c.Destination.Name}/{c.Arg}\nrw=True\nsource=\nsave_on_stop=True\nsnap_on_start=False\nrevisions_to_keep=0\nephemeral=False\n";
        });
        add("admin.vm.volume.CloneFrom", Dest.Any, Need.Yes, Need.No, false, static c =>
        {
            RequireVolume(c.Destination, c.Arg);
            string token = Convert.ToHexStringLower(RandomNumberGenerator.GetBytes(32));
            c.Api._cloneTokens[token] = (c.Destination, c.Arg);
            return token;
        });
        add("admin.vm.volume.CloneTo", Dest.Any, Need.Yes, Need.Yes, false, static c =>
        {
            RequireVolume(c.Destination, c.Arg);
            if (!c.Api._cloneTokens.TryRemove(c.PayloadText, out (Qube Qube, string Volume) source))
            {
                throw Protocol("Invalid token");
            }
            if (source.Volume != c.Arg)
            {
                throw Protocol($"cannot clone volume {source.Volume} into volume {c.Arg}");
            }
            if (c.Destination.App.Find(source.Qube.Name) != source.Qube)
            {
                throw QubesException.NotFound(source.Qube.Name);
            }
            if (!c.Destination.IsHalted)
            {
                throw NotHalted(c.Destination);
            }
            c.Destination.App.Runtime.CloneVolume(source.Qube, c.Destination, c.Arg);
            return string.Empty;
        });
    }

    /// <summary>Starts a halted qube, its network qube first (as upstream does).</summary>
    private static void Start(AdminApi api, Qube q)
    {
        if (q.IsAdmin)
        {
            throw new QubesException("QubesVMError", "Cannot start Dom0 fake domain!");
        }
        if (!q.IsHalted)
        {
            throw NotHalted(q);
        }
        if (q.Class == "DispVM" && q.Ref("template") is { IsDispVmTemplate: false } template)
        {
            throw new QubesException("QubesException", $"template for disposable ({template.Name}) needs to have template_for_dispvms=True");
        }
        if (q.Has("netvm") && q.Ref("netvm") is { IsHalted: true } netvm)
        {
            Start(api, netvm);
        }
        api.Fire(q.Name, "domain-pre-start", ("start_guid", "False"), ("mem_required", "None"));
        try
        {
            q.App.Runtime.Start(q);
        }
        catch (QubesException e)
        {
            api.Fire(q.Name, "domain-start-failed", ("reason", e.Message));
            throw;
        }
        api.Fire(q.Name, "domain-spawn", ("start_guid", "False"));
        api.Fire(q.Name, "domain-start", ("start_guid", "False"));
    }

    /// <summary>Argument: empty or a <c>+</c>-joined subset of <c>force</c> and <c>wait</c>.</summary>
    private static string Shutdown(Call c)
    {
        string[] options = c.Arg.Length == 0 ? [] : c.Arg.Split('+');
        if (options.Any(static o => o is not ("force" or "wait")) || options.Distinct(StringComparer.Ordinal).Count() != options.Length)
        {
            throw Protocol("Invalid argument");
        }
        Qube q = c.Destination;
        RequireRunning(q);
        if (!options.Contains("force"))
        {
            string[] users = [.. q.App.Qubes.Where(o => o != q && o.Has("netvm") && o.Ref("netvm") == q && !o.IsHalted).Select(static o => o.Name)];
            if (users.Length > 0)
            {
                throw new QubesException("QubesVMInUseError", $"There are other VMs connected to this VM: {string.Join(", ", users)}");
            }
        }
        c.Api.Fire(q.Name, "domain-pre-shutdown", ("force", options.Contains("force") ? "True" : "False"));
        q.App.Runtime.Shutdown(q, options.Contains("wait"));
        return string.Empty;
    }

    /// <summary><c>mem=KiB mem_static_max=KiB cputime=ns power_state=STATE</c>; zeros when halted.</summary>
    private static string CurrentState(Qube q)
    {
        string state = q.PowerState;
        bool up = !q.IsAdmin && state != "Halted";
        long mem = up ? 1024L * (int)q.Properties.Get("memory")! : 0;
        long max = up ? 1024L * (int)q.Properties.Get("maxmem")! : 0;
        long cpu = up ? q.App.Runtime.CpuTimeNs(q) : 0;
        return string.Create(CultureInfo.InvariantCulture, $"mem={mem} mem_static_max={max} cputime={cpu} power_state={state}");
    }

    /// <summary>
    /// §8: a DispVM <c>dispN</c> from the destination (or, for dom0, from the caller's
    /// <c>default_dispvm</c>), inheriting the template's explicit properties, features and tags,
    /// tagged <c>created-by-</c> and <c>disp-created-by-</c> the caller, removed when it stops.
    /// </summary>
    private static string CreateDisposable(Call c)
    {
        string payload = c.PayloadText;
        if (payload is not ("" or "uuid"))
        {
            throw Protocol("Invalid payload");
        }
        QubesApp app = c.Source.App;
        Qube template = (c.Destination.IsAdmin ? c.Source.Ref("default_dispvm") : c.Destination)
            ?? throw new QubesException("QubesException", $"No default disposable template set for {c.Source.Name}");
        if (!template.IsDispVmTemplate)
        {
            throw new QubesException("QubesException", $"Refusing to create DispVM out of this {template.Class}, because template_for_dispvms=False");
        }
        HashSet<int> used = [.. app.Qubes.Where(static q => q.Has("dispid") && q.Properties.HasValue("dispid")).Select(static q => (int)q.Properties.Get("dispid")!)];
        int dispid;
        do
        {
            dispid = RandomNumberGenerator.GetInt32(1, 10000);
        }
        while (used.Contains(dispid) || app.Find("disp" + dispid.ToString(CultureInfo.InvariantCulture)) != null);
        Qube disp = app.Create("DispVM", "disp" + dispid.ToString(CultureInfo.InvariantCulture), template.Label.Name,
            [("template", template.Name), ("dispid", dispid), ("auto_cleanup", true)]);
        try
        {
            foreach ((Property<Qube> p, object? value) in template.Properties.Explicit())
            {
                if (p.Clone && !p.WriteOnce && p.Name is not ("template" or "label") && disp.Has(p.Name) && !disp.Properties.HasValue(p.Name))
                {
                    disp.Properties.Set(p.Name, value);
                }
            }
        }
        catch
        {
            app.Remove(disp.Name);
            throw;
        }
        foreach ((string feature, string value) in template.Features)
        {
            if (!feature.StartsWith("preload-dispvm", StringComparison.Ordinal))
            {
                disp.Features[feature] = value;
            }
        }
        disp.Tags.UnionWith(template.Tags);
        TagCreatedBy(disp, c.Source);
        disp.Tags.Add("disp-created-by-" + c.Source.Name);
        CreateStorage(disp);
        c.Api.Fire(string.Empty, "domain-add", ("vm", disp.Name));
        return payload == "uuid" ? "uuid:" + disp.Uuid : disp.Name;
    }

    /// <summary>Makes a new qube's storage; when that fails the qube is taken out again.</summary>
    private static void CreateStorage(Qube qube)
    {
        try
        {
            qube.App.Runtime.CreateStorage(qube);
        }
        catch
        {
            qube.App.Remove(qube.Name);
            throw;
        }
    }

    private static void RequireRunning(Qube q)
    {
        if (q.IsAdmin)
        {
            throw new QubesException("QubesVMError", "Cannot do that to Dom0 fake domain!");
        }
        if (q.IsHalted)
        {
            throw new QubesException("QubesVMNotStartedError", $"Domain is powered off: '{q.Name}'");
        }
    }

    private static void RequireVolume(Qube q, string volume)
    {
        if (!q.App.Runtime.Volumes(q).Contains(volume))
        {
            throw Protocol($"no such volume: '{volume}'");
        }
    }

    private static QubesException NotHalted(Qube q) => new("QubesVMNotHaltedError", $"Domain is not powered off: '{q.Name}'");
}
