using System;
using System.Collections.Generic;
using System.Runtime.InteropServices;
using System.Text;

namespace Qubes.Interop.Linux;

/// <summary>
/// A child process started with posix_spawn on descriptors we chose, watched through a pidfd so
/// that its exit is one more descriptor in a poll set. The .NET runtime reaps only the children it
/// started itself, so the exit status stays ours to collect.
/// </summary>
public sealed class SpawnedProcess : IDisposable
{
    internal SpawnedProcess(int pid, SafeFd pidFd)
    {
        Pid = pid;
        PidFd = pidFd;
    }

    /// <summary>The status given to a process whose exit someone else collected (qrexec's status for a failure of its own).</summary>
    public const int StatusUnknown = 125;

    public int Pid { get; }

    /// <summary>Readable once the process has exited.</summary>
    public SafeFd PidFd { get; }

    /// <summary>The wait status once collected: exit code, or 128 + signal.</summary>
    public int? ExitCode { get; private set; }

    /// <summary>The signal that ended the process (0 when it exited, or was not collected yet).</summary>
    public int TermSignal { get; private set; }

    /// <summary>
    /// Waits for the process to exit until <paramref name="deadline"/> (Environment.TickCount64, or
    /// −1 for none); past it, kills it with SIGKILL and collects it. Returns whether it had to be killed.
    /// </summary>
    public bool WaitUntil(long deadline)
    {
        while (!TryReap(block: false))
        {
            long now = Environment.TickCount64;
            if (deadline >= 0 && now >= deadline)
            {
                Libc.kill(Pid, Libc.SIGKILL);
                TryReap(block: true);
                return true;
            }
            Fd.PollIn(PidFd.Fd, deadline < 0 ? -1 : (int)Math.Min(int.MaxValue, deadline - now));
        }
        return false;
    }

    /// <summary>Collects the exit status if the process has exited (or waits for it with <paramref name="block"/>). Returns whether it has.</summary>
    public unsafe bool TryReap(bool block)
    {
        if (ExitCode.HasValue)
        {
            return true;
        }
        int status;
        while (true)
        {
            int r = Spawner.waitpid(Pid, &status, block ? 0 : Spawner.WNOHANG);
            if (r == Pid)
            {
                break;
            }
            if (r == 0)
            {
                return false;
            }
            Errno e = LastError.Get();
            if (e == Errno.EINTR)
            {
                continue;
            }
            ExitCode = StatusUnknown; // ECHILD: someone else reaped it
            return true;
        }
        int signal = status & 0x7f;
        TermSignal = signal;
        ExitCode = signal == 0 ? (status >> 8) & 0xff : 128 + signal;
        return true;
    }

    /// <summary>Sends a signal (ignored once the process is gone).</summary>
    public void Signal(int signal)
    {
        if (!ExitCode.HasValue)
        {
            Libc.kill(Pid, signal);
        }
    }

    public void Dispose() => PidFd.Dispose();
}

/// <summary>posix_spawn with the child's standard descriptors, argv and environment given explicitly.</summary>
public static unsafe partial class Spawner
{
    internal const int WNOHANG = 1;
    private const int PosixSpawnSetSigDef = 0x04;
    private const int PosixSpawnSetSigMask = 0x08;
    private const int SysPidfdOpen = 434;
    private const int FirstRealtimeSignal = 32;
    private const int SigKill = 9;
    private const int SigStop = 19;
    private const int FDupFdCloexec = 1030;
    // glibc's opaque types, with room to spare: posix_spawn_file_actions_t is 80 bytes,
    // posix_spawnattr_t 336, sigset_t 128 on x86-64
    private const int FileActionsSize = 256;
    private const int AttrSize = 512;
    private const int SigsetSize = 128;

    /// <summary>
    /// Starts <paramref name="path"/> with <paramref name="argv"/> and <paramref name="environment"/>
    /// (<c>KEY=VALUE</c>), its descriptors 0, 1 and 2 duplicated from the given ones (−1: /dev/null),
    /// SIGPIPE and the signal mask reset to defaults. Returns null with the errno when exec could not
    /// start it (ENOENT for a missing file).
    /// </summary>
    public static SpawnedProcess? Start(string path, IReadOnlyList<string> argv, IReadOnlyList<string> environment, int stdin, int stdout, int stderr, out Errno error)
        => Start(path, argv, environment, stdin, stdout, stderr, null, out error);

    /// <summary>The same, in <paramref name="workingDirectory"/> (null: this process's).</summary>
    public static SpawnedProcess? Start(string path, IReadOnlyList<string> argv, IReadOnlyList<string> environment, int stdin, int stdout, int stderr, string? workingDirectory, out Errno error)
    {
        ArgumentNullException.ThrowIfNull(path);
        ArgumentNullException.ThrowIfNull(argv);
        ArgumentNullException.ThrowIfNull(environment);
        error = Errno.None;
        List<IntPtr> strings = [];
        byte* actions = (byte*)NativeMemory.AllocZeroed(FileActionsSize);
        byte* attr = (byte*)NativeMemory.AllocZeroed(AttrSize);
        byte* sigset = (byte*)NativeMemory.AllocZeroed(SigsetSize);
        IntPtr* argvBlock = (IntPtr*)NativeMemory.AllocZeroed((nuint)(argv.Count + 1), (nuint)sizeof(IntPtr));
        IntPtr* envBlock = (IntPtr*)NativeMemory.AllocZeroed((nuint)(environment.Count + 1), (nuint)sizeof(IntPtr));
        bool actionsReady = false;
        bool attrReady = false;
        int devNull = -1;
        List<int> moved = [];
        try
        {
            // dup2 onto 0, 1 and 2 in turn would overwrite a source that is itself 0, 1 or 2 before
            // it is used (and dup2 of a descriptor onto itself keeps close-on-exec): move such
            // sources above 2 first
            stdin = MoveAbove2(stdin, moved);
            stdout = MoveAbove2(stdout, moved);
            stderr = MoveAbove2(stderr, moved);
            for (int i = 0; i < argv.Count; i++)
            {
                argvBlock[i] = NativeString(argv[i], strings);
            }
            for (int i = 0; i < environment.Count; i++)
            {
                envBlock[i] = NativeString(environment[i], strings);
            }
            IntPtr nativePath = NativeString(path, strings);
            if (stdin < 0 || stdout < 0 || stderr < 0)
            {
                devNull = Libc.open("/dev/null", Libc.O_RDWR | Libc.O_CLOEXEC, 0);
                if (devNull < 0)
                {
                    error = LastError.Get();
                    return null;
                }
            }
            Check(posix_spawn_file_actions_init(actions));
            actionsReady = true;
            Check(posix_spawn_file_actions_adddup2(actions, stdin < 0 ? devNull : stdin, 0));
            Check(posix_spawn_file_actions_adddup2(actions, stdout < 0 ? devNull : stdout, 1));
            Check(posix_spawn_file_actions_adddup2(actions, stderr < 0 ? devNull : stderr, 2));
            if (workingDirectory != null)
            {
                Check(posix_spawn_file_actions_addchdir_np(actions, (byte*)NativeString(workingDirectory, strings)));
            }
            Check(posix_spawnattr_init(attr));
            attrReady = true;
            Check(sigemptyset(sigset));
            Check(posix_spawnattr_setsigmask(attr, sigset));
            // every catchable signal back to its default: the runtime ignores SIGPIPE and handles
            // others, and an exec would pass the ignored ones on
            for (int signal = 1; signal < FirstRealtimeSignal; signal++)
            {
                if (signal is not (SigKill or SigStop))
                {
                    Check(sigaddset(sigset, signal));
                }
            }
            Check(posix_spawnattr_setsigdefault(attr, sigset));
            Check(posix_spawnattr_setflags(attr, PosixSpawnSetSigDef | PosixSpawnSetSigMask));
            int pid;
            int r = posix_spawn(&pid, (byte*)nativePath, actions, attr, argvBlock, envBlock);
            if (r != 0)
            {
                error = (Errno)r;
                return null;
            }
            int pidFd = (int)syscall(SysPidfdOpen, pid, 0);
            if (pidFd < 0)
            {
                error = LastError.Get();
                Libc.kill(pid, Libc.SIGKILL);
                int status;
                waitpid(pid, &status, 0);
                return null;
            }
            Fd.SetInheritable(pidFd, false);
            return new SpawnedProcess(pid, new SafeFd(pidFd));
        }
        finally
        {
            if (actionsReady)
            {
                posix_spawn_file_actions_destroy(actions);
            }
            if (attrReady)
            {
                posix_spawnattr_destroy(attr);
            }
            if (devNull >= 0)
            {
                Libc.close(devNull);
            }
            foreach (int fd in moved)
            {
                Libc.close(fd);
            }
            foreach (IntPtr s in strings)
            {
                NativeMemory.Free((void*)s);
            }
            NativeMemory.Free(actions);
            NativeMemory.Free(attr);
            NativeMemory.Free(sigset);
            NativeMemory.Free(argvBlock);
            NativeMemory.Free(envBlock);
        }
    }

    private static int MoveAbove2(int fd, List<int> moved)
    {
        if (fd is < 0 or > 2)
        {
            return fd;
        }
        int copy = Libc.fcntl(fd, FDupFdCloexec, 3);
        if (copy < 0)
        {
            throw new LinuxException("fcntl F_DUPFD_CLOEXEC", LastError.Get());
        }
        moved.Add(copy);
        return copy;
    }

    /// <summary>The current environment as <c>KEY=VALUE</c> strings.</summary>
    public static List<string> CurrentEnvironment()
    {
        List<string> environment = [];
        foreach (System.Collections.DictionaryEntry e in Environment.GetEnvironmentVariables())
        {
            environment.Add($"{e.Key}={e.Value}");
        }
        return environment;
    }

    private static void Check(int r)
    {
        if (r != 0)
        {
            throw new LinuxException("posix_spawn set-up", (Errno)r);
        }
    }

    private static IntPtr NativeString(string s, List<IntPtr> owned)
    {
        int n = Encoding.UTF8.GetByteCount(s);
        byte* p = (byte*)NativeMemory.Alloc((nuint)n + 1);
        owned.Add((IntPtr)p);
        Encoding.UTF8.GetBytes(s, new Span<byte>(p, n));
        p[n] = 0;
        return (IntPtr)p;
    }

    [LibraryImport(Libraries.Libc)]
    private static partial int posix_spawn(int* pid, byte* path, void* fileActions, void* attr, IntPtr* argv, IntPtr* envp);

    [LibraryImport(Libraries.Libc)]
    private static partial int posix_spawn_file_actions_init(void* actions);

    [LibraryImport(Libraries.Libc)]
    private static partial int posix_spawn_file_actions_destroy(void* actions);

    [LibraryImport(Libraries.Libc)]
    private static partial int posix_spawn_file_actions_adddup2(void* actions, int fd, int newFd);

    [LibraryImport(Libraries.Libc)]
    private static partial int posix_spawn_file_actions_addchdir_np(void* actions, byte* path);

    [LibraryImport(Libraries.Libc)]
    private static partial int posix_spawnattr_init(void* attr);

    [LibraryImport(Libraries.Libc)]
    private static partial int posix_spawnattr_destroy(void* attr);

    [LibraryImport(Libraries.Libc)]
    private static partial int posix_spawnattr_setflags(void* attr, short flags);

    [LibraryImport(Libraries.Libc)]
    private static partial int posix_spawnattr_setsigmask(void* attr, void* sigset);

    [LibraryImport(Libraries.Libc)]
    private static partial int posix_spawnattr_setsigdefault(void* attr, void* sigset);

    [LibraryImport(Libraries.Libc)]
    private static partial int sigemptyset(void* set);

    [LibraryImport(Libraries.Libc)]
    private static partial int sigaddset(void* set, int signal);

    [LibraryImport(Libraries.Libc, SetLastError = true)]
    private static partial nint syscall(nint number, nint a, nint b);

    [LibraryImport(Libraries.Libc, SetLastError = true)]
    internal static partial int waitpid(int pid, int* status, int options);
}
