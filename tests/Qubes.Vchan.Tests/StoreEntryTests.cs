using System.Collections.Generic;
using System.Globalization;
using System.Threading.Tasks;
using Qubes.Platform;
using Qubes.Platform.Loopback;
using Qubes.Platform.Tests;
using Xunit;

namespace Qubes.Vchan.Tests;

/// <summary>
/// A server's store entry never outlives it, whatever the load on the store; and an entry that did
/// (a server process killed while it waited) does not fail the next client of its port.
/// </summary>
public sealed class StoreEntryTests
{
    private static string Entry(int serverId, int clientId, int port)
        => string.Create(CultureInfo.InvariantCulture, $"/local/domain/{serverId}/data/vchan/{clientId}/{port}");

    [Fact]
    public void A_server_entry_goes_even_when_its_store_connection_has_no_transaction_to_give()
    {
        using var broker = new TestBroker();
        (int serverId, LoopbackPlatform server) = broker.NewDomain("server");
        (int clientId, LoopbackPlatform client) = broker.NewDomain("client");
        using (server)
        using (client)
        {
            VchanEndpoint waiting = VchanEndpoint.ServerInit(server, clientId, 3, 4096, 4096);
            string entry = Entry(serverId, clientId, 3);
            Assert.NotNull(server.Store.Read(entry + "/event-channel"));
            // other channels of the domain hold every transaction slot of the connection
            List<uint> held = [];
            try
            {
                while (true)
                {
                    held.Add(server.Store.TransactionStart());
                }
            }
            catch (StoreException e) when (e.Errno == Qubes.Interop.Linux.Errno.ENOSPC)
            {
            }
            waiting.Dispose();
            foreach (uint tx in held)
            {
                server.Store.TransactionEnd(tx, commit: false);
            }
            Assert.Null(server.Store.Read(entry + "/event-channel"));
            Assert.Null(server.Store.Read(entry + "/ring-ref"));
        }
    }

    [Fact]
    public void A_server_leaves_alone_the_entry_a_later_server_of_its_port_published()
    {
        using var broker = new TestBroker();
        (int serverId, LoopbackPlatform server) = broker.NewDomain("server");
        (int clientId, LoopbackPlatform client) = broker.NewDomain("client");
        using (server)
        using (client)
        {
            VchanEndpoint earlier = VchanEndpoint.ServerInit(server, clientId, 4, 4096, 4096);
            using VchanEndpoint later = VchanEndpoint.ServerInit(server, clientId, 4, 4096, 4096);
            earlier.Dispose();
            Assert.NotNull(server.Store.Read(Entry(serverId, clientId, 4) + "/event-channel"));
            using VchanEndpoint c = VchanEndpoint.ClientInit(client, serverId, 4);
            Assert.Equal(2, c.Send("ok"u8));
            byte[] got = new byte[2];
            Assert.Equal(2, later.Recv(got));
        }
    }

    [Fact]
    public async Task A_client_waits_past_a_stale_entry_for_the_next_server_of_its_port()
    {
        using var broker = new TestBroker();
        (int serverId, LoopbackPlatform server) = broker.NewDomain("server");
        (int clientId, LoopbackPlatform client) = broker.NewDomain("client");
        using (server)
        using (client)
        {
            // what a server killed while it waited leaves: an entry naming a channel that is gone
            string entry = Entry(serverId, clientId, 5);
            StorePermission[] permissions = [new(serverId, StoreAccess.None), new(clientId, StoreAccess.Read)];
            using (VchanEndpoint gone = VchanEndpoint.ServerInit(server, clientId, 6, 4096, 4096))
            {
                string ringRef = server.Store.Read(Entry(serverId, clientId, 6) + "/ring-ref")!;
                string port = server.Store.Read(Entry(serverId, clientId, 6) + "/event-channel")!;
                server.Store.Write(entry + "/ring-ref", ringRef);
                server.Store.Write(entry + "/event-channel", port);
                server.Store.SetPermissions(entry + "/ring-ref", permissions);
                server.Store.SetPermissions(entry + "/event-channel", permissions);
            }

            Task<VchanEndpoint> connecting = Task.Run(() => VchanEndpoint.ClientInit(client, serverId, 5));
            await Task.Delay(300);
            Assert.False(connecting.IsCompleted, "the client did not wait past the stale entry");
            using VchanEndpoint next = VchanEndpoint.ServerInit(server, clientId, 5, 4096, 4096);
            using VchanEndpoint c = await connecting.WaitAsync(System.TimeSpan.FromSeconds(30));
            Assert.Equal(5, c.Send("fresh"u8));
            byte[] got = new byte[5];
            Assert.Equal(5, next.Recv(got));
            Assert.Equal("fresh"u8.ToArray(), got);
        }
    }
}
