namespace Qubes.Vchan;

/// <summary>
/// The libxenvchan shared control page, byte for byte (Xen ABI, little-endian):
/// <code>
///  0      4      8      12     16     18     20  21  22  23  24                 1024      2048      4096
///  +------+------+------+------+------+------+---+---+---+---+------------------+---------+---------+
///  | left | left | right| right| left | right|cli|srv|cli|srv| grants[]: left   | order-10| order-11|
///  | cons | prod | cons | prod | order| order|live live|ntfy ntfy| pages, then right| ring    | ring    |
///  +------+------+------+------+------+------+---+---+---+---+------------------+---------+---------+
///   server  client client server                    set by: srv cli
///   writes  writes writes writes
/// </code>
/// The left ring is written by the client and read by the server; the right ring the other way.
/// Rings of order 10 and 11 live inside this page; rings of order 12 to 20 are separately granted
/// pages whose references follow the 24-byte header, all left pages first.
/// </summary>
public static class VchanLayout
{
    public const int LeftCons = 0;
    public const int LeftProd = 4;
    public const int RightCons = 8;
    public const int RightProd = 12;
    public const int LeftOrder = 16;
    public const int RightOrder = 18;
    public const int CliLive = 20;
    public const int SrvLive = 21;
    public const int CliNotify = 22;
    public const int SrvNotify = 23;
    public const int GrantList = 24;
    public const int HeaderSize = 24;

    /// <summary>Where an order-10 ring lives inside the control page.</summary>
    public const int InPageRing10 = 1024;

    /// <summary>Where an order-11 ring lives inside the control page.</summary>
    public const int InPageRing11 = 2048;

    public const int PageShift = 12;
    public const int PageSize = 1 << PageShift;
    public const int MinOrder = 10;
    public const int MaxOrder = 20;
    public const int MaxRingSize = 1 << MaxOrder;

    /// <summary>"Signal me when you have produced data."</summary>
    public const byte NotifyWrite = 0x1;

    /// <summary>"Signal me when you have consumed data."</summary>
    public const byte NotifyRead = 0x2;

    public const byte LiveExited = 0;
    public const byte LiveConnected = 1;
    public const byte LiveWaiting = 2;

    /// <summary>Pages granted separately for a ring of <paramref name="order"/> (0 for in-page rings).</summary>
    public static int GrantedPages(int order) => order >= PageShift ? 1 << (order - PageShift) : 0;

    /// <summary>
    /// The server's choice of ring orders (left from <paramref name="readMin"/>, right from
    /// <paramref name="writeMin"/>), as libxenvchan makes it. False if a minimum is out of range.
    /// </summary>
    public static bool TrySelectOrders(int readMin, int writeMin, out int leftOrder, out int rightOrder)
    {
        leftOrder = rightOrder = 0;
        if (readMin < 0 || writeMin < 0 || readMin > MaxRingSize || writeMin > MaxRingSize)
        {
            return false;
        }
        leftOrder = ProvisionalOrder(readMin);
        rightOrder = ProvisionalOrder(writeMin);
        if (readMin <= 1024 && writeMin <= 2048)
        {
            (leftOrder, rightOrder) = (10, 11);
        }
        else if (readMin <= 2048 && writeMin <= 1024)
        {
            (leftOrder, rightOrder) = (11, 10);
        }
        else if (readMin <= 2048)
        {
            leftOrder = 11;
        }
        else if (writeMin <= 2048)
        {
            rightOrder = 11;
        }
        return true;
    }

    private static int ProvisionalOrder(int minimum)
    {
        int order = PageShift;
        while ((1 << order) < minimum)
        {
            order++;
        }
        return order;
    }

    /// <summary>
    /// What a client checks of the orders a server published, before using anything else: each in
    /// 10..20, not two in-page rings in one slot, and (hardening beyond upstream) no overlap between
    /// the grant list and an in-page ring in use. Returns null when valid, else the reason.
    /// </summary>
    public static string? ValidateOrders(int leftOrder, int rightOrder)
    {
        if (leftOrder < MinOrder || leftOrder > MaxOrder || rightOrder < MinOrder || rightOrder > MaxOrder)
        {
            return $"ring order out of range (left {leftOrder}, right {rightOrder})";
        }
        if (leftOrder == rightOrder && leftOrder < PageShift)
        {
            return $"both rings in the same in-page slot (order {leftOrder})";
        }
        int grantListEnd = GrantList + 4 * (GrantedPages(leftOrder) + GrantedPages(rightOrder));
        int firstInPageRing = leftOrder == 10 || rightOrder == 10 ? InPageRing10
            : leftOrder == 11 || rightOrder == 11 ? InPageRing11
            : PageSize;
        if (grantListEnd > firstInPageRing)
        {
            return $"grant list (ends at {grantListEnd}) overlaps an in-page ring (at {firstInPageRing})";
        }
        return null;
    }

    /// <summary>Offset of an in-page ring of <paramref name="order"/> (10 or 11) in the control page.</summary>
    public static int InPageRingOffset(int order) => order == 10 ? InPageRing10 : InPageRing11;
}
