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

    /// <summary>Most open transactions per connection.</summary>
    public const int MaxTransactionsPerConnection = 16;

    private void InitialiseStore()
    {
        _ = _store.Mkdir(0, null, "/local/domain");
        _ = _store.Mkdir(0, null, "/tool");
        CreateHome(0, "dom0");
    }

    /// <summary>/local/domain/N owned by N (so it can write below), with read-only domid and name.</summary>
    private void CreateHome(int id, string name)
    {
        string home = StoreService.HomeOf(id);
        _ = _store.Mkdir(0, null, home);
        _ = _store.SetPermissions(0, null, home, [new StorePermission(id, StoreAccess.None)]);
        StorePermission[] readOnly = [new StorePermission(0, StoreAccess.None), new StorePermission(id, StoreAccess.Read)];
        _ = _store.Write(0, null, home + "/domid", Encoding.ASCII.GetBytes(id.ToString(CultureInfo.InvariantCulture)));
        _ = _store.SetPermissions(0, null, home + "/domid", readOnly);
        _ = _store.Write(0, null, home + "/name", Encoding.ASCII.GetBytes(name));
        _ = _store.SetPermissions(0, null, home + "/name", readOnly);
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
        Errno e = ResolveStore(c, r, out StoreTransaction? tx, out string path);
        if (e != Errno.None)
        {
            return e;
        }
        var perms = new List<StorePermission>();
        var reader = new PayloadReader(r.Text);
        while (!reader.AtEnd && reader.TryReadCString(out ReadOnlySpan<byte> entry))
        {
            if (RequestParser.TryParsePermission(entry, out StorePermission p))
            {
                perms.Add(p);
            }
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
        if (c.Watches.Count >= MaxWatchesPerConnection)
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
        if (c.Transactions.Count >= MaxTransactionsPerConnection)
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
    /// Fires watches for a change of the main tree: a watch on P sees changes of P and below; a
    /// removal also reaches watches below the removed node (with the watch's own path), as in xenstored.
    /// Delivered regardless of the watcher's read access, as xenstored does for existence.
    /// </summary>
    private void OnStoreChanged(string path, bool removal)
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
                if (IsSelfOrBelow(w.AbsolutePath, path))
                {
                    eventPath = path;
                }
                else if (removal && IsSelfOrBelow(path, w.AbsolutePath))
                {
                    eventPath = w.AbsolutePath;
                }
                if (eventPath is null)
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

    private void FireSpecial(string specialPath)
    {
        foreach (BrokerConnection c in _connections)
        {
            if (c.Doomed)
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
