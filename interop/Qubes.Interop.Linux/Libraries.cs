namespace Qubes.Interop.Linux;

internal static class Libraries
{
    /// <summary>glibc by its soname: the unversioned "libc.so" is a linker script on Debian.</summary>
    internal const string Libc = "libc.so.6";
}
