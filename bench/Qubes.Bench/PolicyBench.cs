using System;
using System.Collections.Generic;
using System.Diagnostics;
using System.Globalization;
using System.Linq;
using System.Text;
using BenchmarkDotNet.Attributes;
using Qubes.Qrexec.Policy;

namespace Qubes.Bench;

/// <summary>
/// Policy decisions per second: the compiled engine against a straightforward evaluator that
/// reads the rule text on every call, on one generated system (100 qubes) and policy (1,000
/// rules), over the same requests in the same run. Both must reach the same decision for every
/// request, or the benchmark fails.
/// </summary>
internal static class PolicyBench
{
    internal const int QubeCount = 100;
    internal const int RuleCount = 1000;
    private const int RequestCount = 4096;

    internal static int Run(int rounds, double secondsPerRound)
    {
        Workload work = Workload.Generate(seed: 42);
        PolicyEngine engine = work.Engine();
        NaiveEvaluator naive = new(work.PolicyText, work.System);
        Console.WriteLine($"policy: {engine.Rules.Count} rules, {engine.System.Qubes.Count} qubes, {RequestCount} requests cycled");

        int[] tally = new int[3];
        for (int i = 0; i < work.Requests.Length; i++)
        {
            Request q = work.Requests[i];
            PolicyResult r = engine.Evaluate(q.ServiceAndArg, q.Source, q.Target);
            (Resolution resolution, int rule) = naive.Evaluate(q.ServiceAndArg, q.Source, q.Target);
            if (resolution != r.Resolution || rule != r.RuleIndex)
            {
                Console.Error.WriteLine($"disagreement on {q.ServiceAndArg} {q.Source} -> {q.Target}: engine {r.Resolution} by rule {r.RuleIndex}, text evaluator {resolution} by rule {rule}");
                return 1;
            }
            tally[(int)r.Resolution]++;
        }
        Console.WriteLine($"both evaluators agree on all {RequestCount} requests: {tally[1]} allow, {tally[0]} deny, {tally[2]} ask");

        List<double> compiled = [], text = [];
        long allocated = 0, measured = 0;
        for (int round = 0; round < rounds; round++)
        {
            (double rate, long bytes, long decisions) = Measure(work.Requests, secondsPerRound, (in Request q) => engine.Evaluate(q.ServiceAndArg, q.Source, q.Target).IsAllowed);
            if (round > 0 || rounds == 1)
            {
                allocated += bytes;
                measured += decisions;
            }
            compiled.Add(rate);
            (double naiveRate, _, _) = Measure(work.Requests, secondsPerRound / 4, (in Request q) => naive.Evaluate(q.ServiceAndArg, q.Source, q.Target).Resolution == Resolution.Allow);
            text.Add(naiveRate);
            Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
                $"round {round + 1}: compiled {rate / 1e6:F3} M decisions/s ({bytes} B allocated in {decisions} decisions), rule text {naiveRate / 1e6:F4} M decisions/s, ratio {rate / naiveRate:F1}"));
        }
        Stats c = Stats.Of(compiled), t = Stats.Of(text);
        List<double> ratios = [];
        for (int i = 0; i < compiled.Count; i++)
        {
            ratios.Add(compiled[i] / text[i]);
        }
        Console.WriteLine($"compiled engine:       {Scale(c, 1e-6).Format("M decisions/s")}");
        Console.WriteLine($"rule text evaluator:   {Scale(t, 1e-6).Format("M decisions/s", "F4")}");
        Console.WriteLine($"ratio (same rounds):   {Stats.Of(ratios).Format("x", "F1")}");
        Console.WriteLine(string.Create(CultureInfo.InvariantCulture, $"allocated per decision (compiled, rounds after the first): {(double)allocated / measured:F3} B ({allocated} B in {measured} decisions)"));
        Console.WriteLine(string.Create(CultureInfo.InvariantCulture, $"decisions/s: {c.Median:F0}"));
        return 0;
    }

    private static Stats Scale(Stats s, double factor) => new(s.Min * factor, s.Median * factor, s.Max * factor);

    private delegate bool Decide(in Request request);

    /// <summary>Decisions per second over at least <paramref name="seconds"/>, the bytes allocated on this thread meanwhile, and the decisions made.</summary>
    private static (double Rate, long Bytes, long Decisions) Measure(Request[] requests, double seconds, Decide decide)
    {
        long allowed = 0, decisions = 0;
        long before = GC.GetAllocatedBytesForCurrentThread();
        long start = Stopwatch.GetTimestamp();
        do
        {
            foreach (ref readonly Request q in requests.AsSpan())
            {
                allowed += decide(q) ? 1 : 0;
            }
            decisions += requests.Length;
        }
        while (Stopwatch.GetElapsedTime(start).TotalSeconds < seconds);
        double elapsed = Stopwatch.GetElapsedTime(start).TotalSeconds;
        long allocated = GC.GetAllocatedBytesForCurrentThread() - before;
        GC.KeepAlive(allowed);
        return (decisions / elapsed, allocated, decisions);
    }

    internal readonly record struct Request(string ServiceAndArg, string Source, string Target);

    /// <summary>The generated system, policy and requests.</summary>
    internal sealed class Workload
    {
        private static readonly string[] s_tags = ["work", "personal", "secure", "net", "usb", "print", "dev", "media", "bank", "guest"];

        public required SystemInfo System { get; init; }

        public required string PolicyText { get; init; }

        public required Request[] Requests { get; init; }

        public PolicyEngine Engine() => new(PolicyLoader.System.LoadText(PolicyText, "/etc/qubes/policy.d/50-bench.policy"), System);

        public static Workload Generate(int seed)
        {
            Random random = new(seed);
            List<QubeInfo> qubes = [new QubeInfo("dom0", "AdminVM", [], "q001", false, "Running", PolicyToken.AdminUuid, false)];
            List<string> names = [], templates = [];
            for (int i = 1; i < QubeCount; i++)
            {
                string name = string.Create(CultureInfo.InvariantCulture, $"q{i:D3}");
                names.Add(name);
                if (i % 10 == 1)
                {
                    templates.Add(name);
                }
            }
            for (int i = 1; i < QubeCount; i++)
            {
                string name = names[i - 1];
                List<string> tags = [];
                for (int t = random.Next(1, 4); t > 0; t--)
                {
                    string tag = s_tags[random.Next(s_tags.Length)];
                    if (!tags.Contains(tag))
                    {
                        tags.Add(tag);
                    }
                }
                string type = i % 10 == 0 ? "TemplateVM" : "AppVM";
                string? dispvm = random.Next(10) == 0 ? null : templates[random.Next(templates.Count)];
                string uuid = string.Create(CultureInfo.InvariantCulture, $"{i:x8}-0000-4000-8000-{random.Next():x12}");
                qubes.Add(new QubeInfo(name, type, tags, dispvm, i % 10 == 1, random.Next(2) == 0 ? "Running" : "Halted", uuid, false));
            }

            string Qube() => names[random.Next(names.Count)];
            string Tag() => s_tags[random.Next(s_tags.Length)];
            StringBuilder policy = new();
            const int Services = 50;
            for (int r = 0; r < RuleCount; r++)
            {
                bool anyService = r >= RuleCount - 10;
                string service = anyService ? "*" : string.Create(CultureInfo.InvariantCulture, $"bench.Svc{r % Services:D2}");
                string argument = anyService || random.Next(4) != 0 ? "*" : string.Create(CultureInfo.InvariantCulture, $"+arg{random.Next(3)}");
                string source = random.Next(5) switch
                {
                    0 => Qube(),
                    1 => "@tag:" + Tag(),
                    2 => "@type:AppVM",
                    3 => "@anyvm",
                    _ => random.Next(4) == 0 ? "*" : Qube(),
                };
                int pick = random.Next(8);
                string target = pick switch
                {
                    0 => Qube(),
                    1 => "@tag:" + Tag(),
                    2 => "@anyvm",
                    3 => "@dispvm",
                    4 => "@dispvm:" + templates[random.Next(templates.Count)],
                    5 => "@default",
                    6 => "@adminvm",
                    _ => "@dispvm:@tag:" + Tag(),
                };
                int roll = random.Next(20);
                string action = roll < 10 ? "allow" : roll < 17 ? "deny" : "ask";
                policy.Append(service).Append(' ').Append(argument).Append(' ').Append(source).Append(' ').Append(target).Append(' ').Append(action);
                if (action != "deny" && (target == "@default" || random.Next(8) == 0))
                {
                    policy.Append(" target=").Append(random.Next(3) == 0 ? "@dispvm" : Qube());
                }
                if (action == "allow" && random.Next(6) == 0)
                {
                    policy.Append(" autostart=no");
                }
                if (action != "deny" && random.Next(5) == 0)
                {
                    policy.Append(" user=root");
                }
                policy.Append('\n');
            }

            Request[] requests = new Request[RequestCount];
            for (int i = 0; i < requests.Length; i++)
            {
                int s = random.Next(Services + 3);
                string service = s < Services ? string.Create(CultureInfo.InvariantCulture, $"bench.Svc{s:D2}") : "other.Service";
                string arg = random.Next(3) switch
                {
                    0 => "",
                    1 => string.Create(CultureInfo.InvariantCulture, $"+arg{random.Next(3)}"),
                    _ => "+",
                };
                string target = random.Next(6) switch
                {
                    0 => "@default",
                    1 => "@dispvm",
                    2 => "@dispvm:" + templates[random.Next(templates.Count)],
                    3 => "dom0",
                    _ => Qube(),
                };
                requests[i] = new Request(service + arg, Qube(), target);
            }
            return new Workload { System = new SystemInfo(qubes), PolicyText = policy.ToString(), Requests = requests };
        }
    }

    /// <summary>
    /// The comparison: evaluates the policy by reading its text on every call, the way a first
    /// interpreter would: split each line into fields, look each name up in the system
    /// information, compare strings. Same semantics as the engine (spec qrexec-policy §3.1, §7-§9).
    /// </summary>
    internal sealed class NaiveEvaluator(string policy, SystemInfo system)
    {
        private readonly string[] _lines = policy.Split('\n', StringSplitOptions.RemoveEmptyEntries);

        public (Resolution Resolution, int Rule) Evaluate(string serviceAndArg, string source, string target)
        {
            int plus = serviceAndArg.IndexOf('+', StringComparison.Ordinal);
            string service = plus < 0 ? serviceAndArg : serviceAndArg[..plus];
            string argument = plus < 0 ? "+" : serviceAndArg[plus..];
            QubeInfo? src = system.Find(source);
            if (src == null)
            {
                return (Resolution.Deny, -1);
            }
            if (target.Length == 0)
            {
                target = "@default";
            }
            else if (target.StartsWith("@dispvm:", StringComparison.Ordinal))
            {
                if (system.Find(target.AsSpan(8)) is not { TemplateForDispVms: true })
                {
                    return (Resolution.Deny, -1);
                }
            }
            else if (target[0] != '@' && system.Find(target) == null)
            {
                target = "@default";
            }
            for (int i = 0; i < _lines.Length; i++)
            {
                string[] f = _lines[i].Split(' ', StringSplitOptions.RemoveEmptyEntries);
                if ((f[0] != "*" && f[0] != service) || (f[1] != "*" && f[1] != argument) || !MatchSource(f[2], src))
                {
                    continue;
                }
                bool? matches = MatchTarget(f[3], target, src);
                if (matches == null)
                {
                    // @dispvm:NAME against @dispvm from a source without default_dispvm: the call fails
                    return (Resolution.Deny, i);
                }
                if (matches == false)
                {
                    continue;
                }
                if (f[4] == "deny")
                {
                    return (Resolution.Deny, i);
                }
                if (f[4] == "ask")
                {
                    return (Resolution.Ask, i);
                }
                string effective = target;
                bool autostart = true;
                foreach (string parameter in f.AsSpan(5))
                {
                    if (parameter.StartsWith("target=", StringComparison.Ordinal))
                    {
                        effective = parameter[7..];
                        if (effective[0] != '@' && system.Find(effective) == null)
                        {
                            effective = "@default";
                        }
                    }
                    else if (parameter == "autostart=no")
                    {
                        autostart = false;
                    }
                }
                if (effective == "@default" || (effective == "@dispvm" && system.Find(src.DefaultDispVm ?? "") == null))
                {
                    return (Resolution.Deny, i);
                }
                bool dispvm = effective.StartsWith("@dispvm", StringComparison.Ordinal);
                QubeInfo? t = dispvm ? null : effective == "@adminvm" ? system.Find("dom0") : system.Find(effective);
                if (!autostart && (dispvm || (t!.Name != "dom0" && t.PowerState != "Running")))
                {
                    return (Resolution.Deny, i);
                }
                return (t != null && t.Name == src.Name ? Resolution.Deny : Resolution.Allow, i);
            }
            return (Resolution.Deny, -1);
        }

        private bool MatchSource(string token, QubeInfo qube)
        {
            if (token == "*")
            {
                return true;
            }
            if (token == "@anyvm")
            {
                return qube.Name != "dom0";
            }
            if (token == "@adminvm")
            {
                return qube.Name == "dom0";
            }
            if (token.StartsWith("@type:", StringComparison.Ordinal))
            {
                return qube.Type == token[6..];
            }
            if (token.StartsWith("@tag:", StringComparison.Ordinal))
            {
                return qube.Tags.Contains(token[5..]);
            }
            return token[0] != '@' && system.Find(token)?.Name == qube.Name;
        }

        /// <summary>Whether the rule's target matches; null when it cannot be compared.</summary>
        private bool? MatchTarget(string token, string target, QubeInfo source)
        {
            if (token == "*")
            {
                return true;
            }
            if (token == "@anyvm")
            {
                return target != "dom0" && target != "@adminvm";
            }
            if (token is "@default" or "@dispvm")
            {
                return target == token;
            }
            if (token.StartsWith("@dispvm:", StringComparison.Ordinal))
            {
                if (target == "@dispvm" && source.DefaultDispVm == null && !token.StartsWith("@dispvm:@tag:", StringComparison.Ordinal))
                {
                    return null;
                }
                string? template = target.StartsWith("@dispvm:", StringComparison.Ordinal) ? target[8..] : target == "@dispvm" ? source.DefaultDispVm : null;
                if (template == null || system.Find(template) is not { } t)
                {
                    return false;
                }
                return token.StartsWith("@dispvm:@tag:", StringComparison.Ordinal)
                    ? t.TemplateForDispVms && t.Tags.Contains(token[13..])
                    : token[8..] == t.Name;
            }
            if (target[0] == '@' && (target != "@adminvm" || token.StartsWith("@type:", StringComparison.Ordinal) || token.StartsWith("@tag:", StringComparison.Ordinal)))
            {
                // types and tags belong to listed qubes, which @adminvm is not
                return false;
            }
            QubeInfo qube = system.Find(target)!;
            return MatchSource(token, qube);
        }
    }
}

/// <summary>One decision of the compiled engine, for BenchmarkDotNet's allocation count.</summary>
[MemoryDiagnoser]
public class PolicyBenchmarks
{
    private PolicyEngine _engine = null!;
    private PolicyBench.Request[] _requests = [];
    private int _next;

    [GlobalSetup]
    public void Setup()
    {
        PolicyBench.Workload work = PolicyBench.Workload.Generate(seed: 42);
        _engine = work.Engine();
        _requests = work.Requests;
    }

    [Benchmark]
    public bool Decide()
    {
        PolicyBench.Request q = _requests[_next++ & (_requests.Length - 1)];
        return _engine.Evaluate(q.ServiceAndArg, q.Source, q.Target).IsAllowed;
    }
}
