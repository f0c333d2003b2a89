using System;
using System.Text;
using Xunit;
using static Qubes.Qrexec.Tests.Validation.TriggerBodies;

namespace Qubes.Qrexec.Tests.Validation;

/// <summary>The daemon's body checks of trigger messages (spec §12.1 items 1-4): force-termination, sanitisation, ident and name rules.</summary>
public sealed class TriggerParsingTests
{
    private const string Letters = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";

    private static TriggerRequest Accepted(MessageType type, byte[] body)
    {
        bool ok = Messages.TryParseTrigger(type, body, out TriggerRequest? request, out byte[] ident, out string? reason);
        Assert.True(ok, $"refused: {reason}");
        Assert.Null(reason);
        Assert.NotNull(request);
        Assert.Equal(IdentOf(type, body), ident);
        Assert.Equal(ident, request.Ident);
        return request;
    }

    private static void Refused(MessageType type, byte[] body)
    {
        bool ok = Messages.TryParseTrigger(type, body, out TriggerRequest? request, out byte[] ident, out string? reason);
        Assert.False(ok);
        Assert.Null(request);
        Assert.False(string.IsNullOrEmpty(reason));
        // the refusal carries the ident exactly as received
        Assert.Equal(IdentOf(type, body), ident);
    }

    private static byte[] IdentOf(MessageType type, byte[] body)
    {
        int offset = type switch
        {
            MessageType.TriggerService => V2Service + V2Target,
            MessageType.TriggerService3 => Domain,
            _ => 2 * Domain,
        };
        return body.AsSpan(offset, Ident).ToArray();
    }

    // ------------------------------------------------------------------ well-formed requests

    [Fact]
    public void V4_fields_are_taken_as_sent()
    {
        TriggerRequest r = Accepted(MessageType.TriggerService4, V4("relay-vm", "@dispvm:default-dvm", IdentField("SOCKET12"), "qubes.Filecopy+some.arg\0"));
        Assert.Equal(4u, r.Version);
        Assert.Equal("relay-vm", r.RequestedSource);
        Assert.Equal("@dispvm:default-dvm", r.Target);
        Assert.Equal("SOCKET12", r.IdentText);
        Assert.Equal("qubes.Filecopy+some.arg", r.ServiceName);
    }

    [Fact]
    public void V4_empty_source_means_none_given()
    {
        TriggerRequest r = Accepted(MessageType.TriggerService4, V4("", "work", IdentField("x"), "a\0"));
        Assert.Equal(string.Empty, r.RequestedSource);
        Assert.Equal("a", r.ServiceName);
    }

    [Fact]
    public void V3_has_no_requested_source()
    {
        TriggerRequest r = Accepted(MessageType.TriggerService3, V3("uuid:0b5a8d9c-1111-2222-3333-444455556666", IdentField("SOCKET7"), "qubes.VMShell+\0"));
        Assert.Equal(3u, r.Version);
        Assert.Null(r.RequestedSource);
        Assert.Equal("uuid:0b5a8d9c-1111-2222-3333-444455556666", r.Target);
        Assert.Equal("qubes.VMShell+", r.ServiceName);
    }

    [Fact]
    public void V2_takes_the_service_up_to_its_nul_and_ignores_what_follows()
    {
        byte[] body = V2("qubes.Gpg", "work", IdentField("SOCKET3"));
        body[20] = (byte)'X'; // after the NUL of the 64-byte service field: not part of the name
        TriggerRequest r = Accepted(MessageType.TriggerService, body);
        Assert.Equal(2u, r.Version);
        Assert.Null(r.RequestedSource);
        Assert.Equal("qubes.Gpg", r.ServiceName);
        Assert.Equal("work", r.Target);
    }

    // ------------------------------------------------------------------ item 1: fixed fields are force-terminated

    [Fact]
    public void V4_source_and_target_filling_their_64_bytes_lose_the_last_byte()
    {
        string full = new string('s', Domain - 1) + "Z";
        TriggerRequest r = Accepted(MessageType.TriggerService4, V4(full, full.Replace('s', 't'), IdentField("i"), "svc\0"));
        Assert.Equal(new string('s', Domain - 1), r.RequestedSource);
        Assert.Equal(new string('t', Domain - 1), r.Target);
    }

    [Fact]
    public void V3_target_filling_its_64_bytes_loses_the_last_byte()
    {
        TriggerRequest r = Accepted(MessageType.TriggerService3, V3(new string('t', Domain - 1) + "Z", IdentField("i"), "svc\0"));
        Assert.Equal(new string('t', Domain - 1), r.Target);
    }

    [Fact]
    public void V2_service_and_target_filling_their_fields_lose_the_last_byte()
    {
        TriggerRequest r = Accepted(MessageType.TriggerService, V2(new string('s', V2Service - 1) + "Z", new string('t', V2Target - 1) + "Z", IdentField("i")));
        Assert.Equal(new string('s', V2Service - 1), r.ServiceName);
        Assert.Equal(new string('t', V2Target - 1), r.Target);
    }

    // ------------------------------------------------------------------ item 2: sanitisation by replacement

    [Fact]
    public void Target_path_characters_are_replaced_not_rejected()
    {
        TriggerRequest r = Accepted(MessageType.TriggerService4, V4("", "work/../x", IdentField("i"), "svc\0"));
        Assert.Equal("work_.._x", r.Target);
    }

    [Fact]
    public void Service_keeps_plus_and_replaces_a_slash()
    {
        TriggerRequest r = Accepted(MessageType.TriggerService4, V4("", "work", IdentField("i"), "svc+a/b\0"));
        Assert.Equal("svc+a_b", r.ServiceName);
    }

    [Fact]
    public void Target_keeps_at_and_colon_but_not_plus_while_the_service_is_the_other_way_round()
    {
        TriggerRequest r = Accepted(MessageType.TriggerService4, V4("@a:b+c", "@dispvm:x+y", IdentField("i"), "s@v:c+d\0"));
        Assert.Equal("@a:b_c", r.RequestedSource);
        Assert.Equal("@dispvm:x_y", r.Target);
        Assert.Equal("s_v_c+d", r.ServiceName);
    }

    [Fact]
    public void V3_and_v2_names_are_sanitised_too()
    {
        Assert.Equal("a_b+c_d", Accepted(MessageType.TriggerService3, V3("w", IdentField("i"), "a b+c;d\0")).ServiceName);
        Assert.Equal("w_x", Accepted(MessageType.TriggerService3, V3("w x", IdentField("i"), "s\0")).Target);
        TriggerRequest v2 = Accepted(MessageType.TriggerService, V2("a$b+c", "w\u00e9x", IdentField("i")));
        Assert.Equal("a_b+c", v2.ServiceName);
        Assert.Equal("w_x", v2.Target);
    }

    [Fact]
    public void Every_byte_value_is_kept_or_replaced_by_the_allowed_sets()
    {
        for (int b = 1; b < 256; b++)
        {
            char c = (char)b;
            bool common = Letters.Contains(c, StringComparison.Ordinal) || c is '_' or '.' or '-';
            char domainExpected = common || c is '@' or ':' ? c : '_';
            char serviceExpected = common || c == '+' ? c : '_';
            string name = "s" + c; // the name must not start with '+'
            TriggerRequest r = Accepted(MessageType.TriggerService4, V4(c.ToString(), c.ToString(), IdentField("i"), name + "\0"));
            Assert.True(domainExpected.ToString() == r.Target, $"byte 0x{b:x2} in a target gave '{r.Target}'");
            Assert.True(domainExpected.ToString() == r.RequestedSource, $"byte 0x{b:x2} in a source gave '{r.RequestedSource}'");
            Assert.True("s" + serviceExpected == r.ServiceName, $"byte 0x{b:x2} in a service gave '{r.ServiceName}'");
        }
    }

    [Fact]
    public void A_multibyte_character_becomes_one_underscore_per_byte()
    {
        byte[] body = Concat(new byte[2 * Domain], IdentField("i"), Encoding.UTF8.GetBytes("caf\u00e9\0"));
        body[Domain] = (byte)'w';
        Assert.Equal("caf__", Accepted(MessageType.TriggerService4, body).ServiceName);
    }

    // ------------------------------------------------------------------ item 3: ident

    [Theory]
    [InlineData("SOCKET42")]
    [InlineData("a-b_c.d e")]
    [InlineData("ABCDEFGHIJKLMNOPQRSTUVWXYZabcde")] // 31 characters: the NUL is the 32nd byte
    [InlineData("0123456789")]
    [InlineData("")]
    public void Idents_of_the_allowed_characters_pass(string ident)
        => Assert.Equal(ident, Accepted(MessageType.TriggerService4, V4("", "w", IdentField(ident), "s\0")).IdentText);

    [Theory]
    [InlineData("SOCKET/1")]
    [InlineData("a+b")]
    [InlineData("a@b")]
    [InlineData("a:b")]
    [InlineData("a\tb")]
    [InlineData("a\nb")]
    [InlineData("a\u007fb")]
    [InlineData("a\u00ffb")]
    [InlineData("$")]
    public void An_ident_with_a_byte_outside_the_set_is_refused(string ident)
    {
        Refused(MessageType.TriggerService4, V4("", "w", IdentField(ident), "s\0"));
        Refused(MessageType.TriggerService3, V3("w", IdentField(ident), "s\0"));
        Refused(MessageType.TriggerService, V2("s", "w", IdentField(ident)));
    }

    [Fact]
    public void An_ident_without_a_nul_in_its_32_bytes_is_refused()
    {
        byte[] ident = IdentField(new string('a', Ident));
        Refused(MessageType.TriggerService4, V4("", "w", ident, "s\0"));
        Refused(MessageType.TriggerService3, V3("w", ident, "s\0"));
        Refused(MessageType.TriggerService, V2("s", "w", ident));
    }

    [Theory]
    [InlineData("abc\0x")]
    [InlineData("\0a")]
    [InlineData("abc\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0x")] // the very last byte
    public void An_ident_with_bytes_after_its_nul_is_refused_and_echoed_with_them(string raw)
    {
        Refused(MessageType.TriggerService4, V4("", "w", IdentField(raw), "s\0"));
        Refused(MessageType.TriggerService3, V3("w", IdentField(raw), "s\0"));
    }

    // ------------------------------------------------------------------ item 4: the variable-length name (v3/v4)

    [Theory]
    [InlineData("svc")]                 // no NUL at all
    [InlineData("svc\0x")]              // a NUL, but not at the very end
    [InlineData("svc\0\0")]             // two NULs at the end
    [InlineData("a\0b\0")]              // an earlier NUL
    [InlineData("\0\0")]
    [InlineData("\0")]                  // empty
    [InlineData("+arg\0")]              // no service before the argument
    [InlineData("+\0")]
    public void A_name_not_ending_with_its_only_nul_or_empty_or_starting_with_plus_is_refused(string rawName)
    {
        Refused(MessageType.TriggerService4, V4("", "w", IdentField("id"), rawName));
        Refused(MessageType.TriggerService3, V3("w", IdentField("id"), rawName));
    }

    [Theory]
    [InlineData("a\0", "a")]
    [InlineData("svc+\0", "svc+")]
    [InlineData("svc+arg+more\0", "svc+arg+more")]
    [InlineData("/+x\0", "_+x")] // sanitised first character that was not a '+'
    public void A_name_ending_with_its_only_nul_passes(string rawName, string expected)
    {
        Assert.Equal(expected, Accepted(MessageType.TriggerService4, V4("", "w", IdentField("id"), rawName)).ServiceName);
        Assert.Equal(expected, Accepted(MessageType.TriggerService3, V3("w", IdentField("id"), rawName)).ServiceName);
    }

    [Fact]
    public void A_name_of_65000_bytes_passes_whole()
    {
        string name = new string('n', 64999);
        Assert.Equal(name, Accepted(MessageType.TriggerService4, V4("", "w", IdentField("id"), name + "\0")).ServiceName);
    }

    [Fact]
    public void A_bad_name_is_refused_with_the_ident_as_received()
    {
        bool ok = Messages.TryParseTrigger(MessageType.TriggerService4, V4("", "w", IdentField("SOCKET9"), "+x\0"), out _, out byte[] ident, out _);
        Assert.False(ok);
        Assert.Equal(IdentField("SOCKET9"), ident);
    }

    [Theory]
    [InlineData("")]
    [InlineData("+")]
    [InlineData("+arg")]
    public void V2_name_empty_or_starting_with_plus_is_refused(string service)
        => Refused(MessageType.TriggerService, V2(service, "w", IdentField("id")));

    [Fact]
    public void V2_name_that_is_a_nul_followed_by_text_counts_as_empty()
    {
        byte[] body = V2("", "w", IdentField("id"));
        body[1] = (byte)'x';
        Refused(MessageType.TriggerService, body);
    }

    // ------------------------------------------------------------------ ident helpers the daemon relies on

    [Fact]
    public void IsValidIdent_requires_exactly_32_bytes()
    {
        Assert.True(Messages.IsValidIdent(IdentField("ok")));
        Assert.False(Messages.IsValidIdent(new byte[31]));
        Assert.False(Messages.IsValidIdent(new byte[33]));
        Assert.False(Messages.IsValidIdent([]));
    }
}
