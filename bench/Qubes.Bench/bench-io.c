/* bench-io: the producer, consumer and Unix-socket relays of the qrexec benchmarks.
 *
 *   bench-io [-c CPU] source BYTES       writes BYTES zero bytes to stdout in 64 KiB writes
 *   bench-io [-c CPU] sink               reads stdin to EOF in 64 KiB reads, prints the byte count
 *   bench-io [-c CPU] to-socket PATH     connects to PATH (retrying until it is there), copies stdin to it
 *   bench-io [-c CPU] from-socket PATH   listens on PATH, accepts one connection, copies it to stdout
 *
 * -c CPU pins the process to that CPU first.
 * Every copy uses one 64 KiB buffer: read(2) what is there, write(2) all of it.
 * Compiled by the benchmark harness when it starts: gcc -O2 bench-io.c -o bench-io
 */
#define _GNU_SOURCE
#include <errno.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#define CHUNK (64 * 1024)

static char buffer[CHUNK];

static int write_all(int fd, const char *p, size_t n)
{
    while (n > 0) {
        ssize_t w = write(fd, p, n);
        if (w < 0) {
            if (errno == EINTR)
                continue;
            return -1;
        }
        p += w;
        n -= (size_t)w;
    }
    return 0;
}

/* Copies in to out until EOF; returns the byte count, or -1 on an error. */
static long long copy(int in, int out)
{
    long long total = 0;
    for (;;) {
        ssize_t n = read(in, buffer, sizeof(buffer));
        if (n == 0)
            return total;
        if (n < 0) {
            if (errno == EINTR)
                continue;
            return -1;
        }
        if (out >= 0 && write_all(out, buffer, (size_t)n) < 0)
            return -1;
        total += n;
    }
}

static int address(const char *path, struct sockaddr_un *a)
{
    memset(a, 0, sizeof(*a));
    a->sun_family = AF_UNIX;
    if (strlen(path) >= sizeof(a->sun_path))
        return -1;
    strcpy(a->sun_path, path);
    return 0;
}

int main(int argc, char **argv)
{
    if (argc >= 3 && strcmp(argv[1], "-c") == 0) {
        cpu_set_t set;
        CPU_ZERO(&set);
        CPU_SET(atoi(argv[2]), &set);
        if (sched_setaffinity(0, sizeof(set), &set) < 0) {
            perror("bench-io: sched_setaffinity");
            return 1;
        }
        argc -= 2;
        argv += 2;
    }
    if (argc >= 3 && strcmp(argv[1], "source") == 0) {
        long long left = atoll(argv[2]);
        while (left > 0) {
            size_t n = left < CHUNK ? (size_t)left : CHUNK;
            if (write_all(1, buffer, n) < 0) {
                perror("bench-io source: write");
                return 1;
            }
            left -= (long long)n;
        }
        return 0;
    }
    if (argc >= 2 && strcmp(argv[1], "sink") == 0) {
        long long total = copy(0, -1);
        if (total < 0) {
            perror("bench-io sink: read");
            return 1;
        }
        printf("%lld\n", total);
        return 0;
    }
    if (argc >= 3 && strcmp(argv[1], "to-socket") == 0) {
        struct sockaddr_un a;
        int s = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
        if (s < 0 || address(argv[2], &a) < 0) {
            perror("bench-io to-socket");
            return 1;
        }
        for (int tries = 0; connect(s, (struct sockaddr *)&a, sizeof(a)) < 0; tries++) {
            if ((errno != ENOENT && errno != ECONNREFUSED) || tries > 10000) {
                perror("bench-io to-socket: connect");
                return 1;
            }
            struct timespec ms = {0, 1000 * 1000};
            nanosleep(&ms, NULL);
        }
        if (copy(0, s) < 0) {
            perror("bench-io to-socket: copy");
            return 1;
        }
        return close(s) < 0;
    }
    if (argc >= 3 && strcmp(argv[1], "from-socket") == 0) {
        struct sockaddr_un a;
        int l = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
        unlink(argv[2]);
        if (l < 0 || address(argv[2], &a) < 0 || bind(l, (struct sockaddr *)&a, sizeof(a)) < 0 || listen(l, 1) < 0) {
            perror("bench-io from-socket: listen");
            return 1;
        }
        int s = accept4(l, NULL, NULL, SOCK_CLOEXEC);
        if (s < 0) {
            perror("bench-io from-socket: accept");
            return 1;
        }
        close(l);
        unlink(argv[2]);
        if (copy(s, 1) < 0) {
            perror("bench-io from-socket: copy");
            return 1;
        }
        return 0;
    }
    fprintf(stderr, "usage: bench-io [-c CPU] source BYTES | sink | to-socket PATH | from-socket PATH\n");
    return 2;
}
