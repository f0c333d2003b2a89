using System;
using System.Buffers.Binary;
using System.Diagnostics.CodeAnalysis;
using System.IO;
using System.IO.Hashing;
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
    /// <summary>Files from this size on are spliced into the output (<see cref="CopyFile"/>).</summary>
    private const ulong SpliceFrom = 1 << 20;

    private readonly int _output;
    private readonly int _replies;
    private readonly bool _ignoreQuota;
    private readonly Action<long>? _progress;
    private readonly bool _ignoreSymlinks;
    private readonly byte[] _header = new byte[FileCopyProtocol.HeaderSize];
    /// <summary>Records not yet written out: small files travel many to a write.</summary>
    private readonly byte[] _out = new byte[DataBufferSize];
    private int _outLength;
    private readonly Crc32 _crc = new();
    private long _sent;
    private bool _splice = true;

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
        using SafeFd parent = TreeWalk.OpenParent(trimmed, out byte[] leaf, out byte[] transferName, out Errno error)
            ?? throw new FileCopyException($"open {Path.GetDirectoryName(trimmed)}: {Message(error)}");
        Walk(parent.Fd, leaf, transferName);
    }

    private void Walk(int directory, byte[] leaf, byte[] name)
    {
        if (TreeWalk.Status(directory, leaf, out Libc.stat status) is var error and not Errno.None)
        {
            throw new FileCopyException($"stat {TreeWalk.Display(name)}: {Message(error)}");
        }
        SendEntry(directory, leaf, name, status);
        if ((status.st_mode & FileCopyProtocol.TypeMask) != FileCopyProtocol.Directory)
        {
            return;
        }
        int fd = TreeWalk.Open(directory, leaf, isDirectory: true);
        if (fd < 0)
        {
            throw new FileCopyException($"open {TreeWalk.Display(name)}: {Message(LastError.Get())}");
        }
        using (SafeFd children = new(fd))
        {
            foreach (byte[] child in TreeWalk.Children(fd, TreeWalk.Display(name)))
            {
                Walk(fd, child, TreeWalk.Join(name, child));
            }
        }
        // sent again after its contents: the receiver applies its mode and times then
        SendEntry(directory, leaf, name, status);
    }

    private void SendEntry(int directory, byte[] leaf, byte[] name, in Libc.stat status)
    {
        uint type = status.st_mode & FileCopyProtocol.TypeMask;
        if (type is not (FileCopyProtocol.Regular or FileCopyProtocol.Directory or FileCopyProtocol.SymbolicLink)
            || (type == FileCopyProtocol.SymbolicLink && _ignoreSymlinks))
        {
            return;
        }
        if (name.Length + 1 > FileCopyProtocol.MaxPathLength - 1)
        {
            throw new FileCopyException($"File name too long: {TreeWalk.Display(name)}");
        }
        ulong length = type == FileCopyProtocol.Directory ? 0 : (ulong)status.st_size;
        byte[]? target = null;
        int file = -1;
        if (type == FileCopyProtocol.SymbolicLink)
        {
            target = TreeWalk.ReadLink(directory, leaf, status.st_size, out Errno error)
                ?? throw new FileCopyException($"readlink {TreeWalk.Display(name)}: {(error == Errno.EAGAIN ? "the link changed while it was sent" : Message(error))}");
            length = (ulong)target.Length;
        }
        else if (type == FileCopyProtocol.Regular)
        {
            file = TreeWalk.Open(directory, leaf, isDirectory: false);
            if (file < 0)
            {
                throw new FileCopyException($"open {TreeWalk.Display(name)}: {Message(LastError.Get())}");
            }
        }
        try
        {
            new FileHeader((uint)name.Length + 1, status.st_mode, length,
                (uint)status.st_atime, (uint)status.st_atime_nsec, (uint)status.st_mtime, (uint)status.st_mtime_nsec).Write(_header);
            Write(_header);
            Write(name);
            Write([0]);
            if (target != null)
            {
                Write(target);
                _sent += target.Length;
            }
            if (file >= 0)
            {
                CopyFile(file, name, length);
            }
        }
        finally
        {
            if (file >= 0)
            {
                Libc.close(file);
            }
        }
    }

    /// <summary>
    /// Sends the file's data. A large one goes into the output pipe by <c>splice</c>: its pages are
    /// referenced there, not copied, and each part is read once into the buffer beforehand for the
    /// CRC (data that changes in between gives the receiver another CRC, and the transfer fails).
    /// Small files, and outputs or file systems that cannot splice, are read into the output
    /// buffer and written out as it fills.
    /// </summary>
    private void CopyFile(int file, byte[] name, ulong length)
    {
        long offset = 0;
        if (length >= SpliceFrom && _splice)
        {
            Flush();
            while (length > 0)
            {
                int n = ReadData(file, name, offset, _out.AsSpan(0, (int)Math.Min(length, (ulong)_out.Length)));
                Errno error = Fd.SpliceToPipe(file, offset, _output, n);
                if (error == Errno.EINVAL)
                {
                    // nothing moved: this output or file system does not splice
                    _splice = false;
                    _outLength = n;
                }
                else if (error == Errno.ENODATA)
                {
                    throw new FileCopyException($"Copying file {TreeWalk.Display(name)}: file shrank while it was sent");
                }
                else if (error != Errno.None)
                {
                    ReceiverStopped();
                }
                offset += n;
                length -= (ulong)n;
                AddSent(n);
                if (!_splice)
                {
                    break;
                }
                CheckReply(wait: false);
            }
        }
        while (length > 0)
        {
            if (_outLength == _out.Length)
            {
                Flush();
            }
            int n = ReadData(file, name, offset, _out.AsSpan(_outLength, (int)Math.Min(length, (ulong)(_out.Length - _outLength))));
            _outLength += n;
            offset += n;
            length -= (ulong)n;
            AddSent(n);
        }
    }

    /// <summary>Reads the file's next data into <paramref name="buffer"/> and adds it to the CRC; returns how much (at least a byte).</summary>
    private int ReadData(int file, byte[] name, long offset, Span<byte> buffer)
    {
        int n = Fd.ReadAt(file, buffer, offset);
        if (n < 0)
        {
            throw new FileCopyException($"Copying file {TreeWalk.Display(name)}: {Message((Errno)(-n))}");
        }
        if (n == 0)
        {
            throw new FileCopyException($"Copying file {TreeWalk.Display(name)}: file shrank while it was sent");
        }
        _crc.Append(buffer[..n]);
        return n;
    }

    private void AddSent(int bytes)
    {
        _sent += bytes;
        _progress?.Invoke(_sent);
    }

    private void Write(ReadOnlySpan<byte> data)
    {
        _crc.Append(data);
        while (!data.IsEmpty)
        {
            // written out only when more must go in: after the end marker nothing looks for an early reply
            if (_outLength == _out.Length)
            {
                Flush();
            }
            int n = Math.Min(data.Length, _out.Length - _outLength);
            data[..n].CopyTo(_out.AsSpan(_outLength));
            _outLength += n;
            data = data[n..];
        }
    }

    /// <summary>Writes out what is buffered, then looks for an early reply: a receiver that failed has said why by then, and the transfer stops there.</summary>
    private void Flush()
    {
        WriteOut();
        CheckReply(wait: false);
    }

    private void WriteOut()
    {
        if (_outLength == 0)
        {
            return;
        }
        if (Fd.WriteAll(_output, _out.AsSpan(0, _outLength)) != Errno.None)
        {
            ReceiverStopped();
        }
        _outLength = 0;
    }

    /// <summary>The receiver stopped reading: its reply says why.</summary>
    [DoesNotReturn]
    private void ReceiverStopped()
    {
        CheckReply(wait: true);
        throw new FileCopyException("File copy: the receiver stopped reading");
    }

    /// <summary>Sends the end marker and checks the receiver's reply: its error, or a CRC that differs from what was sent.</summary>
    public void Finish()
    {
        Array.Clear(_header);
        Write(_header);
        WriteOut();
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
        => raw == FileCopyProtocol.LegalEof ? "Unexpected end of data" : FatalError.ErrorText(error);
}
