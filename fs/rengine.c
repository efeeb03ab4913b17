/* rengine.c - the io_uring read engine.
 *
 * Workers hand reads over (rengine_read) and return at once. The engine
 * thread is the ring's only submitter: it moves new reads into the
 * scheduler, dispatches what the scheduler allows while fewer than
 * INFLIGHT_UNEQUAL reads (max_inflight when the agents reading are
 * alike) are in the ring, and answers each completion (libfuse allows a
 * reply from any thread): a spliced read (fs/rpipe.h) with fuse_reply_data
 * from its pipe, on one of the answer threads (fs/rreply.h) unless the
 * latency guard holds; any other read from its own thread, with
 * fuse_reply_buf. Control calls (agent add/set/remove/stats) are commands
 * the engine thread carries out, so the scheduler needs no lock of its own. */
#include <errno.h>
#include <stdio.h>
#include <liburing.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <time.h>
#include <unistd.h>

#include "fs/log.h"
#include "fs/rengine.h"
#include "fs/rpipe.h"
#include "fs/rengine_i.h"
#include "fs/rguard.h"
#include "fs/rreply.h"

#define TAG_WAKE UINT64_MAX       /* user_data of the eventfd read */
/* Reads in the ring while the agents reading differ (sched_symmetric):
 * few enough that the scheduler, not the device queue, orders them (with
 * 32, agents were rarely backlogged in the engine and weights had little
 * effect; a light reader's read waits behind all of them). Agents that
 * are alike get max_inflight. */
#define INFLIGHT_UNEQUAL 8u
/* Reads this large are done by io_uring's workers (IOSQE_ASYNC), several
 * at once, instead of first by the engine thread at submission: copying a
 * large read out of the page cache would hold up every other agent's
 * submissions and answers behind it. The engine answers it (rreply.h).
 * Small reads stay inline, where a worker's hand-off would cost more than
 * the copy. 8 agents streaming a cold file at once: 734-919 MB/s (median
 * 881) against 607-974 (726) inline, 5 alternating rounds. */
#define OFFLOAD_MIN (128u * 1024)
/* Pipes kept for spliced reads (fs/rpipe.h): as many as the engine's ring
 * holds reads, so a steady stream makes few. Reads of at least OFFLOAD_MIN
 * are spliced, on the engine's ring and on the workers' own: a splice
 * always goes to io_uring's workers, but a copy of a large read through
 * memory costs more than that hand-off (one agent, 4 readers of cold
 * files: 884-927 MiB/s spliced against 650-827 copied, 3 alternating runs). */
#define PIPES_KEPT 32u
/* Threads that answer spliced reads (fs/rreply.h): one per CPU, so that
 * the copies into the readers' page caches run on every CPU at once. */
#define REPLY_THREADS_MAX 4u
/* Pacing (sched_set_pacing): an agent may get up to PACE_LAG bytes (at
 * weight 100) ahead of its share of what a contending agent gets, and an
 * agent contends for PACE_IDLE_NS after its last read ended. 15 ms covers
 * a streaming reader's pauses between files; at 5 ms those pauses cost it
 * its place, and the worst second's fairness fell to 0.78-0.90 (0.98 at
 * 15 ms; at 30 ms a limited agent got 0.93 of its limit). */
#define PACE_LAG     (1u << 20)
#define PACE_IDLE_NS 15000000u
/* Reads of two agents this close together mean they share the volume now;
 * for SHARED_HOLD_NS after, every read is scheduled. */
#define SHARED_GAP_NS  10000000u
#define SHARED_HOLD_NS 100000000u

/* A small read of an agent with fewer unanswered than this passes the
 * scheduler while agents share the volume (rengine_route). Not 1: the
 * kernel's readahead on an agent's mount turns one reader's 4 KiB random
 * reads into several requests at once now and then (up to 7 in a test
 * run), and each that went to the engine took its longer path; at 1, 32
 * of a light reader's reads next to a stream were scheduled in one test
 * run. The price: an agent with many small reads at once gets this many
 * past its weight. */
#define LIGHT_UNANSWERED 4u

/* Large reads the scheduler gave out that wait for the latency guard
 * (rguard.h) to admit them; past this many it is asked for no more, so
 * the scheduler keeps ordering the rest. */
#define HELD_MAX 8u

struct flight { uint64_t agent; unsigned n; };

enum re_cmd_op { CMD_ADD, CMD_SET, CMD_REMOVE, CMD_STATS, CMD_VOLUME_RATE, CMD_GUARD,
                 CMD_GUARD_STATS, CMD_STOP };

struct re_cmd {
    enum re_cmd_op op;
    uint64_t agent;
    struct sched_limits limits;
    struct sched_stats stats;
    uint64_t rate;                /* CMD_VOLUME_RATE */
    bool on;                      /* CMD_GUARD */
    struct rguard_stats guard;    /* CMD_GUARD_STATS */
    int rc;
    bool done;                    /* e->mu */
    struct re_cmd *next;          /* e->mu */
};

struct rengine {
    pthread_t thread;
    struct io_uring ring;
    int efd;
    uint64_t efd_val;             /* engine thread: target of the wake read */
    struct rpipe_pool *pipes;     /* spliced reads' pipes (any thread) */
    struct rreply *replies;       /* answer spliced reads (with pipes) */
    unsigned max_inflight;
    unsigned inflight;            /* engine thread */
    struct sched *sched;          /* engine thread */
    pthread_mutex_t mu;
    pthread_cond_t cmd_cv;
    struct re_read *in_head, *in_tail;   /* mu */
    struct re_cmd *cmds;          /* mu */
    struct re_cmd *removing;      /* engine thread: waits for in-flight reads */
    struct rguard guard;          /* engine thread */
    struct re_read *held_head, *held_tail;   /* engine thread: see HELD_MAX */
    unsigned n_held;              /* engine thread */
    struct flight *flights;       /* engine thread: in-flight reads per agent */
    unsigned n_flights;           /* engine thread */
    uint64_t last_agent, last_ns; /* atomic: the latest read's agent and time */
    uint64_t shared_until;        /* atomic: agents read together until then */
    bool volume_capped;           /* atomic: a volume-wide read cap is set */
    uint64_t small_slow_ns;       /* atomic: when a small read on a worker's
                                   * ring last went to the device */
    uint64_t small_slow_seen;     /* engine thread: the last one it acted on */
    uint64_t guard_until;         /* atomic, from the engine thread: the guard
                                   * holds until then (UINT64_MAX: off) */
    FILE *trace;                  /* engine thread: LANEFS_RENGINE_TRACE */
    uint64_t trace_t0, trace_last;
    struct tr { uint64_t agent, samples, depth_sum, depth_max, fl_sum, disp, dbytes; } tr[8];
    uint64_t tr_cached[8], tr_cached_bytes[8];   /* atomic, by agent % 8 */
    int init_rc;                  /* mu: the ring's set-up, from the thread */
    bool init_done;               /* mu */
};

static void wake(struct rengine *e)
{
    uint64_t one = 1;
    if (write(e->efd, &one, sizeof(one)) < 0) { /* a wake is pending anyway */ }
}

static void arm_wake(struct rengine *e)
{
    struct io_uring_sqe *sqe = io_uring_get_sqe(&e->ring);
    if (!sqe)
        return;             /* the ring is full: the next round arms it */
    io_uring_prep_read(sqe, e->efd, &e->efd_val, sizeof(e->efd_val), 0);
    io_uring_sqe_set_data64(sqe, TAG_WAKE);
}

struct re_read *re_read_new(struct rengine *e, fuse_req_t req, uint64_t agent,
                            int fd, off_t off, size_t size, struct re_count *mine,
                            bool splice)
{
    struct re_read *r = calloc(1, sizeof(*r));
    if (!r)
        return NULL;
    r->pipe[0] = r->pipe[1] = -1;
    r->pipes = e->pipes;
    if (!splice || size < OFFLOAD_MIN || rpipe_get(e->pipes, off, size, r->pipe) < 0) {
        if (!(r->buf = malloc(size ? size : 1))) {
            free(r);
            return NULL;
        }
    }
    r->item.bytes = size;
    r->req = req;
    r->fd = fd;
    r->off = off;
    r->size = size;
    r->agent = agent;
    r->mine = mine;
    __atomic_add_fetch(&mine->unanswered, 1, __ATOMIC_RELAXED);
    __atomic_add_fetch(&mine->live, 1, __ATOMIC_RELAXED);
    return r;
}

bool re_read_submit(struct io_uring *ring, struct re_read *r)
{
    struct io_uring_sqe *sqe = io_uring_get_sqe(ring);
    if (!sqe)
        return false;
    size_t len = r->size - r->got;
    if (r->piece && len > r->piece)
        len = r->piece;
    if (r->pipe[1] >= 0)
        io_uring_prep_splice(sqe, r->fd, r->off + (int64_t)r->got, r->pipe[1], -1,
                             (unsigned)len, 0);
    else
        io_uring_prep_read(sqe, r->fd, r->buf + r->got, (unsigned)len,
                           (uint64_t)r->off + r->got);
    io_uring_sqe_set_data(sqe, r);
    if (r->offload)
        sqe->flags |= IOSQE_ASYNC;
    return true;
}

/* Makes r, whose splice was refused before any byte, a read into memory. */
static bool unsplice(struct re_read *r)
{
    if (!(r->buf = malloc(r->size ? r->size : 1)))
        return false;
    rpipe_put(r->pipes, r->pipe);
    r->pipe[0] = r->pipe[1] = -1;
    return true;
}

bool re_read_progress(struct io_uring *ring, struct re_read *r, int res)
{
    if (res == -EINVAL && r->pipe[0] >= 0 && r->got == 0 && unsplice(r))
        return !re_read_submit(ring, r);
    if (res <= 0)
        return true;
    r->got += (size_t)res;
    return r->got >= r->size || !re_read_submit(ring, r);
}

void re_read_answer(struct re_read *r, int res)
{
    __atomic_sub_fetch(&r->mine->unanswered, 1, __ATOMIC_RELAXED);
    if (res < 0) {
        fuse_reply_err(r->req, -res);
    } else if (r->pipe[0] >= 0) {
        struct fuse_bufvec bv = FUSE_BUFVEC_INIT((size_t)res);
        bv.buf[0].flags = FUSE_BUF_IS_FD;
        bv.buf[0].fd = r->pipe[0];
        __atomic_add_fetch(&r->mine->spliced_reads, 1, __ATOMIC_RELAXED);
        __atomic_add_fetch(&r->mine->spliced_bytes, (uint64_t)res, __ATOMIC_RELAXED);
        fuse_reply_data(r->req, &bv, FUSE_BUF_SPLICE_MOVE);
    } else {
        fuse_reply_buf(r->req, r->buf, (size_t)res);
    }
    /* Only now: a session's end waits for this count to reach 0 before it
     * destroys the FUSE session the reply went to. */
    __atomic_sub_fetch(&r->mine->live, 1, __ATOMIC_RELEASE);
    rpipe_put(r->pipes, r->pipe);
    free(r->buf);
    free(r);
}

/* rreply_fn of the engine's answer threads. */
static void answer_spliced(void *item, int res)
{
    re_read_answer(item, res);
}

/* In-flight reads of one agent: removal waits for them to end. */
static unsigned inflight_of(struct rengine *e, uint64_t agent);

/* Answers the held reads of a removed agent with EIO, as its queued ones. */
static void drop_held(struct rengine *e, uint64_t agent)
{
    struct re_read **pp = &e->held_head;
    e->held_tail = NULL;
    while (*pp) {
        struct re_read *r = *pp;
        if (r->agent != agent) {
            e->held_tail = r;
            pp = &r->next;
            continue;
        }
        *pp = r->next;
        e->n_held--;
        re_read_answer(r, -EIO);
    }
}

/* The next read to put in the ring now, or NULL (then *wait as for
 * sched_next). Held large reads go first, in the order the scheduler gave
 * them out, once the guard admits one; small reads pass them. */
static struct re_read *next_read(struct rengine *e, uint64_t now, uint64_t *wait)
{
    struct re_read *r = e->held_head;
    if (r && rguard_admit(&e->guard, r->size, now)) {
        if (!(e->held_head = r->next))
            e->held_tail = NULL;
        e->n_held--;
        r->next = NULL;
        return r;
    }
    while (e->n_held < HELD_MAX) {
        r = (struct re_read *)sched_next(e->sched, now, wait, NULL);
        if (!r || r->size <= RGUARD_SMALL ||
            (!e->held_head && rguard_admit(&e->guard, r->size, now)))
            return r;
        r->next = NULL;         /* stale from the incoming list */
        if (e->held_tail)
            e->held_tail->next = r;
        else
            e->held_head = r;
        e->held_tail = r;
        e->n_held++;
    }
    return NULL;
}

/* Carries out the queued commands. Engine thread. */
static bool run_commands(struct rengine *e, uint64_t now)
{
    bool stop = false;
    pthread_mutex_lock(&e->mu);
    struct re_cmd *list = e->cmds;
    e->cmds = NULL;
    struct re_read *in = e->in_head;
    e->in_head = e->in_tail = NULL;
    pthread_mutex_unlock(&e->mu);

    for (struct re_read *r = in, *next; r; r = next) {
        next = r->next;
        if (sched_enqueue(e->sched, r->agent, &r->item, now) < 0)
            re_read_answer(r, -EIO);    /* its agent is gone */
    }
    for (struct re_cmd *c = list, *next; c; c = next) {
        next = c->next;
        bool finished = true;
        switch (c->op) {
        case CMD_ADD:
            c->rc = sched_agent_add(e->sched, c->agent, &c->limits);
            break;
        case CMD_SET:
            c->rc = sched_agent_set(e->sched, c->agent, &c->limits);
            break;
        case CMD_STATS:
            c->rc = sched_stats(e->sched, c->agent, &c->stats);
            break;
        case CMD_VOLUME_RATE:
            sched_set_volume_rate(e->sched, c->rate);
            c->rc = 0;
            break;
        case CMD_GUARD:
            rguard_enable(&e->guard, c->on, now);
            c->rc = 0;
            break;
        case CMD_GUARD_STATS:
            rguard_stats(&e->guard, now, &c->guard);
            c->guard.held = e->n_held;
            c->rc = 0;
            break;
        case CMD_STOP:
            stop = true;
            c->rc = 0;
            break;
        case CMD_REMOVE: {
            drop_held(e, c->agent);
            struct sched_item *it = sched_agent_remove(e->sched, c->agent);
            while (it) {
                struct sched_item *n = it->next;
                re_read_answer((struct re_read *)it, -EIO);
                it = n;
            }
            c->rc = 0;
            if (inflight_of(e, c->agent)) {
                c->next = e->removing;      /* done once they complete */
                e->removing = c;
                finished = false;
            }
            break;
        }
        }
        if (finished) {
            pthread_mutex_lock(&e->mu);
            c->done = true;
            pthread_cond_broadcast(&e->cmd_cv);
            pthread_mutex_unlock(&e->mu);
        }
    }
    return stop;
}

/* In-flight reads per agent, for removal: a small list is enough (agents
 * with reads in flight at once are at most max_inflight). */
static unsigned inflight_of(struct rengine *e, uint64_t agent)
{
    for (unsigned i = 0; i < e->n_flights; i++)
        if (e->flights[i].agent == agent)
            return e->flights[i].n;
    return 0;
}

static void flight_add(struct rengine *e, uint64_t agent, int d)
{
    for (unsigned i = 0; i < e->n_flights; i++)
        if (e->flights[i].agent == agent) {
            e->flights[i].n += (unsigned)d;
            if (e->flights[i].n == 0)
                e->flights[i] = e->flights[--e->n_flights];
            return;
        }
    e->flights[e->n_flights++] = (struct flight){ agent, (unsigned)d };
}

/* Finishes removals whose agent has no read in flight any more. */
static void finish_removals(struct rengine *e)
{
    for (struct re_cmd **pp = &e->removing; *pp;) {
        struct re_cmd *c = *pp;
        if (inflight_of(e, c->agent)) {
            pp = &c->next;
            continue;
        }
        *pp = c->next;
        pthread_mutex_lock(&e->mu);
        c->done = true;
        pthread_cond_broadcast(&e->cmd_cv);
        pthread_mutex_unlock(&e->mu);
    }
}

int re_ring_init(struct io_uring *ring, unsigned entries)
{
    struct io_uring_params p = {
        .flags = IORING_SETUP_SINGLE_ISSUER | IORING_SETUP_DEFER_TASKRUN,
    };
    int rc = io_uring_queue_init_params(entries, ring, &p);
    if (rc == -EINVAL) {            /* an older kernel: a plain ring */
        memset(&p, 0, sizeof(p));
        rc = io_uring_queue_init_params(entries, ring, &p);
    }
    return rc;
}

/* Sets the engine's ring up, in the engine thread: its only user. */
static int ring_init(struct rengine *e)
{
    int rc = re_ring_init(&e->ring, e->max_inflight * 2 + 8);
    if (rc < 0)
        return rc;
    /* Blocking reads go to io-wq workers: keep them few. */
    unsigned workers[2] = { 16, 16 };
    io_uring_register_iowq_max_workers(&e->ring, workers);
    return 0;
}

static void trace_sample(struct rengine *e, uint64_t now)
{
    for (unsigned i = 0; i < 8; i++) {
        struct tr *t = &e->tr[i];
        struct sched_stats st;
        if (!t->agent || sched_stats(e->sched, t->agent, &st) < 0)
            continue;
        t->samples++;
        t->depth_sum += st.depth;
        if (st.depth > t->depth_max)
            t->depth_max = st.depth;
        t->fl_sum += inflight_of(e, t->agent);
    }
    if (now - e->trace_last < 100000000u)
        return;
    e->trace_last = now;
    for (unsigned i = 0; i < 8; i++) {
        struct tr *t = &e->tr[i];
        if (!t->agent)
            continue;
        uint64_t c = __atomic_exchange_n(&e->tr_cached[t->agent % 8], 0, __ATOMIC_RELAXED);
        uint64_t cb = __atomic_exchange_n(&e->tr_cached_bytes[t->agent % 8], 0, __ATOMIC_RELAXED);
        fprintf(e->trace, "%.1f a%llu depth_avg %.2f depth_max %llu inflight_avg %.2f sched %llu sched_MiB %.1f cached %llu cached_MiB %.1f tot_inflight %u\n",
                (double)(now - e->trace_t0) / 1e9, (unsigned long long)t->agent,
                t->samples ? (double)t->depth_sum / (double)t->samples : 0.0,
                (unsigned long long)t->depth_max,
                t->samples ? (double)t->fl_sum / (double)t->samples : 0.0,
                (unsigned long long)t->disp, (double)t->dbytes / 1048576.0,
                (unsigned long long)c, (double)cb / 1048576.0, e->inflight);
        t->samples = t->depth_sum = t->depth_max = t->fl_sum = t->disp = t->dbytes = 0;
    }
    fprintf(e->trace, "%.1f guard %s engaged %llu held_ms %llu large_inflight %u held %u ra_off %u\n",
            (double)(now - e->trace_t0) / 1e9, rguard_active(&e->guard, now) ? "on" : "off",
            (unsigned long long)e->guard.engaged,
            (unsigned long long)(e->guard.held_ns / 1000000u), e->guard.large_inflight,
            e->n_held, e->guard.n_ra_off);
    fflush(e->trace);
}

static void trace_dispatch(struct rengine *e, uint64_t agent, uint64_t bytes)
{
    for (unsigned i = 0; i < 8; i++)
        if (e->tr[i].agent == agent || !e->tr[i].agent) {
            e->tr[i].agent = agent;
            e->tr[i].disp++;
            e->tr[i].dbytes += bytes;
            return;
        }
}

void rengine_note_cached(struct rengine *e, uint64_t agent, uint64_t bytes)
{
    if (!e->trace)          /* set at start only: no atomics untraced */
        return;
    __atomic_add_fetch(&e->tr_cached[agent % 8], 1, __ATOMIC_RELAXED);
    __atomic_add_fetch(&e->tr_cached_bytes[agent % 8], bytes, __ATOMIC_RELAXED);
}

static void *engine_main(void *arg)
{
    struct rengine *e = arg;
    bool stop = false;
    int rc = ring_init(e);
    pthread_mutex_lock(&e->mu);
    e->init_rc = rc;
    e->init_done = true;
    pthread_cond_broadcast(&e->cmd_cv);
    pthread_mutex_unlock(&e->mu);
    if (rc < 0)
        return NULL;
    arm_wake(e);
    while (!stop) {
        uint64_t now = re_now_ns(), wait = UINT64_MAX;
        stop = run_commands(e, now);
        uint64_t slow = __atomic_load_n(&e->small_slow_ns, __ATOMIC_RELAXED);
        if (slow != e->small_slow_seen) {
            e->small_slow_seen = slow;
            rguard_extend(&e->guard, slow);
        }
        rguard_tick(&e->guard, now);
        __atomic_store_n(&e->guard_until, e->guard.enabled ? e->guard.until : UINT64_MAX,
                         __ATOMIC_RELAXED);
        /* A short device queue only while it buys something (sched.h);
         * whether it does is asked once, and only past the short bound. */
        int symmetric = -1;
        while (e->inflight < e->max_inflight) {
            if (e->inflight >= INFLIGHT_UNEQUAL) {
                if (symmetric < 0)
                    symmetric = sched_symmetric(e->sched, now);
                if (!symmetric)
                    break;
            }
            struct re_read *r = next_read(e, now, &wait);
            if (!r)
                break;
            r->sub_ns = re_now_ns();
            r->piece = rguard_dispatch(&e->guard, r->fd, (uint64_t)r->off, r->size, r->sub_ns);
            if (!re_read_submit(&e->ring, r)) {
                rguard_undispatch(&e->guard, r->size);
                re_read_answer(r, -EAGAIN);   /* cannot happen: ring > inflight */
                continue;
            }
            e->inflight++;
            flight_add(e, r->agent, 1);
            if (e->trace)
                trace_dispatch(e, r->agent, r->size);
        }
        if (e->trace)
            trace_sample(e, now);
        /* Sleep until a completion, a wake, or the scheduler's next slot. */
        struct __kernel_timespec ts = { .tv_sec = 1 };
        if (e->trace && wait > 10000000u)
            wait = 10000000u;
        if (wait < 1000000000u) {
            ts.tv_sec = 0;
            ts.tv_nsec = (long long)(wait ? wait : 1);
        }
        struct io_uring_cqe *cqe;
        int rc = io_uring_submit_and_wait_timeout(&e->ring, &cqe, 1, &ts, NULL);
        if (rc < 0 && rc != -ETIME && rc != -EINTR)
            log_say("read engine: io_uring wait: %s", strerror(-rc));
        unsigned head, n = 0;
        io_uring_for_each_cqe(&e->ring, head, cqe) {
            n++;
            if (cqe->user_data == TAG_WAKE) {
                arm_wake(e);
                continue;
            }
            struct re_read *r = io_uring_cqe_get_data(cqe);
            if (!re_read_progress(&e->ring, r, cqe->res)) {
                if (r->piece)
                    rguard_next_piece(&e->guard);
                continue;
            }
            uint64_t t = re_now_ns();
            e->inflight--;
            flight_add(e, r->agent, -1);
            rguard_undispatch(&e->guard, r->size);
            rguard_read_done(&e->guard, r->size, t - r->sub_ns, t);
            sched_done(e->sched, r->agent, t);
            /* While the guard holds, small reads wait for CPUs as much as
             * for the device: the streams' copies then stay on this one
             * thread, leaving the other CPUs to the small reads' wake-ups. */
            int res = re_read_result(r, cqe->res);
            if (res <= 0 || r->pipe[0] < 0 || rguard_active(&e->guard, t) ||
                rreply_push(e->replies, r, res) < 0)
                re_read_answer(r, res);
        }
        io_uring_cq_advance(&e->ring, n);
        if (e->removing)
            finish_removals(e);
    }
    io_uring_queue_exit(&e->ring);
    return NULL;
}

int rengine_start(struct rengine **out, unsigned max_inflight)
{
    struct rengine *e = calloc(1, sizeof(*e));
    if (!e)
        return -ENOMEM;
    e->max_inflight = max_inflight ? max_inflight : 32;
    e->flights = calloc(e->max_inflight + 1, sizeof(*e->flights));
    e->sched = sched_new(0);
    const char *sp = getenv("LANEFS_READ_SPLICE");
    bool splice = !(sp && !strcmp(sp, "off"));
    e->pipes = splice ? rpipe_pool_new(PIPES_KEPT) : NULL;
    rguard_init(&e->guard);
    if (e->sched) {
        uint64_t lag = PACE_LAG, idle = PACE_IDLE_NS;
        const char *v;
        if ((v = getenv("LANEFS_PACE_LAG")))
            lag = strtoull(v, NULL, 0);
        if ((v = getenv("LANEFS_PACE_IDLE_US")))
            idle = strtoull(v, NULL, 0) * 1000;
        sched_set_pacing(e->sched, lag, idle);
    }
    e->efd = eventfd(0, EFD_CLOEXEC);
    int rc = (!e->flights || !e->sched || (splice && !e->pipes)) ? -ENOMEM :
             e->efd < 0 ? -errno : 0;
    if (rc == 0 && e->pipes) {
        long cpus = sysconf(_SC_NPROCESSORS_ONLN);
        unsigned n = cpus < 1 ? 1u : (unsigned)cpus;
        rc = rreply_start(&e->replies, n < REPLY_THREADS_MAX ? n : REPLY_THREADS_MAX,
                          answer_spliced);
    }
    if (rc < 0)
        goto fail;
    const char *tp = getenv("LANEFS_RENGINE_TRACE");
    if (tp && (e->trace = fopen(tp, "w")))
        e->trace_t0 = e->trace_last = re_now_ns();
    pthread_mutex_init(&e->mu, NULL);
    pthread_cond_init(&e->cmd_cv, NULL);
    rc = -pthread_create(&e->thread, NULL, engine_main, e);
    if (rc < 0)
        goto fail;
    pthread_mutex_lock(&e->mu);
    while (!e->init_done)
        pthread_cond_wait(&e->cmd_cv, &e->mu);
    rc = e->init_rc;
    pthread_mutex_unlock(&e->mu);
    if (rc < 0) {
        pthread_join(e->thread, NULL);
        goto fail;
    }
    *out = e;
    return 0;
fail:
    rreply_stop(e->replies);
    if (e->efd >= 0)
        close(e->efd);
    sched_free(e->sched);
    rpipe_pool_free(e->pipes);
    free(e->flights);
    free(e);
    return rc;
}

/* Queues a command and waits for the engine thread to carry it out. */
static int command(struct rengine *e, struct re_cmd *c)
{
    pthread_mutex_lock(&e->mu);
    c->next = e->cmds;
    e->cmds = c;
    pthread_mutex_unlock(&e->mu);
    wake(e);
    pthread_mutex_lock(&e->mu);
    while (!c->done)
        pthread_cond_wait(&e->cmd_cv, &e->mu);
    pthread_mutex_unlock(&e->mu);
    return c->rc;
}

unsigned rengine_threads(const struct rengine *e)
{
    return 1 + rreply_threads(e->replies);
}

void rengine_stop(struct rengine *e)
{
    if (!e)
        return;
    struct re_cmd c = { .op = CMD_STOP };
    command(e, &c);
    pthread_join(e->thread, NULL);   /* it closes its ring */
    rreply_stop(e->replies);         /* answers what it still holds */
    close(e->efd);
    sched_free(e->sched);
    rpipe_pool_free(e->pipes);
    free(e->flights);
    pthread_mutex_destroy(&e->mu);
    pthread_cond_destroy(&e->cmd_cv);
    free(e);
}

int rengine_agent_add(struct rengine *e, uint64_t agent, const struct sched_limits *l)
{
    struct re_cmd c = { .op = CMD_ADD, .agent = agent, .limits = *l };
    return command(e, &c);
}

int rengine_agent_set(struct rengine *e, uint64_t agent, const struct sched_limits *l)
{
    struct re_cmd c = { .op = CMD_SET, .agent = agent, .limits = *l };
    return command(e, &c);
}

void rengine_agent_remove(struct rengine *e, uint64_t agent)
{
    struct re_cmd c = { .op = CMD_REMOVE, .agent = agent };
    command(e, &c);
}

void rengine_set_volume_rate(struct rengine *e, uint64_t rate_bps)
{
    struct re_cmd c = { .op = CMD_VOLUME_RATE, .rate = rate_bps };
    __atomic_store_n(&e->volume_capped, rate_bps != 0, __ATOMIC_RELAXED);
    command(e, &c);
}

void rengine_set_guard(struct rengine *e, bool on)
{
    struct re_cmd c = { .op = CMD_GUARD, .on = on };
    command(e, &c);
}

void rengine_guard_stats(struct rengine *e, struct rguard_stats *out)
{
    struct re_cmd c = { .op = CMD_GUARD_STATS };
    command(e, &c);
    *out = c.guard;
}

int rengine_agent_stats(struct rengine *e, uint64_t agent, struct sched_stats *out)
{
    struct re_cmd c = { .op = CMD_STATS, .agent = agent };
    int rc = command(e, &c);
    if (rc == 0)
        *out = c.stats;
    return rc;
}

/* Notes a read of agent; true while several agents read at once: reads
 * of two agents SHARED_GAP_NS apart make the volume shared for
 * SHARED_HOLD_NS. Any thread. */
static bool note_sharing(struct rengine *e, uint64_t agent)
{
    uint64_t now = re_now_ns();
    uint64_t la = __atomic_load_n(&e->last_agent, __ATOMIC_RELAXED);
    uint64_t ln = __atomic_load_n(&e->last_ns, __ATOMIC_RELAXED);
    if (la != agent) {
        if (now - ln < SHARED_GAP_NS)
            __atomic_store_n(&e->shared_until, now + SHARED_HOLD_NS, __ATOMIC_RELAXED);
        __atomic_store_n(&e->last_agent, agent, __ATOMIC_RELAXED);
    }
    __atomic_store_n(&e->last_ns, now, __ATOMIC_RELAXED);
    return now < __atomic_load_n(&e->shared_until, __ATOMIC_RELAXED);
}

enum re_route rengine_route(struct rengine *e, uint64_t agent, bool unlimited,
                            size_t size, uint64_t busy)
{
    bool shared = note_sharing(e, agent);     /* noted on every read */
    /* Under a volume cap even a lone agent's cached reads count against
     * it, so they are scheduled too. */
    if (!unlimited || __atomic_load_n(&e->volume_capped, __ATOMIC_RELAXED))
        return RE_ROUTE_ENGINE;
    if (!shared)
        return RE_ROUTE_HERE;
    return size <= RGUARD_SMALL && busy < LIGHT_UNANSWERED ? RE_ROUTE_HERE_SMALL
                                                           : RE_ROUTE_ENGINE;
}

void re_small_done(struct rengine *e, const struct re_read *r)
{
    uint64_t now = re_now_ns();
    if (now - r->sub_ns <= e->guard.device_ns)
        return;                     /* from the page cache */
    __atomic_store_n(&e->small_slow_ns, now, __ATOMIC_RELAXED);
    /* The engine thread takes it in its next round; it is woken for it only
     * when the guard would otherwise let go soon, so a steady light reader
     * costs it a wake every half hold, not one per read. */
    if (now + e->guard.hold_ns / 2 > __atomic_load_n(&e->guard_until, __ATOMIC_RELAXED))
        wake(e);
}

int rengine_read(struct rengine *e, uint64_t agent, fuse_req_t req, int fd,
                 off_t off, size_t size, struct re_count *mine)
{
    struct re_read *r = re_read_new(e, req, agent, fd, off, size, mine, true);
    if (!r)
        return -ENOMEM;
    r->offload = size >= OFFLOAD_MIN;
    pthread_mutex_lock(&e->mu);
    if (e->in_tail)
        e->in_tail->next = r;
    else
        e->in_head = r;
    e->in_tail = r;
    pthread_mutex_unlock(&e->mu);
    wake(e);
    return 0;
}
