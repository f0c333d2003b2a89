using System;
using System.Diagnostics;
using System.IO;
using System.Linq;
using System.Net.Sockets;
using System.Text;
using Xunit;
using Qubes.Tests;

namespace Qubes.Core.Tests;

/// <summary>The qubesd daemon: the Admin API on its socket, saving before it acknowledges.</summary>
public sealed class QubesdTests : IDisposable
{
    private readonly string _dir = Directory.CreateTempSubdirectory("qd-").FullName;

    public void Dispose()
    {
        Directory.Delete(_dir, recursive: true);
    }

    private string Store => Path.Combine(_dir, "qubes.xml");

    private string Socket => Path.Combine(_dir, "qubesd.sock");

    private static string Executable()
    {
        string path = TestRepository.File("artifacts/bin/qubesd/release/qubesd");
        Assert.True(File.Exists(path), $"{path} is missing: build QubesRuntime.sln first");
        return path;
    }

    private Process Start()
    {
        File.Delete(Socket);
        ProcessStartInfo psi = new(Executable(), ["--store", Store, "--socket", Socket, "--internal-socket", Path.Combine(_dir, "internal.sock"), "--create"])
        {
            RedirectStandardError = true,
        };
        Process process = Process.Start(psi)!;
        process.ErrorDataReceived += (_, _) => { };
        process.BeginErrorReadLine();
        // up when it answers (the socket file appears at bind, a moment before listen)
        Stopwatch clock = Stopwatch.StartNew();
        while (!File.Exists(Socket) || Call("admin.vm.List+ dom0 name dom0") == null)
        {
            Assert.False(process.HasExited, "qubesd exited");
            Assert.True(clock.Elapsed < TimeSpan.FromSeconds(30), "qubesd did not come up");
            System.Threading.Thread.Sleep(5);
        }
        return process;
    }

    /// <summary>One call; null when the connection broke before a whole reply came.</summary>
    private string? Call(string header, string payload = "")
    {
        try
        {
            using Socket socket = new(AddressFamily.Unix, SocketType.Stream, ProtocolType.Unspecified);
            socket.Connect(new UnixDomainSocketEndPoint(Socket));
            socket.Send(Encoding.UTF8.GetBytes(header + "\0" + payload));
            socket.Shutdown(SocketShutdown.Send);
            using MemoryStream reply = new();
            byte[] buffer = new byte[4096];
            int n;
            while ((n = socket.Receive(buffer)) > 0)
            {
                reply.Write(buffer, 0, n);
            }
            return reply.Length == 0 ? null : Encoding.UTF8.GetString(reply.ToArray());
        }
        catch (SocketException)
        {
            return null;
        }
    }

    private static void Stop(Process process)
    {
        if (!process.HasExited)
        {
            process.Kill();
        }
        process.WaitForExit();
        process.Dispose();
    }

    [Fact]
    public void A_second_qubesd_on_the_same_store_refuses_to_run()
    {
        Process first = Start();
        try
        {
            ProcessStartInfo psi = new(Executable(), ["--store", Store, "--socket", Socket + "2", "--internal-socket", Path.Combine(_dir, "internal2.sock")])
            {
                RedirectStandardError = true,
            };
            using Process second = Process.Start(psi)!;
            string error = second.StandardError.ReadToEnd();
            Assert.True(second.WaitForExit(30_000));
            Assert.Equal(1, second.ExitCode);
            Assert.Contains("is in use by another qubesd", error, StringComparison.Ordinal);
            Assert.False(File.Exists(Socket + "2"));
        }
        finally
        {
            Stop(first);
        }
    }

    [Fact]
    public void Serves_the_admin_api_and_keeps_what_it_acknowledged_across_a_restart()
    {
        Process qubesd = Start();
        try
        {
            Assert.Equal("0\0dom0 class=AdminVM state=Running uuid=00000000-0000-0000-0000-000000000000\n", Call("admin.vm.List+ dom0 name dom0"));
            Assert.Equal("0\0", Call("admin.vm.Create.StandaloneVM+ dom0 name dom0", "name=vault label=black"));
            Assert.Equal("2\0QubesVMAlreadyExistsError\0\0Qube already exists: vault\0", Call("admin.vm.Create.StandaloneVM+ dom0 name dom0", "name=vault label=black"));
            Assert.Null(Call("admin.vm.List+ dom0 bogus dom0"));
        }
        finally
        {
            Stop(qubesd);
        }
        qubesd = Start();
        try
        {
            Assert.StartsWith("0\0default=False type=label black", Call("admin.vm.property.Get+label dom0 name vault"), StringComparison.Ordinal);
            Assert.Equal("0\0created-by-dom0\n", Call("admin.vm.tag.List+ dom0 name vault"));
        }
        finally
        {
            Stop(qubesd);
        }
    }

    private Socket Subscribe() => AdminEvents.Subscribe(Socket);

    /// <summary>The sockets the process holds open: its listeners and the connections it has not closed.</summary>
    private static int Sockets(Process process)
    {
        int count = 0;
        foreach (string fd in Directory.EnumerateFileSystemEntries($"/proc/{process.Id}/fd"))
        {
            try
            {
                if (new FileInfo(fd).LinkTarget?.StartsWith("socket:[", StringComparison.Ordinal) == true)
                {
                    count++;
                }
            }
            catch (IOException)
            {
                // closed while listed
            }
        }
        return count;
    }

    [Fact]
    public void A_subscriber_that_shut_down_its_write_side_gets_the_events_long_after_it_subscribed()
    {
        Process qubesd = Start();
        try
        {
            using Socket events = Subscribe();
            // its socket reads at end of file all this time; it stays subscribed nonetheless
            System.Threading.Thread.Sleep(1500);
            Assert.Equal("0\0", Call("admin.vm.feature.Set+mark dom0 name dom0", "1"));
            Assert.Equal("1\0dom0\0domain-feature-set:mark\0feature\0mark\0value\01\0\0", AdminEvents.Receive(events, "\0\0"));
            System.Threading.Thread.Sleep(1500);
            Assert.Equal("0\0", Call("admin.vm.feature.Set+mark dom0 name dom0", "2"));
            Assert.Equal("1\0dom0\0domain-feature-set:mark\0feature\0mark\0value\02\0oldvalue\01\0\0", AdminEvents.Receive(events, "\0\0"));
        }
        finally
        {
            Stop(qubesd);
        }
    }

    [Fact]
    public void A_subscriber_that_closes_its_socket_is_dropped_though_no_event_comes()
    {
        Process qubesd = Start();
        try
        {
            int idle = Sockets(qubesd);
            Socket events = Subscribe();
            System.Threading.Thread.Sleep(1000);
            Assert.Equal(idle + 1, Sockets(qubesd)); // the subscription's connection, kept
            events.Close();
            Stopwatch clock = Stopwatch.StartNew();
            Assert.True(LoopbackSystem.Eventually(() => Sockets(qubesd) == idle, 5000), $"qubesd still holds {Sockets(qubesd) - idle} connection(s) of a client gone {clock.ElapsedMilliseconds} ms ago");
            Assert.True(clock.ElapsedMilliseconds < 2000, $"dropped only after {clock.ElapsedMilliseconds} ms");
            // one that goes while events come is dropped too, and the others keep theirs
            using Socket kept = Subscribe();
            events = Subscribe();
            Assert.Equal(idle + 2, Sockets(qubesd));
            events.Dispose();
            Assert.Equal("0\0", Call("admin.vm.feature.Set+mark dom0 name dom0", "1"));
            Assert.True(LoopbackSystem.Eventually(() => Sockets(qubesd) == idle + 1, 5000));
            Assert.Equal("1\0dom0\0domain-feature-set:mark\0feature\0mark\0value\01\0\0", AdminEvents.Receive(kept, "\0\0"));
        }
        finally
        {
            Stop(qubesd);
        }
    }

    [Fact]
    public void No_acknowledged_write_is_lost_when_qubesd_is_killed_at_random_points()
    {
        Process qubesd = Start();
        Assert.Equal("0\0", Call("admin.vm.Create.StandaloneVM+ dom0 name dom0", "name=counter label=red"));
        Random random = new(7);
        int acknowledged = 0, kills = 0;
        try
        {
            for (int write = 1; write <= 1000; write++)
            {
                // a killer that strikes at a random moment of some writes
                System.Threading.Tasks.Task? killer = null;
                if (random.Next(40) == 0)
                {
                    Process victim = qubesd;
                    int delayUs = random.Next(0, 3000);
                    killer = System.Threading.Tasks.Task.Run(() =>
                    {
                        Stopwatch wait = Stopwatch.StartNew();
                        while (wait.Elapsed.TotalMicroseconds < delayUs)
                        {
                        }
                        victim.Kill();
                    });
                }
                string? reply = Call("admin.vm.feature.Set+n dom0 name counter", write.ToString(System.Globalization.CultureInfo.InvariantCulture));
                killer?.Wait();
                if (reply == "0\0")
                {
                    acknowledged = write;
                }
                if (killer != null)
                {
                    kills++;
                    Stop(qubesd);
                    qubesd = Start();
                    string? value = Call("admin.vm.feature.Get+n dom0 name counter");
                    Assert.NotNull(value);
                    int stored = int.Parse(value[2..], System.Globalization.CultureInfo.InvariantCulture);
                    // what was acknowledged is there; at most the one unacknowledged write beyond it
                    Assert.InRange(stored, acknowledged, write);
                    acknowledged = stored;
                }
            }
            Assert.True(kills >= 10, $"only {kills} kills");
            Assert.True(acknowledged >= 999);
            Assert.Equal("0\0" + acknowledged.ToString(System.Globalization.CultureInfo.InvariantCulture), Call("admin.vm.feature.Get+n dom0 name counter"));
        }
        finally
        {
            Stop(qubesd);
        }
        // a save killed before its rename leaves a temporary file; the next start removes it
        Stop(Start());
        Assert.Equal([Store, Store + ".lock"], Directory.GetFiles(_dir, "qubes.xml*").Order(StringComparer.Ordinal)); // no temporary left, only the store and its lock
    }
}
