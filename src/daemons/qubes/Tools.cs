using System;
using System.Diagnostics;
using System.IO;

namespace Qubes.Front;

/// <summary>
/// Finds and starts the qrexec and hypervisor executables: by default those built beside this
/// one; a program built elsewhere (the benchmarks) names the directory they were built into.
/// </summary>
internal static class Tools
{
    /// <summary>The native qrexec-client-vm for tools built into <paramref name="toolDirectory"/> (artifacts/bin/&lt;project&gt;/&lt;config&gt;/).</summary>
    public static string NativeClientVmFor(string toolDirectory)
        => System.IO.Path.GetFullPath(System.IO.Path.Combine(toolDirectory, "../../../native/qrexec-client-vm"));

    /// <summary>The path of a tool in <paramref name="toolDirectory"/>.</summary>
    public static string PathIn(string toolDirectory, string tool) => System.IO.Path.Combine(toolDirectory, tool);

    public static ProcessStartInfo StartInfo(string tool, params string[] args) => StartInfoIn(AppContext.BaseDirectory, tool, args);

    /// <summary>Starts <paramref name="tool"/> from <paramref name="toolDirectory"/>: its apphost, else its dll under dotnet.</summary>
    public static ProcessStartInfo StartInfoIn(string toolDirectory, string tool, params string[] args)
    {
        string apphost = System.IO.Path.Combine(toolDirectory, tool);
        ProcessStartInfo psi;
        if (File.Exists(apphost))
        {
            psi = new ProcessStartInfo(apphost);
        }
        else
        {
            psi = new ProcessStartInfo("dotnet");
            psi.ArgumentList.Add(System.IO.Path.Combine(toolDirectory, tool + ".dll"));
        }
        foreach (string a in args)
        {
            psi.ArgumentList.Add(a);
        }
        psi.UseShellExecute = false;
        return psi;
    }
}
