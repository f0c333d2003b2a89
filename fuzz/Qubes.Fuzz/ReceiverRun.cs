using System;
using Qubes.FileCopy;
using Qubes.Interop.Linux;

namespace Qubes.Fuzz;

/// <summary>
/// Our qubes.Filecopy receiver run in process on one input: the stream from a memory file, the
/// reply into another, both reused from one input to the next.
/// </summary>
internal sealed class ReceiverRun : IDisposable
{
    private readonly int _proc = Libc.open("/proc/self/fd", Libc.O_RDONLY | Libc.O_DIRECTORY | Libc.O_CLOEXEC, 0);
    private readonly int _input = Libc.memfd_create("stream", 1 /* MFD_CLOEXEC */);
    private readonly int _reply = Libc.memfd_create("reply", 1 /* MFD_CLOEXEC */);
    private readonly byte[] _replyBytes = new byte[FileCopyProtocol.ReplySize + 4 + FileCopyProtocol.MaxPathLength + 16];

    /// <summary>Unpacks <paramref name="input"/> into <paramref name="directory"/>; the outcome and the bytes of the reply (valid until the next run).</summary>
    public UnpackResult Run(string directory, ReadOnlySpan<byte> input, UnpackOptions options, out ReadOnlySpan<byte> reply)
    {
        Libc.ftruncate(_input, 0);
        Libc.ftruncate(_reply, 0);
        Libc.lseek(_input, 0, Libc.SEEK_SET);
        Libc.lseek(_reply, 0, Libc.SEEK_SET);
        Fd.WriteAll(_input, input);
        Libc.lseek(_input, 0, Libc.SEEK_SET);
        int root = Libc.open(directory, Libc.O_RDONLY | Libc.O_DIRECTORY | Libc.O_CLOEXEC, 0);
        UnpackResult result;
        try
        {
            using Unpacker unpacker = new(root, _proc, options);
            result = unpacker.Run(_input, _reply);
        }
        finally
        {
            Libc.close(root);
        }
        Libc.lseek(_reply, 0, Libc.SEEK_SET);
        reply = _replyBytes.AsSpan(0, Math.Max(Fd.Read(_reply, _replyBytes), 0));
        return result;
    }

    public void Dispose()
    {
        Libc.close(_proc);
        Libc.close(_input);
        Libc.close(_reply);
    }
}
