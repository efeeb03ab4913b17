/* rengine.h - the read engine: reads of shared data (lower and shared
 * layer) of every agent, queued per agent, ordered by the scheduler
 * (fs/sched.h) and done through io_uring by one engine thread, so no worker
 * thread waits for a shared-data read and one heavy agent cannot starve the
 * others (docs/readengine.md). */
#ifndef LANEFS_RENGINE_H
#define LANEFS_RENGINE_H

#include <fuse_lowlevel.h>
#include <stdbool.h>
#include <stdint.h>

#include "fs/rguard.h"
#include "fs/sched.h"

struct rengine;

/* Starts the engine thread with its ring (at most max_inflight reads in
 * the device queue). Call with signals already blocked. 0 or -errno. */
int  rengine_start(struct rengine **out, unsigned max_inflight);
/* Threads the engine runs: its own and its answer threads (rreply.h). */
unsigned rengine_threads(const struct rengine *e);
/* Stops the thread; every agent must have been removed. */
void rengine_stop(struct rengine *e);

/* Registers agent (a session number) with its shaping. 0 or -errno. */
int  rengine_agent_add(struct rengine *e, uint64_t agent, const struct sched_limits *l);
/* Changes an agent's shaping live. 0, -ENOENT or -EINVAL. */
int  rengine_agent_set(struct rengine *e, uint64_t agent, const struct sched_limits *l);
/* Unregisters agent: its queued reads are answered with EIO, and the call
 * returns once none of its reads is in flight (so its FUSE session can go). */
void rengine_agent_remove(struct rengine *e, uint64_t agent);
/* Caps the reads of all agents together at rate_bps bytes/s (0: no cap),
 * at once. */
void rengine_set_volume_rate(struct rengine *e, uint64_t rate_bps);
/* Turns the latency guard (fs/rguard.h) on or off, at once. */
void rengine_set_guard(struct rengine *e, bool on);
/* The latency guard's state and counters. */
void rengine_guard_stats(struct rengine *e, struct rguard_stats *out);
/* The agent's counters (dispatched bytes and reads, time queued, depth). */
int  rengine_agent_stats(struct rengine *e, uint64_t agent, struct sched_stats *out);

/* An agent's reads in the engine or on workers' rings. Both counts go up
 * when a read is queued; unanswered goes down just before its reply (what
 * rengine_route asks: the agent's next read may arrive before the replying
 * thread goes on), live just after (what a session's end waits for: no
 * reply may go to a destroyed session). The spliced counts are the reads
 * answered from a pipe (fs/rpipe.h) and their bytes. Atomics. */
struct re_count {
    uint64_t unanswered;
    uint64_t live;
    uint64_t spliced_reads, spliced_bytes;
};

/* Queues a read of size bytes at off from fd for req of agent; the engine
 * replies to req. The read is counted in *mine until answered. 0, or
 * -errno (the caller replies). */
int  rengine_read(struct rengine *e, uint64_t agent, fuse_req_t req, int fd,
                  off_t off, size_t size, struct re_count *mine);
enum re_route {
    RE_ROUTE_ENGINE,        /* scheduled: rengine_read */
    RE_ROUTE_HERE,          /* the agent reads alone: rengine_read_here */
    RE_ROUTE_HERE_SMALL,    /* a light read next to other agents': the same,
                             * timed for the latency guard */
};
/* Notes a read of size bytes of agent (reads of two agents within 10 ms
 * make the volume shared for the next 100 ms) and says where it goes.
 * unlimited: the agent has no rate or IOPS limit; busy: its reads
 * unanswered in the engine or on workers' rings now. Without a limit or a
 * volume cap, a lone agent's reads, and a small read (at most
 * RGUARD_SMALL) of an agent with few unanswered (a light reader), need no
 * scheduling: the scheduler would let them through at once. Everything
 * else is scheduled, cached or not. Any thread. */
enum re_route rengine_route(struct rengine *e, uint64_t agent, bool unlimited,
                            size_t size, uint64_t busy);
/* Counts a read of agent answered from the page cache, for the trace
 * (LANEFS_RENGINE_TRACE); nothing without one. */
void rengine_note_cached(struct rengine *e, uint64_t agent, uint64_t bytes);

/* A worker's own ring (fs/rlocal.c), for reads that need no scheduling. */
struct epoll_event;
struct rlocal;
/* Sets up the calling worker's ring. 0 or -errno (the worker then does
 * without one: its reads go to the engine). */
int  rlocal_start(struct rengine *e, struct rlocal **out);
/* Answers the reads still on the ring, then closes it. NULL is a no-op. */
void rlocal_stop(struct rlocal *l);
/* Like epoll_wait(epfd, ev, 1, -1), but meanwhile answers the completed
 * reads of the ring. 1 with *ev, 0 (nothing to do yet: call again), or
 * -errno. l may be NULL. */
int  rlocal_wait(struct rlocal *l, int epfd, struct epoll_event *ev);
/* Submits the read (as rengine_read) to the calling worker's own ring: for
 * a read the scheduler would let through at once (rengine_route). The ring
 * tries it at once; what the page cache holds is answered before the call
 * returns (1), anything else from the worker's rlocal_wait (0). timed: one
 * that went to the device starts or extends the latency guard. -EAGAIN
 * when the worker has no ring or it is full; -ENOMEM. */
int  rengine_read_here(struct rengine *e, uint64_t agent, fuse_req_t req, int fd,
                       off_t off, size_t size, struct re_count *mine, bool timed);

#endif
