using System;
using System.Collections.Generic;
using System.Text;

namespace Qubes.FileCopy.Tests;

/// <summary>A stream of records, as a hostile or honest sender writes it.</summary>
internal sealed class Stream
{
    public const uint Regular = 0x8000, Directory = 0x4000, Link = 0xA000;

    private readonly List<byte> _bytes = [];

    public byte[] Bytes => [.. _bytes];

    public Stream Header(uint nameLength, uint mode, ulong length, uint atime = 1_600_000_000, uint atimeNs = 5, uint mtime = 1_500_000_000, uint mtimeNs = 7)
    {
        byte[] header = new byte[FileCopyProtocol.HeaderSize];
        new FileHeader(nameLength, mode, length, atime, atimeNs, mtime, mtimeNs).Write(header);
        _bytes.AddRange(header);
        return this;
    }

    public Stream Raw(ReadOnlySpan<byte> bytes)
    {
        _bytes.AddRange(bytes.ToArray());
        return this;
    }

    private static byte[] Name(string name) => [.. Encoding.UTF8.GetBytes(name), 0];

    public Stream Entry(byte[] name, uint mode, byte[] content, uint mtimeNs = 7)
        => Header((uint)name.Length, mode, (ulong)content.Length, mtimeNs: mtimeNs).Raw(name).Raw(content);

    public Stream File(string name, string content, uint mode = 0x1A4) => Entry(Name(name), Regular | mode, Encoding.UTF8.GetBytes(content));

    public Stream Dir(string name, uint mode = 0x1ED) => Entry(Name(name), Directory | mode, []);

    public Stream Symlink(string name, string target) => Entry(Name(name), Link | 0x1FF, Encoding.ASCII.GetBytes(target));

    public Stream End() => Header(0, 0, 0, 0, 0, 0, 0);
}

