namespace Qubes.Platform;

/// <summary>Domain identity and liveness.</summary>
public interface IDomains
{
    /// <summary>The id of the domain this process runs in, as the hypervisor knows it.</summary>
    int OwnId { get; }

    /// <summary>
    /// Whether <paramref name="domainId"/> exists and is not dying. Not for hot paths.
    /// </summary>
    bool IsAlive(int domainId);
}

/// <summary>Limits on domain ids shared by every backend.</summary>
public static class DomainIds
{
    /// <summary>First reserved id (DOMID_FIRST_RESERVED); valid ids are below it.</summary>
    public const int FirstReserved = 0x7FF0;

    /// <summary>Whether <paramref name="domainId"/> names an ordinary domain.</summary>
    public static bool IsValid(int domainId) => domainId >= 0 && domainId < FirstReserved;
}
