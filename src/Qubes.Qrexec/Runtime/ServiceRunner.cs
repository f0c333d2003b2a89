using System;
using System.Collections.Generic;
using System.IO;
using System.Linq;
using System.Net;
using System.Net.Sockets;
using System.Text;
using System.Threading;
using Qubes.Interop.Linux;
using Qubes.Qrexec.Services;
using Qubes.Qrexec.Transport;

namespace Qubes.Qrexec.Runtime;

/// <summary>
/// The service end of a call once its data channel is up (spec §9): parse the command line, find
/// the service and its configuration, start it, and run the data phase. Used by the agent in a
/// qube and by the daemon for calls to dom0.
/// </summary>
public static class ServiceRunner
{
    /// <summary>Capacity asked for the pipes of a service's stdin and stdout.</summary>
    public const int ServicePipeSize = 1048576;

    /// <summary>Log lines of the service side (the agent's or daemon's log).</summary>
    public static Action<string> Log { get; set; } = static line => Console.Error.WriteLine(line);

    /// <summary>
    /// Whether an executable service runs as the user its call names (the agent, running as the
    /// qube's root, as upstream's does): a user other than root is taken from /etc/passwd, its
    /// groups from /etc/group, and the program started through <c>qube-runas</c> (found on PATH;
    /// util-linux's <c>setpriv</c> where there is none) with that user's ids and groups, environment
    /// (HOME, USER, LOGNAME, SHELL) and home as working directory. Otherwise services run as this process.
    /// </summary>
    public static bool RunAsCallUser { get; set; }

    private static readonly Lazy<string?> s_runas = new(static () =>
    {
        foreach (string directory in (Environment.GetEnvironmentVariable("PATH") ?? string.Empty).Split(':', StringSplitOptions.RemoveEmptyEntries))
        {
            string candidate = System.IO.Path.Combine(directory, "qube-runas");
            if (File.Exists(candidate))
            {
                return candidate;
            }
        }
        return null;
    });

    /// <summary>
    /// Resolves <paramref name="commandLine"/> (<c>user:command</c>) to what a call will start (spec
    /// §9 steps 1-4: parse, check the user, find the service and its configuration). Touches no
    /// channel, so a caller may do it while the data channel is still being set up; a problem is
    /// logged here and reported by <see cref="Run(IQrexecChannel, uint, PreparedService, bool, bool)"/>.
    /// </summary>
    public static PreparedService Prepare(string commandLine) => PrepareCommand(commandLine, withUser: true);

    /// <summary>
    /// The same for a call made to dom0: the command names no user (<c>[nogui:]QUBESRPC ...</c> or a
    /// shell command, as the policy daemon hands it to <c>qrexec-client -c</c>) and runs as this process.
    /// </summary>
    public static PreparedService PrepareDom0(string command) => PrepareCommand(command, withUser: false);

    private static PreparedService PrepareCommand(string commandLine, bool withUser)
    {
        ArgumentNullException.ThrowIfNull(commandLine);
        if (!ServiceCommand.TryParse(commandLine, withUser, out ServiceCommand? command, out string? error))
        {
            Log($"qrexec: bad command line: {error}");
            return PreparedService.Failed(QrexecProtocol.ExitProblem);
        }
        string? ownUser = Environment.UserName;
        if (withUser && !IsRoot() && command!.User != ownUser)
        {
            Log($"qrexec: cannot run as {command.User}: this agent runs as {ownUser}");
            return PreparedService.Failed(QrexecProtocol.ExitProblem);
        }
        if (!command!.IsRpc)
        {
            // the user's shell, as upstream's agent runs a command (bash's builtins, not only POSIX sh's)
            string shell = withUser ? ShellOf(command.User) : "/bin/sh";
            return AsCallUser(new PreparedService(command, ServiceKind.Executable, null, RpcConfig.Default, shell, [shell, "-c", command.ShellCommand!],
                ServiceEnvironment.Build(ServiceEnvironment.Current(), command, Environment.ProcessId)));
        }
        ServiceLocation location = ServiceLookup.Find(command.LookupName, command.ServiceName, Environment.GetEnvironmentVariable(ServiceEnvironment.ServicePathVariable));
        if (location.Kind is ServiceKind.NotFound or ServiceKind.Failure)
        {
            Log($"qrexec: service {command.LookupName}: {location.Error ?? "not found"}");
            return PreparedService.Failed(location.ExitCode);
        }
        RpcConfigResult config = RpcConfig.Load(command.LookupName, command.ServiceName, Environment.GetEnvironmentVariable("QUBES_RPC_CONFIG_PATH"));
        if (!config.IsSuccess)
        {
            Log($"qrexec: service {command.LookupName}: config {config.Path}: {config.Error}");
            return PreparedService.Failed(QrexecProtocol.ExitProblem);
        }
        RpcConfig settings = config.Config!;
        if (location.Kind != ServiceKind.Executable)
        {
            return new PreparedService(command, location.Kind, location, settings, null, [], []);
        }
        if (!command.HasValidTokenCountForExecutable)
        {
            Log($"qrexec: {command.TokenCount} tokens after QUBESRPC; an executable service takes 2 or 4");
            return PreparedService.Failed(QrexecProtocol.ExitProblem);
        }
        return AsCallUser(new PreparedService(command, ServiceKind.Executable, location, settings, location.Path!, ServiceEnvironment.BuildArgv(location.Path!, command),
            ServiceEnvironment.Build(ServiceEnvironment.Current(), command, Environment.ProcessId)));
    }

    /// <summary>The login shell of <paramref name="user"/> when it is an executable file, else /bin/sh.</summary>
    private static string ShellOf(string user)
        => UserAccount.Find(user) is { Shell: ['/', ..] shell } && File.Exists(shell) ? shell : "/bin/sh";

    /// <summary>An executable service as it starts under <see cref="RunAsCallUser"/>: through qube-runas (or setpriv) as the call's user.</summary>
    private static PreparedService AsCallUser(PreparedService service)
    {
        ServiceCommand command = service.Command!;
        if (!RunAsCallUser || command.User == "root")
        {
            return service;
        }
        if (UserAccount.Find(command.User) is not { } account)
        {
            Log($"qrexec: cannot run as {LogText.Cap(command.User)}: no such user");
            return PreparedService.Failed(QrexecProtocol.ExitProblem);
        }
        string id = account.Uid.ToString(System.Globalization.CultureInfo.InvariantCulture);
        string group = account.Gid.ToString(System.Globalization.CultureInfo.InvariantCulture);
        string runas = s_runas.Value ?? "/usr/bin/setpriv";
        List<string> argv = s_runas.Value is null
            ? ["setpriv", "--reuid=" + id, "--regid=" + group, "--init-groups", "--", service.Path!, .. service.Argv.Skip(1)]
            : ["qube-runas", id, group, string.Join(',', account.Groups()), "--", service.Path!, .. service.Argv.Skip(1)];
        List<string> environment = [.. service.Environment.Where(static v => !v.StartsWith("HOME=", StringComparison.Ordinal) && !v.StartsWith("USER=", StringComparison.Ordinal)
            && !v.StartsWith("LOGNAME=", StringComparison.Ordinal) && !v.StartsWith("SHELL=", StringComparison.Ordinal))];
        environment.Add("HOME=" + account.Home);
        environment.Add("USER=" + account.Name);
        environment.Add("LOGNAME=" + account.Name);
        environment.Add("SHELL=" + account.Shell);
        return new PreparedService(command, service.Kind, service.Location, service.Settings, runas, argv, environment,
            Directory.Exists(account.Home) ? account.Home : "/");
    }

    /// <summary>
    /// Runs <paramref name="commandLine"/> over <paramref name="channel"/>: <see cref="Prepare"/>,
    /// then <see cref="Run(IQrexecChannel, uint, PreparedService, bool, bool)"/>.
    /// </summary>
    public static int Run(IQrexecChannel channel, uint version, string commandLine, bool justExec, bool dom0)
        => Run(channel, version, Prepare(commandLine), justExec, dom0);

    /// <summary>
    /// Makes sure SIGUSR1 does not end this process: a service tells its agent with it (through
    /// <c>QREXEC_AGENT_PID</c>) that it uses its stdin socket for its output too. The data pump
    /// reads that socket as well anyway; the signal tells it that the service's stdout closing
    /// does not end STDOUT. Once per process.
    /// </summary>
    public static void IgnoreServiceSignals()
    {
        s_usr1 ??= System.Runtime.InteropServices.PosixSignalRegistration.Create((System.Runtime.InteropServices.PosixSignal)10, static context =>
        {
            Interlocked.Increment(ref s_stdioSocketSignals);
            context.Cancel = true;
        });
    }

    /// <summary>How many SIGUSR1 this process has had (see <see cref="IgnoreServiceSignals"/>).</summary>
    public static int StdioSocketSignals => Volatile.Read(ref s_stdioSocketSignals);

    private static int s_stdioSocketSignals;

    private static System.Runtime.InteropServices.PosixSignalRegistration? s_usr1;

    /// <summary>
    /// Runs a prepared service over <paramref name="channel"/> (handshake done, version
    /// <paramref name="version"/>), or reports why it cannot run. <paramref name="justExec"/>: start
    /// detached and report only the launch result. <paramref name="dom0"/>: the dom0 service runner
    /// (failure EOFs in the reverse order). Returns the status sent in EXIT_CODE.
    /// </summary>
    public static int Run(IQrexecChannel channel, uint version, PreparedService service, bool justExec, bool dom0)
    {
        ArgumentNullException.ThrowIfNull(channel);
        ArgumentNullException.ThrowIfNull(service);
        if (service.Command is not { } command)
        {
            if (justExec)
            {
                // a detached start that could not start: only its status, no streams (as upstream)
                DataPump.SendExitCode(channel, service.FailureStatus);
                return service.FailureStatus;
            }
            return Fail(channel, service.FailureStatus, dom0);
        }
        if (command.IsRpc && service.Settings.WaitForSession && !command.NoGui)
        {
            WaitForSession(command);
        }
        switch (service.Kind)
        {
            case ServiceKind.Executable:
                return RunExecutable(channel, version, service, justExec, dom0);
            case ServiceKind.Socket:
                return RunSocket(channel, version, command, service.Settings, service.Location!, justExec, dom0);
            default:
                return RunTcp(channel, version, command, service.Settings, service.Location!, dom0);
        }
    }

    private static int RunExecutable(IQrexecChannel channel, uint version, PreparedService service, bool justExec, bool dom0)
    {
        string path = service.Path!;
        if (justExec)
        {
            using SpawnedProcess? detached = Spawner.Start(path, service.Argv, service.Environment, -1, -1, -1, service.WorkingDirectory, out Errno startError);
            int status = detached != null ? 0 : startError == Errno.ENOENT ? QrexecProtocol.ExitServiceNotFound : QrexecProtocol.ExitProblem;
            DataPump.SendExitCode(channel, status);
            return status;
        }
        // stdin and stdout are socket pairs, as upstream's: a service may write its output into its
        // stdin socket too (after SIGUSR1 to QREXEC_AGENT_PID); dom0's services keep their stderr in
        // dom0's log, their callers get its end at once
        (SafeFd stdinOurs, SafeFd stdinTheirs) = SocketPair();
        (SafeFd stdoutOurs, SafeFd stdoutTheirs) = SocketPair();
        SafeFd? stderrRead = null, stderrWrite = null;
        if (!dom0)
        {
            (stderrRead, stderrWrite) = Fd.Pipe();
        }
        SpawnedProcess? process;
        using (stdinTheirs)
        using (stdoutTheirs)
        using (stderrWrite)
        {
            process = Spawner.Start(path, service.Argv, service.Environment, stdinTheirs.Fd, stdoutTheirs.Fd, stderrWrite?.Fd ?? 2, service.WorkingDirectory, out Errno error);
            if (process == null)
            {
                stdinOurs.Dispose();
                stdoutOurs.Dispose();
                stderrRead?.Dispose();
                Log($"qrexec: exec {path}: {error}");
                return Fail(channel, error == Errno.ENOENT ? QrexecProtocol.ExitServiceNotFound : QrexecProtocol.ExitProblem, dom0);
            }
        }
        using (process)
        {
            // the pump owns the descriptors from here: it closes each as its stream ends, and the rest when it returns
            ServiceIo io = new()
            {
                Input = stdinOurs.Release(),
                Output = stdoutOurs.Release(),
                Error = stderrRead?.Release() ?? -1,
                InputIsSocket = true,
                Process = process,
            };
            int status = DataPump.RunService(channel, version, io, out string? failure);
            if (status < 0)
            {
                Log($"qrexec: {path}: {failure}");
                process.Signal(Libc.SIGTERM);
            }
            process.TryReap(block: true);
            return status;
        }
    }

    private static int RunSocket(IQrexecChannel channel, uint version, ServiceCommand command, RpcConfig settings, ServiceLocation location, bool justExec, bool dom0)
    {
        SafeFd? socket = UnixSocket.TryConnect(location.Path!, out Errno error);
        if (socket == null)
        {
            Log($"qrexec: connect {location.Path}: {error}");
            if (justExec)
            {
                DataPump.SendExitCode(channel, QrexecProtocol.ExitProblem);
                return QrexecProtocol.ExitProblem;
            }
            return Fail(channel, QrexecProtocol.ExitProblem, dom0);
        }
        using (socket)
        {
            if (justExec)
            {
                // a detached call to a socket service: the descriptor is its whole request
                bool written = settings.SkipServiceDescriptor || Io.WriteAll(socket.Fd, Encoding.UTF8.GetBytes(command.DescriptorLine + "\0"));
                int status = written ? 0 : QrexecProtocol.ExitProblem;
                DataPump.SendExitCode(channel, status);
                return status;
            }
            return RunConnected(channel, version, command, settings, socket.Fd);
        }
    }

    private static int RunTcp(IQrexecChannel channel, uint version, ServiceCommand command, RpcConfig settings, ServiceLocation location, bool dom0)
    {
        if (!IPAddress.TryParse(location.Host, out IPAddress? address))
        {
            return Fail(channel, QrexecProtocol.ExitProblem, dom0);
        }
        using Socket socket = new(address.AddressFamily, SocketType.Stream, ProtocolType.Tcp);
        try
        {
            socket.Connect(new IPEndPoint(address, location.Port));
        }
        catch (SocketException e)
        {
            Log($"qrexec: connect {location.Host}:{location.Port}: {e.SocketErrorCode}");
            return Fail(channel, QrexecProtocol.ExitProblem, dom0);
        }
        return RunConnected(channel, version, command, settings, (int)socket.Handle);
    }

    private static int RunConnected(IQrexecChannel channel, uint version, ServiceCommand command, RpcConfig settings, int fd)
    {
        if (!settings.SkipServiceDescriptor)
        {
            byte[] line = Encoding.UTF8.GetBytes(command.DescriptorLine + "\0");
            if (!Io.WriteAll(fd, line))
            {
                return Fail(channel, QrexecProtocol.ExitProblem, dom0: false);
            }
        }
        ServiceIo io = new()
        {
            Input = fd,
            Output = fd,
            Error = -1,
            IsSocket = true,
            ExitOnClientEof = settings.ExitOnClientEof,
            ExitOnServiceEof = settings.ExitOnServiceEof,
        };
        int status = DataPump.RunService(channel, version, io, out string? failure);
        if (status < 0)
        {
            Log($"qrexec: socket service {command.LookupName}: {failure}");
        }
        return status;
    }

    /// <summary>Runs qubes.WaitForSession (if there is one) with the user name on its stdin and waits for it.</summary>
    private static void WaitForSession(ServiceCommand command)
    {
        ServiceLocation wait = ServiceLookup.Find("qubes.WaitForSession+", "qubes.WaitForSession", Environment.GetEnvironmentVariable(ServiceEnvironment.ServicePathVariable));
        if (wait.Kind != ServiceKind.Executable)
        {
            return;
        }
        (SafeFd read, SafeFd write) = Fd.Pipe();
        List<string> environment = [.. ServiceEnvironment.Build(ServiceEnvironment.Current(), command, Environment.ProcessId)];
        environment.RemoveAll(static v => v.StartsWith(ServiceEnvironment.RemoteDomainVariable + "=", StringComparison.Ordinal));
        environment.Add($"{ServiceEnvironment.RemoteDomainVariable}={command.Source}");
        using (read)
        using (write)
        {
            using SpawnedProcess? process = Spawner.Start(wait.Path!, [wait.Path!], environment, read.Fd, -1, -1, out _);
            Io.WriteAll(write.Fd, Encoding.UTF8.GetBytes(command.User + "\n"));
            write.Dispose();
            process?.TryReap(block: true);
        }
    }

    private static int Fail(IQrexecChannel channel, int status, bool dom0)
    {
        DataPump.SendLaunchFailure(channel, status, dom0);
        return status;
    }

    private static (SafeFd Ours, SafeFd Theirs) SocketPair()
    {
        (SafeFd ours, SafeFd theirs) = FdPassing.SocketPair();
        // room like the pipes' had: a service and its agent wake each other less often
        UnixSocket.SetBufferSizes(ours.Fd, ServicePipeSize);
        UnixSocket.SetBufferSizes(theirs.Fd, ServicePipeSize);
        return (ours, theirs);
    }

    private static bool IsRoot() => geteuid() == 0;

    [System.Runtime.InteropServices.DllImport("libc.so.6")]
    private static extern uint geteuid();
}
