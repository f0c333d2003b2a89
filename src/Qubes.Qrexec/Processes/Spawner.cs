using System;
using System.Collections.Generic;
using System.Runtime.InteropServices;
using System.Text;
using Qubes.Interop.Linux;

namespace Qubes.Qrexec.Processes;

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

    public int Pid { get; }

    /// <summary>Readable once the process has exited.</summary>
    public SafeFd PidFd { get; }

    /// <summary>The wait status once collected: exit code, or 128 + signal.</summary>
    public int? ExitCode { get; private set; }

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
            ExitCode = QrexecProtocol.ExitProblem; // ECHILD: someone else reaped it
            return true;
        }
        int signal = status & 0x7f;
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
    private const int Sigpipe = 13;
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
        try
        {
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
            Check(posix_spawnattr_init(attr));
            attrReady = true;
            Check(sigemptyset(sigset));
            Check(posix_spawnattr_setsigmask(attr, sigset));
            Check(sigaddset(sigset, Sigpipe));
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

    [LibraryImport("libc")]
    private static partial int posix_spawn(int* pid, byte* path, void* fileActions, void* attr, IntPtr* argv, IntPtr* envp);

    [LibraryImport("libc")]
    private static partial int posix_spawn_file_actions_init(void* actions);

    [LibraryImport("libc")]
    private static partial int posix_spawn_file_actions_destroy(void* actions);

    [LibraryImport("libc")]
    private static partial int posix_spawn_file_actions_adddup2(void* actions, int fd, int newFd);

    [LibraryImport("libc")]
    private static partial int posix_spawnattr_init(void* attr);

    [LibraryImport("libc")]
    private static partial int posix_spawnattr_destroy(void* attr);

    [LibraryImport("libc")]
    private static partial int posix_spawnattr_setflags(void* attr, short flags);

    [LibraryImport("libc")]
    private static partial int posix_spawnattr_setsigmask(void* attr, void* sigset);

    [LibraryImport("libc")]
    private static partial int posix_spawnattr_setsigdefault(void* attr, void* sigset);

    [LibraryImport("libc")]
    private static partial int sigemptyset(void* set);

    [LibraryImport("libc")]
    private static partial int sigaddset(void* set, int signal);

    [LibraryImport("libc", SetLastError = true)]
    private static partial nint syscall(nint number, nint a, nint b);

    [LibraryImport("libc", SetLastError = true)]
    internal static partial int waitpid(int pid, int* status, int options);
}
