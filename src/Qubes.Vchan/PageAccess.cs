using System;
using System.Runtime.CompilerServices;
using System.Threading;

namespace Qubes.Vchan;

/// <summary>
/// Every access the ring makes to shared memory, named for its ordering. The ring is generic over
/// this interface so that a recording double can check the order of the ordered accesses; the real
/// implementation, <see cref="SharedPage"/>, is a struct and inlines to plain loads, stores and
/// locked instructions.
/// </summary>
internal interface IPageAccess
{
    /// <summary>Load of a 32-bit index; later loads and stores stay after it.</summary>
    uint LoadAcquire(int offset);

    /// <summary>Store of a 32-bit index; earlier loads and stores stay before it.</summary>
    void StoreRelease(int offset, uint value);

    /// <summary>Load of a byte (live and notify bytes); later accesses stay after it.</summary>
    byte LoadByteAcquire(int offset);

    /// <summary>Store of a byte; earlier accesses stay before it.</summary>
    void StoreByteRelease(int offset, byte value);

    /// <summary>Full barrier: earlier stores are visible before later loads.</summary>
    void FullFence();

    /// <summary>Atomic OR of <paramref name="bits"/> into a byte; a full barrier.</summary>
    void FetchOr(int offset, byte bits);

    /// <summary>Atomic clear of <paramref name="bits"/> in a byte, returning the value before; a full barrier.</summary>
    byte FetchAndClear(int offset, byte bits);

    /// <summary>Copies ring bytes out (one contiguous part).</summary>
    void CopyOut(IntPtr ring, uint position, Span<byte> destination);

    /// <summary>Copies bytes into the ring (one contiguous part).</summary>
    void CopyIn(IntPtr ring, uint position, ReadOnlySpan<byte> source);
}

/// <summary>The shared control page at a fixed address, accessed with the orderings its names say.</summary>
internal readonly unsafe struct SharedPage : IPageAccess
{
    /// <summary>
    /// Bound on compare-and-swap retries. Only a peer storing to the same byte between our load and
    /// our swap makes one fail; a peer that does so endlessly is hostile, and giving up (as the
    /// callers document) costs it nothing but its own notifications.
    /// </summary>
    private const int MaxCasAttempts = 1024;

    private readonly byte* _base;

    public SharedPage(byte* controlPage) => _base = controlPage;

    public byte* Base => _base;

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public uint LoadAcquire(int offset) => Volatile.Read(ref *(uint*)(_base + offset));

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public void StoreRelease(int offset, uint value) => Volatile.Write(ref *(uint*)(_base + offset), value);

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public byte LoadByteAcquire(int offset) => Volatile.Read(ref _base[offset]);

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public void StoreByteRelease(int offset, byte value) => Volatile.Write(ref _base[offset], value);

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public void FullFence() => Interlocked.MemoryBarrier();

    public void FetchOr(int offset, byte bits)
    {
        ref byte b = ref _base[offset];
        byte seen = Volatile.Read(ref b);
        for (int i = 0; i < MaxCasAttempts; i++)
        {
            byte prior = Interlocked.CompareExchange(ref b, (byte)(seen | bits), seen);
            if (prior == seen)
            {
                return;
            }
            seen = prior;
        }
        // Give up: the request may be lost, so the peer may not signal; only a hostile peer gets here.
        Interlocked.MemoryBarrier();
    }

    public byte FetchAndClear(int offset, byte bits)
    {
        ref byte b = ref _base[offset];
        byte seen = Volatile.Read(ref b);
        for (int i = 0; i < MaxCasAttempts; i++)
        {
            byte prior = Interlocked.CompareExchange(ref b, (byte)(seen & ~bits), seen);
            if (prior == seen)
            {
                return prior;
            }
            seen = prior;
        }
        // Give up and report the bits as set: the caller then signals, which is always safe.
        Interlocked.MemoryBarrier();
        return (byte)(seen | bits);
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public void CopyOut(IntPtr ring, uint position, Span<byte> destination)
        => new ReadOnlySpan<byte>((byte*)ring + position, destination.Length).CopyTo(destination);

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public void CopyIn(IntPtr ring, uint position, ReadOnlySpan<byte> source)
        => source.CopyTo(new Span<byte>((byte*)ring + position, source.Length));
}
