using System;
using System.Diagnostics;
using System.IO;
using System.Linq;
using System.Threading.Tasks;
using Xunit;
using Qubes.Tests;

namespace Qubes.Core.Tests;

/// <summary>
/// A whole system on the loopback hypervisor for the system tests: <c>qubes up</c> in a temporary
/// state directory (the default qubes), the tools run against it as dom0, down and deleted at the end.
/// </summary>
public sealed class LoopbackSystem : IDisposable
{
    /// <param name="name">Part of the state directory's name.</param>
    /// <param name="shell">How <c>qubes up</c> is started: a shell command prefix (<c>{qubes}</c> stands for the front command), or null to start it directly.</param>
    public LoopbackSystem(string name, string? shell = null)
    {
        Root = TestRepository.Root;
        Bin = TestRepository.NativeBin;
        State = Path.Combine(Path.GetTempPath(), $"qubes-{name}-{Environment.ProcessId}");
        (int status, string output) = shell is null
            ? Tool("qubes", "up")
            : Exec("sh", null, "-c", shell.Replace("{qubes}", $"'{Path.Combine(Bin, "qubes")}'", StringComparison.Ordinal) + " up");
        Assert.True(status == 0, output);
    }

    /// <summary>The checkout.</summary>
    public string Root { get; }

    /// <summary>Where the tools were built: the native executables, which <c>./qubes build</c> makes.</summary>
    public string Bin { get; }

    /// <summary>The state directory.</summary>
    public string State { get; }

    /// <summary>Runs a tool of the system as dom0 (QUBES_STATE_DIR set).</summary>
    public (int Status, string Output) Tool(string tool, params string[] args) => Exec(Path.Combine(Bin, tool), null, args);

    /// <summary>The same, with <paramref name="input"/> on its standard input.</summary>
    public (int Status, string Output) ToolWithInput(string? input, string tool, params string[] args) => Exec(Path.Combine(Bin, tool), input, args);

    /// <summary>A shell command in a qube (qvm-run --pass-io), as its user.</summary>
    public (int Status, string Output) Run(string qube, string command, string? input = null) => ToolWithInput(input, "qvm-run", "-p", qube, command);

    /// <summary>A shell command in a qube as its root.</summary>
    public (int Status, string Output) RunAsRoot(string qube, string command, string? input = null) => ToolWithInput(input, "qvm-run", "-u", "root", "-p", qube, command);

    /// <summary>A program on the host (as host root, outside any qube), with QUBES_STATE_DIR set; its status, and its output followed by its errors.</summary>
    public (int Status, string Output) Exec(string file, string? input, params string[] args)
    {
        ProcessStartInfo psi = new(file, args) { RedirectStandardInput = true, RedirectStandardOutput = true, RedirectStandardError = true };
        psi.Environment["QUBES_STATE_DIR"] = State;
        using Process p = Process.Start(psi)!;
        p.StandardInput.Write(input ?? string.Empty);
        p.StandardInput.Close();
        Task<string> error = p.StandardError.ReadToEndAsync();
        string output = p.StandardOutput.ReadToEnd();
        Assert.True(p.WaitForExit(180_000), $"{file} {string.Join(' ', args)} did not finish");
        return (p.ExitCode, output + error.Result);
    }

    /// <summary>A qube's power state as qvm-ls shows it.</summary>
    public string PowerState(string qube)
        => Tool("qvm-ls", "--raw-data", "--fields", "name,state").Output.Split('\n').Select(static l => l.Split('|')).First(f => f[0] == qube)[1];

    /// <summary>Polls <paramref name="condition"/> every 100 ms until it holds (true) or the time is up (false).</summary>
    public static bool Eventually(Func<bool> condition, int timeoutMs)
    {
        Stopwatch clock = Stopwatch.StartNew();
        while (!condition())
        {
            if (clock.ElapsedMilliseconds > timeoutMs)
            {
                return false;
            }
            System.Threading.Thread.Sleep(100);
        }
        return true;
    }

    /// <summary>The pid of one of the system's dom0 daemons.</summary>
    public string Pid(string daemon) => File.ReadAllText(Path.Combine(State, "run", daemon + ".pid")).Trim();

    public void Dispose()
    {
        Tool("qubes", "down");
        Exec("rm", null, "-rf", "--one-file-system", State);
    }
}
