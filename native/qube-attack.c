/*
 * qube-attack: the attacks of a hostile qube's root on the loopback hypervisor, one per command,
 * for the hostile-qube tests. Each is run once inside a qube (where it must fail) and, where that
 * is safe, once as host root outside any qube (where it must work: the proof that the probe is a
 * real attack and that the sandbox is what stops it).
 *
 *   qube-attack PROBE [ARG]...
 *
 * Prints one line "PROBE NAME: WORKED detail" or "PROBE NAME: REFUSED detail" and exits 0 when
 * the attack worked, 1 when it was refused, 2 when the probe itself could not be run.
 *
 * Probes:
 *   mknod-read b|c MAJOR MINOR DIR  make a block or character device node in DIR and read from it
 *   mount-tmpfs DIR              mount a tmpfs on DIR
 *   remount-rw DIR FILE          remount the read-only bind DIR read-write, open FILE in it for writing
 *   handle-open DIR              open_by_handle_at the root inode of DIR's file system (the "shocker" escape)
 *   cgroup-agent DIR             mount a cgroup v1 hierarchy on DIR and write its release_agent
 *   sysctl-write PATH            write a /proc/sys file (its own value back)
 *   clock-set                    set the real-time clock (to its own value)
 *   rt-sched                     take real-time scheduling (SCHED_FIFO)
 *   kernel-log                   read the kernel log (syslog)
 *   userns                       create a user namespace
 *   keyring                      add a key to the kernel keyring
 *   bpf                          create a BPF map
 *   perf                         open a perf event
 *   userfaultfd                  create a userfaultfd
 *   ptrace PID                   attach to a process
 *   truncate-stdout              truncate the file standard output is
 *   console BYTES                take the qrexec agent's standard error (the qube's console, as its root can), write a
 *                                line of BYTES characters and a terminal escape to it, then try to truncate it
 *   processes N                  start up to N processes (each waits), then end them; worked when all N started
 *   broker-tx [SOCKET]           open transactions on broker connections and grow them until refused; prints the bytes held
 *   broker-watch SECONDS [SOCKET]  watch "/" and print every event path seen
 *   broker-rm-home               remove the own domid, name and home from the store
 * The broker probes use the qube's broker connection (taken from its qrexec agent with
 * pidfd_getfd: the qube's root can), or with SOCKET a dom0 connection to that broker socket.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <dirent.h>
#include <linux/bpf.h>
#include <linux/perf_event.h>
#include <sched.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/klog.h>
#include <sys/mount.h>
#include <sys/ptrace.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/sysmacros.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <poll.h>
#include <signal.h>
#include <time.h>
#include <unistd.h>

static const char *probe;

static int worked(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static int refused(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

#include <stdarg.h>
static int report(const char *verdict, const char *fmt, va_list ap)
{
    printf("PROBE %s: %s ", probe, verdict);
    vprintf(fmt, ap);
    printf("\n");
    fflush(stdout);
    return 0;
}

static int worked(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    report("WORKED", fmt, ap);
    va_end(ap);
    return 0;
}

static int refused(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    report("REFUSED", fmt, ap);
    va_end(ap);
    return 1;
}

static int broken(const char *what)
{
    printf("PROBE %s: BROKEN %s: %s\n", probe, what, strerror(errno));
    return 2;
}

/* ------------------------------------------------------------------------------------------- */

static int mknod_read(const char *type, unsigned major, unsigned minor, const char *dir)
{
    char path[4096];
    snprintf(path, sizeof path, "%s/probe-device", dir);
    unlink(path);
    if (mknod(path, (type[0] == 'b' ? S_IFBLK : S_IFCHR) | 0600, makedev(major, minor)) != 0)
        return refused("mknod %s %u:%u: %s", type, major, minor, strerror(errno));
    int fd = open(path, O_RDONLY | O_NONBLOCK);
    int e = errno;
    unlink(path);
    if (fd < 0)
        return refused("open of the node: %s", strerror(e));
    static char buf[8192];
    ssize_t n = read(fd, buf, sizeof buf);
    e = errno;
    close(fd);
    return n > 0 ? worked("read %zd bytes from device %s %u:%u", n, type, major, minor) : refused("read: %s", strerror(e));
}

static int mount_tmpfs(const char *dir)
{
    if (mount("probe", dir, "tmpfs", 0, "size=1m") != 0)
        return refused("mount: %s", strerror(errno));
    umount2(dir, MNT_DETACH);
    return worked("mounted a tmpfs on %s", dir);
}

static int remount_rw(const char *dir, const char *file)
{
    if (mount(NULL, dir, NULL, MS_REMOUNT | MS_BIND, NULL) != 0)
        return refused("remount of %s read-write: %s", dir, strerror(errno));
    int fd = open(file, O_WRONLY | O_APPEND);
    if (fd < 0)
        return refused("remounted, but %s stays unwritable: %s", file, strerror(errno));
    close(fd);
    return worked("%s is writable", file);
}

static int handle_open(const char *dir)
{
    struct {
        struct file_handle h;
        unsigned char bytes[128];
    } handle;
    handle.h.handle_bytes = sizeof handle.bytes;
    int mount_id;
    if (name_to_handle_at(AT_FDCWD, dir, &handle.h, &mount_id, 0) != 0)
        return refused("name_to_handle_at %s: %s", dir, strerror(errno));
    /* the root inode of an ext4 file system: inode 2, generation 0 (FILEID_INO32_GEN) */
    handle.h.handle_type = 1;
    handle.h.handle_bytes = 8;
    uint32_t root[2] = { 2, 0 };
    memcpy(handle.h.f_handle, root, sizeof root);
    int mount_fd = open(dir, O_RDONLY | O_DIRECTORY);
    if (mount_fd < 0)
        return broken("open");
    int fd = open_by_handle_at(mount_fd, &handle.h, O_RDONLY | O_DIRECTORY);
    if (fd < 0)
        return refused("open_by_handle_at: %s", strerror(errno));
    DIR *d = fdopendir(fd);
    char names[512] = "";
    struct dirent *e;
    while (d && (e = readdir(d)) != NULL && strlen(names) < 400) {
        strcat(names, e->d_name);
        strcat(names, " ");
    }
    return worked("opened the root of %s's file system: %s", dir, names);
}

static int cgroup_agent(const char *dir)
{
    if (mount("cgroup", dir, "cgroup", 0, "none,name=qubesprobe") != 0)
        return refused("mount of a cgroup v1 hierarchy: %s", strerror(errno));
    char path[4096];
    snprintf(path, sizeof path, "%s/release_agent", dir);
    int fd = open(path, O_WRONLY);
    int ok = fd >= 0 && write(fd, "/bin/true", 9) == 9;
    int e = errno;
    if (fd >= 0)
        close(fd);
    umount2(dir, MNT_DETACH);
    return ok ? worked("wrote %s", path) : refused("release_agent: %s", strerror(e));
}

static int sysctl_write(const char *path)
{
    char value[256];
    int fd = open(path, O_RDONLY);
    if (fd < 0)
        return broken("open for reading");
    ssize_t n = read(fd, value, sizeof value - 1);
    close(fd);
    if (n <= 0)
        return broken("read");
    fd = open(path, O_WRONLY);
    if (fd < 0)
        return refused("open %s for writing: %s", path, strerror(errno));
    ssize_t w = write(fd, value, (size_t)n);
    int e = errno;
    close(fd);
    return w == n ? worked("wrote %s", path) : refused("write %s: %s", path, strerror(e));
}

static int clock_set(void)
{
    struct timespec now;
    clock_gettime(CLOCK_REALTIME, &now);
    if (clock_settime(CLOCK_REALTIME, &now) != 0)
        return refused("clock_settime: %s", strerror(errno));
    return worked("set the real-time clock");
}

static int rt_sched(void)
{
    struct sched_param p = { .sched_priority = 1 };
    if (sched_setscheduler(0, SCHED_FIFO, &p) != 0)
        return refused("SCHED_FIFO: %s", strerror(errno));
    p.sched_priority = 0;
    sched_setscheduler(0, SCHED_OTHER, &p);
    return worked("ran with SCHED_FIFO");
}

static int kernel_log(void)
{
    static char buf[16384];
    int n = klogctl(3 /* SYSLOG_ACTION_READ_ALL */, buf, sizeof buf);
    if (n < 0)
        return refused("syslog: %s", strerror(errno));
    return worked("read %d bytes of the kernel log", n);
}

static int userns(void)
{
    if (unshare(CLONE_NEWUSER) != 0)
        return refused("unshare(CLONE_NEWUSER): %s", strerror(errno));
    return worked("in a new user namespace");
}

static int keyring(void)
{
    long id = syscall(SYS_add_key, "user", "qubes-probe", "x", 1, -2 /* KEY_SPEC_PROCESS_KEYRING */);
    if (id < 0)
        return refused("add_key: %s", strerror(errno));
    return worked("key %ld added", id);
}

static int bpf_map(void)
{
    union bpf_attr attr;
    memset(&attr, 0, sizeof attr);
    attr.map_type = BPF_MAP_TYPE_ARRAY;
    attr.key_size = 4;
    attr.value_size = 4;
    attr.max_entries = 1;
    int fd = (int)syscall(SYS_bpf, BPF_MAP_CREATE, &attr, sizeof attr);
    if (fd < 0)
        return refused("bpf: %s", strerror(errno));
    close(fd);
    return worked("created a BPF map");
}

static int perf(void)
{
    struct perf_event_attr attr;
    memset(&attr, 0, sizeof attr);
    attr.type = PERF_TYPE_SOFTWARE;
    attr.size = sizeof attr;
    attr.config = PERF_COUNT_SW_CPU_CLOCK;
    attr.exclude_kernel = 1;
    int fd = (int)syscall(SYS_perf_event_open, &attr, 0, -1, -1, 0);
    if (fd < 0)
        return refused("perf_event_open: %s", strerror(errno));
    close(fd);
    return worked("opened a perf event");
}

static int userfault(void)
{
    int fd = (int)syscall(SYS_userfaultfd, O_CLOEXEC);
    if (fd < 0)
        return refused("userfaultfd: %s", strerror(errno));
    close(fd);
    return worked("created a userfaultfd");
}

static int trace(int pid)
{
    if (ptrace(PTRACE_ATTACH, pid, NULL, NULL) != 0)
        return refused("attach to %d: %s", pid, strerror(errno));
    waitpid(pid, NULL, __WALL);
    ptrace(PTRACE_DETACH, pid, NULL, NULL);
    return worked("attached to %d", pid);
}

static int truncate_stdout(void)
{
    struct stat st;
    if (fstat(1, &st) != 0)
        return broken("fstat");
    if (ftruncate(1, 0) != 0)
        return refused("ftruncate of standard output (%s): %s", S_ISFIFO(st.st_mode) ? "a pipe" : "not a pipe", strerror(errno));
    return worked("truncated standard output");
}

static int processes(int wanted)
{
    int started = 0, e = 0;
    pid_t *children = calloc((size_t)wanted, sizeof(pid_t));
    if (!children)
        return broken("calloc");
    while (started < wanted) {
        pid_t p = fork();
        if (p < 0) {
            e = errno;
            break;
        }
        if (p == 0) {
            pause();
            _exit(0);
        }
        children[started++] = p;
    }
    for (int i = 0; i < started; i++)
        kill(children[i], SIGKILL);
    for (int i = 0; i < started; i++)
        waitpid(children[i], NULL, 0);
    free(children);
    return started == wanted ? worked("started %d processes", started) : refused("after %d processes: %s", started, strerror(e));
}

/* ------------------------------------------------------------------------------------------- *
 * The broker: xenstore frames (16-byte little-endian header type, req_id, tx_id, len; payload).
 */

enum { XS_DIRECTORY = 1, XS_READ = 2, XS_WATCH = 4, XS_TRANSACTION_START = 6, XS_TRANSACTION_END = 7, XS_WRITE = 11,
       XS_RM = 13, XS_WATCH_EVENT = 15, XS_ERROR = 16, LOHV_CONNECT = 0x102 };

static uint32_t next_req = 1;

/* sends a request; returns the reply's type (XS_ERROR with the errno name in reply) and fills reply; -1 on a broken connection */
static int request(int fd, uint32_t type, uint32_t tx, const void *payload, uint32_t len, char *reply, size_t reply_size, int *got_fd)
{
    uint32_t header[4] = { type, next_req++, tx, len };
    struct iovec iov[2] = { { header, sizeof header }, { (void *)payload, len } };
    struct msghdr msg = { .msg_iov = iov, .msg_iovlen = len ? 2 : 1 };
    if (sendmsg(fd, &msg, MSG_NOSIGNAL) < 0)
        return -1;
    for (;;) {
        uint32_t h[4];
        char control[CMSG_SPACE(sizeof(int) * 4)];
        struct iovec in = { h, sizeof h };
        struct msghdr m = { .msg_iov = &in, .msg_iovlen = 1, .msg_control = control, .msg_controllen = sizeof control };
        ssize_t n = recvmsg(fd, &m, MSG_WAITALL | MSG_CMSG_CLOEXEC);
        if (n != (ssize_t)sizeof h)
            return -1;
        if (got_fd) {
            for (struct cmsghdr *c = CMSG_FIRSTHDR(&m); c; c = CMSG_NXTHDR(&m, c))
                if (c->cmsg_type == SCM_RIGHTS)
                    memcpy(got_fd, CMSG_DATA(c), sizeof(int));
        }
        char body[4096 + 1];
        if (h[3] > 4096 || (h[3] && recv(fd, body, h[3], MSG_WAITALL) != (ssize_t)h[3]))
            return -1;
        body[h[3]] = 0;
        if (h[0] == XS_WATCH_EVENT)
            continue; /* events are read by broker-watch only */
        if (reply) {
            size_t copy = strnlen(body, reply_size - 1);
            memcpy(reply, body, copy);
            reply[copy] = 0;
        }
        return (int)h[0];
    }
}

/* a descriptor of the qube's qrexec agent, copied out of it (the qube's root can): its broker
 * connection (the number in its QUBES_LOHV_FD) when fd < 0, else that descriptor */
static int agent_fd(int fd)
{
    DIR *proc = opendir("/proc");
    struct dirent *e;
    while (proc && (e = readdir(proc)) != NULL) {
        int pid = atoi(e->d_name);
        if (pid <= 0)
            continue;
        char path[64], env[8192];
        snprintf(path, sizeof path, "/proc/%d/environ", pid);
        int env_fd = open(path, O_RDONLY);
        if (env_fd < 0)
            continue;
        ssize_t n = read(env_fd, env, sizeof env - 1);
        close(env_fd);
        if (n <= 0)
            continue;
        env[n] = 0;
        for (char *p = env; p < env + n; p += strlen(p) + 1) {
            if (strncmp(p, "QUBES_LOHV_FD=", 14) == 0) {
                int pidfd = (int)syscall(SYS_pidfd_open, pid, 0);
                int target = fd < 0 ? atoi(p + 14) : fd;
                int copy = pidfd < 0 ? -1 : (int)syscall(SYS_pidfd_getfd, pidfd, target, 0);
                if (copy >= 0) {
                    closedir(proc);
                    return copy;
                }
            }
        }
    }
    if (proc)
        closedir(proc);
    return -1;
}

static int console(long bytes)
{
    int fd = agent_fd(2);
    if (fd < 0)
        return broken("the agent's standard error");
    char *line = malloc((size_t)bytes + 1);
    if (!line)
        return broken("malloc");
    memset(line, 'x', (size_t)bytes);
    line[bytes] = '\n';
    ssize_t w = write(fd, line, (size_t)bytes + 1);
    free(line);
    const char escape[] = "\033[2Jescape\n";
    if (w < 0 || write(fd, escape, sizeof escape - 1) < 0)
        return broken("write");
    if (ftruncate(fd, 0) != 0)
        return refused("wrote %zd bytes to the console; ftruncate: %s", w, strerror(errno));
    return worked("truncated the console");
}

static int dom0_connection(const char *socket_path)
{
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    struct sockaddr_un a = { .sun_family = AF_UNIX };
    snprintf(a.sun_path, sizeof a.sun_path, "%s", socket_path);
    if (fd < 0 || connect(fd, (struct sockaddr *)&a, sizeof a) != 0)
        return -1;
    return fd;
}

static int broker(int argc, char **argv, int first)
{
    return argc > first ? dom0_connection(argv[first]) : agent_fd(-1);
}

static int broker_tx(int fd)
{
    static char value[4000 + 64];
    memset(value, 'v', 4000);
    long long held = 0;
    char reply[4096];
    int connections = 0;
    const char *why = "the probe's own bounds";
    /* over new connections of the same domain, 16 transactions each, 4000-byte values until refused */
    for (int c = 0; c < 8; c++) {
        int conn = -1;
        int type = request(fd, LOHV_CONNECT, 0, NULL, 0, reply, sizeof reply, &conn);
        if (type != LOHV_CONNECT || conn < 0) {
            why = type == XS_ERROR ? "no more connections" : "connect failed";
            break;
        }
        connections++;
        for (int t = 0; t < 16; t++) {
            type = request(conn, XS_TRANSACTION_START, 0, "", 1, reply, sizeof reply, NULL);
            if (type != XS_TRANSACTION_START) {
                why = reply;
                goto done;
            }
            uint32_t tx = (uint32_t)strtoul(reply, NULL, 10);
            for (int i = 0; i < 64; i++) {
                char payload[4096 + 128];
                int plen = snprintf(payload, 128, "data/probe-%d-%d-%d", c, t, i) + 1;
                memcpy(payload + plen, value, 4000);
                type = request(conn, XS_WRITE, tx, payload, (uint32_t)plen + 4000, reply, sizeof reply, NULL);
                if (type != XS_WRITE) {
                    why = reply;
                    goto done;
                }
                held += 4000;
                if (held >= (64LL << 20)) {
                    why = "64 MiB held: the probe stops there";
                    goto done;
                }
            }
        }
    }
done:
    printf("PROBE broker-tx: HELD %lld bytes in open transactions over %d connections (stopped by: %s)\n", held, connections, why);
    fflush(stdout);
    return held >= (4LL << 20) ? 0 : 1;
}

static int broker_watch(int fd, int seconds)
{
    char reply[4096];
    if (request(fd, XS_WATCH, 0, "/\0probe", 8, reply, sizeof reply, NULL) != XS_WATCH)
        return refused("watch: %s", reply);
    int events = 0;
    time_t end = time(NULL) + seconds;
    while (time(NULL) < end) {
        struct pollfd p = { .fd = fd, .events = POLLIN };
        if (poll(&p, 1, 200) <= 0)
            continue;
        uint32_t h[4];
        char body[4097];
        if (recv(fd, h, sizeof h, MSG_WAITALL) != (ssize_t)sizeof h || h[3] > 4096 || (h[3] && recv(fd, body, h[3], MSG_WAITALL) != (ssize_t)h[3]))
            break;
        body[h[3]] = 0;
        if (h[0] == XS_WATCH_EVENT) {
            printf("EVENT %s\n", body);
            events++;
        }
    }
    printf("PROBE broker-watch: SAW %d events\n", events);
    fflush(stdout);
    return 0;
}

static int broker_rm_home(int fd)
{
    char reply[4096], domid[32] = "";
    if (request(fd, XS_READ, 0, "domid", 6, reply, sizeof reply, NULL) != XS_READ)
        return broken("read domid");
    snprintf(domid, sizeof domid, "%.20s", reply);
    char home[64];
    snprintf(home, sizeof home, "/local/domain/%s", domid);
    const char *targets[] = { "domid", "name", home };
    int removed = 0;
    char detail[512] = "";
    for (int i = 0; i < 3; i++) {
        int type = request(fd, XS_RM, 0, targets[i], (uint32_t)strlen(targets[i]) + 1, reply, sizeof reply, NULL);
        removed += type == XS_RM;
        snprintf(detail + strlen(detail), sizeof detail - strlen(detail), "%s: %.40s; ", targets[i], type == XS_RM ? "removed" : reply);
    }
    return removed ? worked("%s", detail) : refused("%s", detail);
}

int main(int argc, char **argv)
{
    if (argc < 2) {
        fprintf(stderr, "usage: qube-attack PROBE [ARG]...\n");
        return 2;
    }
    probe = argv[1];
    setvbuf(stdout, NULL, _IOLBF, 0);
#define NEED(n) do { if (argc < (n) + 2) { fprintf(stderr, "qube-attack %s: missing arguments\n", probe); return 2; } } while (0)
    if (!strcmp(probe, "mknod-read")) { NEED(4); return mknod_read(argv[2], (unsigned)atoi(argv[3]), (unsigned)atoi(argv[4]), argv[5]); }
    if (!strcmp(probe, "mount-tmpfs")) { NEED(1); return mount_tmpfs(argv[2]); }
    if (!strcmp(probe, "remount-rw")) { NEED(2); return remount_rw(argv[2], argv[3]); }
    if (!strcmp(probe, "handle-open")) { NEED(1); return handle_open(argv[2]); }
    if (!strcmp(probe, "cgroup-agent")) { NEED(1); return cgroup_agent(argv[2]); }
    if (!strcmp(probe, "sysctl-write")) { NEED(1); return sysctl_write(argv[2]); }
    if (!strcmp(probe, "clock-set")) return clock_set();
    if (!strcmp(probe, "rt-sched")) return rt_sched();
    if (!strcmp(probe, "kernel-log")) return kernel_log();
    if (!strcmp(probe, "userns")) return userns();
    if (!strcmp(probe, "keyring")) return keyring();
    if (!strcmp(probe, "bpf")) return bpf_map();
    if (!strcmp(probe, "perf")) return perf();
    if (!strcmp(probe, "userfaultfd")) return userfault();
    if (!strcmp(probe, "ptrace")) { NEED(1); return trace(atoi(argv[2])); }
    if (!strcmp(probe, "truncate-stdout")) return truncate_stdout();
    if (!strcmp(probe, "processes")) { NEED(1); return processes(atoi(argv[2])); }
    if (!strcmp(probe, "console")) { NEED(1); return console(atol(argv[2])); }
    if (!strncmp(probe, "broker-", 7)) {
        int first = !strcmp(probe, "broker-watch") ? 3 : 2;
        if (!strcmp(probe, "broker-watch"))
            NEED(1);
        int fd = broker(argc, argv, first);
        if (fd < 0)
            return broken("no broker connection");
        if (!strcmp(probe, "broker-tx"))
            return broker_tx(fd);
        if (!strcmp(probe, "broker-watch"))
            return broker_watch(fd, atoi(argv[2]));
        if (!strcmp(probe, "broker-rm-home"))
            return broker_rm_home(fd);
    }
    fprintf(stderr, "qube-attack: unknown probe %s\n", probe);
    return 2;
}
