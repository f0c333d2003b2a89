using System;
using System.Collections.Generic;
using System.IO;
using Qubes.Cli;
using Qubes.Qrexec.Policy;

namespace Qubes.Tools.PolicyExec;

/// <summary>
/// qrexec-policy-exec [--assume-yes-for-ask] [--just-evaluate] [paths] [--] SOURCE TARGET SERVICE+ARG
/// (or upstream's five arguments DOMID SOURCE TARGET SERVICE+ARG IDENT, the first and last unused).
/// Decides one call and prints the answer lines of spec qrexec-policy §12 and a newline. An
/// <c>ask</c> prompts on the controlling terminal; without one the call is denied. Exit status 0
/// when the call is allowed, 1 when it is denied, 2 on bad usage.
/// </summary>
internal static class Program
{
    /// <summary>The command line.</summary>
    internal static Command Command { get; } = new("qrexec-policy-exec", HelpStyle.Argparse,
    [
        Command.ArgparseHelp,
        new Option("allow the call without confirmation where the policy says 'ask'", "--assume-yes-for-ask"),
        new Option("only evaluate the policy: print result=allow or result=deny; exit status 0 means allowed", "--just-evaluate"),
        .. PolicyPaths.Options,
    ])
    {
        Description = "Decide one qrexec call and print the answer lines. Upstream's five arguments "
            + "DOMID SOURCE TARGET SERVICE+ARG IDENT are also taken; the first and the last are not used.",
        Positionals =
        [
            new("SOURCE", "SOURCE", "source domain name"),
            new("TARGET", "TARGET", "target domain name"),
            new("SERVICE+ARG", "SERVICE+ARG", "service name and argument separated by \"+\""),
        ],
    };

    internal static int Main(string[] args) => Command.Run(Console.Out, Console.Error, () => Run(args));

    private static int Run(string[] args)
    {
        PolicyPaths paths = new();
        EvaluationMode mode = EvaluationMode.Normal;
        List<Parsed> options = Command.ReadAll(args, out List<string> positional);
        foreach (Parsed parsed in options)
        {
            if (paths.Take(parsed))
            {
                continue;
            }
            switch (parsed.Option?.Name)
            {
                case "--assume-yes-for-ask":
                    mode |= EvaluationMode.AssumeYesForAsk;
                    break;
                case "--just-evaluate":
                    mode |= EvaluationMode.JustEvaluate;
                    break;
                default:
                    throw new UsageException($"unrecognized arguments: {parsed.Text}");
            }
        }
        if (positional.Count == 5)
        {
            positional = positional[1..4];
        }
        if (positional.Count != 3)
        {
            throw new UsageException("expected SOURCE TARGET SERVICE+ARG");
        }

        PolicyEngine engine = paths.Host(static message => Console.Error.WriteLine("qrexec-policy-exec: " + message)).Current;
        PolicyResult result = engine.Evaluate(positional[2], positional[0], positional[1], null, mode);
        if (result.Resolution == Resolution.Ask)
        {
            result = engine.Resolve(result, TerminalPrompt.OpenTty());
        }
        Console.Error.WriteLine($"qrexec-policy-exec: {positional[2]}: {positional[0]} -> {positional[1]}: {engine.Explain(result)}");
        // No notifier runs in the GUI qube yet: the caller's log is where the user hears of it.
        Notifications notify = engine.Notify(result);
        if ((notify & Notifications.Allowed) != 0)
        {
            Console.Error.WriteLine($"qrexec-policy-exec: notify {engine.NotifyGuiVm(result, Notifications.Allowed)}: allowed {positional[2]} from {positional[0]} to {engine.TargetName(result)}");
        }
        if ((notify & Notifications.Denied) != 0)
        {
            Console.Error.WriteLine($"qrexec-policy-exec: notify {engine.NotifyGuiVm(result, Notifications.Denied)}: denied {positional[2]} from {positional[0]} to {positional[1]}");
        }
        string answer = engine.FormatAnswer(result);
        using (Stream stdout = Console.OpenStandardOutput())
        {
            stdout.Write(global::System.Text.Encoding.ASCII.GetBytes(answer + "\n"));
        }
        return answer == "result=allow" || answer.Contains("\nresult=allow\n", StringComparison.Ordinal) ? 0 : 1;
    }
}
