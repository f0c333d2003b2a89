namespace Qubes.Updates;

/// <summary>How far a parser of package bytes got.</summary>
public enum RpmParseStatus
{
    /// <summary>The bytes given end before the structure does; <see cref="RpmParseResult.Length"/> is how many it needs in all.</summary>
    NeedMoreData,

    /// <summary>The structure is well formed; <see cref="RpmParseResult.Length"/> is how many bytes it took.</summary>
    Complete,

    /// <summary>The structure is refused; <see cref="RpmParseResult.Reason"/> says why and <see cref="RpmParseResult.Offset"/> where.</summary>
    Invalid,
}

/// <summary>The outcome of parsing part of a package: never an exception for what the bytes say.</summary>
public readonly record struct RpmParseResult(RpmParseStatus Status, long Length, string? Reason = null, long Offset = 0)
{
    /// <summary>At least <paramref name="total"/> bytes are needed.</summary>
    public static RpmParseResult NeedMore(long total) => new(RpmParseStatus.NeedMoreData, total);

    /// <summary>Well formed, <paramref name="consumed"/> bytes long.</summary>
    public static RpmParseResult Done(long consumed) => new(RpmParseStatus.Complete, consumed);

    /// <summary>Refused for <paramref name="reason"/> at <paramref name="offset"/> (from the start of the part parsed).</summary>
    public static RpmParseResult Fail(string reason, long offset) => new(RpmParseStatus.Invalid, 0, reason, offset);

    /// <summary>Whether the structure was complete and well formed.</summary>
    public bool IsComplete => Status == RpmParseStatus.Complete;
}
