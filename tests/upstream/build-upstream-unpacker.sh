#!/usr/bin/env bash
# Builds upstream Qubes' file-copy receiver (the unpacking algorithm of libqubes-rpc-filecopy:
# every name checked, each file created unnamed with O_TMPFILE and linked in, syncfs before the
# reply), outside this repository, for the side-by-side comparison in
# `Qubes.Bench filecopy --upstream-unpacker FILE`.
# The library comes from upstream; the small main program is written here. Like upstream's
# qfile-unpacker it unpacks into ~/QubesIncoming/$QREXEC_REMOTE_DOMAIN, as the calling user; unlike
# it, it makes no bind mount and no chroot, which a qube's services may not do here (our
# qfile-unpacker does without them too). Those are done once per transfer, not per file.
# For the differential fuzzing of other variants, QFC_FLAGS (libqubes-rpc-filecopy's copy flags,
# default: a qube's) and QFC_BYTES_LIMIT / QFC_FILES_LIMIT (default: none) change what it accepts.
# Usage: tests/upstream/build-upstream-unpacker.sh LINUX_UTILS_CHECKOUT OUTFILE
#   LINUX_UTILS_CHECKOUT  a checkout of QubesOS/qubes-linux-utils (its qrexec-lib/)
#   OUTFILE               the static executable to write
set -euo pipefail
utils="$(cd "${1:?usage: build-upstream-unpacker.sh LINUX_UTILS_CHECKOUT OUTFILE}" && pwd)"
out="${2:?usage: build-upstream-unpacker.sh LINUX_UTILS_CHECKOUT OUTFILE}"
dpkg -s gcc >/dev/null 2>&1 || { apt-get update -qq >/dev/null; DEBIAN_FRONTEND=noninteractive apt-get install -y -qq gcc >/dev/null; }
build="$(mktemp -d /tmp/upstream-unpacker.XXXXXX)"
trap 'rm -rf "$build"' EXIT
cp -a "$utils/qrexec-lib" "$build/lib"
cat > "$build/main.c" <<'EOF'
#define _GNU_SOURCE
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>
#include "libqubes-rpc-filecopy.h"

int main(void)
{
    const char *home = getenv("HOME");
    const char *source = getenv("QREXEC_REMOTE_DOMAIN");
    char path[4096];
    if (home == NULL || source == NULL) {
        fputs("qfile-unpacker-upstream: HOME and QREXEC_REMOTE_DOMAIN are needed\n", stderr);
        return 1;
    }
    snprintf(path, sizeof path, "%s/QubesIncoming", home);
    mkdir(path, 0700);
    snprintf(path, sizeof path, "%s/QubesIncoming/%s", home, source);
    mkdir(path, 0700);
    int procfs = open("/proc/self/fd", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (procfs < 0 || chdir(path) != 0) {
        perror("qfile-unpacker-upstream");
        return 1;
    }
    set_procfs_fd(procfs);
    const char *flags = getenv("QFC_FLAGS"), *bytes = getenv("QFC_BYTES_LIMIT"), *files = getenv("QFC_FILES_LIMIT");
    set_size_limit(bytes ? strtoull(bytes, NULL, 10) : 0, files ? strtoull(files, NULL, 10) : 0);
    return do_unpack_ext(flags ? atoi(flags)
        : COPY_ALLOW_SYMLINKS | COPY_ALLOW_DIRECTORIES | COPY_ALLOW_NON_CANONICAL_SYMLINKS);
}
EOF
(cd "$build/lib" && gcc -O2 -static -I. -o "$build/qfile-unpacker-upstream" ../main.c \
    unpack.c crc32.c ioall.c unicode.c copy-file.c pack.c qube-name.c)
install -D -m 0755 "$build/qfile-unpacker-upstream" "$out"
echo "upstream's file-copy receiver built: $out"
