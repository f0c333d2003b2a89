using System;
using System.Diagnostics;
using System.IO;

namespace Qubes.Front;

/// <summary>Finds and starts the executables built beside this one.</summary>
internal static class Tools
{
    /// <summary>The native qrexec-client-vm, built into artifacts/native (beside artifacts/bin).</summary>
    public static string NativeClientVm => System.IO.Path.GetFullPath(System.IO.Path.Combine(AppContext.BaseDirectory, "../../../native/qrexec-client-vm"));

    /// <summary>The path of a tool built beside this one.</summary>
    public static string Path(string tool) => System.IO.Path.Combine(AppContext.BaseDirectory, tool);

    public static ProcessStartInfo StartInfo(string tool, params string[] args)
    {
        string dir = AppContext.BaseDirectory;
        string apphost = System.IO.Path.Combine(dir, tool);
        ProcessStartInfo psi;
        if (File.Exists(apphost))
        {
            psi = new ProcessStartInfo(apphost);
        }
        else
        {
            psi = new ProcessStartInfo("dotnet");
            psi.ArgumentList.Add(System.IO.Path.Combine(dir, tool + ".dll"));
        }
        foreach (string a in args)
        {
            psi.ArgumentList.Add(a);
        }
        psi.UseShellExecute = false;
        return psi;
    }
}
