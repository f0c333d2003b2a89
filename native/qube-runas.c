/*
 * qube-runas: starts a qube's service as the user its call names, for the qrexec agent (which runs
 * as the qube's root and starts services with posix_spawn, which cannot change ids).
 *
 *   qube-runas UID GID GROUP[,GROUP]... -- PROGRAM [ARG]...
 *
 * Sets the supplementary groups, then the real, effective and saved group and user ids, and
 * executes PROGRAM (found as given: an absolute path). Static and without NSS, so that it adds
 * little to a call: the agent looked the user and its groups up. Exit status 127 when PROGRAM
 * cannot be executed, 126 when the ids cannot be set (the reason on stderr).
 */
#define _GNU_SOURCE
#include <errno.h>
#include <grp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define MAX_GROUPS 64

static unsigned long id(const char *text)
{
    char *end;
    errno = 0;
    unsigned long v = strtoul(text, &end, 10);
    if (errno || *end || end == text || v > 0xFFFFFFFEUL) {
        fprintf(stderr, "qube-runas: bad id '%s'\n", text);
        exit(126);
    }
    return v;
}

int main(int argc, char **argv)
{
    if (argc < 6 || strcmp(argv[4], "--") != 0) {
        fprintf(stderr, "usage: qube-runas UID GID GROUP[,GROUP]... -- PROGRAM [ARG]...\n");
        return 126;
    }
    uid_t uid = (uid_t)id(argv[1]);
    gid_t gid = (gid_t)id(argv[2]);
    gid_t groups[MAX_GROUPS];
    size_t count = 0;
    char *list = argv[3];
    for (char *g = strtok(list, ","); g && count < MAX_GROUPS; g = strtok(NULL, ","))
        groups[count++] = (gid_t)id(g);
    if (setgroups(count, groups) != 0 || setresgid(gid, gid, gid) != 0 || setresuid(uid, uid, uid) != 0) {
        fprintf(stderr, "qube-runas: cannot become %lu:%lu: %s\n", (unsigned long)uid, (unsigned long)gid, strerror(errno));
        return 126;
    }
    execv(argv[5], argv + 5);
    fprintf(stderr, "qube-runas: exec %s: %s\n", argv[5], strerror(errno));
    return 127;
}
