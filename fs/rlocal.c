/* rlocal.c - a worker's own ring, for the reads of an agent that reads
 * alone.
 *
 * Through the engine thread a read costs one thread hand-off more than a
 * plain read in the worker (worker -> engine thread -> completion), and a
 * lone random reader waits for every one of them. A read the scheduler
 * would dispatch at once anyway (an agent without limits reading alone,
 * no volume cap, no other read in flight: ops.c decides) is instead
 * submitted by the worker to its own ring; the worker goes back to its
 * sessions and waits for their
 * requests and its reads' completions together (a poll of the sessions'
 * epoll set on the ring), and replies itself. The worker never blocks on
 * the read. The ring is the worker's alone (single issuer, deferred task
 * run), so none of this takes a lock. */
#include <errno.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>

#include "fs/log.h"
#include "fs/rengine_i.h"

#define TAG_POLL    UINT64_MAX      /* user_data of the poll of the epoll set */
#define RLOCAL_MAX  32u         /* reads on one worker's ring at once */

struct rlocal {
    struct io_uring ring;
    struct rengine *engine;     /* whose reads this ring takes */
    unsigned inflight;          /* reads on the ring */
    bool polling;               /* the poll of the epoll set is on the ring
                                 * (or fired, its completion not yet taken) */
};

static __thread struct rlocal *this_worker;

int rlocal_start(struct rengine *e, struct rlocal **out)
{
    struct rlocal *l = calloc(1, sizeof(*l));
    if (!l)
        return -ENOMEM;
    int rc = re_ring_init(&l->ring, RLOCAL_MAX * 2 + 2);
    if (rc < 0) {
        free(l);
        return rc;
    }
    l->engine = e;
    this_worker = l;
    *out = l;
    return 0;
}

/* Takes the completions on the ring, answering the reads that are done.
 * True when one of them was watch. */
static bool reap(struct rlocal *l, const struct re_read *watch)
{
    struct io_uring_cqe *cqe;
    unsigned head, n = 0;
    bool seen = false;
    io_uring_for_each_cqe(&l->ring, head, cqe) {
        n++;
        if (cqe->user_data == TAG_POLL) {
            l->polling = false;     /* fired, or cancelled at exit */
            continue;
        }
        struct re_read *r = io_uring_cqe_get_data(cqe);
        if (!re_read_progress(&l->ring, r, cqe->res))
            continue;               /* the rest of a short read is queued */
        l->inflight--;
        seen |= r == watch;
        if (r->timed)
            re_small_done(l->engine, r);
        re_read_answer(r, re_read_result(r, cqe->res));
    }
    io_uring_cq_advance(&l->ring, n);
    if (io_uring_sq_ready(&l->ring))
        io_uring_submit(&l->ring);
    return seen;
}

void rlocal_stop(struct rlocal *l)
{
    if (!l)
        return;
    while (l->inflight) {           /* every read is answered first */
        int rc = io_uring_submit_and_wait(&l->ring, 1);
        if (rc < 0 && rc != -EINTR && rc != -ETIME) {
            log_say("worker ring: waiting for reads: %s", strerror(-rc));
            break;
        }
        reap(l, NULL);
    }
    io_uring_queue_exit(&l->ring);
    if (this_worker == l)
        this_worker = NULL;
    free(l);
}

int rlocal_wait(struct rlocal *l, int epfd, struct epoll_event *ev)
{
    /* With no read on the ring the poll may stay armed: removing it would
     * cost a ring entry per read. When it fires meanwhile, the next read's
     * submission takes its stale completion (rengine_read_here). */
    if (!l || !l->inflight) {
        int n = epoll_wait(epfd, ev, 1, -1);
        return n < 0 ? -errno : n;
    }
    if (!l->polling) {
        struct io_uring_sqe *sqe = io_uring_get_sqe(&l->ring);
        if (sqe) {
            io_uring_prep_poll_add(sqe, epfd, POLLIN);
            io_uring_sqe_set_data64(sqe, TAG_POLL);
            l->polling = true;
        }
    }
    int rc = io_uring_submit_and_wait(&l->ring, 1);
    if (rc < 0 && rc != -EINTR && rc != -ETIME)
        return rc;
    reap(l, NULL);
    if (l->polling)
        return 0;           /* a read completed; the sessions are quiet */
    /* The sessions have a request (or another worker took it already). */
    int n = epoll_wait(epfd, ev, 1, 0);
    return n < 0 ? -errno : n;
}

int rengine_read_here(struct rengine *e, uint64_t agent, fuse_req_t req, int fd,
                      off_t off, size_t size, struct re_count *mine, bool timed)
{
    struct rlocal *l = this_worker;
    if (!l || l->engine != e || l->inflight >= RLOCAL_MAX ||
        io_uring_sq_space_left(&l->ring) < 2)    /* a read and the poll */
        return -EAGAIN;
    struct re_read *r = re_read_new(e, req, agent, fd, off, size, mine, true);
    if (!r)
        return -ENOMEM;
    if ((r->timed = timed))
        r->sub_ns = re_now_ns();
    re_read_submit(&l->ring, r);            /* room checked above */

    l->inflight++;
    /* The ring tries the read at once: from the page cache it completes
     * here, and is answered here. Else the device starts on it now. (A
     * large read is spliced: io_uring's workers do that, and the worker
     * answers it when it completes; a copy of it would cost more than the
     * hand-off.) Taking
     * the events also takes a completion of a poll that fired while the
     * worker waited in epoll, so the wait for this read arms a live one. */
    io_uring_submit_and_get_events(&l->ring);
    return reap(l, r) ? 1 : 0;
}
