using System;
using System.Buffers.Binary;

namespace Qubes.Fuzz;

/// <summary>Produces inputs by stacking random edits on a pool member.</summary>
internal sealed class Mutator(Random rng, byte[][] pool, int maxLength)
{
    private static readonly uint[] s_interesting =
        [0, 1, 2, 0x7F, 0x80, 0xFF, 0x100, 0x3FF, 0x400, 0x7FF, 0x800, 0xFFF, 0x1000, 0x1001, 0x7FFF, 0x8000, 0xFFFF, 0x10000,
         0x100000, 0x7FFFFFFF, 0x80000000, 0xFFFFFFFE, 0xFFFFFFFF];

    /// <summary>Writes a new input into <paramref name="buffer"/> and returns its length.</summary>
    public int Next(byte[] buffer)
    {
        byte[] basis = pool[rng.Next(pool.Length)];
        int length = Math.Min(basis.Length, maxLength);
        basis.AsSpan(0, length).CopyTo(buffer);
        int edits = 1 + rng.Next(8);
        for (int e = 0; e < edits; e++)
        {
            length = Edit(buffer, length);
        }
        return length;
    }

    private int Edit(byte[] b, int length)
    {
        int at = length == 0 ? 0 : rng.Next(length);
        switch (rng.Next(9))
        {
            case 0 when length > 0:
                b[at] ^= (byte)(1 << rng.Next(8));
                return length;
            case 1 when length > 0:
                b[at] = (byte)rng.Next(256);
                return length;
            case 2 when length >= 4:
                BinaryPrimitives.WriteUInt32LittleEndian(b.AsSpan(Math.Min(at, length - 4)), s_interesting[rng.Next(s_interesting.Length)]);
                return length;
            case 3 when length >= 2:
                BinaryPrimitives.WriteUInt16LittleEndian(b.AsSpan(Math.Min(at, length - 2)), (ushort)s_interesting[rng.Next(s_interesting.Length)]);
                return length;
            case 4:
            {
                // insert random bytes
                int n = Math.Min(1 + rng.Next(32), maxLength - length);
                b.AsSpan(at, length - at).CopyTo(b.AsSpan(at + n));
                rng.NextBytes(b.AsSpan(at, n));
                return length + n;
            }
            case 5 when length > 0:
            {
                // delete a range
                int n = 1 + rng.Next(Math.Min(32, length - at));
                b.AsSpan(at + n, length - at - n).CopyTo(b.AsSpan(at));
                return length - n;
            }
            case 6 when length > 0:
            {
                // duplicate a range
                int n = Math.Min(1 + rng.Next(Math.Min(64, length - at)), maxLength - length);
                b.AsSpan(at, length - at).CopyTo(b.AsSpan(at + n));
                return length + n;
            }
            case 7:
            {
                // splice the tail of another pool member
                byte[] other = pool[rng.Next(pool.Length)];
                int from = other.Length == 0 ? 0 : rng.Next(other.Length);
                int n = Math.Min(other.Length - from, maxLength - at);
                other.AsSpan(from, n).CopyTo(b.AsSpan(at));
                return at + n;
            }
            default:
                return length == 0 ? 0 : rng.Next(length + 1); // truncate
        }
    }
}
