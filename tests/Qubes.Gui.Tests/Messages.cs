using System;
using System.Buffers.Binary;
using System.Collections.Generic;
using System.Linq;

namespace Qubes.Gui.Tests;

/// <summary>Messages as an agent (honest or not) writes them.</summary>
internal static class Messages
{
    public static byte[] Message(MessageType type, uint window, params uint[] fields) => Raw((uint)type, window, (uint)(fields.Length * 4), fields);

    public static byte[] Signed(MessageType type, uint window, params int[] fields) => Message(type, window, fields.Select(static f => (uint)f).ToArray());

    /// <summary>A header with any type and claimed length, and a body of 32-bit fields.</summary>
    public static byte[] Raw(uint type, uint window, uint length, IReadOnlyList<uint> fields)
    {
        byte[] m = new byte[GuiProtocol.HeaderSize + fields.Count * 4];
        BinaryPrimitives.WriteUInt32LittleEndian(m, type);
        BinaryPrimitives.WriteUInt32LittleEndian(m.AsSpan(4), window);
        BinaryPrimitives.WriteUInt32LittleEndian(m.AsSpan(8), length);
        for (int i = 0; i < fields.Count; i++)
        {
            BinaryPrimitives.WriteUInt32LittleEndian(m.AsSpan(12 + i * 4), fields[i]);
        }
        return m;
    }

    public static byte[] Bytes(MessageType type, uint window, byte[] body)
    {
        byte[] m = new byte[GuiProtocol.HeaderSize + body.Length];
        GuiProtocol.WriteHeader(m, type, window, (uint)body.Length);
        body.CopyTo(m, GuiProtocol.HeaderSize);
        return m;
    }

    public static byte[] Create(uint window, int x, int y, int width, int height, bool overrideRedirect = false)
        => Signed(MessageType.Create, window, x, y, width, height, 0, overrideRedirect ? 1 : 0);

    public static byte[] Map(uint window, uint transientFor = 0, bool overrideRedirect = false)
        => Message(MessageType.Map, window, transientFor, overrideRedirect ? 1u : 0u);

    public static byte[] Configure(uint window, int x, int y, int width, int height)
        => Signed(MessageType.Configure, window, x, y, width, height, 0);

    public static byte[] WindowDump(uint window, uint width, uint height, int references, uint type = 0)
    {
        uint[] fields = new uint[4 + references];
        fields[0] = type;
        fields[1] = width;
        fields[2] = height;
        fields[3] = 24;
        for (int i = 0; i < references; i++)
        {
            fields[4 + i] = (uint)(1000 + i);
        }
        return Message(MessageType.WindowDump, window, fields);
    }

    public static byte[] Name(MessageType type, uint window, byte[] text)
    {
        byte[] body = new byte[GuiProtocol.NameSize];
        text.AsSpan(0, Math.Min(text.Length, body.Length)).CopyTo(body);
        return Bytes(type, window, body);
    }

    public static byte[] Concat(params byte[][] parts) => parts.SelectMany(static p => p).ToArray();
}
