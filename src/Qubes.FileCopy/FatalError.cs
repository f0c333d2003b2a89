using System;
using System.IO;
using Qubes.Interop.Linux;

namespace Qubes.FileCopy;

/// <summary>
/// What ends a file-copy tool (the sender, the receivers), printed as upstream's tools print it:
/// <c>PROGRAM: Fatal error: MESSAGE (error type: STRERROR)</c>, with the error number current when it
/// was raised; the tool exits with status 1.
/// </summary>
public sealed class FatalError : Exception
{
    /// <summary>A failure described by <paramref name="message"/>, with the calling thread's last error.</summary>
    public FatalError(string message)
        : this(message, LastError.Get())
    {
    }

    /// <summary>A failure described by <paramref name="message"/>, caused by <paramref name="error"/>.</summary>
    public FatalError(string message, Errno error)
        : base(message)
    {
        Error = error;
    }

    /// <summary>The error number printed after the message.</summary>
    public Errno Error { get; }

    /// <summary>Printed as <c>PROGRAM: MESSAGE</c> only (a command-line mistake, as upstream's errx reports it).</summary>
    public bool Plain { get; init; }

    /// <summary>Prints the failure of <paramref name="program"/> to <paramref name="stderr"/> and returns the exit status, 1.</summary>
    public int Report(string program, TextWriter stderr)
    {
        ArgumentNullException.ThrowIfNull(stderr);
        stderr.WriteLine(Plain ? $"{program}: {Message}" : $"{program}: Fatal error: {Message} (error type: {ErrorText(Error)})");
        return 1;
    }

    /// <summary>strerror's text for <paramref name="error"/> (<c>Success</c> for none).</summary>
    public static string ErrorText(Errno error)
        => error == Errno.None ? "Success" : System.Runtime.InteropServices.Marshal.GetPInvokeErrorMessage((int)error);
}
