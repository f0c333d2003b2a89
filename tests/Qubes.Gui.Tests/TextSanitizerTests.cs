using System;
using System.Text;
using Xunit;

namespace Qubes.Gui.Tests;

public class TextSanitizerTests
{
    private static string Sanitized(byte[] input, bool utf8)
    {
        byte[] copy = (byte[])input.Clone();
        int length = TextSanitizer.Sanitize(copy, utf8);
        return Encoding.Latin1.GetString(copy, 0, length);
    }

    [Fact]
    public void Printable_ascii_stays_and_every_control_and_del_becomes_an_underscore()
    {
        Assert.Equal("ab c~", Sanitized("ab c~"u8.ToArray(), utf8: true));
        Assert.Equal("a_b_c_d", Sanitized([(byte)'a', 0x1B, (byte)'b', 0x7F, (byte)'c', 0x0A, (byte)'d'], utf8: true));
    }

    [Fact]
    public void Sanitising_stops_at_the_first_nul()
    {
        byte[] text = [(byte)'a', 0x01, 0, 0x01, (byte)'b'];
        Assert.Equal(2, TextSanitizer.Sanitize(text, allowUtf8: false));
        Assert.Equal(0x01, text[3]);
    }

    [Fact]
    public void Without_utf8_every_high_byte_becomes_an_underscore()
        => Assert.Equal("caf__", Sanitized(Encoding.UTF8.GetBytes("café"), utf8: false));

    [Theory]
    [InlineData(new byte[] { 0xC3, 0xA9 }, 2)]              // é
    [InlineData(new byte[] { 0xE2, 0x82, 0xAC }, 3)]        // €
    [InlineData(new byte[] { 0xF0, 0x9F, 0x98, 0x80 }, 4)]  // U+1F600
    [InlineData(new byte[] { 0xF4, 0x8F, 0xBF, 0xBF }, 4)]  // U+10FFFF
    [InlineData(new byte[] { 0xC0, 0x80 }, 0)]              // overlong NUL
    [InlineData(new byte[] { 0xC1, 0xBF }, 0)]              // overlong
    [InlineData(new byte[] { 0xE0, 0x80, 0x80 }, 0)]        // overlong
    [InlineData(new byte[] { 0xED, 0xA0, 0x80 }, 0)]        // a surrogate
    [InlineData(new byte[] { 0xF4, 0x90, 0x80, 0x80 }, 0)]  // above U+10FFFF
    [InlineData(new byte[] { 0xF5, 0x80, 0x80, 0x80 }, 0)]
    [InlineData(new byte[] { 0xE2, 0x82 }, 0)]              // cut short
    [InlineData(new byte[] { 0x80 }, 0)]                    // a lone continuation
    public void With_utf8_only_whole_valid_sequences_stay(byte[] sequence, int kept)
    {
        byte[] text = [.. sequence, (byte)'x'];
        int length = TextSanitizer.Sanitize(text, allowUtf8: true);
        Assert.Equal(sequence.Length + 1, length);
        for (int i = 0; i < sequence.Length; i++)
        {
            Assert.Equal(i < kept ? sequence[i] : (byte)'_', text[i]);
        }
        Assert.Equal((byte)'x', text[^1]);
    }

    [Fact]
    public void Random_bytes_sanitise_as_the_runtime_s_utf8_decoder_says()
    {
        var random = new Random(1234);
        for (int round = 0; round < 20000; round++)
        {
            byte[] text = new byte[random.Next(1, 12)];
            random.NextBytes(text);
            for (int i = 0; i < text.Length; i++)
            {
                if (text[i] == 0 || random.Next(3) == 0)
                {
                    text[i] = (byte)(0x80 + random.Next(0x80));
                }
            }
            byte[] expected = Oracle(text);
            byte[] actual = (byte[])text.Clone();
            TextSanitizer.Sanitize(actual, allowUtf8: true);
            Assert.True(expected.AsSpan().SequenceEqual(actual), $"{Convert.ToHexString(text)}: {Convert.ToHexString(actual)}, expected {Convert.ToHexString(expected)}");
        }
    }

    /// <summary>Keeps printable ASCII and each sequence System.Text.Rune decodes as a scalar above U+007F.</summary>
    private static byte[] Oracle(byte[] text)
    {
        byte[] result = (byte[])text.Clone();
        int i = 0;
        while (i < text.Length)
        {
            if (text[i] is >= 0x20 and <= 0x7E)
            {
                i++;
            }
            else if (text[i] >= 0x80 && Rune.DecodeFromUtf8(text.AsSpan(i), out Rune rune, out int consumed) == System.Buffers.OperationStatus.Done && rune.Value >= 0x80)
            {
                i += consumed;
            }
            else
            {
                result[i++] = (byte)'_';
            }
        }
        return result;
    }

    [Fact]
    public void A_title_loses_its_last_byte_and_a_trailing_ellipsis_becomes_three_dots_without_utf8()
    {
        byte[] name = new byte[GuiProtocol.NameSize];
        Encoding.UTF8.GetBytes("Saving\u2026").CopyTo(name, 0);
        int length = TextSanitizer.PrepareTitle(name, allowUtf8: false);
        Assert.Equal("Saving...", Encoding.ASCII.GetString(name, 0, length));

        Encoding.UTF8.GetBytes("Saving\u2026").CopyTo(name, 0);
        length = TextSanitizer.PrepareTitle(name, allowUtf8: true);
        Assert.Equal("Saving\u2026", Encoding.UTF8.GetString(name, 0, length));

        Array.Fill(name, (byte)'A');
        Assert.Equal(GuiProtocol.NameSize - 1, TextSanitizer.PrepareTitle(name, allowUtf8: false));
        Assert.Equal(0, name[^1]);
    }
}
