using System;

namespace Qubes.Platform;

/// <summary>Page sharing between domains (Xen grant tables or their loopback equivalent).</summary>
public interface IGrantTable
{
    /// <summary>Size of one shareable page in bytes.</summary>
    const int PageSize = 4096;

    /// <summary>
    /// Allocates <paramref name="pageCount"/> zeroed pages, contiguous in this domain's address
    /// space, and grants them to <paramref name="grantee"/> only. With <paramref name="readOnly"/>
    /// the grantee can map them only for reading. Disposing revokes the grants and unmaps.
    /// </summary>
    /// <remarks>
    /// Where the platform keeps the pages in a file (<see cref="ISharedPages.PagesFile"/>),
    /// <paramref name="prepare"/> runs with that file and the pages' address before they are
    /// granted: another program of this domain that must write them through the file (an X server
    /// attaching them by MIT-SHM's AttachFd) maps it then, since a read-only grant seals the file
    /// against new writable mappings. It does not run where there is no such file.
    /// </remarks>
    IGrantedPages Share(int grantee, int pageCount, bool readOnly, PreparePages? prepare = null);

    /// <summary>
    /// Grants the first <paramref name="pageCount"/> pages of <paramref name="file"/>, shared memory
    /// of this domain that another program of it writes (an X server's window pixmap), to
    /// <paramref name="grantee"/> only; the caller keeps its descriptor. Where the platform grants
    /// only pages it allocates itself (Xen's gntalloc), throws <see cref="PlatformException"/> with
    /// ENOTSUP.
    /// </summary>
    IGrantedPages ShareFile(int grantee, int file, int pageCount, bool readOnly);

    /// <summary>
    /// Maps the pages that <paramref name="owner"/> granted under <paramref name="refs"/>,
    /// contiguously and in that order. Fails (throws <see cref="PlatformException"/>) if any ref
    /// does not exist, was not granted to this domain, or is read-only and
    /// <paramref name="writable"/> is requested. Disposing unmaps.
    /// </summary>
    IMappedPages Map(int owner, ReadOnlySpan<uint> refs, bool writable);
}

/// <summary>A contiguous region of pages shared with, or mapped from, another domain.</summary>
public interface ISharedPages : IDisposable
{
    /// <summary>Start of the region in this process. Valid until disposed.</summary>
    IntPtr Address { get; }

    /// <summary>Length of the region in bytes (a multiple of the page size).</summary>
    int Length { get; }

    /// <summary>
    /// Arms the unmap notification: when this region is unmapped — by <see cref="IDisposable.Dispose"/>
    /// or because this process or domain died — the byte at <paramref name="byteOffset"/> is set to 0
    /// and <paramref name="channel"/> is signalled towards its peer. At most one per region; a later
    /// call replaces the earlier.
    /// </summary>
    void SetUnmapNotify(int byteOffset, IEventChannel channel);

    /// <summary>
    /// A descriptor of a file that holds exactly these pages, from its start, for another program
    /// of this domain that maps shared memory by descriptor (an X server's MIT-SHM AttachFd); -1
    /// where the platform has none. Owned by this region: valid until it is disposed.
    /// </summary>
    int PagesFile { get; }
}

/// <summary>Runs on pages about to be granted: their file and their address here (<see cref="IGrantTable.Share"/>).</summary>
public delegate void PreparePages(int file, IntPtr address);

/// <summary>Pages this domain allocated and granted.</summary>
public interface IGrantedPages : ISharedPages
{
    /// <summary>The grant references, one per page, in address order.</summary>
    ReadOnlySpan<uint> Refs { get; }
}

/// <summary>Pages granted by another domain and mapped here.</summary>
public interface IMappedPages : ISharedPages
{
}
