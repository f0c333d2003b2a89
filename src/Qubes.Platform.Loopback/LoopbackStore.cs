using System;
using System.Collections.Generic;
using System.Globalization;
using System.Text;
using Qubes.Interop.Linux;

namespace Qubes.Platform.Loopback;

/// <summary>
/// A store connection speaking the xenstore wire format to the broker. <see cref="Fd"/> polls
/// readable when watch events arrive; events that came in during a request are already queued, so
/// drain <see cref="TryReadWatchEvent"/> until it returns false before polling again.
/// </summary>
public sealed class LoopbackStore : IStore
{
    private readonly BrokerClient _client;
    private readonly bool _ownsClient;

    internal LoopbackStore(BrokerClient client, bool ownsClient)
    {
        _client = client;
        _ownsClient = ownsClient;
    }

    /// <inheritdoc/>
    public int Fd => _client.Fd;

    /// <inheritdoc/>
    public string? Read(string path, uint transaction = 0)
    {
        BrokerReply reply = _client.Request(MessageType.Read, transaction, PathPayload(path));
        if (reply.Error == Errno.ENOENT)
        {
            return null;
        }
        Check(reply, "read", path);
        return Encoding.UTF8.GetString(reply.Payload);
    }

    /// <inheritdoc/>
    public void Write(string path, string value, uint transaction = 0)
    {
        int pathLength = Encoding.UTF8.GetByteCount(path);
        int valueLength = Encoding.UTF8.GetByteCount(value);
        if (valueLength > Wire.MaxValueLength || pathLength + 1 + valueLength > Wire.MaxPayload)
        {
            throw new StoreException("write", path, Errno.E2BIG);
        }
        byte[] payload = new byte[pathLength + 1 + valueLength];
        Encoding.UTF8.GetBytes(path, payload);
        Encoding.UTF8.GetBytes(value, payload.AsSpan(pathLength + 1));
        Check(_client.Request(MessageType.Write, transaction, payload), "write", path);
    }

    /// <inheritdoc/>
    public void Mkdir(string path, uint transaction = 0) =>
        Check(_client.Request(MessageType.Mkdir, transaction, PathPayload(path)), "mkdir", path);

    /// <inheritdoc/>
    public void Remove(string path, uint transaction = 0)
    {
        BrokerReply reply = _client.Request(MessageType.Rm, transaction, PathPayload(path));
        if (reply.Error != Errno.ENOENT)
        {
            Check(reply, "rm", path);
        }
    }

    /// <inheritdoc/>
    public IReadOnlyList<string>? Directory(string path, uint transaction = 0)
    {
        BrokerReply reply = _client.Request(MessageType.Directory, transaction, PathPayload(path));
        if (reply.Error == Errno.ENOENT)
        {
            return null;
        }
        Check(reply, "directory", path);
        return SplitStrings(reply.Payload);
    }

    /// <inheritdoc/>
    public IReadOnlyList<StorePermission> GetPermissions(string path, uint transaction = 0)
    {
        BrokerReply reply = _client.Request(MessageType.GetPerms, transaction, PathPayload(path));
        Check(reply, "get-perms", path);
        var result = new List<StorePermission>();
        foreach (string entry in SplitStrings(reply.Payload))
        {
            if (!StorePermission.TryParse(entry, out StorePermission p))
            {
                throw new StoreException("get-perms", path, Errno.EPROTO);
            }
            result.Add(p);
        }
        return result;
    }

    /// <inheritdoc/>
    public void SetPermissions(string path, IReadOnlyList<StorePermission> permissions, uint transaction = 0)
    {
        if (permissions.Count == 0)
        {
            throw new StoreException("set-perms", path, Errno.EINVAL);
        }
        var text = new StringBuilder(path).Append('\0');
        foreach (StorePermission p in permissions)
        {
            text.Append(p.ToString()).Append('\0');
        }
        Check(_client.Request(MessageType.SetPerms, transaction, Encoding.UTF8.GetBytes(text.ToString())), "set-perms", path);
    }

    /// <inheritdoc/>
    public uint TransactionStart()
    {
        BrokerReply reply = _client.Request(MessageType.TransactionStart, 0, "\0"u8);
        Check(reply, "transaction-start", "");
        ReadOnlySpan<byte> text = reply.Payload.AsSpan();
        if (text.Length > 0 && text[^1] == 0)
        {
            text = text[..^1];
        }
        if (!uint.TryParse(text, NumberStyles.None, CultureInfo.InvariantCulture, out uint id) || id == 0)
        {
            throw new StoreException("transaction-start", "", Errno.EPROTO);
        }
        return id;
    }

    /// <inheritdoc/>
    public bool TransactionEnd(uint transaction, bool commit)
    {
        BrokerReply reply = _client.Request(MessageType.TransactionEnd, transaction, commit ? "T\0"u8 : "F\0"u8);
        if (reply.Error == Errno.EAGAIN)
        {
            return false;
        }
        Check(reply, "transaction-end", "");
        return true;
    }

    /// <inheritdoc/>
    public void Watch(string path, string token) =>
        Check(_client.Request(MessageType.Watch, 0, TwoStrings(path, token)), "watch", path);

    /// <inheritdoc/>
    public void Unwatch(string path, string token) =>
        Check(_client.Request(MessageType.Unwatch, 0, TwoStrings(path, token)), "unwatch", path);

    /// <inheritdoc/>
    public bool TryReadWatchEvent(out string path, out string token) => _client.TryReadWatchEvent(out path, out token);

    /// <inheritdoc/>
    public void Dispose()
    {
        if (_ownsClient)
        {
            _client.Dispose();
        }
    }

    private static byte[] PathPayload(string path)
    {
        byte[] payload = new byte[Encoding.UTF8.GetByteCount(path) + 1];
        Encoding.UTF8.GetBytes(path, payload);
        return payload;
    }

    private static byte[] TwoStrings(string a, string b)
    {
        int la = Encoding.UTF8.GetByteCount(a);
        byte[] payload = new byte[la + 1 + Encoding.UTF8.GetByteCount(b) + 1];
        Encoding.UTF8.GetBytes(a, payload);
        Encoding.UTF8.GetBytes(b, payload.AsSpan(la + 1));
        return payload;
    }

    private static List<string> SplitStrings(byte[] payload)
    {
        var result = new List<string>();
        int start = 0;
        for (int i = 0; i < payload.Length; i++)
        {
            if (payload[i] == 0)
            {
                result.Add(Encoding.UTF8.GetString(payload, start, i - start));
                start = i + 1;
            }
        }
        if (start < payload.Length)
        {
            result.Add(Encoding.UTF8.GetString(payload, start, payload.Length - start));
        }
        return result;
    }

    private static void Check(in BrokerReply reply, string operation, string path)
    {
        if (!reply.Ok)
        {
            throw new StoreException(operation, path, reply.Error);
        }
    }
}
