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
/// then made with <c>qvm-run --dispvm</c>; a management qube that manages only what it created;
/// qubes' windows on dom0's screen (a private Xvfb), typed into, and the clipboard under policy.
/// Every outcome is checked; a mismatch fails the demo.
/// </summary>
internal sealed partial class Scenarios : IDisposable
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
            s.ShowLogs();
            return 1;
        }
    }

    private sealed class DemoFailure(string message) : Exception(message);

    /// <summary>The last lines of each of the system's logs, to see why a step failed.</summary>
    private void ShowLogs()
    {
        if (!Directory.Exists(_system.Layout.Logs))
        {
            return;
        }
        foreach (string log in Directory.GetFiles(_system.Layout.Logs).Order(StringComparer.Ordinal))
        {
            string[] lines = File.ReadAllLines(log);
            Console.WriteLine($"--- {Path.GetFileName(log)} (last {Math.Min(lines.Length, 15)} of {lines.Length} lines)");
            foreach (string line in lines.TakeLast(15))
            {
                Console.WriteLine("    " + line);
            }
        }
    }

    private void All()
    {
        Stopwatch clock = Stopwatch.StartNew();
        _step($"the system: qubes up --state {_system.Layout.State} (hypervisor, policy daemon, qubesd; a default system on first start)");
        StringWriter up = new();
        _system.Up(up, _prompt.Terminal, display: string.Empty);
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

        AppMenus();
        Updates();
        Gui();

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

    /// <summary>A Notes application installed in the template reaches work's menu through dom0's checks, and starts from it.</summary>
    private void AppMenus()
    {
        _step("app menus: Notes installed in the template debian-12; dom0 asks for the template's menu (qvm-sync-appmenus), and work's menu has it, in work's colour");
        Run("debian-12", "mkdir -p /usr/share/applications /usr/share/icons/hicolor/32x32/apps"
            + " && gm convert -size 32x32 gradient:white-black /usr/share/icons/hicolor/32x32/apps/notes.png && cat > /usr/share/applications/notes.desktop", asRoot: true,
            input: "[Desktop Entry]\nType=Application\nName=Notes\nComment=Write notes\nExec=touch /tmp/notes-started %F\nIcon=notes\nCategories=Utility;TextEditor;Screensaver;\n");
        (int status, string output) = Tool("qvm-sync-appmenus", ["debian-12"]);
        Expect(status == 0, "qvm-sync-appmenus debian-12");
        (_, output) = Tool("qvm-appmenus", ["--get-available", "work"]);
        Expect(output.Contains("notes.desktop - Notes\n", StringComparison.Ordinal), "work's menu offers Notes");
        string store = _system.Layout.Dom0AppMenus;
        string entry = File.ReadAllText(Path.Combine(store, "work", "apps", "org.qubes-os.vm._work.notes.desktop"));
        _say("dom0's menu file for it (written by dom0; the qube's Exec is not in it):");
        Lines(string.Join('\n', entry.Split('\n').Where(static l => l.StartsWith("Name=", StringComparison.Ordinal) || l.StartsWith("Exec=", StringComparison.Ordinal)
            || l.StartsWith("Icon=", StringComparison.Ordinal) || l.StartsWith("Categories=", StringComparison.Ordinal))));
        Expect(entry.Contains("\nExec=qvm-run -q -a --service -- work qubes.StartApp+notes\n", StringComparison.Ordinal)
            && entry.Contains("\nCategories=Utility;TextEditor;X-Qubes-VM;\n", StringComparison.Ordinal), "work's entry runs qubes.StartApp+notes in work; Screensaver was dropped");
        Qubes.AppMenus.RgbaImage? icon = Qubes.AppMenus.RgbaImage.LoadTrustedPng(Path.Combine(store, "work", "apps.icons", "notes.png"));
        Expect(icon != null && icon.Pixels[2] > icon.Pixels[0], "work's icon is tinted blue (its label)");
        Tool("qvm-shutdown", ["--wait", "debian-12", "work"]);
        Tool("qvm-run", ["-q", "-a", "--service", "--", "work", "qubes.StartApp+notes"]);
        // qvm-run without --pass-io returns once the call is made, not when Notes has started.
        (status, _) = Run("work", "for i in $(seq 100); do [ -e /tmp/notes-started ] && break; sleep 0.1; done; ls /tmp/notes-started");
        Expect(status == 0, "the menu's command started Notes in work");
    }

    /// <summary>sys-update, the updatevm, sends dom0 a package signed by dom0's key (kept) and a tampered copy (refused).</summary>
    private void Updates()
    {
        _step("dom0 updates: sys-update (the updatevm) sends packages with qubes.ReceiveUpdates; dom0 keeps one signed by its key, refuses a tampered copy");
        Tool("qvm-create", ["sys-update", "-l", "red"]);
        Tool("qubes-prefs", ["updatevm", "sys-update"]);
        string work = Directory.CreateTempSubdirectory("qubes-demo-updates").FullName;
        try
        {
            string package = Path.Combine(work, "rpmbuild", "RPMS", "noarch", "qubes-demo-hello-1.0-1.noarch.rpm");
            _say("dom0: a key (gpg), trusted by dom0's rpm database (rpmkeys --import), and a package signed with it (rpmbuild, rpmsign)");
            Host(work, $$"""
                set -e
                export GNUPGHOME="$PWD/gnupg"; mkdir -m 700 "$GNUPGHOME"
                printf '%%no-protection\nKey-Type: RSA\nKey-Length: 2048\nName-Real: Demo updates\nName-Email: updates@dom0\nExpire-Date: 0\n%%commit\n' > key.params
                gpg --batch --gen-key key.params 2>/dev/null
                gpg --batch --armor --export updates@dom0 > key.asc
                mkdir -p '{{_system.Layout.Dom0RpmDatabase}}' && rpmkeys --dbpath '{{_system.Layout.Dom0RpmDatabase}}' --import key.asc
                mkdir -p rpmbuild/SPECS
                printf 'Name: qubes-demo-hello\nVersion: 1.0\nRelease: 1\nSummary: a package for dom0\nLicense: MIT\nBuildArch: noarch\n%%description\nA single file.\n%%install\nmkdir -p %%{buildroot}/usr/share/qubes-demo\necho hello > %%{buildroot}/usr/share/qubes-demo/hello\n%%files\n/usr/share/qubes-demo/hello\n' > rpmbuild/SPECS/hello.spec
                rpmbuild --define "_topdir $PWD/rpmbuild" --quiet -bb rpmbuild/SPECS/hello.spec
                rpmsign --define '_gpg_name updates@dom0' --define "_gpg_path $GNUPGHOME" --define '__gpg /usr/bin/gpg' --addsign '{{package}}' >/dev/null
                gpgconf --kill gpg-agent
                """);
            byte[] signed = File.ReadAllBytes(package);
            byte[] tampered = (byte[])signed.Clone();
            tampered[^1] ^= 0x55; // the payload's last byte
            string name = Path.GetFileName(package);
            Run("sys-update", $"mkdir -p ~/signed ~/tampered && base64 -d > ~/signed/{name}", input: Convert.ToBase64String(signed));
            Run("sys-update", $"base64 -d > ~/tampered/{name}", input: Convert.ToBase64String(tampered));

            (int status, _) = Run("sys-update", $"qrexec-client-vm dom0 qubes.ReceiveUpdates \"$(command -v qfile-agent)\" ~/signed/{name}");
            string updates = _system.Layout.Dom0Updates;
            Expect(status == 0 && File.Exists(Path.Combine(updates, "rpm", name)) && File.Exists(Path.Combine(updates, "repodata", "repomd.xml")),
                $"dom0 kept the signed package in {updates}/rpm and indexed it (repodata/repomd.xml)");
            (status, _) = Run("sys-update", $"qrexec-client-vm dom0 qubes.ReceiveUpdates \"$(command -v qfile-agent)\" ~/tampered/{name}");
            string errors = File.Exists(Path.Combine(updates, "errors")) ? File.ReadAllText(Path.Combine(updates, "errors")) : "";
            _say($"dom0's {updates}/errors:");
            Lines(errors);
            Expect(status != 0 && errors.Length > 0 && !Directory.Exists(Path.Combine(updates, "rpm")), "the tampered package was refused and nothing of the transfer stayed");
            (status, _) = Run("work", $"printf 'x' > /tmp/{name} && qrexec-client-vm dom0 qubes.ReceiveUpdates \"$(command -v qfile-agent)\" /tmp/{name}");
            string refusal = File.ReadLines(_system.Layout.Log("qrexec.work")).LastOrDefault(static l => l.Contains("not allowed to send dom0 updates", StringComparison.Ordinal)) ?? "";
            _say("dom0's service, in qrexec.work's log: " + refusal);
            Expect(status != 0 && refusal.EndsWith("Domain work not allowed to send dom0 updates", StringComparison.Ordinal) && File.ReadAllText(Path.Combine(updates, "errors")) == errors,
                "work, not the updatevm, may not send updates; dom0's updates are unchanged");
        }
        finally
        {
            Directory.Delete(work, recursive: true);
        }
    }

    /// <summary>Runs a shell script in dom0 (this host) in <paramref name="directory"/>; a failure ends the demo.</summary>
    private void Host(string directory, string script)
    {
        ProcessStartInfo psi = new("/bin/sh", ["-c", script]) { WorkingDirectory = directory, UseShellExecute = false, RedirectStandardError = true, RedirectStandardOutput = true };
        using Process p = Process.Start(psi)!;
        System.Threading.Tasks.Task<string> errors = p.StandardError.ReadToEndAsync();
        p.StandardOutput.ReadToEnd();
        p.WaitForExit();
        if (p.ExitCode != 0)
        {
            Lines(errors.Result);
        }
        Expect(p.ExitCode == 0, "dom0's preparation");
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
        string text = ReadLogFrom(_system.Layout.Log("qrexec-policy-daemon"), _policyLogRead);
        _policyLogRead += System.Text.Encoding.UTF8.GetByteCount(text);
        foreach (string line in text.Split('\n').Where(static l => l.Contains(" -> ", StringComparison.Ordinal)))
        {
            _say(line.Replace(_system.Layout.State + "/", string.Empty, StringComparison.Ordinal));
        }
    }

    /// <summary>What a daemon's log (still being written) holds from byte <paramref name="offset"/> on.</summary>
    private static string ReadLogFrom(string log, long offset)
    {
        using FileStream file = new(log, FileMode.Open, FileAccess.Read, FileShare.ReadWrite);
        file.Seek(offset, SeekOrigin.Begin);
        return new StreamReader(file).ReadToEnd();
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
