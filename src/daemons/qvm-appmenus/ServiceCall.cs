using System.Diagnostics;
using System.IO;
using System.Text;
using Qubes.AppMenus;
using Qubes.Core.Api;

namespace Qubes.Tools.QvmAppmenus;

/// <summary>
/// A qrexec service run in a qube from dom0 (<see cref="Dom0Call"/>, as qvm-run's calls), its
/// output read here.
/// </summary>
internal static class ServiceCall
{
    public static Process Start(string vm, string service)
    {
        ProcessStartInfo start = new(Dom0Call.Client, Dom0Call.Arguments(vm, "DEFAULT", service))
        {
            UseShellExecute = false,
            RedirectStandardInput = true,
            RedirectStandardOutput = true,
        };
        foreach ((string name, string value) in Dom0Call.Environment())
        {
            start.Environment[name] = value;
        }
        return Process.Start(start) ?? throw new IOException("cannot start qrexec-client");
    }

    /// <summary>An icon from the qube: <c>qubes.GetImageRGBA</c> with the source on one line, the reply checked against the icon limits; discarded when the service fails.</summary>
    public static RgbaImage.ReadResult Icon(string vm, string source)
    {
        using Process p = Start(vm, "qubes.GetImageRGBA");
        try
        {
            p.StandardInput.BaseStream.Write(Encoding.UTF8.GetBytes(source + "\n"));
            p.StandardInput.Close();
        }
        catch (IOException)
        {
            // the service ended without reading: its status says why
        }
        RgbaImage.ReadResult image = RgbaImage.Read(p.StandardOutput.BaseStream, RgbaImage.IconMaxSize, RgbaImage.IconMaxSize);
        p.StandardOutput.Close();
        p.WaitForExit();
        return p.ExitCode != 0 && image.Image != null ? new(null, "Something went wrong with receiver") : image;
    }
}
