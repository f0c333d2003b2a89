using System;
using System.Runtime.InteropServices;

namespace Qubes.Interop.Linux;

/// <summary>A mapped region of memory, unmapped on release.</summary>
public sealed unsafe class MemoryMapping : SafeHandle
{
    private readonly nuint _length;

    private MemoryMapping(void* address, nuint length) : base(IntPtr.Zero, ownsHandle: true)
    {
        SetHandle((IntPtr)address);
        _length = length;
    }

    public override bool IsInvalid => handle == IntPtr.Zero;

    public byte* Pointer => (byte*)handle;

    public int Length => checked((int)_length);

    protected override bool ReleaseHandle() => Libc.munmap((void*)handle, _length) == 0;

    /// <summary>Maps <paramref name="length"/> bytes of <paramref name="fd"/> shared, at <paramref name="offset"/>.</summary>
    public static MemoryMapping MapShared(int fd, long offset, int length, bool writable)
    {
        int prot = Libc.PROT_READ | (writable ? Libc.PROT_WRITE : 0);
        void* p = Libc.mmap(null, (nuint)length, prot, Libc.MAP_SHARED, fd, offset);
        if (p == Libc.MAP_FAILED)
        {
            throw new LinuxException("mmap", LastError.Get());
        }
        return new MemoryMapping(p, (nuint)length);
    }

    /// <summary>Reserves an inaccessible range to be filled by <see cref="MapFixed"/> (contiguous multi-page maps).</summary>
    public static MemoryMapping Reserve(int length)
    {
        void* p = Libc.mmap(null, (nuint)length, Libc.PROT_NONE, Libc.MAP_PRIVATE | Libc.MAP_ANONYMOUS | Libc.MAP_NORESERVE, -1, 0);
        if (p == Libc.MAP_FAILED)
        {
            throw new LinuxException("mmap reserve", LastError.Get());
        }
        return new MemoryMapping(p, (nuint)length);
    }

    /// <summary>Maps a page range of <paramref name="fd"/> over part of this (reserved) region.</summary>
    public void MapFixed(int regionOffset, int fd, long fileOffset, int length, bool writable)
    {
        if ((uint)regionOffset > _length || (uint)length > _length - (uint)regionOffset)
        {
            throw new ArgumentOutOfRangeException(nameof(length));
        }
        int prot = Libc.PROT_READ | (writable ? Libc.PROT_WRITE : 0);
        void* p = Libc.mmap(Pointer + regionOffset, (nuint)length, prot, Libc.MAP_SHARED | Libc.MAP_FIXED, fd, fileOffset);
        if (p == Libc.MAP_FAILED)
        {
            throw new LinuxException("mmap fixed", LastError.Get());
        }
    }

    /// <summary>Anonymous shared memory (test doubles and single-process rings).</summary>
    public static MemoryMapping Anonymous(int length)
    {
        void* p = Libc.mmap(null, (nuint)length, Libc.PROT_READ | Libc.PROT_WRITE, Libc.MAP_SHARED | Libc.MAP_ANONYMOUS, -1, 0);
        if (p == Libc.MAP_FAILED)
        {
            throw new LinuxException("mmap anonymous", LastError.Get());
        }
        return new MemoryMapping(p, (nuint)length);
    }
}
