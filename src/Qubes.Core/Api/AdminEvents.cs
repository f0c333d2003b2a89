using System;
using System.Collections.Generic;
using System.IO;
using System.Text;

namespace Qubes.Core.Api;

/// <summary>An event of the system (spec core-stack §9.7): its subject (a qube, or empty for the system), name and keys.</summary>
public sealed record AdminEvent(string Subject, string Name, IReadOnlyList<(string Key, string Value)> Keys)
{
    /// <summary>The first frame of every event stream.</summary>
    public static readonly AdminEvent ConnectionEstablished = new(string.Empty, "connection-established", []);

    /// <summary>The event frame: <c>1\0subject\0name\0(key\0value\0)*\0</c>.</summary>
    public byte[] Frame()
    {
        using MemoryStream frame = new();
        void Put(string text)
        {
            frame.Write(Encoding.UTF8.GetBytes(text));
            frame.WriteByte(0);
        }
        Put("1");
        Put(Subject);
        Put(Name);
        foreach ((string key, string value) in Keys)
        {
            Put(key);
            Put(value);
        }
        frame.WriteByte(0);
        return frame.ToArray();
    }

    /// <summary>How a value is written in an event: none as <c>None</c>, booleans as <c>True</c>/<c>False</c>, the rest as text.</summary>
    public static string Text(object? value) => value switch
    {
        null => "None",
        string s when s.Length == 0 => "None",
        bool b => b ? "True" : "False",
        _ => Property<Qube>.Format(value),
    };
}

public sealed partial class AdminApi
{
    /// <summary>Raised after each change, under the caller's lock, for <c>admin.Events</c>.</summary>
    public event Action<AdminEvent>? Fired;

    /// <summary>
    /// Decides whether a qube other than dom0 may see what an Admin API call with this service and
    /// argument would show of a target (admin.vm.List entries, admin.Events events): the qrexec policy,
    /// where <c>ask</c> counts as deny. Null: everything is visible.
    /// </summary>
    public Func<string, string, string, bool>? Visibility { get; set; }

    /// <summary>Reports an event to the subscribers.</summary>
    public void Fire(string subject, string name, params (string Key, string Value)[] keys) => Fired?.Invoke(new AdminEvent(subject, name, keys));

    /// <summary>Whether <paramref name="source"/> may see <paramref name="target"/> through <paramref name="serviceAndArg"/>.</summary>
    public bool Visible(string serviceAndArg, Qube source, Qube target)
        => source.IsAdmin || Visibility == null || Visibility(serviceAndArg, source.Name, target.Name);

    /// <summary>
    /// Whether an <c>admin.Events</c> subscriber from <paramref name="source"/> to <paramref name="destination"/>
    /// gets <paramref name="e"/>: only the destination's events unless it is dom0, and only those
    /// the policy lets it see (argument: the event name with <c>:</c> as <c>_</c>).
    /// </summary>
    public bool Delivers(Qube source, Qube destination, AdminEvent e)
    {
        ArgumentNullException.ThrowIfNull(source);
        ArgumentNullException.ThrowIfNull(destination);
        ArgumentNullException.ThrowIfNull(e);
        if (!destination.IsAdmin && e.Subject != destination.Name)
        {
            return false;
        }
        Qube subject = e.Subject.Length == 0 ? source.App.Dom0 : source.App.Find(e.Subject) ?? source.App.Dom0;
        return Visible("admin.Events+" + e.Name.Replace(':', '_'), source, subject);
    }
}
