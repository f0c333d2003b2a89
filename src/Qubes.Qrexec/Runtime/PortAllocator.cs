namespace Qubes.Qrexec.Runtime;

/// <summary>
/// Data port allocation of one daemon (spec §7): ports 513…768 are slots 0…255, each remembering
/// the domain it was allocated for. Calls with dom0 take the first free slot; a VM pair takes odd
/// or even slots by which domain id is larger, so the two daemons of a pair never pick the same port.
/// </summary>
public sealed class PortAllocator
{
    private readonly int _ownDomain;
    // the domain each slot was allocated for, or −1 when free (wide enough for every u32 domain value)
    private readonly long[] _slots = new long[QrexecProtocol.MaxFds];

    public PortAllocator(int ownDomain)
    {
        _ownDomain = ownDomain;
        System.Array.Fill(_slots, -1L);
    }

    /// <summary>Allocates a port for a call with <paramref name="connectDomain"/>; 0 when none is free.</summary>
    public uint Allocate(uint connectDomain)
    {
        int start;
        int step;
        if (connectDomain == 0)
        {
            start = 0;
            step = 1;
        }
        else
        {
            start = connectDomain > (uint)_ownDomain ? 1 : 0;
            step = 2;
        }
        for (int slot = start; slot < _slots.Length; slot += step)
        {
            if (_slots[slot] < 0)
            {
                _slots[slot] = connectDomain;
                return (uint)(QrexecProtocol.FirstDataPort + slot);
            }
        }
        return 0;
    }

    /// <summary>Releases <paramref name="port"/> if it was allocated for <paramref name="connectDomain"/>; a mismatch leaves it allocated. Returns whether it was released.</summary>
    public bool Release(uint connectDomain, uint port)
    {
        if (port < QrexecProtocol.FirstDataPort || port >= QrexecProtocol.DataPortEnd)
        {
            return false;
        }
        int slot = (int)(port - QrexecProtocol.FirstDataPort);
        if (_slots[slot] != connectDomain)
        {
            return false;
        }
        _slots[slot] = -1;
        return true;
    }
}
