using System;
using System.Collections.Generic;
using System.IO;

namespace Qubes.Core.Api;

/// <summary>
/// A qrexec call from dom0 into a qube as dom0's tools make it: <c>qrexec-client</c> (built beside
/// the tool) with <c>-d VM USER:QUBESRPC SERVICE dom0</c>; on a loopback system
/// (<c>QUBES_STATE_DIR</c>) the system's qrexec sockets and hypervisor.
/// </summary>
public static class Dom0Call
{
    /// <summary>The client's path.</summary>
    public static string Client => Path.Combine(AppContext.BaseDirectory, "qrexec-client");

    /// <summary>The client's arguments (without its name) for <paramref name="service"/> in <paramref name="vm"/>, with a local program when given.</summary>
    public static List<string> Arguments(string vm, string user, string service, string? localCommand = null)
    {
        List<string> argv = [];
        if (State is { } layout)
        {
            argv.Add("--socket-dir=" + layout.QrexecSockets);
        }
        argv.Add("-d");
        argv.Add(vm);
        if (localCommand != null)
        {
            argv.Add("-l");
            argv.Add(localCommand);
        }
        argv.Add($"{user}:QUBESRPC {service} dom0");
        return argv;
    }

    /// <summary>What the client's environment needs beyond this process's: the loopback system's hypervisor.</summary>
    public static IEnumerable<(string Name, string Value)> Environment()
    {
        if (State is { } layout)
        {
            yield return ("QUBES_LOHV_DIR", layout.Broker);
        }
    }

    private static SystemLayout? State => System.Environment.GetEnvironmentVariable("QUBES_STATE_DIR") is { } state ? new SystemLayout(state) : null;
}
