using System;
using System.Diagnostics;
using System.IO;
using System.Text;
using Qubes.AppMenus;
using Qubes.Core;

namespace Qubes.Tools.QvmAppmenus;

/// <summary>
/// A qrexec service run in a qube from dom0, its output read here: <c>qrexec-client</c> (built
/// beside this program) with <c>DEFAULT:QUBESRPC SERVICE dom0</c>, as qvm-run's calls.
/// </summary>
internal static class ServiceCall
{
    public static Process Start(string vm, string service)
    {
        ProcessStartInfo start = new(Path.Combine(AppContext.BaseDirectory, "qrexec-client"))
        {
            UseShellExecute = false,
            RedirectStandardInput = true,
            RedirectStandardOutput = true,
        };
        if (Environment.GetEnvironmentVariable("QUBES_STATE_DIR") is { } state)
        {
            SystemLayout layout = new(state);
            start.ArgumentList.Add("--socket-dir=" + layout.QrexecSockets);
            start.Environment["QUBES_LOHV_DIR"] = layout.Broker;
        }
        foreach (string a in (ReadOnlySpan<string>)["-d", vm, $"DEFAULT:QUBESRPC {service} dom0"])
        {
            start.ArgumentList.Add(a);
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
