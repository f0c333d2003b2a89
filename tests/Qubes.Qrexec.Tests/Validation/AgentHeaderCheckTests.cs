using Xunit;

namespace Qubes.Qrexec.Tests.Validation;

/// <summary>The daemon's header check of agent messages (spec §12.1, header table): every boundary of every row.</summary>
public sealed class AgentHeaderCheckTests
{
    private const uint V2Size = 128;
    private const uint V3Fixed = 96;
    private const uint V4Fixed = 160;
    private const uint MaxName = 65000;

    private static bool Check(MessageType type, uint length, uint version)
        => Messages.IsAcceptableFromAgent(new MessageHeader(type, length), version);

    [Theory]
    [InlineData(2u, V2Size, true)]
    [InlineData(2u, V2Size - 1, false)]
    [InlineData(2u, V2Size + 1, false)]
    [InlineData(2u, 0u, false)]
    [InlineData(2u, uint.MaxValue, false)]
    [InlineData(3u, V2Size, false)]
    [InlineData(4u, V2Size, false)]
    public void TRIGGER_SERVICE_only_below_version_3_and_exactly_128_bytes(uint version, uint length, bool accepted)
        => Assert.Equal(accepted, Check(MessageType.TriggerService, length, version));

    [Theory]
    [InlineData(3u, V3Fixed + 1, true)]
    [InlineData(3u, V3Fixed, false)]
    [InlineData(3u, 0u, false)]
    [InlineData(3u, V3Fixed + MaxName, true)]
    [InlineData(3u, V3Fixed + MaxName + 1, false)]
    [InlineData(3u, uint.MaxValue, false)]
    [InlineData(4u, V3Fixed + 1, true)]
    [InlineData(4u, V3Fixed + MaxName, true)]
    [InlineData(2u, V3Fixed + 1, false)]
    [InlineData(2u, V3Fixed + 32, false)]
    public void TRIGGER_SERVICE3_from_version_3_with_a_name_of_1_to_65000_bytes(uint version, uint length, bool accepted)
        => Assert.Equal(accepted, Check(MessageType.TriggerService3, length, version));

    [Theory]
    [InlineData(4u, V4Fixed + 1, true)]
    [InlineData(4u, V4Fixed, false)]
    [InlineData(4u, V3Fixed + 1, false)]
    [InlineData(4u, 0u, false)]
    [InlineData(4u, V4Fixed + MaxName, true)]
    [InlineData(4u, V4Fixed + MaxName + 1, false)]
    [InlineData(4u, uint.MaxValue, false)]
    [InlineData(3u, V4Fixed + 1, false)]
    [InlineData(3u, V4Fixed + 100, false)]
    [InlineData(2u, V4Fixed + 1, false)]
    public void TRIGGER_SERVICE4_from_version_4_with_a_name_of_1_to_65000_bytes(uint version, uint length, bool accepted)
        => Assert.Equal(accepted, Check(MessageType.TriggerService4, length, version));

    [Theory]
    [InlineData(8u, 2u, true)]
    [InlineData(8u, 3u, true)]
    [InlineData(8u, 4u, true)]
    [InlineData(7u, 4u, false)]
    [InlineData(9u, 4u, false)]
    [InlineData(0u, 4u, false)]
    [InlineData(40u, 4u, false)]
    [InlineData(uint.MaxValue, 2u, false)]
    public void CONNECTION_TERMINATED_is_exactly_8_bytes_in_every_version(uint length, uint version, bool accepted)
        => Assert.Equal(accepted, Check(MessageType.ConnectionTerminated, length, version));

    [Theory]
    [InlineData(0x000u)]
    [InlineData(0x190u)] // DATA_STDIN
    [InlineData(0x191u)]
    [InlineData(0x192u)]
    [InlineData(0x193u)] // DATA_EXIT_CODE
    [InlineData(0x200u)] // EXEC_CMDLINE
    [InlineData(0x201u)] // JUST_EXEC
    [InlineData(0x202u)] // SERVICE_CONNECT
    [InlineData(0x203u)] // SERVICE_REFUSED
    [InlineData(0x214u)] // one past TRIGGER_SERVICE4
    [InlineData(0x300u)] // HELLO
    [InlineData(0x8213u)] // the trigger-socket-only descriptor-passing variant
    [InlineData(0xFFFFFFFFu)]
    public void Every_other_type_is_fatal_whatever_its_length_and_the_version(uint type)
    {
        foreach (uint version in new uint[] { 2, 3, 4 })
        {
            foreach (uint length in new uint[] { 0, 4, 8, 32, V2Size, V3Fixed + 1, V4Fixed + 1 })
            {
                Assert.False(Check((MessageType)type, length, version), $"type 0x{type:x} length {length} version {version}");
            }
        }
    }
}
