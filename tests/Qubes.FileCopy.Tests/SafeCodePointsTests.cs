using System;
using System.Threading;
using Xunit;

namespace Qubes.FileCopy.Tests;

/// <summary>The "safe for display" allow-list of spec filecopy §6.3 and the shape of its generated table.</summary>
public sealed class SafeCodePointsTests
{
    [Fact]
    public void Printable_ASCII_is_safe()
    {
        for (int c = 0x20; c <= 0x7E; c++)
        {
            Assert.True(SafeCodePoints.IsSafe(c), $"U+{c:X4}");
        }
    }

    [Fact]
    public void ASCII_controls_and_DEL_are_unsafe()
    {
        for (int c = 0x00; c < 0x20; c++)
        {
            Assert.False(SafeCodePoints.IsSafe(c), $"U+{c:X4}");
        }
        Assert.False(SafeCodePoints.IsSafe(0x7F));
    }

    [Fact]
    public void C1_controls_are_unsafe()
    {
        for (int c = 0x80; c <= 0x9F; c++)
        {
            Assert.False(SafeCodePoints.IsSafe(c), $"U+{c:X4}");
        }
    }

    [Theory]
    [InlineData(0x00E9)] // LATIN SMALL LETTER E WITH ACUTE
    [InlineData(0x00C5)] // LATIN CAPITAL LETTER A WITH RING ABOVE
    [InlineData(0x0161)] // LATIN SMALL LETTER S WITH CARON
    [InlineData(0x1EA0)] // LATIN CAPITAL LETTER A WITH DOT BELOW
    public void Latin_letters_with_accents_are_safe(int codePoint) => Assert.True(SafeCodePoints.IsSafe(codePoint));

    [Theory]
    [InlineData(0x03B1)] // GREEK SMALL LETTER ALPHA
    [InlineData(0x03A9)] // GREEK CAPITAL LETTER OMEGA
    public void Greek_letters_are_safe(int codePoint) => Assert.True(SafeCodePoints.IsSafe(codePoint));

    [Theory]
    [InlineData(0x0416)] // CYRILLIC CAPITAL LETTER ZHE
    [InlineData(0x044F)] // CYRILLIC SMALL LETTER YA
    public void Cyrillic_letters_are_safe(int codePoint) => Assert.True(SafeCodePoints.IsSafe(codePoint));

    [Theory]
    [InlineData(0x4E2D)] // CJK UNIFIED IDEOGRAPH-4E2D
    [InlineData(0x6587)] // CJK UNIFIED IDEOGRAPH-6587
    [InlineData(0x20000)] // CJK UNIFIED IDEOGRAPH-20000, extension B
    public void CJK_ideographs_are_safe(int codePoint) => Assert.True(SafeCodePoints.IsSafe(codePoint));

    [Theory]
    [InlineData(0xAC00)] // HANGUL SYLLABLE GA
    [InlineData(0xD7A3)] // HANGUL SYLLABLE HIH, the last syllable
    [InlineData(0x1100)] // HANGUL CHOSEONG KIYEOK (jamo)
    public void Hangul_is_safe(int codePoint) => Assert.True(SafeCodePoints.IsSafe(codePoint));

    [Theory]
    [InlineData(0x3042)] // HIRAGANA LETTER A
    [InlineData(0x30AB)] // KATAKANA LETTER KA
    public void Hiragana_and_katakana_are_safe(int codePoint) => Assert.True(SafeCodePoints.IsSafe(codePoint));

    [Theory]
    [InlineData(0x05D0)] // HEBREW LETTER ALEF
    [InlineData(0x0627)] // ARABIC LETTER ALEF
    [InlineData(0x0628)] // ARABIC LETTER BEH
    public void Right_to_left_letters_are_unsafe(int codePoint) => Assert.False(SafeCodePoints.IsSafe(codePoint));

    [Theory]
    [InlineData(0x1F605)] // SMILING FACE WITH OPEN MOUTH AND COLD SWEAT
    [InlineData(0x2603)] // SNOWMAN
    public void Emoji_and_other_symbols_are_unsafe(int codePoint) => Assert.False(SafeCodePoints.IsSafe(codePoint));

    [Theory]
    [InlineData(0x0301)] // COMBINING ACUTE ACCENT
    [InlineData(0x20DD)] // COMBINING ENCLOSING CIRCLE
    public void Combining_marks_are_unsafe(int codePoint) => Assert.False(SafeCodePoints.IsSafe(codePoint));

    [Theory]
    [InlineData(0x00A0)] // NO-BREAK SPACE
    [InlineData(0x3000)] // IDEOGRAPHIC SPACE
    [InlineData(0x2028)] // LINE SEPARATOR
    public void Spaces_and_separators_other_than_ASCII_space_are_unsafe(int codePoint) => Assert.False(SafeCodePoints.IsSafe(codePoint));

    [Theory]
    [InlineData(0x200E)] // LEFT-TO-RIGHT MARK
    [InlineData(0x202E)] // RIGHT-TO-LEFT OVERRIDE
    [InlineData(0xFEFF)] // ZERO WIDTH NO-BREAK SPACE
    public void Format_characters_are_unsafe(int codePoint) => Assert.False(SafeCodePoints.IsSafe(codePoint));

    [Theory]
    [InlineData(0xD800)]
    [InlineData(0xDBFF)]
    [InlineData(0xDC00)]
    [InlineData(0xDFFF)]
    public void Surrogates_are_unsafe(int codePoint) => Assert.False(SafeCodePoints.IsSafe(codePoint));

    [Theory]
    [InlineData(0xFFFE)]
    [InlineData(0xFFFF)]
    [InlineData(0xFDD0)]
    [InlineData(0xFDEF)]
    [InlineData(0x2FFFE)] // between two safe CJK extension planes
    [InlineData(0x10FFFF)]
    public void Noncharacters_are_unsafe(int codePoint) => Assert.False(SafeCodePoints.IsSafe(codePoint));

    [Theory]
    [InlineData(0x110000)]
    [InlineData(0x7FFFFFFF)]
    [InlineData(-1)]
    [InlineData(int.MinValue)]
    public void Values_outside_Unicode_are_unsafe(int codePoint) => Assert.False(SafeCodePoints.IsSafe(codePoint));

    [Theory]
    [InlineData(0xE000)]
    [InlineData(0xF8FF)]
    [InlineData(0xF0000)]
    [InlineData(0x10FFFD)]
    public void Private_use_code_points_are_unsafe(int codePoint) => Assert.False(SafeCodePoints.IsSafe(codePoint));

    [Theory]
    [InlineData(0x0378)] // a gap in the Greek block
    [InlineData(0x0530)] // a gap at the start of the Armenian block
    [InlineData(0x2FFF0)] // plane 2 after the last CJK compatibility supplement
    [InlineData(0x3FFFD)] // plane 3 after the last CJK extension
    [InlineData(0xE0080)] // plane 14 between the tags and the variation selectors
    public void Unassigned_code_points_are_unsafe(int codePoint) => Assert.False(SafeCodePoints.IsSafe(codePoint));

    [Fact]
    public void The_first_and_last_code_points_of_each_range_are_safe_and_their_neighbours_are_not()
    {
        ReadOnlySpan<uint> ranges = SafeCodePoints.Ranges;
        for (int i = 0; i < ranges.Length; i += 2)
        {
            int first = (int)ranges[i];
            int last = (int)ranges[i + 1];
            Assert.True(SafeCodePoints.IsSafe(first), $"U+{first:X4}");
            Assert.True(SafeCodePoints.IsSafe(last), $"U+{last:X4}");
            Assert.False(SafeCodePoints.IsSafe(first - 1), $"U+{first - 1:X4}");
            Assert.False(SafeCodePoints.IsSafe(last + 1), $"U+{last + 1:X4}");
        }
    }

    [Fact]
    public void Lookup_agrees_with_a_linear_scan_of_the_table_for_every_code_point()
    {
        ReadOnlySpan<uint> ranges = SafeCodePoints.Ranges;
        for (int c = 0x80; c <= 0x110000; c++)
        {
            bool listed = false;
            for (int i = 0; i < ranges.Length && !listed; i += 2)
            {
                listed = ranges[i] <= (uint)c && (uint)c <= ranges[i + 1];
            }
            Assert.Equal(listed, SafeCodePoints.IsSafe(c));
        }
    }

    [Fact]
    public void Table_ranges_are_above_ASCII_sorted_disjoint_and_merged()
    {
        ReadOnlySpan<uint> ranges = SafeCodePoints.Ranges;
        Assert.Equal(2 * SafeCodePoints.RangeCount, ranges.Length);
        Assert.NotEqual(0, ranges.Length);
        Assert.True(ranges[0] > 0x7F, $"first range starts at U+{ranges[0]:X4}");
        for (int i = 0; i < ranges.Length; i += 2)
        {
            Assert.True(ranges[i] <= ranges[i + 1], $"range {i / 2}: U+{ranges[i]:X4}..U+{ranges[i + 1]:X4} is reversed");
            if (i > 0)
            {
                // strictly more than one past the previous end: not overlapping and not touching
                Assert.True(ranges[i] > ranges[i - 1] + 1, $"range {i / 2} at U+{ranges[i]:X4} overlaps or touches the previous one ending at U+{ranges[i - 1]:X4}");
            }
        }
        Assert.True(ranges[^1] < 0x10FFFE, $"last range ends at U+{ranges[^1]:X4}");
    }

    [Fact]
    public void Lookups_do_not_allocate()
    {
        // Tiering and on-stack replacement may allocate while a round runs, later on a loaded machine (the tiering
        // delay restarts with every new method). An allocation per lookup would show in every round, so the test
        // takes the least of up to ten rounds.
        int safe = 0;
        long allocated = long.MaxValue;
        for (int round = 0; round < 10 && allocated != 0; round++)
        {
            Thread.Sleep(round * 20);
            long before = GC.GetAllocatedBytesForCurrentThread();
            for (int c = 0; c <= 0x110000; c += 7)
            {
                safe += SafeCodePoints.IsSafe(c) ? 1 : 0;
            }
            allocated = GC.GetAllocatedBytesForCurrentThread() - before;
        }
        Assert.Equal(0, allocated);
        Assert.NotEqual(0, safe);
    }
}
