/* rpipe.h - pipes the read engine splices large reads through, kept for
 * reuse.
 *
 * A large read of shared data that goes to io_uring's workers is spliced
 * from the layer file into a pipe (IORING_OP_SPLICE) and answered from the
 * pipe with fuse_reply_data, which splices on into /dev/fuse: the page
 * cache's pages go to the kernel's FUSE request by reference, and the one
 * copy of the data is into the reader's pages. Read into a buffer of the
 * daemon's instead, the data was copied once more, and with 8 agents
 * streaming the copies were what held the machine's CPUs
 * (docs/readengine.md).
 *
 * Each pipe holds RPIPE_BYTES, or /proc/sys/fs/pipe-max-size when the
 * daemon may not go above that (CAP_SYS_RESOURCE): rpipe_fits says which
 * reads a pipe and the reply's own pipe in libfuse (the data, a header and
 * some slack, within the same limit) can take. A kernel that gives no pipe
 * of even RPIPE_MIN_BYTES turns the pool off: rpipe_get then fails and
 * reads go through memory as before.
 *
 * Thread-safe: pipes are taken by whichever thread makes a read and given
 * back by whichever answers it. */
#ifndef LANEFS_RPIPE_H
#define LANEFS_RPIPE_H

#include <stdbool.h>
#include <stddef.h>

#define RPIPE_BYTES     (2u << 20)          /* what each pipe should hold */
#define RPIPE_MIN_BYTES (256u << 10)        /* below this, no splicing */

struct rpipe_pool;

/* A pool that keeps at most keep empty pipes. NULL when out of memory. */
struct rpipe_pool *rpipe_pool_new(unsigned keep);
/* Closes the pipes the pool keeps and frees it. NULL is a no-op. */
void rpipe_pool_free(struct rpipe_pool *p);

/* An empty pipe into fds (read end, write end; both close-on-exec, the
 * read end non-blocking) that takes a read of size bytes at file offset
 * off, and whose reply libfuse can splice (the data, a header and some
 * slack in its own pipe, which has the same limit). 0; or, with fds both
 * -1: -ENOSYS when the pool is off (p NULL, or the kernel refused even
 * RPIPE_MIN_BYTES), -E2BIG when the read does not fit, or -errno. */
int rpipe_get(struct rpipe_pool *p, long long off, size_t size, int fds[2]);
/* Gives back fds, taken with rpipe_get: kept when the pipe is empty and
 * the pool has room, else closed. fds[0] < 0 is a no-op. */
void rpipe_put(struct rpipe_pool *p, const int fds[2]);

/* Pipes the pool keeps now (for tests). */
unsigned rpipe_pool_kept(struct rpipe_pool *p);

#endif
