using System;
using System.Collections.Generic;
using System.Text;
using Qubes.Interop.Linux;

namespace Qubes.Platform.Xenstore;

/// <summary>
/// <see cref="IStore"/> over any <see cref="IXenstoreTransport"/>: the loopback broker, xenstored's
/// socket or the xenbus device. <see cref="Fd"/> polls readable when watch events arrive; events
/// that came in during a request are already queued, so drain <see cref="TryReadWatchEvent"/> until
/// it returns false before polling again.
/// </summary>
public sealed class XenstoreClient : IStore
{
    private readonly bool _ownsTransport;

    /// <summary>A store client on <paramref name="transport"/>, which it disposes with itself if <paramref name="ownsTransport"/>.</summary>
    public XenstoreClient(IXenstoreTransport transport, bool ownsTransport = true)
    {
        ArgumentNullException.ThrowIfNull(transport);
        Transport = transport;
        _ownsTransport = ownsTransport;
    }

    /// <summary>The connection requests go through.</summary>
    public IXenstoreTransport Transport { get; }

    /// <inheritdoc/>
    public int Fd => Transport.Fd;

    /// <inheritdoc/>
    public string? Read(string path, uint transaction = 0)
    {
        XenstoreReply reply = Transport.Request(XenstoreMessageType.Read, transaction, XenstorePayload.Strings(path));
        if (reply.Error == Errno.ENOENT)
        {
            return null;
        }
        Check(reply, "read", path);
        return Encoding.UTF8.GetString(reply.Payload);
    }

    /// <inheritdoc/>
    public void Write(string path, string value, uint transaction = 0) =>
        Check(Transport.Request(XenstoreMessageType.Write, transaction, XenstorePayload.PathAndValue(path, value)), "write", path);

    /// <inheritdoc/>
    public void Mkdir(string path, uint transaction = 0) =>
        Check(Transport.Request(XenstoreMessageType.Mkdir, transaction, XenstorePayload.Strings(path)), "mkdir", path);

    /// <inheritdoc/>
    public void Remove(string path, uint transaction = 0)
    {
        XenstoreReply reply = Transport.Request(XenstoreMessageType.Rm, transaction, XenstorePayload.Strings(path));
        if (reply.Error != Errno.ENOENT)
        {
            Check(reply, "rm", path);
        }
    }

    /// <inheritdoc/>
    public IReadOnlyList<string>? Directory(string path, uint transaction = 0)
    {
        XenstoreReply reply = Transport.Request(XenstoreMessageType.Directory, transaction, XenstorePayload.Strings(path));
        if (reply.Error == Errno.ENOENT)
        {
            return null;
        }
        Check(reply, "directory", path);
        return XenstorePayload.Split(reply.Payload);
    }

    /// <inheritdoc/>
    public IReadOnlyList<StorePermission> GetPermissions(string path, uint transaction = 0)
    {
        XenstoreReply reply = Transport.Request(XenstoreMessageType.GetPerms, transaction, XenstorePayload.Strings(path));
        Check(reply, "get-perms", path);
        List<string> entries = XenstorePayload.Split(reply.Payload);
        var result = new List<StorePermission>(entries.Count);
        foreach (string entry in entries)
        {
            if (!StorePermission.TryParse(entry, out StorePermission p))
            {
                throw new StoreException("get-perms", path, Errno.EPROTO);
            }
            result.Add(p);
        }
        if (result.Count == 0)
        {
            throw new StoreException("get-perms", path, Errno.EPROTO);
        }
        return result;
    }

    /// <inheritdoc/>
    public void SetPermissions(string path, IReadOnlyList<StorePermission> permissions, uint transaction = 0)
    {
        ArgumentNullException.ThrowIfNull(permissions);
        if (permissions.Count == 0)
        {
            throw new StoreException("set-perms", path, Errno.EINVAL);
        }
        Check(Transport.Request(XenstoreMessageType.SetPerms, transaction, XenstorePayload.Permissions(path, permissions)), "set-perms", path);
    }

    /// <inheritdoc/>
    public uint TransactionStart()
    {
        XenstoreReply reply = Transport.Request(XenstoreMessageType.TransactionStart, 0, XenstorePayload.NoArgument);
        Check(reply, "transaction-start", "");
        if (!XenstorePayload.TryParseTransactionId(reply.Payload, out uint id))
        {
            throw new StoreException("transaction-start", "", Errno.EPROTO);
        }
        return id;
    }

    /// <inheritdoc/>
    public bool TransactionEnd(uint transaction, bool commit)
    {
        XenstoreReply reply = Transport.Request(XenstoreMessageType.TransactionEnd, transaction, commit ? XenstorePayload.Commit : XenstorePayload.Abort);
        if (reply.Error == Errno.EAGAIN)
        {
            return false;
        }
        Check(reply, "transaction-end", "");
        return true;
    }

    /// <inheritdoc/>
    public void Watch(string path, string token) =>
        Check(Transport.Request(XenstoreMessageType.Watch, 0, XenstorePayload.Strings(path, token)), "watch", path);

    /// <inheritdoc/>
    public void Unwatch(string path, string token) =>
        Check(Transport.Request(XenstoreMessageType.Unwatch, 0, XenstorePayload.Strings(path, token)), "unwatch", path);

    /// <inheritdoc/>
    public bool TryReadWatchEvent(out string path, out string token) => Transport.TryReadWatchEvent(out path, out token);

    /// <inheritdoc/>
    public StoreAnswer[] Batch(ReadOnlySpan<StoreRequest> requests, uint transaction = 0)
    {
        var wire = new XenstoreRequest[requests.Length];
        for (int i = 0; i < requests.Length; i++)
        {
            StoreRequest r = requests[i];
            wire[i] = r.Operation switch
            {
                StoreOperation.Read => new(XenstoreMessageType.Read, transaction, XenstorePayload.Strings(r.Path)),
                StoreOperation.Write => new(XenstoreMessageType.Write, transaction, XenstorePayload.PathAndValue(r.Path, r.Value ?? "")),
                StoreOperation.Remove => new(XenstoreMessageType.Rm, transaction, XenstorePayload.Strings(r.Path)),
                StoreOperation.Directory => new(XenstoreMessageType.Directory, transaction, XenstorePayload.Strings(r.Path)),
                StoreOperation.SetPermissions when r.Permissions is { Count: > 0 } permissions =>
                    new(XenstoreMessageType.SetPerms, transaction, XenstorePayload.Permissions(r.Path, permissions)),
                StoreOperation.Watch => new(XenstoreMessageType.Watch, 0, XenstorePayload.Strings(r.Path, r.Value ?? "")),
                StoreOperation.Commit => new(XenstoreMessageType.TransactionEnd, transaction, XenstorePayload.Commit.ToArray()),
                _ => throw new StoreException(r.Operation.ToString(), r.Path, Errno.EINVAL),
            };
        }
        var replies = new XenstoreReply[wire.Length];
        Transport.RequestBatch(wire, replies);
        var answers = new StoreAnswer[wire.Length];
        for (int i = 0; i < answers.Length; i++)
        {
            XenstoreReply reply = replies[i];
            answers[i] = !reply.Ok ? new StoreAnswer(reply.Error, null, null) : requests[i].Operation switch
            {
                StoreOperation.Read => new StoreAnswer(Errno.None, Encoding.UTF8.GetString(reply.Payload), null),
                StoreOperation.Directory => new StoreAnswer(Errno.None, null, XenstorePayload.Split(reply.Payload)),
                _ => default,
            };
        }
        return answers;
    }

    /// <inheritdoc/>
    public void Dispose()
    {
        if (_ownsTransport)
        {
            Transport.Dispose();
        }
    }

    private static void Check(in XenstoreReply reply, string operation, string path)
    {
        if (!reply.Ok)
        {
            throw new StoreException(operation, path, reply.Error);
        }
    }
}
