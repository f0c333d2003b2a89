using System;
using System.Collections.Generic;
using System.IO;
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
    private const string Usage = "usage: qrexec-policy-exec [--assume-yes-for-ask] [--just-evaluate] " + PolicyPaths.Usage +
        " [--] SOURCE TARGET SERVICE+ARG";

    private static int Main(string[] args)
    {
        PolicyPaths paths = new();
        EvaluationMode mode = EvaluationMode.Normal;
        List<string> positional = [];
        try
        {
            for (int i = 0; i < args.Length; i++)
            {
                if (args[i] == "--")
                {
                    positional.AddRange(args[(i + 1)..]);
                    break;
                }
                if (paths.TryParse(args, ref i))
                {
                    continue;
                }
                switch (args[i])
                {
                    case "--assume-yes-for-ask":
                        mode |= EvaluationMode.AssumeYesForAsk;
                        break;
                    case "--just-evaluate":
                        mode |= EvaluationMode.JustEvaluate;
                        break;
                    case "-h" or "--help":
                        Console.WriteLine(Usage);
                        return 0;
                    default:
                        if (args[i].StartsWith('-'))
                        {
                            throw new ArgumentException($"unknown option '{args[i]}'");
                        }
                        positional.Add(args[i]);
                        break;
                }
            }
            if (positional.Count == 5)
            {
                positional = positional[1..4];
            }
            if (positional.Count != 3)
            {
                throw new ArgumentException("expected SOURCE TARGET SERVICE+ARG");
            }
        }
        catch (ArgumentException e)
        {
            Console.Error.WriteLine($"qrexec-policy-exec: {e.Message}");
            Console.Error.WriteLine(Usage);
            return 2;
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
