using System;
using System.IO;
using System.Text;
using BenchmarkDotNet.Attributes;
using Qubes.FileCopy;
using Qubes.Interop.Linux;

namespace Qubes.Bench;

/// <summary>
/// The qubes.Filecopy receiver per operation: one whole transfer of <see cref="Records"/> files of
/// 4 KiB from a memfd into a directory in /dev/shm (unnamed files linked in, modes and times set,
/// syncfs, the reply to /dev/null), then the files removed again. What it allocates must not
/// depend on <see cref="Records"/>: nothing per record.
/// </summary>
[MemoryDiagnoser]
public unsafe class FileCopyBenchmarks
{
    private string _directory = "";
    private int _root = -1, _proc = -1, _stream = -1, _devNull = -1;
    private byte[][] _names = [];
    private Unpacker? _unpacker;

    /// <summary>Files per transfer.</summary>
    [Params(16, 256)]
    public int Records { get; set; }

    [GlobalSetup]
    public void Setup()
    {
        _directory = Directory.CreateDirectory(Path.Combine("/dev/shm", $"filecopy-bench-{Environment.ProcessId}")).FullName;
        _root = Libc.open(_directory, Libc.O_RDONLY | Libc.O_DIRECTORY | Libc.O_CLOEXEC, 0);
        _proc = Libc.open("/proc/self/fd", Libc.O_RDONLY | Libc.O_DIRECTORY | Libc.O_CLOEXEC, 0);
        _devNull = Libc.open("/dev/null", Libc.O_WRONLY | Libc.O_CLOEXEC, 0);
        _stream = Libc.memfd_create("filecopy-stream", 1);
        _names = new byte[Records][];
        byte[] header = new byte[FileCopyProtocol.HeaderSize];
        byte[] content = new byte[4096];
        for (int i = 0; i < Records; i++)
        {
            _names[i] = Encoding.ASCII.GetBytes($"file{i}\0");
            new FileHeader((uint)_names[i].Length, 0x81A4, (ulong)content.Length, 1, 2, 3, 4).Write(header);
            Fd.WriteAll(_stream, header);
            Fd.WriteAll(_stream, _names[i]);
            Fd.WriteAll(_stream, content);
        }
        Array.Clear(header);
        Fd.WriteAll(_stream, header);
        _unpacker = new Unpacker(_root, _proc, UnpackOptions.Qube);
    }

    [Benchmark]
    public uint Unpack()
    {
        Libc.lseek(_stream, 0, Libc.SEEK_SET);
        uint code = _unpacker!.Run(_stream, _devNull).Code;
        foreach (byte[] name in _names)
        {
            fixed (byte* p = name)
            {
                Libc.unlinkat(_root, p, 0);
            }
        }
        return code;
    }

    [GlobalCleanup]
    public void Cleanup()
    {
        _unpacker?.Dispose();
        foreach (int fd in (int[])[_root, _proc, _stream, _devNull])
        {
            Libc.close(fd);
        }
        Directory.Delete(_directory, recursive: true);
    }
}
