using System;
using System.Runtime.InteropServices;
using Qubes.Interop.Linux;

namespace Qubes.Interop.X11;

/// <summary>
/// A SysV shared memory segment attached into this process, detached on release. A segment this
/// object created is also marked for removal on release (if <see cref="MarkForRemoval"/> has not
/// done it already), so an id never outlives its users; the kernel frees it once every attachment,
/// the X server's included, is gone.
/// </summary>
public sealed unsafe class SysVSharedMemory : SafeHandle
{
    private readonly int _length;
    private bool _removeOnRelease;

    private SysVSharedMemory(void* address, int id, int length, bool removeOnRelease) : base(IntPtr.Zero, ownsHandle: true)
    {
        SetHandle((IntPtr)address);
        Id = id;
        _length = length;
        _removeOnRelease = removeOnRelease;
    }

    public override bool IsInvalid => handle == IntPtr.Zero;

    /// <summary>The kernel's shm id, what XShmSegmentInfo.shmid carries to the server.</summary>
    public int Id { get; }

    public byte* Pointer => (byte*)handle;

    public int Length => _length;

    public Span<byte> Span => new(Pointer, _length);

    /// <summary>
    /// A new private segment of <paramref name="length"/> bytes, attached read-write. Its
    /// <paramref name="mode"/> bits decide who else may attach it; the X server checks them
    /// against the client's credentials.
    /// </summary>
    public static SysVSharedMemory Create(int length, int mode = 0x180 /* 0600 */)
    {
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(length);
        int id = SysVShm.shmget(SysVShm.IPC_PRIVATE, (nuint)length, SysVShm.IPC_CREAT | SysVShm.IPC_EXCL | (mode & 0x1FF));
        if (id < 0)
        {
            throw new LinuxException("shmget", LastError.Get());
        }
        void* p = SysVShm.shmat(id, null, 0);
        if (p == SysVShm.SHM_FAILED)
        {
            Errno errno = LastError.Get();
            SysVShm.shmctl(id, SysVShm.IPC_RMID, null);
            throw new LinuxException("shmat", errno);
        }
        return new SysVSharedMemory(p, id, length, removeOnRelease: true);
    }

    /// <summary>Attaches an existing segment that someone else owns (and removes); <paramref name="length"/> is what the owner said it is.</summary>
    public static SysVSharedMemory Attach(int id, int length, bool readOnly)
    {
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(length);
        void* p = SysVShm.shmat(id, null, readOnly ? SysVShm.SHM_RDONLY : 0);
        if (p == SysVShm.SHM_FAILED)
        {
            throw new LinuxException("shmat", LastError.Get());
        }
        return new SysVSharedMemory(p, id, length, removeOnRelease: false);
    }

    /// <summary>
    /// Removes the id now, so nothing new can attach and the memory goes with the last detach. Do it
    /// once the X server has attached (XShmAttach followed by XSync).
    /// </summary>
    public void MarkForRemoval()
    {
        if (_removeOnRelease)
        {
            if (SysVShm.shmctl(Id, SysVShm.IPC_RMID, null) != 0)
            {
                throw new LinuxException("shmctl IPC_RMID", LastError.Get());
            }
            _removeOnRelease = false;
        }
    }

    protected override bool ReleaseHandle()
    {
        bool ok = SysVShm.shmdt((void*)handle) == 0;
        if (_removeOnRelease)
        {
            ok &= SysVShm.shmctl(Id, SysVShm.IPC_RMID, null) == 0;
        }
        return ok;
    }
}
