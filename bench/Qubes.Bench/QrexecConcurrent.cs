using System;
using System.Diagnostics;
using System.Linq;
using System.Text;
using System.Threading.Tasks;
using Qubes.Front;

namespace Qubes.Bench;

/// <summary>
/// qrexec-concurrent: many VM→VM calls at once, on the same loopback system as qrexec-call. Each
/// call is a native qrexec-client-vm in <c>work</c> calling <c>bench.Echo</c> (<c>exec cat</c>) in
/// <c>personal</c> with its own payload on stdin; the call succeeds when it exits 0 with exactly
/// that payload on stdout. All clients are started before any is waited for; then one more call
/// runs alone, to show that nothing the flood held is still held.
/// </summary>
internal static partial class QrexecHarness
{
    public static int Concurrent(int calls, TimeSpan timeout)
    {
        using Setup setup = Setup.Start();
        QrexecSystem system = setup.Qrexec;
        system.AddService("personal", "bench.Echo", "#!/bin/sh\nexec cat\n");
        ProcessStartInfo call = system.ClientVm("work", "personal", "bench.Echo");
        call.RedirectStandardInput = true;
        call.RedirectStandardOutput = true;
        call.RedirectStandardError = true;
        Console.WriteLine($"qrexec-concurrent: {calls} concurrent VM->VM calls of bench.Echo ('exec cat') from work to personal, each a native qrexec-client-vm echoing its own payload; then one more call");
        for (int i = 0; i < 5; i++)
        {
            CallResult warm = EchoCall(call, "warm-up " + i, timeout).GetAwaiter().GetResult();
            if (!warm.Ok)
            {
                Console.WriteLine($"warm-up call failed: {warm.Failure}");
                Console.WriteLine($"concurrent ok: 0/{calls}");
                return 1;
            }
        }

        long t0 = Stopwatch.GetTimestamp();
        Task<CallResult>[] flood = new Task<CallResult>[calls];
        for (int i = 0; i < calls; i++)
        {
            flood[i] = EchoCall(call, Payload(i), timeout);
        }
        CallResult[] results = Task.WhenAll(flood).GetAwaiter().GetResult();
        double wall = Stopwatch.GetElapsedTime(t0).TotalSeconds;
        CallResult after = EchoCall(call, "after the flood", timeout).GetAwaiter().GetResult();

        int ok = results.Count(r => r.Ok);
        double[] ms = [.. results.Select(r => r.Milliseconds)];
        Console.WriteLine($"successes: {ok}/{calls}");
        Console.WriteLine(Invariant($"wall time: {wall:F2} s ({calls / wall:F0} calls/s)"));
        Console.WriteLine(Invariant($"call time: p50 {Percentile(ms, 50):F1} ms, p99 {Percentile(ms, 99):F1} ms (min {ms.Min():F1}, max {ms.Max():F1})"));
        foreach (IGrouping<string, CallResult> failure in results.Where(r => !r.Ok).GroupBy(r => r.Failure!).Take(5))
        {
            Console.WriteLine($"  {failure.Count()} failed: {failure.Key}");
        }
        Console.WriteLine(after.Ok
            ? Invariant($"call right after the flood: ok in {after.Milliseconds:F1} ms")
            : Invariant($"call right after the flood: failed after {after.Milliseconds:F1} ms: {after.Failure}"));
        Console.WriteLine($"concurrent ok: {ok}/{calls}");
        return ok == calls && after.Ok ? 0 : 1;
    }

    /// <summary>A payload no other call of the flood has: its number, and bytes that depend on it.</summary>
    private static string Payload(int call)
    {
        StringBuilder text = new();
        text.Append(Invariant($"call {call}:"));
        uint x = (uint)call * 2654435761u + 1;
        for (int i = 0; i < 64; i++)
        {
            x = x * 1103515245u + 12345u;
            text.Append((char)('a' + (x >> 16) % 26));
        }
        return text.Append('\n').ToString();
    }

    private readonly record struct CallResult(bool Ok, double Milliseconds, string? Failure);

    /// <summary>One call: the payload to the client's stdin, its stdout compared with it.</summary>
    private static async Task<CallResult> EchoCall(ProcessStartInfo psi, string payload, TimeSpan timeout)
    {
        long t0 = Stopwatch.GetTimestamp();
        Process p;
        try
        {
            p = Process.Start(psi)!;
        }
        catch (System.ComponentModel.Win32Exception e)
        {
            return new CallResult(false, Stopwatch.GetElapsedTime(t0).TotalMilliseconds, "cannot start the client: " + e.Message);
        }
        using (p)
        {
            Task<string> output = p.StandardOutput.ReadToEndAsync();
            Task<string> error = p.StandardError.ReadToEndAsync();
            try
            {
                await p.StandardInput.WriteAsync(payload).ConfigureAwait(false);
                p.StandardInput.Close();
            }
            catch (System.IO.IOException)
            {
                // the client ended without reading: its exit status and stderr say why
            }
            Task exited = Task.WhenAll(p.WaitForExitAsync(), output, error);
            if (await Task.WhenAny(exited, Task.Delay(timeout)).ConfigureAwait(false) != exited)
            {
                p.Kill();
                return new CallResult(false, Stopwatch.GetElapsedTime(t0).TotalMilliseconds, Invariant($"no answer in {timeout.TotalSeconds:F0} s"));
            }
            double ms = Stopwatch.GetElapsedTime(t0).TotalMilliseconds;
            string stderr = error.Result.Trim();
            if (p.ExitCode != 0)
            {
                return new CallResult(false, ms, Invariant($"exit {p.ExitCode}: '{(stderr.Length == 0 ? "(nothing on stderr)" : stderr)}'"));
            }
            return output.Result == payload
                ? new CallResult(true, ms, null)
                : new CallResult(false, ms, Invariant($"wrong echo ({output.Result.Length} bytes instead of {payload.Length})"));
        }
    }
}
