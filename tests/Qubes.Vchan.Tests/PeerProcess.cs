using System;
using System.Diagnostics;
using System.IO;
using Qubes.Interop.Linux;
using Qubes.Platform.Loopback;
using Qubes.Platform.Tests;

namespace Qubes.Vchan.Tests;

/// <summary>The test peer executable started in its own loopback domain.</summary>
internal sealed class PeerProcess : IDisposable
{
    private PeerProcess(int domainId, Process process)
    {
        DomainId = domainId;
        Process = process;
    }

    public int DomainId { get; }

    public Process Process { get; }

    /// <summary>Creates a domain and starts the peer in it with the given role arguments.</summary>
    public static PeerProcess Start(TestBroker broker, string name, params string[] args)
    {
        (int id, SafeFd connection) = broker.Dom0.CreateDomain(name);
        var psi = new ProcessStartInfo(Path.Combine(AppContext.BaseDirectory, "Qubes.Vchan.TestPeer"))
        {
            RedirectStandardOutput = true,
            UseShellExecute = false,
        };
        foreach (string a in args)
        {
            psi.ArgumentList.Add(a);
        }
        using (connection)
        {
            return new PeerProcess(id, LoopbackPlatform.StartInDomain(connection, psi));
        }
    }

    public string? ReadLine() => Process.StandardOutput.ReadLine();

    public void Dispose()
    {
        if (!Process.HasExited)
        {
            Process.Kill();
        }
        Process.WaitForExit();
        Process.Dispose();
    }
}
