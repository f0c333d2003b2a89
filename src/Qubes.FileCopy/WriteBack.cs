using System.Threading;
using Qubes.Interop.Linux;

namespace Qubes.FileCopy;

/// <summary>
/// Writes the receiver's files back to disk while the transfer goes on. The reply may only say
/// success after a <c>syncfs</c> (spec §8); done once at the end, that flush waits for everything
/// the transfer wrote. Here, within a large file, each further <see cref="BytesStep"/> bytes are
/// handed to the disk at once (<c>sync_file_range</c>, which starts their write-back without
/// waiting for it or committing the journal); and each time another <see cref="BytesStep"/> bytes
/// of smaller files or <see cref="FilesStep"/> files have been completed, a thread-pool thread
/// runs <c>syncfs</c> on the incoming file system (on the other core) while the receiver reads on.
/// The final flush then has only the rest to write. A step reached while a flush runs is folded
/// into that flush's next round.
/// <para>
/// The receiving thread only adds to counters, starts a range's write-back and, at a step, queues
/// this object itself as the work item: nothing is allocated there. <see cref="Quiesce"/> waits
/// for a running flush, so none is left behind the final one (nor after the caller closes the
/// directory).
/// </para>
/// </summary>
internal sealed class WriteBack(int directory) : IThreadPoolWorkItem
{
    public const ulong BytesStep = 32 << 20;
    public const ulong FilesStep = 1024;

    private ulong _bytes;
    private long _fileStart;
    private ulong _files;
    private int _busy;
    private volatile bool _again;
    private int _flushes;

    /// <summary>How many flushes ran so far.</summary>
    public int Flushes => Volatile.Read(ref _flushes);

    /// <summary>How many ranges of large files were handed to the disk so far.</summary>
    public int Ranges { get; private set; }

    /// <summary>The receiver wrote <paramref name="file"/> up to <paramref name="end"/>, <paramref name="bytes"/> more than before.</summary>
    public void Wrote(int file, long end, ulong bytes)
    {
        _bytes += bytes;
        if ((ulong)(end - _fileStart) >= BytesStep)
        {
            Libc.sync_file_range(file, _fileStart, end - _fileStart, Libc.SYNC_FILE_RANGE_WRITE);
            _fileStart = end;
            _bytes = 0;
            Ranges++;
        }
    }

    /// <summary>The receiver completed a file.</summary>
    public void Completed()
    {
        _fileStart = 0;
        if (++_files >= FilesStep || _bytes >= BytesStep)
        {
            Request();
        }
    }

    private void Request()
    {
        _bytes = 0;
        _files = 0;
        if (Interlocked.CompareExchange(ref _busy, 1, 0) == 0)
        {
            ThreadPool.UnsafeQueueUserWorkItem(this, preferLocal: false);
        }
        else
        {
            _again = true;
        }
    }

    /// <summary>The flush, on a thread-pool thread; again while steps were reached meanwhile.</summary>
    public void Execute()
    {
        do
        {
            _again = false;
            Libc.syncfs(directory);
            Interlocked.Increment(ref _flushes);
        }
        while (_again);
        Volatile.Write(ref _busy, 0);
    }

    /// <summary>Waits until no flush runs, and starts the counts afresh.</summary>
    public void Quiesce()
    {
        _again = false;
        SpinWait wait = default;
        while (Volatile.Read(ref _busy) != 0)
        {
            wait.SpinOnce(sleep1Threshold: 20);
        }
        _bytes = 0;
        _files = 0;
        _fileStart = 0;
    }
}
