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

#include <stdbool.h>
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

/* Pacing of agents that are served faster than their weight, for a caller
 * whose agents are closed loops (a reader waits for its read before it asks
 * again), so that they are seldom all queued at once and DRR alone has
 * nothing to arbitrate. Off until set; lag_bytes 0 turns it off again.
 *
 * With pacing on, the caller reports every dispatched read's end with
 * sched_done. An agent *contends* while it has reads queued or in flight,
 * and for idle_ns after its last read ended (the time a streaming reader
 * takes to ask again). Each agent's service is counted in bytes / weight;
 * an agent more than lag_bytes (at weight 100; scaled by weight) ahead of
 * the contending agent furthest behind waits, even with the device free,
 * until that agent catches up or stops contending. An agent held by its
 * own limits does not hold others back. One that starts contending after
 * idling joins level with the others: idle time banks no credit. */
void sched_set_pacing(struct sched *s, uint64_t lag_bytes, uint64_t idle_ns);
/* A dispatched read of agent ended (with pacing on; a no-op otherwise). */
void sched_done(struct sched *s, uint64_t agent, uint64_t now_ns);

/* Whether the agents reading now are alike, so the order of their reads
 * cannot change who gets what: with pacing on, every agent that has a read
 * queued or in flight, or ended one in the last SCHED_RECENT_NS, is a
 * stream (had two reads outstanding in that time) of one common weight with
 * no limit and no reservation, and there is no volume cap. A light reader
 * (one read at a time) or different weights make it false. The caller may
 * then let more reads into the device: a short device queue buys latency
 * for light readers and weight for unequal streams, and otherwise only
 * costs throughput. False with pacing off (nothing is tracked). */
#define SCHED_RECENT_NS 1000000000ULL
bool sched_symmetric(struct sched *s, uint64_t now_ns);

#endif
