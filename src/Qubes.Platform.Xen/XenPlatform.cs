using Qubes.Interop.Linux;

namespace Qubes.Platform.Xen;

/// <summary>
/// The platform on real Xen: grants through gntalloc/gntdev, event channels through evtchn, the
/// store through xenstored (socket in dom0, /dev/xen/xenbus elsewhere), liveness and port status
/// through the hypervisor.
/// </summary>
public sealed class XenPlatform : IPlatform
{
    private readonly XenGrantTable _grants = new();
    private readonly XenHypercalls _hypercalls = new();

    private readonly IStore _store;

    private XenPlatform(int ownId, IStore store)
    {
        _store = store;
        EventChannels = new XenEventChannels(_hypercalls);
        Domains = new XenDomains(ownId);
    }

    /// <summary>Whether this machine is a Xen domain with the devices the platform needs.</summary>
    public static bool IsAvailable => System.IO.File.Exists(Interop.Xen.Evtchn.Device);

    /// <summary>Opens the platform: reads the own domain id from the store key <c>domid</c>.</summary>
    public static XenPlatform Open()
    {
        IStore store = XenStore.Open();
        string? text = store.Read("domid");
        if (!DomainIds.TryParse(text, out int ownId))
        {
            store.Dispose();
            throw new PlatformException($"own domain id in the store is missing or malformed: '{text}'", Errno.EINVAL);
        }
        return new XenPlatform(ownId, store);
    }

    public IGrantTable Grants => _grants;

    public IEventChannels EventChannels { get; }

    public IDomains Domains { get; }

    public IStore OpenStore() => XenStore.Open();

    public IStore Store => _store;

    public void Dispose()
    {
        _store.Dispose();
        _grants.Dispose();
        _hypercalls.Dispose();
    }
}
