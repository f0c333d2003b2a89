using System;
using System.Buffers.Binary;
using System.IO;
using System.IO.Hashing;
using System.Text;
using Qubes.Interop.Linux;

namespace Qubes.FileCopy;

/// <summary>A transfer the sender gives up, with the message upstream's sender prints.</summary>
public sealed class FileCopyException(string message) : Exception(message);

/// <summary>
/// The sending side of qubes.Filecopy (spec filecopy §2-§4): walks the given paths depth first and
/// writes their records to the receiver, a directory before its contents and again after them;
/// regular files, directories and symbolic links are sent, other types skipped, as upstream's
/// sender does. After each entry it looks for an early reply, and after the end marker it reads
/// the reply and checks the receiver's CRC against its own.
/// </summary>
public sealed unsafe class Packer
{
    private const int DataBufferSize = 256 * 1024;

    private readonly int _output;
    private readonly int _replies;
    private readonly bool _ignoreQuota;
    private readonly Action<long>? _progress;
    private readonly bool _ignoreSymlinks;
    private readonly byte[] _header = new byte[FileCopyProtocol.HeaderSize];
    private readonly byte[] _data = new byte[DataBufferSize];
    private readonly Crc32 _crc = new();
    private long _sent;

    /// <summary>
    /// A sender writing to <paramref name="output"/> and reading the reply from
    /// <paramref name="replies"/>; <paramref name="progress"/> hears the bytes of file data sent so
    /// far; with <paramref name="ignoreQuota"/> a receiver's EDQUOT ends the transfer quietly; with
    /// <paramref name="ignoreSymlinks"/> symbolic links are left out.
    /// </summary>
    public Packer(int output, int replies, bool ignoreQuota = false, Action<long>? progress = null, bool ignoreSymlinks = false)
    {
        _output = output;
        _replies = replies;
        _ignoreQuota = ignoreQuota;
        _progress = progress;
        _ignoreSymlinks = ignoreSymlinks;
    }

    /// <summary>The bytes of file data and link targets sent so far.</summary>
    public long Sent => _sent;

    /// <summary>Sends <paramref name="path"/> and, if it is a directory, everything below it, named from its last component.</summary>
    public void Send(string path)
    {
        string trimmed = path.TrimEnd('/');
        string name = Path.GetFileName(trimmed);
        if (name.Length == 0 || name is "." or "..")
        {
            throw new FileCopyException($"Invalid file name: {path}");
        }
        Walk(trimmed.Length == 0 ? path : trimmed, name);
    }

    private void Walk(string path, string name)
    {
        Libc.stat status = Status(path);
        uint type = status.st_mode & FileCopyProtocol.TypeMask;
        SendEntry(path, name, status);
        if (type != FileCopyProtocol.Directory)
        {
            return;
        }
        foreach (string child in Directory.EnumerateFileSystemEntries(path))
        {
            string childName = Path.GetFileName(child);
            Walk(child, name + "/" + childName);
        }
        // sent again after its contents: the receiver applies its mode and times then
        SendEntry(path, name, status);
    }

    private static Libc.stat Status(string path)
    {
        Libc.stat status;
        byte[] bytes = NulTerminated(path);
        fixed (byte* p = bytes)
        {
            if (Libc.fstatat(Libc.AT_FDCWD, p, &status, Libc.AT_SYMLINK_NOFOLLOW) != 0)
            {
                throw new FileCopyException($"stat {path}: {Message(LastError.Get())}");
            }
        }
        return status;
    }

    private void SendEntry(string path, string name, in Libc.stat status)
    {
        uint type = status.st_mode & FileCopyProtocol.TypeMask;
        if (type is not (FileCopyProtocol.Regular or FileCopyProtocol.Directory or FileCopyProtocol.SymbolicLink)
            || (type == FileCopyProtocol.SymbolicLink && _ignoreSymlinks))
        {
            return;
        }
        byte[] nameField = NulTerminated(name);
        if (nameField.Length > FileCopyProtocol.MaxPathLength - 1)
        {
            throw new FileCopyException($"File name too long: {name}");
        }
        ulong length = type == FileCopyProtocol.Directory ? 0 : (ulong)status.st_size;
        byte[]? target = null;
        int file = -1;
        if (type == FileCopyProtocol.SymbolicLink)
        {
            target = ReadLink(path, status.st_size);
            length = (ulong)target.Length;
        }
        else if (type == FileCopyProtocol.Regular)
        {
            file = Libc.open(path, Libc.O_RDONLY | Libc.O_CLOEXEC | Libc.O_NOFOLLOW, 0);
            if (file < 0)
            {
                throw new FileCopyException($"open {path}: {Message(LastError.Get())}");
            }
        }
        try
        {
            new FileHeader((uint)nameField.Length, status.st_mode, length,
                (uint)status.st_atime, (uint)status.st_atime_nsec, (uint)status.st_mtime, (uint)status.st_mtime_nsec).Write(_header);
            Write(_header);
            Write(nameField);
            if (target != null)
            {
                Write(target);
                _sent += target.Length;
            }
            if (file >= 0)
            {
                CopyFile(file, path, length);
            }
        }
        finally
        {
            if (file >= 0)
            {
                Libc.close(file);
            }
        }
        // a receiver that failed has said why already: stop now rather than after the rest
        CheckReply(wait: false);
    }

    private void CopyFile(int file, string path, ulong length)
    {
        while (length > 0)
        {
            int n = Fd.Read(file, _data.AsSpan(0, (int)Math.Min(length, (ulong)_data.Length)));
            if (n < 0)
            {
                throw new FileCopyException($"Copying file {path}: {Message((Errno)(-n))}");
            }
            if (n == 0)
            {
                throw new FileCopyException($"Copying file {path}: file shrank while it was sent");
            }
            Write(_data.AsSpan(0, n));
            length -= (ulong)n;
            _sent += n;
            _progress?.Invoke(_sent);
        }
    }

    private static byte[] ReadLink(string path, long size)
    {
        byte[] target = new byte[size + 1];
        nint n;
        fixed (byte* p = NulTerminated(path))
        fixed (byte* t = target)
        {
            n = Libc.readlinkat(Libc.AT_FDCWD, p, t, (nuint)target.Length);
        }
        if (n != size)
        {
            throw new FileCopyException($"readlink {path}: {(n < 0 ? Message(LastError.Get()) : "the link changed while it was sent")}");
        }
        return target[..(int)n];
    }

    private void Write(ReadOnlySpan<byte> data)
    {
        _crc.Append(data);
        if (Fd.WriteAll(_output, data) != Errno.None)
        {
            // the receiver stopped reading: its reply says why
            CheckReply(wait: true);
            throw new FileCopyException("File copy: the receiver stopped reading");
        }
    }

    /// <summary>Sends the end marker and checks the receiver's reply: its error, or a CRC that differs from what was sent.</summary>
    public void Finish()
    {
        Array.Clear(_header);
        Write(_header);
        CheckReply(wait: true);
    }

    /// <summary>
    /// Reads the reply if there is one (<paramref name="wait"/>: until there is) and throws what it
    /// reports; returns when there is none yet, or when it reports success with the CRC sent.
    /// </summary>
    private void CheckReply(bool wait)
    {
        if (Fd.PollIn(_replies, wait ? -1 : 0) <= 0 && !wait)
        {
            return;
        }
        Span<byte> head = stackalloc byte[FileCopyProtocol.ReplySize + 4];
        int got = Fd.ReadFully(_replies, head[..FileCopyProtocol.ReplySize]);
        if (got != FileCopyProtocol.ReplySize)
        {
            throw new FileCopyException("File copy: the receiver ended without a reply");
        }
        uint code = BinaryPrimitives.ReadUInt32LittleEndian(head);
        ulong crc = BinaryPrimitives.ReadUInt64LittleEndian(head[8..]);
        string lastName = string.Empty;
        if (Fd.ReadFully(_replies, head[FileCopyProtocol.ReplySize..]) == 4)
        {
            int length = (int)Math.Min(BinaryPrimitives.ReadUInt32LittleEndian(head[FileCopyProtocol.ReplySize..]), (uint)FileCopyProtocol.MaxReplyNameLength);
            byte[] name = new byte[length];
            lastName = FileCopyProtocol.SanitizeForDisplay(name.AsSpan(0, Math.Max(0, Fd.ReadFully(_replies, name))));
        }
        string prefix = lastName.Length > 0 ? "; Last file: " : string.Empty;
        switch ((Errno)code)
        {
            case Errno.None:
                break;
            case Errno.EEXIST:
                throw new FileCopyException($"A file named \"{lastName}\" already exists in QubesIncoming dir");
            case Errno.EINVAL:
                throw new FileCopyException($"File copy: Corrupted data from packer{prefix}\"{lastName}\"");
            case Errno.EILSEQ:
                throw new FileCopyException($"Forbidden character in file or link target. Name might look somewhat like \"{lastName}\"");
            case Errno.ENOLINK:
                throw new FileCopyException($"Cannot verify that link at \"{lastName}\" would not be broken by copy");
            case Errno.EDQUOT when _ignoreQuota:
                // sender and receiver may disagree on what was read: no CRC check
                return;
            default:
                throw new FileCopyException($"File copy: \"{Message((Errno)code, code)}{prefix}{lastName}\"");
        }
        if ((uint)crc != _crc.GetCurrentHashAsUInt32() || crc >> 32 != 0)
        {
            throw new FileCopyException("File transfer failed: checksum mismatch");
        }
        if (!wait)
        {
            // success before the end marker: the receiver is not following the protocol
            throw new FileCopyException("File copy: the receiver replied before the end of the transfer");
        }
    }

    private static string Message(Errno error, uint raw = 0)
        => raw == FileCopyProtocol.LegalEof ? "Unexpected end of data" : System.Runtime.InteropServices.Marshal.GetPInvokeErrorMessage((int)error);

    private static byte[] NulTerminated(string text)
    {
        byte[] bytes = new byte[Encoding.UTF8.GetByteCount(text) + 1];
        Encoding.UTF8.GetBytes(text, bytes);
        return bytes;
    }
}
