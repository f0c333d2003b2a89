using System;
using System.Collections.Generic;
using System.Diagnostics;
using System.IO;
using System.Linq;
using Qubes.Interop.Linux;

namespace Qubes.Front;

/// <summary>
/// The seed's scenarios on a fresh system of its own (a temporary state directory), each step
/// through the tools a user types: the system up with its default qubes; <c>qvm-prefs</c> showing
/// the defaults; the network-less <c>wallet</c> calling <c>my.GetPrice</c> in <c>untrusted</c>
/// under policy; the template writing its root for its AppVMs; qvm-copy under tag rules letting
/// the qubes tagged <c>work</c> copy among themselves while personal and work cannot, and an
/// <c>ask</c> answered at dom0's prompt (a terminal the demo types into); a disposable refused and
/// then made with <c>qvm-run --dispvm</c>; a management qube that manages only what it created.
/// Every outcome is checked; a mismatch fails the demo.
/// </summary>
internal sealed class Scenarios : IDisposable
{
    private readonly Action<string> _step;
    private readonly Action<string> _say;
    private readonly SystemControl _system;
    private readonly Pty _prompt = Pty.Open();
    private long _policyLogRead;

    private Scenarios(Action<string> step, Action<string> say, string state)
    {
        _step = step;
        _say = say;
        _system = new SystemControl(state);
    }

    public static int Run(Action<string> step, Action<string> say)
    {
        string state = Path.Combine(Path.GetTempPath(), $"qubes-demo-system-{Environment.ProcessId}");
        using Scenarios s = new(step, say, state);
        try
        {
            s.All();
            return 0;
        }
        catch (DemoFailure e)
        {
            Console.WriteLine($"demo FAILED: {e.Message}");
            return 1;
        }
    }

    private sealed class DemoFailure(string message) : Exception(message);

    private void All()
    {
        Stopwatch clock = Stopwatch.StartNew();
        _step($"the system: qubes up --state {_system.Layout.State} (hypervisor, policy daemon, qubesd; a default system on first start)");
        StringWriter up = new();
        _system.Up(up, _prompt.Terminal);
        Lines(up.ToString());
        Tool("qvm-ls");

        _step("qvm-prefs work: the defaults (D) and what was set (-); a few of its 48 rows");
        string prefs = Tool("qvm-prefs", ["work"], show: false).Output;
        string[] keep = ["default_dispvm", "label", "maxmem", "memory", "name", "netvm", "qrexec_timeout", "template", "template_for_dispvms", "vcpus"];
        Lines(string.Join('\n', prefs.Split('\n').Where(l => keep.Contains(l.Split(' ')[0]))));
        Expect(prefs.Contains("template              -  debian-12", StringComparison.Ordinal) && prefs.Contains("template_for_dispvms  D  False", StringComparison.Ordinal), "qvm-prefs work shows template set and template_for_dispvms at its default");

        _step("wallet: qvm-create wallet -l blue --property netvm=\"\"; my.GetPrice installed in untrusted; policy: my.GetPrice * wallet untrusted allow");
        Tool("qvm-create", ["wallet", "-l", "blue", "--property", "netvm="]);
        Policy("30-wallet.policy", "my.GetPrice  *  wallet  untrusted  allow\nmy.GetPrice  *  @anyvm  @anyvm     deny\n");
        Run("untrusted", "mkdir -p /usr/local/etc/qubes-rpc && cat > /usr/local/etc/qubes-rpc/my.GetPrice && chmod +x /usr/local/etc/qubes-rpc/my.GetPrice", asRoot: true,
            input: "#!/bin/sh\necho \"$1: 42.17 EUR (quoted by $(hostname) for $QREXEC_REMOTE_DOMAIN)\"\n");
        (int status, string output) = Run("wallet", "cat /proc/net/dev | tail -n +3 | cut -d: -f1 | tr -d ' '; qrexec-client-vm untrusted my.GetPrice+BTC");
        Expect(status == 0 && output == "lo\nBTC: 42.17 EUR (quoted by untrusted for wallet)\n", "wallet has only lo and gets the price from untrusted");
        PolicyLog();
        (status, output) = Run("untrusted", "qrexec-client-vm wallet my.GetPrice+BTC");
        Expect(status == 126, "untrusted -> wallet is refused (126)");
        PolicyLog();

        _step("the template debian-12 writes its own root; its AppVMs see it, read-only, after the template's shutdown");
        Run("debian-12", "echo 'set up by the template' > /etc/motd", asRoot: true);
        Tool("qvm-shutdown", ["--wait", "debian-12"]);
        (status, output) = Run("work", "cat /etc/motd; touch /usr/bin/x 2>/dev/null", asRoot: true);
        Expect(status != 0 && output == "set up by the template\n", "work reads its template's root and cannot write it, not even as its root");

        _step("file copy: qvm-copy under tag rules (work may copy to work-web; personal and work may not copy to each other)");
        Tool("qvm-create", ["work-web", "-l", "blue"]);
        Tool("qvm-tags", ["work", "add", "work"]);
        Tool("qvm-tags", ["work-web", "add", "work"]);
        Policy("40-copy.policy", "qubes.Filecopy  *  @tag:work  @tag:work  allow\nqubes.Filecopy  *  @tag:work  @anyvm     deny\nqubes.Filecopy  *  @anyvm     @tag:work  deny\n");
        (status, _) = Run("work", "echo 'quarterly report' > ~/report.txt && qvm-copy-to-vm work-web ~/report.txt");
        Expect(status == 0, "work -> work-web copy allowed");
        PolicyLog();
        (status, output) = Run("work-web", "cat ~/QubesIncoming/work/report.txt; ls ~/report.txt 2>&1");
        Expect(output.StartsWith("quarterly report\n", StringComparison.Ordinal) && output.Contains("No such file", StringComparison.Ordinal), "work-web has the copy in ~/QubesIncoming/work, not work's own files");
        (status, _) = Run("personal", "echo diary > ~/diary.txt && qvm-copy-to-vm work ~/diary.txt");
        Expect(status == 126, "personal -> work refused");
        PolicyLog();
        (status, _) = Run("work", "qvm-copy-to-vm personal ~/report.txt");
        Expect(status == 126, "work -> personal refused");
        PolicyLog();

        _step("an ask: personal runs qvm-copy without a target; the default policy asks dom0's prompt (a terminal the policy daemon owns), answered: untrusted");
        (status, output) = RunAnswering("personal", "qvm-copy ~/diary.txt", "untrusted");
        Expect(status == 0 && output.Contains("untrusted", StringComparison.Ordinal), "the prompt offered untrusted, the copy went there");
        PolicyLog();
        (_, output) = Run("untrusted", "cat ~/QubesIncoming/personal/diary.txt");
        Expect(output == "diary\n", "untrusted has personal's diary in ~/QubesIncoming/personal");

        _step("a disposable: qvm-run --dispvm=work --service (refused), qvm-prefs work template_for_dispvms True, again");
        (status, output) = Tool("qvm-run", ["--dispvm=work", "--service", "qubes.VMShell"]);
        Expect(status == 255 && output.Contains("Refusing to create DispVM out of this AppVM, because template_for_dispvms=False", StringComparison.Ordinal), "a disposable from work is refused");
        Tool("qvm-prefs", ["work", "template_for_dispvms", "True"]);
        (status, output) = Tool("qvm-run", ["--dispvm=work", "-p", "echo \"in $(hostname), from the template's private volume: $(ls ~)\""]);
        Expect(status == 0 && output.StartsWith("in disp", StringComparison.Ordinal) && output.Contains("report.txt", StringComparison.Ordinal), "the disposable ran with a copy of work's private volume");
        string list = Tool("qvm-ls", ["--raw-list"], show: false).Output;
        Expect(!list.Split('\n').Any(static n => n.StartsWith("disp", StringComparison.Ordinal)), "the disposable is gone after the call");
        _say("after the call, qvm-ls has no disp* qube: the disposable was killed and removed");

        _step("a management qube: mgmt may create qubes and manage those it created (tag created-by-mgmt), nothing else");
        Tool("qvm-create", ["mgmt", "-l", "green"]);
        Policy("20-mgmt.policy", string.Join('\n',
            "admin.vm.Create.AppVM      *  mgmt  @adminvm              allow  target=dom0",
            "admin.vm.List              *  mgmt  @adminvm              allow  target=dom0",
            "admin.label.List           *  mgmt  @adminvm              allow  target=dom0",
            "admin.vm.List              *  mgmt  @tag:created-by-mgmt  allow  target=dom0",
            "admin.vm.property.Get      *  mgmt  @tag:created-by-mgmt  allow  target=dom0",
            "admin.vm.property.Set      *  mgmt  @tag:created-by-mgmt  allow  target=dom0",
            "admin.vm.property.GetAll   *  mgmt  @tag:created-by-mgmt  allow  target=dom0",
            "admin.vm.property.List     *  mgmt  @tag:created-by-mgmt  allow  target=dom0",
            "admin.vm.CurrentState      *  mgmt  @tag:created-by-mgmt  allow  target=dom0",
            "admin.vm.Start             *  mgmt  @tag:created-by-mgmt  allow  target=dom0",
            "admin.vm.Kill              *  mgmt  @tag:created-by-mgmt  allow  target=dom0",
            "admin.vm.Remove            *  mgmt  @tag:created-by-mgmt  allow  target=dom0",
            "") + "\n");
        (status, output) = Run("mgmt", "qvm-create lab -l red && qvm-prefs lab memory 500 && qvm-prefs lab memory && qvm-ls --raw-list");
        Expect(status == 0 && output == "500\ndom0\nlab\n", "mgmt created lab, set its memory and sees only it (and dom0)");
        (status, output) = Run("mgmt", "qvm-prefs work label 2>&1 | tail -n 1; printf red | qrexec-client-vm work admin.vm.property.Set+label");
        Expect(status == 126 && output.Contains("no such domain: 'work'", StringComparison.Ordinal) && output.Contains("Request refused", StringComparison.Ordinal),
            "mgmt does not see work, and the policy refuses its call to change work's label");
        PolicyLog();
        Expect(Tool("qvm-prefs", ["work", "label"]).Output == "blue\n", "work's label is unchanged");
        Expect(Tool("qvm-tags", ["lab"]).Output == "created-by-mgmt\n", "lab carries created-by-mgmt");

        _step("qubes down");
        StringWriter down = new();
        _system.Down(down);
        Lines(down.ToString());
        _say($"the scenarios took {clock.Elapsed.TotalSeconds:F1} s");
    }

    /// <summary>Runs a qvm tool on the system as dom0, showing the command and (unless told not to) its output.</summary>
    private (int Status, string Output) Tool(string tool, IReadOnlyList<string>? args = null, bool show = true)
    {
        args ??= [];
        _say("$ " + tool + (args.Count > 0 ? " " + string.Join(' ', args.Select(Quote)) : string.Empty));
        (int status, string output) = Execute(tool, args, null);
        if (show)
        {
            Lines(output);
        }
        return (status, output);
    }

    /// <summary>Runs a shell command in a qube (qvm-run --pass-io) as its user (or its root), with <paramref name="input"/> on its standard input.</summary>
    private (int Status, string Output) Run(string qube, string command, bool asRoot = false, string? input = null)
    {
        string[] user = asRoot ? ["-u", "root"] : [];
        _say($"$ qvm-run {(asRoot ? "-u root " : "")}-p {qube} {Quote(command)}");
        (int status, string output) = Execute("qvm-run", [.. user, "-p", qube, command], input);
        Lines(output);
        if (status != 0)
        {
            _say($"  (exit status {status})");
        }
        return (status, output);
    }

    /// <summary>Runs a tool built beside this program on the system; its exit status and its output followed by its errors.</summary>
    private (int Status, string Output) Execute(string tool, IReadOnlyList<string> args, string? input)
    {
        using Process p = Start(tool, args, input);
        return Finish(p);
    }

    private Process Start(string tool, IReadOnlyList<string> args, string? input)
    {
        ProcessStartInfo psi = new(Path.Combine(AppContext.BaseDirectory, tool), args)
        {
            UseShellExecute = false,
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            RedirectStandardInput = true,
        };
        psi.Environment["QUBES_STATE_DIR"] = _system.Layout.State;
        Process p = Process.Start(psi)!;
        p.StandardInput.Write(input ?? string.Empty);
        p.StandardInput.Close();
        return p;
    }

    private static (int Status, string Output) Finish(Process p)
    {
        System.Threading.Tasks.Task<string> error = p.StandardError.ReadToEndAsync();
        string output = p.StandardOutput.ReadToEnd();
        p.WaitForExit();
        return (p.ExitCode, output + error.Result);
    }

    /// <summary>
    /// Runs a shell command in a qube whose call the policy asks about: shows the prompt as it
    /// appears on dom0's terminal and types <paramref name="answer"/> there.
    /// </summary>
    private (int Status, string Output) RunAnswering(string qube, string command, string answer)
    {
        _say($"$ qvm-run -p {qube} {Quote(command)}");
        using Process p = Start("qvm-run", ["-p", qube, command], null);
        System.Text.StringBuilder prompt = new();
        byte[] buffer = new byte[4096];
        Stopwatch clock = Stopwatch.StartNew();
        while (!prompt.ToString().EndsWith("or n to deny: ", StringComparison.Ordinal) && clock.Elapsed < TimeSpan.FromSeconds(60) && !p.HasExited)
        {
            if (Fd.PollIn(_prompt.Master.Fd, 100) > 0 && Fd.Read(_prompt.Master.Fd, buffer) is int n and > 0)
            {
                prompt.Append(System.Text.Encoding.UTF8.GetString(buffer, 0, n).Replace("\r", string.Empty, StringComparison.Ordinal));
            }
        }
        foreach (string line in prompt.ToString().Split('\n', StringSplitOptions.RemoveEmptyEntries))
        {
            _say("  dom0 prompt | " + line + (line.EndsWith(": ", StringComparison.Ordinal) ? answer : string.Empty));
        }
        Fd.WriteAll(_prompt.Master.Fd, System.Text.Encoding.UTF8.GetBytes(answer + "\n"));
        (int status, string output) = Finish(p);
        Lines(output);
        if (status != 0)
        {
            _say($"  (exit status {status})");
        }
        return (status, prompt + output);
    }

    /// <summary>Writes a policy file (the policy daemon picks it up at its next decision).</summary>
    private void Policy(string file, string text)
    {
        File.WriteAllText(Path.Combine(_system.Layout.PolicyDirectory, file), text);
        _say($"policy.d/{file}: " + string.Join(" | ", text.Split('\n', StringSplitOptions.RemoveEmptyEntries).Select(static l => string.Join(' ', l.Split(' ', StringSplitOptions.RemoveEmptyEntries)))));
    }

    /// <summary>The policy daemon's decisions since the last look, with the rule behind each.</summary>
    private void PolicyLog()
    {
        string log = _system.Layout.Log("qrexec-policy-daemon");
        using FileStream file = new(log, FileMode.Open, FileAccess.Read, FileShare.ReadWrite);
        file.Seek(_policyLogRead, SeekOrigin.Begin);
        string text = new StreamReader(file).ReadToEnd();
        _policyLogRead += System.Text.Encoding.UTF8.GetByteCount(text);
        foreach (string line in text.Split('\n').Where(static l => l.Contains(" -> ", StringComparison.Ordinal)))
        {
            _say(line.Replace(_system.Layout.State + "/", string.Empty, StringComparison.Ordinal));
        }
    }

    private void Lines(string text)
    {
        if (text.Length == 0)
        {
            return;
        }
        foreach (string line in text.TrimEnd('\n').Split('\n'))
        {
            _say("  " + line);
        }
    }

    private void Expect(bool condition, string what)
    {
        if (!condition)
        {
            throw new DemoFailure(what);
        }
        _say("ok: " + what);
    }

    private static string Quote(string arg) => arg.Length == 0 || arg.Any(static c => c is ' ' or '"' or '\'' or '$' or ';' or '&' or '|' or '>' or '<' or '*') ? "'" + arg.Replace("'", "'\\''", StringComparison.Ordinal) + "'" : arg;

    public void Dispose()
    {
        using Pty prompt = _prompt;
        if (_system.Pid("qubesd") > 0 || _system.Pid("qubes-lohv") > 0)
        {
            _system.Down(TextWriter.Null);
        }
        try
        {
            Directory.Delete(_system.Layout.State, recursive: true);
        }
        catch (IOException)
        {
        }
    }
}
