using System;
using System.Collections.Generic;
using System.Globalization;
using System.IO;
using Qubes.Cli;
using Qubes.FileCopy;
using Qubes.Interop.Linux;
using Qubes.Qrexec.Runtime;

namespace Qubes.Tools.QfileUnpacker;

/// <summary>
/// qfile-unpacker: the receiving end of <c>qubes.Filecopy</c> in a qube (spec filecopy §8.5, §9).
/// Reads a transfer on standard input, writes the reply on standard output, and creates what it
/// receives in <c>~/QubesIncoming/SOURCE</c> (the source from <c>QREXEC_REMOTE_DOMAIN</c>) or in DIR.
/// <para>
/// Every name is created relative to a descriptor of that directory, one component at a time and
/// never through a link (<see cref="Unpacker"/>): that is what confines the transfer, where
/// upstream's also changes its root to the directory. Started as root, it takes on the user's
/// groups, group and file-system uid before it makes the directories, and the user's uid for good
/// before it reads anything. Upstream's nodev/noexec/nosuid bind mount for the duration is not
/// made: a qube's services cannot mount (the sandbox refuses every mount call), the receiver makes
/// no device node, and set-id bits mean nothing in a qube, whose processes all run with
/// no_new_privs.
/// </para>
/// </summary>
internal static class Program
{
    private const string IncomingDirectoryName = "QubesIncoming";

    internal static Command Command { get; } = new("qfile-unpacker", HelpStyle.Getopt,
        Command.GetoptHelp,
        new Option("accept every name the stream carries that is a valid path, not only those safe to display", "--allow-all-names"),
        new Option("accept only names safe to display (the default)", "--no-allow-all-names"),
        new Option("accept links whatever their target", "--allow-unsafe-symlinks"),
        new Option("accept only links that stay inside their top-level directory (the default)", "--no-allow-unsafe-symlinks"),
        new Option("print the name of each file received on standard error", "-v", "--verbose"),
        new Option("before each file, wait until its file system has room for it and BYTES more", "-w", "--wait-for-space") { Metavar = "BYTES" })
    {
        Synopsis = "qfile-unpacker [--allow-all-names|--no-allow-all-names] [--allow-unsafe-symlinks|--no-allow-unsafe-symlinks] [-v|--verbose] [-w|--wait-for-space BYTES] [UID [DIR]]",
        UsageStatus = 1,
    };

    /// <summary>dom0's default limits (spec filecopy §9): 4 GiB and 4096 files.</summary>
    private const ulong Dom0BytesLimit = 4UL << 30;
    private const ulong Dom0FilesLimit = 4096;

    internal static int Main(string[] args)
    {
        string name = Command.InvokedName();
        return Command.Run(Console.Out, Console.Error, () =>
        {
            try
            {
                return name == "qfile-dom0-unpacker" ? RunDom0(args) : Run(args);
            }
            catch (FatalError e)
            {
                return e.Report(name, Console.Error);
            }
        });
    }

    /// <summary>
    /// qfile-dom0-unpacker USER|UID DIR [-v] [-w [BYTES]] [--only-regular-files]: dom0's receiver
    /// of a qube's files (the updates): strict names and links, at most 4 GiB (or 90 % of the free
    /// space, if less) and 4096 files unless UPDATES_MAX_BYTES / UPDATES_MAX_FILES say otherwise.
    /// </summary>
    private static int RunDom0(string[] args)
    {
        if (args.Length < 2)
        {
            Console.Error.WriteLine("Invalid parameters, usage: qfile-dom0-unpacker user dir [-v] [-w space] [--only-regular-files]");
            return 1;
        }
        UserAccount account = UserAccount.Find(args[0]) ?? UserAccount.FindByUid((uint)LeadingInteger(args[0]))
            ?? throw new FatalError($"getpwuid: no user {args[0]}", Errno.ENOENT) { Plain = true };
        EntryTypes types = EntryTypes.All;
        (bool verbose, ulong waitForSpace) = TrailingOptions(args,
            static margin => margin.Length > 0 && char.IsAsciiDigit(margin[0]) && TryParseCInteger(margin, out ulong m)
                ? m : throw new FatalError($"Invalid value for -w option: {margin}", Errno.EINVAL) { Plain = true },
            option =>
            {
                if (option != "--only-regular-files")
                {
                    return false;
                }
                types = EntryTypes.RegularFiles;
                return true;
            });
        uint caller = Libc.getuid();
        bool root = Libc.geteuid() == 0;
        if (root)
        {
            SwitchGroupsAndFileSystemUser(account);
        }
        else if (account.Uid != caller)
        {
            throw new FatalError("setuid", Errno.EPERM);
        }
        string directory = args[1];
        Libc.mkdir(directory, 0x1C0);
        int target = Libc.open(directory, Libc.O_RDONLY | Libc.O_DIRECTORY | Libc.O_CLOEXEC, 0);
        if (target < 0)
        {
            throw new FatalError($"Error chdir to {directory}", LastError.Get()) { Plain = true };
        }
        if (root && Libc.setresuid(account.Uid, account.Uid, account.Uid) != 0)
        {
            throw new FatalError("setuid");
        }
        ulong bytesLimit = Dom0BytesLimit;
        if (Libc.fstatvfs(target, out Libc.statvfs fs) == 0)
        {
            // a margin: 90 % of the free space
            bytesLimit = Math.Min((ulong)(fs.f_bfree * (double)fs.f_bsize * 0.90), Dom0BytesLimit);
        }
        else
        {
            Console.Error.WriteLine($"Failed to check free space: {FatalError.ErrorText(LastError.Get())}");
        }
        ulong filesLimit = Dom0FilesLimit;
        if (Environment.GetEnvironmentVariable("UPDATES_MAX_BYTES") is { } maxBytes)
        {
            bytesLimit = (ulong)LeadingInteger(maxBytes);
        }
        if (Environment.GetEnvironmentVariable("UPDATES_MAX_FILES") is { } maxFiles)
        {
            filesLimit = (ulong)LeadingInteger(maxFiles);
        }
        return Unpack(target, new UnpackOptions(types, NameRules.Strict, bytesLimit, filesLimit, waitForSpace, verbose));
    }

    /// <summary>
    /// The options after <c>USER DIR</c> of the older command lines: <c>-v</c>, <c>-w [BYTES]</c>
    /// (alone: 1 byte, the margin read by <paramref name="space"/>), and whatever
    /// <paramref name="other"/> takes (true); anything else is refused.
    /// </summary>
    private static (bool Verbose, ulong WaitForSpace) TrailingOptions(string[] args, Func<string, ulong> space, Func<string, bool> other)
    {
        bool verbose = false;
        ulong waitForSpace = 0;
        for (int i = 2; i < args.Length; i++)
        {
            switch (args[i])
            {
                case "-v":
                    verbose = true;
                    break;
                case "-w" when i + 1 < args.Length && !args[i + 1].StartsWith('-'):
                    waitForSpace = space(args[++i]);
                    break;
                case "-w":
                    waitForSpace = 1;
                    break;
                default:
                    if (!other(args[i]))
                    {
                        throw new FatalError($"Invalid option {args[i]}", Errno.EINVAL) { Plain = true };
                    }
                    break;
            }
        }
        return (verbose, waitForSpace);
    }

    /// <summary>The integer at the start of <paramref name="text"/> as C's atoll reads it (blanks, a sign, digits; 0 when there are none).</summary>
    private static long LeadingInteger(string text)
    {
        ReadOnlySpan<char> t = text.AsSpan().TrimStart();
        int end = t.Length > 0 && t[0] is '+' or '-' ? 1 : 0;
        while (end < t.Length && char.IsAsciiDigit(t[end]))
        {
            end++;
        }
        return long.TryParse(t[..end], NumberStyles.AllowLeadingSign, CultureInfo.InvariantCulture, out long value) ? value : 0;
    }

    /// <summary>An unsigned integer as C's strtoul with base 0 reads a whole word: decimal, 0x hexadecimal or 0 octal.</summary>
    private static bool TryParseCInteger(string text, out ulong value)
    {
        value = 0;
        if (text.StartsWith("0x", StringComparison.OrdinalIgnoreCase))
        {
            return text.Length > 2 && ulong.TryParse(text.AsSpan(2), NumberStyles.AllowHexSpecifier, CultureInfo.InvariantCulture, out value);
        }
        if (text.Length > 1 && text[0] == '0')
        {
            foreach (char c in text.AsSpan(1))
            {
                if (c is < '0' or > '7' || value > (ulong.MaxValue >> 3))
                {
                    return false;
                }
                value = (value << 3) + (uint)(c - '0');
            }
            return true;
        }
        return ulong.TryParse(text, NumberStyles.None, CultureInfo.InvariantCulture, out value);
    }

    private static int Run(string[] args)
    {
        uint caller = Libc.getuid();
        uint uid = caller;
        string? directory = null;
        NameRules rules = NameRules.AllowNonCanonicalSymlinks;
        bool verbose = false;
        ulong waitForSpace = 0;
        if (args.Length >= 2 && args[0].Length > 0 && char.IsAsciiDigit(args[0][0]))
        {
            // the older form: UID DIR [-v] [-w [BYTES]]
            uid = ParseUid(args[0]);
            directory = args[1];
            (verbose, waitForSpace) = TrailingOptions(args, ParseSpace, static _ => false);
        }
        else
        {
            List<Parsed> options = Command.ReadOptions(args, out int i);
            foreach (Parsed parsed in options)
            {
                Option option = parsed.Option ?? throw new UsageException($"unrecognized option '{parsed.Text}'");
                string full = option.Names[^1];
                // an abbreviation is refused, so that what a caller wrote means the same to every version
                string written = parsed.Text.Split('=')[0];
                if (written.StartsWith("--", StringComparison.Ordinal) && written != full)
                {
                    throw new FatalError($"Option {written} must be passed as {full}", Errno.EINVAL) { Plain = true };
                }
                switch (option.Name)
                {
                    case "--allow-all-names":
                        rules |= NameRules.AllowAllNames;
                        break;
                    case "--no-allow-all-names":
                        rules &= ~NameRules.AllowAllNames;
                        break;
                    case "--allow-unsafe-symlinks":
                        rules |= NameRules.AllowUnsafeSymlinks;
                        break;
                    case "--no-allow-unsafe-symlinks":
                        rules &= ~NameRules.AllowUnsafeSymlinks;
                        break;
                    case "-v":
                        verbose = true;
                        break;
                    case "-w":
                        waitForSpace = ParseSpace(parsed.Value!);
                        break;
                }
            }
            int operands = args.Length - i;
            if (operands > 2)
            {
                throw new FatalError($"Wrong number of non-option arguments (expected no more than 2, got {operands})", Errno.EINVAL) { Plain = true };
            }
            if (operands > 0 && args[i].Length > 0)
            {
                uid = ParseUid(args[i]);
            }
            if (operands == 2)
            {
                directory = args[i + 1];
            }
        }
        return UnpackInQube(caller, uid, directory, new UnpackOptions(EntryTypes.All, rules, WaitForSpace: waitForSpace, Verbose: verbose));
    }

    private static int UnpackInQube(uint caller, uint uid, string? directory, UnpackOptions options)
    {
        if (caller != 0 && caller != uid)
        {
            throw new FatalError("Refusing to change to UID other than the caller's UID", Errno.EPERM);
        }
        UserAccount account = UserAccount.FindByUid(uid) ?? throw new FatalError($"getpwuid: no user with the id {uid}", Errno.ENOENT);
        bool root = Libc.geteuid() == 0;
        if (root)
        {
            SwitchGroupsAndFileSystemUser(account);
        }
        if (directory == null)
        {
            string source = Environment.GetEnvironmentVariable("QREXEC_REMOTE_DOMAIN") ?? throw new FatalError("Cannot get remote domain name", Errno.None);
            if (source.Length == 0 || source is "." or ".." || source.Contains('/', StringComparison.Ordinal))
            {
                throw new FatalError($"Invalid remote domain name {FileCopyProtocol.SanitizeForDisplay(System.Text.Encoding.UTF8.GetBytes(source))}", Errno.EINVAL);
            }
            string incoming = Path.Combine(account.Home, IncomingDirectoryName);
            // mkdir failing is harmless: opening the directory below fails if it is not there
            Libc.mkdir(incoming, 0x1C0);
            directory = Path.Combine(incoming, source);
            Libc.mkdir(directory, 0x1C0);
        }
        int target = Libc.open(directory, Libc.O_RDONLY | Libc.O_DIRECTORY | Libc.O_CLOEXEC, 0);
        if (target < 0)
        {
            throw new FatalError($"Error chdir to {directory}");
        }
        if (root && Libc.setresuid(uid, uid, uid) != 0)
        {
            throw new FatalError("setuid");
        }
        return Unpack(target, options);
    }

    /// <summary>Receives the transfer on stdin into <paramref name="target"/>, the reply on stdout; the exit status is the reply's code (its low byte, as upstream's exit(code)).</summary>
    private static int Unpack(int target, UnpackOptions options)
    {
        int procFds = Libc.open("/proc/self/fd", Libc.O_RDONLY | Libc.O_DIRECTORY | Libc.O_NOCTTY | Libc.O_CLOEXEC, 0);
        if (procFds < 0)
        {
            Console.Error.WriteLine($"Failed to open /proc: {FatalError.ErrorText(LastError.Get())}");
        }
        using Unpacker unpacker = new(target, procFds, options);
        UnpackResult result = unpacker.Run(0, 1);
        if (result.Code == 0)
        {
            return 0;
        }
        // the sender learns from the closed input that nothing more is read
        Libc.close(0);
        return !result.Replied || (result.Code & 0xFF) == 0 ? 1 : (int)(result.Code & 0xFF);
    }

    /// <summary>Takes on the user's groups and group, and its uid for file access (the others follow once the directory is open).</summary>
    private static void SwitchGroupsAndFileSystemUser(UserAccount account)
    {
        uint[] groups = [.. account.Groups()];
        if (Libc.setgroups((nuint)groups.Length, groups) != 0)
        {
            throw new FatalError("Error initializing groups");
        }
        if (Libc.setresgid(account.Gid, account.Gid, account.Gid) != 0)
        {
            throw new FatalError("Error setting group permissions");
        }
        Libc.setfsuid(account.Uid);
        if ((uint)Libc.setfsuid(uint.MaxValue) != account.Uid)
        {
            throw new FatalError("Error setting filesystem level permissions");
        }
    }

    /// <summary>A user id as upstream takes it: "0", or decimal digits without a leading zero.</summary>
    private static uint ParseUid(string text)
    {
        if (text == "0")
        {
            return 0;
        }
        if (text.Length == 0 || text[0] is < '1' or > '9' || !uint.TryParse(text, NumberStyles.None, CultureInfo.InvariantCulture, out uint uid) || uid == uint.MaxValue)
        {
            throw new FatalError("Invalid user ID argument", Errno.EINVAL);
        }
        return uid;
    }

    private static ulong ParseSpace(string text)
    {
        if (text == "0")
        {
            return 0;
        }
        if (text.Length > 0 && text[0] is >= '1' and <= '9' && int.TryParse(text, NumberStyles.None, CultureInfo.InvariantCulture, out int bytes))
        {
            return (ulong)bytes;
        }
        throw new FatalError($"Space amount {text} is invalid or exceeds {int.MaxValue} bytes", Errno.EINVAL) { Plain = true };
    }
}
