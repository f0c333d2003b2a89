using System;
using System.IO;
using Qubes.Interop.Linux;

namespace Qubes.Tools.PolicyAllowlist;

/// <summary>
/// qrexec-policy-allowlist: a first-match allow list in the place of the qrexec policy.
///   qrexec-policy-allowlist [--rules FILE] -- SOURCE TARGET SVC+ARG   answer one call on stdout (the policy program)
///   qrexec-policy-allowlist [--rules FILE] --socket PATH              serve the policy socket protocol
/// The rules file comes from --rules or the QREXEC_ALLOWLIST environment variable. Exit status:
/// 0 answered (allow or deny), 1 rules file missing or invalid (or the socket cannot be set up),
/// 2 bad usage.
/// </summary>
internal static class Program
{
    private const string Usage =
        "usage: qrexec-policy-allowlist [--rules FILE] -- SOURCE TARGET SVC+ARG\n" +
        "       qrexec-policy-allowlist [--rules FILE] --socket PATH\n" +
        "rules: FILE, or $QREXEC_ALLOWLIST; lines 'SERVICE SOURCE TARGET allow|deny [target=NAME] [user=NAME]'";

    private static int Main(string[] args)
    {
        string? rulesPath = null;
        string? socketPath = null;
        string[]? call = null;
        for (int i = 0; i < args.Length; i++)
        {
            switch (args[i])
            {
                case "--rules" when i + 1 < args.Length:
                    rulesPath = args[++i];
                    break;
                case "--socket" when i + 1 < args.Length:
                    socketPath = args[++i];
                    break;
                case "--":
                    call = args[(i + 1)..];
                    i = args.Length;
                    break;
                default:
                    return UsageError($"unexpected argument '{args[i]}'");
            }
        }
        if ((call is null) == (socketPath is null))
        {
            return UsageError("give either -- SOURCE TARGET SVC+ARG or --socket PATH");
        }
        if (call is not null && call.Length != 3)
        {
            return UsageError("expected SOURCE TARGET SVC+ARG after --");
        }
        rulesPath ??= Environment.GetEnvironmentVariable("QREXEC_ALLOWLIST");
        if (string.IsNullOrEmpty(rulesPath))
        {
            return UsageError("no rules file (--rules FILE or QREXEC_ALLOWLIST)");
        }

        if (call is not null)
        {
            AllowList? rules = AllowList.Load(rulesPath, out string? error);
            if (rules is null)
            {
                Console.Error.WriteLine($"qrexec-policy-allowlist: {error}");
                return 1;
            }
            byte[] answer = rules.Answer(call[0], call[1], call[2]);
            using Stream stdout = Console.OpenStandardOutput();
            stdout.Write(answer);
            return 0;
        }

        var server = new PolicyServer(rulesPath);
        if (server.Start() is not null)
        {
            return 1;
        }
        try
        {
            server.Run(socketPath!);
        }
        catch (Exception e) when (e is LinuxException or ArgumentException or IOException or UnauthorizedAccessException)
        {
            Console.Error.WriteLine($"qrexec-policy-allowlist: {e.Message}");
            return 1;
        }
        return 0;
    }

    private static int UsageError(string message)
    {
        Console.Error.WriteLine($"qrexec-policy-allowlist: {message}");
        Console.Error.WriteLine(Usage);
        return 2;
    }
}
