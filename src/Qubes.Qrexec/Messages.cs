using System;
using System.Buffers.Binary;
using System.Text;

namespace Qubes.Qrexec;

/// <summary>
/// The 8-byte header in front of every qrexec message:
/// <code>
///  0        4        8
///  +--------+--------+----------------
///  | type   | len    | body (len bytes)
///  +--------+--------+----------------
///    u32 LE   u32 LE
/// </code>
/// </summary>
public readonly record struct MessageHeader(MessageType Type, uint Length)
{
    public static MessageHeader Read(ReadOnlySpan<byte> source)
        => new((MessageType)BinaryPrimitives.ReadUInt32LittleEndian(source), BinaryPrimitives.ReadUInt32LittleEndian(source[4..]));

    public void Write(Span<byte> destination)
    {
        BinaryPrimitives.WriteUInt32LittleEndian(destination, (uint)Type);
        BinaryPrimitives.WriteUInt32LittleEndian(destination[4..], Length);
    }
}

/// <summary>A service request as it arrived in a trigger message, after the daemon's checks and sanitisation.</summary>
public sealed record TriggerRequest(uint Version, string? RequestedSource, string Target, byte[] Ident, string ServiceName)
{
    /// <summary>The ident as text (up to its NUL).</summary>
    public string IdentText => Messages.CString(Ident);
}

/// <summary>Builders and checked parsers for the message bodies (spec §4, §12). Parsers never throw on peer input.</summary>
public static class Messages
{
    /// <summary>Builds a complete message (header and body) in a new array: for set-up paths, not the data pump.</summary>
    public static byte[] Build(MessageType type, ReadOnlySpan<byte> body)
    {
        byte[] message = new byte[QrexecProtocol.HeaderSize + body.Length];
        new MessageHeader(type, (uint)body.Length).Write(message);
        body.CopyTo(message.AsSpan(QrexecProtocol.HeaderSize));
        return message;
    }

    /// <summary>A HELLO message carrying <paramref name="version"/>.</summary>
    public static byte[] Hello(uint version)
    {
        Span<byte> body = stackalloc byte[4];
        BinaryPrimitives.WriteUInt32LittleEndian(body, version);
        return Build(MessageType.Hello, body);
    }

    /// <summary>
    /// Checks a received HELLO (type, length 4) and returns the negotiated version
    /// <c>min(peer, 4)</c>, or 0 when it is not a HELLO or the version is below <paramref name="minimum"/>.
    /// </summary>
    public static uint CheckHello(MessageHeader header, ReadOnlySpan<byte> body, uint minimum, out uint peerVersion)
    {
        peerVersion = 0;
        if (header.Type != MessageType.Hello || header.Length != 4 || body.Length < 4)
        {
            return 0;
        }
        peerVersion = BinaryPrimitives.ReadUInt32LittleEndian(body);
        uint version = Math.Min(peerVersion, QrexecProtocol.AgentVersion);
        return version < minimum ? 0 : version;
    }

    /// <summary>exec_params followed by a NUL-terminated command line (EXEC_CMDLINE, JUST_EXEC).</summary>
    public static byte[] ExecCommand(MessageType type, uint connectDomain, uint connectPort, string commandLine)
    {
        int length = Encoding.UTF8.GetByteCount(commandLine);
        byte[] body = new byte[QrexecProtocol.ExecParamsSize + length + 1];
        BinaryPrimitives.WriteUInt32LittleEndian(body, connectDomain);
        BinaryPrimitives.WriteUInt32LittleEndian(body.AsSpan(4), connectPort);
        Encoding.UTF8.GetBytes(commandLine, body.AsSpan(QrexecProtocol.ExecParamsSize));
        return Build(type, body);
    }

    /// <summary>exec_params followed by a 32-byte ident (SERVICE_CONNECT).</summary>
    public static byte[] ServiceConnect(uint connectDomain, uint connectPort, ReadOnlySpan<byte> ident)
    {
        byte[] body = new byte[QrexecProtocol.ExecParamsSize + QrexecProtocol.IdentSize];
        BinaryPrimitives.WriteUInt32LittleEndian(body, connectDomain);
        BinaryPrimitives.WriteUInt32LittleEndian(body.AsSpan(4), connectPort);
        ident[..Math.Min(ident.Length, QrexecProtocol.IdentSize)].CopyTo(body.AsSpan(QrexecProtocol.ExecParamsSize));
        return Build(MessageType.ServiceConnect, body);
    }

    /// <summary>An 8-byte exec_params body without trailer (daemon replies, CONNECTION_TERMINATED).</summary>
    public static byte[] ExecParams(MessageType type, uint connectDomain, uint connectPort)
    {
        Span<byte> body = stackalloc byte[QrexecProtocol.ExecParamsSize];
        BinaryPrimitives.WriteUInt32LittleEndian(body, connectDomain);
        BinaryPrimitives.WriteUInt32LittleEndian(body[4..], connectPort);
        return Build(type, body);
    }

    /// <summary>An ident field from text: NUL-terminated, zero-padded to 32 bytes (the text must be shorter than 32 bytes).</summary>
    public static byte[] Ident(string text)
    {
        byte[] ident = new byte[QrexecProtocol.IdentSize];
        if (Encoding.ASCII.GetByteCount(text) >= QrexecProtocol.IdentSize)
        {
            throw new ArgumentException("ident too long", nameof(text));
        }
        Encoding.ASCII.GetBytes(text, ident);
        return ident;
    }

    /// <summary>A TRIGGER_SERVICE4 message (or our descriptor-passing variant with the same body).</summary>
    public static byte[] TriggerV4(MessageType type, string requestedSource, string target, ReadOnlySpan<byte> ident, string serviceName)
    {
        int nameLength = Encoding.UTF8.GetByteCount(serviceName);
        byte[] body = new byte[QrexecProtocol.TriggerV4Fixed + nameLength + 1];
        PutField(body.AsSpan(0, QrexecProtocol.DomainFieldSize), requestedSource);
        PutField(body.AsSpan(QrexecProtocol.DomainFieldSize, QrexecProtocol.DomainFieldSize), target);
        ident[..Math.Min(ident.Length, QrexecProtocol.IdentSize)].CopyTo(body.AsSpan(2 * QrexecProtocol.DomainFieldSize));
        Encoding.UTF8.GetBytes(serviceName, body.AsSpan(QrexecProtocol.TriggerV4Fixed));
        return Build(type, body);
    }

    /// <summary>A TRIGGER_SERVICE3 message (what a version-3 agent sends).</summary>
    public static byte[] TriggerV3(string target, ReadOnlySpan<byte> ident, string serviceName)
    {
        int nameLength = Encoding.UTF8.GetByteCount(serviceName);
        byte[] body = new byte[QrexecProtocol.TriggerV3Fixed + nameLength + 1];
        PutField(body.AsSpan(0, QrexecProtocol.DomainFieldSize), target);
        ident[..Math.Min(ident.Length, QrexecProtocol.IdentSize)].CopyTo(body.AsSpan(QrexecProtocol.DomainFieldSize));
        Encoding.UTF8.GetBytes(serviceName, body.AsSpan(QrexecProtocol.TriggerV3Fixed));
        return Build(MessageType.TriggerService3, body);
    }

    /// <summary>A TRIGGER_SERVICE (v2) message: fixed 128 bytes.</summary>
    public static byte[] TriggerV2(string serviceName, string target, ReadOnlySpan<byte> ident)
    {
        byte[] body = new byte[QrexecProtocol.TriggerV2Size];
        PutField(body.AsSpan(0, QrexecProtocol.ServiceFieldSizeV2), serviceName);
        PutField(body.AsSpan(QrexecProtocol.ServiceFieldSizeV2, QrexecProtocol.TargetFieldSizeV2), target);
        ident[..Math.Min(ident.Length, QrexecProtocol.IdentSize)].CopyTo(body.AsSpan(QrexecProtocol.ServiceFieldSizeV2 + QrexecProtocol.TargetFieldSizeV2));
        return Build(MessageType.TriggerService, body);
    }

    private static void PutField(Span<byte> field, string text)
    {
        int n = Encoding.UTF8.GetBytes(text.AsSpan(0, Math.Min(text.Length, field.Length - 1)), field);
        field[Math.Min(n, field.Length - 1)..].Clear();
    }

    // ------------------------------------------------------------------ daemon checks of agent input (§12.1)

    /// <summary>
    /// The header check of a message from the agent on the control channel. False means the agent
    /// broke the protocol: the daemon terminates (its own qube's connection only).
    /// </summary>
    public static bool IsAcceptableFromAgent(MessageHeader header, uint version)
    {
        uint len = header.Length;
        return header.Type switch
        {
            MessageType.TriggerService => version < 3 && len == QrexecProtocol.TriggerV2Size,
            MessageType.TriggerService3 => version >= 3 && len > QrexecProtocol.TriggerV3Fixed && len - QrexecProtocol.TriggerV3Fixed <= QrexecProtocol.MaxServiceNameLength,
            MessageType.TriggerService4 => version >= 4 && len > QrexecProtocol.TriggerV4Fixed && len - QrexecProtocol.TriggerV4Fixed <= QrexecProtocol.MaxServiceNameLength,
            MessageType.ConnectionTerminated => len == QrexecProtocol.ExecParamsSize,
            _ => false,
        };
    }

    /// <summary>
    /// Parses a trigger body whose header passed <see cref="IsAcceptableFromAgent"/>. Fields are
    /// force-terminated and sanitised (§12.1 items 1-2). Returns false with a reason when the request
    /// must be refused; <paramref name="identAsReceived"/> is always the 32 raw ident bytes, for the refusal.
    /// </summary>
    public static bool TryParseTrigger(MessageType type, ReadOnlySpan<byte> body, out TriggerRequest? request, out byte[] identAsReceived, out string? reason)
    {
        request = null;
        reason = null;
        int identOffset;
        ReadOnlySpan<byte> target;
        ReadOnlySpan<byte> source = default;
        ReadOnlySpan<byte> name;
        uint version;
        switch (type)
        {
            case MessageType.TriggerService:
                version = 2;
                name = body[..QrexecProtocol.ServiceFieldSizeV2];
                target = body.Slice(QrexecProtocol.ServiceFieldSizeV2, QrexecProtocol.TargetFieldSizeV2);
                identOffset = QrexecProtocol.ServiceFieldSizeV2 + QrexecProtocol.TargetFieldSizeV2;
                break;
            case MessageType.TriggerService3:
                version = 3;
                target = body[..QrexecProtocol.DomainFieldSize];
                identOffset = QrexecProtocol.DomainFieldSize;
                name = body[QrexecProtocol.TriggerV3Fixed..];
                break;
            default:
                version = 4;
                source = body[..QrexecProtocol.DomainFieldSize];
                target = body.Slice(QrexecProtocol.DomainFieldSize, QrexecProtocol.DomainFieldSize);
                identOffset = 2 * QrexecProtocol.DomainFieldSize;
                name = body[QrexecProtocol.TriggerV4Fixed..];
                break;
        }
        identAsReceived = body.Slice(identOffset, QrexecProtocol.IdentSize).ToArray();
        if (!IsValidIdent(identAsReceived))
        {
            reason = "invalid ident";
            return false;
        }
        string serviceName;
        if (version == 2)
        {
            // fixed field: force the last byte to NUL, take up to the first NUL
            serviceName = SanitiseService(UpToNul(name[..^1]));
        }
        else
        {
            // variable field: exactly one NUL, at the very end
            if (name.IsEmpty || name[^1] != 0 || name[..^1].IndexOf((byte)0) >= 0)
            {
                reason = "service name not terminated by exactly one NUL at the end";
                return false;
            }
            serviceName = SanitiseService(name[..^1]);
        }
        if (serviceName.Length == 0 || serviceName[0] == '+')
        {
            reason = "empty service name or no service before the argument";
            return false;
        }
        string targetName = SanitiseDomain(UpToNul(target[..^1]));
        string? requestedSource = version == 4 ? SanitiseDomain(UpToNul(source[..^1])) : null;
        request = new TriggerRequest(version, requestedSource, targetName, identAsReceived, serviceName);
        return true;
    }

    /// <summary>Ident check of §12.1 item 3: allowed bytes up to a NUL within the 32 bytes, only NULs after it.</summary>
    public static bool IsValidIdent(ReadOnlySpan<byte> ident)
    {
        if (ident.Length != QrexecProtocol.IdentSize)
        {
            return false;
        }
        int nul = ident.IndexOf((byte)0);
        if (nul < 0)
        {
            return false;
        }
        foreach (byte b in ident[..nul])
        {
            if (!(IsAsciiAlnum(b) || b is (byte)'_' or (byte)'.' or (byte)'-' or (byte)' '))
            {
                return false;
            }
        }
        return ident[nul..].IndexOfAnyExcept((byte)0) < 0;
    }

    /// <summary>Target/source names: every byte outside <c>[A-Za-z0-9_.-@:]</c> becomes <c>_</c>.</summary>
    public static string SanitiseDomain(ReadOnlySpan<byte> raw) => Sanitise(raw, service: false);

    /// <summary>Service names: every byte outside <c>[A-Za-z0-9_.-+]</c> becomes <c>_</c>.</summary>
    public static string SanitiseService(ReadOnlySpan<byte> raw) => Sanitise(raw, service: true);

    private static string Sanitise(ReadOnlySpan<byte> raw, bool service)
    {
        char[] chars = new char[raw.Length];
        for (int i = 0; i < raw.Length; i++)
        {
            byte b = raw[i];
            bool ok = IsAsciiAlnum(b) || b is (byte)'_' or (byte)'.' or (byte)'-' || (service ? b == (byte)'+' : b is (byte)'@' or (byte)':');
            chars[i] = ok ? (char)b : '_';
        }
        return new string(chars);
    }

    private static bool IsAsciiAlnum(byte b) => (uint)(b - '0') <= 9 || (uint)((b | 0x20) - 'a') <= 'z' - 'a';

    /// <summary>The bytes before the first NUL (all of them when there is none).</summary>
    public static ReadOnlySpan<byte> UpToNul(ReadOnlySpan<byte> raw)
    {
        int nul = raw.IndexOf((byte)0);
        return nul < 0 ? raw : raw[..nul];
    }

    /// <summary>Text of a NUL-terminated field (Latin-1 byte to char; callers validated or sanitised it).</summary>
    public static string CString(ReadOnlySpan<byte> raw) => Encoding.Latin1.GetString(UpToNul(raw));
}
