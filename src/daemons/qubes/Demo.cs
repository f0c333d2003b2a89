using System;
using System.Diagnostics;
using System.IO;
using System.Security.Cryptography;
using System.Threading.Tasks;
using Qubes.Interop.Linux;
using Qubes.Platform.Loopback;

namespace Qubes.Front;

/// <summary>
/// The demonstration of the system on the loopback hypervisor, printing each step: first the
/// transport (hypervisor up, two domains, a vchan between them, data both ways checked end to end,
/// one domain killed and the other noticing), then the seed's scenarios on a whole system
/// (<see cref="Scenarios"/>).
/// </summary>
internal static class Demo
{
    private const int Port = 5000;
    private const long StreamBytes = 64L << 20;

    private static int s_step;

    public static int Run()
    {
        string dir = Path.Combine(Path.GetTempPath(), $"qubes-demo-{Environment.ProcessId}");
        Process? broker = null;
        Process? work = null, personal = null;
        try
        {
            Step($"starting the loopback hypervisor (qubes-lohv) in {dir}");
            ProcessStartInfo brokerStart = Tools.StartInfo("qubes-lohv", "--dir", dir);
            brokerStart.RedirectStandardOutput = true;
            broker = Process.Start(brokerStart)!;
            string? ready = broker.StandardOutput.ReadLine();
            Say(ready ?? "(no answer)");
            if (ready == null)
            {
                return Fail("the hypervisor did not start");
            }

            using LoopbackPlatform dom0 = LoopbackPlatform.ConnectDom0(dir);
            Step("dom0 connected; creating the qubes 'work' and 'personal'");
            (int workId, SafeFd workConnection) = dom0.CreateDomain("work");
            (int personalId, SafeFd personalConnection) = dom0.CreateDomain("personal");
            Say($"work is domain {workId}, personal is domain {personalId}");

            Step($"work serves a vchan for personal on port {Port}; personal connects");
            work = StartRelay(workConnection, "listen", personalId);
            personal = StartRelay(personalConnection, "connect", workId);
            Say("work:     " + work.StandardError.ReadLine());
            Say("personal: " + personal.StandardError.ReadLine());

            Step($"streaming {StreamBytes >> 20} MiB each way at once, SHA-256 taken at both ends");
            var clock = Stopwatch.StartNew();
            Task<byte[]> sentToPersonal = Task.Run(() => Feed(work.StandardInput.BaseStream, seed: 1));
            Task<byte[]> sentToWork = Task.Run(() => Feed(personal.StandardInput.BaseStream, seed: 2));
            Task<byte[]> receivedByPersonal = Task.Run(() => Drain(personal.StandardOutput.BaseStream));
            Task<byte[]> receivedByWork = Task.Run(() => Drain(work.StandardOutput.BaseStream));
            Task.WaitAll(sentToPersonal, sentToWork, receivedByPersonal, receivedByWork);
            double seconds = clock.Elapsed.TotalSeconds;
            bool okA = Check("work -> personal", sentToPersonal.Result, receivedByPersonal.Result);
            bool okB = Check("personal -> work", sentToWork.Result, receivedByWork.Result);
            Say($"{2 * StreamBytes / seconds / 1e6:F0} MB/s end to end: each byte crosses two pipes and two relay processes besides the vchan (the vchan alone: bench/Qubes.Bench stream)");
            if (!okA || !okB)
            {
                return Fail("data corrupted in transit");
            }

            Step("killing qube 'work' (SIGKILL: no orderly close)");
            using var release = new ReleaseWatch(dom0);
            clock.Restart();
            work.Kill();
            string? notice = personal.StandardError.ReadLine();
            bool exited = personal.WaitForExit(10_000);
            double noticeMs = clock.Elapsed.TotalMilliseconds;
            Say("personal: " + (notice ?? "(nothing)"));
            if (!exited || notice == null || !notice.Contains("closed the channel", StringComparison.Ordinal))
            {
                return Fail("personal did not notice its peer's death");
            }
            Say($"personal noticed within {noticeMs:F1} ms and exited with status {personal.ExitCode}");
            bool released = release.Wait(TimeSpan.FromSeconds(5));
            Say(released ? "dom0 saw @releaseDomain" : "dom0 did not see @releaseDomain");
            bool alive = dom0.Domains.IsAlive(workId);
            Say($"domain {workId} alive: {alive}");
            if (!released || alive)
            {
                return Fail("the hypervisor did not report the domain's death");
            }

            int scenarios = Scenarios.Run(Step, Say);
            if (scenarios != 0)
            {
                return scenarios;
            }
            Step("demo complete");
            return 0;
        }
        finally
        {
            foreach (Process? p in new[] { work, personal })
            {
                if (p is { HasExited: false })
                {
                    p.Kill();
                }
            }
            if (broker is { HasExited: false })
            {
                broker.Kill();
                broker.WaitForExit();
            }
            try
            {
                Directory.Delete(dir, recursive: true);
            }
            catch (IOException)
            {
            }
        }
    }

    private static Process StartRelay(SafeFd connection, string mode, int otherDomain)
    {
        ProcessStartInfo psi = Tools.StartInfo("qvchan", mode, otherDomain.ToString(System.Globalization.CultureInfo.InvariantCulture), Port.ToString(System.Globalization.CultureInfo.InvariantCulture));
        psi.RedirectStandardInput = true;
        psi.RedirectStandardOutput = true;
        psi.RedirectStandardError = true;
        using (connection)
        {
            return LoopbackPlatform.StartInDomain(connection, psi);
        }
    }

    private static byte[] Feed(Stream input, int seed)
    {
        // one random megabyte, made different per chunk by its index (a seeded Random is slow at NextBytes)
        byte[] chunk = new byte[1 << 20];
        new Random(seed).NextBytes(chunk);
        using var hash = IncrementalHash.CreateHash(HashAlgorithmName.SHA256);
        for (long sent = 0; sent < StreamBytes; sent += chunk.Length)
        {
            BitConverter.TryWriteBytes(chunk, sent);
            hash.AppendData(chunk);
            input.Write(chunk);
        }
        input.Flush();
        return hash.GetHashAndReset();
    }

    private static byte[] Drain(Stream output)
    {
        byte[] buffer = new byte[1 << 16];
        using var hash = IncrementalHash.CreateHash(HashAlgorithmName.SHA256);
        long received = 0;
        while (received < StreamBytes)
        {
            int n = output.Read(buffer, 0, (int)Math.Min(buffer.Length, StreamBytes - received));
            if (n <= 0)
            {
                break;
            }
            hash.AppendData(buffer, 0, n);
            received += n;
        }
        if (received != StreamBytes)
        {
            throw new IOException($"stream ended after {received} of {StreamBytes} bytes");
        }
        return hash.GetHashAndReset();
    }

    private static bool Check(string direction, byte[] sent, byte[] received)
    {
        bool ok = sent.AsSpan().SequenceEqual(received);
        Say($"{direction}: sent sha256 {Convert.ToHexStringLower(sent)[..16]}..., received {Convert.ToHexStringLower(received)[..16]}... {(ok ? "match" : "MISMATCH")}");
        return ok;
    }

    internal static void Step(string text) => Console.WriteLine($"[{++s_step}] {text}");

    internal static void Say(string text) => Console.WriteLine($"    {text}");

    private static int Fail(string reason)
    {
        Console.WriteLine($"demo FAILED: {reason}");
        return 1;
    }

    /// <summary>Watches @releaseDomain on its own store connection (the registration event is skipped).</summary>
    private sealed class ReleaseWatch : IDisposable
    {
        private readonly Qubes.Platform.IStore _store;

        public ReleaseWatch(LoopbackPlatform dom0)
        {
            _store = dom0.OpenStore();
            _store.Watch("@releaseDomain", "demo");
            if (!Wait(TimeSpan.FromSeconds(5)))
            {
                throw new InvalidOperationException("no registration event for the @releaseDomain watch");
            }
        }

        public bool Wait(TimeSpan timeout)
        {
            var clock = Stopwatch.StartNew();
            while (clock.Elapsed < timeout)
            {
                if (_store.TryReadWatchEvent(out string path, out _) && path == "@releaseDomain")
                {
                    return true;
                }
                Fd.PollIn(_store.Fd, 100);
            }
            return false;
        }

        public void Dispose() => _store.Dispose();
    }
}
