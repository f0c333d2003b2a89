using System;
using System.Runtime.InteropServices;
using System.Threading;
using BenchmarkDotNet.Attributes;
using Qubes.Interop.Linux;
using Qubes.Platform.Loopback;
using Qubes.Qrexec;
using Qubes.Qrexec.Runtime;
using Qubes.Qrexec.Transport;

namespace Qubes.Bench;

/// <summary>
/// One whole call's data phase per operation, over a loopback vchan pair in this process: the
/// caller pump (this thread) sends <see cref="Chunks"/> 64 KiB chunks read from a memfd, the
/// service pump (its own thread) writes them into a pipe drained by a third thread, then the
/// service's stdout EOF and exit code come back. The channel pair is kept from call to call.
/// Allocation per operation must not depend on <see cref="Chunks"/>: what a call allocates is
/// its set-up (the pump objects), nothing per chunk. The memory diagnoser counts the whole
/// process (so also the in-process hypervisor and the harness threads); the cleanup also prints
/// what the two pump threads themselves allocated per call, counted exactly per thread: the least
/// over all calls is the steady state (the first calls also initialise and compile).
/// </summary>
[MemoryDiagnoser]
public unsafe partial class PumpBenchmarks
{
    private const int Chunk = 64 * 1024;
    private LoopbackHost? _host;
    private IQrexecChannel? _caller;
    private IQrexecChannel? _service;
    private VchanChannelFactory? _callerFactory;
    private VchanChannelFactory? _serviceFactory;
    private int _input = -1;
    private Thread? _serviceThread;
    private Thread? _drainThread;
    private readonly SemaphoreSlim _startService = new(0);
    private readonly SemaphoreSlim _serviceDone = new(0);
    private readonly SemaphoreSlim _startDrain = new(0);
    private volatile bool _stop;
    private int _drainIn = -1;
    private int _drainHold = -1;
    private volatile string? _serviceFailure;
    private long _calls;
    private long _callerMin = long.MaxValue, _callerMax;
    private long _serviceMin = long.MaxValue, _serviceMax;

    /// <summary>64 KiB chunks per call.</summary>
    [Params(16, 256)]
    public int Chunks { get; set; }

    [GlobalSetup]
    public void Setup()
    {
        _host = new LoopbackHost();
        (int callerId, SafeFd callerConnection) = _host.CreateDomain("bench-caller");
        (int serviceId, SafeFd serviceConnection) = _host.CreateDomain("bench-service");
        _callerFactory = new VchanChannelFactory(LoopbackPlatform.Connect(callerConnection.Release()), ownsPlatform: true);
        _serviceFactory = new VchanChannelFactory(LoopbackPlatform.Connect(serviceConnection.Release()), ownsPlatform: true);
        _service = _serviceFactory.Listen(callerId, 9, QrexecProtocol.DataRingSize, QrexecProtocol.DataRingSize);
        _caller = _callerFactory.Connect(serviceId, 9, TimeSpan.FromSeconds(10), out string? error) ?? throw new InvalidOperationException(error);
        if (!_service.WaitConnected(TimeSpan.FromSeconds(10)))
        {
            throw new InvalidOperationException("the service end did not connect");
        }
        IQrexecChannel service = _service;
        uint serviceVersion = 0;
        Thread hello = new(() => serviceVersion = Io.DataHandshake(service, sendFirst: true));
        hello.Start();
        uint callerVersion = Io.DataHandshake(_caller, sendFirst: true);
        hello.Join();
        if (callerVersion != 4 || serviceVersion != 4)
        {
            throw new InvalidOperationException("data handshake failed");
        }

        // the caller's input: a memfd of zeros (a regular file: always readable, EOF at its end)
        _input = Libc.memfd_create("pump-bench", Libc.MFD_CLOEXEC);
        if (_input < 0 || Libc.ftruncate(_input, (long)Chunks * Chunk) < 0)
        {
            throw new InvalidOperationException("memfd");
        }
        _serviceThread = new Thread(ServiceLoop) { IsBackground = true, Name = "service pump" };
        _drainThread = new Thread(DrainLoop) { IsBackground = true, Name = "service process" };
        _serviceThread.Start();
        _drainThread.Start();
    }

    [Benchmark(Description = "qrexec call data phase, 64 KiB chunks (loopback vchan)")]
    public int Call()
    {
        LSeek(_input, 0, 0);
        _startService.Release();
        long before = GC.GetAllocatedBytesForCurrentThread();
        int status = DataPump.RunCaller(_caller!, 4, new CallerIo { Input = _input, Output = -1, Error = -1 }, out string? failure);
        long allocated = GC.GetAllocatedBytesForCurrentThread() - before;
        _callerMin = Math.Min(_callerMin, allocated);
        _callerMax = Math.Max(_callerMax, allocated);
        _calls++;
        _serviceDone.Wait();
        if (failure != null || _serviceFailure != null || status != 0)
        {
            throw new InvalidOperationException($"call failed: {failure ?? _serviceFailure}, status {status}");
        }
        return status;
    }

    /// <summary>The service end of each call: stdin into a pipe the drain thread reads; stdout a pipe that ends when the drain thread saw stdin end.</summary>
    private void ServiceLoop()
    {
        int* fds = stackalloc int[4];
        while (true)
        {
            _startService.Wait();
            if (_stop)
            {
                return;
            }
            if (Libc.pipe2(fds, Libc.O_CLOEXEC) < 0 || Libc.pipe2(fds + 2, Libc.O_CLOEXEC) < 0)
            {
                _serviceFailure = "pipe2";
                _serviceDone.Release();
                return;
            }
            _drainIn = fds[0];
            _drainHold = fds[3];
            _startDrain.Release();
            long before = GC.GetAllocatedBytesForCurrentThread();
            int status = DataPump.RunService(_service!, 4, new ServiceIo { Input = fds[1], Output = fds[2], Error = -1 }, out string? failure);
            long allocated = GC.GetAllocatedBytesForCurrentThread() - before;
            _serviceMin = Math.Min(_serviceMin, allocated);
            _serviceMax = Math.Max(_serviceMax, allocated);
            _serviceFailure = failure ?? (status == 0 ? null : "service status");
            _serviceDone.Release();
        }
    }

    /// <summary>The service process: reads its stdin to EOF, then closes its stdout.</summary>
    private void DrainLoop()
    {
        byte* buffer = (byte*)NativeMemory.Alloc(Chunk);
        try
        {
            while (true)
            {
                _startDrain.Wait();
                if (_stop)
                {
                    return;
                }
                while (Libc.read(_drainIn, buffer, Chunk) is var n && (n > 0 || (n < 0 && LastError.Get() == Errno.EINTR)))
                {
                }
                Libc.close(_drainIn);
                Libc.close(_drainHold);
            }
        }
        finally
        {
            NativeMemory.Free(buffer);
        }
    }

    [GlobalCleanup]
    public void Cleanup()
    {
        if (_calls > 0)
        {
            Console.WriteLine(FormattableString.Invariant(
                $"// pump threads, {Chunks} chunks per call, {_calls} calls: caller {_callerMin} B/call (first calls up to {_callerMax}), service {_serviceMin} B/call (up to {_serviceMax})"));
        }
        _stop = true;
        _startService.Release();
        _startDrain.Release();
        _serviceThread?.Join();
        _drainThread?.Join();
        if (_input >= 0)
        {
            Libc.close(_input);
        }
        _caller?.Dispose();
        _service?.Dispose();
        _callerFactory?.Dispose();
        _serviceFactory?.Dispose();
        _host?.Dispose();
    }

    [LibraryImport("libc", EntryPoint = "lseek", SetLastError = true)]
    private static partial long LSeek(int fd, long offset, int whence);
}
