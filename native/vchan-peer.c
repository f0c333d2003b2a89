/* A libxenvchan peer for cross-implementation tests on real Xen, on the Qubes vchan paths.
 *   vchan-peer server PEER PORT MIB   serve data/vchan/PEER/PORT: send MIB MiB, then receive MIB MiB
 *   vchan-peer client SERVER PORT MIB connect to /local/domain/SERVER/data/vchan/<own>/PORT:
 *                                     receive MIB MiB, then send MIB MiB
 * Both directions carry the pattern byte(i) = T[i mod P] (P = 1048573, T from a multiplicative
 * hash), the same as the C# peer's, and every received byte is checked.
 * Prints "XENTEST PASS <name>" or "XENTEST FAIL <name>: <why>"; exit 0 only on PASS.
 * build: gcc -O2 vchan-peer.c -o vchan-peer -lxenvchan -lxenstore */
#include <stdio.h>
#include <stdlib.h>
#include <stdint.h>
#include <string.h>
#include <unistd.h>
#include <libxenvchan.h>
#include <xenstore.h>

#define PERIOD 1048573u
#define CHUNK 65536
static uint8_t table[PERIOD + CHUNK];

static void make_table(void)
{
    for (uint32_t i = 0; i < PERIOD + CHUNK; i++)
        table[i] = (uint8_t)(((uint64_t)(i % PERIOD) * 0x9E3779B97F4A7C15ull) >> 56);
}

static char name[128];
static int fail(const char *why)
{
    printf("XENTEST FAIL %s: %s\n", name, why);
    return 1;
}

static int send_all(struct libxenvchan *c, uint64_t total)
{
    for (uint64_t off = 0; off < total;) {
        size_t n = total - off < CHUNK ? total - off : CHUNK;
        if (libxenvchan_write(c, table + off % PERIOD, n) != (int)n)
            return -1;
        off += n;
    }
    return 0;
}

static int receive_all(struct libxenvchan *c, uint64_t total)
{
    static uint8_t buf[CHUNK];
    for (uint64_t off = 0; off < total;) {
        size_t want = total - off < CHUNK ? total - off : CHUNK;
        int n = libxenvchan_read(c, buf, want);
        if (n <= 0)
            return -1;
        if (memcmp(buf, table + off % PERIOD, n) != 0)
            return -2;
        off += n;
    }
    return 0;
}

int main(int argc, char **argv)
{
    if (argc != 5) {
        fprintf(stderr, "usage: vchan-peer server|client DOMAIN PORT MIB\n");
        return 2;
    }
    int domain = atoi(argv[2]), port = atoi(argv[3]);
    uint64_t total = (uint64_t)atoi(argv[4]) << 20;
    char path[256];
    struct libxenvchan *c = NULL;
    make_table();
    snprintf(name, sizeof name, "libxenvchan-%s port %d", argv[1], port);
    if (!strcmp(argv[1], "server")) {
        snprintf(path, sizeof path, "data/vchan/%d/%d", domain, port);
        c = libxenvchan_server_init(NULL, domain, path, 65536, 65536);
        if (!c)
            return fail("libxenvchan_server_init");
        c->blocking = 1;
        while (libxenvchan_is_open(c) == 2)
            libxenvchan_wait(c);
        if (send_all(c, total))
            return fail("send");
        int r = receive_all(c, total);
        if (r)
            return fail(r == -2 ? "received bytes differ from the pattern" : "receive");
    } else {
        struct xs_handle *xs = xs_open(0);
        unsigned int len;
        char *own = xs ? xs_read(xs, XBT_NULL, "domid", &len) : NULL;
        if (!own)
            return fail("reading own domid");
        snprintf(path, sizeof path, "/local/domain/%d/data/vchan/%s/%d", domain, own, port);
        free(own);
        xs_close(xs);
        for (int tries = 0; tries < 1200 && !c; tries++) {
            c = libxenvchan_client_init(NULL, domain, path);
            if (!c)
                usleep(100000);
        }
        if (!c)
            return fail("libxenvchan_client_init");
        c->blocking = 1;
        int r = receive_all(c, total);
        if (r)
            return fail(r == -2 ? "received bytes differ from the pattern" : "receive");
        if (send_all(c, total))
            return fail("send");
    }
    libxenvchan_close(c);
    printf("XENTEST PASS %s: %llu MiB each way checked\n", name, (unsigned long long)(total >> 20));
    return 0;
}
