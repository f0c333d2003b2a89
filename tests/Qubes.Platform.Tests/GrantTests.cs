using System;
using System.Buffers.Binary;
using System.Globalization;
using System.Linq;
using Qubes.Interop.Linux;
using Qubes.Platform.Loopback;
using Xunit;

namespace Qubes.Platform.Tests;

public sealed unsafe class GrantTests
{
    [Fact]
    public void Shared_pages_really_are_shared_both_ways()
    {
        using var t = new TestBroker();
        (int aId, LoopbackPlatform a) = t.NewDomain("a");
        (int bId, LoopbackPlatform b) = t.NewDomain("b");
        using (a)
        using (b)
        {
            using IGrantedPages shared = a.Grants.Share(bId, 3, readOnly: false);
            Assert.Equal(3 * IGrantTable.PageSize, shared.Length);
            Assert.Equal(3, shared.Refs.Length);
            Assert.DoesNotContain(0u, shared.Refs.ToArray());
            var owner = new Span<byte>((void*)shared.Address, shared.Length);
            Assert.True(owner.IndexOfAnyExcept((byte)0) < 0, "pages start zeroed");
            owner[0] = 1;
            owner[5000] = 2;
            owner[^1] = 3;

            using IMappedPages mapped = b.Grants.Map(aId, shared.Refs, writable: true);
            var peer = new Span<byte>((void*)mapped.Address, mapped.Length);
            Assert.Equal(1, peer[0]);
            Assert.Equal(2, peer[5000]);
            Assert.Equal(3, peer[^1]);
            peer[100] = 42;
            Assert.Equal(42, owner[100]);
        }
    }

    [Fact]
    public void Pages_map_in_the_order_of_the_refs_given()
    {
        using var t = new TestBroker();
        (int aId, LoopbackPlatform a) = t.NewDomain("a");
        (int bId, LoopbackPlatform b) = t.NewDomain("b");
        using (a)
        using (b)
        {
            using IGrantedPages shared = a.Grants.Share(bId, 4, readOnly: false);
            var owner = new Span<byte>((void*)shared.Address, shared.Length);
            for (int page = 0; page < 4; page++)
            {
                owner[page * IGrantTable.PageSize] = (byte)(10 + page);
            }
            uint[] reversed = [shared.Refs[3], shared.Refs[2], shared.Refs[1], shared.Refs[0]];
            using IMappedPages mapped = b.Grants.Map(aId, reversed, writable: false);
            var peer = new ReadOnlySpan<byte>((void*)mapped.Address, mapped.Length);
            for (int page = 0; page < 4; page++)
            {
                Assert.Equal(13 - page, peer[page * IGrantTable.PageSize]);
            }
        }
    }

    [Fact]
    public void Mapping_refs_from_more_memfds_than_one_message_carries_works()
    {
        using var t = new TestBroker();
        (int aId, LoopbackPlatform a) = t.NewDomain("a");
        (int bId, LoopbackPlatform b) = t.NewDomain("b");
        using (a)
        using (b)
        {
            var grants = new IGrantedPages[40];
            uint[] refs = new uint[grants.Length];
            try
            {
                for (int i = 0; i < grants.Length; i++)
                {
                    grants[i] = a.Grants.Share(bId, 1, readOnly: i % 2 == 0);
                    *(byte*)grants[i].Address = (byte)(i + 1);
                    refs[i] = grants[i].Refs[0];
                }
                using IMappedPages mapped = b.Grants.Map(aId, refs, writable: false);
                for (int i = 0; i < grants.Length; i++)
                {
                    Assert.Equal(i + 1, ((byte*)mapped.Address)[i * IGrantTable.PageSize]);
                }
            }
            finally
            {
                foreach (IGrantedPages? g in grants)
                {
                    g?.Dispose();
                }
            }
        }
    }

    [Fact]
    public void Pages_come_with_their_file_where_it_holds_just_them_in_order()
    {
        using var t = new TestBroker();
        (int aId, LoopbackPlatform a) = t.NewDomain("a");
        (int bId, LoopbackPlatform b) = t.NewDomain("b");
        using (a)
        using (b)
        {
            // more pages than one map request carries: the file must be followed across replies
            const int Pages = 600;
            int preparedFile = -1;
            IntPtr preparedAt = 0;
            using IGrantedPages shared = a.Grants.Share(bId, Pages, readOnly: true, (file, address) =>
            {
                preparedFile = file;
                preparedAt = address;
                // before the grant, a writable mapping of the file can still be taken
                void* w = Libc.mmap(null, 4096, Libc.PROT_READ | Libc.PROT_WRITE, Libc.MAP_SHARED, file, 0);
                Assert.True(w != Libc.MAP_FAILED, "writable mapping in prepare");
                ((byte*)w)[7] = 77;
                Libc.munmap(w, 4096);
            });
            Assert.Equal(shared.Address, preparedAt);
            Assert.True(preparedFile >= 0 && shared.PagesFile >= 0);
            var owner = new Span<byte>((void*)shared.Address, shared.Length);
            Assert.Equal(77, owner[7]);
            for (int page = 0; page < Pages; page++)
            {
                owner[page * IGrantTable.PageSize + 1] = (byte)page;
            }

            using IMappedPages mapped = b.Grants.Map(aId, shared.Refs, writable: false);
            int file = mapped.PagesFile;
            Assert.True(file >= 0, "a whole read-only grant comes with its file");
            Libc.stat st;
            Assert.Equal(0, Libc.fstat(file, &st));
            Assert.Equal((long)Pages * IGrantTable.PageSize, st.st_size);
            byte* seen = (byte*)Libc.mmap(null, (nuint)mapped.Length, Libc.PROT_READ, Libc.MAP_SHARED, file, 0);
            Assert.True(seen != Libc.MAP_FAILED);
            Assert.True(new ReadOnlySpan<byte>(seen, mapped.Length).SequenceEqual(owner));
            Libc.munmap(seen, (nuint)mapped.Length);
            Assert.True(Libc.mmap(null, 4096, Libc.PROT_READ | Libc.PROT_WRITE, Libc.MAP_SHARED, file, 0) == Libc.MAP_FAILED, "the grantee's file maps writable");

            // Pages out of order, or only some of them, are no file's contents from its start
            uint[] reversed = [.. shared.Refs.ToArray().AsEnumerable().Reverse()];
            using (IMappedPages backwards = b.Grants.Map(aId, reversed, writable: false))
            {
                Assert.Equal(-1, backwards.PagesFile);
            }
            using (IMappedPages some = b.Grants.Map(aId, shared.Refs[..10], writable: false))
            {
                Assert.Equal(-1, some.PagesFile);
            }
        }
    }

    [Fact]
    public void A_third_domain_cannot_map_a_grant_meant_for_another()
    {
        using var t = new TestBroker();
        (int aId, LoopbackPlatform a) = t.NewDomain("a");
        (int bId, LoopbackPlatform b) = t.NewDomain("b");
        (_, LoopbackPlatform c) = t.NewDomain("c");
        using (a)
        using (b)
        using (c)
        {
            using IGrantedPages shared = a.Grants.Share(bId, 2, readOnly: false);
            Assert.Equal(Errno.EACCES, Assert.Throws<PlatformException>(() => c.Grants.Map(aId, shared.Refs, writable: false)).Errno);
            Assert.Equal(Errno.EACCES, Assert.Throws<PlatformException>(() => t.Dom0.Grants.Map(aId, shared.Refs, writable: false)).Errno);
            // Wrong owner or unknown ref: nothing to map.
            Assert.Equal(Errno.ENOENT, Assert.Throws<PlatformException>(() => b.Grants.Map(bId, shared.Refs, writable: false)).Errno);
            Assert.Equal(Errno.ENOENT, Assert.Throws<PlatformException>(() => b.Grants.Map(aId, [shared.Refs[0], 999_999], writable: false)).Errno);
            Assert.Equal(Errno.ENOENT, Assert.Throws<PlatformException>(() => b.Grants.Map(4000, shared.Refs, writable: false)).Errno);
        }
    }

    [Fact]
    public void A_read_only_grant_cannot_be_mapped_writable()
    {
        using var t = new TestBroker();
        (int aId, LoopbackPlatform a) = t.NewDomain("a");
        (int bId, LoopbackPlatform b) = t.NewDomain("b");
        using (a)
        using (b)
        {
            using IGrantedPages shared = a.Grants.Share(bId, 1, readOnly: true);
            ((byte*)shared.Address)[7] = 77; // the owner keeps writing through its own mapping
            Assert.Equal(Errno.EACCES, Assert.Throws<PlatformException>(() => b.Grants.Map(aId, shared.Refs, writable: true)).Errno);
            using IMappedPages mapped = b.Grants.Map(aId, shared.Refs, writable: false);
            Assert.Equal(77, ((byte*)mapped.Address)[7]);
            ((byte*)shared.Address)[8] = 88;
            Assert.Equal(88, ((byte*)mapped.Address)[8]);
        }
    }

    [Fact]
    public void A_read_only_grant_fd_cannot_be_made_writable()
    {
        using var t = new TestBroker();
        (int aId, LoopbackPlatform a) = t.NewDomain("a");
        (int bId, LoopbackPlatform b) = t.NewDomain("b");
        using (a)
        using (b)
        {
            using IGrantedPages shared = a.Grants.Share(bId, 1, readOnly: true);
            // Ask the broker directly, to hold the descriptor that Map would map and close.
            byte[] request = new byte[12];
            BinaryPrimitives.WriteUInt32LittleEndian(request, (uint)aId);
            BinaryPrimitives.WriteUInt32LittleEndian(request.AsSpan(4), 0);
            BinaryPrimitives.WriteUInt32LittleEndian(request.AsSpan(8), shared.Refs[0]);
            BrokerReply reply = b.Client.Request(MessageType.GrantMap, 0, request);
            Assert.True(reply.Ok);
            using SafeFd fd = Assert.Single(reply.Fds);

            Assert.Equal(Libc.O_RDONLY, Libc.fcntl(fd.Fd, Libc.F_GETFL, 0) & 3);
            Assert.True(Libc.mmap(null, 4096, Libc.PROT_READ | Libc.PROT_WRITE, Libc.MAP_SHARED, fd.Fd, 0) == Libc.MAP_FAILED);

            // A read-only mapping cannot be upgraded.
            void* ro = Libc.mmap(null, 4096, Libc.PROT_READ, Libc.MAP_SHARED, fd.Fd, 0);
            Assert.True(ro != Libc.MAP_FAILED);
            Assert.NotEqual(0, Libc.mprotect(ro, 4096, Libc.PROT_READ | Libc.PROT_WRITE));
            Libc.munmap(ro, 4096);

            // Reopening through /proc gives a read-write description of the same memfd, but the
            // F_SEAL_FUTURE_WRITE seal refuses every new writable mapping and every write.
            int reopened = Libc.open("/proc/self/fd/" + fd.Fd.ToString(CultureInfo.InvariantCulture), Libc.O_RDWR | Libc.O_CLOEXEC, 0);
            Assert.True(reopened >= 0, "reopen O_RDWR: " + LastError.Get());
            {
                using var rw = new SafeFd(reopened);
                void* w = Libc.mmap(null, 4096, Libc.PROT_READ | Libc.PROT_WRITE, Libc.MAP_SHARED, rw.Fd, 0);
                Assert.True(w == Libc.MAP_FAILED, "writable shared mapping of a read-only grant succeeded");
                byte one = 1;
                Assert.True(Libc.pwrite(rw.Fd, &one, 1, 0) < 0, "write to a read-only grant succeeded");
                void* r = Libc.mmap(null, 4096, Libc.PROT_READ, Libc.MAP_SHARED, rw.Fd, 0);
                Assert.True(r != Libc.MAP_FAILED);
                Assert.NotEqual(0, Libc.mprotect(r, 4096, Libc.PROT_READ | Libc.PROT_WRITE));
                Libc.munmap(r, 4096);
            }
            Assert.Equal(0, ((byte*)shared.Address)[0]);
        }
    }

    [Fact]
    public void Revoked_grants_cannot_be_mapped_but_existing_mappings_stay_valid()
    {
        using var t = new TestBroker();
        (int aId, LoopbackPlatform a) = t.NewDomain("a");
        (int bId, LoopbackPlatform b) = t.NewDomain("b");
        using (a)
        using (b)
        {
            IGrantedPages shared = a.Grants.Share(bId, 1, readOnly: false);
            uint[] refs = shared.Refs.ToArray();
            *(byte*)shared.Address = 9;
            using IMappedPages mapped = b.Grants.Map(aId, refs, writable: true);
            shared.Dispose();
            Assert.Equal(Errno.ENOENT, Assert.Throws<PlatformException>(() => b.Grants.Map(aId, refs, writable: false)).Errno);
            Assert.Equal(9, *(byte*)mapped.Address);
            *(byte*)mapped.Address = 10; // still mapped, no fault
        }
    }

    [Fact]
    public void The_broker_refuses_descriptors_that_are_not_suitable_memfds()
    {
        using var t = new TestBroker();
        (int aId, LoopbackPlatform a) = t.NewDomain("a");
        using (a)
        {
            byte[] request = new byte[12];
            BinaryPrimitives.WriteUInt32LittleEndian(request, 0);
            BinaryPrimitives.WriteUInt32LittleEndian(request.AsSpan(4), 1);

            // An eventfd, a memfd without sealing, and a memfd too small for the pages asked.
            using SafeFd eventFd = EventFd.Create();
            Assert.Equal(Errno.EINVAL, a.Client.Request(MessageType.GrantAlloc, 0, request, [eventFd.Fd]).Error);
            using SafeFd unsealable = SafeFd.FromResult(Libc.memfd_create("x", Libc.MFD_CLOEXEC), "memfd");
            Assert.Equal(0, Libc.ftruncate(unsealable.Fd, 4096));
            Assert.Equal(Errno.EINVAL, a.Client.Request(MessageType.GrantAlloc, 0, request, [unsealable.Fd]).Error);
            using SafeFd small = SafeFd.FromResult(Libc.memfd_create("x", Libc.MFD_CLOEXEC | Libc.MFD_ALLOW_SEALING), "memfd");
            Assert.Equal(0, Libc.ftruncate(small.Fd, 100));
            Assert.Equal(Errno.EINVAL, a.Client.Request(MessageType.GrantAlloc, 0, request, [small.Fd]).Error);
            // No descriptor at all.
            Assert.Equal(Errno.EINVAL, a.Client.Request(MessageType.GrantAlloc, 0, request).Error);

            // A good one is accepted and then sealed: the owner cannot shrink it under a grantee.
            using SafeFd good = SafeFd.FromResult(Libc.memfd_create("x", Libc.MFD_CLOEXEC | Libc.MFD_ALLOW_SEALING), "memfd");
            Assert.Equal(0, Libc.ftruncate(good.Fd, 4096));
            Assert.True(a.Client.Request(MessageType.GrantAlloc, 0, request, [good.Fd]).Ok);
            Assert.NotEqual(0, Libc.ftruncate(good.Fd, 0));
            Assert.Equal(aId, a.OwnId);
        }
    }

    [Fact]
    public void A_file_of_the_domain_is_granted_as_it_is_sealed_like_its_own_and_a_file_that_cannot_be_sealed_is_refused()
    {
        using var t = new TestBroker();
        (int aId, LoopbackPlatform a) = t.NewDomain("a");
        (int bId, LoopbackPlatform b) = t.NewDomain("b");
        using (a)
        using (b)
        {
            // another program of the domain (its X server) made the file and keeps writing it
            using SafeFd file = SafeFd.FromResult(Libc.memfd_create("window", Libc.MFD_CLOEXEC | Libc.MFD_ALLOW_SEALING), "memfd");
            Assert.Equal(0, Libc.ftruncate(file.Fd, 2 * IGrantTable.PageSize));
            using MemoryMapping writer = MemoryMapping.MapShared(file.Fd, 0, 2 * IGrantTable.PageSize, writable: true);
            var pixels = new Span<byte>(writer.Pointer, 2 * IGrantTable.PageSize);
            pixels[5000] = 7;

            using IGrantedPages granted = a.Grants.ShareFile(bId, file.Fd, 2, readOnly: true);
            using IMappedPages mapped = b.Grants.Map(aId, granted.Refs, writable: false);
            var seen = new ReadOnlySpan<byte>((void*)mapped.Address, mapped.Length);
            Assert.Equal(7, seen[5000]);
            pixels[5001] = 9;
            Assert.Equal(9, seen[5001]);

            // sealed as the domain's own pages are: it cannot shrink under the grantee, nor be mapped writable anew
            Assert.NotEqual(0, Libc.ftruncate(file.Fd, 0));
            Assert.Throws<LinuxException>(() => MemoryMapping.MapShared(file.Fd, 0, IGrantTable.PageSize, writable: true).Dispose());
            Assert.Throws<PlatformException>(() => b.Grants.Map(aId, granted.Refs, writable: true).Dispose());
            // granted once read-only, it cannot be granted again
            Assert.Throws<PlatformException>(() => a.Grants.ShareFile(bId, file.Fd, 2, readOnly: true));

            // a file that cannot be sealed could shrink under a grantee: refused, and the caller keeps its descriptor
            using SafeFd unsealable = SafeFd.FromResult(Libc.memfd_create("x", Libc.MFD_CLOEXEC), "memfd");
            Assert.Equal(0, Libc.ftruncate(unsealable.Fd, IGrantTable.PageSize));
            Assert.Equal(Errno.EINVAL, Assert.Throws<PlatformException>(() => a.Grants.ShareFile(bId, unsealable.Fd, 1, readOnly: true)).Errno);
            Assert.Equal(0, Libc.ftruncate(unsealable.Fd, 2 * IGrantTable.PageSize));
        }
    }
}
