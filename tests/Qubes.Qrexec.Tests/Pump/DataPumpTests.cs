using System;
using System.IO;
using System.Security.Cryptography;
using System.Threading.Tasks;
using Qubes.Interop.Linux;
using Qubes.Platform.Loopback;
using Qubes.Platform.Tests;
using Qubes.Qrexec.Runtime;
using Qubes.Qrexec.Transport;
using Xunit;

namespace Qubes.Qrexec.Tests.Pump;

/// <summary>The data phase end to end over a loopback vchan: a caller on pipes, a service process on the other side.</summary>
public sealed class DataPumpTests : IDisposable
{
    private readonly TestBroker _broker = new();

    public void Dispose() => _broker.Dispose();

    private (IQrexecChannel Caller, IQrexecChannel Service) Pair(int port)
    {
        (int a, LoopbackPlatform pa) = _broker.NewDomain("a" + port);
        (int b, LoopbackPlatform pb) = _broker.NewDomain("b" + port);
        VchanChannelFactory fa = new(pa, ownsPlatform: true);
        VchanChannelFactory fb = new(pb, ownsPlatform: true);
        IQrexecChannel server = fa.Listen(b, port, QrexecProtocol.DataRingSize, QrexecProtocol.DataRingSize);
        IQrexecChannel client = fb.Connect(a, port, TimeSpan.FromSeconds(10), out string? error) ?? throw new InvalidOperationException(error);
        Assert.True(server.WaitConnected(TimeSpan.FromSeconds(10)));
        return (server, client);
    }

    private static unsafe (SafeFd Read, SafeFd Write) Pipe()
    {
        int* fds = stackalloc int[2];
        Assert.Equal(0, Libc.pipe2(fds, Libc.O_CLOEXEC));
        return (new SafeFd(fds[0]), new SafeFd(fds[1]));
    }

    [Theory]
    [InlineData(0)]
    [InlineData(1)]
    [InlineData(100_000)]
    [InlineData(20_000_000)]
    public async Task Caller_input_reaches_the_service_process_and_its_output_and_status_come_back(int size)
    {
        (IQrexecChannel caller, IQrexecChannel service) = Pair(600 + size % 97);
        byte[] data = RandomNumberGenerator.GetBytes(size);
        string expected = Convert.ToHexStringLower(SHA256.HashData(data));
        (SafeFd inRead, SafeFd inWrite) = Pipe();
        (SafeFd outRead, SafeFd outWrite) = Pipe();
        Task<int> serviceSide = Task.Run(() =>
        {
            Assert.Equal(4u, Io.DataHandshake(service, sendFirst: true));
            return ServiceRunner.Run(service, 4, "user:sha256sum | cut -d' ' -f1; exit 5", justExec: false, dom0: false);
        });
        Task feed = Task.Run(() =>
        {
            using (inWrite)
            {
                Assert.True(Io.WriteAll(inWrite.Fd, data));
            }
        });
        Task<string> output = Task.Run(() =>
        {
            using FileStream s = new(new Microsoft.Win32.SafeHandles.SafeFileHandle(outRead.Release(), true), FileAccess.Read);
            return new StreamReader(s).ReadToEnd();
        });
        Assert.Equal(4u, Io.DataHandshake(caller, sendFirst: true));
        int status = DataPump.RunCaller(caller, 4, new CallerIo { Input = inRead.Fd, Output = outWrite.Fd, Error = -1 }, out string? failure);
        outWrite.Dispose();
        Assert.Null(failure);
        Assert.Equal(5, status);
        Assert.Equal(5, await serviceSide);
        await feed;
        Assert.Equal(expected + "\n", await output);
        inRead.Dispose();
        caller.Dispose();
        service.Dispose();
    }
}
