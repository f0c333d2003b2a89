using System;
using System.Collections.Generic;
using System.IO;
using System.Text.Json;

namespace Qubes.Qrexec.Policy;

/// <summary>One qube as the policy sees it (spec qrexec-policy §5).</summary>
public sealed record QubeInfo(
    string Name,
    string Type,
    IReadOnlyList<string> Tags,
    string? DefaultDispVm,
    bool TemplateForDispVms,
    string PowerState,
    string Uuid,
    bool Internal,
    string? GuiVm = null,
    string? Icon = null,
    string? Label = null,
    string? RelayVm = null,
    string? TransportRpc = null)
{
    /// <summary>Whether the qube is running (what <c>autostart=no</c> asks for).</summary>
    public bool IsRunning => PowerState == "Running";

    /// <summary>Whether the qube lives on another host and is reached through a relay qube.</summary>
    public bool IsRemote => Type == "RemoteVM";
}

/// <summary>
/// A snapshot of every qube (spec qrexec-policy §5), with lookups by name and by <c>uuid:UUID</c>.
/// dom0 is always present: when the source of the snapshot leaves it out, it is added as the
/// running AdminVM with the all-zero uuid.
/// </summary>
public sealed class SystemInfo
{
    /// <summary>The power states a qube can report.</summary>
    public static readonly IReadOnlySet<string> PowerStates = new HashSet<string>(StringComparer.Ordinal)
        { "Running", "Halted", "Paused", "Suspended", "Transient", "Halting", "Dying", "Crashed", "NA" };

    /// <summary>The qube classes.</summary>
    public static readonly IReadOnlySet<string> Types = new HashSet<string>(StringComparer.Ordinal)
        { "AdminVM", "AppVM", "TemplateVM", "StandaloneVM", "DispVM", "RemoteVM" };

    private readonly QubeInfo[] _qubes;
    private readonly Dictionary<string, int> _index;
    private readonly Dictionary<string, int>.AlternateLookup<ReadOnlySpan<char>> _lookup;

    /// <summary>Builds the snapshot; throws <see cref="FormatException"/> for two qubes with one name or uuid.</summary>
    public SystemInfo(IEnumerable<QubeInfo> qubes)
    {
        ArgumentNullException.ThrowIfNull(qubes);
        List<QubeInfo> list = [.. qubes];
        if (!list.Exists(static q => q.Name == "dom0"))
        {
            list.Insert(0, new QubeInfo("dom0", "AdminVM", [], null, false, "Running", PolicyToken.AdminUuid, false));
        }
        _qubes = [.. list];
        _index = new Dictionary<string, int>(2 * _qubes.Length, StringComparer.Ordinal);
        for (int i = 0; i < _qubes.Length; i++)
        {
            QubeInfo qube = _qubes[i];
            if (!_index.TryAdd(qube.Name, i))
            {
                throw new FormatException($"qube '{qube.Name}' listed twice");
            }
            if (!_index.TryAdd("uuid:" + qube.Uuid, i))
            {
                throw new FormatException($"uuid {qube.Uuid} of '{qube.Name}' belongs to another qube");
            }
        }
        Dom0 = _index["dom0"];
        _index.TryAdd("@adminvm", Dom0);
        _lookup = _index.GetAlternateLookup<ReadOnlySpan<char>>();
    }

    /// <summary>Every qube, dom0 included.</summary>
    public IReadOnlyList<QubeInfo> Qubes => _qubes;

    /// <summary>The index of dom0 in <see cref="Qubes"/>.</summary>
    public int Dom0 { get; }

    /// <summary>The index of the qube called <paramref name="name"/> (a name, <c>uuid:UUID</c> or <c>@adminvm</c>), or -1.</summary>
    public int IndexOf(ReadOnlySpan<char> name) => _lookup.TryGetValue(name, out int index) ? index : -1;

    /// <summary>The qube called <paramref name="name"/> (a name, <c>uuid:UUID</c> or <c>@adminvm</c>), or null.</summary>
    public QubeInfo? Find(ReadOnlySpan<char> name) => _lookup.TryGetValue(name, out int index) ? _qubes[index] : null;

    /// <summary>
    /// Parses the JSON of qubesd's <c>internal.GetSystemInfo</c>: <c>{"domains": {NAME: {...}}}</c>.
    /// Throws <see cref="FormatException"/> naming the qube and field that is wrong.
    /// </summary>
    public static SystemInfo Parse(string json)
    {
        ArgumentNullException.ThrowIfNull(json);
        JsonDocument document;
        try
        {
            document = JsonDocument.Parse(json);
        }
        catch (JsonException e)
        {
            throw new FormatException($"not JSON: {e.Message}", e);
        }
        using (document)
        {
            if (document.RootElement.ValueKind != JsonValueKind.Object
                || !document.RootElement.TryGetProperty("domains", out JsonElement domains)
                || domains.ValueKind != JsonValueKind.Object)
            {
                throw new FormatException("expected an object with a \"domains\" object");
            }
            List<QubeInfo> qubes = [];
            foreach (JsonProperty domain in domains.EnumerateObject())
            {
                qubes.Add(ParseQube(domain.Name, domain.Value));
            }
            return new SystemInfo(qubes);
        }
    }

    /// <summary>Reads and parses a system information file; throws <see cref="FormatException"/> naming the file.</summary>
    public static SystemInfo Load(string path)
    {
        string json;
        try
        {
            json = File.ReadAllText(path);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            throw new FormatException($"{path}: {e.Message}", e);
        }
        try
        {
            return Parse(json);
        }
        catch (FormatException e)
        {
            throw new FormatException($"{path}: {e.Message}", e);
        }
    }

    private static QubeInfo ParseQube(string name, JsonElement value)
    {
        if (name.Length == 0 || name[0] == '@' || name.StartsWith("uuid:", StringComparison.Ordinal) || !PolicyParser.IsName(name, allowPlus: false))
        {
            throw new FormatException($"invalid qube name '{name}'");
        }
        if (value.ValueKind != JsonValueKind.Object)
        {
            throw new FormatException($"{name}: expected an object");
        }
        string type = String(value, name, "type") ?? throw new FormatException($"{name}: missing \"type\"");
        if (!Types.Contains(type))
        {
            throw new FormatException($"{name}: unknown type '{type}'");
        }
        string uuid = String(value, name, "uuid")
            ?? (name == "dom0" ? PolicyToken.AdminUuid : throw new FormatException($"{name}: missing \"uuid\""));
        if (!Guid.TryParseExact(uuid, "D", out _) || uuid != uuid.ToLowerInvariant())
        {
            throw new FormatException($"{name}: invalid uuid '{uuid}'");
        }
        string power = String(value, name, "power_state") ?? "Halted";
        if (!PowerStates.Contains(power))
        {
            throw new FormatException($"{name}: unknown power_state '{power}'");
        }
        List<string> tags = [];
        if (value.TryGetProperty("tags", out JsonElement tagList) && tagList.ValueKind != JsonValueKind.Null)
        {
            if (tagList.ValueKind != JsonValueKind.Array)
            {
                throw new FormatException($"{name}: \"tags\" is not a list");
            }
            foreach (JsonElement tag in tagList.EnumerateArray())
            {
                tags.Add(tag.ValueKind == JsonValueKind.String ? tag.GetString()! : throw new FormatException($"{name}: a tag is not a string"));
            }
        }
        bool templateForDispVms = value.TryGetProperty("template_for_dispvms", out JsonElement template) && template.ValueKind switch
        {
            JsonValueKind.True => true,
            JsonValueKind.False or JsonValueKind.Null => false,
            _ => throw new FormatException($"{name}: \"template_for_dispvms\" is not a boolean"),
        };
        // "internal" carries a feature value: anything truthy in the Python sense marks the qube internal.
        bool isInternal = value.TryGetProperty("internal", out JsonElement internalValue) && internalValue.ValueKind switch
        {
            JsonValueKind.True => true,
            JsonValueKind.String => internalValue.GetString()!.Length > 0,
            JsonValueKind.Number => internalValue.GetDouble() != 0,
            _ => false,
        };
        return new QubeInfo(name, type, tags, String(value, name, "default_dispvm"), templateForDispVms, power, uuid, isInternal,
            String(value, name, "guivm"), String(value, name, "icon"), String(value, name, "label"),
            String(value, name, "relayvm"), String(value, name, "transport_rpc"));
    }

    private static string? String(JsonElement value, string name, string field)
    {
        if (!value.TryGetProperty(field, out JsonElement element) || element.ValueKind == JsonValueKind.Null)
        {
            return null;
        }
        return element.ValueKind == JsonValueKind.String
            ? element.GetString()
            : throw new FormatException($"{name}: \"{field}\" is not a string");
    }
}

/// <summary>Where the policy gets its system information: qubesd, or a JSON file.</summary>
public interface ISystemInfoSource
{
    /// <summary>
    /// The current snapshot. <paramref name="changed"/> is true when it differs from what the last
    /// call returned (the policy is compiled again then). Throws <see cref="FormatException"/> when
    /// the information cannot be had.
    /// </summary>
    SystemInfo Current(out bool changed);
}

/// <summary>System information from a JSON file in the <c>internal.GetSystemInfo</c> format, read again whenever it changes.</summary>
public sealed class SystemInfoFile : ISystemInfoSource
{
    private readonly string _path;
    private FileStamp _stamp;
    private SystemInfo? _info;

    /// <summary>Reads <paramref name="path"/> when first asked and again after every change to it.</summary>
    public SystemInfoFile(string path)
    {
        ArgumentNullException.ThrowIfNull(path);
        _path = path;
    }

    /// <inheritdoc/>
    public SystemInfo Current(out bool changed)
    {
        FileStamp stamp = FileStamp.Of(_path);
        changed = _info == null || stamp != _stamp;
        if (changed)
        {
            _info = null;
            _info = SystemInfo.Load(_path);
            _stamp = stamp;
        }
        return _info!;
    }
}

/// <summary>What tells that a file or directory changed: whether it exists, its modification time and its size.</summary>
internal readonly record struct FileStamp(bool Exists, long WriteTicks, long Length)
{
    internal static FileStamp Of(string path)
    {
        FileSystemInfo info = Directory.Exists(path) ? new DirectoryInfo(path) : new FileInfo(path);
        return info.Exists
            ? new FileStamp(true, info.LastWriteTimeUtc.Ticks, info is FileInfo file ? file.Length : 0)
            : default;
    }
}
