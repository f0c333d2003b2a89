using System;
using System.Buffers.Binary;
using System.Linq;
using System.Text;
using Qubes.Qrexec;

namespace Qubes.Fuzz;

/// <summary>
/// The daemon's checks of what an agent sends on the control channel (qrexec spec §12.1): the header
/// check and the trigger body parser, against a slow oracle written from the spec's tables.
/// Input: one byte of negotiated version, an 8-byte header, then the body, which ends at a guard page.
/// The header is checked as given; the body is parsed under the header's type with the length that is
/// actually there, when that framing passes the header check (as the daemon would have read it).
/// </summary>
internal sealed class QrexecTriggerTarget : ITarget
{
    private const int MaxBody = 8192;
    private const string Common = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_.-";
    private const string DomainAllowed = Common + "@:";
    private const string ServiceAllowed = Common + "+";
    private const string IdentAllowed = Common + " ";

    private readonly GuardedMemory _memory = new(MaxBody);

    public string Name => "qrexec-trigger";

    public byte[][] Seeds =>
    [
        Input(4, 0x213, V4("", "work", "SOCKET7", "qubes.Filecopy+arg\0")),
        Input(4, 0x213, V4("relay", "@dispvm:default-dvm", "SOCKET12", "svc+a/b\0")),
        Input(4, 0x213, V4("", "work/../x", "a b.c-d_e", "+arg\0")),
        Input(4, 0x213, V4("", "w", "ok\0junk", "svc\0")),
        Input(4, 0x213, V4("", "w", "id", "a\0b\0")),
        Input(4, 0x213, V4("", "w", "id", "\0")),
        Input(3, 0x212, Concat(Field("uuid:0b5a8d9c-1111-2222-3333-444455556666", 64), Field("SOCKET3", 32), "qubes.VMShell+\0"u8.ToArray())),
        Input(2, 0x210, Concat(Field("qubes.Gpg", 64), Field("work", 32), Field("SOCKET4", 32))),
        Input(4, 0x211, [0, 0, 0, 0, 1, 2, 0, 0]),
        Input(4, 0x213, V4(new string('s', 64), new string('t', 64), "SOCKET1", new string('n', 300) + "\0")),
    ];

    private static byte[] Input(byte version, uint type, byte[] body)
    {
        byte[] input = new byte[9 + body.Length];
        input[0] = version;
        BinaryPrimitives.WriteUInt32LittleEndian(input.AsSpan(1), type);
        BinaryPrimitives.WriteUInt32LittleEndian(input.AsSpan(5), (uint)body.Length);
        body.CopyTo(input, 9);
        return input;
    }

    private static byte[] V4(string source, string target, string ident, string name)
        => Concat(Field(source, 64), Field(target, 64), Field(ident, 32), Encoding.Latin1.GetBytes(name));

    private static byte[] Field(string text, int size)
    {
        byte[] field = new byte[size];
        Encoding.Latin1.GetBytes(text.AsSpan(0, Math.Min(text.Length, size)), field);
        return field;
    }

    private static byte[] Concat(params byte[][] parts) => parts.SelectMany(p => p).ToArray();

    public void Run(ReadOnlySpan<byte> input)
    {
        if (input.Length < 9)
        {
            return;
        }
        uint version = input[0];
        MessageHeader header = MessageHeader.Read(input.Slice(1, 8));
        uint type = (uint)header.Type;
        ReadOnlySpan<byte> body = _memory.Place(input[9..]);

        bool accepted = Messages.IsAcceptableFromAgent(header, version);
        if (accepted != HeaderOracle(type, header.Length, version))
        {
            throw new FuzzFailure($"header 0x{type:x}/{header.Length} at version {version}: check says {accepted}, the oracle disagrees");
        }
        MessageHeader framed = new(header.Type, (uint)body.Length);
        bool framedAccepted = Messages.IsAcceptableFromAgent(framed, version);
        if (framedAccepted != HeaderOracle(type, framed.Length, version))
        {
            throw new FuzzFailure($"header 0x{type:x}/{framed.Length} at version {version}: check says {framedAccepted}, the oracle disagrees");
        }
        if (!framedAccepted || header.Type == MessageType.ConnectionTerminated)
        {
            return;
        }

        bool parsed = Messages.TryParseTrigger(header.Type, body, out TriggerRequest? request, out byte[] ident, out string? reason);
        Expected expected = BodyOracle(type, body.ToArray());
        if (!ident.AsSpan().SequenceEqual(expected.Ident))
        {
            throw new FuzzFailure("the ident for the refusal is not the ident as received");
        }
        if (parsed != expected.Accepted)
        {
            throw new FuzzFailure($"type 0x{type:x}, {body.Length} bytes: parser {(parsed ? "accepts" : $"refuses ({reason})")}, the oracle disagrees");
        }
        if (!parsed)
        {
            if (request != null || string.IsNullOrEmpty(reason))
            {
                throw new FuzzFailure("a refusal with a request or without a reason");
            }
            return;
        }
        if (request == null || reason != null)
        {
            throw new FuzzFailure("an acceptance without a request or with a reason");
        }
        Same("version", expected.Version.ToString(), request.Version.ToString());
        Same("requested source", expected.Source, request.RequestedSource);
        Same("target", expected.Target, request.Target);
        Same("service", expected.Service, request.ServiceName);
        // independent of the oracle: only allowed characters come out, and the service names one
        AllIn("target", request.Target, DomainAllowed);
        AllIn("requested source", request.RequestedSource ?? string.Empty, DomainAllowed);
        AllIn("service", request.ServiceName, ServiceAllowed);
        if (request.ServiceName.Length == 0 || request.ServiceName[0] == '+' || request.Target.Length > 63)
        {
            throw new FuzzFailure("an accepted request with an empty service, a service starting with '+', or a target past its field");
        }
        if (!Messages.IsValidIdent(request.Ident) || request.IdentText.Any(c => !IdentAllowed.Contains(c, StringComparison.Ordinal)))
        {
            throw new FuzzFailure("an accepted request with an invalid ident");
        }
    }

    private static void Same(string what, string? expected, string? actual)
    {
        if (!string.Equals(expected, actual, StringComparison.Ordinal))
        {
            throw new FuzzFailure($"{what}: parser gives '{actual}', the oracle '{expected}'");
        }
    }

    private static void AllIn(string what, string text, string allowed)
    {
        foreach (char c in text)
        {
            if (!allowed.Contains(c, StringComparison.Ordinal))
            {
                throw new FuzzFailure($"{what} contains U+{(int)c:X4} after sanitisation");
            }
        }
    }

    // ------------------------------------------------------------------ the oracle, from the spec's text

    /// <summary>§12.1 header table, with the name length computed in 64 bits.</summary>
    private static bool HeaderOracle(uint type, uint length, uint version)
    {
        long len = length;
        return type switch
        {
            0x210 => version < 3 && len == 128,
            0x212 => version >= 3 && len - 96 is >= 1 and <= 65000,
            0x213 => version >= 4 && len - 160 is >= 1 and <= 65000,
            0x211 => len == 8,
            _ => false,
        };
    }

    private sealed record Expected(bool Accepted, byte[] Ident, uint Version = 0, string? Source = null, string Target = "", string Service = "");

    /// <summary>§4.1 layouts and §12.1 body rules, one at a time.</summary>
    private static Expected BodyOracle(uint type, byte[] body)
    {
        byte[]? sourceField = null;
        byte[] targetField;
        byte[] ident;
        byte[]? fixedName = null;
        byte[]? variableName = null;
        uint version;
        switch (type)
        {
            case 0x210:
                version = 2;
                fixedName = body[0..64];
                targetField = body[64..96];
                ident = body[96..128];
                break;
            case 0x212:
                version = 3;
                targetField = body[0..64];
                ident = body[64..96];
                variableName = body[96..];
                break;
            default:
                version = 4;
                sourceField = body[0..64];
                targetField = body[64..128];
                ident = body[128..160];
                variableName = body[160..];
                break;
        }

        // item 3: allowed bytes up to a NUL, a NUL within the 32 bytes, only NULs after it
        bool sawNul = false;
        foreach (byte b in ident)
        {
            if (sawNul ? b != 0 : b != 0 && !IdentAllowed.Contains((char)b, StringComparison.Ordinal))
            {
                return new Expected(false, ident);
            }
            sawNul |= b == 0;
        }
        if (!sawNul)
        {
            return new Expected(false, ident);
        }

        // item 4 (v3/v4): exactly one NUL, the last byte; item 1 (v2): the fixed field is force-terminated
        string service;
        if (variableName != null)
        {
            if (variableName.Count(b => b == 0) != 1 || variableName[^1] != 0)
            {
                return new Expected(false, ident);
            }
            service = Sanitised(variableName[..^1], ServiceAllowed);
        }
        else
        {
            service = Sanitised(Terminated(fixedName!), ServiceAllowed);
        }
        if (service.Length == 0 || service.StartsWith('+'))
        {
            return new Expected(false, ident);
        }
        string target = Sanitised(Terminated(targetField), DomainAllowed);
        string? source = sourceField == null ? null : Sanitised(Terminated(sourceField), DomainAllowed);
        return new Expected(true, ident, version, source, target, service);
    }

    /// <summary>A fixed field with its last byte forced to NUL, up to its first NUL.</summary>
    private static byte[] Terminated(byte[] field)
    {
        byte[] copy = (byte[])field.Clone();
        copy[^1] = 0;
        return copy.TakeWhile(b => b != 0).ToArray();
    }

    /// <summary>§12.1 item 2: every byte outside the set becomes '_'.</summary>
    private static string Sanitised(byte[] raw, string allowed)
        => new(raw.Select(b => allowed.Contains((char)b, StringComparison.Ordinal) ? (char)b : '_').ToArray());
}
