/* fuseio.h - a session's transport: libfuse's reads and writes of the
 * /dev/fuse descriptor, through fuse_session_custom_io.
 *
 * It exists for one thing libfuse 3.14 cannot ask for: FUSE_HANDLE_KILLPRIV_V2
 * (kernel 5.11). Without it the kernel asks the daemon for a file's
 * security.capability before every write(), whether the write should drop
 * it: one more round trip per write. With it, the mount is SB_NOSEC and the
 * kernel asks once per inode until the inode's attributes are refreshed.
 * What the flag makes the daemon's duty (dropping set-id bits and file
 * capabilities on write, truncate and chown) holds by construction here:
 * no file of a view carries a set-id bit (ops.c strips them on create,
 * chmod and copy-up) and a view shows no security.* attribute
 * (docs/performance.md, "What changed").
 *
 * The transport watches the kernel's INIT request for the flags it offers
 * and adds FUSE_HANDLE_KILLPRIV_V2 to libfuse's INIT answer when the kernel
 * offered it. Every other read and write passes through unchanged. */
#ifndef LANEFS_FUSEIO_H
#define LANEFS_FUSEIO_H

#include <stdbool.h>
#include <stdint.h>

struct fuse_session;

/* Where a session is in its INIT exchange. */
enum fuseio_phase {
    FUSEIO_WAIT_INIT,       /* no INIT read yet */
    FUSEIO_ANSWERING,       /* INIT read, its answer not yet sent */
    FUSEIO_DONE,            /* INIT answered: everything passes through */
};

/* One session's transport state; zeroed with its ovl_fs. */
struct fuseio {
    int phase;              /* atomic: enum fuseio_phase */
    uint64_t init_unique;   /* the INIT request's id (set before ANSWERING) */
    uint32_t offered;       /* the kernel's INIT flags */
    bool killpriv_v2;       /* atomic: the kernel was told the flag */
};

/* Routes se's reads and writes of fd (its mounted /dev/fuse descriptor)
 * through the transport, whose state is the fuseio inside the ovl_fs that
 * is se's userdata. With LANEFS_KILLPRIV=off in the environment it leaves
 * libfuse's own reads and writes in place. Call after fuse_session_mount,
 * before the first request is read. 0 or -errno (se is unchanged then). */
int fuseio_attach(struct fuse_session *se, int fd);

/* True when the kernel was told FUSE_HANDLE_KILLPRIV_V2 for this session. */
bool fuseio_killpriv_v2(const struct fuseio *io);

#endif
