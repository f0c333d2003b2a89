using System;
using System.Buffers.Binary;
using System.Diagnostics;
using System.Threading;
using Qubes.Interop.Linux;
using Qubes.Platform;
using Qubes.Vchan;
using LinuxFd = Qubes.Interop.Linux.Fd;

namespace Qubes.Qrexec.Transport;

/// <summary>
/// A qrexec channel over our vchan ring (loopback hypervisor or Xen). Data chunks move between a
/// descriptor and the ring with read(2)/write(2) straight on ring memory: no intermediate buffer.
/// </summary>
public sealed unsafe class VchanChannel : IQrexecChannel
{
    private readonly VchanEndpoint _vchan;

    public VchanChannel(VchanEndpoint vchan)
    {
        ArgumentNullException.ThrowIfNull(vchan);
        _vchan = vchan;
        _vchan.Blocking = false;
    }

    /// <summary>The endpoint underneath.</summary>
    public VchanEndpoint Endpoint => _vchan;

    public int Fd => _vchan.EventFd;

    public short PollEvents => Libc.POLLIN;

    public bool Blocking
    {
        get => _vchan.Blocking;
        set => _vchan.Blocking = value;
    }

    /// <summary>The live bytes only: cheap enough for every turn of a loop.</summary>
    public VchanState State => _vchan.StateFromLiveBytes;

    public void Service()
    {
        // the event channel is readable: acknowledging it cannot block
        if (LinuxFd.PollIn(_vchan.EventFd, 0) > 0)
        {
            _vchan.Wait();
        }
    }

    public int Ready() => _vchan.DataReady();

    public int Space() => _vchan.BufferSpace();

    public int Read(Span<byte> buffer) => _vchan.Read(buffer);

    public int Write(ReadOnlySpan<byte> data) => _vchan.Write(data);

    public int Recv(Span<byte> buffer) => _vchan.Recv(buffer);

    public int Send(ReadOnlySpan<byte> data) => _vchan.Send(data);

    public int SendChunkFromFd(MessageType type, int fd, int maxChunk)
    {
        Span<byte> run = _vchan.WritableRun(QrexecProtocol.HeaderSize, maxChunk);
        if (run.IsEmpty)
        {
            // no room behind a header (or this end closed): nothing read, the source waits, as the
            // socket channel answers; a peer that is gone shows on the next send or receive
            return -(int)Errno.EAGAIN;
        }
        nint n;
        fixed (byte* p = run)
        {
            n = Libc.read(fd, p, (nuint)run.Length);
        }
        if (n <= 0)
        {
            return n == 0 ? 0 : -(int)LastError.Get();
        }
        Span<byte> header = stackalloc byte[QrexecProtocol.HeaderSize];
        BinaryPrimitives.WriteUInt32LittleEndian(header, (uint)type);
        BinaryPrimitives.WriteUInt32LittleEndian(header[4..], (uint)n);
        _vchan.PlaceAt(0, header);
        return _vchan.CommitWrite(QrexecProtocol.HeaderSize + (int)n) < 0 ? int.MinValue : (int)n;
    }

    public int ReceiveToFd(int fd, int count)
    {
        ReadOnlySpan<byte> run = _vchan.ReadableRun(count);
        if (run.IsEmpty)
        {
            return int.MinValue;
        }
        nint n;
        fixed (byte* p = run)
        {
            n = Libc.write(fd, p, (nuint)run.Length);
        }
        if (n < 0)
        {
            return -(int)LastError.Get();
        }
        return _vchan.CommitRead((int)n) < 0 ? int.MinValue : (int)n;
    }

    public int Skip(int count)
    {
        ReadOnlySpan<byte> run = _vchan.ReadableRun(count);
        return run.IsEmpty ? 0 : Math.Max(0, _vchan.CommitRead(run.Length));
    }

    public bool WaitConnected(TimeSpan timeout)
    {
        if (!_vchan.IsServer)
        {
            return _vchan.StateFromLiveBytes == VchanState.Connected; // a client is connected once it exists
        }
        int ms = timeout == Timeout.InfiniteTimeSpan ? -1 : (int)Math.Clamp(timeout.TotalMilliseconds, 0, int.MaxValue);
        return _vchan.WaitForClient(ms) == VchanState.Connected;
    }

    public void Dispose() => _vchan.Dispose();
}

/// <summary>
/// Channels over our vchan on a platform (the loopback hypervisor by default, or Xen). A channel
/// that finds its domain out of a hypervisor resource (event-channel ports, granted pages, store
/// nodes or transactions, broker connections, descriptors) waits for one: the channels of calls
/// that end give theirs back, so under load a new call is late rather than failed.
/// </summary>
public sealed class VchanChannelFactory : IChannelFactory
{
    /// <summary>Longest wait of <see cref="Listen"/> for a resource: as long as either end of a VM call waits for the other (spec §3).</summary>
    public static readonly TimeSpan ResourceWaitTimeout = TimeSpan.FromSeconds(120);

    private const int MaxBackoffMs = 50;

    private readonly IPlatform _platform;
    private readonly bool _ownsPlatform;

    public VchanChannelFactory(IPlatform platform, bool ownsPlatform)
    {
        ArgumentNullException.ThrowIfNull(platform);
        _platform = platform;
        _ownsPlatform = ownsPlatform;
    }

    public IPlatform Platform => _platform;

    public int LocalDomain => _platform.Domains.OwnId;

    public IQrexecChannel Listen(int peerDomain, int port, int readMin, int writeMin)
    {
        long deadline = Stopwatch.GetTimestamp() + (long)(ResourceWaitTimeout.TotalSeconds * Stopwatch.Frequency);
        int backoffMs = 1;
        while (true)
        {
            try
            {
                return new VchanChannel(VchanEndpoint.ServerInit(_platform, peerDomain, port, readMin, writeMin));
            }
            catch (VchanException e) when (IsExhaustion(e.InnerException) && Stopwatch.GetTimestamp() < deadline)
            {
                Thread.Sleep(backoffMs);
                backoffMs = Math.Min(backoffMs * 2, MaxBackoffMs);
            }
        }
    }

    /// <summary>Whether a set-up failure is a resource of the domain (or process) running out, which ending calls give back.</summary>
    private static bool IsExhaustion(Exception? e) => IsExhaustion(e switch
    {
        PlatformException p => p.Errno,
        LinuxException l => l.Errno,
        _ => Errno.None,
    });

    private static bool IsExhaustion(Errno errno) => errno is Errno.ENOSPC or Errno.EMFILE or Errno.ENFILE;

    public IQrexecChannel? Connect(int serverDomain, int port, TimeSpan timeout, out string? error)
    {
        long deadline = timeout == Timeout.InfiniteTimeSpan ? long.MaxValue : Stopwatch.GetTimestamp() + (long)(timeout.TotalSeconds * Stopwatch.Frequency);
        int backoffMs = 1;
        while (true)
        {
            IQrexecChannel? channel = TryConnect(serverDomain, port, deadline, out error, out bool exhausted);
            if (!exhausted || Stopwatch.GetTimestamp() >= deadline)
            {
                return channel;
            }
            // the domain is out of broker connections, event-channel ports or mappings: calls being
            // set up or ending give theirs back soon, so wait and start again (bounded by the timeout)
            Thread.Sleep(backoffMs);
            backoffMs = Math.Min(backoffMs * 2, MaxBackoffMs);
        }
    }

    /// <summary>One connect attempt until <paramref name="deadline"/>; <paramref name="exhausted"/> when it failed for want of a resource.</summary>
    private VchanChannel? TryConnect(int serverDomain, int port, long deadline, out string? error, out bool exhausted)
    {
        error = null;
        exhausted = false;
        VchanConnector connector;
        try
        {
            connector = VchanConnector.Start(_platform, serverDomain, port);
        }
        catch (Exception e) when (e is PlatformException or VchanException or ArgumentException)
        {
            error = e.Message;
            exhausted = e is PlatformException p && IsExhaustion(p.Errno);
            return null;
        }
        using (connector)
        {
            while (true)
            {
                int r = connector.Finish(blocking: false, out VchanEndpoint? vchan);
                if (r == 0)
                {
                    return new VchanChannel(vchan!);
                }
                if (r < 0)
                {
                    error = connector.Error;
                    exhausted = IsExhaustion(connector.ErrorErrno);
                    return null;
                }
                long left = deadline - Stopwatch.GetTimestamp();
                if (left <= 0)
                {
                    error = $"timed out connecting to domain {serverDomain} port {port}";
                    return null;
                }
                int ms = deadline == long.MaxValue ? -1 : (int)Math.Min(int.MaxValue, Math.Max(1, left * 1000 / Stopwatch.Frequency));
                LinuxFd.PollIn(connector.WatchFd, ms);
            }
        }
    }

    public void Dispose()
    {
        if (_ownsPlatform)
        {
            _platform.Dispose();
        }
    }
}
