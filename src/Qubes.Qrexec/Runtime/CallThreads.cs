using System;
using System.Collections.Generic;
using System.Threading;

namespace Qubes.Qrexec.Runtime;

/// <summary>
/// Threads for the blocking work of one call each (a call's data phase, a policy request). Starting
/// a thread costs a few hundred microseconds here, a large part of a short call, so a thread that
/// finishes its work waits for the next one for <see cref="IdleTimeout"/> before it ends. Unlike
/// the shared thread pool, work never queues behind other work: with no idle thread, a new one starts.
/// </summary>
public sealed class CallThreads
{
    /// <summary>How long a thread without work waits for more before it ends.</summary>
    public static readonly TimeSpan IdleTimeout = TimeSpan.FromSeconds(30);

    private readonly string _name;
    private readonly object _lock = new();
    private readonly List<Worker> _idle = []; // most recently idle last

    public CallThreads(string name) => _name = name;

    /// <summary>Threads waiting for work (for tests).</summary>
    public int IdleCount
    {
        get
        {
            lock (_lock)
            {
                return _idle.Count;
            }
        }
    }

    /// <summary>Runs <paramref name="work"/> on an idle thread, or on a new one. An exception it lets escape ends the process, as on a plain thread.</summary>
    public void Run(Action work)
    {
        ArgumentNullException.ThrowIfNull(work);
        lock (_lock)
        {
            if (_idle.Count > 0)
            {
                Worker idle = _idle[^1];
                _idle.RemoveAt(_idle.Count - 1);
                idle.Work = work;
                idle.Wake();
                return;
            }
        }
        Worker worker = new(this) { Work = work };
        new Thread(worker.Loop) { IsBackground = true, Name = _name }.Start();
    }

    private sealed class Worker(CallThreads owner)
    {
        private readonly SemaphoreSlim _signal = new(0);

        public Action? Work { get; set; }

        public void Wake() => _signal.Release();

        public void Loop()
        {
            while (true)
            {
                Action work = Work!;
                Work = null;
                work();
                lock (owner._lock)
                {
                    owner._idle.Add(this);
                }
                if (!_signal.Wait(IdleTimeout))
                {
                    lock (owner._lock)
                    {
                        // woken between the timeout and the lock: the work is ours after all
                        if (Work == null)
                        {
                            owner._idle.Remove(this);
                            return;
                        }
                    }
                    _signal.Wait();
                }
            }
        }
    }
}
