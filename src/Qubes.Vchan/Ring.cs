using System;
using System.Runtime.CompilerServices;

namespace Qubes.Vchan;

/// <summary>
/// One side of a vchan: the ring it reads, the ring it writes, and the two notify bytes.
///
/// ALGORITHM. Each ring is a single-producer single-consumer byte queue of size 2^order with
/// free-running u32 indexes <c>prod</c> and <c>cons</c>; byte i lives at <c>i &amp; (size-1)</c>.
/// The producer owns <c>prod</c>, the consumer owns <c>cons</c>. We keep our own index in a private
/// field (<see cref="_readCons"/>, <see cref="_writeProd"/>) and only publish it to the page, so a
/// peer that scribbles over our index in the shared page cannot move us.
///
/// UNTRUSTED INDEXES. The peer's index is read exactly once per computation into a local, and
/// <c>prod - cons</c> (u32) larger than the ring size is treated as 0 (nothing to read / no space):
/// a lying peer stalls its own connection. Every copy is at most <c>min(request, clamped count)</c>
/// bytes starting at a masked position and split at the ring end, so no access leaves the ring
/// whatever the peer writes.
///
/// ORDERING (each barrier and why).
///  read:  LoadAcquire(peer prod)  — the data loads below cannot be satisfied before the index
///         that says the data is there;
///         copy out;
///         StoreRelease(own cons) — our data loads complete before the peer can see the space
///         and overwrite it (LoadStore + StoreStore; the spec's "full barrier" is stronger than
///         needed here, the StoreLoad half is supplied by send-notify);
///  write: LoadAcquire(peer cons)  — we do not overwrite bytes before knowing the peer consumed
///         them (LoadStore);
///         copy in;
///         StoreRelease(own prod) — the data is visible before the index that publishes it.
///
/// NOTIFY PROTOCOL AND THE LOST-WAKEUP ARGUMENT. A side about to sleep first posts a request bit
/// into the byte its peer consumes (atomic OR, a full barrier), then re-reads the peer's index, and
/// sleeps only if there is still nothing to do. A side that moved its index runs send-notify: a
/// full fence, then it tests-and-clears the request bit in its own byte, signalling the event
/// channel if the bit was set. The fences order, on each side, "store index; load bit" and "store
/// bit; load index". Under that order, for the sleeper to miss the index update, its re-read must
/// come before the mover's index store, so its bit store (before the re-read) precedes the mover's
/// bit load (after the index store): the mover sees the bit and signals. Either the sleeper sees the
/// new index, or the mover sees the request; never neither. Spurious signals are harmless: every
/// waiter re-checks the ring after waking.
///
/// The fast path tests the own notify byte with a plain load after the fence and only pays for
/// the atomic clear when a bit is set, which is rare while the peer is spinning instead of sleeping.
///
/// This struct is not thread-safe: one thread uses a vchan at a time.
/// </summary>
internal unsafe struct Ring<TPage> where TPage : struct, IPageAccess
{
    private readonly TPage _page;
    private readonly IntPtr _readRing;
    private readonly IntPtr _writeRing;
    private readonly uint _readSize;
    private readonly uint _writeSize;
    private uint _readCons;   // private copy of the index we own on the read ring
    private uint _writeProd;  // private copy of the index we own on the write ring
    private readonly int _readProdOffset;   // peer-written
    private readonly int _readConsOffset;   // ours
    private readonly int _writeProdOffset;  // ours
    private readonly int _writeConsOffset;  // peer-written
    private readonly int _ownNotifyOffset;  // the byte we consume (peer sets requests in it)
    private readonly int _peerNotifyOffset; // the byte we set requests in
    private readonly int _peerLiveOffset;
    private readonly int _ownLiveOffset;

    public Ring(TPage page, bool isServer, IntPtr readRing, int readOrder, IntPtr writeRing, int writeOrder)
    {
        _page = page;
        _readRing = readRing;
        _writeRing = writeRing;
        _readSize = 1u << readOrder;
        _writeSize = 1u << writeOrder;
        if (isServer)
        {
            // server reads the left ring and writes the right ring
            _readProdOffset = VchanLayout.LeftProd;
            _readConsOffset = VchanLayout.LeftCons;
            _writeProdOffset = VchanLayout.RightProd;
            _writeConsOffset = VchanLayout.RightCons;
            _ownNotifyOffset = VchanLayout.SrvNotify;
            _peerNotifyOffset = VchanLayout.CliNotify;
            _ownLiveOffset = VchanLayout.SrvLive;
            _peerLiveOffset = VchanLayout.CliLive;
        }
        else
        {
            _readProdOffset = VchanLayout.RightProd;
            _readConsOffset = VchanLayout.RightCons;
            _writeProdOffset = VchanLayout.LeftProd;
            _writeConsOffset = VchanLayout.LeftCons;
            _ownNotifyOffset = VchanLayout.CliNotify;
            _peerNotifyOffset = VchanLayout.SrvNotify;
            _ownLiveOffset = VchanLayout.CliLive;
            _peerLiveOffset = VchanLayout.SrvLive;
        }
        // Our own indexes start where the page says: zero for a fresh page.
        _readCons = _page.LoadAcquire(_readConsOffset);
        _writeProd = _page.LoadAcquire(_writeProdOffset);
    }

    public readonly int ReadSize => (int)_readSize;

    public readonly int WriteSize => (int)_writeSize;

    /// <summary>Bytes ready to read (peer index read once, clamped), without posting a request.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public readonly int Ready()
    {
        uint prod = _page.LoadAcquire(_readProdOffset);
        uint ready = unchecked(prod - _readCons); // free-running counters: modulo 2^32
        return ready > _readSize ? 0 : (int)ready;
    }

    /// <summary>Free bytes in the write ring (peer index read once, clamped), without posting a request.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public readonly int Space()
    {
        uint cons = _page.LoadAcquire(_writeConsOffset);
        uint space = unchecked(_writeSize - (_writeProd - cons));
        return space > _writeSize ? 0 : (int)space;
    }

    /// <summary>Posts "signal me when you write" to the peer and returns the re-read ready count.</summary>
    public readonly int ReadyAfterRequest()
    {
        _page.FetchOr(_peerNotifyOffset, VchanLayout.NotifyWrite);
        return Ready();
    }

    /// <summary>Posts "signal me when you read" to the peer and returns the re-read free space.</summary>
    public readonly int SpaceAfterRequest()
    {
        _page.FetchOr(_peerNotifyOffset, VchanLayout.NotifyRead);
        return Space();
    }

    /// <summary>
    /// Largest run copied before the index is published. A long copy published in steps lets the
    /// peer start on the first part while we copy the rest, so both sides copy at once instead of
    /// taking turns over the whole ring.
    /// </summary>
    public const int PublishStep = 16 * 1024;

    /// <summary>
    /// Copies <paramref name="destination"/>.Length bytes out; the caller established that many are ready.
    /// Returns whether the peer asked to be signalled (the caller signals the event channel).
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public bool Consume(Span<byte> destination)
    {
        bool signal = false;
        while (true)
        {
            Span<byte> step = destination.Length > PublishStep ? destination[..PublishStep] : destination;
            uint n = (uint)step.Length;
            uint position = _readCons & (_readSize - 1);
            uint first = Math.Min(n, _readSize - position);
            _page.CopyOut(_readRing, position, step[..(int)first]);
            if (first < n)
            {
                _page.CopyOut(_readRing, 0, step[(int)first..]);
            }
            _readCons = unchecked(_readCons + n);
            _page.StoreRelease(_readConsOffset, _readCons);
            signal |= TakeRequest(VchanLayout.NotifyRead);
            if (destination.Length == step.Length)
            {
                return signal;
            }
            destination = destination[step.Length..];
        }
    }

    /// <summary>
    /// Copies <paramref name="source"/> in; the caller established that much space is free.
    /// Returns whether the peer asked to be signalled.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public bool Produce(ReadOnlySpan<byte> source)
    {
        bool signal = false;
        while (true)
        {
            ReadOnlySpan<byte> step = source.Length > PublishStep ? source[..PublishStep] : source;
            uint n = (uint)step.Length;
            uint position = _writeProd & (_writeSize - 1);
            uint first = Math.Min(n, _writeSize - position);
            _page.CopyIn(_writeRing, position, step[..(int)first]);
            if (first < n)
            {
                _page.CopyIn(_writeRing, 0, step[(int)first..]);
            }
            _writeProd = unchecked(_writeProd + n);
            _page.StoreRelease(_writeProdOffset, _writeProd);
            signal |= TakeRequest(VchanLayout.NotifyWrite);
            if (source.Length == step.Length)
            {
                return signal;
            }
            source = source[step.Length..];
        }
    }

    /// <summary>
    /// The contiguous run of the write ring that starts <paramref name="skip"/> bytes past our
    /// producer index and ends at the ring's end or at <paramref name="limit"/> bytes, whichever is
    /// first. The caller keeps <paramref name="skip"/> + run within the free space it established.
    /// </summary>
    public readonly Span<byte> WritableRun(int skip, int limit)
    {
        uint position = unchecked(_writeProd + (uint)skip) & (_writeSize - 1);
        int run = (int)Math.Min((uint)limit, _writeSize - position);
        return new Span<byte>((byte*)_writeRing + position, run);
    }

    /// <summary>Copies <paramref name="source"/> into the write ring at <paramref name="skip"/> bytes past our producer index, split at the ring end; publishes nothing.</summary>
    public readonly void PlaceAt(int skip, ReadOnlySpan<byte> source)
    {
        uint position = unchecked(_writeProd + (uint)skip) & (_writeSize - 1);
        uint first = Math.Min((uint)source.Length, _writeSize - position);
        _page.CopyIn(_writeRing, position, source[..(int)first]);
        if (first < (uint)source.Length)
        {
            _page.CopyIn(_writeRing, 0, source[(int)first..]);
        }
    }

    /// <summary>Publishes <paramref name="count"/> bytes placed in the write ring; returns whether the peer asked to be signalled.</summary>
    public bool CommitWrite(int count)
    {
        _writeProd = unchecked(_writeProd + (uint)count);
        _page.StoreRelease(_writeProdOffset, _writeProd);
        return TakeRequest(VchanLayout.NotifyWrite);
    }

    /// <summary>
    /// The contiguous run of ready bytes at our consumer index, at most <paramref name="limit"/> (the
    /// caller established that many are ready, or fewer are returned up to the ring end). The bytes
    /// live in memory the peer can still write: copy what must be validated.
    /// </summary>
    public readonly ReadOnlySpan<byte> ReadableRun(int limit)
    {
        uint position = _readCons & (_readSize - 1);
        int run = (int)Math.Min((uint)limit, _readSize - position);
        return new ReadOnlySpan<byte>((byte*)_readRing + position, run);
    }

    /// <summary>Consumes <paramref name="count"/> bytes read in place; returns whether the peer asked to be signalled.</summary>
    public bool CommitRead(int count)
    {
        _readCons = unchecked(_readCons + (uint)count);
        _page.StoreRelease(_readConsOffset, _readCons);
        return TakeRequest(VchanLayout.NotifyRead);
    }

    /// <summary>send_notify: fence, then test-and-clear the peer's request bit in our own byte.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private readonly bool TakeRequest(byte bit)
    {
        _page.FullFence();
        if ((_page.LoadByteAcquire(_ownNotifyOffset) & bit) == 0)
        {
            return false;
        }
        return (_page.FetchAndClear(_ownNotifyOffset, bit) & bit) != 0;
    }

    /// <summary>The peer's live byte: 0 exited, 1 connected, 2 not yet connected (any other value: treated as open).</summary>
    public readonly byte PeerLive => _page.LoadByteAcquire(_peerLiveOffset);

    /// <summary>Publishes our own live byte.</summary>
    public readonly void SetOwnLive(byte value) => _page.StoreByteRelease(_ownLiveOffset, value);

    /// <summary>Overwrites the peer's live byte (a client that found the channel unbound marks the server gone).</summary>
    public readonly void ClearPeerLive() => _page.StoreByteRelease(_peerLiveOffset, VchanLayout.LiveExited);

    /// <summary>Sets a request bit in the byte the peer consumes (used at connect).</summary>
    public readonly void StoreRequest(byte bits) => _page.StoreByteRelease(_peerNotifyOffset, bits);

    /// <summary>The page access, for tests that inspect it.</summary>
    public readonly TPage Page => _page;
}
