using System;
using Qubes.Core;
using Qubes.Core.Api;

namespace Qubes.Updates;

/// <summary>The global <c>updatevm</c> property: the only qube dom0 takes updates from.</summary>
public static class UpdateVm
{
    /// <summary>The property's value through the Admin API, or null when it is unset. Throws <see cref="QubesException"/> when qubesd refuses or cannot be reached.</summary>
    public static string? Read(AdminClient admin)
    {
        ArgumentNullException.ThrowIfNull(admin);
        return ParseValue(admin.Call("admin.property.Get", "dom0", "updatevm"));
    }

    /// <summary>The value of an <c>admin.property.Get</c> reply, <c>default=D type=T VALUE</c>; null when empty.</summary>
    public static string? ParseValue(string reply)
    {
        ArgumentNullException.ThrowIfNull(reply);
        string[] parts = reply.Split(' ', 3);
        return parts.Length == 3 && parts[0].StartsWith("default=", StringComparison.Ordinal) && parts[1].StartsWith("type=", StringComparison.Ordinal) && parts[2].Length > 0
            ? parts[2]
            : null;
    }
}
