/* Read scheduler: weighted fair sharing of the shared volume among agents,
 * with per-agent limits and reservations and a volume-wide cap.
 *
 * Deficit round robin over the backlogged agents (quantum = weight * 1024
 * bytes) decides the order; token buckets (a burst of one second of the
 * limit) hold the limits. An agent whose reservation bucket has credit is
 * served before the round robin. See docs/readengine.md.
 *
 * Pure and single-threaded: the read engine's thread owns it. It never
 * reads a clock; every time is a caller-supplied monotonic uint64_t in
 * nanoseconds. It allocates only in sched_new and sched_agent_add.
 */
#ifndef LANEFS_SCHED_H
#define LANEFS_SCHED_H

#include <stdint.h>

#define SCHED_WEIGHT_DEFAULT 100
#define SCHED_WEIGHT_MAX     10000

struct sched_item {            /* embedded in the caller's request */
    uint64_t bytes;            /* size of the read */
    uint64_t enq_ns;           /* set by sched_enqueue */
    struct sched_item *next;   /* the scheduler's */
};

struct sched_limits {
    uint32_t weight;           /* 1..10000; 0 means the default 100 */
    uint64_t rate_bps;         /* bytes/s limit, 0: none */
    uint64_t iops;             /* reads/s limit, 0: none */
    uint64_t reserve_bps;      /* bytes/s reservation, 0: none; not above rate_bps */
};

struct sched_stats {
    uint64_t bytes, reads;     /* dispatched */
    uint64_t queued_ns;        /* total time items waited in the queue */
    uint32_t depth;            /* items queued now */
};

struct sched;

/* NULL when out of memory. */
struct sched *sched_new(uint64_t volume_rate_bps);          /* 0: no cap */
void sched_free(struct sched *s);                          /* items still queued are not touched */
/* Takes effect at once (the time is the latest the scheduler was given). */
void sched_set_volume_rate(struct sched *s, uint64_t volume_rate_bps);

/* Agents are small integers (the daemon's session numbers). A NULL l means
 * all defaults. -EINVAL: weight above 10000, or a reservation above the
 * agent's own rate limit. */
int  sched_agent_add(struct sched *s, uint64_t agent, const struct sched_limits *l);   /* 0, -EEXIST, -ENOMEM, -EINVAL */
/* Live change; the agent keeps its queue and its place in the round. */
int  sched_agent_set(struct sched *s, uint64_t agent, const struct sched_limits *l);   /* 0, -ENOENT, -EINVAL */
/* Removes the agent; its queued items are returned as a list, in queue
 * order (caller answers them). NULL if it had none or does not exist. */
struct sched_item *sched_agent_remove(struct sched *s, uint64_t agent);

int  sched_enqueue(struct sched *s, uint64_t agent, struct sched_item *it, uint64_t now_ns); /* 0, -ENOENT */

/* The next item to dispatch now, or NULL; then *wait_ns is how long until
 * some backlogged agent's buckets allow one (UINT64_MAX: nothing queued).
 * When an item is returned *wait_ns is 0 and *agent_out its agent. Both
 * out pointers may be NULL. */
struct sched_item *sched_next(struct sched *s, uint64_t now_ns, uint64_t *wait_ns, uint64_t *agent_out);

int  sched_stats(struct sched *s, uint64_t agent, struct sched_stats *out); /* 0, -ENOENT */

/* Validates a human size: "50M", "1.5G", "4096", "10K" (K/M/G/T binary,
 * either case, optional trailing "B"; a fraction needs a unit and rounds
 * down to whole bytes); -EINVAL for anything else (negative, empty, "12Q",
 * "1.5.2", "1.5", spaces, overflow). *out is untouched on error. */
int  sched_parse_size(const char *s, uint64_t *out);

#endif
