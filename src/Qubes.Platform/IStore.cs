using System;
using Qubes.Interop.Linux;
using System.Collections.Generic;

namespace Qubes.Platform;

/// <summary>
/// A connection to the xenstore-like configuration tree. Paths are absolute (<c>/local/domain/1/x</c>)
/// or relative to this domain's home <c>/local/domain/&lt;own id&gt;</c>. Transaction id 0 means none.
/// All failures are <see cref="StoreException"/> with the store's errno.
/// </summary>
public interface IStore : IDisposable
{
    /// <summary>A descriptor that polls readable when watch events may be pending.</summary>
    int Fd { get; }

    /// <summary>Reads a value; null if the node does not exist.</summary>
    string? Read(string path, uint transaction = 0);

    /// <summary>Writes a value, creating the node and missing parents.</summary>
    void Write(string path, string value, uint transaction = 0);

    /// <summary>Creates a node (and missing parents) with an empty value if it does not exist.</summary>
    void Mkdir(string path, uint transaction = 0);

    /// <summary>Removes a node and its children. Removing a missing node is not an error.</summary>
    void Remove(string path, uint transaction = 0);

    /// <summary>Lists a node's children; null if the node does not exist.</summary>
    IReadOnlyList<string>? Directory(string path, uint transaction = 0);

    /// <summary>Reads a node's permissions: the owner entry first, then per-domain entries.</summary>
    IReadOnlyList<StorePermission> GetPermissions(string path, uint transaction = 0);

    /// <summary>Replaces a node's permissions (owner entry first).</summary>
    void SetPermissions(string path, IReadOnlyList<StorePermission> permissions, uint transaction = 0);

    /// <summary>Starts a transaction and returns its id.</summary>
    uint TransactionStart();

    /// <summary>Ends a transaction. Returns false if it must be retried (EAGAIN: a conflicting change committed first).</summary>
    bool TransactionEnd(uint transaction, bool commit);

    /// <summary>
    /// Watches <paramref name="path"/> and everything below it (or a special path such as
    /// <c>@releaseDomain</c>). One event fires at once on registration, then one per change.
    /// </summary>
    void Watch(string path, string token);

    /// <summary>Removes a watch.</summary>
    void Unwatch(string path, string token);

    /// <summary>Returns a pending watch event without blocking, if any.</summary>
    bool TryReadWatchEvent(out string path, out string token);

    /// <summary>
    /// Sends every request, then reads every answer: one round trip for the lot (the loopback
    /// broker; the Xen connections still go one request at a time). The store handles a
    /// connection's requests one at a time in the order they came, so each sees the effects of the
    /// ones before it. <paramref name="transaction"/> applies to every request but watches. A
    /// request that fails comes back as its errno (ENOENT for a missing node, EAGAIN for a commit to
    /// retry) instead of throwing; a broken connection throws <see cref="PlatformException"/>.
    /// </summary>
    StoreAnswer[] Batch(ReadOnlySpan<StoreRequest> requests, uint transaction = 0);
}

/// <summary>What a <see cref="StoreRequest"/> asks for.</summary>
public enum StoreOperation
{
    Read,
    Write,
    Remove,
    Directory,
    SetPermissions,
    Watch,
    /// <summary>Ends the batch's transaction, committing it (<see cref="StoreRequest.Commit"/>).</summary>
    Commit,
}

/// <summary>One request of <see cref="IStore.Batch"/>; made with the static methods.</summary>
public readonly record struct StoreRequest(StoreOperation Operation, string Path, string? Value = null, IReadOnlyList<StorePermission>? Permissions = null)
{
    public static StoreRequest Read(string path) => new(StoreOperation.Read, path);

    public static StoreRequest Write(string path, string value) => new(StoreOperation.Write, path, value);

    public static StoreRequest Remove(string path) => new(StoreOperation.Remove, path);

    public static StoreRequest Directory(string path) => new(StoreOperation.Directory, path);

    public static StoreRequest SetPermissions(string path, IReadOnlyList<StorePermission> permissions) => new(StoreOperation.SetPermissions, path, null, permissions);

    /// <summary>A watch with <paramref name="token"/> (never part of a transaction).</summary>
    public static StoreRequest Watch(string path, string token) => new(StoreOperation.Watch, path, token);

    /// <summary>Commits the batch's transaction; its answer is EAGAIN when the transaction must be retried.</summary>
    public static StoreRequest Commit() => new(StoreOperation.Commit, "");
}

/// <summary>The answer to one <see cref="StoreRequest"/>: an errno, or the value (read) or children (directory).</summary>
public readonly record struct StoreAnswer(Errno Error, string? Value, IReadOnlyList<string>? Children)
{
    public bool Ok => Error == Errno.None;

    /// <summary>Throws <see cref="StoreException"/> with this answer's errno unless it is a success.</summary>
    public void ThrowIfFailed(string operation, string path)
    {
        if (!Ok)
        {
            throw new StoreException(operation, path, Error);
        }
    }
}

/// <summary>Access rights of one store permission entry.</summary>
[Flags]
public enum StoreAccess
{
    None = 0,
    Read = 1,
    Write = 2,
    Both = Read | Write,
}

/// <summary>
/// One entry of a node's permission list. The first entry names the owner (who always has full
/// access) and the access of every domain not listed; later entries grant access to one domain.
/// Written on the wire as a letter (n, r, w, b) followed by the domain id.
/// </summary>
public readonly record struct StorePermission(int Domain, StoreAccess Access)
{
    /// <summary>The wire form, e.g. <c>r5</c>.</summary>
    public override string ToString() => Letter(Access) + Domain.ToString(System.Globalization.CultureInfo.InvariantCulture);

    /// <summary>Parses the wire form; false if malformed.</summary>
    public static bool TryParse(ReadOnlySpan<char> text, out StorePermission permission)
    {
        permission = default;
        if (text.Length < 2)
        {
            return false;
        }
        StoreAccess access;
        switch (text[0])
        {
            case 'n': access = StoreAccess.None; break;
            case 'r': access = StoreAccess.Read; break;
            case 'w': access = StoreAccess.Write; break;
            case 'b': access = StoreAccess.Both; break;
            default: return false;
        }
        ReadOnlySpan<char> digits = text[1..];
        foreach (char c in digits)
        {
            if (c < '0' || c > '9')
            {
                return false;
            }
        }
        if (!int.TryParse(digits, System.Globalization.NumberStyles.None, System.Globalization.CultureInfo.InvariantCulture, out int domain)
            || !DomainIds.IsValid(domain))
        {
            return false;
        }
        permission = new StorePermission(domain, access);
        return true;
    }

    private static string Letter(StoreAccess a) => a switch
    {
        StoreAccess.Read => "r",
        StoreAccess.Write => "w",
        StoreAccess.Both => "b",
        _ => "n",
    };
}
