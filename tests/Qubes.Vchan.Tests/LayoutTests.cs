using Xunit;

namespace Qubes.Vchan.Tests;

public class LayoutTests
{
    [Theory]
    [InlineData(4096, 4096, 12, 12)]       // qrexec control
    [InlineData(65536, 65536, 16, 16)]     // qrexec data
    [InlineData(128, 8192, 11, 13)]        // audio playback
    [InlineData(8192, 128, 13, 11)]        // audio record
    [InlineData(1024, 2048, 10, 11)]
    [InlineData(0, 0, 10, 11)]
    [InlineData(2048, 1024, 11, 10)]
    [InlineData(1025, 1024, 11, 10)]
    [InlineData(2048, 4096, 11, 12)]       // rule 3: left in page, right keeps provisional
    [InlineData(4096, 2048, 12, 11)]       // rule 4
    [InlineData(4097, 100000, 13, 17)]
    [InlineData(1 << 20, 1 << 20, 20, 20)]
    public void Server_picks_orders_as_libxenvchan(int readMin, int writeMin, int left, int right)
    {
        Assert.True(VchanLayout.TrySelectOrders(readMin, writeMin, out int l, out int r));
        Assert.Equal((left, right), (l, r));
        Assert.Null(VchanLayout.ValidateOrders(l, r));
    }

    [Theory]
    [InlineData((1 << 20) + 1, 4096)]
    [InlineData(4096, (1 << 20) + 1)]
    [InlineData(-1, 4096)]
    public void Server_refuses_minimums_out_of_range(int readMin, int writeMin)
        => Assert.False(VchanLayout.TrySelectOrders(readMin, writeMin, out _, out _));

    [Theory]
    [InlineData(9, 12)]
    [InlineData(12, 21)]
    [InlineData(0, 0)]
    [InlineData(65535, 12)]
    [InlineData(10, 10)]                   // two rings in one in-page slot
    [InlineData(11, 11)]
    [InlineData(20, 10)]                   // 256 grant refs run into the order-10 ring at 1024
    [InlineData(10, 20)]
    public void Client_rejects_invalid_orders(int left, int right)
        => Assert.NotNull(VchanLayout.ValidateOrders(left, right));

    [Theory]
    [InlineData(20, 11)]                   // 256 refs end at 1048, below the order-11 ring
    [InlineData(20, 20)]                   // 512 refs end at 2072, no in-page ring
    [InlineData(10, 11)]
    [InlineData(12, 10)]
    public void Client_accepts_valid_orders(int left, int right)
        => Assert.Null(VchanLayout.ValidateOrders(left, right));

    [Fact]
    public void Header_is_24_bytes_and_two_order20_grant_lists_fit_in_the_page()
    {
        Assert.Equal(24, VchanLayout.HeaderSize);
        Assert.Equal(20, VchanLayout.CliLive);
        Assert.Equal(21, VchanLayout.SrvLive);
        Assert.Equal(22, VchanLayout.CliNotify);
        Assert.Equal(23, VchanLayout.SrvNotify);
        Assert.True(VchanLayout.GrantList + 4 * 2 * VchanLayout.GrantedPages(20) <= VchanLayout.PageSize);
        Assert.Equal(2072, VchanLayout.GrantList + 4 * 2 * VchanLayout.GrantedPages(20));
    }

    [Theory]
    [InlineData("0", 0)]
    [InlineData("7", 7)]
    [InlineData("32751", 32751)]
    public void Domain_ids_parse_strictly(string text, int expected)
    {
        Assert.True(Qubes.Platform.DomainIds.TryParse(text, out int d));
        Assert.Equal(expected, d);
    }

    [Theory]
    [InlineData("")]
    [InlineData(null)]
    [InlineData("01")]
    [InlineData("32752")]
    [InlineData("-1")]
    [InlineData("1a")]
    [InlineData(" 1")]
    [InlineData("999999")]
    public void Malformed_domain_ids_are_refused(string? text)
        => Assert.False(Qubes.Platform.DomainIds.TryParse(text, out _));
}
