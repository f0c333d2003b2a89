using System.Collections.Generic;
using System.Globalization;
using System.IO;

namespace Qubes.Tools.Qubesd;

/// <summary>CPU time of a process and all its descendants, from <c>/proc/PID/stat</c>.</summary>
internal static class ProcessTree
{
    private const long NsPerTick = 10_000_000; // USER_HZ is 100 on Linux

    /// <summary>User and system time of <paramref name="root"/> and its descendants (and their reaped children), in nanoseconds.</summary>
    public static long CpuTimeNs(int root)
    {
        Dictionary<int, (int Parent, long Ticks)> processes = [];
        foreach (string directory in Directory.EnumerateDirectories("/proc"))
        {
            if (int.TryParse(Path.GetFileName(directory), NumberStyles.None, CultureInfo.InvariantCulture, out int pid) && Read(pid) is { } stat)
            {
                processes[pid] = stat;
            }
        }
        long total = 0;
        foreach ((int pid, (int _, long ticks)) in processes)
        {
            for (int p = pid; processes.TryGetValue(p, out (int Parent, long Ticks) entry); p = entry.Parent)
            {
                if (p == root)
                {
                    total += ticks;
                    break;
                }
                if (entry.Parent == p)
                {
                    break;
                }
            }
        }
        return total * NsPerTick;
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
