using System;
using System.Diagnostics;

namespace Qubes.Bench;

/// <summary>A running qrexec system with qubes <c>work</c> and <c>personal</c>, as the qrexec benchmarks use it.</summary>
internal interface IQrexecBench : IDisposable
{
    /// <summary>The agent process of a qube (to pin it to a CPU).</summary>
    Process Agent(string qube);

    /// <summary>Writes an executable service into a qube.</summary>
    void AddService(string qube, string name, string script);

    /// <summary>qrexec-client-vm in <paramref name="qube"/> calling <paramref name="service"/> in <paramref name="target"/>.</summary>
    ProcessStartInfo ClientVm(string qube, string target, string service);

    /// <summary>qrexec-client in dom0 running <paramref name="command"/> (<c>USER:COMMAND</c>) in <paramref name="target"/>.</summary>
    ProcessStartInfo Dom0Client(string target, string command);
}
