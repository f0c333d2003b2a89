using System;
using System.Runtime.InteropServices;
using System.Text;

namespace Qubes.Interop.Linux;

/// <summary>Extended attributes of a path (dom0's own paths: a final link is not followed).</summary>
public static unsafe partial class Xattr
{
    [LibraryImport(Libraries.Libc, SetLastError = true)]
    private static partial int lsetxattr(byte* path, byte* name, byte* value, nuint size, int flags);

    /// <summary>Sets <paramref name="name"/> on <paramref name="path"/>; false (errno set) when it cannot.</summary>
    public static bool Set(string path, string name, ReadOnlySpan<byte> value)
    {
        byte[] p = Encoding.UTF8.GetBytes(path + "\0");
        byte[] n = Encoding.UTF8.GetBytes(name + "\0");
        fixed (byte* pp = p)
        fixed (byte* np = n)
        fixed (byte* vp = value)
        {
            return lsetxattr(pp, np, vp, (nuint)value.Length, 0) == 0;
        }
    }
}
