using System;
using System.Collections.Immutable;

namespace Qubes.Platform.Loopback;

/// <summary>
/// One immutable node of the store tree. Changes copy the path from the root down, so a transaction
/// snapshot is just a root reference. <see cref="Generation"/> is the store-wide change counter at
/// the node's last change of value, permissions or child set (a change inside a child does not
/// count), which is what transaction conflict checks compare.
/// </summary>
internal sealed class StoreNode
{
    public static readonly ImmutableSortedDictionary<string, StoreNode> NoChildren = ImmutableSortedDictionary.Create<string, StoreNode>(StringComparer.Ordinal);

    public StoreNode(byte[] value, StorePermission[] permissions, ImmutableSortedDictionary<string, StoreNode> children, ulong generation)
    {
        Value = value;
        Permissions = permissions;
        Children = children;
        Generation = generation;
    }

    public byte[] Value { get; }

    /// <summary>Owner entry first; never empty.</summary>
    public StorePermission[] Permissions { get; }

    public ImmutableSortedDictionary<string, StoreNode> Children { get; }

    public ulong Generation { get; }

    public int Owner => Permissions[0].Domain;

    public StoreNode WithValue(byte[] value, ulong generation) => new(value, Permissions, Children, generation);

    public StoreNode WithPermissions(StorePermission[] permissions, ulong generation) => new(Value, permissions, Children, generation);

    /// <summary>Replaces, adds (<paramref name="child"/> non-null) or removes one child.</summary>
    public StoreNode WithChild(string name, StoreNode? child, ulong generation)
    {
        bool had = Children.ContainsKey(name);
        ImmutableSortedDictionary<string, StoreNode> children = child is null ? Children.Remove(name) : Children.SetItem(name, child);
        // Adding or removing a child changes the directory listing: that is a change of this node.
        ulong gen = had != (child is not null) ? generation : Generation;
        return new StoreNode(Value, Permissions, children, gen);
    }

    /// <summary>What <paramref name="domain"/> may do here: dom0 and the owner everything, else its entry or the default.</summary>
    public StoreAccess AccessOf(int domain)
    {
        if (domain == 0 || domain == Permissions[0].Domain)
        {
            return StoreAccess.Both;
        }
        for (int i = 1; i < Permissions.Length; i++)
        {
            if (Permissions[i].Domain == domain)
            {
                return Permissions[i].Access;
            }
        }
        return Permissions[0].Access;
    }

    public int CountNodes()
    {
        int n = 1;
        foreach (StoreNode child in Children.Values)
        {
            n += child.CountNodes();
        }
        return n;
    }
}
