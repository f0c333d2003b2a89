using System.Text;
using Qubes.Qrexec.Services;
using Xunit;

namespace Qubes.Qrexec.Tests.Services;

public sealed class RpcConfigTests
{
    private static RpcConfig Parse(string text) => Parse(Encoding.UTF8.GetBytes(text));

    private static RpcConfig Parse(byte[] text)
    {
        Assert.True(RpcConfig.TryParse(text, out RpcConfig? config, out string? error), error);
        Assert.Null(error);
        return config;
    }

    private static string Fail(string text) => Fail(Encoding.UTF8.GetBytes(text));

    private static string Fail(byte[] text)
    {
        Assert.False(RpcConfig.TryParse(text, out RpcConfig? config, out string? error));
        Assert.Null(config);
        Assert.False(string.IsNullOrEmpty(error));
        return error;
    }

    [Fact]
    public void An_empty_file_gives_the_defaults()
    {
        RpcConfig config = Parse(string.Empty);
        Assert.False(config.WaitForSession);
        Assert.False(config.SkipServiceDescriptor);
        Assert.False(config.ExitOnClientEof);
        Assert.False(config.ExitOnServiceEof);
        Assert.Null(config.ForceUser);
        Assert.Empty(config.UnknownKeys);
        Assert.False(RpcConfig.Default.WaitForSession);
        Assert.Null(RpcConfig.Default.ForceUser);
    }

    [Fact]
    public void Every_known_key_is_read()
    {
        RpcConfig config = Parse(
            "wait-for-session = true\nskip-service-descriptor = true\nexit-on-client-eof = true\nexit-on-service-eof = true\n");
        Assert.True(config.WaitForSession);
        Assert.True(config.SkipServiceDescriptor);
        Assert.True(config.ExitOnClientEof);
        Assert.True(config.ExitOnServiceEof);

        RpcConfig user = Parse("force-user = 'alice'\nwait-for-session = false\n");
        Assert.Equal("alice", user.ForceUser);
        Assert.False(user.WaitForSession);
    }

    [Fact]
    public void A_nul_byte_anywhere_is_invalid()
    {
        Fail("wait-for-session = true\n# comment \0\n");
        Fail([(byte)'a', (byte)'=', (byte)'1', 0]);
    }

    [Fact]
    public void Crlf_line_ends_are_accepted()
    {
        RpcConfig config = Parse("wait-for-session = 1\r\nforce-user = 'bob'\r\n");
        Assert.True(config.WaitForSession);
        Assert.Equal("bob", config.ForceUser);
    }

    [Theory]
    [InlineData("wait-for-session = true\r")] // a '\r' without '\n' stays in the line
    [InlineData("wait-for-session = true\r \n")] // the '\r' is not last once '\n' goes
    [InlineData("wait-for-session = \rtrue\n")]
    public void A_carriage_return_not_before_a_newline_is_junk(string text)
    {
        Fail(text);
    }

    [Fact]
    public void The_last_line_needs_no_newline()
    {
        Assert.True(Parse("wait-for-session = true").WaitForSession);
    }

    [Fact]
    public void Trailing_spaces_and_tabs_are_ignored()
    {
        RpcConfig config = Parse("wait-for-session = true \t \nforce-user = 'x y' \t\r\n");
        Assert.True(config.WaitForSession);
        Assert.Equal("x y", config.ForceUser);
    }

    [Fact]
    public void Empty_lines_and_comment_lines_are_skipped()
    {
        RpcConfig config = Parse("\n# a comment\n\n#wait-for-session = false\r\nwait-for-session = true\n\n");
        Assert.True(config.WaitForSession);
    }

    [Theory]
    [InlineData(" wait-for-session = true\n")]
    [InlineData("\twait-for-session = true\n")]
    [InlineData("  \n")] // only blanks: the first one is leading whitespace
    [InlineData(" # indented comment\n")]
    [InlineData("[section]\n")]
    [InlineData("1key = 1\n")]
    [InlineData("_key = 1\n")]
    [InlineData("-key = 1\n")]
    [InlineData("=1\n")]
    [InlineData("'key' = 1\n")]
    [InlineData("\"key\" = 1\n")]
    [InlineData("\u00e9 = 1\n")]
    public void A_line_must_start_with_an_ascii_letter(string text)
    {
        Fail(text);
    }

    [Fact]
    public void Keys_use_letters_digits_dots_dashes_and_underscores()
    {
        RpcConfig config = Parse("a.b-c_D9 = 1\nZ = 'z'\n");
        Assert.Equal(["a.b-c_D9", "Z"], config.UnknownKeys);
    }

    [Theory]
    [InlineData("key! = 1\n")]
    [InlineData("key/x = 1\n")]
    [InlineData("key\n")]
    [InlineData("key true\n")]
    [InlineData("key : true\n")]
    [InlineData("wait for session = true\n")]
    public void A_key_must_be_followed_by_equals(string text)
    {
        Assert.Contains("=", Fail(text));
    }

    [Theory]
    [InlineData("wait-for-session=true\n")]
    [InlineData("wait-for-session\t=\ttrue\n")]
    [InlineData("wait-for-session   =   true   # comment\n")]
    [InlineData("wait-for-session = true# comment\n")]
    [InlineData("wait-for-session = true #\n")]
    public void Blanks_around_equals_and_a_trailing_comment_are_allowed(string text)
    {
        Assert.True(Parse(text).WaitForSession);
    }

    [Fact]
    public void A_missing_value_is_an_error()
    {
        Fail("wait-for-session =\n");
        Fail("wait-for-session = \n");
        Fail("wait-for-session = # nothing\n");
    }

    [Theory]
    [InlineData("x = 0\n")]
    [InlineData("x = 7\n")]
    [InlineData("x = 1234567890\n")]
    [InlineData("x = 18446744073709551615\n")]
    public void Decimal_integers_parse(string text)
    {
        Assert.Equal(["x"], Parse(text).UnknownKeys);
    }

    [Theory]
    [InlineData("x = 01\n")]
    [InlineData("x = 00\n")]
    [InlineData("x = 0x10\n")]
    [InlineData("x = 1_000\n")]
    [InlineData("x = -1\n")]
    [InlineData("x = +1\n")]
    [InlineData("x = 1.5\n")]
    [InlineData("x = 1e3\n")]
    [InlineData("x = 18446744073709551616\n")]
    [InlineData("x = 99999999999999999999999\n")]
    public void Other_numbers_are_errors(string text)
    {
        Fail(text);
    }

    [Fact]
    public void Leading_zero_errors_say_so()
    {
        Assert.Contains("leading zeros", Fail("wait-for-session = 01\n"));
    }

    [Theory]
    [InlineData("force-user = 'abc'\n", "abc")]
    [InlineData("force-user = ''\n", "")]
    [InlineData("force-user = 'a#b'\n", "a#b")]
    [InlineData("force-user = 'a\"b'\n", "a\"b")]
    [InlineData("force-user = 'back\\slash'\n", "back\\slash")]
    [InlineData("force-user = 'user' # comment\n", "user")]
    public void Single_quoted_strings_have_no_escapes(string text, string expected)
    {
        Assert.Equal(expected, Parse(text).ForceUser);
    }

    [Theory]
    [InlineData("force-user = \"user\"\n")]
    [InlineData("force-user = '''user'''\n")]
    [InlineData("force-user = \"\"\"user\"\"\"\n")]
    [InlineData("force-user = 'user\n")]
    [InlineData("force-user = '\n")]
    [InlineData("force-user = user\n")]
    [InlineData("x = \"quoted\"\n")]
    public void Other_strings_are_errors(string text)
    {
        Fail(text);
    }

    [Theory]
    [InlineData("wait-for-session = true false\n")]
    [InlineData("wait-for-session = truex\n")]
    [InlineData("wait-for-session = true;\n")]
    [InlineData("wait-for-session = 1 1\n")]
    [InlineData("force-user = 'a' 'b'\n")]
    [InlineData("force-user = 'a'b\n")]
    [InlineData("x = falsely\n")]
    [InlineData("x = tru\n")]
    [InlineData("x = [1]\n")]
    [InlineData("x = {a = 1}\n")]
    public void Junk_after_a_value_is_an_error(string text)
    {
        Fail(text);
    }

    [Fact]
    public void A_key_given_twice_is_an_error()
    {
        Assert.Contains("twice", Fail("wait-for-session = true\nwait-for-session = true\n"));
        Fail("force-user = 'a'\nforce-user = 'a'\n");
        Fail("unknown = 1\nunknown = 2\n");
    }

    [Fact]
    public void Unknown_keys_are_ignored_and_listed_in_order()
    {
        RpcConfig config = Parse("zeta = 1\nwait-for-session = true\nalpha = 'x'\nbeta = false\n");
        Assert.True(config.WaitForSession);
        Assert.Equal(["zeta", "alpha", "beta"], config.UnknownKeys);
    }

    [Fact]
    public void An_unknown_key_still_needs_a_valid_value()
    {
        Fail("unknown = maybe\n");
        Fail("unknown = \"x\"\n");
    }

    [Theory]
    [InlineData("wait-for-session = 0\n", false)]
    [InlineData("wait-for-session = 1\n", true)]
    [InlineData("wait-for-session = false\n", false)]
    [InlineData("wait-for-session = true\n", true)]
    public void Wait_for_session_takes_a_bool_or_0_or_1(string text, bool expected)
    {
        Assert.Equal(expected, Parse(text).WaitForSession);
    }

    [Theory]
    [InlineData("wait-for-session = 2\n")]
    [InlineData("wait-for-session = 10\n")]
    [InlineData("wait-for-session = 'true'\n")]
    public void Wait_for_session_refuses_other_values(string text)
    {
        Fail(text);
    }

    [Theory]
    [InlineData("skip-service-descriptor")]
    [InlineData("exit-on-client-eof")]
    [InlineData("exit-on-service-eof")]
    public void Boolean_keys_refuse_integers_and_strings(string key)
    {
        Fail($"{key} = 1\n");
        Fail($"{key} = 0\n");
        Fail($"{key} = 'true'\n");
        Assert.Empty(Parse($"{key} = false\n").UnknownKeys);
    }

    [Fact]
    public void Force_user_must_be_a_string()
    {
        Fail("force-user = true\n");
        Fail("force-user = 1000\n");
    }

    [Theory]
    [InlineData("skip-service-descriptor")]
    [InlineData("exit-on-client-eof")]
    [InlineData("exit-on-service-eof")]
    public void Force_user_with_a_socket_option_set_is_an_error(string key)
    {
        Fail($"force-user = 'u'\n{key} = true\n");
        Fail($"{key} = true\nforce-user = 'u'\n");
        Assert.Equal("u", Parse($"force-user = 'u'\n{key} = false\n").ForceUser);
    }

    [Fact]
    public void Force_user_with_wait_for_session_is_allowed()
    {
        RpcConfig config = Parse("force-user = 'u'\nwait-for-session = true\n");
        Assert.Equal("u", config.ForceUser);
        Assert.True(config.WaitForSession);
    }

    [Fact]
    public void A_force_user_that_is_not_utf8_is_an_error()
    {
        byte[] text = [.. "force-user = '"u8, 0xff, 0xfe, .. "'\n"u8];
        Fail(text);
        byte[] unknown = [.. "other = '"u8, 0xff, .. "'\n"u8];
        Assert.Equal(["other"], Parse(unknown).UnknownKeys);
    }

    [Fact]
    public void Errors_name_the_line()
    {
        Assert.StartsWith("line 3:", Fail("# one\n\nwait-for-session = 5\n"));
    }
}
