using System.Linq;
using Qubes.Qrexec.Services;
using Xunit;

namespace Qubes.Qrexec.Tests.Services;

public sealed class ServiceCommandTests
{
    private static ServiceCommand Parse(string commandLine)
    {
        Assert.True(ServiceCommand.TryParse(commandLine, out ServiceCommand? command, out string? error), error);
        Assert.Null(error);
        return command;
    }

    private static string Fail(string commandLine)
    {
        Assert.False(ServiceCommand.TryParse(commandLine, out ServiceCommand? command, out string? error));
        Assert.Null(command);
        Assert.False(string.IsNullOrEmpty(error));
        return error;
    }

    [Fact]
    public void A_command_without_a_colon_is_refused()
    {
        Fail("QUBESRPC qubes.Svc dom0");
        Fail("");
    }

    [Fact]
    public void The_user_is_the_text_before_the_first_colon()
    {
        ServiceCommand command = Parse("user:echo a:b");
        Assert.Equal("user", command.User);
        Assert.False(command.IsRpc);
        Assert.Equal("echo a:b", command.ShellCommand);
        Assert.Equal(string.Empty, Parse(":true").User);
    }

    [Fact]
    public void A_plain_command_has_no_rpc_fields()
    {
        ServiceCommand command = Parse("root:ls -l");
        Assert.False(command.IsRpc);
        Assert.False(command.NoGui);
        Assert.Equal("ls -l", command.ShellCommand);
        Assert.Equal(string.Empty, command.Descriptor);
        Assert.Equal(0, command.TokenCount);
        Assert.False(command.HasValidTokenCountForExecutable);
    }

    [Fact]
    public void Nogui_prefix_is_removed_and_recorded()
    {
        ServiceCommand plain = Parse("user:nogui:xterm");
        Assert.True(plain.NoGui);
        Assert.Equal("xterm", plain.ShellCommand);

        ServiceCommand rpc = Parse("user:nogui:QUBESRPC qubes.Svc+arg work");
        Assert.True(rpc.NoGui);
        Assert.True(rpc.IsRpc);
        Assert.Equal("qubes.Svc+arg", rpc.Descriptor);
        Assert.Equal("qubes.Svc+arg work", rpc.DescriptorLine);

        Assert.False(Parse("user:QUBESRPC qubes.Svc work").NoGui);
        // only a prefix counts
        Assert.False(Parse("user:echo nogui:x").NoGui);
    }

    [Fact]
    public void Rpc_call_with_two_tokens()
    {
        ServiceCommand command = Parse("DEFAULT:QUBESRPC qubes.Filecopy+arg work");
        Assert.True(command.IsRpc);
        Assert.Null(command.ShellCommand);
        Assert.Equal("DEFAULT", command.User);
        Assert.Equal("qubes.Filecopy+arg", command.Descriptor);
        Assert.Equal("qubes.Filecopy", command.ServiceName);
        Assert.Equal("arg", command.Argument);
        Assert.Equal("qubes.Filecopy+arg", command.LookupName);
        Assert.Equal("work", command.Source);
        Assert.Null(command.TargetType);
        Assert.Null(command.Target);
        Assert.Equal(2, command.TokenCount);
        Assert.True(command.HasValidTokenCountForExecutable);
        Assert.Equal("qubes.Filecopy+arg work", command.DescriptorLine);
    }

    [Fact]
    public void Rpc_call_with_four_tokens()
    {
        ServiceCommand command = Parse("user:QUBESRPC qubes.Svc+ work keyword @default");
        Assert.Equal("work", command.Source);
        Assert.Equal("keyword", command.TargetType);
        Assert.Equal("@default", command.Target);
        Assert.Equal(4, command.TokenCount);
        Assert.True(command.HasValidTokenCountForExecutable);
    }

    [Theory]
    [InlineData("user:QUBESRPC svc src name", 3)]
    [InlineData("user:QUBESRPC svc src name tgt extra", 5)]
    [InlineData("user:QUBESRPC svc src a b c d", 6)]
    public void Other_token_counts_parse_but_are_invalid_for_executables(string commandLine, int count)
    {
        ServiceCommand command = Parse(commandLine);
        Assert.Equal(count, command.TokenCount);
        Assert.False(command.HasValidTokenCountForExecutable);
        Assert.Equal("src", command.Source);
    }

    [Fact]
    public void Runs_of_spaces_collapse_between_tokens()
    {
        ServiceCommand command = Parse("user:QUBESRPC svc+a   src  name    tgt  ");
        Assert.Equal(4, command.TokenCount);
        Assert.Equal("svc+a", command.Descriptor);
        Assert.Equal("src", command.Source);
        Assert.Equal("name", command.TargetType);
        Assert.Equal("tgt", command.Target);
        Assert.Equal("svc+a   src  name    tgt  ", command.DescriptorLine);
    }

    [Theory]
    [InlineData("user:QUBESRPC  svc src")]
    [InlineData("user:QUBESRPC\tsvc src")]
    [InlineData("user:QUBESRPCsvc src")]
    [InlineData("user:QUBESRPC")]
    [InlineData("user:nogui:QUBESRPC")]
    public void Qubesrpc_must_be_followed_by_exactly_one_space(string commandLine)
    {
        Fail(commandLine);
    }

    [Fact]
    public void A_descriptor_without_plus_is_normalised_for_lookup()
    {
        ServiceCommand command = Parse("user:QUBESRPC qubes.Svc src");
        Assert.Equal("qubes.Svc", command.Descriptor);
        Assert.Equal("qubes.Svc", command.ServiceName);
        Assert.Null(command.Argument);
        Assert.Equal("qubes.Svc+", command.LookupName);
    }

    [Fact]
    public void An_empty_argument_after_plus_is_kept_as_empty()
    {
        ServiceCommand command = Parse("user:QUBESRPC qubes.Svc+ src");
        Assert.Equal("qubes.Svc+", command.Descriptor);
        Assert.Equal(string.Empty, command.Argument);
        Assert.Equal("qubes.Svc+", command.LookupName);
    }

    [Fact]
    public void The_argument_is_everything_after_the_first_plus()
    {
        ServiceCommand command = Parse("user:QUBESRPC svc+a+b++ src");
        Assert.Equal("svc", command.ServiceName);
        Assert.Equal("a+b++", command.Argument);
        Assert.Equal("svc+a+b++", command.LookupName);
    }

    [Theory]
    [InlineData("user:QUBESRPC +arg src")]
    [InlineData("user:QUBESRPC + src")]
    public void An_empty_service_name_is_refused(string commandLine)
    {
        Fail(commandLine);
    }

    [Fact]
    public void The_service_name_is_at_most_255_bytes()
    {
        string longest = new('s', 255);
        Assert.Equal(longest, Parse($"u:QUBESRPC {longest}+x src").ServiceName);
        Fail($"u:QUBESRPC {new string('s', 256)}+x src");
        Fail($"u:QUBESRPC {new string('s', 256)} src");
        // bytes, not characters: 128 two-byte characters are 256 bytes
        Fail($"u:QUBESRPC {new string('\u00e9', 128)} src");
        Parse($"u:QUBESRPC {new string('\u00e9', 127)} src");
    }

    [Fact]
    public void The_descriptor_is_at_most_65000_bytes()
    {
        string fits = "svc+" + new string('a', 65000 - 4);
        Assert.Equal(65000, Parse($"u:QUBESRPC {fits} src").Descriptor.Length);
        Fail($"u:QUBESRPC {fits}a src");
    }

    [Theory]
    [InlineData("user:QUBESRPC svc")]
    [InlineData("user:QUBESRPC svc ")]
    [InlineData("user:QUBESRPC svc+arg    ")]
    [InlineData("user:QUBESRPC ")]
    public void A_source_is_required(string commandLine)
    {
        Fail(commandLine);
    }

    [Fact]
    public void A_nul_byte_is_refused()
    {
        Fail("user:QUBESRPC svc\0 src");
    }

    [Fact]
    public void Descriptor_line_is_the_text_after_the_keyword()
    {
        Assert.Equal("svc+arg src name tgt", Parse("u:nogui:QUBESRPC svc+arg src name tgt").DescriptorLine);
        Assert.Equal(["svc+arg", "src", "name", "tgt"], Parse("u:QUBESRPC svc+arg src name tgt").DescriptorLine.Split(' ').ToArray());
    }
}
