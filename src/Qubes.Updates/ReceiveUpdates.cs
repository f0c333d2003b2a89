using System;
using System.Collections.Generic;
using System.Globalization;
using System.IO;
using System.Text;
using Qubes.Core;
using Qubes.Interop.Linux;

namespace Qubes.Updates;

/// <summary>Where dom0 keeps received updates (spec rpc-services §1.1).</summary>
/// <param name="Updates">The updates root: <c>rpm/</c>, <c>repodata/</c> and <c>errors</c> are in it.</param>
/// <param name="StagingParent">Where the staging directory is made.</param>
/// <param name="CompsFile">The package-group file given to createrepo_c, when there is one.</param>
public sealed record UpdatePaths(string Updates, string StagingParent, string? CompsFile)
{
    /// <summary>A real dom0's updates root.</summary>
    public const string Dom0Updates = "/var/lib/qubes/updates";

    /// <summary>A real dom0's staging parent.</summary>
    public const string Dom0Staging = "/var/tmp";

    /// <summary>Qubes' package groups, indexed with the packages when installed.</summary>
    public const string Dom0CompsFile = "/usr/share/qubes/Qubes-comps.xml";

    /// <summary>The accepted packages.</summary>
    public string Rpm => Path.Combine(Updates, "rpm");

    /// <summary>createrepo_c's metadata.</summary>
    public string Repodata => Path.Combine(Updates, "repodata");

    /// <summary>Why the last transfer was refused.</summary>
    public string ErrorLog => Path.Combine(Updates, "errors");

    /// <summary>
    /// The paths of this system: a loopback system's (<paramref name="stateDirectory"/>, its
    /// <see cref="SystemLayout.Dom0Updates"/>) or a real dom0's; staging in
    /// <paramref name="temporaryDirectory"/> (<c>TMPDIR</c>) when given, else /var/tmp.
    /// </summary>
    public static UpdatePaths ForSystem(string? stateDirectory, string? temporaryDirectory)
        => new(
            stateDirectory != null ? new SystemLayout(stateDirectory).Dom0Updates : Dom0Updates,
            string.IsNullOrEmpty(temporaryDirectory) ? Dom0Staging : temporaryDirectory,
            File.Exists(Dom0CompsFile) ? Dom0CompsFile : null);
}

/// <summary>The programs the procedure runs.</summary>
/// <param name="Unpacker">qfile-dom0-unpacker.</param>
/// <param name="Canonicalizer">rpmcanon.</param>
/// <param name="RpmKeys">rpmkeys.</param>
/// <param name="CreateRepo">createrepo_c.</param>
/// <param name="RpmDatabase">The rpm database holding dom0's keys when it is not the host's (a loopback system): passed as <c>--dbpath</c>.</param>
public sealed record UpdateTools(string Unpacker, string Canonicalizer, string RpmKeys, string CreateRepo, string? RpmDatabase)
{
    /// <summary>The unpacker and rpmcanon in <paramref name="directory"/>, rpmkeys and createrepo_c of the system.</summary>
    public static UpdateTools Beside(string directory, string? rpmDatabase)
        => new(Path.Combine(directory, "qfile-dom0-unpacker"), Path.Combine(directory, "rpmcanon"), "/usr/bin/rpmkeys", "/usr/bin/createrepo_c", rpmDatabase);
}

/// <summary>
/// dom0's qubes.ReceiveUpdates (spec rpc-services §1.2): takes the packages the update qube
/// sends as a file-copy stream, keeps only those that are well-formed packages signed by a key
/// of dom0's rpm database, and indexes them for dom0's package manager. A refusal of any file
/// refuses the whole transfer: the error log says why and no package stays.
/// </summary>
public sealed class ReceiveUpdates(UpdatePaths paths, UpdateTools tools)
{
    /// <summary>The longest package name accepted: the pattern's 1 + 255 characters and ".rpm".</summary>
    public const int MaxNameLength = 260;

    private const string GroupName = "qubes";
    private const uint DirectoryMode = 0x1FD; // 0775
    private const uint GroupWritableUmask = 0x2;
    private const string StagingPrefix = "qubes-updates-tmp";
    private const string StagingSuffix = ".UNTRUSTED";
    private const string VerifiedSuffix = ": digests signatures OK\n";

    /// <summary>The group database, where the <c>qubes</c> group is looked up.</summary>
    public string GroupFile { get; init; } = "/etc/group";

    /// <summary>
    /// Runs the procedure for a transfer from <paramref name="sender"/> on <paramref name="input"/>
    /// (the unpacker's reply on <paramref name="output"/>), <paramref name="updateVm"/> being the
    /// only qube allowed to send. Messages go to <paramref name="errors"/>. Returns the exit status.
    /// </summary>
    public int Run(string? sender, string updateVm, int input, int output, TextWriter errors)
    {
        ArgumentNullException.ThrowIfNull(updateVm);
        ArgumentNullException.ThrowIfNull(errors);
        if (sender != updateVm)
        {
            errors.WriteLine($"Domain {sender ?? "None"} not allowed to send dom0 updates");
            return 1;
        }
        uint previousUmask = Libc.umask(GroupWritableUmask);
        try
        {
            return Receive(sender, input, output, errors);
        }
        finally
        {
            Libc.umask(previousUmask);
        }
    }

    private int Receive(string sender, int input, int output, TextWriter errors)
    {
        // a real dom0 has it from its packages; a loopback system makes it on first use
        Directory.CreateDirectory(paths.Updates);
        DirectoryTree.Remove(paths.Rpm);
        DirectoryTree.Remove(paths.Repodata);
        File.Delete(paths.ErrorLog);
        uint? group = FindGroup();
        if (Libc.mkdir(paths.Rpm, DirectoryMode) != 0)
        {
            errors.WriteLine($"{paths.Rpm}: mkdir: {Describe(LastError.Get())}");
            return 1;
        }
        if (SetGroupAndMode(paths.Rpm, group) is string rpmFailure)
        {
            errors.WriteLine(rpmFailure);
            return 1;
        }
        string? failure;
        string? staging = null;
        try
        {
            failure = CreateStaging(out staging) ?? ReceiveInto(staging!, sender, input, output);
        }
        catch (IOException e)
        {
            failure = e.Message;
        }
        catch (UnauthorizedAccessException e)
        {
            failure = e.Message;
        }
        finally
        {
            if (staging != null)
            {
                DirectoryTree.Remove(staging);
            }
        }
        if (failure != null)
        {
            errors.WriteLine(failure);
            File.AppendAllText(paths.ErrorLog, failure + "\n");
            DirectoryTree.Remove(paths.Rpm);
            return 1;
        }
        List<string> createRepo = ["createrepo_c"];
        if (paths.CompsFile != null)
        {
            createRepo.AddRange(["-g", paths.CompsFile]);
        }
        createRepo.AddRange(["-q", paths.Updates]);
        if (RunTool(tools.CreateRepo, createRepo, Spawner.CurrentEnvironment(), input: -1, output: 2, workingDirectory: null) is string indexFailure)
        {
            errors.WriteLine(indexFailure);
            return 1;
        }
        if (SetGroupAndMode(paths.Repodata, group) is string repodataFailure)
        {
            errors.WriteLine(repodataFailure);
            return 1;
        }
        return 0;
    }

    /// <summary>Steps 4 and 5: the transfer into <paramref name="staging"/>, then each file checked, canonicalised and verified. Returns the first failure.</summary>
    private string? ReceiveInto(string staging, string sender, int input, int output)
    {
        string uid = Libc.getuid().ToString(CultureInfo.InvariantCulture);
        if (RunTool(tools.Unpacker, [tools.Unpacker, uid, staging, "--only-regular-files"], Spawner.CurrentEnvironment(), input, output, workingDirectory: null) is string unpackFailure)
        {
            return unpackFailure;
        }
        foreach (string entry in Directory.EnumerateFileSystemEntries(staging))
        {
            string name = Path.GetFileName(entry);
            if (!IsPackageName(name))
            {
                return $"Domain {sender} sent unexpected file";
            }
            // implied by the name check; kept in case that check is ever loosened
            if (name.AsSpan().IndexOfAny('/', '\0', '\x1b') >= 0)
            {
                return $"Domain {sender} sent unexpected file";
            }
            string staged = Path.Combine(staging, name);
            string package = Path.Combine(paths.Rpm, name);
            if (!FileStatus.TryLstat(staged, out uint mode, out _, out Errno error))
            {
                return $"{staged}: {Describe(error)}";
            }
            if (!FileStatus.IsRegular(mode))
            {
                return $"Domain {sender} sent not regular file";
            }
            if (RunTool(tools.Canonicalizer, ["rpmcanon", "--allow-old-pkgs", "--", staged, package], Spawner.CurrentEnvironment(), -1, 2, null) != null)
            {
                return $"Error canonicalizing {staged}";
            }
            File.Delete(staged);
            if (Verify(name, package, sender) is string verifyFailure)
            {
                return verifyFailure;
            }
        }
        return null;
    }

    /// <summary>Step 5.5: rpmkeys in a clean environment, its output compared byte for byte.</summary>
    private string? Verify(string name, string package, string sender)
    {
        List<string> argv = ["rpmkeys", "-K", "--define=_pkgverify_level all", "--define=_pkgverify_flags 0x0"];
        if (tools.RpmDatabase != null)
        {
            argv.AddRange(["--dbpath", tools.RpmDatabase]);
        }
        argv.AddRange(["--", package]);
        (SafeFd read, SafeFd write) = Fd.Pipe();
        byte[] stdout;
        int status;
        using (read)
        {
            SpawnedProcess? process;
            Errno error;
            using (write)
            {
                // rpmkeys' output is localised: only LC_ALL=C gives the line compared below
                process = Spawner.Start(tools.RpmKeys, argv, ["LC_ALL=C"], -1, write.Fd, 2, "/", out error);
            }
            if (process == null)
            {
                return $"{tools.RpmKeys}: {Describe(error)}";
            }
            using (process)
            {
                stdout = Fd.ReadToEnd(read.Fd);
                process.WaitUntil(-1);
                status = process.ExitCode ?? 1;
            }
        }
        if (status != 0)
        {
            return $"Error while verifying {name} signature: {PythonBytes(stdout)}";
        }
        byte[] expected = Encoding.UTF8.GetBytes(package + VerifiedSuffix);
        return stdout.AsSpan().SequenceEqual(expected) ? null : $"Domain {sender} sent not signed rpm: {name}";
    }

    /// <summary>
    /// Whether <paramref name="name"/> matches <c>\A[A-Za-z0-9][A-Za-z0-9._+^~-]{0,255}\.rpm\z</c>:
    /// written out, since the middle class takes '.' and the pattern thereby only asks for the
    /// ".rpm" ending after a first character and at most 255 more.
    /// </summary>
    public static bool IsPackageName(string name)
    {
        ArgumentNullException.ThrowIfNull(name);
        if (name.Length is < 5 or > MaxNameLength || !name.EndsWith(".rpm", StringComparison.Ordinal) || !char.IsAsciiLetterOrDigit(name[0]))
        {
            return false;
        }
        foreach (char c in name.AsSpan(1, name.Length - 5))
        {
            if (!char.IsAsciiLetterOrDigit(c) && c is not ('.' or '_' or '+' or '^' or '~' or '-'))
            {
                return false;
            }
        }
        return true;
    }

    /// <summary>Runs a tool to its end; null when it exited with 0, else the failure as upstream's check_call words it.</summary>
    private static string? RunTool(string path, List<string> argv, IReadOnlyList<string> environment, int input, int output, string? workingDirectory)
    {
        using SpawnedProcess? process = Spawner.Start(path, argv, environment, input, output, 2, workingDirectory, out Errno error);
        if (process == null)
        {
            return $"{path}: {Describe(error)}";
        }
        process.WaitUntil(-1);
        if (process.ExitCode == 0)
        {
            return null;
        }
        string command = "[" + string.Join(", ", argv.ConvertAll(static a => "'" + a.Replace("\\", "\\\\", StringComparison.Ordinal).Replace("'", "\\'", StringComparison.Ordinal) + "'")) + "]";
        return process.TermSignal != 0
            ? $"Command '{command}' died with signal {process.TermSignal}."
            : $"Command '{command}' returned non-zero exit status {process.ExitCode}.";
    }

    /// <summary>Makes the staging directory (mode 0700, a fresh random name). Returns the failure, if any.</summary>
    private string? CreateStaging(out string? staging)
    {
        const string Alphabet = "abcdefghijklmnopqrstuvwxyz0123456789_";
        Span<char> random = stackalloc char[8];
        for (int attempt = 0; attempt < 100; attempt++)
        {
            System.Security.Cryptography.RandomNumberGenerator.GetItems(Alphabet, random);
            string candidate = Path.Combine(paths.StagingParent, StagingPrefix + new string(random) + StagingSuffix);
            if (Libc.mkdir(candidate, 0x1C0) == 0)
            {
                staging = candidate;
                return null;
            }
            Errno error = LastError.Get();
            if (error != Errno.EEXIST)
            {
                staging = null;
                return $"{candidate}: mkdir: {Describe(error)}";
            }
        }
        staging = null;
        return $"{paths.StagingParent}: no unused temporary name";
    }

    /// <summary>The <c>qubes</c> group's id, when the system has that group (a loopback system has not).</summary>
    private uint? FindGroup()
    {
        if (!File.Exists(GroupFile))
        {
            return null;
        }
        foreach (string line in File.ReadLines(GroupFile))
        {
            string[] fields = line.Split(':');
            if (fields.Length >= 3 && fields[0] == GroupName && uint.TryParse(fields[2], NumberStyles.None, CultureInfo.InvariantCulture, out uint gid))
            {
                return gid;
            }
        }
        return null;
    }

    /// <summary>Group <paramref name="group"/> (when there is one) and mode 0775 on the directory <paramref name="path"/>; the failure, if any.</summary>
    private static string? SetGroupAndMode(string path, uint? group)
    {
        int fd = Libc.open(path, Libc.O_RDONLY | Libc.O_DIRECTORY | Libc.O_NOFOLLOW | Libc.O_CLOEXEC, 0);
        if (fd < 0)
        {
            return $"{path}: {Describe(LastError.Get())}";
        }
        try
        {
            if (group is uint gid && Libc.fchown(fd, uint.MaxValue, gid) != 0)
            {
                return $"{path}: chown: {Describe(LastError.Get())}";
            }
            return Libc.fchmod(fd, DirectoryMode) != 0 ? $"{path}: chmod: {Describe(LastError.Get())}" : null;
        }
        finally
        {
            Libc.close(fd);
        }
    }

    /// <summary>Bytes as Python writes a bytes object (upstream puts rpmkeys' output into its message that way).</summary>
    internal static string PythonBytes(ReadOnlySpan<byte> bytes)
    {
        char quote = bytes.Contains((byte)'\'') && !bytes.Contains((byte)'"') ? '"' : '\'';
        StringBuilder text = new("b");
        text.Append(quote);
        foreach (byte b in bytes)
        {
            switch (b)
            {
                case (byte)'\\':
                    text.Append(@"\\");
                    break;
                case (byte)'\t':
                    text.Append(@"\t");
                    break;
                case (byte)'\n':
                    text.Append(@"\n");
                    break;
                case (byte)'\r':
                    text.Append(@"\r");
                    break;
                default:
                    if (b == quote)
                    {
                        text.Append('\\').Append(quote);
                    }
                    else if (b is < 0x20 or >= 0x7F)
                    {
                        text.Append(CultureInfo.InvariantCulture, $"\\x{b:x2}");
                    }
                    else
                    {
                        text.Append((char)b);
                    }
                    break;
            }
        }
        return text.Append(quote).ToString();
    }

    private static string Describe(Errno error) => System.Runtime.InteropServices.Marshal.GetPInvokeErrorMessage((int)error);
}
