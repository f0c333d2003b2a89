using System;
using System.IO;
using System.Text;
using System.Threading;

namespace Qubes.Interop.Linux;

/// <summary>
/// A log file of dom0's that less trusted parties write lines into: each line escaped and capped
/// (<see cref="LogText"/>), and the file moved to <c>FILE.1</c> (replacing the older one) once it
/// passes <see cref="MaxBytes"/>, so that what is logged takes at most twice that on disk. Thread-safe.
/// </summary>
public sealed class RotatingLog : IDisposable
{
    /// <summary>Size past which the file is rotated.</summary>
    public const long DefaultMaxBytes = 1 << 20;

    /// <summary>The most characters of one line kept.</summary>
    public const int MaxLineLength = 2048;

    private readonly string _path;
    private readonly Lock _lock = new();
    private FileStream? _file;

    public RotatingLog(string path, long maxBytes = DefaultMaxBytes)
    {
        _path = path;
        MaxBytes = maxBytes;
        _file = Open();
    }

    public long MaxBytes { get; }

    /// <summary>Appends one line (escaped and capped).</summary>
    public void WriteLine(string line)
    {
        byte[] bytes = Encoding.UTF8.GetBytes(LogText.Cap(line, MaxLineLength) + "\n");
        lock (_lock)
        {
            if (_file is null)
            {
                return;
            }
            if (_file.Length + bytes.Length > MaxBytes)
            {
                _file.Dispose();
                File.Move(_path, _path + ".1", overwrite: true);
                _file = Open();
            }
            _file.Write(bytes);
            _file.Flush();
        }
    }

    private FileStream Open() => new(_path, FileMode.Append, FileAccess.Write, FileShare.ReadWrite);

    public void Dispose()
    {
        lock (_lock)
        {
            _file?.Dispose();
            _file = null;
        }
    }
}
