using System;
using System.Collections.Generic;
using System.Threading.Tasks;
using Qubes.Interop.Linux;
using Qubes.Platform;
using Qubes.Platform.Loopback;
using Qubes.Platform.Tests;
using Qubes.Qrexec.Transport;
using Qubes.Vchan;
using Xunit;

namespace Qubes.Qrexec.Tests.Transport;

/// <summary>A data channel set up while its domain is out of a hypervisor resource waits for it.</summary>
public sealed class VchanChannelFactoryTests : IDisposable
{
    private readonly TestBroker _broker = new();

    public void Dispose() => _broker.Dispose();

    /// <summary>Allocates event-channel ports for <paramref name="remote"/> until the domain has none left.</summary>
    private static List<IEventChannel> TakeEveryPort(LoopbackPlatform platform, int remote)
    {
        List<IEventChannel> ports = [];
        try
        {
            while (true)
            {
                ports.Add(platform.EventChannels.AllocateUnbound(remote));
            }
        }
        catch (PlatformException e) when (e.Errno == Errno.ENOSPC)
        {
        }
        Assert.NotEmpty(ports);
        return ports;
    }

    private static void Release(List<IEventChannel> ports)
    {
        foreach (IEventChannel port in ports)
        {
            port.Dispose();
        }
    }

    [Fact]
    public async Task Listen_waits_for_an_event_channel_port_while_the_domain_has_none_left()
    {
        (_, LoopbackPlatform pa) = _broker.NewDomain("caller");
        (int b, LoopbackPlatform pb) = _broker.NewDomain("service");
        using VchanChannelFactory fa = new(pa, ownsPlatform: true);
        using VchanChannelFactory fb = new(pb, ownsPlatform: true);
        List<IEventChannel> taken = TakeEveryPort(pa, b);
        try
        {
            Task<IQrexecChannel> listening = Task.Run(() => fa.Listen(b, 700, 4096, 4096));
            await Task.Delay(300);
            Assert.False(listening.IsCompleted, "the channel failed or was set up without a port");
            // a call that ends gives its port back
            taken[0].Dispose();
            using IQrexecChannel server = await listening.WaitAsync(TimeSpan.FromSeconds(30));
            Assert.Equal(VchanState.Waiting, server.State);
        }
        finally
        {
            Release(taken);
        }
    }

    [Fact]
    public async Task Connect_waits_for_an_event_channel_port_while_the_domain_has_none_left()
    {
        (int a, LoopbackPlatform pa) = _broker.NewDomain("caller");
        (int b, LoopbackPlatform pb) = _broker.NewDomain("service");
        using VchanChannelFactory fa = new(pa, ownsPlatform: true);
        using VchanChannelFactory fb = new(pb, ownsPlatform: true);
        using IQrexecChannel server = fa.Listen(b, 701, 4096, 4096);
        List<IEventChannel> taken = TakeEveryPort(pb, a);
        try
        {
            Task<IQrexecChannel?> connecting = Task.Run(() => fb.Connect(a, 701, TimeSpan.FromSeconds(30), out _));
            await Task.Delay(300);
            Assert.False(connecting.IsCompleted, "the connect failed without waiting for a port");
            taken[0].Dispose();
            using IQrexecChannel? client = await connecting.WaitAsync(TimeSpan.FromSeconds(30));
            Assert.NotNull(client);
            Assert.True(server.WaitConnected(TimeSpan.FromSeconds(10)));
        }
        finally
        {
            Release(taken);
        }
    }

    [Fact]
    public void Connect_that_runs_out_of_time_while_waiting_for_a_port_says_so()
    {
        (int a, LoopbackPlatform pa) = _broker.NewDomain("caller");
        (int b, LoopbackPlatform pb) = _broker.NewDomain("service");
        using VchanChannelFactory fa = new(pa, ownsPlatform: true);
        using VchanChannelFactory fb = new(pb, ownsPlatform: true);
        using IQrexecChannel server = fa.Listen(b, 702, 4096, 4096);
        List<IEventChannel> taken = TakeEveryPort(pb, a);
        try
        {
            Assert.Null(fb.Connect(a, 702, TimeSpan.FromMilliseconds(300), out string? error));
            Assert.Contains("ENOSPC", error, StringComparison.Ordinal);
        }
        finally
        {
            Release(taken);
        }
    }
}
