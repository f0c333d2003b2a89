using System;
using System.Collections.Generic;
using System.Diagnostics.CodeAnalysis;
using System.IO;
using System.Text;

namespace Qubes.Qrexec.Services;

/// <summary>
/// Per-service configuration (spec §9.5): a file named <c>svc+arg</c> or <c>svc</c> in the config path,
/// written in a strict subset of TOML — one <c>key = value</c> per line, values <c>true</c>/<c>false</c>,
/// decimal integers and single-quoted strings.
/// </summary>
public sealed class RpcConfig
{
    /// <summary>Key: run qubes.WaitForSession before the service (bool, or integer 0/1).</summary>
    public const string WaitForSessionKey = "wait-for-session";
    /// <summary>Key: do not send the descriptor line to socket/TCP services (bool).</summary>
    public const string SkipServiceDescriptorKey = "skip-service-descriptor";
    /// <summary>Key: socket services finish when the caller sends stdin EOF (bool).</summary>
    public const string ExitOnClientEofKey = "exit-on-client-eof";
    /// <summary>Key: socket services finish when the service closes its output (bool).</summary>
    public const string ExitOnServiceEofKey = "exit-on-service-eof";
    /// <summary>Key: run as this user instead of the requested one (string).</summary>
    public const string ForceUserKey = "force-user";

    private static readonly UTF8Encoding s_strictUtf8 = new(encoderShouldEmitUTF8Identifier: false, throwOnInvalidBytes: true);

    private RpcConfig(IReadOnlyList<string> unknownKeys)
    {
        UnknownKeys = unknownKeys;
    }

    /// <summary>The configuration of a service without a config file.</summary>
    public static RpcConfig Default { get; } = new(Array.Empty<string>());

    /// <summary>Run <c>qubes.WaitForSession</c> before starting the service (ignored with <c>nogui:</c>).</summary>
    public bool WaitForSession { get; private set; }

    /// <summary>Do not send the descriptor line to socket and TCP services.</summary>
    public bool SkipServiceDescriptor { get; private set; }

    /// <summary>Socket services: finish as soon as the caller sends stdin EOF.</summary>
    public bool ExitOnClientEof { get; private set; }

    /// <summary>Socket services: finish as soon as the service closes its output.</summary>
    public bool ExitOnServiceEof { get; private set; }

    /// <summary>Run as this user instead of the requested one; null when not set.</summary>
    public string? ForceUser { get; private set; }

    /// <summary>Keys the file set that this implementation does not know, in file order (they are ignored).</summary>
    public IReadOnlyList<string> UnknownKeys { get; }

    /// <summary>
    /// Parses the content of a config file. Never throws: a file outside the accepted subset yields
    /// false and a reason (with its line number) in <paramref name="error"/>.
    /// </summary>
    public static bool TryParse(
        ReadOnlySpan<byte> text,
        [NotNullWhen(true)] out RpcConfig? config,
        [NotNullWhen(false)] out string? error)
    {
        config = null;
        if (text.Contains((byte)0))
        {
            error = "NUL byte in the file";
            return false;
        }

        var unknownKeys = new List<string>();
        var seen = new HashSet<string>(StringComparer.Ordinal);
        var result = new RpcConfig(unknownKeys);
        int lineNumber = 0;
        while (!text.IsEmpty)
        {
            lineNumber++;
            ReadOnlySpan<byte> line;
            int newline = text.IndexOf((byte)'\n');
            if (newline < 0)
            {
                line = text;
                text = default;
            }
            else
            {
                line = text[..newline];
                text = text[(newline + 1)..];
                if (!line.IsEmpty && line[^1] == (byte)'\r')
                {
                    line = line[..^1];
                }
            }
            // Trailing blanks go, but never the first byte: a line of blanks is a line that starts with one.
            while (line.Length > 1 && IsBlank(line[^1]))
            {
                line = line[..^1];
            }

            if (line.IsEmpty || line[0] == (byte)'#')
            {
                continue;
            }
            if (!TryParseLine(line, out string? key, out Value value, out string? lineError))
            {
                error = $"line {lineNumber}: {lineError}";
                return false;
            }
            if (!seen.Add(key))
            {
                error = $"line {lineNumber}: key {key} given twice";
                return false;
            }
            if (!result.TryApply(key, value, unknownKeys, out lineError))
            {
                error = $"line {lineNumber}: {lineError}";
                return false;
            }
        }

        if (result.ForceUser is not null
            && (result.SkipServiceDescriptor || result.ExitOnClientEof || result.ExitOnServiceEof))
        {
            error = $"{ForceUserKey} cannot be combined with {SkipServiceDescriptorKey}, {ExitOnClientEofKey} or {ExitOnServiceEofKey}";
            return false;
        }
        config = result;
        error = null;
        return true;
    }

    /// <summary>
    /// Finds and parses the configuration of a service: <paramref name="lookupName"/> (<c>svc+arg</c>),
    /// then <paramref name="serviceName"/>, in every directory of <paramref name="configPath"/>
    /// (<c>$QUBES_RPC_CONFIG_PATH</c>; null for <see cref="QrexecProtocol.DefaultConfigPath"/>).
    /// No file gives <see cref="Default"/>; a file that cannot be read or parsed makes the call fail (125).
    /// </summary>
    public static RpcConfigResult Load(string lookupName, string serviceName, string? configPath)
    {
        RpcConfigResult? found = FileSearch.Search(
            configPath ?? QrexecProtocol.DefaultConfigPath,
            lookupName,
            serviceName,
            LoadCandidate,
            error => RpcConfigResult.Failed(null, error));
        return found ?? RpcConfigResult.Loaded(Default, null);
    }

    private static RpcConfigResult? LoadCandidate(string candidate)
    {
        int errno = FileStatus.GetMode(candidate, followLinks: true, out _);
        if (errno == Interop.Libc.ErrorNoEntry)
        {
            return null;
        }
        if (errno != 0)
        {
            return RpcConfigResult.Failed(candidate, $"cannot stat {candidate}: {FileStatus.Describe(errno)}");
        }

        byte[] content;
        try
        {
            content = File.ReadAllBytes(candidate);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException or NotSupportedException)
        {
            return RpcConfigResult.Failed(candidate, $"cannot read {candidate}: {e.Message}");
        }
        return TryParse(content, out RpcConfig? config, out string? error)
            ? RpcConfigResult.Loaded(config, candidate)
            : RpcConfigResult.Failed(candidate, $"{candidate}: {error}");
    }

    private bool TryApply(string key, Value value, List<string> unknownKeys, [NotNullWhen(false)] out string? error)
    {
        error = null;
        switch (key)
        {
            case WaitForSessionKey:
                if (value.Kind == ValueKind.Integer)
                {
                    if (value.Integer > 1)
                    {
                        error = $"{key}: integer {value.Integer} is not 0 or 1";
                        return false;
                    }
                    WaitForSession = value.Integer == 1;
                    return true;
                }
                if (!TryGetBool(key, value, out bool wait, out error))
                {
                    return false;
                }
                WaitForSession = wait;
                return true;
            case SkipServiceDescriptorKey:
                if (!TryGetBool(key, value, out bool skip, out error))
                {
                    return false;
                }
                SkipServiceDescriptor = skip;
                return true;
            case ExitOnClientEofKey:
                if (!TryGetBool(key, value, out bool clientEof, out error))
                {
                    return false;
                }
                ExitOnClientEof = clientEof;
                return true;
            case ExitOnServiceEofKey:
                if (!TryGetBool(key, value, out bool serviceEof, out error))
                {
                    return false;
                }
                ExitOnServiceEof = serviceEof;
                return true;
            case ForceUserKey:
                if (value.Kind != ValueKind.String)
                {
                    error = $"{key}: expected a string, found {Describe(value.Kind)}";
                    return false;
                }
                try
                {
                    ForceUser = s_strictUtf8.GetString(value.Text.Span);
                }
                catch (DecoderFallbackException)
                {
                    error = $"{key}: the user name is not valid UTF-8";
                    return false;
                }
                return true;
            default:
                unknownKeys.Add(key);
                return true;
        }
    }

    private static bool TryGetBool(string key, Value value, out bool result, [NotNullWhen(false)] out string? error)
    {
        if (value.Kind != ValueKind.Boolean)
        {
            result = false;
            error = $"{key}: expected true or false, found {Describe(value.Kind)}";
            return false;
        }
        result = value.Boolean;
        error = null;
        return true;
    }

    private static string Describe(ValueKind kind) => kind switch
    {
        ValueKind.Boolean => "a boolean",
        ValueKind.Integer => "an integer",
        _ => "a string",
    };

    /// <summary>Parses one non-empty, non-comment line: key, '=', value, optional comment.</summary>
    private static bool TryParseLine(
        ReadOnlySpan<byte> line,
        [NotNullWhen(true)] out string? key,
        out Value value,
        [NotNullWhen(false)] out string? error)
    {
        key = null;
        value = default;
        byte first = line[0];
        if (!char.IsAsciiLetter((char)first))
        {
            error = first switch
            {
                (byte)'[' => "sections are not supported",
                (byte)' ' or (byte)'\t' => "whitespace at the start of the line",
                _ => $"byte 0x{first:x2} cannot start a key",
            };
            return false;
        }

        int i = 1;
        while (i < line.Length && IsKeyByte(line[i]))
        {
            i++;
        }
        string name = Encoding.ASCII.GetString(line[..i]);
        i = SkipBlanks(line, i);
        if (i == line.Length || line[i] != (byte)'=')
        {
            error = $"missing '=' after key {name}";
            return false;
        }
        i = SkipBlanks(line, i + 1);

        if (!TryParseValue(line, i, out value, out int end, out error))
        {
            error = $"{name}: {error}";
            return false;
        }
        end = SkipBlanks(line, end);
        if (end != line.Length && line[end] != (byte)'#')
        {
            error = value.Kind == ValueKind.Integer
                ? $"{name}: junk after the integer (only decimal integers without leading zeros are supported)"
                : $"{name}: junk after the value";
            return false;
        }
        key = name;
        error = null;
        return true;
    }

    private static bool TryParseValue(ReadOnlySpan<byte> line, int start, out Value value, out int end, [NotNullWhen(false)] out string? error)
    {
        value = default;
        end = start;
        ReadOnlySpan<byte> rest = line[start..];
        if (rest.IsEmpty)
        {
            error = "missing value";
            return false;
        }

        byte first = rest[0];
        if (first == (byte)'0')
        {
            value = new Value(ValueKind.Integer, false, 0, default);
            end = start + 1;
            error = null;
            return true;
        }
        if (first is >= (byte)'1' and <= (byte)'9')
        {
            ulong integer = 0;
            int i = 0;
            while (i < rest.Length && rest[i] is >= (byte)'0' and <= (byte)'9')
            {
                ulong digit = (ulong)(rest[i] - (byte)'0');
                if (integer > (ulong.MaxValue - digit) / 10)
                {
                    error = "integer out of range";
                    return false;
                }
                integer = (integer * 10) + digit;
                i++;
            }
            value = new Value(ValueKind.Integer, false, integer, default);
            end = start + i;
            error = null;
            return true;
        }
        if (rest.StartsWith("true"u8))
        {
            value = new Value(ValueKind.Boolean, true, 0, default);
            end = start + 4;
            error = null;
            return true;
        }
        if (rest.StartsWith("false"u8))
        {
            value = new Value(ValueKind.Boolean, false, 0, default);
            end = start + 5;
            error = null;
            return true;
        }
        if (first == (byte)'"')
        {
            error = "double-quoted strings are not supported, use single quotes";
            return false;
        }
        if (first == (byte)'\'')
        {
            if (rest.StartsWith("'''"u8))
            {
                error = "triple-quoted strings are not supported";
                return false;
            }
            int close = rest[1..].IndexOf((byte)'\'');
            if (close < 0)
            {
                error = "unterminated string";
                return false;
            }
            value = new Value(ValueKind.String, false, 0, rest.Slice(1, close).ToArray());
            end = start + close + 2;
            error = null;
            return true;
        }
        error = first is >= (byte)' ' and <= (byte)'~'
            ? $"unsupported start of value '{(char)first}'"
            : $"unsupported byte 0x{first:x2} at the start of the value";
        return false;
    }

    private static int SkipBlanks(ReadOnlySpan<byte> line, int i)
    {
        while (i < line.Length && IsBlank(line[i]))
        {
            i++;
        }
        return i;
    }

    private static bool IsBlank(byte b) => b is (byte)' ' or (byte)'\t';

    private static bool IsKeyByte(byte b) =>
        char.IsAsciiLetterOrDigit((char)b) || b is (byte)'.' or (byte)'-' or (byte)'_';

    private enum ValueKind
    {
        Boolean = 1,
        Integer,
        String,
    }

    private readonly record struct Value(ValueKind Kind, bool Boolean, ulong Integer, ReadOnlyMemory<byte> Text);
}
