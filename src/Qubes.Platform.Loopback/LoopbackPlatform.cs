using System;
using System.Buffers.Binary;
using System.Diagnostics;
using System.Globalization;
using System.IO;
using System.Text;
using Qubes.Interop.Linux;
using Qubes.Platform.Xenstore;

namespace Qubes.Platform.Loopback;

/// <summary>
/// The domain side of the loopback hypervisor: <see cref="IPlatform"/> over a connection to
/// <see cref="LoopbackBroker"/>. The connection's identity was fixed by the broker when it was made;
/// <see cref="OwnId"/> is read back from the store key <c>domid</c>, as vchan does on Xen.
/// </summary>
public sealed class LoopbackPlatform : IPlatform
{
    /// <summary>Environment variable carrying an inherited connection descriptor (set by <see cref="StartInDomain"/>).</summary>
    public const string FdVariable = "QUBES_LOHV_FD";

    /// <summary>Environment variable naming the broker directory, for dom0 processes.</summary>
    public const string DirectoryVariable = "QUBES_LOHV_DIR";

    /// <summary>
    /// The variable by which a loopback qube, which has no init of its own, learns its GUI domain
    /// (upstream's <c>/qubes-gui-domain-xid</c>): set by the runtime that starts the qube, read by
    /// its qrexec-agent, which starts the GUI agent.
    /// </summary>
    public const string GuiDomainVariable = "QUBES_GUI_DOMAIN_XID";

    private static readonly object s_spawnLock = new();

    private readonly XenstoreClient _store;
    private readonly LoopbackDomains _domains;
    private bool _disposed;

    private LoopbackPlatform(SafeFd socket)
    {
        try
        {
            Client = new BrokerClient(socket);
        }
        catch (LinuxException e)
        {
            socket.Dispose();
            throw new PlatformException("loopback: not a usable broker connection", e.Errno);
        }
        _store = new XenstoreClient(Client, ownsTransport: false);
        try
        {
            string? text = _store.Read("domid");
            if (!DomainIds.TryParse(text, out int id))
            {
                throw new PlatformException("loopback: own domid unreadable", Errno.EPROTO);
            }
            OwnId = id;
        }
        catch
        {
            Client.Dispose();
            throw;
        }
        Grants = new LoopbackGrantTable(this);
        EventChannels = new LoopbackEventChannels(this);
        _domains = new LoopbackDomains(this);
    }

    /// <summary>This domain's id, as the broker knows it.</summary>
    public int OwnId { get; }

    /// <inheritdoc/>
    public IGrantTable Grants { get; }

    /// <inheritdoc/>
    public IEventChannels EventChannels { get; }

    /// <inheritdoc/>
    public IDomains Domains => _domains;

    internal BrokerClient Client { get; }

    /// <summary>Uses a connected broker socket (inherited, or from <see cref="CreateDomain"/>); takes ownership of <paramref name="fd"/>.</summary>
    public static LoopbackPlatform Connect(int fd)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(fd);
        return new LoopbackPlatform(new SafeFd(fd));
    }

    /// <summary>Connects to <c><paramref name="directory"/>/dom0.sock</c>: the caller is dom0.</summary>
    public static LoopbackPlatform ConnectDom0(string directory)
    {
        string path = Path.Combine(directory, LoopbackBroker.SocketName);
        SafeFd? socket = UnixSocket.TryConnect(path, out Errno error);
        if (socket is null)
        {
            throw new PlatformException($"connect {path}", error);
        }
        return new LoopbackPlatform(socket);
    }

    /// <summary>
    /// The platform this process was started in: <c>QUBES_LOHV_FD</c> (an inherited connection,
    /// made close-on-exec again and removed from the environment so that our own children do not
    /// inherit it by accident), else dom0 through <c>QUBES_LOHV_DIR</c>.
    /// </summary>
    public static LoopbackPlatform FromEnvironment()
    {
        string? fdText = Environment.GetEnvironmentVariable(FdVariable);
        if (!string.IsNullOrEmpty(fdText))
        {
            if (!int.TryParse(fdText, NumberStyles.None, CultureInfo.InvariantCulture, out int fd) || fd < 0)
            {
                throw new PlatformException($"{FdVariable}={fdText} is not a descriptor", Errno.EBADF);
            }
            try
            {
                Fd.SetInheritable(fd, false);
            }
            catch (LinuxException e)
            {
                throw new PlatformException($"{FdVariable}={fdText}", e.Errno);
            }
            Environment.SetEnvironmentVariable(FdVariable, null);
            return Connect(fd);
        }
        string? directory = Environment.GetEnvironmentVariable(DirectoryVariable);
        if (!string.IsNullOrEmpty(directory))
        {
            return ConnectDom0(directory);
        }
        throw new PlatformException($"neither {FdVariable} nor {DirectoryVariable} is set", Errno.ENOENT);
    }

    /// <inheritdoc/>
    public IStore Store => _store;

    /// <inheritdoc/>
    public IStore OpenStore() => new XenstoreClient(new BrokerClient(OpenConnection()));

    /// <summary>A new connection with this domain's identity (for another thread or process of the domain).</summary>
    public SafeFd OpenConnection()
    {
        BrokerReply reply = Client.Request(MessageType.Connect, 0, []);
        if (!reply.Ok)
        {
            throw new PlatformException(reply.Error == Errno.EMFILE
                ? $"loopback connect: domain {OwnId} is out of connections (at most {LoopbackBroker.MaxConnectionsPerDomain})"
                : "loopback connect", reply.Error);
        }
        return reply.Fds[0];
    }

    /// <summary>
    /// dom0 only: creates a domain named <paramref name="name"/> and returns its id and its first
    /// connection. The domain lives until <see cref="DestroyDomain"/> or until every connection of
    /// it is closed (give this one to its process with <see cref="StartInDomain"/>, then dispose it here).
    /// </summary>
    public (int DomainId, SafeFd Connection) CreateDomain(string name)
    {
        byte[] payload = Encoding.UTF8.GetBytes(name);
        BrokerReply reply = Client.Request(MessageType.CreateDomain, 0, payload);
        if (!reply.Ok)
        {
            throw new PlatformException($"create domain {name}", reply.Error);
        }
        return ((int)reply.UInt32At(0), reply.Fds[0]);
    }

    /// <summary>dom0 only: kills a domain (closes all its connections; its grants, ports and store home go with it).</summary>
    public void DestroyDomain(int domainId)
    {
        Span<byte> payload = stackalloc byte[4];
        BinaryPrimitives.WriteUInt32LittleEndian(payload, (uint)domainId);
        BrokerReply reply = Client.Request(MessageType.DestroyDomain, 0, payload);
        if (!reply.Ok)
        {
            throw new PlatformException($"destroy domain {domainId}", reply.Error);
        }
    }

    /// <summary>
    /// Starts a process in the domain that owns <paramref name="connection"/>: the descriptor is made
    /// inheritable just for the start and its number is passed in <c>QUBES_LOHV_FD</c>. The caller
    /// still owns <paramref name="connection"/> and normally disposes it afterwards, so that the
    /// domain's life is the child's. (Other threads starting processes at the same moment could
    /// inherit the descriptor too; start domain processes from one place.)
    /// </summary>
    public static Process StartInDomain(SafeFd connection, ProcessStartInfo startInfo)
    {
        ArgumentNullException.ThrowIfNull(connection);
        ArgumentNullException.ThrowIfNull(startInfo);
        if (startInfo.UseShellExecute)
        {
            throw new ArgumentException("UseShellExecute cannot pass descriptors", nameof(startInfo));
        }
        int fd = connection.Fd;
        startInfo.Environment[FdVariable] = fd.ToString(CultureInfo.InvariantCulture);
        lock (s_spawnLock)
        {
            Fd.SetInheritable(fd, true);
            try
            {
                return Process.Start(startInfo) ?? throw new PlatformException("start " + startInfo.FileName, Errno.ENOENT);
            }
            finally
            {
                Fd.SetInheritable(fd, false);
            }
        }
    }

    /// <summary>Closes the main connection (the broker then revokes this connection's grants and ports).</summary>
    public void Dispose()
    {
        if (_disposed)
        {
            return;
        }
        _disposed = true;
        Client.Dispose();
    }

    internal bool IsAlive(int domainId)
    {
        if (!DomainIds.IsValid(domainId))
        {
            return false;
        }
        Span<byte> payload = stackalloc byte[4];
        BinaryPrimitives.WriteUInt32LittleEndian(payload, (uint)domainId);
        BrokerReply reply = Client.Request(MessageType.IsAlive, 0, payload);
        if (!reply.Ok)
        {
            throw new PlatformException($"is-alive {domainId}", reply.Error);
        }
        return reply.UInt32At(0) != 0;
    }

    private sealed class LoopbackDomains : IDomains
    {
        private readonly LoopbackPlatform _platform;

        public LoopbackDomains(LoopbackPlatform platform) => _platform = platform;

        public int OwnId => _platform.OwnId;

        public bool IsAlive(int domainId) => _platform.IsAlive(domainId);
    }
}
