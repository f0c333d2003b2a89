using System;
using System.Collections;
using System.Runtime.InteropServices;
using System.Text;
using Qubes.Interop.Linux;

namespace Qubes.Qrexec.Policy;

/// <summary>
/// Starting a program with a chosen argv[0] and one descriptor as both its stdin and stdout, which
/// System.Diagnostics.Process cannot do, and reaping it. posix_spawn rather than fork: forking a
/// .NET process is unsafe (only the calling thread survives in the child).
/// </summary>
internal static unsafe partial class ChildProcess
{
    /// <summary>
    /// Starts <paramref name="path"/> with <paramref name="argv"/> (argv[0] included) and the current
    /// environment; <paramref name="stdio"/> becomes the child's fd 0 and fd 1, stderr is inherited.
    /// Signal dispositions and the signal mask are reset to the defaults (the runtime ignores
    /// SIGPIPE, which an exec would otherwise pass on). Returns the pid, or -errno.
    /// </summary>
    internal static int Spawn(string path, ReadOnlySpan<string> argv, int stdio)
    {
        // dup2(fd, 0) with fd already 0 would leave close-on-exec set, and a descriptor 0 or 1 would
        // be overwritten by the first dup2 before the second one: move it out of the way first.
        SafeFd? moved = null;
        if (stdio <= 2)
        {
            int fd = Libc.fcntl(stdio, Libc.F_DUPFD_CLOEXEC, 3);
            if (fd < 0)
            {
                return -(int)LastError.Get();
            }
            moved = new SafeFd(fd);
            stdio = fd;
        }

        IDictionary variables = Environment.GetEnvironmentVariables();
        var env = new string[variables.Count];
        int envCount = 0;
        foreach (DictionaryEntry entry in variables)
        {
            env[envCount++] = $"{entry.Key}={entry.Value}";
        }

        byte* pathZ = null;
        byte** argvZ = null;
        byte** envZ = null;
        // glibc's posix_spawn_file_actions_t is 80 bytes and posix_spawnattr_t 336 on x86_64 and
        // aarch64; both are treated as opaque and given room to spare.
        long* actions = stackalloc long[OpaqueLongs];
        long* attr = stackalloc long[OpaqueLongs];
        long* defaults = stackalloc long[SigSetLongs];
        long* mask = stackalloc long[SigSetLongs];
        bool actionsReady = false;
        bool attrReady = false;
        try
        {
            pathZ = Utf8Z(path);
            argvZ = Utf8ZArray(argv);
            envZ = Utf8ZArray(env.AsSpan(0, envCount));

            int r = Native.posix_spawn_file_actions_init(actions);
            if (r != 0)
            {
                return -r;
            }
            actionsReady = true;
            r = Native.posix_spawn_file_actions_adddup2(actions, stdio, 0);
            if (r == 0)
            {
                r = Native.posix_spawn_file_actions_adddup2(actions, stdio, 1);
            }
            if (r != 0)
            {
                return -r;
            }

            r = Native.posix_spawnattr_init(attr);
            if (r != 0)
            {
                return -r;
            }
            attrReady = true;
            Native.sigemptyset(mask);
            Native.sigemptyset(defaults);
            for (int sig = 1; sig < FirstRealtimeSignal; sig++)
            {
                if (sig != SigKill && sig != SigStop)
                {
                    Native.sigaddset(defaults, sig);
                }
            }
            r = Native.posix_spawnattr_setsigmask(attr, mask);
            if (r == 0)
            {
                r = Native.posix_spawnattr_setsigdefault(attr, defaults);
            }
            if (r == 0)
            {
                r = Native.posix_spawnattr_setflags(attr, SpawnSetSigDef | SpawnSetSigMask);
            }
            if (r != 0)
            {
                return -r;
            }

            int pid;
            r = Native.posix_spawn(&pid, pathZ, actions, attr, argvZ, envZ);
            return r == 0 ? pid : -r;
        }
        finally
        {
            if (attrReady)
            {
                Native.posix_spawnattr_destroy(attr);
            }
            if (actionsReady)
            {
                Native.posix_spawn_file_actions_destroy(actions);
            }
            NativeMemory.Free(pathZ);
            FreeArray(argvZ);
            FreeArray(envZ);
            moved?.Dispose();
        }
    }

    /// <summary>
    /// Reaps <paramref name="pid"/> if it has exited. Returns true with the raw wait status when it
    /// has (or with -1 when it cannot be waited for any more), false while it is still running.
    /// </summary>
    internal static bool TryReap(int pid, out int status)
    {
        while (true)
        {
            int s;
            int r = Native.waitpid(pid, &s, WNoHang);
            if (r == pid)
            {
                status = s;
                return true;
            }
            if (r == 0)
            {
                status = 0;
                return false;
            }
            if (LastError.Get() != Errno.EINTR)
            {
                status = -1;
                return true;
            }
        }
    }

    /// <summary>Waits for <paramref name="pid"/> to exit; returns the raw wait status, or -1.</summary>
    internal static int Reap(int pid)
    {
        while (true)
        {
            int s;
            int r = Native.waitpid(pid, &s, 0);
            if (r == pid)
            {
                return s;
            }
            if (r < 0 && LastError.Get() != Errno.EINTR)
            {
                return -1;
            }
        }
    }

    /// <summary>Waits until <paramref name="pid"/> exits or the deadline (Environment.TickCount64, or -1 for none) passes; then kills it and reaps it. Returns the raw wait status (-1 if not waitable) and whether it was killed.</summary>
    internal static int ReapBy(int pid, long deadline, out bool killed)
    {
        killed = false;
        int pauseMs = 1;
        while (true)
        {
            if (TryReap(pid, out int status))
            {
                return status;
            }
            long now = Environment.TickCount64;
            if (deadline >= 0 && now >= deadline)
            {
                Libc.kill(pid, Libc.SIGKILL);
                killed = true;
                return Reap(pid);
            }
            int pause = deadline >= 0 ? (int)Math.Min(pauseMs, deadline - now) : pauseMs;
            System.Threading.Thread.Sleep(pause);
            pauseMs = Math.Min(pauseMs * 2, 50);
        }
    }

    /// <summary>True when the raw wait status says the process called exit; <paramref name="code"/> is its status.</summary>
    internal static bool Exited(int status, out int code)
    {
        code = (status >> 8) & 0xff;
        return status >= 0 && (status & 0x7f) == 0;
    }

    /// <summary>The signal that ended the process, or 0.</summary>
    internal static int TermSignal(int status) =>
        status >= 0 && (status & 0x7f) != 0 && (status & 0x7f) != 0x7f ? status & 0x7f : 0;

    private const int OpaqueLongs = 128;
    private const int SigSetLongs = 16;
    private const int FirstRealtimeSignal = 32;
    private const int SigKill = 9;
    private const int SigStop = 19;
    private const int WNoHang = 1;
    private const short SpawnSetSigDef = 0x04;
    private const short SpawnSetSigMask = 0x08;

    private static byte* Utf8Z(string s)
    {
        int n = Encoding.UTF8.GetByteCount(s);
        byte* p = (byte*)NativeMemory.Alloc((nuint)n + 1);
        Encoding.UTF8.GetBytes(s, new Span<byte>(p, n));
        p[n] = 0;
        return p;
    }

    private static byte** Utf8ZArray(ReadOnlySpan<string> strings)
    {
        byte** array = (byte**)NativeMemory.AllocZeroed((nuint)(strings.Length + 1), (nuint)sizeof(byte*));
        for (int i = 0; i < strings.Length; i++)
        {
            array[i] = Utf8Z(strings[i]);
        }
        return array;
    }

    private static void FreeArray(byte** array)
    {
        if (array is null)
        {
            return;
        }
        for (byte** p = array; *p is not null; p++)
        {
            NativeMemory.Free(*p);
        }
        NativeMemory.Free(array);
    }

    /// <summary>glibc's process-creation calls. posix_spawn* return an error number instead of setting errno.</summary>
    private static partial class Native
    {
        private const string LibcName = "libc.so.6";

        [LibraryImport(LibcName)]
        internal static partial int posix_spawn(int* pid, byte* path, void* fileActions, void* attr, byte** argv, byte** envp);

        [LibraryImport(LibcName)]
        internal static partial int posix_spawn_file_actions_init(void* fileActions);

        [LibraryImport(LibcName)]
        internal static partial int posix_spawn_file_actions_destroy(void* fileActions);

        [LibraryImport(LibcName)]
        internal static partial int posix_spawn_file_actions_adddup2(void* fileActions, int fd, int newFd);

        [LibraryImport(LibcName)]
        internal static partial int posix_spawnattr_init(void* attr);

        [LibraryImport(LibcName)]
        internal static partial int posix_spawnattr_destroy(void* attr);

        [LibraryImport(LibcName)]
        internal static partial int posix_spawnattr_setflags(void* attr, short flags);

        [LibraryImport(LibcName)]
        internal static partial int posix_spawnattr_setsigmask(void* attr, void* sigmask);

        [LibraryImport(LibcName)]
        internal static partial int posix_spawnattr_setsigdefault(void* attr, void* sigdefault);

        [LibraryImport(LibcName)]
        internal static partial int sigemptyset(void* set);

        [LibraryImport(LibcName)]
        internal static partial int sigaddset(void* set, int signal);

        [LibraryImport(LibcName, SetLastError = true)]
        internal static partial int waitpid(int pid, int* status, int options);
    }
}
