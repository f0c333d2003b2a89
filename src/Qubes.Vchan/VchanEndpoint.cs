using System;
using System.Diagnostics;
using System.Globalization;
using System.Runtime.CompilerServices;
using System.Threading;
using Qubes.Interop.Linux;
using Qubes.Platform;

namespace Qubes.Vchan;

/// <summary>
/// A vchan endpoint: a reliable, ordered byte stream to one other domain over two shared rings
/// (see <see cref="Ring{TPage}"/> for the algorithm and <see cref="VchanLayout"/> for the page).
/// Return conventions follow libvchan: −1 error or closed, 0 would block (non-blocking mode), else
/// a byte count. Nothing a peer writes makes these methods throw. Not thread-safe: one thread at a
/// time. In blocking mode waits spin for <see cref="SpinMicroseconds"/> before sleeping on the
/// event channel; a caller that polls <see cref="EventFd"/> itself must first call
/// <see cref="DataReady"/> or <see cref="BufferSpace"/>, which post the wake-up request.
/// </summary>
public sealed unsafe class VchanEndpoint : IDisposable
{
    /// <summary>Default spin before sleeping: about the cost of one cross-core blocking wake-up, so spinning never loses more than a factor of two.</summary>
    public const int DefaultSpinMicroseconds = 50;

    /// <summary>Milliseconds between liveness checks of the peer domain while a server waits for its client.</summary>
    public const int WaitingServerPollMs = 10_000;

    private Ring<SharedPage> _ring;
    private readonly IPlatform _platform;
    private readonly IEventChannel _channel;
    private readonly ISharedPages _control;
    private readonly ISharedPages? _leftPages;
    private readonly ISharedPages? _rightPages;
    private readonly bool _isServer;
    private readonly int _peerDomain;
    private string? _storePath;
    // the ring-ref value this server published: its entry is removed only while it still says this
    private string? _publishedRef;
    private long _spinTicks;
    private bool _peerGone;
    private bool _closed;

    /// <summary>
    /// <paramref name="left"/> and <paramref name="right"/>: where the rings are mapped (in the control
    /// page, after it in the same region, or in their own regions <paramref name="leftPages"/> and
    /// <paramref name="rightPages"/>, which this endpoint releases).
    /// </summary>
    private VchanEndpoint(IPlatform platform, bool isServer, int peerDomain, IEventChannel channel, ISharedPages control,
        ISharedPages? leftPages, ISharedPages? rightPages, IntPtr left, int leftOrder, IntPtr right, int rightOrder)
    {
        _platform = platform;
        _isServer = isServer;
        _peerDomain = peerDomain;
        _channel = channel;
        _control = control;
        _leftPages = leftPages;
        _rightPages = rightPages;
        var page = new SharedPage((byte*)control.Address);
        _ring = isServer
            ? new Ring<SharedPage>(page, isServer: true, left, leftOrder, right, rightOrder)
            : new Ring<SharedPage>(page, isServer: false, right, rightOrder, left, leftOrder);
        SpinMicroseconds = DefaultSpinMicroseconds;
    }

    /// <summary>Whether reads and writes wait (true) or return 0 when they cannot proceed.</summary>
    public bool Blocking { get; set; } = true;

    /// <summary>How long a blocking wait spins on the ring before sleeping; 0 sleeps at once.</summary>
    public int SpinMicroseconds
    {
        get => (int)(_spinTicks * 1_000_000 / Stopwatch.Frequency);
        set => _spinTicks = Math.Max(0, value) * Stopwatch.Frequency / 1_000_000;
    }

    /// <summary>Whether this end is the server (allocated the rings).</summary>
    public bool IsServer => _isServer;

    /// <summary>The domain at the other end.</summary>
    public int PeerDomain => _peerDomain;

    /// <summary>Size in bytes of the ring this end reads.</summary>
    public int ReadRingSize => _ring.ReadSize;

    /// <summary>Size in bytes of the ring this end writes.</summary>
    public int WriteRingSize => _ring.WriteSize;

    /// <summary>The shared control page (tests that play a hostile peer write into it).</summary>
    internal IntPtr ControlPage => _control.Address;

    /// <summary>A descriptor that polls readable when an event is pending; acknowledge with <see cref="Wait"/>.</summary>
    public int EventFd => _channel.Fd;

    // ------------------------------------------------------------------ set-up

    /// <summary>
    /// Creates the server end for <paramref name="peerDomain"/> on <paramref name="port"/>: allocates
    /// the rings (sized from the minimums as libxenvchan does), publishes them under
    /// <c>data/vchan/&lt;peer&gt;/&lt;port&gt;</c> readable only by the peer, and returns at once
    /// (state <see cref="VchanState.Waiting"/> until the client connects). Server ends are blocking.
    /// </summary>
    public static VchanEndpoint ServerInit(IPlatform platform, int peerDomain, int port, int readMin, int writeMin)
    {
        ArgumentNullException.ThrowIfNull(platform);
        if (!VchanLayout.TrySelectOrders(readMin, writeMin, out int leftOrder, out int rightOrder))
        {
            throw new VchanException($"ring size out of range (read_min {readMin}, write_min {writeMin}, limit {VchanLayout.MaxRingSize})");
        }
        return ServerInitWithOrders(platform, peerDomain, port, leftOrder, rightOrder);
    }

    /// <summary>The server set-up with the orders already chosen (tests use it for pairs the selection rule never produces).</summary>
    internal static VchanEndpoint ServerInitWithOrders(IPlatform platform, int peerDomain, int port, int leftOrder, int rightOrder)
    {
        CheckAddress(peerDomain, port);
        if (VchanLayout.ValidateOrders(leftOrder, rightOrder) is string invalid)
        {
            throw new VchanException(invalid);
        }
        IEventChannel? channel = null;
        IGrantedPages? control = null, right = null;
        try
        {
            channel = platform.EventChannels.AllocateUnbound(peerDomain);
            // the client writes the control page and the left ring: one grant covers both, the left
            // ring's pages right after the control page; the client only reads the right ring
            int leftCount = VchanLayout.GrantedPages(leftOrder);
            int rightCount = VchanLayout.GrantedPages(rightOrder);
            control = platform.Grants.Share(peerDomain, 1 + leftCount, readOnly: false);
            control.SetUnmapNotify(VchanLayout.SrvLive, channel);
            byte* page = (byte*)control.Address;
            new Span<byte>(page, VchanLayout.PageSize).Clear();
            *(ushort*)(page + VchanLayout.LeftOrder) = (ushort)leftOrder;
            *(ushort*)(page + VchanLayout.RightOrder) = (ushort)rightOrder;
            page[VchanLayout.CliLive] = VchanLayout.LiveWaiting;
            page[VchanLayout.SrvLive] = VchanLayout.LiveConnected;
            page[VchanLayout.CliNotify] = VchanLayout.NotifyWrite;

            uint* grants = (uint*)(page + VchanLayout.GrantList);
            control.Refs[1..].CopyTo(new Span<uint>(grants, leftCount));
            if (rightCount > 0)
            {
                right = platform.Grants.Share(peerDomain, rightCount, readOnly: true);
                right.Refs.CopyTo(new Span<uint>(grants + leftCount, rightCount));
            }
            Interlocked.MemoryBarrier();

            IntPtr leftRing = leftCount > 0 ? control.Address + VchanLayout.PageSize : InPageRing(control, leftOrder);
            var vchan = new VchanEndpoint(platform, isServer: true, peerDomain, channel, control, null, right,
                leftRing, leftOrder, right?.Address ?? InPageRing(control, rightOrder), rightOrder);
            vchan._storePath = StoreEntry(peerDomain, port);
            vchan._publishedRef = control.Refs[0].ToString(CultureInfo.InvariantCulture);
            Publish(platform, vchan._storePath, peerDomain, control.Refs[0], channel.LocalPort);
            return vchan;
        }
        catch (Exception e) when (e is PlatformException or LinuxException)
        {
            right?.Dispose();
            control?.Dispose();
            channel?.Dispose();
            throw new VchanException($"vchan server for domain {peerDomain} port {port}: {e.Message}", e);
        }
    }

    /// <summary>
    /// Connects to the server end published by <paramref name="serverDomain"/> on <paramref name="port"/>,
    /// waiting (without bound) until it appears. Throws <see cref="VchanException"/> on failure,
    /// including a server whose domain dies first or that publishes an invalid page.
    /// </summary>
    public static VchanEndpoint ClientInit(IPlatform platform, int serverDomain, int port)
    {
        using VchanConnector connector = VchanConnector.Start(platform, serverDomain, port);
        while (true)
        {
            int r = connector.Finish(blocking: true, out VchanEndpoint? vchan);
            if (r == 0)
            {
                return vchan!;
            }
            if (r < 0)
            {
                throw new VchanException(connector.Error ?? "vchan connect failed");
            }
            if (Fd.PollIn(connector.WatchFd, -1) != 1)
            {
                throw new VchanException("vchan connect: store connection failed while waiting");
            }
        }
    }

    /// <summary>§6.2: bind, map, validate, map the rings, announce. The store values were read by the caller.</summary>
    internal static VchanEndpoint Connect(IPlatform platform, int serverDomain, uint ringRef, uint eventPort, bool blocking)
    {
        IEventChannel? channel = null;
        IMappedPages? control = null, left = null, right = null;
        try
        {
            channel = platform.EventChannels.BindInterdomain(serverDomain, eventPort);
            control = platform.Grants.Map(serverDomain, [ringRef], writable: true);
            control.SetUnmapNotify(VchanLayout.CliLive, channel);
            byte* page = (byte*)control.Address;
            // each order read once; only the locals are used from here on
            int leftOrder = Volatile.Read(ref *(ushort*)(page + VchanLayout.LeftOrder));
            int rightOrder = Volatile.Read(ref *(ushort*)(page + VchanLayout.RightOrder));
            string? invalid = VchanLayout.ValidateOrders(leftOrder, rightOrder);
            if (invalid != null)
            {
                throw new VchanException($"server domain {serverDomain} published an invalid vchan page: {invalid}");
            }
            int leftCount = VchanLayout.GrantedPages(leftOrder);
            int rightCount = VchanLayout.GrantedPages(rightOrder);
            uint[] refs = new uint[leftCount + rightCount];
            uint* grants = (uint*)(page + VchanLayout.GrantList);
            for (int i = 0; i < refs.Length; i++)
            {
                refs[i] = Volatile.Read(ref grants[i]);
            }
            if (leftCount > 0)
            {
                left = platform.Grants.Map(serverDomain, refs.AsSpan(0, leftCount), writable: true);
            }
            if (rightCount > 0)
            {
                right = platform.Grants.Map(serverDomain, refs.AsSpan(leftCount), writable: false);
            }
            var vchan = new VchanEndpoint(platform, isServer: false, serverDomain, channel, control, left, right,
                left?.Address ?? InPageRing(control, leftOrder), leftOrder, right?.Address ?? InPageRing(control, rightOrder), rightOrder)
            {
                Blocking = blocking,
            };
            vchan._ring.SetOwnLive(VchanLayout.LiveConnected);
            vchan._ring.StoreRequest(VchanLayout.NotifyWrite);
            channel.Notify();
            return vchan;
        }
        catch (Exception e) when (e is PlatformException or LinuxException or VchanException)
        {
            right?.Dispose();
            left?.Dispose();
            control?.Dispose();
            channel?.Dispose();
            throw e as VchanException ?? new VchanException($"vchan connect to domain {serverDomain}: {e.Message}", e);
        }
    }

    internal static void CheckAddress(int domain, int port)
    {
        if (!DomainIds.IsValid(domain))
        {
            throw new VchanException($"invalid domain id {domain}");
        }
        if (port < 0)
        {
            throw new VchanException($"invalid vchan port {port}");
        }
    }

    private static string StoreEntry(int peerDomain, int port)
        => string.Create(CultureInfo.InvariantCulture, $"data/vchan/{peerDomain}/{port}");

    private static void Publish(IPlatform platform, string path, int peerDomain, uint ringRef, uint eventPort)
    {
        IStore store = platform.Store;
        int own = platform.Domains.OwnId;
        StorePermission[] permissions = [new(own, StoreAccess.None), new(peerDomain, StoreAccess.Read)];
        string refKey = path + "/ring-ref";
        string portKey = path + "/event-channel";
        ReadOnlySpan<StoreRequest> requests =
        [
            StoreRequest.Write(refKey, ringRef.ToString(CultureInfo.InvariantCulture)),
            StoreRequest.Write(portKey, eventPort.ToString(CultureInfo.InvariantCulture)),
            StoreRequest.SetPermissions(refKey, permissions),
            StoreRequest.SetPermissions(portKey, permissions),
            StoreRequest.Commit(),
        ];
        while (true)
        {
            uint tx = StartTransaction(store);
            StoreAnswer[] answers = store.Batch(requests, tx);
            for (int i = 0; i < answers.Length - 1; i++)
            {
                if (!answers[i].Ok)
                {
                    store.TransactionEnd(tx, commit: false);
                    answers[i].ThrowIfFailed(requests[i].Operation.ToString(), requests[i].Path);
                }
            }
            if (answers[^1].Ok)
            {
                return;
            }
            if (answers[^1].Error != Errno.EAGAIN)
            {
                answers[^1].ThrowIfFailed("transaction-end", path);
            }
        }
    }

    /// <summary>Most time spent waiting for a transaction slot of the store connection.</summary>
    private const int TransactionWaitMs = 10_000;

    /// <summary>
    /// Starts a store transaction; while the connection has all the open transactions it may have
    /// (ENOSPC: other threads of this domain are publishing channels too), waits for one to end.
    /// </summary>
    private static uint StartTransaction(IStore store)
    {
        long deadline = Environment.TickCount64 + TransactionWaitMs;
        int backoffMs = 1;
        while (true)
        {
            try
            {
                return store.TransactionStart();
            }
            catch (StoreException e) when (e.Errno == Errno.ENOSPC && Environment.TickCount64 < deadline)
            {
                System.Threading.Thread.Sleep(backoffMs);
                backoffMs = Math.Min(backoffMs * 2, 20);
            }
        }
    }

    /// <summary>Where a ring of <paramref name="order"/> lies when it fits in the control page.</summary>
    private static IntPtr InPageRing(ISharedPages control, int order) => control.Address + VchanLayout.InPageRingOffset(order);

    /// <summary>Transactions tried for a store entry's removal before it goes without one.</summary>
    private const int RemovalTransactionAttempts = 8;

    /// <summary>
    /// Removes the server's store entry, and the peer directory if that left it empty, once; only
    /// while the entry still names this channel (a later server of the same port may have replaced
    /// it). One transaction does it all, as upstream. But the entry must go whatever the load: when
    /// many channels of this domain are set up at once, a transaction may conflict again and again
    /// or find no free slot, and an entry left behind names a closed channel to the next client of
    /// the port, whose call then fails. So after a few tries the entry goes by plain requests
    /// (the peer directory stays: removing it safely needs the transaction).
    /// </summary>
    private void RemoveStoreEntry()
    {
        string? path = _storePath;
        if (path == null)
        {
            return;
        }
        _storePath = null;
        string parent = path[..path.LastIndexOf('/')];
        string refKey = path + "/ring-ref";
        string port = path[(parent.Length + 1)..];
        try
        {
            IStore store = _platform.Store;
            for (int attempt = 0; attempt < RemovalTransactionAttempts; attempt++)
            {
                uint tx;
                try
                {
                    tx = store.TransactionStart();
                }
                catch (StoreException e) when (e.Errno == Errno.ENOSPC)
                {
                    break; // every slot taken by other channels being set up: no wait for one
                }
                StoreAnswer[] read = store.Batch([StoreRequest.Read(refKey), StoreRequest.Directory(parent)], tx);
                bool ours = read[0].Ok && read[0].Value == _publishedRef;
                bool onlyChild = ours && read[1].Children is { Count: 1 } children && children[0] == port;
                StoreAnswer[] ended = store.Batch(
                    ours ? [StoreRequest.Remove(onlyChild ? parent : path), StoreRequest.Commit()] : [StoreRequest.Commit()], tx);
                if (ended[^1].Error != Errno.EAGAIN)
                {
                    return;
                }
            }
            if (store.Batch([StoreRequest.Read(refKey)]) is [{ Ok: true } current] && current.Value == _publishedRef)
            {
                store.Batch([StoreRequest.Remove(path)]);
            }
        }
        catch (PlatformException)
        {
            // as upstream: a store that cannot be reached leaves the entry, and the channel works on
        }
    }

    // ------------------------------------------------------------------ I/O

    /// <summary>Reads up to <paramref name="buffer"/>.Length bytes (at least one in blocking mode). Data sent before the peer closed is still delivered.</summary>
    public int Read(Span<byte> buffer)
    {
        if (_closed)
        {
            return -1;
        }
        if (buffer.IsEmpty)
        {
            return 0;
        }
        while (true)
        {
            int ready = _ring.Ready();
            if (ready > 0)
            {
                if (!Blocking && ready < buffer.Length)
                {
                    // a poller will sleep on the fd after draining: ask to be woken
                    ready = _ring.ReadyAfterRequest();
                }
                return Consume(buffer[..Math.Min(ready, buffer.Length)]);
            }
            if (!PeerOpen)
            {
                return -1;
            }
            if (!Blocking)
            {
                if (_ring.ReadyAfterRequest() > 0)
                {
                    continue;
                }
                return 0;
            }
            if (AwaitRing(reading: true, 1) < 0)
            {
                return -1;
            }
        }
    }

    /// <summary>Reads exactly <paramref name="buffer"/>.Length bytes, or nothing (0 in non-blocking mode when not all are there).</summary>
    public int Recv(Span<byte> buffer)
    {
        if (_closed)
        {
            return -1;
        }
        int n = buffer.Length;
        while (true)
        {
            if (_ring.Ready() >= n)
            {
                return Consume(buffer);
            }
            if (!PeerOpen)
            {
                return -1;
            }
            if (!Blocking)
            {
                if (_ring.ReadyAfterRequest() >= n)
                {
                    continue;
                }
                return 0;
            }
            if (n > _ring.ReadSize)
            {
                return -1;
            }
            if (AwaitRing(reading: true, n) < 0)
            {
                return -1;
            }
        }
    }

    /// <summary>Writes all of <paramref name="data"/> (blocking) or as much as fits (non-blocking). −1 if the peer is not open.</summary>
    public int Write(ReadOnlySpan<byte> data)
    {
        if (_closed || !PeerOpen)
        {
            return -1;
        }
        if (!Blocking)
        {
            int space = _ring.Space();
            if (space < data.Length)
            {
                space = _ring.SpaceAfterRequest();
            }
            int n = Math.Min(space, data.Length);
            return n == 0 ? 0 : Produce(data[..n]);
        }
        int done = 0;
        while (true)
        {
            int chunk = Math.Min(_ring.Space(), data.Length - done);
            if (chunk > 0)
            {
                if (Produce(data.Slice(done, chunk)) < 0)
                {
                    return -1;
                }
                done += chunk;
            }
            if (done == data.Length)
            {
                return done;
            }
            if (AwaitRing(reading: false, 1) < 0 || !PeerOpen)
            {
                return -1;
            }
        }
    }

    /// <summary>Writes all of <paramref name="data"/> at once, or nothing (0 in non-blocking mode when it does not fit).</summary>
    public int Send(ReadOnlySpan<byte> data)
    {
        int n = data.Length;
        while (true)
        {
            if (_closed || !PeerOpen)
            {
                return -1;
            }
            if (_ring.Space() >= n)
            {
                return Produce(data);
            }
            if (!Blocking)
            {
                if (_ring.SpaceAfterRequest() >= n)
                {
                    continue;
                }
                return 0;
            }
            if (n > _ring.WriteSize)
            {
                return -1;
            }
            if (AwaitRing(reading: false, n) < 0)
            {
                return -1;
            }
        }
    }

    // ------------------------------------------------------------------ in-place I/O
    //
    // For moving bytes between a descriptor and the ring with no copy in between: the caller gets a
    // span over ring memory, lets read(2)/write(2) fill or drain it, then commits the count. The
    // spans are valid only until the next call on this endpoint and point into memory the peer can
    // write: never validate bytes there without copying them out first.

    /// <summary>
    /// Ring memory to fill: the contiguous free run starting <paramref name="skip"/> bytes past the
    /// write position, at most <paramref name="limit"/> bytes and within the free space (empty when
    /// there is none or the channel is closed). Fill it, optionally <see cref="PlaceAt"/> bytes
    /// before it, then <see cref="CommitWrite"/>.
    /// </summary>
    public Span<byte> WritableRun(int skip, int limit)
    {
        if (_closed || skip < 0 || limit <= 0)
        {
            return default;
        }
        int free = _ring.Space() - skip;
        return free <= 0 ? default : _ring.WritableRun(skip, Math.Min(free, limit));
    }

    /// <summary>Copies <paramref name="data"/> into the ring <paramref name="skip"/> bytes past the write position without publishing (a header in front of a run filled in place).</summary>
    public void PlaceAt(int skip, ReadOnlySpan<byte> data)
    {
        if (_closed || skip < 0 || skip + data.Length > _ring.WriteSize)
        {
            throw new ArgumentOutOfRangeException(nameof(skip));
        }
        _ring.PlaceAt(skip, data);
    }

    /// <summary>Publishes <paramref name="count"/> bytes placed in the ring (the caller stayed within the free space). −1 when the peer is gone or the signal failed.</summary>
    public int CommitWrite(int count)
    {
        if (_closed || !PeerOpen)
        {
            return -1;
        }
        if (_ring.CommitWrite(count) && _channel.Notify() != Errno.None)
        {
            return -1;
        }
        return count;
    }

    /// <summary>Ring memory to drain: the contiguous run of ready bytes at the read position, at most <paramref name="limit"/>. Then <see cref="CommitRead"/>.</summary>
    public ReadOnlySpan<byte> ReadableRun(int limit)
    {
        if (_closed || limit <= 0)
        {
            return default;
        }
        int ready = _ring.Ready();
        return ready == 0 ? default : _ring.ReadableRun(Math.Min(ready, limit));
    }

    /// <summary>Consumes <paramref name="count"/> bytes drained in place (at most what <see cref="ReadableRun"/> returned). −1 if the signal failed.</summary>
    public int CommitRead(int count)
    {
        if (_closed)
        {
            return -1;
        }
        if (_ring.CommitRead(count) && _channel.Notify() != Errno.None)
        {
            return -1;
        }
        return count;
    }

    /// <summary>Bytes ready to read; posts the request to be woken when more arrive.</summary>
    public int DataReady() => _closed ? 0 : _ring.ReadyAfterRequest();

    /// <summary>Free bytes in the write ring; posts the request to be woken when more free up.</summary>
    public int BufferSpace() => _closed ? 0 : _ring.SpaceAfterRequest();

    /// <summary>
    /// Blocks until an event arrives on the channel and acknowledges it. 0 on success, −1 on error or
    /// when a waiting server's peer domain died. A server's first wait removes its store entry.
    /// </summary>
    public int Wait()
    {
        if (_closed)
        {
            return -1;
        }
        int r = Sleep();
        if (_isServer)
        {
            RemoveStoreEntry();
        }
        return r;
    }

    /// <summary>
    /// For a server: blocks until the client has connected. False if the channel failed or the
    /// peer domain died first (a peer process that dies before connecting is not noticed, as upstream).
    /// </summary>
    public bool WaitForClient() => WaitForClient(-1) == VchanState.Connected;

    /// <summary>
    /// For a server: waits up to <paramref name="timeoutMs"/> (−1: no limit) for the client to
    /// connect. Connected (the store entry is removed then, as by the first <see cref="Wait"/>, even
    /// when no wait was needed), also for a client that connected and closed again before this
    /// looked (what it sent is still readable); Waiting when the time ran out; Disconnected when
    /// this end was closed, the channel failed or the peer domain died first. Reads the live bytes
    /// and asks the hypervisor only every <see cref="WaitingServerPollMs"/> whether the peer domain
    /// still lives.
    /// </summary>
    public VchanState WaitForClient(int timeoutMs)
    {
        if (!_isServer)
        {
            throw new InvalidOperationException("only a server waits for its client");
        }
        long deadline = timeoutMs < 0 ? long.MaxValue : Environment.TickCount64 + timeoutMs;
        while (true)
        {
            VchanState state = StateFromLiveBytes;
            if (state != VchanState.Waiting)
            {
                // the client's live byte leaves "waiting" only through a client that mapped the page
                if (_closed || _peerGone)
                {
                    return VchanState.Disconnected;
                }
                RemoveStoreEntry();
                return VchanState.Connected;
            }
            long left = deadline - Environment.TickCount64;
            if (left <= 0)
            {
                return VchanState.Waiting;
            }
            int w = _channel.Wait((int)Math.Min(left, WaitingServerPollMs));
            if (w < 0)
            {
                return VchanState.Disconnected;
            }
            if (w == 0 && !_platform.Domains.IsAlive(_peerDomain))
            {
                return VchanState.Disconnected;
            }
        }
    }

    /// <summary>The connection state (§5.1 of the spec); may ask the hypervisor, so not for hot loops.</summary>
    public VchanState IsOpen()
    {
        if (_closed || _peerGone)
        {
            return VchanState.Disconnected;
        }
        byte raw = _ring.PeerLive;
        if (raw == VchanLayout.LiveWaiting)
        {
            return _platform.Domains.IsAlive(_peerDomain) ? VchanState.Waiting : VchanState.Disconnected;
        }
        if (raw == VchanLayout.LiveExited)
        {
            return VchanState.Disconnected;
        }
        if (!_channel.IsInterdomainBound())
        {
            _peerGone = true;
            if (!_isServer)
            {
                _ring.ClearPeerLive();
            }
            return VchanState.Disconnected;
        }
        return VchanState.Connected;
    }

    /// <summary>
    /// The cheap liveness test for I/O loops: true once this end is closed or the peer's live byte
    /// says it exited (set by the peer on close, or by unmap-notify when it dies). No hypervisor query.
    /// </summary>
    public bool PeerClosed => _closed || !PeerOpen;

    /// <summary><see cref="IsOpen"/> from the live bytes alone: no hypervisor query, so a dead peer domain whose live byte was not cleared still looks connected.</summary>
    public VchanState StateFromLiveBytes => PeerClosed ? VchanState.Disconnected
        : _ring.PeerLive == VchanLayout.LiveWaiting ? VchanState.Waiting : VchanState.Connected;

    /// <summary>Closes this end: the peer sees it exit. Idempotent.</summary>
    public void Dispose()
    {
        if (_closed)
        {
            return;
        }
        _closed = true;
        _leftPages?.Dispose();
        _rightPages?.Dispose();
        _ring.SetOwnLive(VchanLayout.LiveExited);
        _control.Dispose();
        _channel.Notify();
        _channel.Dispose();
        if (_isServer)
        {
            RemoveStoreEntry();
        }
    }

    // ------------------------------------------------------------------ internals

    /// <summary>The raw liveness test of the I/O loops: the peer's live byte, no hypervisor query.</summary>
    private bool PeerOpen
    {
        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        get => !_peerGone && _ring.PeerLive != VchanLayout.LiveExited;
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private int Consume(Span<byte> destination)
    {
        if (_ring.Consume(destination) && _channel.Notify() != Errno.None)
        {
            return -1;
        }
        return destination.Length;
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private int Produce(ReadOnlySpan<byte> source)
    {
        if (_ring.Produce(source) && _channel.Notify() != Errno.None)
        {
            return -1;
        }
        return source.Length;
    }

    /// <summary>Spin on the ring for the spin budget, then post the wake-up request, re-check, and sleep.</summary>
    [MethodImpl(MethodImplOptions.NoInlining)]
    private int AwaitRing(bool reading, int need)
    {
        long deadline = Stopwatch.GetTimestamp() + _spinTicks;
        do
        {
            for (int i = 0; i < 32; i++)
            {
                if ((reading ? _ring.Ready() : _ring.Space()) >= need || !PeerOpen)
                {
                    return 0;
                }
                Thread.SpinWait(1);
            }
        }
        while (Stopwatch.GetTimestamp() < deadline);
        if ((reading ? _ring.ReadyAfterRequest() : _ring.SpaceAfterRequest()) >= need || !PeerOpen)
        {
            return 0;
        }
        return Sleep();
    }

    /// <summary>Sleeps on the event channel. A server still waiting for its client wakes every 10 s to check the peer domain is alive.</summary>
    private int Sleep()
    {
        while (_isServer && _ring.PeerLive == VchanLayout.LiveWaiting)
        {
            int w = _channel.Wait(WaitingServerPollMs);
            if (w != 0)
            {
                return w > 0 ? 0 : -1;
            }
            if (!_platform.Domains.IsAlive(_peerDomain))
            {
                return -1;
            }
        }
        return _channel.Wait(-1) > 0 ? 0 : -1;
    }
}
