using System;
using System.Collections.Generic;
using System.Diagnostics;
using System.IO;
using System.Threading;
using Qubes.Interop.Linux;
using Qubes.Platform.Loopback;

namespace Qubes.Bench;

/// <summary>A loopback hypervisor in this process (this process is dom0) and child processes in its domains.</summary>
internal sealed class LoopbackHost : IDisposable
{
    private readonly LoopbackBroker _broker;
    private readonly Thread _thread;
    private static readonly object s_spawnLock = new();
    private readonly List<Process> _children = [];

    public LoopbackHost()
    {
        Directory = Path.Combine(Path.GetTempPath(), $"qubes-bench-{Environment.ProcessId}");
        _broker = new LoopbackBroker(Directory);
        _thread = new Thread(_broker.Run) { IsBackground = true, Name = "qubes-lohv" };
        _thread.Start();
        Dom0 = LoopbackPlatform.ConnectDom0(Directory);
    }

    public string Directory { get; }

    public LoopbackPlatform Dom0 { get; }

    /// <summary>Creates a domain and returns its id with its connection (for an in-process platform or a child).</summary>
    public (int Id, SafeFd Connection) CreateDomain(string name) => Dom0.CreateDomain(name);

    /// <summary>Decimal text of a number, for child command lines.</summary>
    public static string Text(long value) => value.ToString(System.Globalization.CultureInfo.InvariantCulture);

    /// <summary>Starts this benchmark executable in the domain whose connection is given, with the given peer role arguments.</summary>
    public Process StartInDomain(SafeFd connection, params string[] args)
    {
        using (connection)
        {
            Process p = LoopbackPlatform.StartInDomain(connection, PeerStartInfo(args));
            _children.Add(p);
            return p;
        }
    }

    /// <summary>Starts this benchmark executable (outside any domain) with an inherited descriptor.</summary>
    public Process StartWithFd(int fd, params string[] args)
    {
        ProcessStartInfo psi = PeerStartInfo(args);
        Process p;
        lock (s_spawnLock)
        {
            Fd.SetInheritable(fd, true);
            try
            {
                p = Process.Start(psi)!;
            }
            finally
            {
                Fd.SetInheritable(fd, false);
            }
        }
        _children.Add(p);
        return p;
    }

    public static ProcessStartInfo PeerStartInfo(string[] args)
    {
        var psi = new ProcessStartInfo(Environment.ProcessPath!) { RedirectStandardOutput = true, UseShellExecute = false };
        if (Path.GetFileNameWithoutExtension(Environment.ProcessPath) == "dotnet")
        {
            psi.ArgumentList.Add(typeof(LoopbackHost).Assembly.Location);
        }
        psi.ArgumentList.Add("peer");
        foreach (string a in args)
        {
            psi.ArgumentList.Add(a);
        }
        return psi;
    }

    public void Dispose()
    {
        foreach (Process p in _children)
        {
            if (!p.HasExited)
            {
                p.Kill();
            }
            p.Dispose();
        }
        Dom0.Dispose();
        _broker.Stop();
        _thread.Join();
        _broker.Dispose();
    }
}
