using System;
using System.Buffers.Binary;

namespace Qubes.Gui;

/// <summary>How the daemon answers an agent's version (spec gui-protocol §3).</summary>
public enum NegotiationResult
{
    /// <summary>Same major version: the session runs at the lower minor.</summary>
    Accepted,

    /// <summary>The agent's major version is lower than ours.</summary>
    AgentOutdated,

    /// <summary>The agent's major version is higher than ours.</summary>
    DaemonTooOld,
}

/// <summary>
/// The <c>xconf</c> the daemon sends after the versions: its screen, the width rounded up to a
/// multiple of 8, and the memory a full-screen image takes, in KiB.
/// </summary>
public readonly record struct XConf(uint Width, uint Height, uint Depth, uint MemKiB)
{
    public const int Size = 16;

    /// <summary>The xconf of a root window of this size and depth.</summary>
    public static XConf For(int rootWidth, int rootHeight, int depth)
    {
        uint width = (uint)(rootWidth + 7) & ~7u;
        return new(width, (uint)rootHeight, (uint)depth, (uint)((ulong)width * (uint)rootHeight * 4 / 1024 + 1));
    }

    public void Write(Span<byte> destination)
    {
        BinaryPrimitives.WriteUInt32LittleEndian(destination, Width);
        BinaryPrimitives.WriteUInt32LittleEndian(destination[4..], Height);
        BinaryPrimitives.WriteUInt32LittleEndian(destination[8..], Depth);
        BinaryPrimitives.WriteUInt32LittleEndian(destination[12..], MemKiB);
    }

    public static XConf Read(ReadOnlySpan<byte> source) => new(
        BinaryPrimitives.ReadUInt32LittleEndian(source),
        BinaryPrimitives.ReadUInt32LittleEndian(source[4..]),
        BinaryPrimitives.ReadUInt32LittleEndian(source[8..]),
        BinaryPrimitives.ReadUInt32LittleEndian(source[12..]));
}

/// <summary>
/// The version handshake, without message headers: the agent writes its version (u32); the daemon
/// answers with the session's version (from 1.4 on) and <see cref="XConf"/>.
/// </summary>
public static class Handshake
{
    /// <summary>The daemon's side: the session version for an agent's version, or why there is none.</summary>
    public static NegotiationResult Negotiate(uint agentVersion, out uint sessionVersion)
    {
        (uint major, uint minor) = GuiProtocol.Split(agentVersion);
        sessionVersion = 0;
        if (major != GuiProtocol.MajorVersion)
        {
            return major < GuiProtocol.MajorVersion ? NegotiationResult.AgentOutdated : NegotiationResult.DaemonTooOld;
        }
        sessionVersion = GuiProtocol.MajorVersion << 16 | Math.Min(minor, GuiProtocol.MinorVersion);
        return NegotiationResult.Accepted;
    }

    /// <summary>The daemon's answer: the session version when the agent takes one, then xconf. Returns its length.</summary>
    public static int WriteDaemonReply(Span<byte> destination, uint sessionVersion, XConf conf)
    {
        int length = 0;
        if (sessionVersion >= GuiProtocol.BidirectionalNegotiation)
        {
            BinaryPrimitives.WriteUInt32LittleEndian(destination, sessionVersion);
            length = 4;
        }
        conf.Write(destination[length..]);
        return length + XConf.Size;
    }

    /// <summary>
    /// The agent's side: whether it can work with the version the daemon answered (no higher than
    /// its own, major 1, minor 4 or more).
    /// </summary>
    public static bool AgentAccepts(uint daemonVersion, uint agentVersion = GuiProtocol.Version)
    {
        (uint major, uint minor) = GuiProtocol.Split(daemonVersion);
        return daemonVersion <= agentVersion && major == GuiProtocol.MajorVersion && minor >= 4;
    }

    /// <summary>What the daemon tells the user when the versions do not fit.</summary>
    public static string Describe(NegotiationResult result, uint agentVersion) => result switch
    {
        NegotiationResult.AgentOutdated => $"The GUI agent that runs in the qube is outdated (protocol {agentVersion >> 16}.{agentVersion & 0xFFFF}, this daemon speaks {GuiProtocol.MajorVersion}.{GuiProtocol.MinorVersion}): update the qube",
        NegotiationResult.DaemonTooOld => $"The GUI daemon is too old for the qube's agent (protocol {agentVersion >> 16}.{agentVersion & 0xFFFF}, this daemon speaks {GuiProtocol.MajorVersion}.{GuiProtocol.MinorVersion}): update dom0",
        _ => "accepted",
    };
}
