using System;
using System.Buffers.Binary;
using Qubes.Interop.Linux;
using Qubes.Platform.Xenstore;

namespace Qubes.Platform.Loopback;

/// <summary>
/// One request from a domain, decoded and shape-checked by <see cref="RequestParser"/>. Spans point
/// into the connection's receive buffer and are valid only while the request is being handled.
/// </summary>
internal readonly ref struct BrokerRequest
{
    public MessageType Type { get; init; }
    public uint RequestId { get; init; }
    public uint TransactionId { get; init; }

    /// <summary>Store path (syntax already checked), watch path, or domid text of GetDomainPath.</summary>
    public ReadOnlySpan<byte> Path { get; init; }

    /// <summary>XS_WRITE value, watch token, XS_SET_PERMS list ("r1\0n2\0"), domain name.</summary>
    public ReadOnlySpan<byte> Text { get; init; }

    public uint Arg0 { get; init; }
    public uint Arg1 { get; init; }
    public uint Arg2 { get; init; }
    public uint Arg3 { get; init; }

    /// <summary>GrantMap refs, four little-endian bytes each.</summary>
    public ReadOnlySpan<byte> Refs { get; init; }

    public int RefCount => Refs.Length / 4;

    public uint RefAt(int index) => BinaryPrimitives.ReadUInt32LittleEndian(Refs.Slice(index * 4, 4));

    /// <summary>XS_TRANSACTION_END: true for "T" (commit).</summary>
    public bool Commit { get; init; }
}

/// <summary>A little-endian cursor over an untrusted payload. Never throws.</summary>
internal ref struct PayloadReader
{
    private readonly ReadOnlySpan<byte> _payload;
    private int _position;

    public PayloadReader(ReadOnlySpan<byte> payload)
    {
        _payload = payload;
        _position = 0;
    }

    public readonly bool AtEnd => _position == _payload.Length;

    public readonly ReadOnlySpan<byte> Rest => _payload[_position..];

    public bool TryReadUInt32(out uint value)
    {
        if (_payload.Length - _position < 4)
        {
            value = 0;
            return false;
        }
        value = BinaryPrimitives.ReadUInt32LittleEndian(_payload.Slice(_position, 4));
        _position += 4;
        return true;
    }

    /// <summary>Reads bytes up to the next NUL and skips the NUL; false if there is none.</summary>
    public bool TryReadCString(out ReadOnlySpan<byte> value)
    {
        ReadOnlySpan<byte> rest = _payload[_position..];
        int nul = rest.IndexOf((byte)0);
        if (nul < 0)
        {
            value = default;
            return false;
        }
        value = rest[..nul];
        _position += nul + 1;
        return true;
    }

    public void Skip(int count) => _position = Math.Min(_payload.Length, _position + count);
}

/// <summary>
/// The single parser of what domains send to the broker: frame already split off by
/// <see cref="XenstoreHeader.TryRead"/>, this checks each message's payload shape. It never throws;
/// a malformed request yields an errno for the XS_ERROR reply.
/// </summary>
internal static class RequestParser
{
    /// <summary>Longest domain name accepted by CreateDomain.</summary>
    public const int MaxDomainName = 64;

    /// <summary>How many descriptors a request of this type carries (fixed by type, so a bad payload cannot desynchronise the descriptor queue).</summary>
    public static int ExpectedFds(MessageType type) => type == MessageType.GrantAlloc ? 1 : 0;

    public static Errno Parse(in XenstoreHeader header, ReadOnlySpan<byte> payload, out BrokerRequest request)
    {
        request = default;
        var reader = new PayloadReader(payload);
        MessageType type = (MessageType)header.Type;
        uint req = header.RequestId;
        uint tx = header.TransactionId;
        switch (type)
        {
            case MessageType.Directory:
            case MessageType.Read:
            case MessageType.GetPerms:
            case MessageType.Mkdir:
            case MessageType.Rm:
            {
                if (!reader.TryReadCString(out ReadOnlySpan<byte> path) || !reader.AtEnd)
                {
                    return Errno.EINVAL;
                }
                Errno e = StorePath.CheckSyntax(path, allowSpecial: false);
                if (e != Errno.None)
                {
                    return e;
                }
                request = new BrokerRequest { Type = type, RequestId = req, TransactionId = tx, Path = path };
                return Errno.None;
            }
            case MessageType.GetDomainPath:
            {
                if (!reader.TryReadCString(out ReadOnlySpan<byte> text) || !reader.AtEnd || !TryParseDomainId(text, out uint domid))
                {
                    return Errno.EINVAL;
                }
                request = new BrokerRequest { Type = type, RequestId = req, Arg0 = domid };
                return Errno.None;
            }
            case MessageType.Write:
            {
                if (!reader.TryReadCString(out ReadOnlySpan<byte> path))
                {
                    return Errno.EINVAL;
                }
                Errno e = StorePath.CheckSyntax(path, allowSpecial: false);
                if (e != Errno.None)
                {
                    return e;
                }
                ReadOnlySpan<byte> value = reader.Rest;
                if (value.Length > Wire.MaxValueLength)
                {
                    return Errno.E2BIG;
                }
                request = new BrokerRequest { Type = type, RequestId = req, TransactionId = tx, Path = path, Text = value };
                return Errno.None;
            }
            case MessageType.SetPerms:
            {
                if (!reader.TryReadCString(out ReadOnlySpan<byte> path))
                {
                    return Errno.EINVAL;
                }
                Errno e = StorePath.CheckSyntax(path, allowSpecial: true); // dom0 may grant the special watches (XSA-115)
                if (e != Errno.None)
                {
                    return e;
                }
                ReadOnlySpan<byte> list = reader.Rest;
                if (list.IsEmpty || list[^1] != 0)
                {
                    return Errno.EINVAL;
                }
                var perms = new PayloadReader(list);
                while (!perms.AtEnd)
                {
                    if (!perms.TryReadCString(out ReadOnlySpan<byte> entry) || !TryParsePermission(entry, out _))
                    {
                        return Errno.EINVAL;
                    }
                }
                request = new BrokerRequest { Type = type, RequestId = req, TransactionId = tx, Path = path, Text = list };
                return Errno.None;
            }
            case MessageType.Watch:
            case MessageType.Unwatch:
            {
                if (!reader.TryReadCString(out ReadOnlySpan<byte> path) || !reader.TryReadCString(out ReadOnlySpan<byte> token) || !reader.AtEnd)
                {
                    return Errno.EINVAL;
                }
                Errno e = StorePath.CheckSyntax(path, allowSpecial: true);
                if (e != Errno.None)
                {
                    return e;
                }
                request = new BrokerRequest { Type = type, RequestId = req, Path = path, Text = token };
                return Errno.None;
            }
            case MessageType.TransactionStart:
            {
                if (!(payload.IsEmpty || (payload.Length == 1 && payload[0] == 0)))
                {
                    return Errno.EINVAL;
                }
                request = new BrokerRequest { Type = type, RequestId = req };
                return Errno.None;
            }
            case MessageType.TransactionEnd:
            {
                if (!reader.TryReadCString(out ReadOnlySpan<byte> flag) || !reader.AtEnd || flag.Length != 1 || (flag[0] != (byte)'T' && flag[0] != (byte)'F'))
                {
                    return Errno.EINVAL;
                }
                request = new BrokerRequest { Type = type, RequestId = req, TransactionId = tx, Commit = flag[0] == (byte)'T' };
                return Errno.None;
            }
            case MessageType.CreateDomain:
            {
                if (!IsValidDomainName(payload))
                {
                    return Errno.EINVAL;
                }
                request = new BrokerRequest { Type = type, RequestId = req, Text = payload };
                return Errno.None;
            }
            case MessageType.Connect:
            {
                if (!payload.IsEmpty)
                {
                    return Errno.EINVAL;
                }
                request = new BrokerRequest { Type = type, RequestId = req };
                return Errno.None;
            }
            case MessageType.DestroyDomain:
            case MessageType.IsAlive:
            case MessageType.UnmapNotifyClear:
            case MessageType.EvtchnAllocUnbound:
            case MessageType.EvtchnClose:
            case MessageType.EvtchnStatus:
                return Fixed(payload, type, req, 1, out request);
            case MessageType.GrantFree:
            case MessageType.EvtchnBind:
                return Fixed(payload, type, req, 2, out request);
            case MessageType.GrantAlloc:
                return Fixed(payload, type, req, 3, out request);
            case MessageType.UnmapNotifySet:
                return Fixed(payload, type, req, 4, out request);
            case MessageType.GrantMap:
            {
                if (!reader.TryReadUInt32(out uint owner) || !reader.TryReadUInt32(out uint flags))
                {
                    return Errno.EINVAL;
                }
                ReadOnlySpan<byte> refs = reader.Rest;
                if (refs.IsEmpty || refs.Length % 4 != 0 || refs.Length / 4 > Wire.MaxMapRefs)
                {
                    return Errno.EINVAL;
                }
                request = new BrokerRequest { Type = type, RequestId = req, Arg0 = owner, Arg1 = flags, Refs = refs };
                return Errno.None;
            }
            default:
                return Errno.EINVAL;
        }
    }

    private static Errno Fixed(ReadOnlySpan<byte> payload, MessageType type, uint req, int count, out BrokerRequest request)
    {
        request = default;
        var reader = new PayloadReader(payload);
        uint a0 = 0, a1 = 0, a2 = 0, a3 = 0;
        if (!reader.TryReadUInt32(out a0)
            || (count > 1 && !reader.TryReadUInt32(out a1))
            || (count > 2 && !reader.TryReadUInt32(out a2))
            || (count > 3 && !reader.TryReadUInt32(out a3))
            || !reader.AtEnd)
        {
            return Errno.EINVAL;
        }
        request = new BrokerRequest { Type = type, RequestId = req, Arg0 = a0, Arg1 = a1, Arg2 = a2, Arg3 = a3 };
        return Errno.None;
    }

    /// <summary>Strict decimal domid ("0", or a non-zero digit then digits) below DOMID_FIRST_RESERVED.</summary>
    public static bool TryParseDomainId(ReadOnlySpan<byte> text, out uint domid)
    {
        domid = 0;
        if (text.IsEmpty || text.Length > 5 || (text[0] == (byte)'0' && text.Length > 1))
        {
            return false;
        }
        uint value = 0;
        foreach (byte b in text)
        {
            if (b < (byte)'0' || b > (byte)'9')
            {
                return false;
            }
            value = value * 10 + (uint)(b - '0');
        }
        if (value >= DomainIds.FirstReserved)
        {
            return false;
        }
        domid = value;
        return true;
    }

    public static bool TryParsePermission(ReadOnlySpan<byte> entry, out StorePermission permission)
    {
        permission = default;
        if (entry.Length < 2 || entry.Length > 6)
        {
            return false;
        }
        StoreAccess access;
        switch (entry[0])
        {
            case (byte)'n': access = StoreAccess.None; break;
            case (byte)'r': access = StoreAccess.Read; break;
            case (byte)'w': access = StoreAccess.Write; break;
            case (byte)'b': access = StoreAccess.Both; break;
            default: return false;
        }
        if (!TryParseDomainId(entry[1..], out uint domid))
        {
            return false;
        }
        permission = new StorePermission((int)domid, access);
        return true;
    }

    public static bool IsValidDomainName(ReadOnlySpan<byte> name)
    {
        if (name.IsEmpty || name.Length > MaxDomainName || name[0] == (byte)'-' || name[0] == (byte)'.')
        {
            return false;
        }
        foreach (byte b in name)
        {
            bool ok = (b >= (byte)'a' && b <= (byte)'z') || (b >= (byte)'A' && b <= (byte)'Z') || (b >= (byte)'0' && b <= (byte)'9')
                || b == (byte)'-' || b == (byte)'_' || b == (byte)'.';
            if (!ok)
            {
                return false;
            }
        }
        return true;
    }
}

/// <summary>Syntax of store paths (shared by the broker's parser and the client's early checks).</summary>
public static class StorePath
{
    /// <summary>Watch-only path: fires when any domain dies.</summary>
    public const string ReleaseDomain = "@releaseDomain";

    /// <summary>Watch-only path: fires when a domain is created.</summary>
    public const string IntroduceDomain = "@introduceDomain";

    /// <summary>
    /// Checks a path as sent: absolute (<c>/a/b</c>, or <c>/</c>) or relative (<c>a/b</c>), components
    /// of letters, digits and <c>- _ @ .</c> (not empty, not "." or ".."), no trailing slash, at most
    /// <see cref="XenstoreWire.MaxPathLength"/> bytes. With <paramref name="allowSpecial"/> the two watch-only
    /// '@' names are accepted too. Returns None or EINVAL.
    /// </summary>
    public static Errno CheckSyntax(ReadOnlySpan<byte> path, bool allowSpecial)
    {
        if (path.IsEmpty || path.Length > XenstoreWire.MaxPathLength)
        {
            return Errno.EINVAL;
        }
        if (path[0] == (byte)'@')
        {
            return allowSpecial && (path.SequenceEqual("@releaseDomain"u8) || path.SequenceEqual("@introduceDomain"u8)) ? Errno.None : Errno.EINVAL;
        }
        if (path.Length == 1 && path[0] == (byte)'/')
        {
            return Errno.None;
        }
        int start = path[0] == (byte)'/' ? 1 : 0;
        int componentStart = start;
        for (int i = start; i <= path.Length; i++)
        {
            if (i == path.Length || path[i] == (byte)'/')
            {
                int length = i - componentStart;
                if (length == 0)
                {
                    return Errno.EINVAL;
                }
                if (path[componentStart] == (byte)'.' && (length == 1 || (length == 2 && path[componentStart + 1] == (byte)'.')))
                {
                    return Errno.EINVAL;
                }
                componentStart = i + 1;
                continue;
            }
            byte b = path[i];
            bool ok = (b >= (byte)'a' && b <= (byte)'z') || (b >= (byte)'A' && b <= (byte)'Z') || (b >= (byte)'0' && b <= (byte)'9')
                || b == (byte)'-' || b == (byte)'_' || b == (byte)'@' || b == (byte)'.';
            if (!ok)
            {
                return Errno.EINVAL;
            }
        }
        return Errno.None;
    }
}
