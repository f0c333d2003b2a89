using System;
using Qubes.Platform.Xenstore;

namespace Qubes.Platform.Loopback;

/// <summary>
/// Message types of the broker protocol. Store operations are the xenstore ones
/// (<see cref="XenstoreMessageType"/>, same numbers); broker operations (the hypervisor's part)
/// start at 0x100. Framing, limits and error names are xenstore's (<see cref="XenstoreWire"/>).
/// </summary>
public enum MessageType : uint
{
    Directory = (uint)XenstoreMessageType.Directory,
    Read = (uint)XenstoreMessageType.Read,
    GetPerms = (uint)XenstoreMessageType.GetPerms,
    Watch = (uint)XenstoreMessageType.Watch,
    Unwatch = (uint)XenstoreMessageType.Unwatch,
    TransactionStart = (uint)XenstoreMessageType.TransactionStart,
    TransactionEnd = (uint)XenstoreMessageType.TransactionEnd,
    GetDomainPath = (uint)XenstoreMessageType.GetDomainPath,
    Write = (uint)XenstoreMessageType.Write,
    Mkdir = (uint)XenstoreMessageType.Mkdir,
    Rm = (uint)XenstoreMessageType.Rm,
    SetPerms = (uint)XenstoreMessageType.SetPerms,
    WatchEvent = (uint)XenstoreMessageType.WatchEvent,
    Error = (uint)XenstoreMessageType.Error,

    CreateDomain = 0x100,
    DestroyDomain = 0x101,
    Connect = 0x102,
    IsAlive = 0x103,
    GrantAlloc = 0x104,
    GrantMap = 0x105,
    GrantFree = 0x106,
    UnmapNotifySet = 0x107,
    UnmapNotifyClear = 0x108,
    EvtchnAllocUnbound = 0x109,
    EvtchnBind = 0x10A,
    EvtchnClose = 0x10B,
    EvtchnStatus = 0x10C,
}

/// <summary>
/// Limits and flags of the broker's own operations. Frames are xenstore's <c>xsd_sockmsg</c>
/// (<see cref="XenstoreHeader"/>, <see cref="XenstoreWire"/>).
/// </summary>
public static class Wire
{
    /// <summary>Largest store value the broker keeps.</summary>
    public const int MaxValueLength = 4096;

    /// <summary>Most grant refs a single GrantMap request names.</summary>
    public const int MaxMapRefs = 256;

    /// <summary>
    /// Most pages one GrantAlloc may share or one map may name: the largest window image of the
    /// GUI protocol (16384 × 6144 × 4 bytes). A domain's total stays bounded by the broker.
    /// </summary>
    public const int MaxGrantPages = 98304;

    /// <summary>Flag bit of GrantAlloc (read-only grant) and GrantMap (writable mapping).</summary>
    public const uint FlagReadOnly = 1;

    /// <summary>Flag bit of GrantMap asking for a writable mapping.</summary>
    public const uint FlagWritable = 1;

    /// <summary>Writes an <c>xsd_sockmsg</c> header carrying a broker message type.</summary>
    public static void WriteHeader(Span<byte> destination, MessageType type, uint requestId, uint transactionId, int length) =>
        new XenstoreHeader((XenstoreMessageType)type, requestId, transactionId, length).Write(destination);
}
