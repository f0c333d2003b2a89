using System;
using System.Collections.Generic;
using System.Globalization;
using System.IO;

namespace Qubes.Qrexec.Runtime;

/// <summary>An account of <c>/etc/passwd</c>: what a service that runs as a user needs of it.</summary>
public sealed record UserAccount(string Name, uint Uid, uint Gid, string Home, string Shell)
{
    /// <summary>The account's groups: its own, and those of <paramref name="group"/> (default /etc/group) that list it.</summary>
    public IReadOnlyList<uint> Groups(string group = "/etc/group")
    {
        List<uint> groups = [Gid];
        if (File.Exists(group))
        {
            foreach (string line in File.ReadLines(group))
            {
                string[] f = line.Split(':');
                if (f.Length == 4 && uint.TryParse(f[2], NumberStyles.None, CultureInfo.InvariantCulture, out uint gid) && !groups.Contains(gid)
                    && Array.IndexOf(f[3].Split(','), Name) >= 0)
                {
                    groups.Add(gid);
                }
            }
        }
        return groups;
    }

    /// <summary>The account named <paramref name="name"/> in <paramref name="passwd"/> (default /etc/passwd), or null.</summary>
    public static UserAccount? Find(string name, string passwd = "/etc/passwd")
    {
        ArgumentNullException.ThrowIfNull(name);
        return name.Length == 0 || name.Contains(':', StringComparison.Ordinal) ? null : Search(passwd, name, 0);
    }

    /// <summary>The first account with the user id <paramref name="uid"/> in <paramref name="passwd"/> (default /etc/passwd), or null.</summary>
    public static UserAccount? FindByUid(uint uid, string passwd = "/etc/passwd") => Search(passwd, null, uid);

    private static UserAccount? Search(string passwd, string? name, uint wantedUid)
    {
        if (!File.Exists(passwd))
        {
            return null;
        }
        foreach (string line in File.ReadLines(passwd))
        {
            string[] f = line.Split(':');
            if (f.Length == 7 && (name == null || f[0] == name)
                && uint.TryParse(f[2], NumberStyles.None, CultureInfo.InvariantCulture, out uint uid)
                && uint.TryParse(f[3], NumberStyles.None, CultureInfo.InvariantCulture, out uint gid)
                && (name != null || uid == wantedUid))
            {
                return new UserAccount(f[0], uid, gid, f[5].Length > 0 ? f[5] : "/", f[6].Length > 0 ? f[6] : "/bin/sh");
            }
        }
        return null;
    }
}
