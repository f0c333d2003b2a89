using System;
using Qubes.Interop.Linux;

namespace Qubes.Fuzz;

/// <summary>
/// Memory whose last byte is immediately followed by an inaccessible page, so that reading or
/// writing one byte past the end faults at once instead of passing unnoticed.
/// </summary>
internal sealed unsafe class GuardedMemory : IDisposable
{
    private const int Page = 4096;
    private readonly MemoryMapping _mapping;
    private readonly int _capacity;

    public GuardedMemory(int capacity)
    {
        _capacity = capacity;
        int dataPages = (capacity + Page - 1) / Page;
        _mapping = MemoryMapping.Anonymous((dataPages + 1) * Page);
        byte* guard = _mapping.Pointer + dataPages * Page;
        if (Libc.mprotect(guard, Page, Libc.PROT_NONE) != 0)
        {
            throw new LinuxException("mprotect guard page", LastError.Get());
        }
        End = guard;
    }

    /// <summary>The first inaccessible byte.</summary>
    public byte* End { get; }

    /// <summary>Copies <paramref name="data"/> so that it ends right at the guard page.</summary>
    public ReadOnlySpan<byte> Place(ReadOnlySpan<byte> data)
    {
        if (data.Length > _capacity)
        {
            data = data[.._capacity];
        }
        var target = new Span<byte>(End - data.Length, data.Length);
        data.CopyTo(target);
        return target;
    }

    /// <summary>A region of <paramref name="length"/> bytes ending at the guard page.</summary>
    public IntPtr Tail(int length) => (IntPtr)(End - length);

    public void Dispose() => _mapping.Dispose();
}
