using System;
using System.Threading;
using Qubes.Interop.Linux;
using Qubes.Platform.Loopback;
using Qubes.Platform.Tests;
using Qubes.Qrexec.Runtime;
using Qubes.Qrexec.Transport;
using Xunit;

namespace Qubes.Qrexec.Tests.Pump;

/// <summary>
/// The data pump allocates nothing per chunk: whole calls over one loopback vchan pair, the caller
/// reading a memfd and the service writing into a pipe that a stand-in process drains, allocate
/// exactly as much on each pump thread for 512 MiB as for 64 MiB (their set-up only).
/// </summary>
public sealed unsafe class PumpAllocationTests : IDisposable
{
    private const long SetUpBound = 16 * 1024;
    private readonly TestBroker _broker = new();

    public void Dispose() => _broker.Dispose();

    [Fact]
    public void Neither_pump_thread_allocates_per_chunk()
    {
        (IQrexecChannel caller, IQrexecChannel service) = Pair(700);
        try
        {
            Call(caller, service, 64 << 20); // warm-up: first-call initialisation and tiered compilation
            (long caller64, long service64) = Call(caller, service, 64 << 20);
            (long caller512, long service512) = Call(caller, service, 512 << 20);
            Assert.Equal(caller64, caller512);
            Assert.Equal(service64, service512);
            Assert.InRange(caller512, 0, SetUpBound);
            Assert.InRange(service512, 0, SetUpBound);
        }
        finally
        {
            caller.Dispose();
            service.Dispose();
        }
    }

    private (IQrexecChannel Caller, IQrexecChannel Service) Pair(int port)
    {
        (int a, LoopbackPlatform pa) = _broker.NewDomain("a" + port);
        (int b, LoopbackPlatform pb) = _broker.NewDomain("b" + port);
        VchanChannelFactory fa = new(pa, ownsPlatform: true);
        VchanChannelFactory fb = new(pb, ownsPlatform: true);
        IQrexecChannel server = fa.Listen(b, port, QrexecProtocol.DataRingSize, QrexecProtocol.DataRingSize);
        IQrexecChannel client = fb.Connect(a, port, TimeSpan.FromSeconds(10), out string? error) ?? throw new InvalidOperationException(error);
        Assert.True(server.WaitConnected(TimeSpan.FromSeconds(10)));
        uint serverVersion = 0;
        Thread hello = new(() => serverVersion = Io.DataHandshake(server, sendFirst: true));
        hello.Start();
        Assert.Equal(4u, Io.DataHandshake(client, sendFirst: true));
        hello.Join();
        Assert.Equal(4u, serverVersion);
        return (server, client);
    }

    /// <summary>One call moving <paramref name="bytes"/> caller → service; returns the bytes each pump thread allocated while it ran.</summary>
    private static (long Caller, long Service) Call(IQrexecChannel caller, IQrexecChannel service, long bytes)
    {
        int input = Libc.memfd_create("pump-allocation", Libc.MFD_CLOEXEC);
        Assert.True(input >= 0);
        Assert.Equal(0, Libc.ftruncate(input, bytes)); // reads as zeros, then end of file
        int* fds = stackalloc int[4];
        Assert.Equal(0, Libc.pipe2(fds, Libc.O_CLOEXEC));      // the service's stdin: [0] drained, [1] the pump's
        Assert.Equal(0, Libc.pipe2(fds + 2, Libc.O_CLOEXEC));  // its stdout: [2] the pump's, [3] held until stdin ends
        int stdinRead = fds[0], stdinWrite = fds[1], stdoutRead = fds[2], stdoutWrite = fds[3];

        long serviceAllocated = -1, drained = 0;
        int serviceStatus = -2;
        string? serviceFailure = null;
        Thread serviceThread = new(() =>
        {
            ServiceIo io = new() { Input = stdinWrite, Output = stdoutRead, Error = -1 };
            long before = GC.GetAllocatedBytesForCurrentThread();
            serviceStatus = DataPump.RunService(service, 4, io, out serviceFailure);
            serviceAllocated = GC.GetAllocatedBytesForCurrentThread() - before;
        });
        Thread process = new(() =>
        {
            // the service process: reads its stdin to the end, then exits (its stdout closes)
            byte[] buffer = new byte[64 * 1024];
            int n;
            while ((n = Fd.Read(stdinRead, buffer)) > 0)
            {
                drained += n;
            }
            Libc.close(stdinRead);
            Libc.close(stdoutWrite);
        });
        serviceThread.Start();
        process.Start();

        CallerIo callerIo = new() { Input = input, Output = -1, Error = -1 };
        long start = GC.GetAllocatedBytesForCurrentThread();
        int status = DataPump.RunCaller(caller, 4, callerIo, out string? failure);
        long callerAllocated = GC.GetAllocatedBytesForCurrentThread() - start;

        Assert.True(serviceThread.Join(TimeSpan.FromMinutes(2)), "the service pump did not finish");
        Assert.True(process.Join(TimeSpan.FromMinutes(2)), "the service process did not finish");
        Libc.close(input);
        Assert.Null(failure);
        Assert.Null(serviceFailure);
        Assert.Equal(0, status);
        Assert.Equal(0, serviceStatus);
        Assert.Equal(bytes, drained);
        return (callerAllocated, serviceAllocated);
    }
}
