/* rguard.h - the read engine's latency guard.
 *
 * A light reader (small reads now and then) next to a stream of large
 * reads waits for the bytes queued at the device ahead of its read. The
 * scheduler orders reads, but once a read is in the device queue nothing
 * overtakes it, and the kernel's readahead of a streamed layer file puts
 * megabytes there on its own. So while small reads are going to the
 * device, the guard keeps the large reads' share of the device queue
 * small: at most large_max large reads at once, each read piece_bytes at
 * a time, with the kernel's readahead off on their descriptors. Small
 * reads are not held.
 *
 * Readahead off (POSIX_FADV_RANDOM) stops new readahead, but not a chain
 * already running: the kernel reads the next window ahead whenever a read
 * reaches the marker page of the last one, whatever the descriptor's
 * advice. So the first RGUARD_DROPS large reads of a descriptor after the
 * guard starts drop the unread pages in RGUARD_AHEAD bytes past them
 * (POSIX_FADV_DONTNEED), markers included. Without it, streams that were
 * running when the guard started kept 1-2.7 MiB device requests for
 * about a second, which was the light readers' p99. When no small read
 * has gone to the device for hold_ns, the guard lets go and readahead
 * comes back.
 *
 * A small read is one of at most RGUARD_SMALL bytes; it went to the
 * device when it took longer than RGUARD_DEVICE_NS from submission to
 * completion (one answered from the page cache takes microseconds).
 *
 * The price is the streams' throughput while the guard holds; docs/
 * readengine.md gives the figures. Single-threaded: the engine thread owns
 * it. Times are caller-supplied monotonic nanoseconds. */
#ifndef LANEFS_RGUARD_H
#define LANEFS_RGUARD_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define RGUARD_SMALL      (64u * 1024)
#define RGUARD_DEVICE_NS  100000u        /* 100 us */
#define RGUARD_HOLD_NS    200000000u     /* 200 ms */
#define RGUARD_PIECE      (128u * 1024)
#define RGUARD_LARGE_MAX  1u
#define RGUARD_FDS        64u            /* descriptors with readahead off */
#define RGUARD_DROPS      4u             /* reads of each that clear ahead */
#define RGUARD_AHEAD      (32u << 20)    /* bytes ahead cleared of readahead */

struct rguard {
    bool enabled;
    uint64_t device_ns;           /* RGUARD_DEVICE_NS */
    uint64_t hold_ns;
    size_t piece_bytes;
    unsigned large_max;
    uint64_t until;               /* guarding while now < until */
    unsigned large_inflight;      /* large reads in the device queue */
    struct { int fd; unsigned drops; } ra_off[RGUARD_FDS];   /* set to POSIX_FADV_RANDOM */
    unsigned n_ra_off;
    uint64_t engaged;             /* times the guard started */
    uint64_t pieced;              /* large reads read in pieces */
    uint64_t pieces;              /* device requests they took */
    uint64_t held_ns;             /* time guarded, up to the last let-go */
    uint64_t since;               /* start of the current guarding */
    bool guarding;                /* since is set; tick has not let go */
};

/* Enabled, with the defaults, then the environment (for measurements and
 * tests): LANEFS_GUARD_PIECE_KB, LANEFS_GUARD_LARGE, LANEFS_GUARD_HOLD_MS
 * and LANEFS_GUARD_DEVICE_US override piece_bytes, large_max, hold_ns and
 * device_ns. */
void rguard_init(struct rguard *g);

/* Turns the guard on or off at now; off lets go at the next rguard_tick. */
void rguard_enable(struct rguard *g, bool on, uint64_t now);

struct rguard_stats {
    bool enabled, active;
    uint64_t engaged;             /* times it started */
    uint64_t held_ns;             /* time it held, the current hold so far included */
    uint64_t pieced;              /* large reads read in pieces */
    uint64_t pieces;              /* device requests they took */
    uint32_t held;                /* large reads waiting for it now (the caller's) */
};
/* The guard's counters; held is left 0 (the caller keeps that list). */
void rguard_stats(const struct rguard *g, uint64_t now, struct rguard_stats *out);

/* Whether the guard holds at now. */
bool rguard_active(const struct rguard *g, uint64_t now);

/* A read of size bytes took took_ns from submission and ended at now: a
 * small one slower than device_ns went to the device, and starts or
 * extends the guard (when enabled). */
void rguard_read_done(struct rguard *g, size_t size, uint64_t took_ns, uint64_t now);
/* A small read went to the device at now (one the engine did not time:
 * a worker's ring's): starts or extends the guard (when enabled). */
void rguard_extend(struct rguard *g, uint64_t now);

/* Whether a read of size bytes may go into the device queue now. Small
 * reads always may; a large one when the guard does not hold or fewer
 * than large_max large reads are in it. */
bool rguard_admit(const struct rguard *g, size_t size, uint64_t now);

/* A read of size bytes at off from fd goes into the device queue at now:
 * counts it and, while the guard holds, turns the kernel's readahead off on
 * fd for a large one. The bytes to ask of the device at a time: piece_bytes
 * for a large read while guarding, 0 (all at once) otherwise. */
size_t rguard_dispatch(struct rguard *g, int fd, uint64_t off, size_t size, uint64_t now);

/* The next piece of a read in pieces went into the device queue. */
void rguard_next_piece(struct rguard *g);

/* A read of size bytes dispatched with rguard_dispatch has left the queue. */
void rguard_undispatch(struct rguard *g, size_t size);

/* Lets go once the hold has passed: readahead back on every descriptor
 * the guard turned it off on. Call once per engine round. */
void rguard_tick(struct rguard *g, uint64_t now);

#endif
