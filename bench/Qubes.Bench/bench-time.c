/* bench-time: whole-process wall time and peak memory of a program, run again and again.
 *
 *   bench-time COUNT PROGRAM [ARG...]
 *
 * Runs PROGRAM COUNT times, one after the other, with stdin and stdout on /dev/null and stderr
 * inherited, and prints one line per run: the wall time from before fork to after the child is
 * reaped, in nanoseconds, and the child's peak resident set (ru_maxrss), in KiB. Exits 1 when a run
 * does not exit 0. Linked statically, so it runs inside a qube as well as in dom0.
 * Compiled by the start benchmark when it starts: gcc -O2 -static bench-time.c -o bench-time
 */
#define _GNU_SOURCE
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static long long now_ns(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return t.tv_sec * 1000000000LL + t.tv_nsec;
}

int main(int argc, char **argv)
{
    if (argc < 3 || atoi(argv[1]) <= 0) {
        fprintf(stderr, "usage: bench-time COUNT PROGRAM [ARG...]\n");
        return 2;
    }
    int count = atoi(argv[1]);
    for (int i = 0; i < count; i++) {
        long long start = now_ns();
        pid_t pid = fork();
        if (pid < 0) {
            perror("bench-time: fork");
            return 1;
        }
        if (pid == 0) {
            int null = open("/dev/null", O_RDWR);
            dup2(null, 0);
            dup2(null, 1);
            execv(argv[2], argv + 2);
            perror(argv[2]);
            _exit(127);
        }
        int status;
        struct rusage usage;
        if (wait4(pid, &status, 0, &usage) != pid) {
            perror("bench-time: wait4");
            return 1;
        }
        long long end = now_ns();
        if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
            fprintf(stderr, "bench-time: %s: run %d ended with status %#x\n", argv[2], i, status);
            return 1;
        }
        printf("%lld %ld\n", end - start, usage.ru_maxrss);
    }
    return 0;
}
