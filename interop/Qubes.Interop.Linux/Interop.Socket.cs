using System.Runtime.InteropServices;

namespace Qubes.Interop.Linux;

public static unsafe partial class Libc
{
    public const int AF_UNIX = 1;
    public const int SOCK_STREAM = 1;
    public const int SOCK_SEQPACKET = 5;
    public const int SOCK_NONBLOCK = 0x800;
    public const int SOCK_CLOEXEC = 0x80000;
    public const int SOL_SOCKET = 1;
    public const int SCM_RIGHTS = 1;
    public const int SO_PEERCRED = 17;
    public const int SO_SNDBUF = 7;
    public const int SO_RCVBUF = 8;
    public const int SO_SNDBUFFORCE = 32;
    public const int SO_RCVBUFFORCE = 33;
    public const int MSG_NOSIGNAL = 0x4000;
    public const int MSG_DONTWAIT = 0x40;
    public const int MSG_CMSG_CLOEXEC = 0x40000000;
    public const int MSG_CTRUNC = 0x8;
    public const int SHUT_WR = 1;
    public const int SHUT_RDWR = 2;

    [StructLayout(LayoutKind.Sequential)]
    public struct iovec
    {
        public void* iov_base;
        public nuint iov_len;
    }

    [StructLayout(LayoutKind.Sequential)]
    public struct msghdr
    {
        public void* msg_name;
        public uint msg_namelen;
        public iovec* msg_iov;
        public nuint msg_iovlen;
        public void* msg_control;
        public nuint msg_controllen;
        public int msg_flags;
    }

    [StructLayout(LayoutKind.Sequential)]
    public struct cmsghdr
    {
        public nuint cmsg_len;
        public int cmsg_level;
        public int cmsg_type;
    }

    [StructLayout(LayoutKind.Sequential)]
    public struct sockaddr_un
    {
        public ushort sun_family;
        public fixed byte sun_path[108];
    }

    [StructLayout(LayoutKind.Sequential)]
    public struct ucred
    {
        public int pid;
        public uint uid;
        public uint gid;
    }

    [LibraryImport(Libraries.Libc, SetLastError = true)]
    public static partial int socket(int domain, int type, int protocol);

    [LibraryImport(Libraries.Libc, SetLastError = true)]
    public static partial int socketpair(int domain, int type, int protocol, int* sv);

    [LibraryImport(Libraries.Libc, SetLastError = true)]
    public static partial int bind(int fd, sockaddr_un* addr, uint len);

    [LibraryImport(Libraries.Libc, SetLastError = true)]
    public static partial int listen(int fd, int backlog);

    [LibraryImport(Libraries.Libc, SetLastError = true)]
    public static partial int accept4(int fd, void* addr, uint* len, int flags);

    [LibraryImport(Libraries.Libc, SetLastError = true)]
    public static partial int connect(int fd, sockaddr_un* addr, uint len);

    [LibraryImport(Libraries.Libc, SetLastError = true)]
    public static partial nint sendmsg(int fd, msghdr* msg, int flags);

    [LibraryImport(Libraries.Libc, SetLastError = true)]
    public static partial nint recvmsg(int fd, msghdr* msg, int flags);

    [LibraryImport(Libraries.Libc, SetLastError = true)]
    public static partial int shutdown(int fd, int how);

    [LibraryImport(Libraries.Libc, SetLastError = true)]
    public static partial int getsockopt(int fd, int level, int name, void* val, uint* len);

    [LibraryImport(Libraries.Libc, SetLastError = true)]
    public static partial int setsockopt(int fd, int level, int name, void* val, uint len);
}
