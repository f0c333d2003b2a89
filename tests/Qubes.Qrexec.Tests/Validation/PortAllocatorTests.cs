using System.Collections.Generic;
using Qubes.Qrexec.Runtime;
using Xunit;

namespace Qubes.Qrexec.Tests.Validation;

/// <summary>Data port allocation (spec §7), including its pinned examples.</summary>
public sealed class PortAllocatorTests
{
    [Fact]
    public void Pinned_example_of_the_spec()
    {
        PortAllocator ports = new(42);
        Assert.Equal(514u, ports.Allocate(43));
        Assert.Equal(516u, ports.Allocate(44));
        Assert.True(ports.Release(43, 514));
        Assert.Equal(514u, ports.Allocate(44));
    }

    [Fact]
    public void Dom0_peers_take_the_first_free_port_in_order()
    {
        PortAllocator ports = new(42);
        Assert.Equal(513u, ports.Allocate(0));
        Assert.Equal(514u, ports.Allocate(0));
        Assert.Equal(515u, ports.Allocate(0));
        Assert.True(ports.Release(0, 514));
        Assert.Equal(514u, ports.Allocate(0));
        Assert.Equal(516u, ports.Allocate(0));
    }

    [Fact]
    public void Dom0_rule_fills_the_gaps_the_pair_rule_left()
    {
        PortAllocator ports = new(42);
        Assert.Equal(514u, ports.Allocate(50));
        Assert.Equal(513u, ports.Allocate(0));
        Assert.Equal(515u, ports.Allocate(0));
        Assert.Equal(516u, ports.Allocate(0));
    }

    [Fact]
    public void A_lower_or_equal_peer_takes_the_odd_ports()
    {
        PortAllocator ports = new(42);
        Assert.Equal(513u, ports.Allocate(41));
        Assert.Equal(515u, ports.Allocate(1));
        Assert.Equal(517u, ports.Allocate(42));
        Assert.Equal(514u, ports.Allocate(43));
    }

    [Fact]
    public void The_two_daemons_of_a_pair_never_pick_the_same_port()
    {
        PortAllocator daemonOf5 = new(5);
        PortAllocator daemonOf9 = new(9);
        HashSet<uint> seen = [];
        for (int i = 0; i < 128; i++)
        {
            Assert.True(seen.Add(daemonOf5.Allocate(9)));
            Assert.True(seen.Add(daemonOf9.Allocate(5)));
        }
        Assert.Equal(256, seen.Count);
        Assert.DoesNotContain(0u, seen);
    }

    [Fact]
    public void Release_for_another_domain_leaves_the_port_allocated()
    {
        PortAllocator ports = new(42);
        Assert.Equal(513u, ports.Allocate(0));
        Assert.False(ports.Release(7, 513));
        Assert.Equal(514u, ports.Allocate(0)); // 513 still taken
        Assert.True(ports.Release(0, 513));
        Assert.Equal(513u, ports.Allocate(0));
    }

    [Fact]
    public void Release_of_a_free_port_or_twice_does_nothing()
    {
        PortAllocator ports = new(42);
        Assert.False(ports.Release(0, 513));
        Assert.Equal(513u, ports.Allocate(0));
        Assert.True(ports.Release(0, 513));
        Assert.False(ports.Release(0, 513));
    }

    [Theory]
    [InlineData(0u)]
    [InlineData(512u)]
    [InlineData(769u)]
    [InlineData(uint.MaxValue)]
    public void Release_outside_the_data_ports_is_refused(uint port)
    {
        PortAllocator ports = new(42);
        Assert.False(ports.Release(0, port));
    }

    [Fact]
    public void The_last_port_is_768()
    {
        PortAllocator ports = new(42);
        uint last = 0;
        for (int i = 0; i < 256; i++)
        {
            last = ports.Allocate(0);
        }
        Assert.Equal(768u, last);
        Assert.True(ports.Release(0, 768));
    }

    [Fact]
    public void Exhaustion_returns_0_for_each_rule()
    {
        PortAllocator dom0 = new(42);
        for (int i = 0; i < 256; i++)
        {
            Assert.NotEqual(0u, dom0.Allocate(0));
        }
        Assert.Equal(0u, dom0.Allocate(0));
        Assert.Equal(0u, dom0.Allocate(43));
        Assert.Equal(0u, dom0.Allocate(41));

        PortAllocator higher = new(42);
        for (int i = 0; i < 128; i++)
        {
            Assert.Equal((uint)(514 + 2 * i), higher.Allocate(43));
        }
        Assert.Equal(0u, higher.Allocate(43)); // the odd ports are still free, but not for this pair
        Assert.Equal(513u, higher.Allocate(41));

        PortAllocator lower = new(42);
        for (int i = 0; i < 128; i++)
        {
            Assert.Equal((uint)(513 + 2 * i), lower.Allocate(3));
        }
        Assert.Equal(0u, lower.Allocate(3));
        Assert.Equal(514u, lower.Allocate(0));
    }

    [Theory]
    [InlineData(0x80000000u)]
    [InlineData(0xFFFFFFFFu)]
    public void A_port_allocated_for_a_huge_domain_value_stays_allocated(uint domain)
    {
        PortAllocator ports = new(42);
        uint first = ports.Allocate(domain);
        Assert.NotEqual(0u, first);
        uint second = ports.Allocate(domain);
        Assert.NotEqual(first, second);
        Assert.False(ports.Release(0, first));
        Assert.True(ports.Release(domain, first));
        Assert.Equal(first, ports.Allocate(domain));
    }
}
