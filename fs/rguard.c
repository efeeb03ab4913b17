/* rguard.c - the read engine's latency guard (see rguard.h). */
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>

#include "fs/rguard.h"

static uint64_t env_u64(const char *name, uint64_t dflt, uint64_t scale)
{
    const char *v = getenv(name);
    if (!v || !*v)
        return dflt;
    char *end;
    errno = 0;
    unsigned long long n = strtoull(v, &end, 10);
    if (*end || errno || v[0] == '-' || n > UINT64_MAX / scale)
        return dflt;
    return (uint64_t)n * scale;
}

void rguard_init(struct rguard *g)
{
    memset(g, 0, sizeof(*g));
    g->enabled = true;
    g->device_ns = env_u64("LANEFS_GUARD_DEVICE_US", RGUARD_DEVICE_NS, 1000u);
    g->hold_ns = env_u64("LANEFS_GUARD_HOLD_MS", RGUARD_HOLD_NS, 1000000u);
    g->piece_bytes = (size_t)env_u64("LANEFS_GUARD_PIECE_KB", RGUARD_PIECE, 1024u);
    g->large_max = (unsigned)env_u64("LANEFS_GUARD_LARGE", RGUARD_LARGE_MAX, 1u);
    if (!g->large_max)
        g->large_max = 1;
    if (g->piece_bytes < 4096)
        g->piece_bytes = 4096;
}

void rguard_enable(struct rguard *g, bool on, uint64_t now)
{
    g->enabled = on;
    if (!on && rguard_active(g, now))
        g->until = now;         /* ends the hold: tick lets go */
}

void rguard_stats(const struct rguard *g, uint64_t now, struct rguard_stats *out)
{
    out->enabled = g->enabled;
    out->active = rguard_active(g, now);
    out->engaged = g->engaged;
    out->pieced = g->pieced;
    out->pieces = g->pieces;
    out->held = 0;
    out->held_ns = g->held_ns;
    if (g->guarding)
        out->held_ns += (out->active ? now : g->until) - g->since;
}

bool rguard_active(const struct rguard *g, uint64_t now)
{
    return now < g->until;
}

void rguard_read_done(struct rguard *g, size_t size, uint64_t took_ns, uint64_t now)
{
    if (size <= RGUARD_SMALL && took_ns > g->device_ns)
        rguard_extend(g, now);
}

void rguard_extend(struct rguard *g, uint64_t now)
{
    if (!g->enabled)
        return;
    if (g->guarding && !rguard_active(g, now)) {
        /* The hold ended before a tick let go: that hold is over, and this
         * read starts a new one (the descriptors stay without readahead). */
        g->held_ns += g->until - g->since;
        g->guarding = false;
    }
    if (!g->guarding) {
        g->engaged++;
        g->since = now;
        g->guarding = true;
    }
    if (now + g->hold_ns > g->until)    /* a late report never shortens it */
        g->until = now + g->hold_ns;
}

bool rguard_admit(const struct rguard *g, size_t size, uint64_t now)
{
    return size <= RGUARD_SMALL || !rguard_active(g, now) ||
           g->large_inflight < g->large_max;
}

/* Readahead off on fd, on every large read while guarding: a number in
 * the list may have been closed and reused for the next file a stream
 * opened, which starts with readahead on. The list is what to set back;
 * with it full, a descriptor stays without readahead until it is closed.
 * A descriptor new to the list gets its running readahead chain cut (see
 * rguard.h) on its first RGUARD_DROPS reads. */
static void readahead_off(struct rguard *g, int fd, uint64_t end)
{
    if (posix_fadvise(fd, 0, 0, POSIX_FADV_RANDOM) != 0)
        return;
    unsigned i = 0;
    while (i < g->n_ra_off && g->ra_off[i].fd != fd)
        i++;
    if (i == g->n_ra_off) {
        if (i == RGUARD_FDS)
            return;
        g->ra_off[g->n_ra_off].fd = fd;
        g->ra_off[g->n_ra_off++].drops = RGUARD_DROPS;
    }
    if (g->ra_off[i].drops) {
        g->ra_off[i].drops--;
        posix_fadvise(fd, (off_t)end, RGUARD_AHEAD, POSIX_FADV_DONTNEED);
    }
}

size_t rguard_dispatch(struct rguard *g, int fd, uint64_t off, size_t size, uint64_t now)
{
    if (size <= RGUARD_SMALL)
        return 0;
    g->large_inflight++;
    if (!rguard_active(g, now))
        return 0;
    readahead_off(g, fd, off + size);
    g->pieced++;
    g->pieces++;
    return g->piece_bytes;
}

void rguard_next_piece(struct rguard *g)
{
    g->pieces++;
}

void rguard_undispatch(struct rguard *g, size_t size)
{
    if (size > RGUARD_SMALL && g->large_inflight)
        g->large_inflight--;
}

void rguard_tick(struct rguard *g, uint64_t now)
{
    if (!g->guarding || rguard_active(g, now))
        return;
    /* A descriptor closed since has had its readahead state go with it;
     * one reused by another file gets the default back, which it had. */
    for (unsigned i = 0; i < g->n_ra_off; i++)
        posix_fadvise(g->ra_off[i].fd, 0, 0, POSIX_FADV_NORMAL);
    g->n_ra_off = 0;
    g->held_ns += g->until - g->since;
    g->guarding = false;
}
