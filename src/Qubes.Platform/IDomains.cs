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

    /// <summary>Strict decimal as the store holds it: "0" alone, or a non-zero digit then digits; below the reserved range.</summary>
    public static bool TryParse(string? text, out int domainId)
    {
        domainId = -1;
        if (string.IsNullOrEmpty(text) || text.Length > 5 || (text[0] == '0' && text.Length > 1))
        {
            return false;
        }
        int value = 0;
        foreach (char c in text)
        {
            if (c < '0' || c > '9')
            {
                return false;
            }
            value = value * 10 + (c - '0');
        }
        if (!IsValid(value))
        {
            return false;
        }
        domainId = value;
        return true;
    }
}
