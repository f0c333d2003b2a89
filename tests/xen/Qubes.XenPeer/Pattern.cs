using System;
using Qubes.Vchan;

namespace Qubes.XenPeer;

/// <summary>The test stream, byte(i) = T[i mod P], shared with native/vchan-peer.c.</summary>
internal static class Pattern
{
    private const int Period = 1048573;
    private const int Chunk = 65536;
    private static readonly byte[] s_table = Make();

    private static byte[] Make()
    {
        byte[] t = new byte[Period + Chunk];
        for (int i = 0; i < t.Length; i++)
        {
            t[i] = (byte)(unchecked((ulong)(i % Period) * 0x9E3779B97F4A7C15UL) >> 56);
        }
        return t;
    }

    /// <summary>
    /// Says where a bad chunk's bytes came from: the first differing position, how many differ, and
    /// whether the bad bytes are the stream one ring-length earlier (stale ring contents: an index
    /// seen before its data) or something else.
    /// </summary>
    private static string Diagnose(ReadOnlySpan<byte> got, long offset, int ringSize)
    {
        int first = -1, count = 0;
        for (int i = 0; i < got.Length; i++)
        {
            if (got[i] != s_table[(int)((offset + i) % Period)])
            {
                count++;
                first = first < 0 ? i : first;
            }
        }
        int last = got.Length;
        for (int i = got.Length - 1; i >= 0; i--)
        {
            if (got[i] != s_table[(int)((offset + i) % Period)])
            {
                last = i;
                break;
            }
        }
        bool stale = offset + first >= ringSize;
        for (int i = first; stale && i <= last; i++)
        {
            stale = got[i] == s_table[(int)((offset + i - ringSize) % Period)];
        }
        bool zero = true;
        for (int i = first; zero && i <= last; i++)
        {
            zero = got[i] == 0;
        }
        return $"chunk at offset {offset} ({got.Length} B): {count} bytes differ, from +{first} to +{last}; "
            + (stale ? "they are the stream one ring-length earlier (stale ring data)" : zero ? "they are zero" : "they are neither stale stream bytes nor zero")
            + $"; got {Convert.ToHexString(got.Slice(first, Math.Min(8, got.Length - first)))} expected {Convert.ToHexString(s_table.AsSpan((int)((offset + first) % Period), Math.Min(8, got.Length - first)))}";
    }

    public static bool Send(VchanEndpoint v, long total)
    {
        for (long offset = 0; offset < total;)
        {
            int n = (int)Math.Min(Chunk, total - offset);
            if (v.Write(s_table.AsSpan((int)(offset % Period), n)) != n)
            {
                return false;
            }
            offset += n;
        }
        return true;
    }

    /// <summary>Receives and checks <paramref name="total"/> bytes; null when all were right, else why not.</summary>
    public static string? Receive(VchanEndpoint v, long total)
    {
        byte[] buffer = new byte[Chunk];
        for (long offset = 0; offset < total;)
        {
            int n = v.Read(buffer.AsSpan(0, (int)Math.Min(Chunk, total - offset)));
            if (n <= 0)
            {
                return $"channel closed after {offset} of {total} bytes";
            }
            if (!buffer.AsSpan(0, n).SequenceEqual(s_table.AsSpan((int)(offset % Period), n)))
            {
                return Diagnose(buffer.AsSpan(0, n), offset, v.ReadRingSize);
            }
            offset += n;
        }
        return null;
    }
}
