using System;
using System.Diagnostics;
using System.IO;

namespace Qubes.Front;

/// <summary>Finds and starts the executables built beside this one.</summary>
internal static class Tools
{
    public static ProcessStartInfo StartInfo(string tool, params string[] args)
    {
        string dir = AppContext.BaseDirectory;
        string apphost = Path.Combine(dir, tool);
        ProcessStartInfo psi;
        if (File.Exists(apphost))
        {
            psi = new ProcessStartInfo(apphost);
        }
        else
        {
            psi = new ProcessStartInfo("dotnet");
            psi.ArgumentList.Add(Path.Combine(dir, tool + ".dll"));
        }
        foreach (string a in args)
        {
            psi.ArgumentList.Add(a);
        }
        psi.UseShellExecute = false;
        return psi;
    }
}
