/* qrexec-client-vm, fast path: a VM -> VM service call without starting the .NET runtime.
 *
 *   qrexec-client-vm [--agent-socket=PATH | --agent-socket PATH] TARGET SERVICE+ARG
 *
 * Starting a .NET process costs 20-25 ms, which dominates short service calls. For the common
 * case this client does not run the data phase itself: it hands its stdin, stdout and stderr to
 * qrexec-agent, which runs the call on them and reports the final exit status.
 *
 * Protocol on the agent's trigger socket (AF_UNIX, SOCK_STREAM): the path given with --agent-socket,
 * else $QREXEC_AGENT_SOCKET if set and non-empty, else /var/run/qubes/qrexec-agent.
 *
 *   1. The client sends upstream's request, MSG_TRIGGER_SERVICE4, with ONE sendmsg() that also
 *      carries SCM_RIGHTS with exactly three descriptors, its fd 0, 1 and 2 in that order:
 *        u32 LE type = 0x213 (TRIGGER_SERVICE4), u32 LE len, then a body of len bytes:
 *        offset   0, 64 bytes: requested source domain, NUL-terminated, zero-padded (empty = none)
 *        offset  64, 64 bytes: target domain, NUL-terminated, zero-padded ('$' already turned to '@')
 *        offset 128, 32 bytes: ident "SOCKET", zero-padded
 *        offset 160, len-160 : "service+arg" followed by exactly one NUL, the last body byte
 *      An agent that reads the request with read() (upstream's) never sees the descriptors: the
 *      kernel drops them, and the request is the standard one.
 *   2. The agent answers with either
 *        - EOF before any byte: the call was refused -> "Request refused" on stderr, exit 126;
 *        - 8 bytes, u32 LE 0xffffffff then u32 LE exit status (0..255): an agent of this project
 *          took the descriptors and ran the call on them; exit with the status;
 *        - 8 bytes, u32 LE domain then u32 LE port (upstream's exec parameters, the domain below
 *          0xffffffff): an agent that runs only the standard protocol. This process then becomes
 *          the full client with --exec-params=DOMAIN:PORT in front of its arguments, which runs
 *          the data phase itself on that channel.
 *      Anything else (a short reply, a read error) is a local failure: exit 1.
 *
 * Everything this program does not handle itself - any other option (-t, -T, -p, -s,
 * --buffer-size, --use-stdin-socket, --no-filter-*, -h, ...), a local program after the service,
 * or a terminal on stdout or stderr (escape filtering is then on by default) - is handed to the
 * full C# client with the same argv: execv() of $QREXEC_CLIENT_VM_FULL if set, else of
 * ../bin/qubes/aot/qrexec-client-vm (the native build) or, when that is not there, the runtime
 * build's ../bin/qubes/release/qrexec-client-vm (the front command's directory, which a qube sees)
 * or ../bin/qrexec-client-vm/release/qrexec-client-vm, relative to the directory of this executable
 * (nothing of the place it was built in is compiled in, so a build may be moved).
 *
 * Exit codes: the call's status; 126 refused; 2 usage error; 1 local error.
 *
 * Linked statically: without the dynamic loader's work the process starts in about 0.35 ms less
 * on a machine where a dynamically linked no-op takes 1.3 ms, a part of every call.
 *
 * build: gcc -std=c11 -Wall -Wextra -Werror -O2 -static qrexec-client-vm.c -o qrexec-client-vm
 */
#define _GNU_SOURCE
#include <errno.h>
#include <limits.h>
#include <fcntl.h>
#include <poll.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#define PROGRAM "qrexec-client-vm"
#define DEFAULT_AGENT_SOCKET "/var/run/qubes/qrexec-agent"

#define MSG_TRIGGER_SERVICE4 0x213u
/* The domain field of a reply that carries the exit status of a call the agent ran itself. */
#define REPLY_HANDED_OVER 0xffffffffu
/* The full client, relative to the directory of this executable: the native build's (one
 * executable for every program, run by the name of its link), else the runtime build's, in the
 * front command's directory (the one a qube sees) or its own. */
static const char *const full_client_relative[] = {
    "../bin/qubes/aot/qrexec-client-vm",
    "../bin/qubes/release/qrexec-client-vm",
    "../bin/qrexec-client-vm/release/qrexec-client-vm",
};
#define HEADER_SIZE 8
#define DOMAIN_FIELD 64
#define IDENT_FIELD 32
#define TRIGGER_V4_FIXED (2 * DOMAIN_FIELD + IDENT_FIELD) /* 160 */
/* The agent and the daemon accept len - 160 <= 65000, and that part includes the name's NUL. */
#define MAX_SERVICE_NAME_LEN 65000

#define EXIT_USAGE 2
#define EXIT_LOCAL_ERROR 1
#define EXIT_REQUEST_REFUSED 126

/* Large enough for the longest message the agent accepts; static so no allocation can fail. */
static unsigned char message[HEADER_SIZE + TRIGGER_V4_FIXED + MAX_SERVICE_NAME_LEN];

static void usage(void)
{
    fprintf(stderr,
            "usage: " PROGRAM " [options] <target> <service+arg> [<local program> [args...]]\n");
    exit(EXIT_USAGE);
}

/* The full client: $QREXEC_CLIENT_VM_FULL, else the first of full_client_relative that exists. */
static const char *full_client_path(void)
{
    static char path[PATH_MAX];
    const char *full = getenv("QREXEC_CLIENT_VM_FULL");
    if (full != NULL && full[0] != '\0') {
        return full;
    }
    ssize_t n = readlink("/proc/self/exe", path, sizeof(path) - 1);
    if (n <= 0) {
        fprintf(stderr, PROGRAM ": cannot find this executable: %s\n", strerror(errno));
        exit(EXIT_LOCAL_ERROR);
    }
    path[n] = '\0';
    char *slash = strrchr(path, '/');
    size_t dir_len = slash == NULL ? 0 : (size_t)(slash - path) + 1;
    size_t count = sizeof(full_client_relative) / sizeof(full_client_relative[0]);
    for (size_t i = 0; i < count; i++) {
        size_t len = strlen(full_client_relative[i]) + 1;
        if (dir_len + len > sizeof(path)) {
            fprintf(stderr, PROGRAM ": path of this executable too long\n");
            exit(EXIT_LOCAL_ERROR);
        }
        memcpy(path + dir_len, full_client_relative[i], len);
        if (i + 1 == count || access(path, X_OK) == 0) {
            break; /* the last is reported by execv if it is not there either */
        }
    }
    return path;
}

/* Replaces this process with the full client; argv stays as given except argv[0]. */
static void exec_full_client(char **argv)
{
    const char *full = full_client_path();
    argv[0] = (char *)full;
    execv(full, argv);
    fprintf(stderr, PROGRAM ": cannot execute %s: %s\n", full, strerror(errno));
    exit(EXIT_LOCAL_ERROR);
}

/* The agent answered with upstream's exec parameters: the full client runs the data phase on
 * them, with the user's arguments after --exec-params=DOMAIN:PORT. */
static void exec_full_client_connected(int argc, char **argv, uint32_t domain, uint32_t port)
{
    static char params[64];
    char **args = calloc((size_t)argc + 2, sizeof(char *));
    if (args == NULL) {
        fprintf(stderr, PROGRAM ": out of memory\n");
        exit(EXIT_LOCAL_ERROR);
    }
    snprintf(params, sizeof(params), "--exec-params=%u:%u", domain, port);
    args[0] = argv[0];
    args[1] = params;
    memcpy(args + 2, argv + 1, (size_t)argc * sizeof(char *)); /* argv[1..argc], NULL included */
    exec_full_client(args);
}

static uint32_t get_u32_le(const unsigned char *p)
{
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

static void put_u32_le(unsigned char *p, uint32_t v)
{
    p[0] = (unsigned char)v;
    p[1] = (unsigned char)(v >> 8);
    p[2] = (unsigned char)(v >> 16);
    p[3] = (unsigned char)(v >> 24);
}

/* A closed stdio descriptor would be taken by the socket we open (and then handed to the agent as
 * if it were stdio), and sendmsg() would fail on it with EBADF; /dev/null stands in for it, the
 * way a closed stdin reads as EOF and a closed stdout discards. */
static int ensure_stdio_open(void)
{
    for (int fd = 0; fd <= 2; fd++) {
        if (fcntl(fd, F_GETFD) >= 0 || errno != EBADF) {
            continue;
        }
        int null_fd;
        do {
            null_fd = open("/dev/null", O_RDWR);
        } while (null_fd < 0 && errno == EINTR);
        if (null_fd < 0) {
            return -1;
        }
        /* Lowest free descriptor: it is fd itself, since every lower one is open by now. */
        if (null_fd != fd) {
            close(null_fd);
            errno = EBADF;
            return -1;
        }
    }
    return 0;
}

/* connect() interrupted by a signal keeps going in the background and must not be restarted
 * (a second call would fail with EALREADY): wait for the outcome and fetch it instead. */
static int connect_agent(const char *path)
{
    struct sockaddr_un addr;
    size_t path_len = strlen(path);
    if (path_len >= sizeof(addr.sun_path)) {
        errno = ENAMETOOLONG;
        return -1;
    }
    memset(&addr, 0, sizeof(addr));
    addr.sun_family = AF_UNIX;
    memcpy(addr.sun_path, path, path_len + 1);

    /* Close-on-exec: nothing we could start should inherit the trigger connection. */
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0) {
        return -1;
    }
    if (connect(fd, (const struct sockaddr *)&addr, sizeof(addr)) == 0) {
        return fd;
    }
    if (errno == EINTR) {
        struct pollfd pfd = { .fd = fd, .events = POLLOUT };
        int ready;
        do {
            ready = poll(&pfd, 1, -1);
        } while (ready < 0 && errno == EINTR);
        int error = 0;
        socklen_t error_len = sizeof(error);
        if (ready > 0 && getsockopt(fd, SOL_SOCKET, SO_ERROR, &error, &error_len) == 0) {
            if (error == 0) {
                return fd;
            }
            errno = error;
        }
    }
    int saved = errno;
    close(fd);
    errno = saved;
    return -1;
}

/* Sends the whole message with fds 0, 1, 2 attached. A stream sendmsg() normally takes it all at
 * once; should it stop early (a signal after part of the data went out), the rest follows without
 * descriptors, which travelled with the first byte. */
static int send_trigger(int sock, unsigned char *data, size_t len)
{
    union {
        struct cmsghdr header;
        unsigned char space[CMSG_SPACE(3 * sizeof(int))];
    } control;
    const int fds[3] = { 0, 1, 2 };
    size_t sent = 0;

    while (sent < len) {
        struct iovec iov = { .iov_base = data + sent, .iov_len = len - sent };
        struct msghdr msg = { .msg_iov = &iov, .msg_iovlen = 1 };
        if (sent == 0) {
            memset(&control, 0, sizeof(control));
            msg.msg_control = control.space;
            msg.msg_controllen = sizeof(control.space);
            struct cmsghdr *cmsg = CMSG_FIRSTHDR(&msg);
            cmsg->cmsg_level = SOL_SOCKET;
            cmsg->cmsg_type = SCM_RIGHTS;
            cmsg->cmsg_len = CMSG_LEN(sizeof(fds));
            memcpy(CMSG_DATA(cmsg), fds, sizeof(fds));
        }
        /* MSG_NOSIGNAL: an agent that went away is an error to report, not a SIGPIPE death. */
        ssize_t n = sendmsg(sock, &msg, MSG_NOSIGNAL);
        if (n < 0) {
            if (errno == EINTR) {
                continue;
            }
            return -1;
        }
        sent += (size_t)n;
    }
    return 0;
}

int main(int argc, char **argv)
{
    const char *agent_socket = NULL;
    int first = 1;
    int end_of_options = 0; /* a "--" was seen */

    /* Options come before the first positional argument, as with getopt's "+" mode (upstream's
     * choice, so that a local program's own options stay its own). */
    while (first < argc) {
        const char *arg = argv[first];
        if (strcmp(arg, "--") == 0) {
            end_of_options = 1;
            first++;
            break;
        }
        if (arg[0] != '-' || arg[1] == '\0') {
            break; /* first positional ("-" alone is one too) */
        }
        if (strncmp(arg, "--agent-socket=", 15) == 0) {
            agent_socket = arg + 15;
            first++;
        } else if (strcmp(arg, "--agent-socket") == 0) {
            if (first + 1 >= argc) {
                fprintf(stderr, PROGRAM ": option --agent-socket requires an argument\n");
                usage();
            }
            agent_socket = argv[first + 1];
            first += 2;
        } else {
            exec_full_client(argv); /* an option only the full client knows */
        }
    }

    int positionals = argc - first;
    if (positionals > 2) {
        exec_full_client(argv); /* a local program follows the service */
    }
    /* In "+" mode nothing after the target is an option, but the full client may see it
     * differently; with a dash-led argument there, let it decide. */
    if (positionals == 2 && argv[first + 1][0] == '-' && !end_of_options) {
        exec_full_client(argv);
    }
    /* A terminal on stdout or stderr turns escape filtering on, which only the full client does. */
    if (isatty(STDOUT_FILENO) || isatty(STDERR_FILENO)) {
        exec_full_client(argv);
    }
    if (positionals < 2) {
        usage();
    }

    const char *target = argv[first];
    const char *service = argv[first + 1];
    size_t target_len = strlen(target);
    size_t service_len = strlen(service);
    if (target_len >= DOMAIN_FIELD) {
        fprintf(stderr, PROGRAM ": target name too long\n");
        usage();
    }
    if (service_len == 0 || service[0] == '+') {
        fprintf(stderr, PROGRAM ": invalid service name\n");
        usage();
    }
    if (service_len + 1 > MAX_SERVICE_NAME_LEN) {
        fprintf(stderr, PROGRAM ": service name too long\n");
        usage();
    }

    if (agent_socket == NULL) {
        agent_socket = getenv("QREXEC_AGENT_SOCKET");
        if (agent_socket == NULL || agent_socket[0] == '\0') {
            agent_socket = DEFAULT_AGENT_SOCKET;
        }
    }

    /* message is zero-filled (static), so every field below is already NUL-padded. */
    size_t body_len = TRIGGER_V4_FIXED + service_len + 1;
    size_t message_len = HEADER_SIZE + body_len;
    put_u32_le(message, MSG_TRIGGER_SERVICE4);
    put_u32_le(message + 4, (uint32_t)body_len);
    unsigned char *body = message + HEADER_SIZE;
    /* body[0..63]: requested source domain, left empty. */
    unsigned char *target_field = body + DOMAIN_FIELD;
    for (size_t i = 0; i < target_len; i++) {
        /* '$' is the legacy spelling of '@' in keywords such as $dispvm. */
        target_field[i] = target[i] == '$' ? '@' : (unsigned char)target[i];
    }
    memcpy(body + 2 * DOMAIN_FIELD, "SOCKET", 6);
    memcpy(body + TRIGGER_V4_FIXED, service, service_len);
    /* body[body_len - 1] stays 0: the single NUL at the very end. */

    if (ensure_stdio_open() < 0) {
        fprintf(stderr, PROGRAM ": cannot open /dev/null for a closed stdio descriptor: %s\n",
                strerror(errno));
        return EXIT_LOCAL_ERROR;
    }

    int sock = connect_agent(agent_socket);
    if (sock < 0) {
        fprintf(stderr, PROGRAM ": cannot connect to %s: %s\n", agent_socket, strerror(errno));
        return EXIT_LOCAL_ERROR;
    }
    if (send_trigger(sock, message, message_len) < 0) {
        fprintf(stderr, PROGRAM ": cannot send the request to %s: %s\n", agent_socket,
                strerror(errno));
        return EXIT_LOCAL_ERROR;
    }

    /* From here on fds 0-2 may belong to the agent's data flow; only the reply is ours. */
    unsigned char reply[8];
    size_t got = 0;
    while (got < sizeof(reply)) {
        ssize_t n = read(sock, reply + got, sizeof(reply) - got);
        if (n < 0) {
            if (errno == EINTR) {
                continue;
            }
            fprintf(stderr, PROGRAM ": reading the reply from %s: %s\n", agent_socket,
                    strerror(errno));
            return EXIT_LOCAL_ERROR;
        }
        if (n == 0) {
            break;
        }
        got += (size_t)n;
    }
    if (got == 0) {
        fprintf(stderr, "Request refused\n");
        return EXIT_REQUEST_REFUSED;
    }
    if (got != sizeof(reply)) {
        fprintf(stderr, PROGRAM ": short reply from %s (%zu of 8 bytes)\n", agent_socket, got);
        return EXIT_LOCAL_ERROR;
    }
    uint32_t domain = get_u32_le(reply);
    uint32_t value = get_u32_le(reply + 4);
    if (domain != REPLY_HANDED_OVER) {
        close(sock);
        exec_full_client_connected(argc, argv, domain, value);
    }
    /* The agent already sends a 0..255 status; the mask only spells out what exit() keeps. */
    return (int)(value & 0xffu);
}
