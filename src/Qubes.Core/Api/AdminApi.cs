using System;
using System.Collections.Generic;
using System.Globalization;
using System.Linq;
using System.Text;

namespace Qubes.Core.Api;

/// <summary>
/// The Admin API methods of qubesd (spec core-stack §9.2, §9.5, §9.6) on one <see cref="QubesApp"/>:
/// decode source and destination, look up the method, check its shape, run it, and report whether
/// the system changed so that the caller saves qubes.xml. Errors the caller may see are
/// <see cref="QubesException"/>s with upstream's type names; anything else drops the connection.
/// </summary>
public sealed partial class AdminApi(QubesApp app)
{
    private enum Dest : byte { Any, Dom0, NotDom0 }

    private enum Need : byte { No, Yes, Maybe }

    private sealed record Method(Dest Dest, Need Argument, Need Payload, bool Writes, Func<Call, string> Run);

    private delegate void Adder(string name, Dest dest, Need argument, Need payload, bool writes, Func<Call, string> run);

    private sealed record Call(AdminApi Api, AdminRequest Request, Qube Source, Qube Destination)
    {
        public string Arg => Request.Argument;

        public string PayloadText => Encoding.ASCII.GetString(Request.Payload);
    }

    private static readonly Dictionary<string, Method> s_methods = Register();

    /// <summary>The methods served, as qrexec service names.</summary>
    public static IEnumerable<string> Methods => s_methods.Keys.Order(StringComparer.Ordinal);

    /// <summary>Runs a request; the reply frame, and whether the system changed (and must be saved).</summary>
    public (byte[] Reply, bool Changed) Handle(AdminRequest request)
    {
        ArgumentNullException.ThrowIfNull(request);
        try
        {
            Qube source = Designate(request.Source);
            Qube destination = Designate(request.Destination);
            if (!s_methods.TryGetValue(request.Method, out Method? method))
            {
                throw Protocol($"no such method: '{request.Method}'");
            }
            Check(method.Argument, request.Argument.Length > 0, "expected an argument", "unexpected argument");
            Check(method.Payload, request.Payload.Length > 0, "expected payload", "unexpected payload");
            if (method.Dest == Dest.Dom0 && !destination.IsAdmin)
            {
                throw Protocol("expected destination to be AdminVM");
            }
            if (method.Dest == Dest.NotDom0 && destination.IsAdmin)
            {
                throw Protocol("expected destination to not be AdminVM");
            }
            string content = method.Run(new Call(this, request, source, destination));
            return (AdminReply.Success(content), method.Writes);
        }
        catch (QubesException e)
        {
            return (AdminReply.Exception(e.TypeName, e.Message), false);
        }
    }

    private static void Check(Need need, bool present, string missing, string unexpected)
    {
        if (need == Need.Yes && !present)
        {
            throw Protocol(missing);
        }
        if (need == Need.No && present)
        {
            throw Protocol(unexpected);
        }
    }

    private static QubesException Protocol(string message) => new("ProtocolError", message);

    /// <summary>A source or destination: a name (§5 rules) or <c>uuid:UUID</c>.</summary>
    private Qube Designate(string text)
    {
        if (text.StartsWith("uuid:", StringComparison.Ordinal))
        {
            if (text.Length != 41 || !Guid.TryParseExact(text.AsSpan(5), "D", out Guid guid) || guid.ToString("D") != text[5..])
            {
                throw new QubesException("QubesVMInvalidUUIDError", $"VM UUID is not valid: '{text}'");
            }
            return app.Find(text) ?? throw QubesException.NotFound(text);
        }
        VmName.Validate(text);
        return app.Get(text);
    }

    private static Dictionary<string, Method> Register()
    {
        Dictionary<string, Method> methods = new(StringComparer.Ordinal);
        void Add(string name, Dest dest, Need argument, Need payload, bool writes, Func<Call, string> run)
            => methods.Add(name, new Method(dest, argument, payload, writes, run));

        Add("admin.vmclass.List", Dest.Dom0, Need.No, Need.No, false, _ => Lines(PropertyCatalog.Classes.Order(StringComparer.Ordinal)));
        Add("admin.vm.List", Dest.Any, Need.No, Need.No, false, static c => Lines((c.Destination.IsAdmin ? c.Destination.App.Qubes.Where(q => c.Api.Visible("admin.vm.List+", c.Source, q)) : [c.Destination])
            .Select(static q => $"{q.Name} class={q.Class} state={q.PowerState} uuid={q.Uuid}")));

        // qube properties
        Add("admin.vm.property.List", Dest.Any, Need.No, Need.No, false, static c => Lines(PropertyCatalog.Canonical(c.Destination.Class).Select(static p => p.Name)));
        Add("admin.vm.property.Get", Dest.Any, Need.Yes, Need.No, false, static c => GetText(c.Destination.Properties, c.Arg));
        Add("admin.vm.property.GetAll", Dest.Any, Need.No, Need.No, false, static c => Lines(PropertyCatalog.Canonical(c.Destination.Class)
            .Select(p => p.Name + " " + Escape(GetText(c.Destination.Properties, p.Name)))));
        Add("admin.vm.property.GetDefault", Dest.Any, Need.Yes, Need.No, false, static c => DefaultText(c.Destination, c.Destination.Properties, c.Arg));
        Add("admin.vm.property.Help", Dest.Any, Need.Yes, Need.No, false, static c => c.Destination.Properties.Definition(c.Arg).Help);
        Add("admin.vm.property.Set", Dest.Any, Need.Yes, Need.Maybe, true, static c => SetProperty(c, c.Destination.Name, c.Destination.Properties, c.Arg, c.Request.Payload));
        Add("admin.vm.property.Reset", Dest.Any, Need.Yes, Need.No, true, static c => ResetProperty(c, c.Destination.Name, c.Destination.Properties, c.Arg));

        // global properties
        Add("admin.property.List", Dest.Dom0, Need.No, Need.No, false, static c => Lines(GlobalProperties.All.Values.Order(Comparer<Property<QubesApp>>.Create(Property<QubesApp>.CompareCanonical)).Select(static p => p.Name)));
        Add("admin.property.Get", Dest.Dom0, Need.Yes, Need.No, false, static c => GetText(c.Source.App.Properties, c.Arg));
        Add("admin.property.GetAll", Dest.Dom0, Need.No, Need.No, false, static c => Lines(GlobalProperties.All.Values.Order(Comparer<Property<QubesApp>>.Create(Property<QubesApp>.CompareCanonical))
            .Select(p => p.Name + " " + Escape(GetText(c.Source.App.Properties, p.Name)))));
        Add("admin.property.GetDefault", Dest.Dom0, Need.Yes, Need.No, false, static c => DefaultText(c.Source.App, c.Source.App.Properties, c.Arg));
        Add("admin.property.Help", Dest.Dom0, Need.Yes, Need.No, false, static c => c.Source.App.Properties.Definition(c.Arg).Help);
        Add("admin.property.Set", Dest.Dom0, Need.Yes, Need.Maybe, true, static c => SetProperty(c, string.Empty, c.Source.App.Properties, c.Arg, c.Request.Payload));
        Add("admin.property.Reset", Dest.Dom0, Need.Yes, Need.No, true, static c => ResetProperty(c, string.Empty, c.Source.App.Properties, c.Arg));

        // features
        Add("admin.vm.feature.List", Dest.Any, Need.No, Need.No, false, static c => Lines(c.Destination.Features.Keys));
        Add("admin.vm.feature.Get", Dest.Any, Need.Yes, Need.No, false, static c => c.Destination.Features.TryGetValue(c.Arg, out string? v) ? v : throw FeatureNotFound(c));
        Add("admin.vm.feature.CheckWithTemplate", Dest.Any, Need.Yes, Need.No, false, static c => c.Destination.FeatureWithTemplate(c.Arg) ?? throw FeatureNotFound(c));
        Add("admin.vm.feature.Set", Dest.Any, Need.Yes, Need.Maybe, true, SetFeature);
        Add("admin.vm.feature.Remove", Dest.Any, Need.Yes, Need.No, true, static c =>
        {
            CheckProtectedFeature(c.Arg);
            if (!c.Destination.Features.Remove(c.Arg))
            {
                throw FeatureNotFound(c);
            }
            c.Api.Fire(c.Destination.Name, "domain-feature-delete:" + c.Arg, ("feature", c.Arg));
            return string.Empty;
        });

        // tags
        Add("admin.vm.tag.List", Dest.Any, Need.No, Need.No, false, static c => Lines(c.Destination.Tags));
        Add("admin.vm.tag.Get", Dest.Any, Need.Yes, Need.No, false, static c => { CheckTag(c.Arg); return c.Destination.Tags.Contains(c.Arg) ? "1" : "0"; });
        Add("admin.vm.tag.Set", Dest.Any, Need.Yes, Need.No, true, static c =>
        {
            CheckTagChange(c);
            if (c.Destination.Tags.Add(c.Arg))
            {
                c.Api.Fire(c.Destination.Name, "domain-tag-add:" + c.Arg, ("tag", c.Arg));
            }
            return string.Empty;
        });
        Add("admin.vm.tag.Remove", Dest.Any, Need.Yes, Need.No, true, static c =>
        {
            CheckTagChange(c);
            if (!c.Destination.Tags.Remove(c.Arg))
            {
                throw new QubesException("QubesTagNotFoundError", $"Tag not set for domain {c.Destination.Name}: {c.Arg}");
            }
            c.Api.Fire(c.Destination.Name, "domain-tag-delete:" + c.Arg, ("tag", c.Arg));
            return string.Empty;
        });

        // labels
        Add("admin.label.List", Dest.Dom0, Need.No, Need.No, false, static c => Lines(c.Source.App.Labels.Select(static l => l.Name)));
        Add("admin.label.Get", Dest.Dom0, Need.Yes, Need.No, false, static c => Label.Find(c.Source.App.Labels, c.Arg).Color);
        Add("admin.label.Index", Dest.Dom0, Need.Yes, Need.No, false, static c => Label.Find(c.Source.App.Labels, c.Arg).Index.ToString(CultureInfo.InvariantCulture));

        // creation and removal
        foreach (string klass in PropertyCatalog.Classes.Where(static k => k is not ("AdminVM" or "RemoteVM")))
        {
            Add("admin.vm.Create." + klass, Dest.Dom0, Need.Maybe, Need.Yes, true, c => Create(c, klass));
        }
        Add("admin.vm.Remove", Dest.Any, Need.No, Need.No, true, static c =>
        {
            c.Destination.App.Remove(c.Destination.Name);
            c.Destination.App.Runtime.RemoveStorage(c.Destination);
            c.Api.Fire(string.Empty, "domain-delete", ("vm", c.Destination.Name));
            return string.Empty;
        });
        AddLifecycle(Add);

        // internal socket, for dom0's own components
        Add("internal.GetSystemInfo", Dest.Dom0, Need.No, Need.No, false, static c => SystemInfo(c.Source.App));
        return methods;
    }

    private static string Lines(IEnumerable<string> lines)
    {
        StringBuilder text = new();
        foreach (string line in lines)
        {
            text.Append(line).Append('\n');
        }
        return text.ToString();
    }

    private static string TypeName(PropertyType type) => type switch
    {
        PropertyType.Vm => "vm",
        PropertyType.Int => "int",
        PropertyType.Bool => "bool",
        PropertyType.Label => "label",
        _ => "str",
    };

    /// <summary><c>default=True|False type=T VALUE</c>, no newline; an unset property shows as default with an empty value.</summary>
    private static string GetText<T>(PropertyValues<T> values, string name)
    {
        Property<T> p = values.Definition(name);
        string value = values.HasValue(name) ? Property<T>.Format(values.Get(name)) : string.Empty;
        return $"default={(values.IsDefault(name) ? "True" : "False")} type={TypeName(p.Type)} {value}";
    }

    private static string DefaultText<T>(T holder, PropertyValues<T> values, string name)
    {
        Property<T> p = values.Definition(name);
        return p.Default == null ? string.Empty : $"type={TypeName(p.Type)} {Property<T>.Format(p.Default(holder))}";
    }

    private static string Escape(string text) => text.Replace("\\", "\\\\", StringComparison.Ordinal).Replace("\n", "\\n", StringComparison.Ordinal);

    /// <summary>§9.6 Set: ASCII; typed values parsed; strings printable; qube values by name or empty for none; then the setter.</summary>
    private static string SetProperty<T>(Call c, string subject, PropertyValues<T> values, string name, byte[] payload)
    {
        Property<T> p = values.Definition(name);
        if (payload.Any(static b => b > 0x7f))
        {
            throw QubesException.PropertyValue("Non-ASCII bytes in property value");
        }
        string text = Encoding.ASCII.GetString(payload);
        object? value = p.Type switch
        {
            PropertyType.Bool => BoolLiteral.Parse(text),
            PropertyType.Int => int.TryParse(text, NumberStyles.AllowLeadingSign, CultureInfo.InvariantCulture, out int i)
                ? i : throw QubesException.PropertyValue($"Failed to parse property value as int"),
            _ when text.Any(static ch => ch < 0x20 || ch > 0x7e) => throw QubesException.PropertyValue("Invalid characters in property value"),
            _ => text,
        };
        string old = AdminEvent.Text(values.HasValue(name) ? values.Get(name) : null);
        values.Set(name, value);
        c.Api.Fire(subject, "property-set:" + name, ("name", name), ("newvalue", AdminEvent.Text(values.Get(name))), ("oldvalue", old));
        return string.Empty;
    }

    private static string ResetProperty<T>(Call c, string subject, PropertyValues<T> values, string name)
    {
        string old = AdminEvent.Text(values.HasValue(name) ? values.Get(name) : null);
        values.Reset(name);
        c.Api.Fire(subject, "property-reset:" + name, ("name", name), ("oldvalue", old));
        return string.Empty;
    }

    private static QubesException FeatureNotFound(Call c) => new("QubesFeatureNotFoundError", $"Feature not set for domain {c.Destination.Name}: {c.Arg}");

    private static readonly string[] s_protectedFeatures = ["deferred-netvm-original", "preload-dispvm", "preload-dispvm-completed", "preload-dispvm-in-progress"];

    private static void CheckProtectedFeature(string name)
    {
        if (s_protectedFeatures.Contains(name))
        {
            throw new QubesException("PermissionDenied", $"changing this feature is prohibited by {name} being managed by qubesd");
        }
    }

    /// <summary>§6.2: ASCII payload, a name of <c>[a-zA-Z0-9_.-]+</c>, a printable value, protected names, service names.</summary>
    private static string SetFeature(Call c)
    {
        if (c.Request.Payload.Any(static b => b > 0x7f))
        {
            throw Protocol("Feature value contains non-ASCII characters");
        }
        if (!c.Arg.All(static ch => char.IsAsciiLetterOrDigit(ch) || ch is '_' or '.' or '-'))
        {
            throw Protocol("feature name contains illegal characters");
        }
        string value = c.PayloadText;
        if (value.Any(static ch => ch < 0x20 || ch > 0x7e))
        {
            throw Protocol($"{c.Arg} value contains illegal characters");
        }
        CheckProtectedFeature(c.Arg);
        if (c.Arg.StartsWith("service.", StringComparison.Ordinal))
        {
            CheckServiceName(c.Arg["service.".Length..]);
        }
        bool had = c.Destination.Features.TryGetValue(c.Arg, out string? old);
        c.Destination.Features[c.Arg] = value;
        c.Api.Fire(c.Destination.Name, "domain-feature-set:" + c.Arg, had ? [("feature", c.Arg), ("value", value), ("oldvalue", old!)] : [("feature", c.Arg), ("value", value)]);
        return string.Empty;
    }

    /// <summary>§6.3 service names.</summary>
    internal static void CheckServiceName(string service)
    {
        if (service.Length == 0)
        {
            throw QubesException.Value("Service name cannot be empty");
        }
        if (service.Contains('/', StringComparison.Ordinal))
        {
            throw QubesException.Value("Service name cannot contain a slash");
        }
        if (service is "." or "..")
        {
            throw QubesException.Value("Service name cannot be '.' or '..'");
        }
        if (Encoding.UTF8.GetByteCount(service) > 48 && !service.StartsWith("app-dispvm.", StringComparison.Ordinal))
        {
            throw QubesException.Value("Service name must not exceed 48 bytes");
        }
    }

    /// <summary>§7: a tag is non-empty ASCII letters, digits, <c>_</c> and <c>-</c>.</summary>
    private static void CheckTag(string tag)
    {
        if (tag.Length == 0)
        {
            throw new QubesException("QubesInvalidTagError", "tag cannot be empty");
        }
        if (!tag.All(static ch => char.IsAsciiLetterOrDigit(ch) || ch is '_' or '-'))
        {
            throw new QubesException("QubesInvalidTagError", "disallowed characters");
        }
    }

    /// <summary>Only dom0 may add or remove <c>created-by-</c> tags.</summary>
    private static void CheckTagChange(Call c)
    {
        CheckTag(c.Arg);
        if (c.Arg.StartsWith("created-by-", StringComparison.Ordinal) && !c.Source.IsAdmin)
        {
            throw new QubesException("PermissionDenied", "changing created-by- tags is reserved to dom0");
        }
    }

    /// <summary>§9.6 <c>admin.vm.Create.&lt;Class&gt;</c>: <c>name=… label=…</c>, the template as argument, then <c>created-by-&lt;caller&gt;</c>.</summary>
    private static string Create(Call c, string klass)
    {
        Dictionary<string, string> options = new(StringComparer.Ordinal);
        foreach (string item in c.PayloadText.Split(' ', StringSplitOptions.RemoveEmptyEntries))
        {
            int eq = item.IndexOf('=', StringComparison.Ordinal);
            string key = eq < 0 ? item : item[..eq];
            if (key is not ("name" or "label"))
            {
                throw Protocol("Options does not match: name, label, pool, pool:");
            }
            if (!options.TryAdd(key, eq < 0 ? string.Empty : item[(eq + 1)..]))
            {
                throw Protocol("Options must be unique");
            }
        }
        foreach (string required in (string[])["name", "label"])
        {
            if (!options.ContainsKey(required))
            {
                throw Protocol($"Creation requested without key: {required}");
            }
        }
        if (options["label"].All(char.IsAsciiDigit))
        {
            throw Protocol("Label must not be a digit");
        }
        QubesApp app = c.Source.App;
        bool hasTemplate = klass is "AppVM" or "DispVM";
        if (!hasTemplate && c.Arg.Length > 0)
        {
            throw Protocol($"{klass} cannot be based on template");
        }
        VmName.Validate(options["name"]);
        if (app.Find(options["name"]) != null)
        {
            throw new QubesException("QubesVMAlreadyExistsError", $"Qube already exists: {options["name"]}");
        }
        List<(string, object?)> properties = [];
        if (hasTemplate)
        {
            string? template = c.Arg.Length > 0 ? c.Arg
                : (klass == "DispVM" ? app.Global("default_dispvm") : app.Global("default_template")) as string;
            if (string.IsNullOrEmpty(template))
            {
                throw new QubesException("QubesException", "Template for the qube not specified, nor default template set.");
            }
            Qube templateQube = app.Get(template);
            if (klass == "DispVM" && !templateQube.IsDispVmTemplate)
            {
                throw QubesException.Value($"template for disposable ({template}) needs to be an AppVM with template_for_dispvms=True");
            }
            properties.Add(("template", template));
        }
        Label label = Label.Find(app.Labels, options["label"]);
        Qube qube = app.Create(klass, options["name"], label.Name, properties);
        TagCreatedBy(qube, c.Source);
        CreateStorage(qube);
        c.Api.Fire(string.Empty, "domain-add", ("vm", qube.Name));
        return string.Empty;
    }

    /// <summary>§7: <c>created-by-&lt;creator&gt;</c>, and every word of the creator's feature <c>tag-created-vm-with</c>.</summary>
    internal static void TagCreatedBy(Qube qube, Qube creator)
    {
        qube.Tags.Add("created-by-" + creator.Name);
        if (creator.Features.TryGetValue("tag-created-vm-with", out string? more))
        {
            foreach (string tag in more.Split((char[]?)null, StringSplitOptions.RemoveEmptyEntries))
            {
                qube.Tags.Add(tag);
            }
        }
    }

    /// <summary>
    /// §9.8: <c>{"domains": {NAME: {...}}}</c>, dom0 first then by name, each with the keys in the
    /// spec's order, separators <c>, </c> and <c>: </c>.
    /// </summary>
    public static string SystemInfo(QubesApp app)
    {
        StringBuilder json = new("{\"domains\": {");
        bool first = true;
        foreach (Qube q in app.Qubes)
        {
            if (!first)
            {
                json.Append(", ");
            }
            first = false;
            json.Append(Json(q.Name)).Append(": {");
            json.Append("\"internal\": ").Append(Json(q.Features.GetValueOrDefault("internal")));
            json.Append(", \"tags\": [").AppendJoin(", ", q.Tags.Select(Json)).Append(']');
            json.Append(", \"type\": ").Append(Json(q.Class));
            json.Append(", \"template_for_dispvms\": ").Append(q.IsDispVmTemplate ? "true" : "false");
            json.Append(", \"default_dispvm\": ").Append(Json(q.Has("default_dispvm") ? q.Ref("default_dispvm")?.Name : null));
            json.Append(", \"icon\": ").Append(Json("appvm-" + q.Label.Name));
            json.Append(", \"label\": ").Append(Json(q.Label.Color));
            json.Append(", \"guivm\": ").Append(Json(q.Has("guivm") ? q.Ref("guivm")?.Name : null));
            json.Append(", \"relayvm\": ").Append(Json(q.Has("relayvm") ? q.Ref("relayvm")?.Name : null));
            json.Append(", \"transport_rpc\": ").Append(Json(q.Has("transport_rpc") ? q.Properties.GetOrDefault("transport_rpc") as string : null));
            json.Append(", \"power_state\": ").Append(Json(q.PowerState));
            json.Append(", \"uuid\": ").Append(Json(q.Uuid)).Append('}');
        }
        return json.Append("}}").ToString();
    }

    private static string Json(string? value) => value == null ? "null" : "\"" + System.Text.Json.JsonEncodedText.Encode(value).ToString() + "\"";
}
