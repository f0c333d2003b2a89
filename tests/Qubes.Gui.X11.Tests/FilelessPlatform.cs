using System;
using Qubes.Interop.Linux;
using Qubes.Platform;

namespace Qubes.Gui.X11.Tests;

/// <summary>
/// A platform whose shared pages have no file another program could map (as on Xen): the agent
/// and the daemon then copy the pixels through segments of their own.
/// </summary>
internal sealed class FilelessPlatform(IPlatform inner) : IPlatform, IGrantTable
{
    public IGrantTable Grants => this;

    public IEventChannels EventChannels => inner.EventChannels;

    public IDomains Domains => inner.Domains;

    public IStore Store => inner.Store;

    public IStore OpenStore() => inner.OpenStore();

    /// <summary>The inner platform stays with its owner.</summary>
    public void Dispose()
    {
    }

    public IGrantedPages Share(int grantee, int pageCount, bool readOnly, PreparePages? prepare = null)
        => new Pages(inner.Grants.Share(grantee, pageCount, readOnly));

    public IGrantedPages ShareFile(int grantee, int file, int pageCount, bool readOnly)
        => throw new PlatformException("grant pages of a file", Errno.ENOTSUP);

    public IMappedPages Map(int owner, ReadOnlySpan<uint> refs, bool writable) => new Pages(inner.Grants.Map(owner, refs, writable));

    private sealed class Pages(ISharedPages pages) : IGrantedPages, IMappedPages
    {
        public IntPtr Address => pages.Address;

        public int Length => pages.Length;

        public int PagesFile => -1;

        public ReadOnlySpan<uint> Refs => ((IGrantedPages)pages).Refs;

        public void SetUnmapNotify(int byteOffset, IEventChannel channel) => pages.SetUnmapNotify(byteOffset, channel);

        public void Dispose() => pages.Dispose();
    }
}
