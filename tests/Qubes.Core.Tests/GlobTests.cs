using Qubes.Core.Api;
using Xunit;

namespace Qubes.Core.Tests;

/// <summary>qvm-ls's name patterns match as Python's fnmatch does on Linux (the expected values are fnmatch's own answers).</summary>
public sealed class GlobTests
{
    [Theory]
    [InlineData("w*", "work", true)]
    [InlineData("w*", "personal", false)]
    [InlineData("d?m0", "dom0", true)]
    [InlineData("d?m0", "dm0", false)]
    [InlineData("*", "", true)]
    [InlineData("", "", true)]
    [InlineData("", "a", false)]
    [InlineData("*-dvm", "default-dvm", true)]
    [InlineData("*-dvm", "default-dvmx", false)]
    [InlineData("[wp]*", "work", true)]
    [InlineData("[wp]*", "untrusted", false)]
    [InlineData("[!wp]*", "untrusted", true)]
    [InlineData("[!wp]*", "work", false)]
    [InlineData("[a-f]*", "default-dvm", true)]
    [InlineData("[a-f]*", "work", false)]
    [InlineData("[z-a]*", "work", false)]
    [InlineData("[!z-a]ork", "work", true)]
    [InlineData("[]a]x", "]x", true)]
    [InlineData("[]a]x", "ax", true)]
    [InlineData("[!]a]x", "bx", true)]
    [InlineData("[!]a]x", "]x", false)]
    [InlineData("[!]", "[!]", true)]
    [InlineData("[!]", "a", false)]
    [InlineData("[ab", "[ab", true)]
    [InlineData("[ab", "a", false)]
    [InlineData("[-a]", "-", true)]
    [InlineData("[a-]", "-", true)]
    [InlineData("[a-]", "b", false)]
    [InlineData("a*b*c", "aXbYc", true)]
    [InlineData("a*b*c", "aXbYcZ", false)]
    [InlineData("*a*a*a", "aaaa", true)]
    [InlineData("*a*a*a", "aaXa", true)]
    [InlineData("**x", "x", true)]
    [InlineData("?", "", false)]
    [InlineData("Work", "work", false)]
    [InlineData("w.rk", "work", false)]
    [InlineData("w.rk", "w.rk", true)]
    [InlineData("w\\ork", "w\\ork", true)]
    [InlineData("[\\]x", "\\x", true)]
    [InlineData("[^a]", "^", true)]
    [InlineData("[^a]", "b", false)]
    [InlineData("*[0-9]", "vm7", true)]
    [InlineData("*[0-9]", "vm", false)]
    [InlineData("a?c", "abc", true)]
    [InlineData("a?c", "ac", false)]
    [InlineData("*x*", "aaaaaaaaaaaaaaaaaaaaaaaaaaaa", false)]
    public void Matches_as_fnmatch(string pattern, string name, bool expected)
        => Assert.Equal(expected, Glob.Match(pattern, name));
}
