using System;
using System.Collections.Generic;
using System.Globalization;
using System.Text;
using Qubes.Interop.Linux;
using Qubes.Platform.Xenstore;

namespace Qubes.Platform.Loopback;

public sealed partial class LoopbackBroker
{
    /// <summary>Most watches one connection may hold (xenstored's default).</summary>
    public const int MaxWatchesPerConnection = 128;

    /// <summary>Most watches one domain other than dom0 may hold over all its connections.</summary>
    public const int MaxWatchesPerDomain = 256;

    /// <summary>Most open transactions per connection.</summary>
    public const int MaxTransactionsPerConnection = 16;

    /// <summary>Most open transactions one domain other than dom0 may hold over all its connections.</summary>
    public const int MaxTransactionsPerDomain = 64;

    /// <summary>
    /// Who gets the events of the special watches besides dom0 (XSA-115: the presence of other
    /// domains is not every domain's business); dom0 grants read access with SET_PERMS on the
    /// special path.
    /// </summary>
    private readonly Dictionary<string, StorePermission[]> _specialPermissions = new(StringComparer.Ordinal)
    {
        [StorePath.IntroduceDomain] = [new StorePermission(0, StoreAccess.None)],
        [StorePath.ReleaseDomain] = [new StorePermission(0, StoreAccess.None)],
    };

    private void InitialiseStore()
    {
        _ = _store.Mkdir(0, null, "/local/domain");
        _ = _store.Mkdir(0, null, "/tool");
        CreateHome(0, "dom0");
    }

    /// <summary>
    /// /local/domain/N as the toolstack makes it on Xen: the home itself, <c>domid</c> and
    /// <c>name</c> owned by dom0 and only readable by N (so N cannot remove or rewrite them), and
    /// <c>data</c> owned by N, where it publishes what it offers (vchan servers).
    /// </summary>
    private void CreateHome(int id, string name)
    {
        string home = StoreService.HomeOf(id);
        StorePermission[] readOnly = [new StorePermission(0, StoreAccess.None), new StorePermission(id, StoreAccess.Read)];
        _ = _store.Mkdir(0, null, home);
        _ = _store.SetPermissions(0, null, home, readOnly);
        _ = _store.Write(0, null, home + "/domid", Encoding.ASCII.GetBytes(id.ToString(CultureInfo.InvariantCulture)));
        _ = _store.SetPermissions(0, null, home + "/domid", readOnly);
        _ = _store.Write(0, null, home + "/name", Encoding.ASCII.GetBytes(name));
        _ = _store.SetPermissions(0, null, home + "/name", readOnly);
        _ = _store.Mkdir(0, null, home + "/data");
        _ = _store.SetPermissions(0, null, home + "/data", [new StorePermission(id, StoreAccess.None)]);
    }

    private Errno ResolveStore(BrokerConnection c, in BrokerRequest r, out StoreTransaction? tx, out string path)
    {
        tx = null;
        path = "";
        if (r.TransactionId != 0 && !c.Transactions.TryGetValue(r.TransactionId, out tx))
        {
            return Errno.ENOENT;
        }
        string? resolved = StoreService.Resolve(c.Domain.Id, r.Path);
        if (resolved is null)
        {
            return Errno.EINVAL;
        }
        path = resolved;
        return Errno.None;
    }

    private Errno StoreRead(BrokerConnection c, in BrokerRequest r)
    {
        Errno e = ResolveStore(c, r, out StoreTransaction? tx, out string path);
        if (e == Errno.None)
        {
            e = _store.Read(c.Domain.Id, tx, path, out byte[] value);
            if (e == Errno.None)
            {
                Send(c, r.Type, r.RequestId, r.TransactionId, value, []);
            }
        }
        return e;
    }

    private Errno StoreDirectory(BrokerConnection c, in BrokerRequest r)
    {
        Errno e = ResolveStore(c, r, out StoreTransaction? tx, out string path);
        if (e == Errno.None)
        {
            e = _store.Directory(c.Domain.Id, tx, path, out IEnumerable<string> names);
            if (e == Errno.None)
            {
                var payload = new List<byte>();
                foreach (string name in names)
                {
                    payload.AddRange(Encoding.ASCII.GetBytes(name));
                    payload.Add(0);
                }
                if (payload.Count > XenstoreWire.MaxPayload)
                {
                    return Errno.E2BIG;
                }
                Send(c, r.Type, r.RequestId, r.TransactionId, payload.ToArray(), []);
            }
        }
        return e;
    }

    private Errno StoreGetPermissions(BrokerConnection c, in BrokerRequest r)
    {
        Errno e = ResolveStore(c, r, out StoreTransaction? tx, out string path);
        if (e == Errno.None)
        {
            e = _store.GetPermissions(c.Domain.Id, tx, path, out StorePermission[] perms);
            if (e == Errno.None)
            {
                var text = new StringBuilder();
                foreach (StorePermission p in perms)
                {
                    text.Append(p.ToString()).Append('\0');
                }
                byte[] payload = Encoding.ASCII.GetBytes(text.ToString());
                if (payload.Length > XenstoreWire.MaxPayload)
                {
                    return Errno.E2BIG;
                }
                Send(c, r.Type, r.RequestId, r.TransactionId, payload, []);
            }
        }
        return e;
    }

    /// <summary>XS_WRITE, XS_MKDIR and XS_RM: resolve the path, change the tree, reply OK.</summary>
    private Errno StoreChange(BrokerConnection c, in BrokerRequest r)
    {
        Errno e = ResolveStore(c, r, out StoreTransaction? tx, out string path);
        if (e == Errno.None)
        {
            e = r.Type switch
            {
                MessageType.Write => _store.Write(c.Domain.Id, tx, path, r.Text),
                MessageType.Mkdir => _store.Mkdir(c.Domain.Id, tx, path),
                _ => _store.Remove(c.Domain.Id, tx, path),
            };
            if (e == Errno.None)
            {
                ReplyOk(c, r);
            }
        }
        return e;
    }

    private Errno StoreSetPermissions(BrokerConnection c, in BrokerRequest r)
    {
        var perms = new List<StorePermission>();
        var reader = new PayloadReader(r.Text);
        while (!reader.AtEnd && reader.TryReadCString(out ReadOnlySpan<byte> entry))
        {
            if (RequestParser.TryParsePermission(entry, out StorePermission p))
            {
                perms.Add(p);
            }
        }
        if (r.Path.Length > 0 && r.Path[0] == (byte)'@')
        {
            string special = Encoding.ASCII.GetString(r.Path);
            if (!_specialPermissions.ContainsKey(special))
            {
                return Errno.ENOENT;
            }
            if (c.Domain.Id != 0)
            {
                return Errno.EACCES;
            }
            if (perms.Count == 0)
            {
                return Errno.EINVAL;
            }
            _specialPermissions[special] = [.. perms];
            ReplyOk(c, r);
            return Errno.None;
        }
        Errno e = ResolveStore(c, r, out StoreTransaction? tx, out string path);
        if (e != Errno.None)
        {
            return e;
        }
        e = _store.SetPermissions(c.Domain.Id, tx, path, perms.ToArray());
        if (e == Errno.None)
        {
            ReplyOk(c, r);
        }
        return e;
    }

    private Errno StoreWatch(BrokerConnection c, in BrokerRequest r)
    {
        string sent = Encoding.ASCII.GetString(r.Path);
        string? absolute = sent[0] == '@' ? sent : StoreService.Resolve(c.Domain.Id, r.Path);
        if (absolute is null)
        {
            return Errno.EINVAL;
        }
        foreach (Watch w in c.Watches)
        {
            if (w.AbsolutePath == absolute && r.Text.SequenceEqual(w.Token))
            {
                return Errno.EEXIST;
            }
        }
        if (c.Watches.Count >= MaxWatchesPerConnection || (c.Domain.Id != 0 && CountOf(c.Domain, static x => x.Watches.Count) >= MaxWatchesPerDomain))
        {
            return Errno.ENOSPC;
        }
        var watch = new Watch(sent, absolute, r.Text.ToArray(), sent[0] != '/' && sent[0] != '@');
        c.Watches.Add(watch);
        ReplyOk(c, r);
        SendWatchEvent(c, sent, watch.Token);
        return Errno.None;
    }

    private Errno StoreUnwatch(BrokerConnection c, in BrokerRequest r)
    {
        string sent = Encoding.ASCII.GetString(r.Path);
        string? absolute = sent[0] == '@' ? sent : StoreService.Resolve(c.Domain.Id, r.Path);
        for (int i = 0; i < c.Watches.Count; i++)
        {
            Watch w = c.Watches[i];
            if (w.AbsolutePath == absolute && r.Text.SequenceEqual(w.Token))
            {
                c.Watches.RemoveAt(i);
                ReplyOk(c, r);
                return Errno.None;
            }
        }
        return Errno.ENOENT;
    }

    private Errno StoreTransactionStart(BrokerConnection c, in BrokerRequest r)
    {
        if (c.Transactions.Count >= MaxTransactionsPerConnection || (c.Domain.Id != 0 && CountOf(c.Domain, static x => x.Transactions.Count) >= MaxTransactionsPerDomain))
        {
            return Errno.ENOSPC;
        }
        uint id;
        do
        {
            id = _nextTransaction;
            _nextTransaction = unchecked(_nextTransaction + 1);
        }
        while (id == 0 || c.Transactions.ContainsKey(id));
        c.Transactions.Add(id, _store.StartTransaction(id, c.Domain.Id));
        byte[] payload = Encoding.ASCII.GetBytes(id.ToString(CultureInfo.InvariantCulture) + "\0");
        Send(c, r.Type, r.RequestId, 0, payload, []);
        return Errno.None;
    }

    private Errno StoreTransactionEnd(BrokerConnection c, in BrokerRequest r)
    {
        if (!c.Transactions.Remove(r.TransactionId, out StoreTransaction? tx))
        {
            return Errno.ENOENT;
        }
        Errno e = _store.EndTransaction(tx, r.Commit);
        if (e == Errno.None)
        {
            ReplyOk(c, r);
        }
        return e;
    }

    private Errno StoreGetDomainPath(BrokerConnection c, in BrokerRequest r)
    {
        byte[] payload = Encoding.ASCII.GetBytes(StoreService.HomeOf((int)r.Arg0) + "\0");
        Send(c, r.Type, r.RequestId, 0, payload, []);
        return Errno.None;
    }

    /// <summary>
    /// The bytes the open transactions of a domain hold (for tests and diagnostics: read it while
    /// the broker is idle, since the broker's thread owns the store).
    /// </summary>
    internal long PendingTransactionBytes(int domain) => _store.PendingOf(domain).Cost;

    /// <summary>How many of something the connections of a domain hold together.</summary>
    private static int CountOf(BrokerDomain d, Func<BrokerConnection, int> count)
    {
        int n = 0;
        foreach (BrokerConnection c in d.Connections)
        {
            n += count(c);
        }
        return n;
    }

    /// <summary>
    /// Fires watches for a change of the main tree: a watch on P sees changes of P and below; a
    /// removal also reaches watches below the removed node (with the watch's own path), as in
    /// xenstored. Only domains that may read the node get the event (XSA-115): for a removal, the
    /// node as it was, or the node at the watch's own path within it.
    /// </summary>
    private void OnStoreChanged(string path, bool removal, StoreNode node)
    {
        foreach (BrokerConnection c in _connections)
        {
            if (c.Doomed)
            {
                continue;
            }
            foreach (Watch w in c.Watches)
            {
                if (w.AbsolutePath[0] == '@')
                {
                    continue;
                }
                string? eventPath = null;
                StoreNode seen = node;
                if (IsSelfOrBelow(w.AbsolutePath, path))
                {
                    eventPath = path;
                }
                else if (removal && IsSelfOrBelow(path, w.AbsolutePath))
                {
                    eventPath = w.AbsolutePath;
                    seen = Below(node, path, w.AbsolutePath) ?? node;
                }
                if (eventPath is null || (seen.AccessOf(c.Domain.Id) & StoreAccess.Read) == 0)
                {
                    continue;
                }
                if (w.Relative)
                {
                    string home = StoreService.HomeOf(c.Domain.Id) + "/";
                    if (eventPath.Length > home.Length && eventPath.StartsWith(home, StringComparison.Ordinal))
                    {
                        eventPath = eventPath[home.Length..];
                    }
                }
                SendWatchEvent(c, eventPath, w.Token);
            }
        }
    }

    /// <summary>The node at <paramref name="path"/> inside the subtree <paramref name="top"/> (at <paramref name="topPath"/>), or null.</summary>
    private static StoreNode? Below(StoreNode top, string topPath, string path)
    {
        StoreNode node = top;
        foreach (string part in path[(topPath == "/" ? 1 : topPath.Length + 1)..].Split('/'))
        {
            if (!node.Children.TryGetValue(part, out StoreNode? child))
            {
                return null;
            }
            node = child;
        }
        return node;
    }

    /// <summary>Fires a special watch for dom0 and for the domains its permissions let read it.</summary>
    private void FireSpecial(string specialPath)
    {
        StorePermission[] permissions = _specialPermissions[specialPath];
        foreach (BrokerConnection c in _connections)
        {
            if (c.Doomed || !MayRead(permissions, c.Domain.Id))
            {
                continue;
            }
            foreach (Watch w in c.Watches)
            {
                if (w.AbsolutePath == specialPath)
                {
                    SendWatchEvent(c, specialPath, w.Token);
                }
            }
        }
    }

    private static bool MayRead(StorePermission[] permissions, int domain)
    {
        if (domain == 0 || domain == permissions[0].Domain)
        {
            return true;
        }
        for (int i = 1; i < permissions.Length; i++)
        {
            if (permissions[i].Domain == domain)
            {
                return (permissions[i].Access & StoreAccess.Read) != 0;
            }
        }
        return (permissions[0].Access & StoreAccess.Read) != 0;
    }

    private void SendWatchEvent(BrokerConnection c, string path, byte[] token)
    {
        int length = path.Length + 1 + token.Length + 1;
        if (length > XenstoreWire.MaxPayload)
        {
            return;
        }
        byte[] payload = new byte[length];
        Encoding.ASCII.GetBytes(path, payload);
        token.CopyTo(payload, path.Length + 1);
        Send(c, MessageType.WatchEvent, 0, 0, payload, []);
    }

    private static bool IsSelfOrBelow(string ancestor, string path) =>
        path.Length >= ancestor.Length
        && path.StartsWith(ancestor, StringComparison.Ordinal)
        && (path.Length == ancestor.Length || ancestor == "/" || path[ancestor.Length] == '/');
}
