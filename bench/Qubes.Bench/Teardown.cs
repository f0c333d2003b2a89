using System;
using System.Collections.Generic;
using System.Diagnostics;
using System.IO;

namespace Qubes.Bench;

/// <summary>Ending what a benchmark started: its processes, its scratch directory.</summary>
internal static class Teardown
{
    /// <summary>Kills and reaps each process (with what it started), latest first: daemons before what they serve.</summary>
    public static void Stop(List<Process> processes)
    {
        for (int i = processes.Count - 1; i >= 0; i--)
        {
            Stop(processes[i]);
        }
        processes.Clear();
    }

    public static void Stop(Process process)
    {
        try
        {
            process.Kill(entireProcessTree: true);
            process.WaitForExit(5000);
        }
        catch (InvalidOperationException)
        {
            // it had exited
        }
        process.Dispose();
    }

    /// <summary>Deletes a scratch directory, leaving it when something in it is still busy.</summary>
    public static void Delete(string directory)
    {
        try
        {
            Directory.Delete(directory, recursive: true);
        }
        catch (IOException)
        {
        }
    }
}
