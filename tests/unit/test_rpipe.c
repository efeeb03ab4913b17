/* Unit tests for fs/rpipe.c, the read engine's pool of splice pipes: which
 * reads a pipe takes (size, alignment, the reply's slack), reuse of a
 * returned empty pipe, a pipe with bytes left in it never handed out
 * again, the cap on pipes kept, and a real splice of a file through a pipe
 * from the pool with every byte compared. The pipe size is the kernel's to
 * give (2 MiB with CAP_SYS_RESOURCE, else /proc/sys/fs/pipe-max-size), so
 * the bounds are taken from the pipe the pool made. */
#include <criterion/criterion.h>

#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "fs/rpipe.h"

#define KiB 1024u

/* The size of the pool's pipes, from a first one (which it then keeps). */
static unsigned pipe_bytes(struct rpipe_pool *p)
{
    int fds[2];
    cr_assert_eq(rpipe_get(p, 0, 128 * KiB, fds), 0, "no pipe for a 128 KiB read");
    int got = fcntl(fds[0], F_GETPIPE_SZ);
    cr_assert(got >= (int)RPIPE_MIN_BYTES, "pipe of %d bytes", got);
    rpipe_put(p, fds);
    return (unsigned)got;
}

Test(rpipe, reads_that_fit_and_reads_that_do_not)
{
    struct rpipe_pool *p = rpipe_pool_new(4);
    cr_assert_not_null(p);
    unsigned bytes = pipe_bytes(p);
    int fds[2];
    /* The largest aligned read that leaves room for the reply's header. */
    size_t big = (bytes - 3 * 4096 - 16) / 4096 * 4096;
    cr_assert_eq(rpipe_get(p, 0, big, fds), 0, "%zu bytes in a pipe of %u", big, bytes);
    rpipe_put(p, fds);
    cr_assert_eq(rpipe_get(p, 0, bytes, fds), -E2BIG, "a read as large as the pipe fit");
    cr_assert(fds[0] == -1 && fds[1] == -1, "a refused get left fds %d %d", fds[0], fds[1]);
    /* Nor at an odd offset, where the read spans one page more. */
    cr_assert_eq(rpipe_get(p, 100, bytes - 4096, fds), -E2BIG);
    cr_assert_eq(rpipe_get(p, 100, big, fds), 0, "%zu bytes at offset 100", big);
    rpipe_put(p, fds);
    cr_assert_eq(rpipe_get(p, 0, 0, fds), -E2BIG, "an empty read took a pipe");
    cr_assert_eq(rpipe_get(p, -1, 4096, fds), -E2BIG, "a negative offset took a pipe");
    rpipe_pool_free(p);
}

Test(rpipe, an_empty_pipe_is_reused_one_with_bytes_left_is_closed)
{
    struct rpipe_pool *p = rpipe_pool_new(4);
    int a[2], b[2];
    cr_assert_eq(rpipe_get(p, 0, 256 * KiB, a), 0);
    rpipe_put(p, a);
    cr_assert_eq(rpipe_pool_kept(p), 1);
    cr_assert_eq(rpipe_get(p, 0, 256 * KiB, b), 0);
    cr_assert(b[0] == a[0] && b[1] == a[1], "the kept pipe was not handed out again");
    cr_assert_eq(rpipe_pool_kept(p), 0);
    /* Bytes left behind (a reply that failed half way): closed, not kept. */
    cr_assert_eq(write(b[1], "x", 1), 1);
    rpipe_put(p, b);
    cr_assert_eq(rpipe_pool_kept(p), 0, "a pipe with a byte in it was kept");
    cr_assert(fcntl(b[0], F_GETFD) < 0 && errno == EBADF, "the pipe was not closed");
    rpipe_pool_free(p);
}

Test(rpipe, keeps_at_most_its_cap)
{
    struct rpipe_pool *p = rpipe_pool_new(2);
    int f[3][2];
    for (int i = 0; i < 3; i++)
        cr_assert_eq(rpipe_get(p, 0, 256 * KiB, f[i]), 0);
    for (int i = 0; i < 3; i++)
        rpipe_put(p, f[i]);
    cr_assert_eq(rpipe_pool_kept(p), 2);
    cr_assert(fcntl(f[2][0], F_GETFD) < 0, "the pipe past the cap stayed open");
    int none[2] = { -1, -1 };
    rpipe_put(p, none);             /* a no-op */
    cr_assert_eq(rpipe_pool_kept(p), 2);
    rpipe_pool_free(p);
    cr_assert_eq(rpipe_get(NULL, 0, 256 * KiB, f[0]), -ENOSYS, "a NULL pool gave a pipe");
}

/* What io_uring's splice does for a read, done by hand: a file's bytes at
 * an offset through a pipe of the pool, read back and compared. */
Test(rpipe, a_file_spliced_through_a_pool_pipe_reads_back_right)
{
    char path[] = "rpipe-test-XXXXXX";
    int fd = mkstemp(path);
    cr_assert(fd >= 0);
    unlink(path);
    size_t len = 700 * KiB, off = 12 * 4096;
    unsigned char *want = malloc(off + len), *got = malloc(len);
    srand(7);
    for (size_t i = 0; i < off + len; i++)
        want[i] = (unsigned char)rand();
    cr_assert_eq(write(fd, want, off + len), (ssize_t)(off + len));

    struct rpipe_pool *p = rpipe_pool_new(1);
    int fds[2];
    cr_assert_eq(rpipe_get(p, (long long)off, len, fds), 0);
    loff_t in = (loff_t)off;
    size_t moved = 0;
    while (moved < len) {
        ssize_t n = splice(fd, &in, fds[1], NULL, len - moved, 0);
        cr_assert(n > 0, "splice: %zd (%s)", n, strerror(errno));
        moved += (size_t)n;
    }
    size_t read_back = 0;
    while (read_back < len) {
        ssize_t n = read(fds[0], got + read_back, len - read_back);
        cr_assert(n > 0);
        read_back += (size_t)n;
    }
    cr_assert_eq(memcmp(got, want + off, len), 0, "the bytes through the pipe differ");
    rpipe_put(p, fds);
    cr_assert_eq(rpipe_pool_kept(p), 1, "the drained pipe was not kept");
    rpipe_pool_free(p);
    close(fd);
    free(want);
    free(got);
}
