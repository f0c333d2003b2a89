using System;
using System.Diagnostics;
using System.IO;
using System.Threading;
using Qubes.Interop.Linux;
using Qubes.Platform.Loopback;
using Xunit;

namespace Qubes.Platform.Tests;

/// <summary>A broker on its own thread in a fresh temp directory, with a dom0 platform connected to it.</summary>
internal sealed class TestBroker : IDisposable
{
    private readonly Thread _thread;
    private Exception? _failure;

    public TestBroker()
    {
        Directory = Path.Combine(Path.GetTempPath(), "qlohv-" + Guid.NewGuid().ToString("N")[..12]);
        Broker = new LoopbackBroker(Directory);
        _thread = new Thread(() =>
        {
            try
            {
                Broker.Run();
            }
            catch (Exception e)
            {
                _failure = e;
            }
        })
        { IsBackground = true, Name = "test-lohv" };
        _thread.Start();
        Dom0 = LoopbackPlatform.ConnectDom0(Directory);
    }

    public string Directory { get; }

    public LoopbackBroker Broker { get; }

    public LoopbackPlatform Dom0 { get; }

    /// <summary>A new domain with an in-process platform on its first connection.</summary>
    public (int Id, LoopbackPlatform Platform) NewDomain(string name)
    {
        (int id, SafeFd connection) = Dom0.CreateDomain(name);
        return (id, LoopbackPlatform.Connect(connection.Release()));
    }

    public void Dispose()
    {
        Dom0.Dispose();
        Broker.Stop();
        Assert.True(_thread.Join(10_000), "broker thread did not stop");
        Broker.Dispose();
        try
        {
            System.IO.Directory.Delete(Directory, recursive: true);
        }
        catch (IOException)
        {
        }
        Assert.Null(_failure);
    }

    /// <summary>Polls <paramref name="condition"/> until it holds or the time is up.</summary>
    public static bool Eventually(Func<bool> condition, int timeoutMs = 5000)
    {
        var clock = Stopwatch.StartNew();
        while (!condition())
        {
            if (clock.ElapsedMilliseconds > timeoutMs)
            {
                return false;
            }
            Thread.Sleep(5);
        }
        return true;
    }

    /// <summary>Waits for a watch event matching <paramref name="match"/>, skipping others.</summary>
    public static bool WaitForEvent(IStore store, Func<string, string, bool> match, int timeoutMs = 5000)
    {
        var clock = Stopwatch.StartNew();
        while (true)
        {
            while (store.TryReadWatchEvent(out string path, out string token))
            {
                if (match(path, token))
                {
                    return true;
                }
            }
            int left = timeoutMs - (int)clock.ElapsedMilliseconds;
            if (left <= 0)
            {
                return false;
            }
            _ = Fd.PollIn(store.Fd, left);
        }
    }

    /// <summary>Drains all pending watch events.</summary>
    public static void DrainEvents(IStore store)
    {
        while (store.TryReadWatchEvent(out _, out _))
        {
        }
    }
}
