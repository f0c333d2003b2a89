/*
 * An Xorg extension module for a qube's own X server: the pixmap Composite gives each redirected
 * top-level window (its backing pixmap) lives in a sealable memfd instead of the server's heap,
 * and the gui agent asks for a window's memfd over a Unix socket. The agent grants those pages to
 * the GUI domain as they are, so the window's content reaches dom0's screen without being copied
 * out of the qube's X server first.
 *
 * The socket is named by QUBES_PIXMAP_SOCKET in the server's environment (no socket without it).
 * A request is the window's XID (4 bytes, native order); the reply is 5 uint32 (errno or 0,
 * width, height, bytes per line, bytes of the file) with the memfd attached when the errno is 0.
 * Only windows whose whole pixmap is their own content are answered (no border, depth 24 or 32).
 */
#define _GNU_SOURCE
#include <xorg-server.h>
#include <xf86Module.h>
#include <xf86.h>
#include <scrnintstr.h>
#include <pixmapstr.h>
#include <windowstr.h>
#include <dixstruct.h>
#include <os.h>

#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#define MAX_SIDE 16384
#define MAX_AGENTS 4

struct shared_pixmap {
    PixmapPtr pixmap;
    int fd;
    void *bits;
    size_t size;
};

static struct shared_pixmap *shared;
static int shared_count, shared_capacity;
static CreatePixmapProcPtr wrapped_create[MAXSCREENS];
static DestroyPixmapProcPtr wrapped_destroy[MAXSCREENS];
static int listener = -1;
static int agents[MAX_AGENTS] = { -1, -1, -1, -1 };

static struct shared_pixmap *find(PixmapPtr pixmap)
{
    for (int i = 0; i < shared_count; i++) {
        if (shared[i].pixmap == pixmap)
            return &shared[i];
    }
    return NULL;
}

static Bool remember(PixmapPtr pixmap, int fd, void *bits, size_t size)
{
    if (shared_count == shared_capacity) {
        int capacity = shared_capacity ? shared_capacity * 2 : 16;
        struct shared_pixmap *grown = realloc(shared, capacity * sizeof(*grown));
        if (!grown)
            return FALSE;
        shared = grown;
        shared_capacity = capacity;
    }
    shared[shared_count++] = (struct shared_pixmap){ pixmap, fd, bits, size };
    return TRUE;
}

/* A backing pixmap in a memfd of its own; anything else as the screen makes it. */
static PixmapPtr create_pixmap(ScreenPtr screen, int width, int height, int depth, unsigned usage)
{
    PixmapPtr pixmap = NULL;
    screen->CreatePixmap = wrapped_create[screen->myNum];
    if (usage == CREATE_PIXMAP_USAGE_BACKING_PIXMAP && (depth == 24 || depth == 32)
        && width > 0 && height > 0 && width <= MAX_SIDE && height <= MAX_SIDE) {
        size_t stride = (size_t)width * 4;
        size_t size = (stride * height + 4095) & ~(size_t)4095;
        int fd = memfd_create("qubes-window", MFD_CLOEXEC | MFD_ALLOW_SEALING);
        void *bits = MAP_FAILED;
        if (fd >= 0 && ftruncate(fd, size) == 0)
            bits = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
        if (bits != MAP_FAILED) {
            pixmap = screen->CreatePixmap(screen, 0, 0, depth, usage);
            if (pixmap && (!screen->ModifyPixmapHeader(pixmap, width, height, depth, 32, stride, bits)
                           || !remember(pixmap, fd, bits, size))) {
                screen->DestroyPixmap(pixmap);
                pixmap = NULL;
            }
            if (!pixmap)
                munmap(bits, size);
        }
        if (!pixmap && fd >= 0)
            close(fd);
    }
    if (!pixmap)
        pixmap = screen->CreatePixmap(screen, width, height, depth, usage);
    wrapped_create[screen->myNum] = screen->CreatePixmap;
    screen->CreatePixmap = create_pixmap;
    return pixmap;
}

static Bool destroy_pixmap(PixmapPtr pixmap)
{
    ScreenPtr screen = pixmap->drawable.pScreen;
    struct shared_pixmap gone = { NULL, -1, NULL, 0 };
    struct shared_pixmap *entry = pixmap->refcnt == 1 ? find(pixmap) : NULL;
    if (entry) {
        gone = *entry;
        *entry = shared[--shared_count];
    }
    screen->DestroyPixmap = wrapped_destroy[screen->myNum];
    Bool done = screen->DestroyPixmap(pixmap);
    wrapped_destroy[screen->myNum] = screen->DestroyPixmap;
    screen->DestroyPixmap = destroy_pixmap;
    if (gone.fd >= 0) {
        munmap(gone.bits, gone.size);
        close(gone.fd);
    }
    return done;
}

static void drop_client(int slot)
{
    RemoveNotifyFd(agents[slot]);
    close(agents[slot]);
    agents[slot] = -1;
}

/* One request: the window's XID; the reply, with the memfd when the window's pixmap is shared. */
static void serve(int fd, int ready, void *data)
{
    int slot = (int)(intptr_t)data;
    uint32_t xid;
    ssize_t got = recv(fd, &xid, sizeof(xid), MSG_DONTWAIT);
    if (got < 0 && (errno == EAGAIN || errno == EINTR))
        return;
    if (got != sizeof(xid)) {
        drop_client(slot);
        return;
    }
    uint32_t reply[5] = { ENOENT, 0, 0, 0, 0 };
    struct shared_pixmap *entry = NULL;
    WindowPtr window;
    if (dixLookupWindow(&window, xid, serverClient, DixGetAttrAccess) == Success && window->redirectDraw != RedirectDrawNone
        && window->borderWidth == 0) {
        PixmapPtr pixmap = window->drawable.pScreen->GetWindowPixmap(window);
        entry = find(pixmap);
        if (entry && pixmap->drawable.width == window->drawable.width && pixmap->drawable.height == window->drawable.height) {
            reply[0] = 0;
            reply[1] = pixmap->drawable.width;
            reply[2] = pixmap->drawable.height;
            reply[3] = pixmap->devKind;
            reply[4] = entry->size;
        } else {
            entry = NULL;
        }
    }
    struct iovec iov = { reply, sizeof(reply) };
    union {
        char buffer[CMSG_SPACE(sizeof(int))];
        struct cmsghdr align;
    } control;
    struct msghdr message = { .msg_iov = &iov, .msg_iovlen = 1 };
    if (entry) {
        memset(&control, 0, sizeof(control));
        message.msg_control = control.buffer;
        message.msg_controllen = sizeof(control.buffer);
        struct cmsghdr *header = CMSG_FIRSTHDR(&message);
        header->cmsg_level = SOL_SOCKET;
        header->cmsg_type = SCM_RIGHTS;
        header->cmsg_len = CMSG_LEN(sizeof(int));
        memcpy(CMSG_DATA(header), &entry->fd, sizeof(int));
    }
    if (sendmsg(fd, &message, MSG_DONTWAIT | MSG_NOSIGNAL) != sizeof(reply))
        drop_client(slot);
}

static void accept_client(int fd, int ready, void *data)
{
    int client = accept4(fd, NULL, NULL, SOCK_CLOEXEC | SOCK_NONBLOCK);
    if (client < 0)
        return;
    for (int slot = 0; slot < MAX_AGENTS; slot++) {
        if (agents[slot] < 0) {
            agents[slot] = client;
            SetNotifyFd(client, serve, X_NOTIFY_READ, (void *)(intptr_t)slot);
            return;
        }
    }
    close(client);
}

static void listen_for_agent(void)
{
    const char *path = getenv("QUBES_PIXMAP_SOCKET");
    struct sockaddr_un address = { .sun_family = AF_UNIX };
    if (!path || strlen(path) >= sizeof(address.sun_path))
        return;
    strcpy(address.sun_path, path);
    listener = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
    if (listener < 0)
        return;
    unlink(path);
    mode_t mask = umask(0077);
    int bound = bind(listener, (struct sockaddr *)&address, sizeof(address));
    umask(mask);
    if (bound != 0 || listen(listener, MAX_AGENTS) != 0) {
        ErrorF("qubes-pixmaps: cannot listen on %s: %s\n", path, strerror(errno));
        close(listener);
        listener = -1;
        return;
    }
    SetNotifyFd(listener, accept_client, X_NOTIFY_READ, NULL);
}

static void qubes_pixmaps_init(void)
{
    for (int i = 0; i < screenInfo.numScreens; i++) {
        ScreenPtr screen = screenInfo.screens[i];
        if (screen->CreatePixmap == create_pixmap)
            continue;
        wrapped_create[i] = screen->CreatePixmap;
        screen->CreatePixmap = create_pixmap;
        wrapped_destroy[i] = screen->DestroyPixmap;
        screen->DestroyPixmap = destroy_pixmap;
    }
    if (listener < 0)
        listen_for_agent();
}

static ExtensionModule extension = { qubes_pixmaps_init, "QUBES-PIXMAPS", NULL };

static void *qubes_pixmaps_setup(void *module, void *options, int *major, int *minor)
{
    LoadExtensionList(&extension, 1, FALSE);
    return (void *)1;
}

static XF86ModuleVersionInfo version = {
    "qubespixmaps", "QubesRuntime", MODINFOSTRING1, MODINFOSTRING2, XORG_VERSION_CURRENT,
    1, 0, 0, ABI_CLASS_EXTENSION, ABI_EXTENSION_VERSION, MOD_CLASS_EXTENSION, { 0, 0, 0, 0 }
};

_X_EXPORT XF86ModuleData qubespixmapsModuleData = { &version, qubes_pixmaps_setup, NULL };
