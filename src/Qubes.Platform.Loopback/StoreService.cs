using System;
using System.Collections.Generic;
using System.Globalization;
using Qubes.Interop.Linux;
using Qubes.Platform.Xenstore;

namespace Qubes.Platform.Loopback;

/// <summary>A store transaction: a private root that started as a snapshot, and the paths it touched.</summary>
internal sealed class StoreTransaction
{
    public StoreTransaction(uint id, int domain, StoreNode snapshot)
    {
        Id = id;
        Domain = domain;
        BaseRoot = snapshot;
        Root = snapshot;
    }

    public uint Id { get; }

    public int Domain { get; }

    /// <summary>The main tree as it was when the transaction started.</summary>
    public StoreNode BaseRoot { get; }

    /// <summary>The transaction's own view, with its changes.</summary>
    public StoreNode Root { get; set; }

    /// <summary>Every path read or written; commit fails if any of them changed in the main tree since the start.</summary>
    public HashSet<string> Touched { get; } = new(StringComparer.Ordinal);

    /// <summary>What the transaction holds while it is open, in bytes (paths it touched, values it wrote), charged to its domain.</summary>
    public long Cost { get; set; }

    /// <summary>Nodes it created, charged to its domain's node quota while it is open.</summary>
    public int Created { get; set; }
}

/// <summary>
/// The xenstore-like tree of the broker: permissions as in xenstored (owner and dom0 have full
/// access; others get their entry or the default), transactions by snapshot and per-path generation
/// check at commit, and a change callback from which the broker fires watches. All methods return an
/// errno instead of throwing; the caller's domain is whatever the broker knows, never a claim.
/// </summary>
internal sealed class StoreService
{
    /// <summary>Most nodes a domain other than dom0 may own (xenstored's default entry quota).</summary>
    public const int NodeQuota = 1000;

    /// <summary>Most distinct paths one transaction may touch.</summary>
    public const int MaxTouchedPaths = 2048;

    /// <summary>
    /// Most bytes the open transactions of one domain other than dom0 may hold together (the paths
    /// they touched and the values they wrote, each with <see cref="EntryOverhead"/>): charged as
    /// they grow, not at commit, so open transactions cannot grow the broker without bound.
    /// </summary>
    public const long TransactionQuota = 1 << 20;

    /// <summary>What one touched path or written value costs beyond its own bytes.</summary>
    public const int EntryOverhead = 64;

    private readonly Action<string, bool, StoreNode> _changed;
    private readonly Dictionary<int, int> _owned = new();
    private readonly Dictionary<int, (long Cost, int Created)> _pending = new();
    private StoreNode _root;
    private ulong _generation;

    /// <param name="changed">
    /// Called after each change of the main tree with the absolute path, whether it was a removal,
    /// and the node: as it is now, or for a removal as it was (watch events go only to domains that
    /// may read it).
    /// </param>
    public StoreService(Action<string, bool, StoreNode> changed)
    {
        _changed = changed;
        _root = new StoreNode([], [new StorePermission(0, StoreAccess.None)], StoreNode.NoChildren, 0);
    }

    public ulong Generation => _generation;

    public static string HomeOf(int domain) => "/local/domain/" + domain.ToString(CultureInfo.InvariantCulture);

    /// <summary>Makes a syntax-checked path absolute; null if the result is too long.</summary>
    public static string? Resolve(int caller, ReadOnlySpan<byte> path)
    {
        string text = System.Text.Encoding.ASCII.GetString(path);
        if (path[0] != (byte)'/')
        {
            text = HomeOf(caller) + "/" + text;
        }
        return text.Length <= XenstoreWire.MaxPathLength ? text : null;
    }

    public StoreTransaction StartTransaction(uint id, int domain) => new(id, domain, _root);

    public int OwnedBy(int domain) => _owned.TryGetValue(domain, out int n) ? n : 0;

    /// <summary>What the open transactions of <paramref name="domain"/> hold: bytes, and nodes created.</summary>
    public (long Cost, int Created) PendingOf(int domain) => _pending.GetValueOrDefault(domain);

    /// <summary>Charges a transaction's growth to its domain; ENOSPC, nothing charged, past the domain's quotas.</summary>
    private Errno Charge(StoreTransaction tx, long cost, int created)
    {
        (long pendingCost, int pendingCreated) = PendingOf(tx.Domain);
        if (tx.Domain != 0 && (pendingCost + cost > TransactionQuota || (created > 0 && OwnedBy(tx.Domain) + pendingCreated + created > NodeQuota)))
        {
            return Errno.ENOSPC;
        }
        tx.Cost += cost;
        tx.Created += created;
        _pending[tx.Domain] = (pendingCost + cost, pendingCreated + created);
        return Errno.None;
    }

    /// <summary>Gives back what an ended transaction held (commit, abort, or its connection closed).</summary>
    public void Release(StoreTransaction tx)
    {
        (long pendingCost, int pendingCreated) = PendingOf(tx.Domain);
        pendingCost -= tx.Cost;
        pendingCreated -= tx.Created;
        tx.Cost = 0;
        tx.Created = 0;
        if (pendingCost <= 0 && pendingCreated <= 0)
        {
            _pending.Remove(tx.Domain);
        }
        else
        {
            _pending[tx.Domain] = (pendingCost, pendingCreated);
        }
    }

    public Errno Read(int caller, StoreTransaction? tx, string path, out byte[] value)
    {
        value = [];
        Errno e = Readable(caller, tx, path, out StoreNode? node);
        if (node is null)
        {
            return e;
        }
        value = node.Value;
        return Errno.None;
    }

    public Errno Directory(int caller, StoreTransaction? tx, string path, out IEnumerable<string> names)
    {
        names = [];
        Errno e = Readable(caller, tx, path, out StoreNode? node);
        if (node is null)
        {
            return e;
        }
        names = node.Children.Keys;
        return Errno.None;
    }

    public Errno GetPermissions(int caller, StoreTransaction? tx, string path, out StorePermission[] permissions)
    {
        permissions = [];
        Errno e = Readable(caller, tx, path, out StoreNode? node);
        if (node is null)
        {
            return e;
        }
        permissions = node.Permissions;
        return Errno.None;
    }

    public Errno Write(int caller, StoreTransaction? tx, string path, ReadOnlySpan<byte> value) => Put(caller, tx, path, value.ToArray(), mkdir: false);

    public Errno Mkdir(int caller, StoreTransaction? tx, string path) => Put(caller, tx, path, [], mkdir: true);

    private Errno Put(int caller, StoreTransaction? tx, string path, byte[] value, bool mkdir)
    {
        if (value.Length > Wire.MaxValueLength)
        {
            return Errno.E2BIG;
        }
        string[] comps = Split(path);
        StoreNode root = RootOf(tx);
        StoreNode deepest = root;
        int depth = 0;
        while (depth < comps.Length && deepest.Children.TryGetValue(comps[depth], out StoreNode? next))
        {
            deepest = next;
            depth++;
        }
        if ((deepest.AccessOf(caller) & StoreAccess.Write) == 0)
        {
            return Errno.EACCES;
        }
        int created = comps.Length - depth;
        if (mkdir && created == 0)
        {
            return Touch(tx, path);
        }
        int newOwner = caller != 0 ? caller : deepest.Owner;
        if (tx is null && created > 0 && newOwner != 0 && caller != 0 && OwnedBy(newOwner) + created > NodeQuota)
        {
            return Errno.ENOSPC;
        }
        if (tx is not null)
        {
            for (int k = created > 0 ? depth : comps.Length; k <= comps.Length; k++)
            {
                Errno e = Touch(tx, Join(comps, k));
                if (e != Errno.None)
                {
                    return e;
                }
            }
            Errno charged = Charge(tx, value.Length + EntryOverhead, caller != 0 ? created : 0);
            if (charged != Errno.None)
            {
                return charged;
            }
        }
        ulong gen = tx is null ? ++_generation : 0;
        StoreNode newRoot = comps.Length == 0
            ? root.WithValue(value, gen)
            : Build(root, comps, 0, caller, value, gen);
        if (tx is not null)
        {
            tx.Root = newRoot;
            return Errno.None;
        }
        _root = newRoot;
        if (created > 0)
        {
            AddOwned(newOwner, created);
        }
        _changed(path, false, Lookup(newRoot, comps, comps.Length)!);
        return Errno.None;
    }

    private static StoreNode Build(StoreNode node, string[] comps, int i, int caller, byte[] value, ulong gen)
    {
        if (!node.Children.TryGetValue(comps[i], out StoreNode? child))
        {
            StorePermission[] perms = (StorePermission[])node.Permissions.Clone();
            if (caller != 0)
            {
                perms[0] = new StorePermission(caller, perms[0].Access);
            }
            child = new StoreNode([], perms, StoreNode.NoChildren, gen);
        }
        StoreNode replaced = i == comps.Length - 1 ? child.WithValue(value, gen) : Build(child, comps, i + 1, caller, value, gen);
        return node.WithChild(comps[i], replaced, gen);
    }

    public Errno Remove(int caller, StoreTransaction? tx, string path)
    {
        string[] comps = Split(path);
        if (comps.Length == 0)
        {
            return Errno.EINVAL;
        }
        StoreNode root = RootOf(tx);
        StoreNode? node = Lookup(root, comps, comps.Length);
        if (node is null)
        {
            // As xenstored: removing a missing node is fine if its parent exists.
            Errno t = Touch(tx, path);
            if (t != Errno.None)
            {
                return t;
            }
            return Lookup(root, comps, comps.Length - 1) is null ? Errno.ENOENT : Errno.None;
        }
        if ((node.AccessOf(caller) & StoreAccess.Write) == 0)
        {
            return Errno.EACCES;
        }
        if (tx is not null)
        {
            Errno e = Touch(tx, Join(comps, comps.Length - 1));
            if (e == Errno.None)
            {
                e = TouchSubtree(tx, path, node);
            }
            if (e != Errno.None)
            {
                return e;
            }
            tx.Root = Update(root, comps, 0, static _ => null, 0);
            return Errno.None;
        }
        ulong gen = ++_generation;
        SubtractOwned(node);
        _root = Update(root, comps, 0, static _ => null, gen);
        _changed(path, true, node);
        return Errno.None;
    }

    public Errno SetPermissions(int caller, StoreTransaction? tx, string path, StorePermission[] permissions)
    {
        if (permissions.Length == 0)
        {
            return Errno.EINVAL;
        }
        string[] comps = Split(path);
        StoreNode root = RootOf(tx);
        StoreNode? node = Lookup(root, comps, comps.Length);
        if (node is null)
        {
            return Errno.ENOENT;
        }
        if (caller != 0 && caller != node.Owner)
        {
            return Errno.EACCES;
        }
        if (caller != 0 && permissions[0].Domain != node.Owner)
        {
            return Errno.EPERM;
        }
        Errno e = Touch(tx, path);
        if (e != Errno.None)
        {
            return e;
        }
        ulong gen = tx is null ? ++_generation : 0;
        StorePermission[] copy = (StorePermission[])permissions.Clone();
        StoreNode newRoot = comps.Length == 0 ? root.WithPermissions(copy, gen) : Update(root, comps, 0, n => n!.WithPermissions(copy, gen), gen);
        if (tx is not null)
        {
            tx.Root = newRoot;
            return Errno.None;
        }
        _root = newRoot;
        if (node.Owner != copy[0].Domain)
        {
            AddOwned(node.Owner, -1);
            AddOwned(copy[0].Domain, 1);
        }
        _changed(path, false, Lookup(newRoot, comps, comps.Length)!);
        return Errno.None;
    }

    /// <summary>Commits (EAGAIN on conflict, nothing applied) or, with <paramref name="commit"/> false, just drops the transaction.</summary>
    public Errno EndTransaction(StoreTransaction tx, bool commit)
    {
        Release(tx);
        if (!commit)
        {
            return Errno.None;
        }
        var createdByOwner = new Dictionary<int, int>();
        foreach (string path in tx.Touched)
        {
            StoreNode? before = Lookup(tx.BaseRoot, path);
            StoreNode? now = Lookup(_root, path);
            if ((before is null) != (now is null) || (before is not null && before.Generation != now!.Generation))
            {
                return Errno.EAGAIN;
            }
            StoreNode? mine = Lookup(tx.Root, path);
            if (now is null && mine is not null && mine.Owner != 0)
            {
                createdByOwner[mine.Owner] = createdByOwner.GetValueOrDefault(mine.Owner) + 1;
            }
        }
        foreach (KeyValuePair<int, int> kv in createdByOwner)
        {
            if (kv.Key == tx.Domain && tx.Domain != 0 && OwnedBy(kv.Key) + kv.Value > NodeQuota)
            {
                return Errno.ENOSPC;
            }
        }
        var paths = new List<string>(tx.Touched);
        paths.Sort(static (a, b) =>
        {
            int da = a == "/" ? 0 : a.AsSpan().Count('/');
            int db = b == "/" ? 0 : b.AsSpan().Count('/');
            return da != db ? da.CompareTo(db) : string.CompareOrdinal(a, b);
        });
        ulong gen = ++_generation;
        foreach (string path in paths)
        {
            StoreNode? mine = Lookup(tx.Root, path);
            string[] comps = Split(path);
            StoreNode? now = Lookup(_root, comps, comps.Length);
            if (mine is null)
            {
                if (now is not null && comps.Length > 0)
                {
                    SubtractOwned(now);
                    _root = Update(_root, comps, 0, static _ => null, gen);
                    _changed(path, true, now);
                }
                continue;
            }
            if (now is not null && ReferenceEquals(now.Value, mine.Value) && ReferenceEquals(now.Permissions, mine.Permissions))
            {
                continue;
            }
            if (comps.Length == 0)
            {
                _root = new StoreNode(mine.Value, mine.Permissions, _root.Children, gen);
            }
            else
            {
                if (Lookup(_root, comps, comps.Length - 1) is null)
                {
                    continue; // parent gone: impossible, since a created child always touches its parent
                }
                _root = Update(_root, comps, 0, n => n is null
                    ? new StoreNode(mine.Value, mine.Permissions, StoreNode.NoChildren, gen)
                    : new StoreNode(mine.Value, mine.Permissions, n.Children, gen), gen);
            }
            if (now is null)
            {
                AddOwned(mine.Owner, 1);
            }
            else if (now.Owner != mine.Owner)
            {
                AddOwned(now.Owner, -1);
                AddOwned(mine.Owner, 1);
            }
            _changed(path, false, Lookup(_root, comps, comps.Length)!);
        }
        return Errno.None;
    }

    private StoreNode RootOf(StoreTransaction? tx) => tx is null ? _root : tx.Root;

    private Errno Touch(StoreTransaction? tx, string path)
    {
        if (tx is null || tx.Touched.Contains(path))
        {
            return Errno.None;
        }
        if (tx.Touched.Count >= MaxTouchedPaths)
        {
            return Errno.ENOSPC;
        }
        Errno e = Charge(tx, (path.Length * sizeof(char)) + EntryOverhead, 0);
        if (e == Errno.None)
        {
            tx.Touched.Add(path);
        }
        return e;
    }

    private Errno TouchSubtree(StoreTransaction tx, string path, StoreNode node)
    {
        Errno e = Touch(tx, path);
        if (e != Errno.None)
        {
            return e;
        }
        foreach (KeyValuePair<string, StoreNode> child in node.Children)
        {
            e = TouchSubtree(tx, path == "/" ? "/" + child.Key : path + "/" + child.Key, child.Value);
            if (e != Errno.None)
            {
                return e;
            }
        }
        return Errno.None;
    }

    private void AddOwned(int domain, int delta)
    {
        int n = OwnedBy(domain) + delta;
        if (n <= 0)
        {
            _owned.Remove(domain);
        }
        else
        {
            _owned[domain] = n;
        }
    }

    private void SubtractOwned(StoreNode node)
    {
        AddOwned(node.Owner, -1);
        foreach (StoreNode child in node.Children.Values)
        {
            SubtractOwned(child);
        }
    }

    private static StoreNode Update(StoreNode node, string[] comps, int i, Func<StoreNode?, StoreNode?> leaf, ulong gen)
    {
        node.Children.TryGetValue(comps[i], out StoreNode? child);
        StoreNode? replaced;
        if (i == comps.Length - 1)
        {
            replaced = leaf(child);
        }
        else
        {
            if (child is null)
            {
                return node;
            }
            replaced = Update(child, comps, i + 1, leaf, gen);
        }
        return ReferenceEquals(replaced, child) ? node : node.WithChild(comps[i], replaced, gen);
    }

    /// <summary>
    /// Finds a node the caller may read. As xenstored does, a missing node is reported as EACCES
    /// rather than ENOENT when the caller may not read its nearest existing ancestor, so that the
    /// answer does not reveal what exists where the caller cannot look.
    /// </summary>
    private Errno Readable(int caller, StoreTransaction? tx, string path, out StoreNode? node)
    {
        node = null;
        Errno e = Touch(tx, path);
        if (e != Errno.None)
        {
            return e;
        }
        StoreNode root = RootOf(tx);
        string[] comps = Split(path);
        StoreNode? found = Lookup(root, comps, comps.Length);
        if (found is null)
        {
            for (int count = comps.Length - 1; count >= 0; count--)
            {
                if (Lookup(root, comps, count) is StoreNode ancestor)
                {
                    return (ancestor.AccessOf(caller) & StoreAccess.Read) == 0 ? Errno.EACCES : Errno.ENOENT;
                }
            }
            return Errno.ENOENT;
        }
        if ((found.AccessOf(caller) & StoreAccess.Read) == 0)
        {
            return Errno.EACCES;
        }
        node = found;
        return Errno.None;
    }

    private static StoreNode? Lookup(StoreNode root, string path)
    {
        string[] comps = Split(path);
        return Lookup(root, comps, comps.Length);
    }

    private static StoreNode? Lookup(StoreNode root, string[] comps, int count)
    {
        StoreNode node = root;
        for (int i = 0; i < count; i++)
        {
            if (!node.Children.TryGetValue(comps[i], out StoreNode? child))
            {
                return null;
            }
            node = child;
        }
        return node;
    }

    private static string[] Split(string absolutePath) =>
        absolutePath == "/" ? [] : absolutePath[1..].Split('/');

    private static string Join(string[] comps, int count) =>
        count == 0 ? "/" : "/" + string.Join('/', comps, 0, count);
}
