using System;
using System.IO;

namespace Qubes.Interop.Linux;

/// <summary>
/// Writes that survive a crash: a file is replaced through a temporary file beside it (written,
/// fsynced, renamed over the old one) and the directory is fsynced after the rename or removal, so
/// that a crash at any point leaves the old or the new file, never a mixture, and a change that
/// returned is on disk.
/// </summary>
public static class DurableFile
{
    /// <summary>
    /// Replaces <paramref name="path"/> with <paramref name="content"/> through <paramref name="temporary"/>
    /// (a new file in the same directory), given <paramref name="mode"/> when one is given. Throws
    /// <see cref="IOException"/>; the temporary file does not stay behind an error.
    /// </summary>
    public static void Replace(string path, string temporary, ReadOnlySpan<byte> content, UnixFileMode? mode = null)
    {
        ArgumentNullException.ThrowIfNull(path);
        ArgumentNullException.ThrowIfNull(temporary);
        try
        {
            using (FileStream file = new(temporary, FileMode.CreateNew, FileAccess.Write))
            {
                file.Write(content);
                file.Flush(flushToDisk: true);
            }
            if (mode is UnixFileMode unixMode && !OperatingSystem.IsWindows())
            {
                File.SetUnixFileMode(temporary, unixMode);
            }
            File.Move(temporary, path, overwrite: true);
        }
        catch
        {
            File.Delete(temporary);
            throw;
        }
        SyncDirectory(Path.GetDirectoryName(Path.GetFullPath(path))!);
    }

    /// <summary>Removes <paramref name="path"/> and fsyncs its directory.</summary>
    public static void Delete(string path)
    {
        File.Delete(path);
        SyncDirectory(Path.GetDirectoryName(Path.GetFullPath(path))!);
    }

    /// <summary>fsync of <paramref name="directory"/>; throws <see cref="IOException"/> naming the errno.</summary>
    public static void SyncDirectory(string directory)
    {
        Errno error = Fd.SyncDirectory(directory);
        if (error != Errno.None)
        {
            throw new IOException($"{directory}: fsync: {error}");
        }
    }
}
