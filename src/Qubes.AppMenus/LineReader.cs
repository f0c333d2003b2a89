using System;
using System.IO;

namespace Qubes.AppMenus;

/// <summary>
/// Lines of a stream as Python's <c>readline(limit)</c> gives them: through the newline, or
/// <c>limit</c> long when no newline comes first; empty only at the end. A text stream's lines
/// end at <c>\r</c>, <c>\r\n</c> or <c>\n</c> (Python's universal newlines).
/// </summary>
internal sealed class LineReader(Stream input)
{
    private readonly byte[] _buffer = new byte[64 * 1024];
    private readonly byte[] _line = new byte[4 * MenuList.MaxLineLength];
    private int _start, _end;
    private bool _eof;

    /// <summary>A line of at most <paramref name="limit"/> bytes (a binary stream's readline).</summary>
    public ReadOnlySpan<byte> ReadBytes(int limit) => Read(limit, characters: false);

    /// <summary>A line of at most <paramref name="limit"/> UTF-8 characters (a text stream's readline), counted by their first bytes.</summary>
    public ReadOnlySpan<byte> ReadCharacters(int limit) => Read(limit, characters: true);

    private ReadOnlySpan<byte> Read(int limit, bool characters)
    {
        int length = 0, counted = 0;
        while (true)
        {
            if (_start == _end && !Fill())
            {
                return _line.AsSpan(0, length);
            }
            byte b = _buffer[_start];
            bool starts = !characters || (b & 0xC0) != 0x80;
            if ((starts && counted == limit) || length == _line.Length)
            {
                return _line.AsSpan(0, length);
            }
            _start++;
            _line[length++] = b;
            counted += starts ? 1 : 0;
            if (b == (byte)'\n')
            {
                return _line.AsSpan(0, length);
            }
            if (characters && b == (byte)'\r')
            {
                if ((_start < _end || Fill()) && _buffer[_start] == (byte)'\n')
                {
                    _start++;
                }
                return _line.AsSpan(0, length);
            }
        }
    }

    private bool Fill()
    {
        if (_eof)
        {
            return false;
        }
        _start = 0;
        _end = input.Read(_buffer);
        _eof = _end == 0;
        return !_eof;
    }
}
