/* rreply.h - threads that answer the read engine's large reads.
 *
 * The answer to a spliced read (fuse_reply_data from its pipe) is where
 * the kernel copies the data into the reader's page cache: about a
 * millisecond of CPU per MiB, more when those pages are fresh memory. Done
 * by the engine thread, every stream's copies ran on one CPU, one after
 * another, and with 8 agents streaming that thread was what the volume's
 * throughput waited for (busy 85% of a run that got 489 MB/s, 40% of runs
 * that got 1.35-1.43 GB/s; docs/readengine.md). The engine thread hands
 * such answers to these threads instead and goes back to its ring, except
 * while the latency guard holds (rguard.h): then the streams' copies stay
 * on the engine thread, and the other CPUs are free for small reads.
 *
 * Items are answered in the order they were pushed, each exactly once, by
 * whichever thread is free; rreply_stop answers what is still queued
 * before it returns. Thread-safe. */
#ifndef LANEFS_RREPLY_H
#define LANEFS_RREPLY_H

struct rreply;

/* Answers item with res; called on one of the pool's threads. */
typedef void rreply_fn(void *item, int res);

/* Starts nthreads threads (at least 1) that answer pushed items with
 * answer. 0, or -errno (nothing is left running). */
int rreply_start(struct rreply **out, unsigned nthreads, rreply_fn *answer);

/* Queues item to be answered with res. 0, or -ENOMEM (not queued: the
 * caller answers it itself). */
int rreply_push(struct rreply *p, void *item, int res);

/* Threads p runs; 0 for NULL. */
unsigned rreply_threads(const struct rreply *p);

/* Answers every item still queued, stops the threads and frees p. NULL is
 * a no-op. No push may race with it. */
void rreply_stop(struct rreply *p);

#endif
