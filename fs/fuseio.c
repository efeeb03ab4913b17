/* fuseio.c - a session's transport (fuseio.h). */
#include "fs/fuseio.h"
#include "fs/ovl_i.h"

#include <errno.h>
#include <fcntl.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <sys/uio.h>
#include <unistd.h>

#include <fuse_lowlevel.h>
#include <linux/fuse.h>

static struct fuseio *io_of(void *userdata)
{
    return &((struct ovl_fs *)userdata)->io;
}

static ssize_t io_read(int fd, void *buf, size_t len, void *userdata)
{
    ssize_t n = read(fd, buf, len);
    struct fuseio *io = io_of(userdata);
    /* Only the first request can be INIT; after it this is one load. */
    if (__atomic_load_n(&io->phase, __ATOMIC_RELAXED) == FUSEIO_WAIT_INIT &&
        n >= (ssize_t)(sizeof(struct fuse_in_header) + offsetof(struct fuse_init_in, flags) +
                       sizeof(uint32_t))) {
        const struct fuse_in_header *h = buf;
        if (h->opcode == FUSE_INIT) {
            const struct fuse_init_in *in = (const void *)(h + 1);
            io->init_unique = h->unique;
            io->offered = in->flags;
            __atomic_store_n(&io->phase, FUSEIO_ANSWERING, __ATOMIC_RELEASE);
        }
    }
    return n;
}

static ssize_t io_writev(int fd, struct iovec *iov, int count, void *userdata)
{
    struct fuseio *io = io_of(userdata);
    if (__atomic_load_n(&io->phase, __ATOMIC_ACQUIRE) != FUSEIO_ANSWERING || count != 2 ||
        iov[0].iov_len != sizeof(struct fuse_out_header) ||
        ((const struct fuse_out_header *)iov[0].iov_base)->unique != io->init_unique)
        return writev(fd, iov, count);

    __atomic_store_n(&io->phase, FUSEIO_DONE, __ATOMIC_RELAXED);
    const struct fuse_out_header *oh = iov[0].iov_base;
    struct fuse_init_out out;
    size_t len = iov[1].iov_len;
    if (oh->error != 0 || !(io->offered & FUSE_HANDLE_KILLPRIV_V2) ||
        len < offsetof(struct fuse_init_out, flags) + sizeof(out.flags) || len > sizeof(out))
        return writev(fd, iov, count);
    /* libfuse's answer, with the flag added; the rest as it was. */
    memcpy(&out, iov[1].iov_base, len);
    out.flags |= FUSE_HANDLE_KILLPRIV_V2;
    struct iovec patched[2] = { iov[0], { .iov_base = &out, .iov_len = len } };
    ssize_t n = writev(fd, patched, 2);
    if (n >= 0)
        __atomic_store_n(&io->killpriv_v2, true, __ATOMIC_RELEASE);
    return n;
}

static ssize_t io_splice(int fdin, off_t *offin, int fdout, off_t *offout, size_t len,
                         unsigned int flags, void *userdata)
{
    (void)userdata;
    return splice(fdin, offin, fdout, offout, len, flags);
}

int fuseio_attach(struct fuse_session *se, int fd)
{
    static const struct fuse_custom_io ops = {
        .read = io_read,
        .writev = io_writev,
        .splice_receive = io_splice,    /* so libfuse keeps offering splice */
        .splice_send = io_splice,
    };
    const char *env = getenv("LANEFS_KILLPRIV");
    if (env && !strcmp(env, "off"))
        return 0;
    return fuse_session_custom_io(se, &ops, fd);
}

bool fuseio_killpriv_v2(const struct fuseio *io)
{
    return __atomic_load_n(&io->killpriv_v2, __ATOMIC_ACQUIRE);
}
