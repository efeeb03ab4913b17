/* rpipe.c - the read engine's pool of splice pipes (rpipe.h). */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/ioctl.h>
#include <unistd.h>

#include "fs/rpipe.h"

/* What libfuse's reply adds in its own pipe besides the data: the reply's
 * header and iovec count in pages (fuse_send_data_iov sizes its pipe so). */
#define REPLY_SLACK (3u * 4096 + 16)
#define PAGE 4096u

struct rpipe_pool {
    pthread_mutex_t mu;
    bool off;                   /* atomic: the kernel refused even the least */
    unsigned bytes;             /* atomic: each pipe's size; 0 until known */
    unsigned keep;              /* capacity of kept[] */
    unsigned n;                 /* mu: pipes in kept[] */
    int kept[][2];              /* mu */
};

struct rpipe_pool *rpipe_pool_new(unsigned keep)
{
    struct rpipe_pool *p = calloc(1, sizeof(*p) + keep * sizeof(p->kept[0]));
    if (!p)
        return NULL;
    pthread_mutex_init(&p->mu, NULL);
    p->keep = keep;
    return p;
}

void rpipe_pool_free(struct rpipe_pool *p)
{
    if (!p)
        return;
    for (unsigned i = 0; i < p->n; i++) {
        close(p->kept[i][0]);
        close(p->kept[i][1]);
    }
    pthread_mutex_destroy(&p->mu);
    free(p);
}

/* The largest pipe an unprivileged process may have. */
static int pipe_max_size(void)
{
    int v = 0;
    FILE *f = fopen("/proc/sys/fs/pipe-max-size", "re");
    if (f) {
        if (fscanf(f, "%d", &v) != 1)
            v = 0;
        fclose(f);
    }
    return v;
}

/* Sizes a new pipe: to known, the size of the pool's pipes once there is
 * one; before, RPIPE_BYTES, else as much as the kernel allows. The size it
 * got, or -errno. */
static int size_pipe(int fd, unsigned known)
{
    int got = fcntl(fd, F_SETPIPE_SZ, (int)(known ? known : RPIPE_BYTES));
    if (got < 0 && errno == EPERM && !known) {
        int max = pipe_max_size();
        got = max > 0 ? fcntl(fd, F_SETPIPE_SZ, max) : -1;
    }
    return got < 0 ? -errno : got;
}

/* A new pipe of the pool's size into fds, or -errno with fds -1 (-ENOSYS,
 * and the pool off, when the kernel gives less than RPIPE_MIN_BYTES). */
static int make_pipe(struct rpipe_pool *p, int fds[2])
{
    if (pipe2(fds, O_CLOEXEC) < 0) {
        fds[0] = fds[1] = -1;
        return -errno;
    }
    unsigned want = __atomic_load_n(&p->bytes, __ATOMIC_RELAXED);
    int rc = size_pipe(fds[0], want);
    if (rc >= 0 && ((unsigned)rc < RPIPE_MIN_BYTES || (want && (unsigned)rc < want)))
        rc = -ENOSYS;       /* smaller than the pool's pipes: stop splicing */
    else if (rc >= 0 && fcntl(fds[0], F_SETFL, O_NONBLOCK) < 0)
        rc = -errno;
    if (rc >= 0) {
        __atomic_store_n(&p->bytes, (unsigned)rc, __ATOMIC_RELAXED);
        return 0;
    }
    if (rc == -ENOSYS || rc == -EPERM) {
        rc = -ENOSYS;
        __atomic_store_n(&p->off, true, __ATOMIC_RELAXED);
    }
    close(fds[0]);
    close(fds[1]);
    fds[0] = fds[1] = -1;
    return rc;
}

/* Whether a pipe of bytes takes a read of size at off, and its reply. */
static bool fits(unsigned bytes, long long off, size_t size)
{
    size_t pages = ((size_t)(off % PAGE) + size + PAGE - 1) / PAGE;
    return size > 0 && off >= 0 && size + REPLY_SLACK <= bytes && pages <= bytes / PAGE;
}

int rpipe_get(struct rpipe_pool *p, long long off, size_t size, int fds[2])
{
    fds[0] = fds[1] = -1;
    if (!p || __atomic_load_n(&p->off, __ATOMIC_RELAXED))
        return -ENOSYS;
    unsigned bytes = __atomic_load_n(&p->bytes, __ATOMIC_RELAXED);
    if (bytes && !fits(bytes, off, size))
        return -E2BIG;
    pthread_mutex_lock(&p->mu);
    bool have = p->n > 0;
    if (have) {
        p->n--;
        fds[0] = p->kept[p->n][0];
        fds[1] = p->kept[p->n][1];
    }
    pthread_mutex_unlock(&p->mu);
    if (have)
        return 0;
    int rc = make_pipe(p, fds);
    if (rc == 0 && !fits(__atomic_load_n(&p->bytes, __ATOMIC_RELAXED), off, size)) {
        rpipe_put(p, fds);  /* the first pipe: its size was not known */
        fds[0] = fds[1] = -1;
        rc = -E2BIG;
    }
    return rc;
}

void rpipe_put(struct rpipe_pool *p, const int fds[2])
{
    if (fds[0] < 0)
        return;
    /* A reply that failed half way leaves bytes behind: such a pipe is
     * closed, never handed to the next read. */
    int left = 1;
    if (p && ioctl(fds[0], FIONREAD, &left) == 0 && left == 0) {
        pthread_mutex_lock(&p->mu);
        bool kept = p->n < p->keep;
        if (kept) {
            p->kept[p->n][0] = fds[0];
            p->kept[p->n][1] = fds[1];
            p->n++;
        }
        pthread_mutex_unlock(&p->mu);
        if (kept)
            return;
    }
    close(fds[0]);
    close(fds[1]);
}

unsigned rpipe_pool_kept(struct rpipe_pool *p)
{
    pthread_mutex_lock(&p->mu);
    unsigned n = p->n;
    pthread_mutex_unlock(&p->mu);
    return n;
}
