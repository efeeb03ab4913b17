/* prefetch.h - warming the lower's metadata ahead of a tree walk.
 *
 * A walk over a cold lower tree (find, du, ls -lR) is a chain: the kernel
 * asks for one directory's entries with their attributes, the daemon looks
 * each entry up in the lower one after the other, and only then does the
 * walker ask for the next directory. The ext4 lookups of cold entries are
 * most of the daemon's work there. When a listing with attributes names
 * subdirectories of the lower, a thread of the volume looks their entries
 * up in the background, so that by the time the walker gets to them the
 * lookups hit the kernel's caches, and the two cores work at once.
 *
 * Only the lower (read-only shared data) is warmed, and only its metadata.
 * Every first listing of a directory is one with attributes (the kernel's
 * adaptive readdirplus), so a plain `ls` of a directory of a thousand
 * subdirectories asks for all of them: the thread stays at most
 * PREFETCH_AHEAD directories ahead of what walkers have listed since, and
 * a request nobody followed within PREFETCH_FOLLOW_S is dropped. So an
 * `ls` costs at most PREFETCH_AHEAD directories' lookups in the
 * background, and a walk keeps the thread going. A directory warmed or
 * listed in the last PREFETCH_RECENT_S seconds is skipped, so agents
 * walking the same tree warm it once. */
#ifndef LANEFS_PREFETCH_H
#define LANEFS_PREFETCH_H

#include <stdint.h>

#define PREFETCH_QUEUE      1024u   /* directories waiting; the oldest go */
#define PREFETCH_MAX_ENTRIES 4096u  /* entries looked up per directory */
#define PREFETCH_RECENT_S   30u     /* a directory is warmed once in this time */
#define PREFETCH_AHEAD      32u     /* directories warmed but not yet listed */
#define PREFETCH_FOLLOW_S   5u      /* a walker lists what was warmed by then */

struct prefetch;

struct prefetch_stats {
    uint64_t queued;          /* directories asked for */
    uint64_t dirs;            /* directories warmed */
    uint64_t entries;         /* entries looked up */
    uint64_t followed;        /* warmed directories a walker then listed */
    uint64_t skipped;         /* recent, missing, or nobody followed in time */
    uint64_t dropped;         /* pushed out of a full queue */
};

/* Starts the warming thread over the directory lower_fd (not taken over:
 * the caller keeps it open until prefetch_stop). 0 or -errno. */
int  prefetch_start(struct prefetch **out, int lower_fd);

/* Asks for directory rel of the lower (relative to its root) to be warmed.
 * Never blocks on the device: it only queues. The directory asked for last
 * is warmed first, so a walker's next directories come before older
 * requests; callers listing several ask in reverse listing order. NULL p:
 * nothing. */
void prefetch_dir(struct prefetch *p, const char *rel);

/* Tells the thread that directory rel (relative to the view's root, as
 * for prefetch_dir) is being listed with attributes: a walker got there,
 * so the thread may go one further; and rel need not be warmed, since the
 * listing's own lookups warm it. NULL p: nothing. */
void prefetch_listed(struct prefetch *p, const char *rel);

/* Counts so far. */
void prefetch_get_stats(struct prefetch *p, struct prefetch_stats *out);

/* Stops the thread (a directory being warmed is left off at its next
 * entry) and frees everything queued. NULL p: nothing. */
void prefetch_stop(struct prefetch *p);

#endif
