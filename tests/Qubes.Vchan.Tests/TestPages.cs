using System;
using System.Collections.Generic;
using System.Runtime.InteropServices;
using System.Threading;

namespace Qubes.Vchan.Tests;

/// <summary>A control page plus both rings in native memory, as one server/client pair would share them.</summary>
internal sealed unsafe class PageAndRings : IDisposable
{
    public PageAndRings(int leftOrder, int rightOrder)
    {
        LeftOrder = leftOrder;
        RightOrder = rightOrder;
        Page = (byte*)NativeMemory.AlignedAlloc(VchanLayout.PageSize, VchanLayout.PageSize);
        new Span<byte>(Page, VchanLayout.PageSize).Clear();
        *(ushort*)(Page + VchanLayout.LeftOrder) = (ushort)leftOrder;
        *(ushort*)(Page + VchanLayout.RightOrder) = (ushort)rightOrder;
        Page[VchanLayout.CliLive] = VchanLayout.LiveConnected;
        Page[VchanLayout.SrvLive] = VchanLayout.LiveConnected;
        Left = Ring(leftOrder);
        Right = Ring(rightOrder);
    }

    public int LeftOrder { get; }
    public int RightOrder { get; }
    public byte* Page { get; }
    public IntPtr Left { get; }
    public IntPtr Right { get; }

    private IntPtr Ring(int order) => order < VchanLayout.PageShift
        ? (IntPtr)(Page + VchanLayout.InPageRingOffset(order))
        : (IntPtr)NativeMemory.AlignedAlloc((nuint)(1 << order), VchanLayout.PageSize);

    public Ring<TPage> Server<TPage>(TPage page) where TPage : struct, IPageAccess
        => new(page, isServer: true, Left, LeftOrder, Right, RightOrder);

    public Ring<TPage> Client<TPage>(TPage page) where TPage : struct, IPageAccess
        => new(page, isServer: false, Right, RightOrder, Left, LeftOrder);

    public void Dispose()
    {
        if (LeftOrder >= VchanLayout.PageShift)
        {
            NativeMemory.AlignedFree((void*)Left);
        }
        if (RightOrder >= VchanLayout.PageShift)
        {
            NativeMemory.AlignedFree((void*)Right);
        }
        NativeMemory.AlignedFree(Page);
    }
}

/// <summary>
/// A page access that logs every ordered operation and checks every ring copy against the ring's
/// bounds, for tests of the order of accesses and of "no access leaves the ring".
/// </summary>
internal readonly unsafe struct RecordingPage : IPageAccess
{
    private readonly byte* _base;
    private readonly List<string> _log;
    private readonly Dictionary<IntPtr, int> _ringSizes;

    public RecordingPage(byte* page, List<string> log, Dictionary<IntPtr, int> ringSizes)
    {
        _base = page;
        _log = log;
        _ringSizes = ringSizes;
    }

    private static string Field(int offset) => offset switch
    {
        VchanLayout.LeftCons => "left.cons",
        VchanLayout.LeftProd => "left.prod",
        VchanLayout.RightCons => "right.cons",
        VchanLayout.RightProd => "right.prod",
        VchanLayout.CliLive => "cli_live",
        VchanLayout.SrvLive => "srv_live",
        VchanLayout.CliNotify => "cli_notify",
        VchanLayout.SrvNotify => "srv_notify",
        _ => offset.ToString(System.Globalization.CultureInfo.InvariantCulture),
    };

    public uint LoadAcquire(int offset)
    {
        _log.Add("acquire " + Field(offset));
        return Volatile.Read(ref *(uint*)(_base + offset));
    }

    public void StoreRelease(int offset, uint value)
    {
        _log.Add("release " + Field(offset));
        Volatile.Write(ref *(uint*)(_base + offset), value);
    }

    public byte LoadByteAcquire(int offset)
    {
        _log.Add("acquire " + Field(offset));
        return Volatile.Read(ref _base[offset]);
    }

    public void StoreByteRelease(int offset, byte value)
    {
        _log.Add("release " + Field(offset));
        Volatile.Write(ref _base[offset], value);
    }

    public void FullFence() => _log.Add("fence");

    public void FetchOr(int offset, byte bits)
    {
        _log.Add("fetch-or " + Field(offset));
        _base[offset] |= bits;
    }

    public byte FetchAndClear(int offset, byte bits)
    {
        _log.Add("fetch-and " + Field(offset));
        byte prior = _base[offset];
        _base[offset] = (byte)(prior & ~bits);
        return prior;
    }

    public void CopyOut(IntPtr ring, uint position, Span<byte> destination)
    {
        CheckBounds(ring, position, destination.Length);
        _log.Add("copy-out");
        new ReadOnlySpan<byte>((byte*)ring + position, destination.Length).CopyTo(destination);
    }

    public void CopyIn(IntPtr ring, uint position, ReadOnlySpan<byte> source)
    {
        CheckBounds(ring, position, source.Length);
        _log.Add("copy-in");
        source.CopyTo(new Span<byte>((byte*)ring + position, source.Length));
    }

    private void CheckBounds(IntPtr ring, uint position, int length)
    {
        if (!_ringSizes.TryGetValue(ring, out int size))
        {
            throw new InvalidOperationException($"copy from an address that is not a ring: {ring}");
        }
        if (length < 0 || position > (uint)size || (uint)length > (uint)size - position)
        {
            throw new InvalidOperationException($"copy leaves the ring: position {position}, length {length}, size {size}");
        }
    }
}
