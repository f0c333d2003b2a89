using System;
using System.Globalization;
using Qubes.Interop.Linux;
using Qubes.Platform;

namespace Qubes.Vchan;

/// <summary>
/// An asynchronous vchan client connect (the Qubes wrapper's client_init_async): watch the store
/// until the server publishes the channel, then connect. Poll <see cref="WatchFd"/> and call
/// <see cref="Finish"/> each time it is readable.
/// </summary>
public sealed class VchanConnector : IDisposable
{
    /// <summary>Longest store path the wrapper builds (xenstore's limit for a relative path).</summary>
    public const int MaxPathLength = 254;

    private readonly IPlatform _platform;
    private readonly int _serverDomain;
    private readonly int _port;
    private IStore? _store;
    private int _ownDomain = -1;
    private string? _watchedKey;

    private VchanConnector(IPlatform platform, int serverDomain, int port, IStore store)
    {
        _platform = platform;
        _serverDomain = serverDomain;
        _port = port;
        _store = store;
    }

    /// <summary>Why the last <see cref="Finish"/> failed, if it did.</summary>
    public string? Error { get; private set; }

    /// <summary>The errno behind <see cref="Error"/>, when the hypervisor or the store gave one (ENOSPC: out of a resource).</summary>
    public Errno ErrorErrno { get; private set; }

    /// <summary>The store connection's descriptor: readable when something the connect waits on may have changed.</summary>
    public int WatchFd => _store?.Fd ?? -1;

    /// <summary>Opens a store connection, watches the own <c>domid</c> key and <c>@releaseDomain</c>, and reads the own id.</summary>
    public static VchanConnector Start(IPlatform platform, int serverDomain, int port)
    {
        ArgumentNullException.ThrowIfNull(platform);
        VchanEndpoint.CheckAddress(serverDomain, port);
        IStore store = platform.OpenStore();
        VchanConnector connector = new(platform, serverDomain, port, store);
        try
        {
            StoreAnswer[] answers = store.Batch([StoreRequest.Watch("domid", "domid"), StoreRequest.Watch("@releaseDomain", "release"), StoreRequest.Read("domid")]);
            answers[0].ThrowIfFailed("watch", "domid");
            answers[1].ThrowIfFailed("watch", "@releaseDomain");
            if (answers[2].Ok && DomainIds.TryParse(answers[2].Value, out int own))
            {
                connector._ownDomain = own;
            }
        }
        catch
        {
            store.Dispose();
            throw;
        }
        return connector;
    }

    /// <summary>
    /// One step of the connect. Returns 0 with <paramref name="vchan"/> set once connected (with the
    /// given blocking mode), 1 to keep waiting, −1 on failure (see <see cref="Error"/>).
    /// </summary>
    public int Finish(bool blocking, out VchanEndpoint? vchan)
    {
        while (true)
        {
            int r = FinishStep(blocking, out vchan);
            // A watch event that came in while the step's own store requests were answered is queued
            // by the client and will not make the descriptor readable again: look once more before
            // telling the caller to poll, or the wake-up is lost.
            if (r != 1 || _store == null || !_store.TryReadWatchEvent(out _, out _))
            {
                return r;
            }
        }
    }

    private int FinishStep(bool blocking, out VchanEndpoint? vchan)
    {
        vchan = null;
        IStore? store = _store;
        if (store == null)
        {
            return Fail("connector already finished");
        }
        try
        {
            while (store.TryReadWatchEvent(out _, out _))
            {
            }
            if (_ownDomain < 0 && !ReadOwnDomain(store))
            {
                return Fail("own domain id missing or malformed in the store");
            }
            if (_ownDomain == _serverDomain)
            {
                return Fail("loopback vchan connection not supported");
            }
            string path = string.Create(CultureInfo.InvariantCulture, $"/local/domain/{_serverDomain}/data/vchan/{_ownDomain}/{_port}");
            if (path.Length > MaxPathLength)
            {
                return Fail("vchan store path too long");
            }
            // One round trip: the own id again (a save and restore may have changed it), the watch on
            // the entry's key the first time (placed before the reads, so no publish falls between),
            // and the entry itself.
            bool watch = _watchedKey == null;
            string portKey = path + "/event-channel";
            StoreAnswer[] answers = store.Batch(watch
                ? [StoreRequest.Read("domid"), StoreRequest.Watch(portKey, "vchan"), StoreRequest.Read(portKey), StoreRequest.Read(path + "/ring-ref")]
                : [StoreRequest.Read("domid"), StoreRequest.Read(portKey), StoreRequest.Read(path + "/ring-ref")]);
            if (watch)
            {
                answers[1].ThrowIfFailed("watch", portKey);
                _watchedKey = portKey;
            }
            if (!answers[0].Ok || !DomainIds.TryParse(answers[0].Value, out int own))
            {
                return Fail("own domain id missing or malformed in the store");
            }
            if (own != _ownDomain)
            {
                // the domain was saved and restored under a new id: watch the new path
                store.Unwatch(_watchedKey!, "vchan");
                _watchedKey = null;
                _ownDomain = own;
                return FinishStep(blocking, out vchan);
            }
            StoreAnswer portAnswer = answers[^2], refAnswer = answers[^1];
            // xenstored answers EACCES, not ENOENT, for a missing node whose nearest existing
            // ancestor we may not read (so as not to reveal what exists): the normal case before a
            // server in another domain publishes
            if (portAnswer.Error is Errno.ENOENT or Errno.EACCES)
            {
                return _platform.Domains.IsAlive(_serverDomain) ? 1 : Fail($"server domain {_serverDomain} is dead");
            }
            portAnswer.ThrowIfFailed("read", portKey);
            if (portAnswer.Value!.Length == 0)
            {
                return 1;
            }
            if (!TryParsePositive(portAnswer.Value, out uint eventPort) || !refAnswer.Ok || !TryParsePositive(refAnswer.Value, out uint ringRef))
            {
                return Fail($"malformed vchan entry at {path}");
            }
            try
            {
                vchan = VchanEndpoint.Connect(_platform, _serverDomain, ringRef, eventPort, blocking);
            }
            catch (VchanException e) when (e.InnerException is PlatformException { Errno: Errno.EINVAL or Errno.ENOENT })
            {
                // The event channel or the page the entry names is gone (or taken): a stale entry,
                // left by a server that ended without removing it. Its port's next server overwrites
                // it, and the watch on the entry fires then: keep waiting for that one.
                return 1;
            }
            CloseStore();
            return 0;
        }
        catch (PlatformException e)
        {
            return Fail(e.Message, e.Errno);
        }
        catch (VchanException e)
        {
            return Fail(e.Message, (e.InnerException as PlatformException)?.Errno ?? Errno.None);
        }
    }

    private bool ReadOwnDomain(IStore store)
    {
        if (!DomainIds.TryParse(store.Read("domid"), out int own))
        {
            return false;
        }
        _ownDomain = own;
        return true;
    }

    private int Fail(string reason, Errno errno = Errno.None)
    {
        Error = reason;
        ErrorErrno = errno;
        CloseStore();
        return -1;
    }

    private void CloseStore()
    {
        _store?.Dispose();
        _store = null;
    }

    public void Dispose() => CloseStore();

    /// <summary>Decimal, non-zero, fits in 32 bits (a ring-ref or event-channel value).</summary>
    private static bool TryParsePositive(string? text, out uint value)
        => uint.TryParse(text, NumberStyles.None, CultureInfo.InvariantCulture, out value) && value != 0;
}
