/*
 * qube-sandbox: runs a program as the whole of a qube on the loopback hypervisor.
 *
 *   qube-sandbox --name NAME --staging DIR --root LAYER [--root-work DIR]
 *                --private DIR [--bind-ro PATH]... [--log FILE] [--die-with-parent]
 *                -- PROGRAM [ARG]...
 *
 * The program runs in its own mount, pid, ipc, uts and network namespaces:
 *   - the system directories (/usr, /etc and the /bin, /lib... links or directories) are the host's
 *     with the template's root LAYER over them, read-only; with --root-work the layer is the
 *     upper directory of a writable overlay (a template or standalone qube changing its own root);
 *   - /rw is the private volume DIR (read-write), /home is DIR/home and /usr/local DIR/usrlocal;
 *   - /proc is the new pid namespace's, /dev holds only null, zero, full, random, urandom and tty,
 *     /tmp, /run and /dev/shm are empty tmpfs;
 *   - each --bind-ro PATH appears at the same path, read-only (the runtime's own executables);
 *   - nothing else of the host is visible: the new root is a tmpfs built on STAGING, pivoted to;
 *   - the hostname is NAME; the network namespace has only the loopback interface, brought up.
 *
 * --log appends the qube's standard output and error to FILE (its console log); with
 * --die-with-parent the qube is killed when the process that started this one dies.
 *
 * Process layout: this process unshares, forks the qube's init (pid 1 in the new namespace), and
 * waits for it, passing SIGTERM, SIGINT and SIGHUP on. init dies with this process
 * (PR_SET_PDEATHSIG), and with init the kernel kills every process of the qube, so SIGKILL here
 * is the qube's kill. init forks PROGRAM, reaps every orphan, and exits with PROGRAM's status.
 * Exit status: PROGRAM's, or 125 when the sandbox could not be set up (the reason on stderr).
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <net/if.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#define SETUP_FAILED 125
#define MAX_BINDS 16

static const char *system_dirs[] = { "usr", "etc", "bin", "sbin", "lib", "lib32", "lib64", "libx32", NULL };
static const char *devices[] = { "null", "zero", "full", "random", "urandom", "tty", NULL };

static struct {
    const char *name, *staging, *root, *root_work, *private_dir, *log;
    int die_with_parent;
    const char *binds[MAX_BINDS];
    int bind_count;
    char **program;
} opt;

static volatile pid_t forward_to;

static void die(const char *fmt, ...)
{
    int saved = errno;
    va_list ap;
    fputs("qube-sandbox: ", stderr);
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fprintf(stderr, ": %s\n", strerror(saved));
    _exit(SETUP_FAILED);
}

static void usage(const char *why)
{
    fprintf(stderr, "qube-sandbox: %s\nusage: qube-sandbox --name NAME --staging DIR --root LAYER [--root-work DIR] "
                    "--private DIR [--bind-ro PATH]... [--log FILE] [--die-with-parent] -- PROGRAM [ARG]...\n", why);
    exit(2);
}

static void forward(int sig)
{
    if (forward_to > 0)
        kill(forward_to, sig);
}

static void path_join(char *out, size_t size, const char *a, const char *b)
{
    if ((size_t)snprintf(out, size, "%s/%s", a, b) >= size) {
        errno = ENAMETOOLONG;
        die("%s/%s", a, b);
    }
}

/* mkdir -p, tolerating existing directories */
static void make_dirs(const char *path)
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
            if (mkdir(buf, 0755) != 0 && errno != EEXIST)
                die("mkdir %s", buf);
            *p = '/';
        }
    }
    if (mkdir(buf, 0755) != 0 && errno != EEXIST)
        die("mkdir %s", buf);
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

/* one system directory: the host's, with the template's layer over it (or the host's link) */
static void system_dir(const char *newroot, const char *dir)
{
    char host[4096], target[4096], layer[4096], data[12288];
    struct stat st;
    path_join(host, sizeof host, "", dir);
    if (lstat(host, &st) != 0)
        return;
    path_join(target, sizeof target, newroot, dir);
    if (S_ISLNK(st.st_mode)) {
        char link[4096];
        ssize_t n = readlink(host, link, sizeof link - 1);
        if (n < 0)
            die("readlink %s", host);
        link[n] = 0;
        if (symlink(link, target) != 0)
            die("symlink %s", target);
        return;
    }
    if (!S_ISDIR(st.st_mode))
        return;
    make_dirs(target);
    path_join(layer, sizeof layer, opt.root, dir);
    make_dirs(layer);
    if (opt.root_work) {
        char work[4096];
        path_join(work, sizeof work, opt.root_work, dir);
        make_dirs(work);
        if ((size_t)snprintf(data, sizeof data, "lowerdir=%s,upperdir=%s,workdir=%s", host, layer, work) >= sizeof data)
            die("overlay options for %s", dir);
        mount_or_die("overlay", target, "overlay", MS_NOSUID | MS_NODEV, data);
    } else {
        if ((size_t)snprintf(data, sizeof data, "lowerdir=%s:%s", layer, host) >= sizeof data)
            die("overlay options for %s", dir);
        mount_or_die("overlay", target, "overlay", MS_RDONLY | MS_NOSUID | MS_NODEV, data);
    }
}

static void build_root(const char *newroot)
{
    char path[4096], sub[4096];
    mount_or_die("none", "/", NULL, MS_REC | MS_PRIVATE, NULL);
    mount_or_die("qube-root", newroot, "tmpfs", MS_NOSUID | MS_NODEV, "mode=0755");
    for (int i = 0; system_dirs[i]; i++)
        system_dir(newroot, system_dirs[i]);

    path_join(path, sizeof path, newroot, "proc");
    make_dirs(path);
    mount_or_die("proc", path, "proc", MS_NOSUID | MS_NODEV | MS_NOEXEC, NULL);

    path_join(path, sizeof path, newroot, "dev");
    make_dirs(path);
    mount_or_die("qube-dev", path, "tmpfs", MS_NOSUID | MS_NOEXEC, "mode=0755");
    for (int i = 0; devices[i]; i++) {
        char host[64];
        snprintf(host, sizeof host, "/dev/%s", devices[i]);
        path_join(sub, sizeof sub, path, devices[i]);
        int fd = open(sub, O_CREAT | O_WRONLY | O_CLOEXEC, 0666);
        if (fd < 0)
            die("create %s", sub);
        close(fd);
        bind_mount(host, sub, 0);
    }
    path_join(sub, sizeof sub, path, "shm");
    make_dirs(sub);
    mount_or_die("qube-shm", sub, "tmpfs", MS_NOSUID | MS_NODEV, "mode=1777");
    static const char *links[][2] = { { "fd", "/proc/self/fd" }, { "stdin", "/proc/self/fd/0" },
                                      { "stdout", "/proc/self/fd/1" }, { "stderr", "/proc/self/fd/2" } };
    for (size_t i = 0; i < sizeof links / sizeof links[0]; i++) {
        path_join(sub, sizeof sub, path, links[i][0]);
        if (symlink(links[i][1], sub) != 0)
            die("symlink %s", sub);
    }

    static const char *scratch[] = { "tmp", "run", "var/tmp", NULL };
    for (int i = 0; scratch[i]; i++) {
        path_join(path, sizeof path, newroot, scratch[i]);
        make_dirs(path);
        mount_or_die("qube-scratch", path, "tmpfs", MS_NOSUID | MS_NODEV, "mode=1777");
    }
    path_join(path, sizeof path, newroot, "var/run");
    if (symlink("../run", path) != 0)
        die("symlink %s", path);

    /* the private volume: /rw, with /home and /usr/local inside it */
    static const char *private_parts[][2] = { { "home", "home" }, { "usrlocal", "usr/local" } };
    path_join(path, sizeof path, newroot, "rw");
    make_dirs(path);
    bind_mount(opt.private_dir, path, 0);
    for (size_t i = 0; i < sizeof private_parts / sizeof private_parts[0]; i++) {
        char inside[4096];
        path_join(sub, sizeof sub, opt.private_dir, private_parts[i][0]);
        make_dirs(sub);
        path_join(inside, sizeof inside, newroot, private_parts[i][1]);
        struct stat st;
        if (stat(inside, &st) != 0) {
            if (opt.root_work == NULL && strncmp(private_parts[i][1], "usr/", 4) == 0)
                continue; /* no mount point in a read-only /usr: leave /usr/local as the template has it */
            make_dirs(inside);
        }
        bind_mount(sub, inside, 0);
    }

    for (int i = 0; i < opt.bind_count; i++) {
        path_join(path, sizeof path, newroot, opt.binds[i] + (opt.binds[i][0] == '/'));
        struct stat st;
        if (stat(path, &st) != 0)
            make_dirs(path);
        bind_mount(opt.binds[i], path, 1);
    }

    path_join(path, sizeof path, newroot, ".old-root");
    make_dirs(path);
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

/* pid 1 of the qube: sets the qube up, runs PROGRAM, reaps, exits with PROGRAM's status */
static int init_main(int launcher_alive)
{
    if (prctl(PR_SET_PDEATHSIG, SIGKILL) != 0)
        die("PR_SET_PDEATHSIG");
    /* the launcher holds the pipe's other end: hung up means it died before the signal was armed */
    struct pollfd alive = { .fd = launcher_alive, .events = POLLIN };
    if (poll(&alive, 1, 0) != 0)
        _exit(SETUP_FAILED);
    close(launcher_alive);
    build_root(opt.staging);
    if (sethostname(opt.name, strlen(opt.name)) != 0)
        die("sethostname");
    loopback_up();

    pid_t child = fork();
    if (child < 0)
        die("fork");
    if (child == 0) {
        signal(SIGTERM, SIG_DFL);
        signal(SIGINT, SIG_DFL);
        signal(SIGHUP, SIG_DFL);
        execvp(opt.program[0], opt.program);
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
        if (i + 1 >= argc)
            usage("option without a value");
        if (strcmp(a, "--name") == 0)
            opt.name = argv[++i];
        else if (strcmp(a, "--staging") == 0)
            opt.staging = argv[++i];
        else if (strcmp(a, "--root") == 0)
            opt.root = argv[++i];
        else if (strcmp(a, "--root-work") == 0)
            opt.root_work = argv[++i];
        else if (strcmp(a, "--log") == 0)
            opt.log = argv[++i];
        else if (strcmp(a, "--private") == 0)
            opt.private_dir = argv[++i];
        else if (strcmp(a, "--bind-ro") == 0) {
            if (opt.bind_count == MAX_BINDS)
                usage("too many --bind-ro");
            opt.binds[opt.bind_count++] = argv[++i];
        } else
            usage("unknown option");
    }
    if (!opt.name || !opt.staging || !opt.root || !opt.private_dir || i >= argc)
        usage("missing arguments");
    if (strlen(opt.name) > 63)
        usage("name too long");
    opt.program = argv + i;

    if (opt.die_with_parent && prctl(PR_SET_PDEATHSIG, SIGKILL) != 0)
        die("PR_SET_PDEATHSIG");
    if (opt.log) {
        int fd = open(opt.log, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0640);
        if (fd < 0)
            die("open %s", opt.log);
        if (dup2(fd, 1) < 0 || dup2(fd, 2) < 0)
            die("dup2 %s", opt.log);
        close(fd);
    }

    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = forward;
    sigaction(SIGTERM, &sa, NULL);
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGHUP, &sa, NULL);

    if (unshare(CLONE_NEWNS | CLONE_NEWPID | CLONE_NEWIPC | CLONE_NEWUTS | CLONE_NEWNET) != 0)
        die("unshare (the loopback sandboxes need root)");
    int alive[2];
    if (pipe2(alive, O_CLOEXEC) != 0)
        die("pipe");
    pid_t init = fork();
    if (init < 0)
        die("fork");
    if (init == 0) {
        close(alive[1]);
        _exit(init_main(alive[0]));
    }
    close(alive[0]);
    forward_to = init;
    for (;;) {
        int status;
        if (waitpid(init, &status, 0) < 0) {
            if (errno == EINTR)
                continue;
            die("waitpid");
        }
        return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
    }
}
