using System;
using System.Threading;
using Qubes.Qrexec.Runtime;
using Xunit;

namespace Qubes.Qrexec.Tests.Runtime;

public sealed class CallThreadsTests
{
    [Fact]
    public void A_finished_thread_takes_the_next_work()
    {
        CallThreads threads = new("test call");
        int first = RunAndWait(threads);
        Assert.True(SpinWait.SpinUntil(() => threads.IdleCount == 1, 5000));
        int second = RunAndWait(threads);
        Assert.Equal(first, second);
        Assert.True(SpinWait.SpinUntil(() => threads.IdleCount == 1, 5000));
    }

    [Fact]
    public void Work_never_waits_for_other_work_to_finish()
    {
        CallThreads threads = new("test call");
        using Barrier together = new(3);
        bool[] met = new bool[2];
        for (int i = 0; i < 2; i++)
        {
            int slot = i;
            // each blocks until all three have arrived: only possible if both run at once
            threads.Run(() => met[slot] = together.SignalAndWait(TimeSpan.FromSeconds(10)));
        }
        Assert.True(together.SignalAndWait(TimeSpan.FromSeconds(10)));
        Assert.True(SpinWait.SpinUntil(() => threads.IdleCount == 2, 5000));
        Assert.Equal([true, true], met);
    }

    private static int RunAndWait(CallThreads threads)
    {
        using ManualResetEventSlim done = new();
        int id = 0;
        threads.Run(() =>
        {
            id = Environment.CurrentManagedThreadId;
            done.Set();
        });
        Assert.True(done.Wait(TimeSpan.FromSeconds(10)));
        return id;
    }
}
