using System.Collections.Generic;
using Qubes.Interop.Linux;
using Qubes.Platform.Xenstore;

namespace Qubes.Platform.Loopback;

/// <summary>A domain as the broker knows it. Its identity is the set of connections the broker gave it.</summary>
internal sealed class BrokerDomain
{
    public BrokerDomain(int id, string name)
    {
        Id = id;
        Name = name;
    }

    public int Id { get; }

    public string Name { get; }

    public bool Dead { get; set; }

    public List<BrokerConnection> Connections { get; } = new();

    /// <summary>Next grant ref; refs are never reused within a domain's life, and 0 is never one.</summary>
    public uint NextRef { get; set; } = 1;

    public Dictionary<uint, Grant> Grants { get; } = new();

    /// <summary>Next event-channel port; never reused within a domain's life.</summary>
    public uint NextPort { get; set; } = 1;

    public Dictionary<uint, Port> Ports { get; } = new();

    /// <summary>Memfds of this domain the broker still holds (each costs the broker one or two descriptors).</summary>
    public int SharedMemoryCount { get; set; }
}

/// <summary>A memfd a domain shared, with what the broker needs to clear a notify byte in it later.</summary>
internal sealed class SharedMemory
{
    private int _references;

    private readonly BrokerDomain _owner;

    public SharedMemory(BrokerDomain owner, SafeFd fd, SafeFd? readOnlyFd, MemoryMapping? writableView, int references)
    {
        _owner = owner;
        owner.SharedMemoryCount++;
        Fd = fd;
        ReadOnlyFd = readOnlyFd;
        WritableView = writableView;
        _references = references;
    }

    /// <summary>The broker's own reference to the memfd (read-write).</summary>
    public SafeFd Fd { get; }

    /// <summary>For read-only grants: a read-only reopen, which is what grantees receive.</summary>
    public SafeFd? ReadOnlyFd { get; }

    /// <summary>
    /// For read-only grants: a writable mapping taken before F_SEAL_FUTURE_WRITE, since after the
    /// seal neither pwrite nor a new writable mapping works, and unmap-notify must still clear a byte.
    /// </summary>
    public MemoryMapping? WritableView { get; }

    public void AddReference() => _references++;

    public void Release()
    {
        if (--_references == 0)
        {
            _owner.SharedMemoryCount--;
            WritableView?.Dispose();
            ReadOnlyFd?.Dispose();
            Fd.Dispose();
        }
    }

    /// <summary>Sets the byte at <paramref name="offset"/> to zero. Best effort: a peer cannot make it fail in a way that matters to the broker.</summary>
    public unsafe void ClearByte(long offset)
    {
        if (WritableView is not null)
        {
            if (offset >= 0 && offset < WritableView.Length)
            {
                System.Threading.Volatile.Write(ref WritableView.Pointer[offset], (byte)0);
            }
            return;
        }
        byte zero = 0;
        _ = Libc.pwrite(Fd.Fd, &zero, 1, offset);
    }
}

/// <summary>One granted page.</summary>
internal sealed class Grant
{
    public Grant(BrokerDomain owner, BrokerConnection connection, uint reference, int grantee, bool readOnly, SharedMemory memory, int page)
    {
        Owner = owner;
        Connection = connection;
        Reference = reference;
        Grantee = grantee;
        ReadOnly = readOnly;
        Memory = memory;
        Page = page;
    }

    public BrokerDomain Owner { get; }

    /// <summary>The connection that made the grant: its end (the process died) revokes it.</summary>
    public BrokerConnection Connection { get; }

    public uint Reference { get; }

    public int Grantee { get; }

    public bool ReadOnly { get; }

    public SharedMemory Memory { get; }

    /// <summary>Page index within <see cref="Memory"/>.</summary>
    public int Page { get; }
}

/// <summary>
/// An event channel: two eventfds, one each side waits on. Notifications go directly from one side
/// to the other; the broker keeps the descriptors only to bind the second side and to signal on
/// behalf of a dead domain (unmap notify).
/// </summary>
internal sealed class Channel
{
    private int _references;

    public Channel(SafeFd allocatorWaits, SafeFd binderWaits, int bindableBy)
    {
        AllocatorWaits = allocatorWaits;
        BinderWaits = binderWaits;
        BindableBy = bindableBy;
    }

    public SafeFd AllocatorWaits { get; }

    public SafeFd BinderWaits { get; }

    /// <summary>The only domain that may bind the second end.</summary>
    public int BindableBy { get; }

    public Port? Allocator { get; set; }

    public Port? Binder { get; set; }

    /// <summary>Once the binding side was bound (even if since closed) the channel cannot be bound again.</summary>
    public bool WasBound { get; set; }

    public void AddReference() => _references++;

    public void Release()
    {
        if (--_references == 0)
        {
            AllocatorWaits.Dispose();
            BinderWaits.Dispose();
        }
    }
}

/// <summary>One end of a channel, as a port number of its domain.</summary>
internal sealed class Port
{
    public Port(BrokerDomain domain, uint number, BrokerConnection connection, Channel channel, bool isAllocator)
    {
        Domain = domain;
        Number = number;
        Connection = connection;
        Channel = channel;
        IsAllocator = isAllocator;
    }

    public BrokerDomain Domain { get; }

    public uint Number { get; }

    /// <summary>The connection that opened the port: its end closes the port.</summary>
    public BrokerConnection Connection { get; }

    public Channel Channel { get; }

    public bool IsAllocator { get; }

    public Port? Peer => IsAllocator ? Channel.Binder : Channel.Allocator;

    /// <summary>The descriptor the other side waits on.</summary>
    public SafeFd PeerWaits => IsAllocator ? Channel.BinderWaits : Channel.AllocatorWaits;
}

/// <summary>A registered unmap notification: on the connection's end, zero the byte and signal the peer.</summary>
internal sealed class UnmapNotify
{
    public UnmapNotify(SharedMemory memory, long offset, Channel channel, bool fromAllocator)
    {
        Memory = memory;
        Offset = offset;
        Channel = channel;
        FromAllocator = fromAllocator;
    }

    public SharedMemory Memory { get; }

    public long Offset { get; }

    public Channel Channel { get; }

    /// <summary>The registering domain's port was the allocating end: signal the binder's eventfd.</summary>
    public bool FromAllocator { get; }

    public void Fire()
    {
        Memory.ClearByte(Offset);
        _ = EventFd.Signal(FromAllocator ? Channel.BinderWaits.Fd : Channel.AllocatorWaits.Fd);
    }

    public void Release()
    {
        Memory.Release();
        Channel.Release();
    }
}

/// <summary>A registered watch.</summary>
internal sealed class Watch
{
    public Watch(string sentPath, string absolutePath, byte[] token, bool relative)
    {
        SentPath = sentPath;
        AbsolutePath = absolutePath;
        Token = token;
        Relative = relative;
    }

    /// <summary>The path as the domain sent it (relative, absolute or '@special').</summary>
    public string SentPath { get; }

    public string AbsolutePath { get; }

    public byte[] Token { get; }

    public bool Relative { get; }
}

/// <summary>Bytes (and descriptors) that could not be sent at once.</summary>
internal sealed class PendingOutput
{
    public PendingOutput(byte[] data, SafeFd[] fds)
    {
        Data = data;
        Fds = fds;
    }

    public byte[] Data { get; }

    public int Offset { get; set; }

    /// <summary>Owned duplicates, sent with the first byte, then closed.</summary>
    public SafeFd[] Fds { get; set; }
}

/// <summary>The broker's end of one socket, with the identity of the domain it was given to.</summary>
internal sealed class BrokerConnection
{
    public BrokerConnection(SafeFd socket, BrokerDomain domain)
    {
        Socket = socket;
        Domain = domain;
    }

    public SafeFd Socket { get; }

    public BrokerDomain Domain { get; }

    /// <summary>Marked for closing; reaped at the next safe point (never in the middle of a watch fan-out).</summary>
    public bool Doomed { get; set; }

    public byte[] Input { get; } = new byte[2 * XenstoreWire.MaxMessage];

    public int InputLength { get; set; }

    /// <summary>Descriptors received and not yet claimed by a request, in arrival order.</summary>
    public Queue<SafeFd> Fds { get; } = new();

    public Queue<PendingOutput> Output { get; } = new();

    /// <summary>
    /// Replies without descriptors to the requests of one receive, held back while it is handled so
    /// that they leave in one send (null when not holding).
    /// </summary>
    public System.Buffers.ArrayBufferWriter<byte>? Held { get; set; }

    public int OutputBytes { get; set; }

    public List<Watch> Watches { get; } = new();

    public Dictionary<uint, StoreTransaction> Transactions { get; } = new();

    public HashSet<Grant> Grants { get; } = new();

    public HashSet<Port> Ports { get; } = new();

    public Dictionary<uint, UnmapNotify> Notifies { get; } = new();

    public uint NextNotifyId { get; set; } = 1;
}
