using System;
using System.Collections.Generic;
using System.Linq;
using System.Text;
using Qubes.Qrexec.Policy;

namespace Qubes.Fuzz;

/// <summary>
/// The policy daemon's side of the socket (qrexec spec §11.1, qrexec-policy spec §7-§12): the
/// request framing and parser against a slow oracle written from the spec, then the decision of a
/// parsed request, whose answer must fit the daemon's 4095 bytes and be read back by the daemon's
/// own answer parser with the same allow or deny (evaluate-only: the bare result line). Input: the bytes a client sent, ending at a guard page.
/// </summary>
internal sealed class PolicyRequestTarget : ITarget
{
    private const int MaxRequest = 8192;

    private static readonly string[] s_keys = ["source", "intended_target", "service_and_arg", "requested_source", "assume_yes_for_ask", "just_evaluate"];

    private readonly GuardedMemory _memory = new(MaxRequest);
    private readonly byte[] _answer = new byte[PolicyEngine.MaxAnswerLength];
    private readonly PolicyEngine _engine = new(PolicyLoader.System.LoadText("""
        qubes.Filecopy  * @tag:work @tag:work             allow
        qubes.Filecopy  * @anyvm    @anyvm                ask default_target=work
        qubes.PrintFile * @tag:work @dispvm               allow target=@dispvm:work-dvm
        qubes.OpenURL   * @anyvm    @dispvm               allow autostart=no
        qubes.GetDate   * @anyvm    @default              allow target=@adminvm
        test.Relay      * remote    @anyvm                allow user=root
        test.Relay      * @anyvm    remote                allow
        *               * @anyvm    @anyvm                deny
        """, "/etc/qubes/policy.d/50-fuzz.policy"), new SystemInfo([
        new QubeInfo("work", "AppVM", ["work"], "work-dvm", false, "Running", "11111111-1111-4111-8111-111111111111", false),
        new QubeInfo("personal", "AppVM", [], null, false, "Halted", "33333333-3333-4333-8333-333333333333", false),
        new QubeInfo("work-dvm", "AppVM", ["work"], "work-dvm", true, "Halted", "66666666-6666-4666-8666-666666666666", false),
        new QubeInfo("relay", "AppVM", [], null, false, "Running", "aaaaaaaa-0000-4000-8000-000000000000", false),
        new QubeInfo("remote", "RemoteVM", [], null, false, "NA", "bbbbbbbb-0000-4000-8000-000000000000", false, RelayVm: "relay", TransportRpc: "qubesair.SSHProxy"),
    ]));

    public string Name => "policy-request";

    public byte[][] Seeds =>
    [
        "source=work\nintended_target=work-dvm\nservice_and_arg=qubes.Filecopy\n\n"u8.ToArray(),
        "source=personal\nintended_target=\nservice_and_arg=qubes.Filecopy+x\nassume_yes_for_ask=yes\n\n"u8.ToArray(),
        "source=work\nintended_target=@dispvm\nservice_and_arg=qubes.PrintFile\njust_evaluate=no\n\n"u8.ToArray(),
        "source=relay\nrequested_source=remote\nintended_target=work\nservice_and_arg=test.Relay+a+b\n\n"u8.ToArray(),
        "source=work\nintended_target=remote\nservice_and_arg=test.Relay\n\n"u8.ToArray(),
        "source=work\nintended_target=uuid:00000000-0000-0000-0000-000000000000\nservice_and_arg=qubes.GetDate\n\n"u8.ToArray(),
        "source=work\nsource=work\nintended_target=x\nservice_and_arg=y\n\n"u8.ToArray(),
        "\n"u8.ToArray(),
    ];

    public void Run(ReadOnlySpan<byte> input)
    {
        ReadOnlySpan<byte> data = _memory.Place(input);
        int end = PolicyCall.FindEnd(data);
        int expectedEnd = FindEndOracle(data);
        if (end != expectedEnd)
        {
            throw new FuzzFailure($"request end {end}, the oracle says {expectedEnd}");
        }
        if (end < 0)
        {
            return;
        }
        bool parsed = PolicyCall.TryParse(data[..end], out PolicyCall? call, out string? error);
        PolicyCall? expected = ParseOracle(data[..end].ToArray());
        if (parsed != (expected != null) || (parsed && call != expected))
        {
            throw new FuzzFailure($"parser says {(parsed ? call!.ToString() : error)}, the oracle says {expected?.ToString() ?? "invalid"}");
        }
        if (call == null)
        {
            return;
        }
        PolicyResult result = _engine.Evaluate(call.ServiceAndArg, call.Source, call.IntendedTarget, call.RequestedSource, call.Mode);
        result = _engine.Resolve(result, null);
        if (!_engine.TryWriteAnswer(result, _answer, out int written))
        {
            // Only a huge service string (RemoteVM relay) can outgrow the daemon's limit; the daemon then denies.
            if (call.ServiceAndArg.Length < 2000)
            {
                throw new FuzzFailure($"answer to {call} does not fit");
            }
            return;
        }
        ReadOnlySpan<byte> answer = _answer.AsSpan(0, written);
        if (answer.Length > 0 && answer[^1] == (byte)'\n')
        {
            throw new FuzzFailure("answer ends with a newline on the socket");
        }
        if ((call.Mode & EvaluationMode.JustEvaluate) != 0)
        {
            // evaluate-only answers go to the policy.Eval* callers, not the qrexec daemon: the bare result line
            if (!answer.SequenceEqual(result.IsAllowed ? "result=allow"u8 : "result=deny"u8))
            {
                throw new FuzzFailure($"evaluate-only answer {Encoding.ASCII.GetString(answer)}");
            }
            return;
        }
        byte[] withNewline = [.. answer, (byte)'\n'];
        if (!Qubes.Qrexec.Policy.PolicyResponse.TryParse(withNewline, out Qubes.Qrexec.Policy.PolicyDecision? decision, out string? malformed))
        {
            throw new FuzzFailure($"the daemon cannot read the answer to {call}: {malformed}: {Encoding.ASCII.GetString(answer)}");
        }
        if (decision.Allowed != result.IsAllowed)
        {
            throw new FuzzFailure($"the daemon reads {(decision.Allowed ? "allow" : "deny")} from {Encoding.ASCII.GetString(answer)}");
        }
    }

    private static int FindEndOracle(ReadOnlySpan<byte> data)
    {
        if (data.Length > 0 && data[0] == '\n')
        {
            return 1;
        }
        for (int i = 0; i + 1 < data.Length; i++)
        {
            if (data[i] == '\n' && data[i + 1] == '\n')
            {
                return i + 2;
            }
        }
        return -1;
    }

    private static PolicyCall? ParseOracle(byte[] request)
    {
        if (request.Contains((byte)0))
        {
            return null;
        }
        Dictionary<string, string> values = [];
        // the request through its empty line: drop the empty line, then every line ends with '\n'
        List<byte[]> lines = [];
        List<byte> current = [];
        foreach (byte b in request.Take(request.Length - 1))
        {
            if (b == '\n')
            {
                lines.Add([.. current]);
                current.Clear();
            }
            else
            {
                current.Add(b);
            }
        }
        if (current.Count > 0)
        {
            return null;
        }
        foreach (byte[] line in lines)
        {
            int equals = Array.IndexOf(line, (byte)'=');
            if (equals < 0)
            {
                return null;
            }
            string key = Encoding.UTF8.GetString(line, 0, equals);
            if (!s_keys.Contains(key) || !values.TryAdd(key, Encoding.UTF8.GetString(line, equals + 1, line.Length - equals - 1)))
            {
                return null;
            }
        }
        if (!values.ContainsKey("source") || !values.ContainsKey("intended_target") || !values.ContainsKey("service_and_arg"))
        {
            return null;
        }
        EvaluationMode mode = EvaluationMode.Normal;
        foreach ((string key, EvaluationMode flag) in new[] { ("assume_yes_for_ask", EvaluationMode.AssumeYesForAsk), ("just_evaluate", EvaluationMode.JustEvaluate) })
        {
            if (values.TryGetValue(key, out string? value))
            {
                if (value is not ("yes" or "no"))
                {
                    return null;
                }
                mode |= value == "yes" ? flag : EvaluationMode.Normal;
            }
        }
        return new PolicyCall(values["source"], values.GetValueOrDefault("requested_source"), values["intended_target"], values["service_and_arg"], mode);
    }
}
