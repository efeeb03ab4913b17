/* rengine_i.h - what the engine thread (rengine.c) and the workers' own
 * rings (rlocal.c) share: a read in progress and its completion. */
#ifndef LANEFS_RENGINE_I_H
#define LANEFS_RENGINE_I_H

#include <liburing.h>
#include <stdint.h>
#include <sys/types.h>
#include <time.h>

#include "fs/rengine.h"

struct re_read {
    struct sched_item item;       /* first: the scheduler hands it back */
    fuse_req_t req;
    int fd;
    off_t off;
    size_t size;
    size_t got;                   /* the ring's thread: bytes read so far */
    size_t piece;                 /* bytes asked of the device at a time; 0: all */
    uint64_t sub_ns;              /* the ring's thread: when it went to the ring */
    uint64_t agent;
    char *buf;                    /* NULL while it is spliced through pipe */
    int pipe[2];                  /* from pipes (fs/rpipe.h); -1: not spliced */
    struct rpipe_pool *pipes;
    struct re_count *mine;        /* the agent's reads in the engine */
    bool offload;                 /* read by io_uring's workers (IOSQE_ASYNC) */
    bool timed;                   /* a worker's: re_small_done when done */
    struct re_read *next;         /* e->mu: the engine's incoming list */
};

/* Monotonic nanoseconds. */
static inline uint64_t re_now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

/* Sets up a ring for the calling thread alone (single issuer, deferred
 * task run; a plain ring on kernels that refuse those). 0 or -errno. */
int re_ring_init(struct io_uring *ring, unsigned entries);

/* A read of size bytes at off from fd for req, counted in *mine until
 * answered: spliced through a pipe of e's when splice is set, the read is
 * large enough to pay for it and a pipe is to be had, else read into a
 * buffer of its own. NULL when out of memory. */
struct re_read *re_read_new(struct rengine *e, fuse_req_t req, uint64_t agent,
                            int fd, off_t off, size_t size, struct re_count *mine,
                            bool splice);
/* Queues what is left of r to read (or splice) on ring. False when the
 * ring is full. */
bool re_read_submit(struct io_uring *ring, struct re_read *r);
/* Takes a completion's result: true when r is done (r->got final), false
 * when the rest of a short read was queued again (a short read that is not
 * the end of the file would read as the end to the kernel), or when a
 * splice the layer's filesystem refused was queued again as a read. */
bool re_read_progress(struct io_uring *ring, struct re_read *r, int res);
/* Replies to r's request (res < 0: that error, else res bytes, from the
 * pipe or the buffer), then takes r out of *mine (see struct re_count),
 * gives its pipe back and frees r. */
void re_read_answer(struct re_read *r, int res);
/* A timed small read r on a worker's ring is done: when it went to the
 * device, the engine thread starts or extends the latency guard. Any
 * thread. */
void re_small_done(struct rengine *e, const struct re_read *r);
/* The reply for a finished read: what it got, or the error when it got
 * nothing. */
static inline int re_read_result(const struct re_read *r, int res)
{
    return res < 0 && r->got == 0 ? res : (int)r->got;
}

#endif
