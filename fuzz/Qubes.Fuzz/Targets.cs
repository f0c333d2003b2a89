using System;
using System.Buffers.Binary;
using Qubes.Interop.Linux;
using Qubes.Platform.Loopback;
using Qubes.Platform.Xenstore;
using Qubes.Vchan;

namespace Qubes.Fuzz;

/// <summary>A fuzz target: one untrusted parser or state machine, fed one input at a time.</summary>
internal interface ITarget
{
    string Name { get; }

    /// <summary>Inputs to start mutating from.</summary>
    byte[][] Seeds { get; }

    /// <summary>Runs one input; throws <see cref="FuzzFailure"/> when an invariant breaks.</summary>
    void Run(ReadOnlySpan<byte> input);
}

/// <summary>An invariant of a target did not hold.</summary>
internal sealed class FuzzFailure(string message) : Exception(message);

/// <summary>The broker's one parser of what a domain sends: header framing and every request payload.</summary>
internal sealed class BrokerRequestTarget : ITarget
{
    private readonly GuardedMemory _memory = new(XenstoreWire.HeaderSize + XenstoreWire.MaxPayload + 64);

    public string Name => "broker-request";

    public byte[][] Seeds =>
    [
        Message(MessageType.Read, "/local/domain/1/domid\0"u8),
        Message(MessageType.Write, "data/vchan/2/5/ring-ref\07"u8),
        Message(MessageType.SetPerms, "x\0n1\0r2\0"u8),
        Message(MessageType.Watch, "@releaseDomain\0tok\0"u8),
        Message(MessageType.TransactionEnd, "T\0"u8),
        Message(MessageType.GrantMap, [2, 0, 0, 0, 1, 0, 0, 0, 2, 0, 0, 0, 1, 0, 0, 0, 9, 0, 0, 0]),
        Message(MessageType.GrantAlloc, [3, 0, 0, 0, 16, 0, 0, 0, 1, 0, 0, 0]),
        Message(MessageType.CreateDomain, "work\0"u8),
        Message(MessageType.EvtchnBind, [1, 0, 0, 0, 4, 0, 0, 0]),
    ];

    private static byte[] Message(MessageType type, ReadOnlySpan<byte> payload)
    {
        byte[] m = new byte[XenstoreWire.HeaderSize + payload.Length];
        BinaryPrimitives.WriteUInt32LittleEndian(m, (uint)type);
        BinaryPrimitives.WriteUInt32LittleEndian(m.AsSpan(4), 1);
        BinaryPrimitives.WriteUInt32LittleEndian(m.AsSpan(12), (uint)payload.Length);
        payload.CopyTo(m.AsSpan(XenstoreWire.HeaderSize));
        return m;
    }

    public void Run(ReadOnlySpan<byte> input)
    {
        ReadOnlySpan<byte> placed = _memory.Place(input);
        FrameStatus status = XenstoreHeader.TryRead(placed, out XenstoreHeader header);
        if (status != FrameStatus.Complete)
        {
            return;
        }
        if (header.Length < 0 || header.Length > XenstoreWire.MaxPayload || placed.Length < header.TotalLength)
        {
            throw new FuzzFailure($"framing accepted a {header.Length}-byte payload in {placed.Length} bytes");
        }
        ReadOnlySpan<byte> payload = placed.Slice(XenstoreWire.HeaderSize, header.Length);
        Errno e = RequestParser.Parse(header, payload, out BrokerRequest request);
        if (e != Errno.None)
        {
            return;
        }
        if (request.Refs.Length % 4 != 0)
        {
            throw new FuzzFailure("grant refs not a whole number of u32");
        }
        if (request.Path.IndexOf((byte)0) >= 0)
        {
            throw new FuzzFailure("a parsed path contains NUL");
        }
        for (int i = 0; i < request.RefCount; i++)
        {
            _ = request.RefAt(i);
        }
    }
}

/// <summary>
/// The ring under a peer that writes anything into the shared page between our operations. The
/// rings end at guard pages: a copy that left a ring would fault. Input: a stream of operations.
/// </summary>
internal sealed unsafe class VchanRingTarget : ITarget
{
    private readonly GuardedMemory _page = new(4096);
    private readonly GuardedMemory _left = new(1 << 16);
    private readonly GuardedMemory _right = new(1 << 16);
    private readonly byte[] _buffer = new byte[1 << 17];

    public string Name => "vchan-ring";

    public byte[][] Seeds =>
    [
        [12, 12, 0, 0, 1, 10, 2, 200, 3, 4],
        [10, 11, 5, 4, 255, 255, 255, 255, 1, 200, 2, 100],
        [16, 13, 5, 1, 0, 0, 0, 128, 2, 255, 1, 255, 6, 7],
    ];

    public void Run(ReadOnlySpan<byte> input)
    {
        if (input.Length < 2)
        {
            return;
        }
        int leftOrder = 10 + input[0] % 7;   // 10..16: rings fit the guarded regions
        int rightOrder = 10 + input[1] % 7;
        if (VchanLayout.ValidateOrders(leftOrder, rightOrder) != null)
        {
            return;
        }
        byte* page = (byte*)_page.Tail(4096);
        new Span<byte>(page, 4096).Clear();
        IntPtr left = leftOrder < 12 ? (IntPtr)(page + VchanLayout.InPageRingOffset(leftOrder)) : _left.Tail(1 << leftOrder);
        IntPtr right = rightOrder < 12 ? (IntPtr)(page + VchanLayout.InPageRingOffset(rightOrder)) : _right.Tail(1 << rightOrder);
        var server = new Ring<SharedPage>(new SharedPage(page), isServer: true, left, leftOrder, right, rightOrder);
        var client = new Ring<SharedPage>(new SharedPage(page), isServer: false, right, rightOrder, left, leftOrder);
        for (int i = 2; i + 1 < input.Length; i += 2)
        {
            int op = input[i] % 8;
            int arg = input[i + 1];
            ref Ring<SharedPage> side = ref (op & 1) == 0 ? ref server : ref client;
            switch (op >> 1)
            {
                case 0:
                    // the peer writes a field: index (0..15), orders (16..19) or a live/notify byte
                    if (i + 5 < input.Length)
                    {
                        int field = arg % 24 & ~3;
                        *(uint*)(page + field) = BinaryPrimitives.ReadUInt32LittleEndian(input.Slice(i + 2, 4));
                        i += 4;
                    }
                    break;
                case 1:
                    Check(side.Ready(), side.ReadSize, "ready");
                    side.Consume(_buffer.AsSpan(0, Math.Min(side.Ready(), arg * 512)));
                    break;
                case 2:
                    Check(side.Space(), side.WriteSize, "space");
                    side.Produce(_buffer.AsSpan(0, Math.Min(side.Space(), arg * 512)));
                    break;
                default:
                    Check(side.ReadyAfterRequest(), side.ReadSize, "ready after request");
                    Check(side.SpaceAfterRequest(), side.WriteSize, "space after request");
                    break;
            }
        }
    }

    private static void Check(int value, int ringSize, string what)
    {
        if (value < 0 || value > ringSize)
        {
            throw new FuzzFailure($"{what} {value} outside 0..{ringSize}");
        }
    }
}

/// <summary>Order validation against a slow oracle that lays out every byte range and looks for overlaps.</summary>
internal sealed class OrdersTarget : ITarget
{
    public string Name => "vchan-orders";

    public byte[][] Seeds => [[10, 0, 11, 0], [20, 0, 10, 0], [20, 0, 20, 0], [12, 0, 12, 0], [9, 0, 255, 255]];

    public void Run(ReadOnlySpan<byte> input)
    {
        if (input.Length < 4)
        {
            return;
        }
        int left = BinaryPrimitives.ReadUInt16LittleEndian(input);
        int right = BinaryPrimitives.ReadUInt16LittleEndian(input[2..]);
        bool valid = VchanLayout.ValidateOrders(left, right) == null;
        if (valid != Oracle(left, right))
        {
            throw new FuzzFailure($"orders {left}/{right}: validation says {(valid ? "valid" : "invalid")}, the oracle disagrees");
        }
    }

    private static bool Oracle(int left, int right)
    {
        if (left is < 10 or > 20 || right is < 10 or > 20)
        {
            return false;
        }
        bool[] used = new bool[4096];
        bool Claim(int start, int length)
        {
            for (int b = start; b < start + length; b++)
            {
                if (used[b])
                {
                    return false;
                }
                used[b] = true;
            }
            return true;
        }
        int pages = (left >= 12 ? 1 << (left - 12) : 0) + (right >= 12 ? 1 << (right - 12) : 0);
        if (!Claim(0, 24) || !Claim(24, 4 * pages))
        {
            return false;
        }
        foreach (int order in new[] { left, right })
        {
            if (order == 10 && !Claim(1024, 1024))
            {
                return false;
            }
            if (order == 11 && !Claim(2048, 2048))
            {
                return false;
            }
        }
        return true;
    }
}
