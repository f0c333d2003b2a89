using System;
using System.Collections.Generic;
using System.Globalization;
using System.IO;

namespace Qubes.Qrexec.Policy;

/// <summary>What the user is asked for an <c>ask</c> rule (spec qrexec-policy §10.2).</summary>
/// <param name="Source">The calling qube.</param>
/// <param name="Service">The service.</param>
/// <param name="Argument">Its argument, with the leading <c>+</c> (<c>+</c> alone: none).</param>
/// <param name="Targets">The targets that may be chosen.</param>
/// <param name="DefaultTarget">The one to preselect, or null.</param>
public sealed record AskRequest(string Source, string Service, string Argument, IReadOnlyList<string> Targets, string? DefaultTarget);

/// <summary>A trusted prompt in dom0 that asks the user about a call.</summary>
public interface IAskPrompt
{
    /// <summary>The target the user chose, or null when the user refused (or could not be asked).</summary>
    string? Ask(AskRequest request);
}

/// <summary>
/// Asks on a terminal: lists the allowed targets, numbered, the default marked and taken on an
/// empty answer. A number or a name chooses; <c>n</c>, <c>no</c> or the end of input refuses; three
/// answers that are none of these refuse too.
/// </summary>
public sealed class TerminalPrompt(TextReader input, TextWriter output) : IAskPrompt
{
    private const int Attempts = 3;

    /// <summary>A prompt on the terminal <paramref name="device"/>; throws <see cref="IOException"/> when it cannot be opened.</summary>
    public static TerminalPrompt Open(string device)
    {
        FileStream tty = new(device, FileMode.Open, FileAccess.ReadWrite);
        return new TerminalPrompt(new StreamReader(tty), new StreamWriter(tty) { AutoFlush = true });
    }

    /// <summary>A prompt on the controlling terminal, or null when the process has none.</summary>
    public static TerminalPrompt? OpenTty()
    {
        try
        {
            return Open("/dev/tty");
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            return null;
        }
    }

    /// <inheritdoc/>
    public string? Ask(AskRequest request)
    {
        ArgumentNullException.ThrowIfNull(request);
        string argument = request.Argument.Length > 1 ? $" with argument '{request.Argument[1..]}'" : string.Empty;
        output.WriteLine($"qrexec: {request.Source} asks to call {request.Service}{argument}. Allowed targets:");
        int preselected = -1;
        for (int i = 0; i < request.Targets.Count; i++)
        {
            bool isDefault = request.Targets[i] == request.DefaultTarget;
            if (isDefault)
            {
                preselected = i;
            }
            output.WriteLine(string.Create(CultureInfo.InvariantCulture, $"  {(isDefault ? '*' : ' ')}{i + 1,3}) {request.Targets[i]}"));
        }
        for (int attempt = 0; attempt < Attempts; attempt++)
        {
            output.Write(preselected >= 0
                ? $"Target number or name [{request.Targets[preselected]}], or n to deny: "
                : "Target number or name, or n to deny: ");
            string? answer = input.ReadLine()?.Trim();
            if (answer == null || answer is "n" or "N" or "no")
            {
                output.WriteLine(answer == null ? "denied (no answer)" : "denied");
                return null;
            }
            if (answer.Length == 0 && preselected >= 0)
            {
                return request.Targets[preselected];
            }
            if (int.TryParse(answer, NumberStyles.None, CultureInfo.InvariantCulture, out int number) && number >= 1 && number <= request.Targets.Count)
            {
                return request.Targets[number - 1];
            }
            foreach (string target in request.Targets)
            {
                if (target == answer)
                {
                    return target;
                }
            }
            output.WriteLine($"'{answer}' is not one of the targets");
        }
        output.WriteLine("denied");
        return null;
    }
}
