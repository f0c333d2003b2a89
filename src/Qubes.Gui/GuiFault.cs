namespace Qubes.Gui;

/// <summary>Why a message from a qube was refused or not applied (spec gui-protocol §8-§12).</summary>
public enum GuiFault
{
    None,

    // fatal: the qube loses its GUI
    UnknownWindow,
    WindowExists,
    TooManyWindows,
    LengthMismatch,
    UnexpectedType,
    ClipboardTooLong,
    DumpTooShort,
    DumpType,
    DumpSize,
    DumpReferences,
    DumpTooFewReferences,
    FramesOutsideDom0,
    FramesCount,
    FramesSize,
    FramesOffset,
    FramesTooFew,

    // verify: the user decides whether the qube keeps running
    NegativeSize,
    EmptySize,
    ConflictingFlags,
    InvalidCursor,

    // ignored
    NotMappable,
    AlreadyMapped,
    Docked,
    NegativeDamage,
    ClipboardNotRequested,
    ClipboardSuperseded,
    LengthWarning,
}

/// <summary>Text for the log.</summary>
public static class GuiFaults
{
    public static string Describe(GuiFault fault) => fault switch
    {
        GuiFault.None => "no fault",
        GuiFault.UnknownWindow => "a message for a window the qube never created",
        GuiFault.WindowExists => "CREATE of a window that exists",
        GuiFault.TooManyWindows => "more windows than a qube may have",
        GuiFault.LengthMismatch => "a body length that is not the message type's",
        GuiFault.UnexpectedType => "a message type the agent may not send",
        GuiFault.ClipboardTooLong => "clipboard data longer than the protocol allows",
        GuiFault.DumpTooShort => "WINDOW_DUMP shorter than its header",
        GuiFault.DumpType => "WINDOW_DUMP of an unknown type",
        GuiFault.DumpSize => "WINDOW_DUMP of an image larger than a window may be",
        GuiFault.DumpReferences => "WINDOW_DUMP with more grant references than a window needs or a partial one",
        GuiFault.DumpTooFewReferences => "WINDOW_DUMP with fewer pages than its image",
        GuiFault.FramesOutsideDom0 => "MFNDUMP to a daemon outside dom0",
        GuiFault.FramesCount => "MFNDUMP with more frames than a window needs",
        GuiFault.FramesSize => "MFNDUMP of an image larger than a window may be",
        GuiFault.FramesOffset => "MFNDUMP with an offset past its first page",
        GuiFault.FramesTooFew => "MFNDUMP with fewer frames than its image",
        GuiFault.NegativeSize => "a window of negative size",
        GuiFault.EmptySize => "a window of no width or height",
        GuiFault.ConflictingFlags => "window flags both set and unset",
        GuiFault.InvalidCursor => "an unknown cursor",
        GuiFault.NotMappable => "an update of a window that is not shown",
        GuiFault.AlreadyMapped => "a change only an unmapped window may make",
        GuiFault.Docked => "a change a docked window may not make",
        GuiFault.NegativeDamage => "an update rectangle with negative values",
        GuiFault.ClipboardNotRequested => "clipboard data nobody asked for",
        GuiFault.ClipboardSuperseded => "clipboard data older than the last clipboard operation",
        GuiFault.LengthWarning => "a body length that is not the message type's (read as the type's)",
        _ => fault.ToString(),
    };

    /// <summary>The faults for which the daemon asks the user (class VERIFY).</summary>
    public static bool IsVerify(GuiFault fault) => fault is GuiFault.NegativeSize or GuiFault.EmptySize or GuiFault.ConflictingFlags or GuiFault.InvalidCursor;
}
