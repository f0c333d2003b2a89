using System;
using System.Collections.Generic;
using Qubes.Interop.Linux;
using Qubes.Qrexec.Services;
using Qubes.Qrexec.Transport;

namespace Qubes.Qrexec.Runtime;

/// <summary>A local program joined to a call through a socket pair (qrexec-client -l, qrexec-client-vm's local program).</summary>
public sealed class LocalProgram : IDisposable
{
    private LocalProgram(SpawnedProcess process, SafeFd socket)
    {
        Process = process;
        Socket = socket;
    }

    public SpawnedProcess Process { get; }

    /// <summary>Our end: what the program writes is read here, what is written here is its stdin.</summary>
    public SafeFd Socket { get; }

    /// <summary>Starts <paramref name="argv"/> (via the shell when <paramref name="shell"/>) with stdin and stdout on one end of a socket pair.</summary>
    public static LocalProgram? Start(IReadOnlyList<string> argv, bool shell, IDictionary<string, string> extraEnvironment, int stderr, out string? error)
    {
        (SafeFd ours, SafeFd theirs) = FdPassing.SocketPair();
        using (theirs)
        {
            SpawnedProcess? process = Spawn(argv, shell, extraEnvironment, theirs.Fd, theirs.Fd, stderr, out error);
            if (process == null)
            {
                ours.Dispose();
                return null;
            }
            return new LocalProgram(process, ours);
        }
    }

    /// <summary>
    /// Starts <paramref name="argv"/> (via the shell when <paramref name="shell"/>) on the given
    /// descriptors, in the service environment of this process with <paramref name="extraEnvironment"/>
    /// added; null with the reason when it cannot be started.
    /// </summary>
    public static SpawnedProcess? Spawn(IReadOnlyList<string> argv, bool shell, IDictionary<string, string> extraEnvironment, int stdin, int stdout, int stderr, out string? error)
    {
        ArgumentNullException.ThrowIfNull(argv);
        ArgumentNullException.ThrowIfNull(extraEnvironment);
        List<string> environment = [];
        foreach (KeyValuePair<string, string> e in ServiceEnvironment.Current())
        {
            if (!extraEnvironment.ContainsKey(e.Key))
            {
                environment.Add($"{e.Key}={e.Value}");
            }
        }
        foreach (KeyValuePair<string, string> e in extraEnvironment)
        {
            environment.Add($"{e.Key}={e.Value}");
        }
        // as a service does, the program may signal that it writes into its stdin socket too
        if (!extraEnvironment.ContainsKey(ServiceEnvironment.AgentPidVariable))
        {
            environment.RemoveAll(static e => e.StartsWith(ServiceEnvironment.AgentPidVariable + "=", StringComparison.Ordinal));
            environment.Add($"{ServiceEnvironment.AgentPidVariable}={Environment.ProcessId}");
        }
        ServiceRunner.IgnoreServiceSignals();
        string[] effective = shell ? ["/bin/sh", "-c", string.Join(' ', argv)] : [.. argv];
        string path = effective[0].Contains('/', StringComparison.Ordinal) ? effective[0] : Which(effective[0]);
        SpawnedProcess? process = Spawner.Start(path, effective, environment, stdin, stdout, stderr, out Errno errno);
        error = process == null ? $"{effective[0]}: {errno}" : null;
        return process;
    }

    /// <summary>
    /// The caller's data phase of a client program: on <paramref name="io"/>, or through
    /// <paramref name="program"/> when there is one (its socket then stands for stdin and stdout,
    /// and it is disposed afterwards). A pump failure goes to stderr after <paramref name="tool"/>.
    /// Returns the call's status.
    /// </summary>
    public static int RunCaller(IQrexecChannel channel, uint version, CallerIo io, LocalProgram? program, string tool)
    {
        using (program)
        {
            if (program != null)
            {
                io.Input = program.Socket.Fd;
                io.Output = program.Socket.Fd;
                io.LocalProcess = program.Process;
            }
            int status = DataPump.RunCaller(channel, version, io, out string? failure);
            if (failure != null)
            {
                Console.Error.WriteLine($"{tool}: {failure}");
            }
            return status;
        }
    }

    private static string Which(string name)
    {
        foreach (string dir in (Environment.GetEnvironmentVariable("PATH") ?? "/usr/bin:/bin").Split(':'))
        {
            string candidate = System.IO.Path.Combine(dir, name);
            if (System.IO.File.Exists(candidate))
            {
                return candidate;
            }
        }
        return name;
    }

    public void Dispose()
    {
        Socket.Dispose();
        Process.Dispose();
    }
}
