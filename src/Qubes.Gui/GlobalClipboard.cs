using System;
using System.Globalization;
using System.IO;
using System.Text;

namespace Qubes.Gui;

/// <summary>
/// dom0's global clipboard, shared by the GUI daemons of all qubes (spec §9): the data, the qube
/// it came from and the X time of the operation that set it, as files in one directory with
/// upstream's names (<c>qubes-clipboard.bin</c>, <c>.source</c>, <c>.xevent</c>). Each file is
/// replaced whole (written beside, renamed), so a reader sees an old or a new one, never a part.
/// </summary>
public sealed class GlobalClipboard
{
    private readonly string _data, _source, _time;

    /// <param name="directory">Where the files live (upstream: <c>/run/qubes</c>).</param>
    public GlobalClipboard(string directory)
    {
        ArgumentException.ThrowIfNullOrEmpty(directory);
        Directory.CreateDirectory(directory);
        _data = Path.Combine(directory, "qubes-clipboard.bin");
        _source = _data + ".source";
        _time = _data + ".xevent";
    }

    /// <summary>The qube whose copy is in the clipboard ("" when it is empty).</summary>
    public string Source => File.Exists(_source) ? File.ReadAllText(_source) : string.Empty;

    /// <summary>Whether a clipboard operation happened after X time <paramref name="time"/> (32-bit X times wrap around).</summary>
    public bool ChangedSince(uint time)
        => File.Exists(_time) && uint.TryParse(File.ReadAllText(_time), NumberStyles.None, CultureInfo.InvariantCulture, out uint stored) && (int)(stored - time) > 0;

    /// <summary>Replaces the clipboard with <paramref name="data"/> copied from <paramref name="source"/> at X time <paramref name="time"/>.</summary>
    public void Store(ReadOnlySpan<byte> data, string source, uint time)
    {
        Replace(_data, data);
        Replace(_source, Encoding.UTF8.GetBytes(source));
        Replace(_time, Encoding.ASCII.GetBytes(time.ToString(CultureInfo.InvariantCulture)));
    }

    /// <summary>Empties the clipboard (a qube copied nothing, or a copy failed, or it was pasted).</summary>
    public void Clear(uint time) => Store([], string.Empty, time);

    /// <summary>
    /// The clipboard's data and its source qube, then an empty clipboard stamped <paramref name="time"/>:
    /// it is cleared after every paste attempt. <paramref name="changedSince"/>: whether the copy it
    /// held is stamped after <paramref name="time"/> (another clipboard operation since the paste key).
    /// </summary>
    public (byte[] Data, string Source) Take(uint time, out bool changedSince)
    {
        changedSince = ChangedSince(time);
        byte[] data = File.Exists(_data) ? File.ReadAllBytes(_data) : [];
        string source = Source;
        Clear(time);
        return (data, source);
    }

    private static void Replace(string path, ReadOnlySpan<byte> content)
    {
        // a name of this writer's own: the daemons of other qubes write the same files
        string temporary = $"{path}.{Environment.ProcessId}.{Environment.CurrentManagedThreadId}.new";
        using (FileStream stream = new(temporary, FileMode.Create, FileAccess.Write, FileShare.None))
        {
            stream.Write(content);
        }
        File.Move(temporary, path, overwrite: true);
    }
}
