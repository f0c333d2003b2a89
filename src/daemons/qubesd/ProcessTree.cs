using System;
using System.Globalization;
using System.IO;

namespace Qubes.Tools.Qubesd;

/// <summary>A qube's CPU time, and the processes of its sandbox, from its cgroup and <c>/proc</c>.</summary>
internal static class ProcessTree
{
    private const long NsPerTick = 10_000_000; // USER_HZ is 100 on Linux

    /// <summary>
    /// CPU time used by the qube whose sandbox launcher is <paramref name="launcher"/>, in
    /// nanoseconds, from the cgroup qube-sandbox makes for it (<c>qubes-runtime/NAME.PID</c> under
    /// each hierarchy's root, PID the launcher's): the group's <c>usage_usec</c> on cgroup v2; on v1 (where the cpu accounting
    /// hierarchy may be mounted apart from the cpu controller) the user and system time of the
    /// processes its pids group lists, with their reaped children's. 0 once the group is gone.
    /// </summary>
    public static long CpuTimeNs(string name, int launcher)
    {
        string group = string.Create(CultureInfo.InvariantCulture, $"qubes-runtime/{name}.{launcher}");
        try
        {
            foreach (string line in File.ReadLines($"/sys/fs/cgroup/{group}/cpu.stat"))
            {
                if (line.StartsWith("usage_usec ", StringComparison.Ordinal))
                {
                    return 1000 * long.Parse(line.AsSpan("usage_usec ".Length), CultureInfo.InvariantCulture);
                }
            }
        }
        catch (IOException)
        {
            // not cgroup v2, or the qube has just stopped
        }
        long ticks = 0;
        try
        {
            foreach (string line in File.ReadLines($"/sys/fs/cgroup/pids/{group}/cgroup.procs"))
            {
                if (int.TryParse(line, NumberStyles.None, CultureInfo.InvariantCulture, out int pid) && Read(pid) is { } stat)
                {
                    ticks += stat.Ticks;
                }
            }
        }
        catch (IOException)
        {
            // the qube has just stopped
        }
        return ticks * NsPerTick;
    }

    /// <summary>A child process of <paramref name="parent"/> (the first found), or null.</summary>
    public static int? ChildOf(int parent)
    {
        foreach (string directory in Directory.EnumerateDirectories("/proc"))
        {
            if (int.TryParse(Path.GetFileName(directory), NumberStyles.None, CultureInfo.InvariantCulture, out int pid) && Read(pid) is { } stat && stat.Parent == parent)
            {
                return pid;
            }
        }
        return null;
    }

    /// <summary>The parent and utime+stime+cutime+cstime of one process (fields 4 and 14-17 of its stat line), or null when it is gone.</summary>
    private static (int Parent, long Ticks)? Read(int pid)
    {
        string text;
        try
        {
            text = File.ReadAllText($"/proc/{pid}/stat");
        }
        catch (IOException)
        {
            return null;
        }
        // the command name (field 2) is in parentheses and may hold spaces: the fields after it start at the last ')'
        string[] f = text[(text.LastIndexOf(')') + 2)..].Split(' ');
        if (f.Length < 15)
        {
            return null;
        }
        long ticks = 0;
        for (int i = 11; i <= 14; i++)
        {
            ticks += long.Parse(f[i], CultureInfo.InvariantCulture);
        }
        return (int.Parse(f[1], CultureInfo.InvariantCulture), ticks);
    }
}
