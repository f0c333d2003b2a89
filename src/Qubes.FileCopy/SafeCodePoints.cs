using System;

namespace Qubes.FileCopy;

/// <summary>
/// The "safe for display" allow-list of spec filecopy §6.3: the code points a received file name
/// may hold besides printable ASCII. A code point is safe only if it is an assigned, non-control
/// scalar value of a permitted general category, bidirectional class and script; anything not in
/// the list (unassigned, surrogates, noncharacters, right-to-left letters, emoji, combining marks,
/// spaces other than U+0020, values above U+10FFFF) is unsafe.
/// </summary>
/// <remarks>
/// Printable ASCII is decided here; everything above U+007F by a binary search of
/// <c>RangeTable</c>, which native/unicode-safe-gen.c generates from ICU's Unicode data into
/// SafeCodePoints.Table.cs. The table is a constant <see cref="ReadOnlySpan{T}"/> the compiler
/// stores in the assembly's data, so a lookup allocates nothing.
/// </remarks>
internal static partial class SafeCodePoints
{
    /// <summary>
    /// The ranges above U+007F, as pairs of inclusive first and last code points (spec §6.3),
    /// for tests and oracles that check the table itself.
    /// </summary>
    internal static ReadOnlySpan<uint> Ranges => RangeTable;

    /// <summary>
    /// Whether <paramref name="codePoint"/> is safe for display in a file name (spec filecopy
    /// §6.3): U+0020-U+007E, or a code point in the generated allow-list. Controls, DEL,
    /// negative values and values above U+10FFFF are not.
    /// </summary>
    internal static bool IsSafe(int codePoint)
    {
        // a negative value becomes a huge one, above every range
        uint value = (uint)codePoint;
        if (value < 0x80)
        {
            return value is >= 0x20 and < 0x7F;
        }

        ReadOnlySpan<uint> ranges = RangeTable;
        // the last range whose first code point is <= value, by bisection over range indices
        int low = 0;
        int high = ranges.Length / 2 - 1;
        while (low <= high)
        {
            int middle = low + (high - low) / 2;
            if (ranges[2 * middle] <= value)
            {
                low = middle + 1;
            }
            else
            {
                high = middle - 1;
            }
        }
        // high is that range, or -1 when value lies below the first one
        return high >= 0 && value <= ranges[2 * high + 1];
    }
}
