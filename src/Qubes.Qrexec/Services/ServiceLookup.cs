using System;
using System.Diagnostics.CodeAnalysis;
using System.IO;
using System.Net;
using System.Net.Sockets;

namespace Qubes.Qrexec.Services;

/// <summary>
/// Finds the file that implements a service (spec §9.2) and tells what kind of service it is (§9.3).
/// </summary>
public static class ServiceLookup
{
    /// <summary>Link text that marks a TCP service.</summary>
    public const string TcpLinkPrefix = "/dev/tcp";

    private const int MaxPort = 65535;
    private const int MaxPortDigits = 5;

    /// <summary>
    /// Looks for <paramref name="lookupName"/> (<c>svc+arg</c>) in every directory of
    /// <paramref name="servicePath"/>, then for <paramref name="serviceName"/> (<c>svc</c>), and
    /// classifies the first entry found. A dangling symbolic link counts as absent.
    /// </summary>
    /// <param name="lookupName">The normalised descriptor, <c>svc+arg</c> or <c>svc+</c>; the argument is the text after its first '+'.</param>
    /// <param name="serviceName">The service name without argument.</param>
    /// <param name="servicePath">Colon-separated directories (<c>$QREXEC_SERVICE_PATH</c>); null for <see cref="QrexecProtocol.DefaultServicePath"/>.</param>
    public static ServiceLocation Find(string lookupName, string serviceName, string? servicePath)
    {
        int plus = lookupName.IndexOf('+', StringComparison.Ordinal);
        string argument = plus < 0 ? string.Empty : lookupName[(plus + 1)..];
        return FileSearch.Search(
            servicePath ?? QrexecProtocol.DefaultServicePath,
            lookupName,
            serviceName,
            candidate => Probe(candidate, argument),
            error => ServiceLocation.Failure(null, error)) ?? ServiceLocation.NotFound;
    }

    /// <summary>
    /// Parses the target of a <c>/dev/tcp</c> link with the service argument (spec §9.3):
    /// <c>/dev/tcp/HOST/PORT</c> (argument must be empty), <c>/dev/tcp/HOST</c> (argument is the port),
    /// or <c>/dev/tcp</c> (argument is <c>HOST+PORT</c>, split at the last '+'; '+' in HOST stands for ':'
    /// and '_' is refused). HOST must be a numeric address; PORT decimal 1…65535 without leading zeros.
    /// </summary>
    public static bool TryParseTcpTarget(
        string linkTarget,
        string argument,
        [NotNullWhen(true)] out string? host,
        out int port,
        [NotNullWhen(false)] out string? error)
    {
        host = null;
        port = 0;
        if (!IsTcpLink(linkTarget))
        {
            error = $"link target is not {TcpLinkPrefix}: {linkTarget}";
            return false;
        }

        string hostText;
        string portText;
        if (linkTarget.Length == TcpLinkPrefix.Length)
        {
            int lastPlus = argument.LastIndexOf('+');
            if (lastPlus < 0)
            {
                error = "service argument must be HOST+PORT for a link to /dev/tcp";
                return false;
            }
            hostText = argument[..lastPlus];
            portText = argument[(lastPlus + 1)..];
            if (hostText.Contains('_', StringComparison.Ordinal))
            {
                error = "'_' in the host of the service argument";
                return false;
            }
            hostText = hostText.Replace('+', ':');
        }
        else
        {
            string rest = linkTarget[(TcpLinkPrefix.Length + 1)..];
            int slash = rest.IndexOf('/', StringComparison.Ordinal);
            if (slash >= 0)
            {
                if (argument.Length != 0)
                {
                    error = "service argument must be empty for a link to /dev/tcp/HOST/PORT";
                    return false;
                }
                hostText = rest[..slash];
                portText = rest[(slash + 1)..];
            }
            else
            {
                if (argument.Length == 0)
                {
                    error = "service argument (the port) must not be empty for a link to /dev/tcp/HOST";
                    return false;
                }
                hostText = rest;
                portText = argument;
            }
        }

        if (hostText.Length == 0)
        {
            error = "empty host";
            return false;
        }
        if (!IsNumericAddress(hostText))
        {
            error = $"host is not a numeric address: {hostText}";
            return false;
        }
        if (!TryParsePort(portText, out port))
        {
            error = $"invalid port: {portText}";
            return false;
        }
        host = hostText;
        error = null;
        return true;
    }

    private static bool IsTcpLink(string linkTarget) =>
        linkTarget.StartsWith(TcpLinkPrefix, StringComparison.Ordinal)
        && (linkTarget.Length == TcpLinkPrefix.Length || linkTarget[TcpLinkPrefix.Length] == '/');

    private static ServiceLocation? Probe(string candidate, string argument)
    {
        int errno = FileStatus.GetMode(candidate, followLinks: false, out int mode);
        if (errno == Interop.Libc.ErrorNoEntry)
        {
            return null;
        }
        if (errno != 0)
        {
            return ServiceLocation.Failure(candidate, $"cannot stat {candidate}: {FileStatus.Describe(errno)}");
        }

        if (FileStatus.FileType(mode) == Interop.Libc.FileTypeSymbolicLink)
        {
            string? linkTarget;
            try
            {
                linkTarget = new FileInfo(candidate).LinkTarget;
            }
            catch (Exception e) when (e is IOException or UnauthorizedAccessException)
            {
                return ServiceLocation.Failure(candidate, $"cannot read link {candidate}: {e.Message}");
            }
            if (linkTarget is not null && IsTcpLink(linkTarget))
            {
                return TryParseTcpTarget(linkTarget, argument, out string? host, out int port, out string? tcpError)
                    ? ServiceLocation.Tcp(candidate, host, port)
                    : ServiceLocation.Failure(candidate, $"{candidate}: {tcpError}");
            }

            errno = FileStatus.GetMode(candidate, followLinks: true, out mode);
            if (errno == Interop.Libc.ErrorNoEntry)
            {
                return null;
            }
            if (errno != 0)
            {
                return ServiceLocation.Failure(candidate, $"cannot stat {candidate}: {FileStatus.Describe(errno)}");
            }
        }

        int type = FileStatus.FileType(mode);
        if (type == Interop.Libc.FileTypeSocket)
        {
            return ServiceLocation.Socket(candidate);
        }
        if (type == Interop.Libc.FileTypeDirectory)
        {
            return ServiceLocation.Failure(candidate, $"{candidate} is a directory");
        }
        errno = FileStatus.CheckExecutable(candidate);
        if (errno != 0)
        {
            return ServiceLocation.Failure(candidate, $"{candidate} is neither a socket nor executable: {FileStatus.Describe(errno)}");
        }
        return ServiceLocation.Executable(candidate);
    }

    private static bool IsNumericAddress(string host)
    {
        bool isV6 = host.Contains(':', StringComparison.Ordinal);
        int scope = isV6 ? host.IndexOf('%', StringComparison.Ordinal) : -1;
        string address = scope < 0 ? host : host[..scope];
        foreach (char c in address)
        {
            // Only the characters of numeric forms: no brackets, ports, spaces or names reach the parser.
            bool allowed = char.IsAsciiHexDigit(c) || c == '.' || (isV6 ? c == ':' : c is 'x' or 'X');
            if (!allowed)
            {
                return false;
            }
        }
        if (scope >= 0)
        {
            string scopeId = host[(scope + 1)..];
            if (scopeId.Length == 0)
            {
                return false;
            }
            foreach (char c in scopeId)
            {
                if (!char.IsAsciiLetterOrDigit(c) && c is not ('_' or '.' or '-'))
                {
                    return false;
                }
            }
        }
        if (!IPAddress.TryParse(host, out IPAddress? parsed))
        {
            return false;
        }
        return parsed.AddressFamily == (isV6 ? AddressFamily.InterNetworkV6 : AddressFamily.InterNetwork);
    }

    private static bool TryParsePort(string text, out int port)
    {
        port = 0;
        if (text.Length == 0 || text.Length > MaxPortDigits || text[0] == '0')
        {
            return false;
        }
        int value = 0;
        foreach (char c in text)
        {
            if (!char.IsAsciiDigit(c))
            {
                return false;
            }
            value = (value * 10) + (c - '0');
        }
        if (value > MaxPort)
        {
            return false;
        }
        port = value;
        return true;
    }
}
