namespace Qubes.Platform.Xenstore;

/// <summary>
/// Message types of the xenstore wire protocol (<c>enum xsd_sockmsg_type</c> of
/// <c>xen/include/public/io/xs_wire.h</c>). Replies carry the request's type, or
/// <see cref="Error"/>; <see cref="WatchEvent"/> arrives unsolicited.
/// </summary>
public enum XenstoreMessageType : uint
{
    /// <summary>XS_CONTROL (formerly XS_DEBUG).</summary>
    Control = 0,

    /// <summary>XS_DIRECTORY: path\0 → child names, each NUL-terminated.</summary>
    Directory = 1,

    /// <summary>XS_READ: path\0 → value bytes.</summary>
    Read = 2,

    /// <summary>XS_GET_PERMS: path\0 → permission entries (n/r/w/b + domid), each NUL-terminated.</summary>
    GetPerms = 3,

    /// <summary>XS_WATCH: path\0token\0 → "OK\0".</summary>
    Watch = 4,

    /// <summary>XS_UNWATCH: path\0token\0 → "OK\0".</summary>
    Unwatch = 5,

    /// <summary>XS_TRANSACTION_START: "\0" → transaction id as decimal text.</summary>
    TransactionStart = 6,

    /// <summary>XS_TRANSACTION_END: "T\0" (commit) or "F\0" (abort); EAGAIN on conflict.</summary>
    TransactionEnd = 7,

    /// <summary>XS_INTRODUCE (dom0 tool stack).</summary>
    Introduce = 8,

    /// <summary>XS_RELEASE (dom0 tool stack).</summary>
    Release = 9,

    /// <summary>XS_GET_DOMAIN_PATH: domid\0 → "/local/domain/&lt;domid&gt;\0".</summary>
    GetDomainPath = 10,

    /// <summary>XS_WRITE: path\0value (value not NUL-terminated) → "OK\0".</summary>
    Write = 11,

    /// <summary>XS_MKDIR: path\0 → "OK\0".</summary>
    Mkdir = 12,

    /// <summary>XS_RM: path\0 → "OK\0".</summary>
    Rm = 13,

    /// <summary>XS_SET_PERMS: path\0 then permission entries, each NUL-terminated → "OK\0".</summary>
    SetPerms = 14,

    /// <summary>XS_WATCH_EVENT (server to client only): path\0token\0.</summary>
    WatchEvent = 15,

    /// <summary>XS_ERROR (server to client only): errno name, e.g. "EACCES\0".</summary>
    Error = 16,

    /// <summary>XS_IS_DOMAIN_INTRODUCED.</summary>
    IsDomainIntroduced = 17,

    /// <summary>XS_RESUME.</summary>
    Resume = 18,

    /// <summary>XS_SET_TARGET.</summary>
    SetTarget = 19,

    // 20 was XS_RESTRICT; it has been removed from the protocol and the number is not reused.

    /// <summary>XS_RESET_WATCHES.</summary>
    ResetWatches = 21,

    /// <summary>XS_DIRECTORY_PART.</summary>
    DirectoryPart = 22,
}
