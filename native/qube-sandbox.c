/*
 * qube-sandbox: runs a program as the whole of a qube on the loopback hypervisor.
 *
 *   qube-sandbox --name NAME --id-base N --staging DIR --root LAYER [--root-writable]
 *                --private IMAGE --memory BYTES --pids N --cpus N [--tmp-size BYTES]
 *                --log FILE [--log-size BYTES] [--env NAME=VALUE]... [--bind-ro PATH]...
 *                [--die-with-parent] -- PROGRAM [ARG]...
 *
 * Threat model: everything a qube can write is hostile, and so is every process in it. The qube's
 * root has power over the qube only. The layers, each of which holds on its own:
 *
 *   identity   The qube runs in its own user namespace, ids 0-65535 mapped to host ids
 *              N..N+65535 (a range no host user owns). Every other namespace of the qube (mount,
 *              pid, ipc, uts, network, cgroup) is created here by host root and so owned by the
 *              host's user namespace: the qube's root holds no capability over any of them. It
 *              cannot mount, unmount or remount anything (the read-only binds stay read-only),
 *              set the hostname, configure the network, or write sysctls; device nodes cannot be
 *              made (mknod needs the host's CAP_MKNOD) nor opened from the qube's filesystems
 *              (nodev), and handle-based opens need the host's CAP_DAC_READ_SEARCH.
 *   syscalls   no_new_privs (setuid bits mean nothing in a qube) and a seccomp filter refusing
 *              what the common container profiles refuse: namespaces, mounts, handles, modules,
 *              kexec, bpf, perf, userfaultfd, keys, io_uring, acct, swap, reboot, clock setting,
 *              syslog, ioperm... and every non-native system call ABI (i386, x32) kills.
 *   resources  its own cgroup (v2, or the v1 memory, pids and cpu hierarchies): memory limit,
 *              pids limit, CPU quota; bounded tmpfs sizes; the private volume is an ext4 image of
 *              fixed size; no real-time scheduling (RLIMIT_RTPRIO 0).
 *   paths      The set-up never follows a path the qube can write: the private volume's and the
 *              root layer's directories are opened with openat2(RESOLVE_NO_SYMLINKS |
 *              RESOLVE_BENEATH | RESOLVE_NO_XDEV) and mounted through the descriptor (open_tree,
 *              move_mount), never by name.
 *   leaks      A fixed environment (the --env list and QUBES_LOHV_FD), no descriptor but the
 *              broker connection (QUBES_LOHV_FD), stdin /dev/null; stdout and stderr are a pipe
 *              to this launcher, which writes the console log (capped lines, control characters
 *              escaped, rotated at --log-size): the qube holds no descriptor of the log file.
 *
 * The qube's file system:
 *   /        a small read-only tmpfs, built on STAGING and pivoted to;
 *   /usr     overlayfs: the root layer's usr over the host's /usr, both idmapped (host root owns
 *            what qube root owns); read-only, or with --root-writable the layer is the upper
 *            directory (a template installs software into its own layer);
 *   /etc     the root layer's etc, idmapped; read-only unless --root-writable;
 *   /bin, /lib...  the host's usr-merge links (or its directories, read-only);
 *   /rw      the private volume (IMAGE, loop-mounted, idmapped), /home and /usr/local are its
 *            home and usrlocal directories;
 *   /proc    the pid namespace's, with the kernel's sensitive files masked and /proc/sys read-only;
 *   /dev     null, zero, full, random, urandom, tty, a tmpfs /dev/shm and a devpts instance of
 *            its own at /dev/pts (/dev/ptmx links to its ptmx);
 *   /tmp, /run, /var/tmp  tmpfs of bounded size;
 *   each --bind-ro PATH at its own path, read-only (the runtime's executables).
 * Files on the volumes hold the qube's own ids (0 for its root), so a volume copied to another
 * qube needs no change of owners.
 *
 * Processes: this launcher stays in the host's namespaces as dom0's side of the qube (console
 * logger, cgroup owner). It clones the qube's init (pid 1 of the new pid namespace), which joins
 * the cgroup, builds the file system as host root, then enters the qube's user namespace, drops
 * privileges, runs PROGRAM as the qube's root, reaps orphans, and exits with PROGRAM's status;
 * with init the kernel kills every process of the qube. init dies with this launcher
 * (PR_SET_PDEATHSIG). Signals: SIGTERM, SIGINT and SIGHUP are passed to PROGRAM (shutdown);
 * SIGUSR2 kills the qube at once (kill). With --die-with-parent, the death of the process that
 * started the launcher is a SIGUSR2. Exit status: PROGRAM's, 128+signal, or 125 when the sandbox
 * could not be set up (the reason on stderr).
 */
#define _GNU_SOURCE
#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <linux/loop.h>
#include <linux/magic.h>
#include <linux/openat2.h>
#include <net/if.h>
#include <poll.h>
#include <sched.h>
#include <seccomp.h>
#include <signal.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <dirent.h>
#include <grp.h>
#include <linux/capability.h>
#include <sys/fsuid.h>
#include <sys/ioctl.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#define SETUP_FAILED 125
#define MAX_BINDS 16
#define MAX_ENV 64
#define ID_COUNT 65536
#define QUBE_USER 1000
#define LOG_LINE_MAX 4096
#define CGROUP_PARENT "qubes-runtime"

static const char *devices[] = { "null", "zero", "full", "random", "urandom", "tty", NULL };
/* the host's top-level links or directories that lead into /usr on a usr-merged system */
static const char *usr_links[] = { "bin", "sbin", "lib", "lib32", "lib64", "libx32", NULL };

static struct {
    const char *name, *staging, *root, *private_image, *log;
    int root_writable, die_with_parent;
    unsigned long id_base;
    long long memory, tmp_size, log_size;
    long pids, cpus;
    const char *binds[MAX_BINDS];
    int bind_count;
    char *env[MAX_ENV + 2];
    int env_count;
    int broker_fd;
    char **program;
} opt = { .broker_fd = -1, .log_size = 1 << 20 };

static volatile sig_atomic_t pending_signal, kill_requested;
static volatile pid_t forward_to;

static void die(const char *fmt, ...)
{
    int saved = errno;
    va_list ap;
    fputs("qube-sandbox: ", stderr);
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    if (saved)
        fprintf(stderr, ": %s", strerror(saved));
    fputc('\n', stderr);
    _exit(SETUP_FAILED);
}

static void fail(const char *fmt, ...)
{
    va_list ap;
    fputs("qube-sandbox: ", stderr);
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputc('\n', stderr);
    _exit(SETUP_FAILED);
}

static void usage(const char *why)
{
    fprintf(stderr, "qube-sandbox: %s\nusage: qube-sandbox --name NAME --id-base N --staging DIR --root LAYER [--root-writable] "
                    "--private IMAGE --memory BYTES --pids N --cpus N [--tmp-size BYTES] --log FILE [--log-size BYTES] "
                    "[--env NAME=VALUE]... [--bind-ro PATH]... [--die-with-parent] -- PROGRAM [ARG]...\n", why);
    exit(2);
}

static void path_join(char *out, size_t size, const char *a, const char *b)
{
    if ((size_t)snprintf(out, size, "%s/%s", a, b) >= size) {
        errno = ENAMETOOLONG;
        die("%s/%s", a, b);
    }
}

/* while the qube's root is built: what is made on it belongs to the qube's root (it stays read-only) */
static int owning;

static void own(const char *path)
{
    if (owning && lchown(path, (uid_t)opt.id_base, (gid_t)opt.id_base) != 0)
        die("chown %s", path);
}

static void make_link(const char *target, const char *path)
{
    if (symlink(target, path) != 0)
        die("symlink %s", path);
    own(path);
}

/* mkdir -p of a path dom0 controls (the staging root being built), tolerating existing directories */
static void make_dirs(const char *path, mode_t mode)
{
    char buf[4096];
    if (strlen(path) >= sizeof buf) {
        errno = ENAMETOOLONG;
        die("%s", path);
    }
    strcpy(buf, path);
    for (char *p = buf + 1; *p; p++) {
        if (*p == '/') {
            *p = 0;
            if (mkdir(buf, mode) == 0)
                own(buf);
            else if (errno != EEXIST)
                die("mkdir %s", buf);
            *p = '/';
        }
    }
    if (mkdir(buf, mode) == 0)
        own(buf);
    else if (errno != EEXIST)
        die("mkdir %s", buf);
}

static void write_file(const char *path, const char *text)
{
    int fd = open(path, O_WRONLY | O_CLOEXEC);
    if (fd < 0)
        die("open %s", path);
    ssize_t n = write(fd, text, strlen(text));
    if (n != (ssize_t)strlen(text))
        die("write %s to %s", text, path);
    close(fd);
}

static int file_exists(const char *path)
{
    struct stat st;
    return stat(path, &st) == 0;
}

/* ---------------------------------------------------------------------------------------------
 * Descriptors opened beneath a directory without following any link: what the qube wrote can
 * name nothing outside the volume, and no path is looked up twice.
 */

static int open_beneath(int dirfd, const char *path, int flags)
{
    struct open_how how = {
        .flags = (uint64_t)(flags | O_CLOEXEC | O_NOFOLLOW),
        .resolve = RESOLVE_NO_SYMLINKS | RESOLVE_BENEATH | RESOLVE_NO_XDEV | RESOLVE_NO_MAGICLINKS,
    };
    return (int)syscall(SYS_openat2, dirfd, path, &how, sizeof how);
}

/* a directory NAME in the directory dirfd: created if missing (mode, owned by the volume's root), never a link */
static int volume_dir(int dirfd, const char *name, const char *what)
{
    if (mkdirat(dirfd, name, 0755) != 0 && errno != EEXIST)
        die("%s: mkdir %s", what, name);
    int fd = open_beneath(dirfd, name, O_PATH | O_DIRECTORY);
    if (fd < 0) {
        if (errno == ELOOP || errno == ENOTDIR || errno == EXDEV)
            fail("%s: %s is not a directory (a link or another file was put in its place)", what, name);
        die("%s: open %s", what, name);
    }
    return fd;
}

/* attaches a clone of the tree at fd on the directory target, with attributes (MOUNT_ATTR_*, the
 * user namespace for MOUNT_ATTR_IDMAP) */
static void mount_fd(int fd, const char *target, uint64_t attr, int userns)
{
    int tree = open_tree(fd, "", OPEN_TREE_CLONE | OPEN_TREE_CLOEXEC | AT_EMPTY_PATH | AT_RECURSIVE);
    if (tree < 0)
        die("open_tree for %s", target);
    struct mount_attr ma = { .attr_set = attr, .userns_fd = (uint64_t)(attr & MOUNT_ATTR_IDMAP ? userns : 0) };
    if (attr && mount_setattr(tree, "", AT_EMPTY_PATH | AT_RECURSIVE, &ma, sizeof ma) != 0) {
        if (errno == EINVAL && (attr & MOUNT_ATTR_IDMAP))
            die("idmapped mount for %s (the file system under the state directory must support idmapped mounts: ext4, xfs, btrfs; tmpfs only from Linux 6.3)", target);
        die("mount_setattr for %s", target);
    }
    if (move_mount(tree, "", AT_FDCWD, target, MOVE_MOUNT_F_EMPTY_PATH) != 0)
        die("move_mount to %s", target);
    close(tree);
}

static void mount_or_die(const char *src, const char *dst, const char *type, unsigned long flags, const char *data)
{
    if (mount(src, dst, type, flags, data) != 0)
        die("mount %s on %s", src ? src : type, dst);
}

static void bind_mount(const char *src, const char *dst, int read_only)
{
    mount_or_die(src, dst, NULL, MS_BIND | MS_REC, NULL);
    if (read_only)
        mount_or_die(NULL, dst, NULL, MS_BIND | MS_REMOUNT | MS_RDONLY | MS_NOSUID | MS_NODEV, NULL);
}

/* ---------------------------------------------------------------------------------------------
 * The user namespace: made by a helper child, mapped by this (host root) process, kept as a
 * descriptor. It is both the qube's user namespace and the idmapping of its volumes' mounts.
 */

static int make_userns(void)
{
    int sync[2];
    if (pipe2(sync, O_CLOEXEC) != 0)
        die("pipe");
    pid_t helper = fork();
    if (helper < 0)
        die("fork");
    if (helper == 0) {
        close(sync[1]);
        char c;
        if (unshare(CLONE_NEWUSER) != 0)
            _exit(1);
        if (read(sync[0], &c, 1) < 0) /* EOF when the parent has the descriptor */
            _exit(1);
        _exit(0);
    }
    close(sync[0]);
    char path[64], map[64];
    /* wait until the helper is in its namespace: its ns link differs from ours */
    struct stat own, its;
    if (stat("/proc/self/ns/user", &own) != 0)
        die("stat own user namespace");
    snprintf(path, sizeof path, "/proc/%d/ns/user", helper);
    for (int i = 0;; i++) {
        if (stat(path, &its) != 0)
            die("stat %s", path);
        if (its.st_ino != own.st_ino)
            break;
        if (i > 10000)
            fail("the user namespace helper did not start");
        usleep(100);
    }
    snprintf(map, sizeof map, "0 %lu %d\n", opt.id_base, ID_COUNT);
    snprintf(path, sizeof path, "/proc/%d/uid_map", helper);
    write_file(path, map);
    snprintf(path, sizeof path, "/proc/%d/gid_map", helper);
    write_file(path, map);
    snprintf(path, sizeof path, "/proc/%d/ns/user", helper);
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        die("open %s", path);
    close(sync[1]);
    int status;
    while (waitpid(helper, &status, 0) < 0 && errno == EINTR)
        ;
    return fd;
}

/* ---------------------------------------------------------------------------------------------
 * cgroups: the v2 hierarchy (a fresh Debian 12) or the v1 memory, pids and cpu hierarchies (the
 * hybrid layout). The qube's group is CGROUP_PARENT/NAME.PID, PID this launcher's.
 */

static struct {
    int v2;
    char dirs[3][512];
    int count;
} cg;

static const char *v1_controllers[] = { "memory", "pids", "cpu" };

static int write_opt(const char *dir, const char *file, const char *value)
{
    char path[600];
    path_join(path, sizeof path, dir, file);
    int fd = open(path, O_WRONLY | O_CLOEXEC);
    if (fd < 0)
        return -1;
    ssize_t n = write(fd, value, strlen(value));
    close(fd);
    return n == (ssize_t)strlen(value) ? 0 : -1;
}

static void set_limit(const char *dir, const char *file, const char *value)
{
    if (write_opt(dir, file, value) != 0)
        die("cgroup %s/%s = %s", dir, file, value);
}

/* removes the groups of launchers that died without cleaning up (their pid is gone) */
static void sweep_stale(const char *parent)
{
    DIR *d = opendir(parent);
    if (!d)
        return;
    struct dirent *e;
    while ((e = readdir(d)) != NULL) {
        char *dot = strrchr(e->d_name, '.');
        if (e->d_type != DT_DIR || !dot || dot == e->d_name)
            continue;
        char *end;
        long pid = strtol(dot + 1, &end, 10);
        if (*end || pid <= 0 || (kill((pid_t)pid, 0) == 0 || errno != ESRCH))
            continue;
        char path[600];
        path_join(path, sizeof path, parent, e->d_name);
        rmdir(path);
    }
    closedir(d);
}

static void cgroup_create(void)
{
    struct statfs fs;
    if (statfs("/sys/fs/cgroup", &fs) != 0)
        die("statfs /sys/fs/cgroup");
    cg.v2 = fs.f_type == CGROUP2_SUPER_MAGIC;
    char leaf[128], parent[512];
    snprintf(leaf, sizeof leaf, "%s.%d", opt.name, (int)getpid());
    char value[64];
    if (cg.v2) {
        path_join(parent, sizeof parent, "/sys/fs/cgroup", CGROUP_PARENT);
        if (mkdir(parent, 0755) != 0 && errno != EEXIST)
            die("mkdir %s", parent);
        /* the controllers the limits need, enabled from the root down */
        if (write_opt("/sys/fs/cgroup", "cgroup.subtree_control", "+memory +pids +cpu") != 0
            || write_opt(parent, "cgroup.subtree_control", "+memory +pids +cpu") != 0)
            die("cgroup v2: enabling the memory, pids and cpu controllers");
        sweep_stale(parent);
        path_join(cg.dirs[0], sizeof cg.dirs[0], parent, leaf);
        cg.count = 1;
        if (mkdir(cg.dirs[0], 0755) != 0)
            die("mkdir %s", cg.dirs[0]);
        snprintf(value, sizeof value, "%lld", opt.memory);
        set_limit(cg.dirs[0], "memory.max", value);
        write_opt(cg.dirs[0], "memory.swap.max", "0");
        snprintf(value, sizeof value, "%ld", opt.pids);
        set_limit(cg.dirs[0], "pids.max", value);
        set_limit(cg.dirs[0], "cpu.weight", "100");
        snprintf(value, sizeof value, "%ld 100000", opt.cpus * 100000);
        set_limit(cg.dirs[0], "cpu.max", value);
        return;
    }
    for (int i = 0; i < 3; i++) {
        char root[128];
        snprintf(root, sizeof root, "/sys/fs/cgroup/%s", v1_controllers[i]);
        if (statfs(root, &fs) != 0 || fs.f_type != CGROUP_SUPER_MAGIC)
            fail("cgroup v1: the %s controller is not mounted at %s", v1_controllers[i], root);
        path_join(parent, sizeof parent, root, CGROUP_PARENT);
        if (mkdir(parent, 0755) != 0 && errno != EEXIST)
            die("mkdir %s", parent);
        sweep_stale(parent);
        path_join(cg.dirs[i], sizeof cg.dirs[i], parent, leaf);
        if (mkdir(cg.dirs[i], 0755) != 0)
            die("mkdir %s", cg.dirs[i]);
        cg.count = i + 1;
    }
    snprintf(value, sizeof value, "%lld", opt.memory);
    set_limit(cg.dirs[0], "memory.limit_in_bytes", value);
    write_opt(cg.dirs[0], "memory.memsw.limit_in_bytes", value); /* only with swap accounting */
    snprintf(value, sizeof value, "%ld", opt.pids);
    set_limit(cg.dirs[1], "pids.max", value);
    set_limit(cg.dirs[2], "cpu.shares", "1024");
    set_limit(cg.dirs[2], "cpu.cfs_period_us", "100000");
    snprintf(value, sizeof value, "%ld", opt.cpus * 100000);
    set_limit(cg.dirs[2], "cpu.cfs_quota_us", value);
}

static void cgroup_join(void)
{
    for (int i = 0; i < cg.count; i++)
        set_limit(cg.dirs[i], "cgroup.procs", "0");
}

static void cgroup_remove(void)
{
    for (int i = 0; i < cg.count; i++) {
        for (int tries = 0; rmdir(cg.dirs[i]) != 0 && errno == EBUSY && tries < 200; tries++)
            usleep(5000);
    }
}

/* ---------------------------------------------------------------------------------------------
 * The private volume: the image on a loop device of its own (cleared with its last mount).
 */

static int loop_attach(const char *image)
{
    int backing = open(image, O_RDWR | O_CLOEXEC | O_NOFOLLOW);
    if (backing < 0)
        die("open %s", image);
    struct stat st;
    if (fstat(backing, &st) != 0 || !S_ISREG(st.st_mode))
        fail("%s is not a regular file", image);
    int control = open("/dev/loop-control", O_RDWR | O_CLOEXEC);
    if (control < 0)
        die("open /dev/loop-control");
    for (int attempt = 0; attempt < 64; attempt++) {
        int n = ioctl(control, LOOP_CTL_GET_FREE);
        if (n < 0)
            die("LOOP_CTL_GET_FREE");
        char dev[32];
        snprintf(dev, sizeof dev, "/dev/loop%d", n);
        int loop = open(dev, O_RDWR | O_CLOEXEC);
        if (loop < 0)
            die("open %s", dev);
        struct loop_config config;
        memset(&config, 0, sizeof config);
        config.fd = (uint32_t)backing;
        config.info.lo_flags = LO_FLAGS_AUTOCLEAR;
        if (ioctl(loop, LOOP_CONFIGURE, &config) == 0) {
            close(control);
            close(backing);
            return loop;
        }
        int e = errno;
        close(loop);
        if (e != EBUSY) {
            errno = e;
            die("LOOP_CONFIGURE %s", dev);
        }
        /* another launcher took it first: ask again */
    }
    fail("no free loop device for %s", image);
    return -1;
}

/* ---------------------------------------------------------------------------------------------
 * The qube's file system, built as host root on STAGING in the new mount namespace.
 */

static int userns_fd = -1;

/* a hidden mount point for a layer while the overlays are made (removed before the pivot) */
static const char *layer_point(const char *newroot, const char *name, char *out, size_t size)
{
    char dir[4096];
    path_join(dir, sizeof dir, newroot, ".layers");
    make_dirs(dir, 0700);
    path_join(out, size, dir, name);
    make_dirs(out, 0700);
    return out;
}

/* setfsuid away from 0 clears the file-system capabilities from the effective set: raise them again */
static void restore_effective_caps(void)
{
    struct __user_cap_header_struct header = { .version = _LINUX_CAPABILITY_VERSION_3 };
    struct __user_cap_data_struct data[2];
    if (syscall(SYS_capget, &header, data) != 0)
        die("capget");
    data[0].effective = data[0].permitted;
    data[1].effective = data[1].permitted;
    if (syscall(SYS_capset, &header, data) != 0)
        die("capset");
}

static void build_usr_and_etc(const char *newroot, int layer)
{
    char target[4096], data[16384];
    int usr = volume_dir(layer, "usr", "root layer");
    int etc = volume_dir(layer, "etc", "root layer");
    close(volume_dir(usr, "local", "root layer")); /* the mount point of the private volume's usrlocal */
    uint64_t ro = opt.root_writable ? 0 : MOUNT_ATTR_RDONLY;

    /* /etc: the layer's own, nothing of the host's */
    path_join(target, sizeof target, newroot, "etc");
    make_dirs(target, 0755);
    mount_fd(etc, target, MOUNT_ATTR_IDMAP | MOUNT_ATTR_NOSUID | MOUNT_ATTR_NODEV | ro, userns_fd);

    /* /usr: the layer over the host's, both seen through the idmapping (host root owns what
     * qube root owns) */
    char host_usr[4096], layer_usr[4096];
    int host = open("/usr", O_PATH | O_DIRECTORY | O_CLOEXEC);
    if (host < 0)
        die("open /usr");
    mount_fd(host, layer_point(newroot, "host-usr", host_usr, sizeof host_usr), MOUNT_ATTR_IDMAP | MOUNT_ATTR_RDONLY, userns_fd);
    close(host);
    path_join(target, sizeof target, newroot, "usr");
    make_dirs(target, 0755);
    if (opt.root_writable) {
        /* upper and work directories must be on one mount: the layer's root, idmapped */
        char layer_root[4096];
        int work_parent = volume_dir(layer, ".work", "root layer");
        int work = volume_dir(work_parent, "usr", "root layer");
        close(work_parent);
        close(work);
        mount_fd(layer, layer_point(newroot, "layer", layer_root, sizeof layer_root), MOUNT_ATTR_IDMAP, userns_fd);
        int root_fd = open(layer_root, O_PATH | O_DIRECTORY | O_CLOEXEC);
        int upper_fd = root_fd < 0 ? -1 : open_beneath(root_fd, "usr", O_PATH | O_DIRECTORY);
        int work_fd = root_fd < 0 ? -1 : open_beneath(root_fd, ".work/usr", O_PATH | O_DIRECTORY);
        if (upper_fd < 0 || work_fd < 0)
            die("root layer: open usr and .work/usr");
        /* the descriptors' magic links name exactly the directories checked above */
        if ((size_t)snprintf(data, sizeof data, "lowerdir=%s,upperdir=/proc/self/fd/%d,workdir=/proc/self/fd/%d,redirect_dir=off,metacopy=off,index=off",
                             host_usr, upper_fd, work_fd) >= sizeof data)
            fail("overlay options for /usr too long");
        /* overlayfs writes its upper layer with the credentials of whoever mounted it: with the
         * file-system ids of the qube's root, what it creates lands on disk as the layer's root (0) */
        setfsgid((gid_t)opt.id_base);
        setfsuid((uid_t)opt.id_base);
        if ((gid_t)setfsgid((gid_t)-1) != (gid_t)opt.id_base || (uid_t)setfsuid((uid_t)-1) != (uid_t)opt.id_base)
            fail("setfsuid for the overlay");
        restore_effective_caps();
        mount_or_die("overlay", target, "overlay", MS_NOSUID | MS_NODEV, data);
        setfsuid(0);
        setfsgid(0);
        close(upper_fd);
        close(work_fd);
        close(root_fd);
    } else {
        mount_fd(usr, layer_point(newroot, "layer-usr", layer_usr, sizeof layer_usr), MOUNT_ATTR_IDMAP | MOUNT_ATTR_RDONLY, userns_fd);
        if ((size_t)snprintf(data, sizeof data, "lowerdir=%s:%s,redirect_dir=off,metacopy=off,index=off", layer_usr, host_usr) >= sizeof data)
            fail("overlay options for /usr too long");
        mount_or_die("overlay", target, "overlay", MS_RDONLY | MS_NOSUID | MS_NODEV, data);
    }
    close(usr);
    close(etc);
}

/* the host's /bin, /lib... : its usr-merge links, or its directories read-only */
static void build_usr_links(const char *newroot)
{
    char host[64], target[4096];
    for (int i = 0; usr_links[i]; i++) {
        struct stat st;
        snprintf(host, sizeof host, "/%s", usr_links[i]);
        if (lstat(host, &st) != 0)
            continue;
        path_join(target, sizeof target, newroot, usr_links[i]);
        if (S_ISLNK(st.st_mode)) {
            char link[4096];
            ssize_t n = readlink(host, link, sizeof link - 1);
            if (n < 0)
                die("readlink %s", host);
            link[n] = 0;
            make_link(link, target);
        } else if (S_ISDIR(st.st_mode)) {
            make_dirs(target, 0755);
            bind_mount(host, target, 1);
        }
    }
}

static void build_proc(const char *newroot)
{
    char path[4096], sub[4096];
    path_join(path, sizeof path, newroot, "proc");
    make_dirs(path, 0555);
    mount_or_die("proc", path, "proc", MS_NOSUID | MS_NODEV | MS_NOEXEC, NULL);
    /* what the container profiles hide of the kernel: files covered by /dev/null, directories by an empty read-only tmpfs */
    static const char *masked_files[] = { "kcore", "keys", "timer_list", "sched_debug", "latency_stats", "kallsyms", "sysrq-trigger", "kpageflags", "kpagecount", "kpagecgroup", NULL };
    static const char *masked_dirs[] = { "acpi", "scsi", "irq", "bus", "fs", "driver", "tty/driver", NULL };
    for (int i = 0; masked_files[i]; i++) {
        path_join(sub, sizeof sub, path, masked_files[i]);
        if (file_exists(sub))
            mount_or_die("/dev/null", sub, NULL, MS_BIND, NULL);
    }
    for (int i = 0; masked_dirs[i]; i++) {
        path_join(sub, sizeof sub, path, masked_dirs[i]);
        if (file_exists(sub))
            mount_or_die("qube-masked", sub, "tmpfs", MS_RDONLY | MS_NOSUID | MS_NODEV | MS_NOEXEC, "size=0,mode=0555");
    }
    path_join(sub, sizeof sub, path, "sys");
    bind_mount(sub, sub, 1);
}

static void build_dev(const char *newroot)
{
    char path[4096], sub[4096], data[128];
    path_join(path, sizeof path, newroot, "dev");
    make_dirs(path, 0755);
    snprintf(data, sizeof data, "size=64k,nr_inodes=64,mode=0755,uid=%lu,gid=%lu", opt.id_base, opt.id_base);
    mount_or_die("qube-dev", path, "tmpfs", MS_NOSUID | MS_NOEXEC, data);
    for (int i = 0; devices[i]; i++) {
        char host[64];
        snprintf(host, sizeof host, "/dev/%s", devices[i]);
        path_join(sub, sizeof sub, path, devices[i]);
        int fd = open(sub, O_CREAT | O_WRONLY | O_CLOEXEC, 0666);
        if (fd < 0)
            die("create %s", sub);
        close(fd);
        bind_mount(host, sub, 0);
        /* the host's node keeps the host's owner: it is the same device */
    }
    path_join(sub, sizeof sub, path, "shm");
    make_dirs(sub, 0755);
    snprintf(data, sizeof data, "size=%lld,mode=1777,uid=%lu,gid=%lu", opt.tmp_size, opt.id_base, opt.id_base);
    mount_or_die("qube-shm", sub, "tmpfs", MS_NOSUID | MS_NODEV, data);
    /* terminals: a devpts instance of the qube's own (its ptys are not the host's nor another qube's), group tty (5) */
    path_join(sub, sizeof sub, path, "pts");
    make_dirs(sub, 0755);
    snprintf(data, sizeof data, "newinstance,ptmxmode=0666,mode=0620,gid=%lu", opt.id_base + 5);
    mount_or_die("devpts", sub, "devpts", MS_NOSUID | MS_NOEXEC, data);
    static const char *links[][2] = { { "ptmx", "pts/ptmx" }, { "fd", "/proc/self/fd" }, { "stdin", "/proc/self/fd/0" },
                                      { "stdout", "/proc/self/fd/1" }, { "stderr", "/proc/self/fd/2" } };
    for (size_t i = 0; i < sizeof links / sizeof links[0]; i++) {
        path_join(sub, sizeof sub, path, links[i][0]);
        make_link(links[i][1], sub);
    }
}

/* /rw from the image, and its home and usrlocal directories as /home and /usr/local */
static void build_private(const char *newroot)
{
    char raw[4096], target[4096];
    int loop = loop_attach(opt.private_image);
    char dev[64];
    snprintf(dev, sizeof dev, "/proc/self/fd/%d", loop);
    /* the file system as it is on disk, only for the set-up (host root creates with the ids 0 on disk: the qube's root) */
    layer_point(newroot, "private", raw, sizeof raw);
    mount_or_die(dev, raw, "ext4", MS_NOSUID | MS_NODEV, "errors=remount-ro");
    close(loop);
    int volume = open(raw, O_PATH | O_DIRECTORY | O_CLOEXEC);
    if (volume < 0)
        die("open %s", raw);
    path_join(target, sizeof target, newroot, "rw");
    make_dirs(target, 0755);
    mount_fd(volume, target, MOUNT_ATTR_IDMAP | MOUNT_ATTR_NOSUID | MOUNT_ATTR_NODEV, userns_fd);
    static const char *parts[][2] = { { "home", "home" }, { "usrlocal", "usr/local" } };
    for (size_t i = 0; i < sizeof parts / sizeof parts[0]; i++) {
        path_join(target, sizeof target, newroot, parts[i][1]);
        if (mkdirat(volume, parts[i][0], 0755) != 0 && errno != EEXIST)
            die("private volume: mkdir %s", parts[i][0]);
        int fd = open_beneath(volume, parts[i][0], O_PATH | O_DIRECTORY);
        if (fd < 0) {
            /* the qube replaced it (a link, a file): it keeps its volume, without this mount */
            fprintf(stderr, "qube-sandbox: private volume: %s is not a directory; /%s is left empty\n", parts[i][0], parts[i][1]);
            continue;
        }
        if (!file_exists(target) && mkdir(target, 0755) != 0) {
            /* no mount point in a read-only /usr: /usr/local stays the template's */
            fprintf(stderr, "qube-sandbox: no /%s to mount the private volume's %s on: %s\n", parts[i][1], parts[i][0], strerror(errno));
            close(fd);
            continue;
        }
        mount_fd(fd, target, MOUNT_ATTR_IDMAP | MOUNT_ATTR_NOSUID | MOUNT_ATTR_NODEV, userns_fd);
        close(fd);
    }
    close(volume);
}

static void build_root(void)
{
    const char *newroot = opt.staging;
    char path[4096], data[128];
    mount_or_die("none", "/", NULL, MS_REC | MS_PRIVATE, NULL);
    snprintf(data, sizeof data, "size=4m,mode=0755,uid=%lu,gid=%lu", opt.id_base, opt.id_base);
    mount_or_die("qube-root", newroot, "tmpfs", MS_NOSUID | MS_NODEV, data);
    owning = 1;

    int layer = open(opt.root, O_PATH | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    if (layer < 0)
        die("open root layer %s", opt.root);
    build_usr_and_etc(newroot, layer);
    close(layer);
    build_usr_links(newroot);
    build_private(newroot);
    build_proc(newroot);
    build_dev(newroot);

    static const char *scratch[][2] = { { "tmp", "1777" }, { "var/tmp", "1777" }, { "run", "0755" } };
    for (size_t i = 0; i < sizeof scratch / sizeof scratch[0]; i++) {
        path_join(path, sizeof path, newroot, scratch[i][0]);
        make_dirs(path, 0755);
        snprintf(data, sizeof data, "size=%lld,mode=%s,uid=%lu,gid=%lu", opt.tmp_size, scratch[i][1], opt.id_base, opt.id_base);
        mount_or_die("qube-scratch", path, "tmpfs", MS_NOSUID | MS_NODEV, data);
    }
    path_join(path, sizeof path, newroot, "var/run");
    make_link("../run", path);
    path_join(path, sizeof path, newroot, "home");
    make_dirs(path, 0755);
    path_join(path, sizeof path, newroot, "root");
    make_dirs(path, 0700);

    for (int i = 0; i < opt.bind_count; i++) {
        path_join(path, sizeof path, newroot, opt.binds[i] + (opt.binds[i][0] == '/'));
        if (!file_exists(path))
            make_dirs(path, 0755);
        bind_mount(opt.binds[i], path, 1);
    }

    /* the layers' hidden mount points go: the overlays keep their own references */
    char layers[4096];
    path_join(layers, sizeof layers, newroot, ".layers");
    static const char *hidden[] = { "host-usr", "layer", "layer-usr", "private", NULL };
    for (int i = 0; hidden[i]; i++) {
        path_join(path, sizeof path, layers, hidden[i]);
        if (file_exists(path)) {
            umount2(path, MNT_DETACH);
            rmdir(path);
        }
    }
    rmdir(layers);

    owning = 0;
    path_join(path, sizeof path, newroot, ".old-root");
    make_dirs(path, 0700);
    if (syscall(SYS_pivot_root, newroot, path) != 0)
        die("pivot_root %s", newroot);
    if (chdir("/") != 0)
        die("chdir /");
    if (umount2("/.old-root", MNT_DETACH) != 0)
        die("detach the host's root");
    if (rmdir("/.old-root") != 0)
        die("rmdir /.old-root");
    /* the layout is complete: the root itself becomes read-only (the mounts on it keep their own modes) */
    mount_or_die(NULL, "/", NULL, MS_BIND | MS_REMOUNT | MS_RDONLY | MS_NOSUID | MS_NODEV, NULL);
}

static void loopback_up(void)
{
    int s = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    if (s < 0)
        die("socket");
    struct ifreq ifr;
    memset(&ifr, 0, sizeof ifr);
    strcpy(ifr.ifr_name, "lo");
    if (ioctl(s, SIOCGIFFLAGS, &ifr) != 0)
        die("lo flags");
    ifr.ifr_flags |= IFF_UP | IFF_RUNNING;
    if (ioctl(s, SIOCSIFFLAGS, &ifr) != 0)
        die("lo up");
    close(s);
}

/* ---------------------------------------------------------------------------------------------
 * Privileges: into the qube's user namespace as its root, capabilities that act only on the host
 * dropped from the bounding set, no new privileges, the seccomp filter.
 */

static void enter_qube(void)
{
    if (setns(userns_fd, CLONE_NEWUSER) != 0)
        die("setns into the qube's user namespace");
    close(userns_fd);
    if (setgroups(0, NULL) != 0 || setresgid(0, 0, 0) != 0 || setresuid(0, 0, 0) != 0)
        die("become the qube's root");
    static const int dropped[] = { CAP_SYS_MODULE, CAP_SYS_RAWIO, CAP_SYS_PACCT, CAP_SYS_ADMIN, CAP_SYS_BOOT, CAP_SYS_NICE,
                                   CAP_SYS_RESOURCE, CAP_SYS_TIME, CAP_SYS_TTY_CONFIG, CAP_MKNOD, CAP_LEASE, CAP_AUDIT_WRITE,
                                   CAP_AUDIT_CONTROL, CAP_MAC_OVERRIDE, CAP_MAC_ADMIN, CAP_SYSLOG, CAP_WAKE_ALARM,
                                   CAP_BLOCK_SUSPEND, CAP_AUDIT_READ, CAP_PERFMON, CAP_BPF, CAP_CHECKPOINT_RESTORE,
                                   CAP_NET_ADMIN, CAP_LINUX_IMMUTABLE, CAP_IPC_LOCK };
    for (size_t i = 0; i < sizeof dropped / sizeof dropped[0]; i++) {
        if (prctl(PR_CAPBSET_DROP, dropped[i], 0, 0, 0) != 0 && errno != EINVAL)
            die("drop capability %d", dropped[i]);
    }
    struct rlimit none = { 0, 0 };
    if (setrlimit(RLIMIT_RTPRIO, &none) != 0)
        die("RLIMIT_RTPRIO");
    if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0)
        die("PR_SET_NO_NEW_PRIVS");
}

static void deny(scmp_filter_ctx ctx, const char *name, int action)
{
    int nr = seccomp_syscall_resolve_name(name);
    if (nr == __NR_SCMP_ERROR)
        return; /* not a system call of this architecture */
    if (seccomp_rule_add(ctx, action, nr, 0) != 0)
        fail("seccomp: rule for %s", name);
}

static void load_seccomp(void)
{
    scmp_filter_ctx ctx = seccomp_init(SCMP_ACT_ALLOW);
    /* other ABIs (i386 through int 0x80, x32) are not in the filter: they kill */
    if (!ctx || seccomp_attr_set(ctx, SCMP_FLTATR_ACT_BADARCH, SCMP_ACT_KILL_PROCESS) != 0)
        fail("seccomp_init");
    /* a binary search over the system call numbers instead of a linear scan: every system call of
     * the qube runs the filter */
    if (seccomp_attr_set(ctx, SCMP_FLTATR_CTL_OPTIMIZE, 2) != 0)
        fail("seccomp: binary tree");
    static const char *denied[] = {
        /* namespaces and mounts */
        "unshare", "setns", "mount", "umount", "umount2", "pivot_root", "chroot", "mount_setattr", "move_mount", "open_tree",
        "fsopen", "fsconfig", "fsmount", "fspick",
        /* handles, modules, kexec, the kernel's own facilities */
        "open_by_handle_at", "name_to_handle_at", "init_module", "finit_module", "delete_module", "create_module",
        "query_module", "get_kernel_syms", "kexec_load", "kexec_file_load", "bpf", "perf_event_open", "userfaultfd",
        "keyctl", "add_key", "request_key", "acct", "swapon", "swapoff", "reboot", "syslog", "quotactl", "quotactl_fd",
        "lookup_dcookie", "nfsservctl", "uselib", "_sysctl", "ustat", "sysfs", "vhangup", "ioperm", "iopl", "modify_ldt",
        "vm86", "vm86old", "io_uring_setup", "io_uring_enter", "io_uring_register", "fanotify_init",
        /* clocks and names of the host */
        "clock_settime", "clock_settime64", "settimeofday", "stime", "clock_adjtime", "clock_adjtime64", "adjtimex",
        "sethostname", "setdomainname",
        NULL,
    };
    for (int i = 0; denied[i]; i++)
        deny(ctx, denied[i], SCMP_ACT_ERRNO(EPERM));
    /* clone3 passes its flags in memory, out of the filter's sight: ENOSYS makes the C library fall back to clone */
    deny(ctx, "clone3", SCMP_ACT_ERRNO(ENOSYS));
    /* clone with any namespace flag */
    static const uint64_t namespaces[] = { CLONE_NEWNS, CLONE_NEWUTS, CLONE_NEWIPC, CLONE_NEWUSER, CLONE_NEWPID, CLONE_NEWNET,
                                           CLONE_NEWCGROUP, 0x80 /* CLONE_NEWTIME */ };
    for (size_t i = 0; i < sizeof namespaces / sizeof namespaces[0]; i++) {
        if (seccomp_rule_add(ctx, SCMP_ACT_ERRNO(EPERM), SCMP_SYS(clone), 1, SCMP_A0(SCMP_CMP_MASKED_EQ, namespaces[i], namespaces[i])) != 0)
            fail("seccomp: clone rule");
    }
    /* personality: no ADDR_NO_RANDOMIZE, no READ_IMPLIES_EXEC */
    static const uint64_t personas[] = { 0x0040000 /* ADDR_NO_RANDOMIZE */, 0x0400000 /* READ_IMPLIES_EXEC */ };
    for (size_t i = 0; i < sizeof personas / sizeof personas[0]; i++) {
        if (seccomp_rule_add(ctx, SCMP_ACT_ERRNO(EPERM), SCMP_SYS(personality), 1, SCMP_A0(SCMP_CMP_MASKED_EQ, personas[i], personas[i])) != 0)
            fail("seccomp: personality rule");
    }
    if (seccomp_load(ctx) != 0)
        fail("seccomp_load");
    seccomp_release(ctx);
}

/* ---------------------------------------------------------------------------------------------
 * Inside the qube, as its root: the user's home on first start.
 */

static void first_start(void)
{
    struct stat st;
    if (stat("/home/user", &st) == 0 || mkdir("/home/user", 0755) != 0)
        return;
    if (chown("/home/user", QUBE_USER, QUBE_USER) != 0)
        return;
    DIR *skel = opendir("/etc/skel");
    if (!skel)
        return;
    struct dirent *e;
    while ((e = readdir(skel)) != NULL) {
        if (e->d_type != DT_REG)
            continue;
        char from[512], to[512], buf[8192];
        snprintf(from, sizeof from, "/etc/skel/%s", e->d_name);
        snprintf(to, sizeof to, "/home/user/%s", e->d_name);
        int in = open(from, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
        int out = open(to, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, 0644);
        ssize_t n;
        while (in >= 0 && out >= 0 && (n = read(in, buf, sizeof buf)) > 0)
            if (write(out, buf, (size_t)n) != n)
                break;
        if (out >= 0 && fchown(out, QUBE_USER, QUBE_USER) != 0)
            unlink(to);
        if (in >= 0)
            close(in);
        if (out >= 0)
            close(out);
    }
    closedir(skel);
}

/* ---------------------------------------------------------------------------------------------
 * init: pid 1 of the qube.
 */

static void forward(int sig)
{
    if (forward_to > 0)
        kill(forward_to, sig);
}

static int init_main(int launcher_alive, int log_write)
{
    if (prctl(PR_SET_PDEATHSIG, SIGKILL) != 0)
        die("PR_SET_PDEATHSIG");
    /* the launcher holds the pipe's other end: hung up means it died before the signal was armed */
    struct pollfd alive = { .fd = launcher_alive, .events = POLLIN };
    if (poll(&alive, 1, 0) != 0)
        _exit(SETUP_FAILED);
    close(launcher_alive);
    /* from here what init says (a set-up failure, a refused volume path) is in the qube's console log */
    if (dup2(log_write, 1) < 0 || dup2(log_write, 2) < 0)
        die("console");
    cgroup_join();
    if (unshare(CLONE_NEWCGROUP) != 0)
        die("unshare the cgroup namespace");
    if (setsid() < 0)
        die("setsid");
    build_root();
    if (sethostname(opt.name, strlen(opt.name)) != 0)
        die("sethostname");
    loopback_up();

    /* standard descriptors: nothing in, the console pipe out; nothing else but the broker connection */
    int null = open("/dev/null", O_RDWR | O_CLOEXEC);
    if (null < 0 || dup2(null, 0) < 0)
        die("standard descriptors");
    close(null);
    close(log_write);
    for (int fd = 3; fd < 1024; fd++) {
        if (fd != opt.broker_fd && fd != userns_fd)
            close(fd);
    }
    if (syscall(SYS_close_range, 1024, ~0U, 0) != 0 && errno != ENOSYS)
        die("close_range");

    enter_qube();
    first_start();
    if (chdir("/") != 0)
        die("chdir /");
    load_seccomp();

    pid_t child = fork();
    if (child < 0)
        die("fork");
    if (child == 0) {
        signal(SIGTERM, SIG_DFL);
        signal(SIGINT, SIG_DFL);
        signal(SIGHUP, SIG_DFL);
        execvpe(opt.program[0], opt.program, opt.env);
        die("exec %s", opt.program[0]);
    }
    forward_to = child;
    for (;;) {
        int status;
        pid_t p = wait(&status);
        if (p < 0) {
            if (errno == EINTR)
                continue;
            return SETUP_FAILED;
        }
        if (p == child)
            return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
    }
}

/* ---------------------------------------------------------------------------------------------
 * The launcher's side: the console log, written by dom0 only.
 */

static struct {
    int fd;
    long long size;
    int in_line, cut; /* bytes of the current line written; whether its rest is dropped */
} con = { .fd = -1 };

static void log_open(void)
{
    con.fd = open(opt.log, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC | O_NOFOLLOW, 0640);
    if (con.fd < 0)
        die("open %s", opt.log);
    struct stat st;
    con.size = fstat(con.fd, &st) == 0 ? st.st_size : 0;
}

static void log_put(const char *text, size_t n)
{
    if (con.size + (long long)n > opt.log_size) {
        char old[4096];
        if ((size_t)snprintf(old, sizeof old, "%s.1", opt.log) < sizeof old)
            rename(opt.log, old);
        close(con.fd);
        log_open();
    }
    if (write(con.fd, text, n) == (ssize_t)n)
        con.size += (long long)n;
}

/* copies what the qube printed, escaping control characters and cutting lines at LOG_LINE_MAX */
static void log_copy(const unsigned char *data, size_t n)
{
    char out[4 * 4096 + 64];
    size_t o = 0;
    for (size_t i = 0; i < n; i++) {
        unsigned char c = data[i];
        if (c == '\n') {
            out[o++] = '\n';
            con.in_line = 0;
            con.cut = 0;
        } else if (con.cut) {
            continue;
        } else if (con.in_line >= LOG_LINE_MAX) {
            o += (size_t)snprintf(out + o, sizeof out - o, "...(line cut)");
            con.cut = 1;
        } else if (c < 0x20 && c != '\t') {
            o += (size_t)snprintf(out + o, sizeof out - o, "\\x%02x", c);
            con.in_line += 4;
        } else if (c == 0x7f) {
            o += (size_t)snprintf(out + o, sizeof out - o, "\\x7f");
            con.in_line += 4;
        } else {
            out[o++] = (char)c;
            con.in_line++;
        }
        if (o > sizeof out - 64) {
            log_put(out, o);
            o = 0;
        }
    }
    if (o)
        log_put(out, o);
}

static void on_signal(int sig)
{
    if (sig == SIGUSR2)
        kill_requested = 1;
    else
        pending_signal = sig;
}

static long long number(const char *text, const char *what)
{
    char *end;
    errno = 0;
    long long v = strtoll(text, &end, 10);
    if (errno || *end || v <= 0)
        usage(what);
    return v;
}

int main(int argc, char **argv)
{
    int i;
    for (i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (strcmp(a, "--") == 0) {
            i++;
            break;
        }
        if (strcmp(a, "--die-with-parent") == 0) {
            opt.die_with_parent = 1;
            continue;
        }
        if (strcmp(a, "--root-writable") == 0) {
            opt.root_writable = 1;
            continue;
        }
        if (i + 1 >= argc)
            usage("option without a value");
        const char *v = argv[++i];
        if (strcmp(a, "--name") == 0)
            opt.name = v;
        else if (strcmp(a, "--id-base") == 0)
            opt.id_base = (unsigned long)number(v, "bad --id-base");
        else if (strcmp(a, "--staging") == 0)
            opt.staging = v;
        else if (strcmp(a, "--root") == 0)
            opt.root = v;
        else if (strcmp(a, "--private") == 0)
            opt.private_image = v;
        else if (strcmp(a, "--memory") == 0)
            opt.memory = number(v, "bad --memory");
        else if (strcmp(a, "--pids") == 0)
            opt.pids = (long)number(v, "bad --pids");
        else if (strcmp(a, "--cpus") == 0)
            opt.cpus = (long)number(v, "bad --cpus");
        else if (strcmp(a, "--tmp-size") == 0)
            opt.tmp_size = number(v, "bad --tmp-size");
        else if (strcmp(a, "--log") == 0)
            opt.log = v;
        else if (strcmp(a, "--log-size") == 0)
            opt.log_size = number(v, "bad --log-size");
        else if (strcmp(a, "--env") == 0) {
            if (opt.env_count == MAX_ENV || !strchr(v, '='))
                usage("bad or too many --env");
            opt.env[opt.env_count++] = (char *)v;
        } else if (strcmp(a, "--bind-ro") == 0) {
            if (opt.bind_count == MAX_BINDS)
                usage("too many --bind-ro");
            opt.binds[opt.bind_count++] = v;
        } else
            usage("unknown option");
    }
    if (!opt.name || !opt.staging || !opt.root || !opt.private_image || !opt.log || !opt.id_base || !opt.memory || !opt.pids || !opt.cpus || i >= argc)
        usage("missing arguments");
    if (strlen(opt.name) > 63)
        usage("name too long");
    if (opt.id_base < ID_COUNT || opt.id_base > 0xFFFFFFFFUL - ID_COUNT)
        usage("--id-base out of range");
    if (!opt.tmp_size)
        opt.tmp_size = opt.memory / 2;
    opt.program = argv + i;
    /* the broker connection: the one descriptor and variable of dom0's that the qube keeps */
    const char *broker = getenv("QUBES_LOHV_FD");
    if (broker) {
        opt.broker_fd = (int)number(broker, "bad QUBES_LOHV_FD");
        static char variable[64];
        snprintf(variable, sizeof variable, "QUBES_LOHV_FD=%d", opt.broker_fd);
        opt.env[opt.env_count++] = variable;
    }
    opt.env[opt.env_count] = NULL;

    if (opt.die_with_parent) {
        if (prctl(PR_SET_PDEATHSIG, SIGUSR2) != 0)
            die("PR_SET_PDEATHSIG");
        if (getppid() == 1)
            fail("the starting process is gone");
    }
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_signal;
    sigaction(SIGTERM, &sa, NULL);
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGHUP, &sa, NULL);
    sigaction(SIGUSR2, &sa, NULL);
    signal(SIGPIPE, SIG_IGN);

    log_open();
    cgroup_create();
    userns_fd = make_userns();

    int alive[2], console[2];
    if (pipe2(alive, O_CLOEXEC) != 0 || pipe2(console, O_CLOEXEC) != 0)
        die("pipe");
    pid_t init = (pid_t)syscall(SYS_clone, CLONE_NEWNS | CLONE_NEWPID | CLONE_NEWIPC | CLONE_NEWUTS | CLONE_NEWNET | SIGCHLD, NULL, NULL, NULL, NULL);
    if (init < 0) {
        cgroup_remove();
        die("clone the qube's init (the loopback sandboxes need root)");
    }
    if (init == 0) {
        close(alive[1]);
        close(console[0]);
        close(con.fd);
        struct sigaction dfl;
        memset(&dfl, 0, sizeof dfl);
        dfl.sa_handler = forward;
        sigaction(SIGTERM, &dfl, NULL);
        sigaction(SIGINT, &dfl, NULL);
        sigaction(SIGHUP, &dfl, NULL);
        signal(SIGUSR2, SIG_DFL);
        signal(SIGPIPE, SIG_DFL);
        _exit(init_main(alive[0], console[1]));
    }
    close(alive[0]);
    close(console[1]);
    close(userns_fd);
    int pidfd = (int)syscall(SYS_pidfd_open, init, 0);
    if (pidfd < 0)
        die("pidfd_open");

    /* until init is gone: copy the console, pass signals on */
    int console_open = 1, status = 0, done = 0;
    unsigned char buf[4096];
    while (!done || console_open) {
        if (kill_requested) {
            kill(init, SIGKILL);
            kill_requested = 0;
        }
        if (pending_signal) {
            kill(init, pending_signal);
            pending_signal = 0;
        }
        struct pollfd fds[2] = { { .fd = console_open ? console[0] : -1, .events = POLLIN }, { .fd = done ? -1 : pidfd, .events = POLLIN } };
        int r = poll(fds, 2, -1);
        if (r < 0) {
            if (errno == EINTR)
                continue;
            die("poll");
        }
        if (fds[0].revents) {
            ssize_t n = read(console[0], buf, sizeof buf);
            if (n > 0)
                log_copy(buf, (size_t)n);
            else if (n == 0 || (errno != EINTR && errno != EAGAIN))
                console_open = 0;
        }
        if (fds[1].revents && !done) {
            while (waitpid(init, &status, 0) < 0) {
                if (errno != EINTR)
                    die("waitpid");
            }
            done = 1;
        }
    }
    cgroup_remove();
    return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}
