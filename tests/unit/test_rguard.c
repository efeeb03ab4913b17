/* Unit tests for fs/rguard.c, the read engine's latency guard, on a
 * simulated clock (plain nanosecond counts): what starts and extends the
 * hold, what never does, admission of large reads while it holds, the
 * piece size dispatch asks for, the statistics, and the environment
 * overrides. One test uses a real file on a real filesystem (under the
 * working directory, not tmpfs, whose pages POSIX_FADV_DONTNEED cannot
 * drop) to check, with mincore, that the first RGUARD_DROPS guarded large
 * reads of a descriptor drop the cached pages ahead of them and later ones
 * do not, until the guard lets go; a canary file the guard never sees tells
 * when something else emptied the page cache meanwhile (the integration
 * tests drop caches), and the test is skipped then. The descriptor the
 * pure tests pass is -1: posix_fadvise fails on it, which leaves only the
 * counting. */
#include <criterion/criterion.h>

#include <fcntl.h>
#include <limits.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/vfs.h>
#include <unistd.h>

#include "fs/rguard.h"

#define US   1000ULL
#define MS   1000000ULL
#define SEC  1000000000ULL
#define KiB  1024ULL
#define MiB  (1024ULL * 1024)

#define LARGE  ((size_t)RGUARD_SMALL + 1)   /* the smallest large read */
#define SLOW   ((uint64_t)RGUARD_DEVICE_NS + 1)
#define T0     (10 * SEC)                   /* an arbitrary start of the clock */

#define llu(x) ((unsigned long long)(x))

static const char *const env_names[] = {
    "LANEFS_GUARD_PIECE_KB", "LANEFS_GUARD_LARGE", "LANEFS_GUARD_HOLD_MS",
    "LANEFS_GUARD_DEVICE_US",
};

static void unset_env(void)
{
    for (size_t i = 0; i < sizeof(env_names) / sizeof(env_names[0]); i++)
        unsetenv(env_names[i]);
}

/* rguard_init with the defaults: no override in the environment. */
static void guard_init(struct rguard *g)
{
    unset_env();
    rguard_init(g);
    cr_assert(g->enabled, "a new guard is enabled");
    cr_assert_eq(g->hold_ns, RGUARD_HOLD_NS, "default hold_ns: expected %llu, got %llu",
                 llu(RGUARD_HOLD_NS), llu(g->hold_ns));
    cr_assert_eq(g->device_ns, RGUARD_DEVICE_NS, "default device_ns: expected %llu, got %llu",
                 llu(RGUARD_DEVICE_NS), llu(g->device_ns));
    cr_assert_eq(g->piece_bytes, RGUARD_PIECE, "default piece_bytes: expected %llu, got %llu",
                 llu(RGUARD_PIECE), llu(g->piece_bytes));
    cr_assert_eq(g->large_max, RGUARD_LARGE_MAX, "default large_max: expected %u, got %u",
                 RGUARD_LARGE_MAX, g->large_max);
    cr_assert_eq(g->until, 0);
    cr_assert_eq(g->large_inflight, 0);
    cr_assert_eq(g->n_ra_off, 0);
}

static void expect_active(const struct rguard *g, uint64_t now, bool want, const char *what)
{
    cr_assert_eq(rguard_active(g, now), want,
                 "%s: rguard_active at T0%+lld ns: expected %s, got %s (until T0%+lld ns)",
                 what, (long long)(now - T0), want ? "true" : "false",
                 want ? "false" : "true", (long long)(g->until - T0));
}

/* 1. A slow small read starts the hold; another within it extends it. */
Test(rguard, slow_small_read_starts_and_extends_hold)
{
    struct rguard g;
    guard_init(&g);
    expect_active(&g, T0, false, "new guard");

    /* Exactly RGUARD_SMALL bytes is small; 1 ns over device_ns is slow. */
    rguard_read_done(&g, RGUARD_SMALL, SLOW, T0);
    cr_assert_eq(g.engaged, 1, "engaged after one slow small read: expected 1, got %llu",
                 llu(g.engaged));
    cr_assert_eq(g.until, T0 + RGUARD_HOLD_NS, "until: expected T0+%llu, got T0%+lld",
                 llu(RGUARD_HOLD_NS), (long long)(g.until - T0));
    expect_active(&g, T0, true, "at the read");
    expect_active(&g, T0 + RGUARD_HOLD_NS - 1, true, "1 ns before the hold ends");
    expect_active(&g, T0 + RGUARD_HOLD_NS, false, "at now + hold");
    expect_active(&g, T0 + RGUARD_HOLD_NS + 1, false, "after the hold");

    /* A second slow small read halfway through: the hold runs from it. */
    uint64_t t1 = T0 + RGUARD_HOLD_NS / 2;
    rguard_read_done(&g, 4 * KiB, 5 * MS, t1);
    cr_assert_eq(g.until, t1 + RGUARD_HOLD_NS, "extended until: expected T0+%llu, got T0%+lld",
                 llu(t1 + RGUARD_HOLD_NS - T0), (long long)(g.until - T0));
    expect_active(&g, T0 + RGUARD_HOLD_NS, true, "at the first hold's end, extended");
    expect_active(&g, t1 + RGUARD_HOLD_NS - 1, true, "1 ns before the extended hold ends");
    expect_active(&g, t1 + RGUARD_HOLD_NS, false, "at the extended hold's end");
    cr_assert_eq(g.engaged, 1, "an extension is no new engagement: expected 1, got %llu",
                 llu(g.engaged));
}

/* 2. Fast small reads, large reads and a disabled guard never start it;
 * disabling it while it holds ends the hold then. */
/* A report from a worker's ring (rguard_extend) starts and extends the
 * hold like a timed read; one that arrives late never shortens it, and a
 * disabled guard ignores it. */
Test(rguard, extend_from_a_late_report_never_shortens_the_hold)
{
    struct rguard g;
    guard_init(&g);
    rguard_extend(&g, T0);
    cr_assert_eq(g.engaged, 1, "engaged after a report: expected 1, got %llu", llu(g.engaged));
    expect_active(&g, T0 + RGUARD_HOLD_NS - 1, true, "1 ns before the hold ends");

    uint64_t t1 = T0 + 50 * MS;
    rguard_read_done(&g, 4 * KiB, SLOW, t1);
    rguard_extend(&g, T0 + 10 * MS);            /* older than t1's read */
    cr_assert_eq(g.until, t1 + RGUARD_HOLD_NS, "a late report moved until to T0%+lld "
                 "(want T0+%llu)", (long long)(g.until - T0), llu(t1 + RGUARD_HOLD_NS - T0));
    cr_assert_eq(g.engaged, 1, "an extension is no new engagement: got %llu", llu(g.engaged));

    /* After the hold ended (no tick between), a report starts a new one. */
    uint64_t t2 = t1 + RGUARD_HOLD_NS + 1;
    rguard_extend(&g, t2);
    cr_assert_eq(g.engaged, 2, "a report after the hold: engaged expected 2, got %llu",
                 llu(g.engaged));
    cr_assert_eq(g.until, t2 + RGUARD_HOLD_NS, "until after the restart: T0%+lld",
                 (long long)(g.until - T0));

    struct rguard off;
    guard_init(&off);
    rguard_enable(&off, false, T0);
    rguard_extend(&off, T0);
    expect_active(&off, T0, false, "disabled, after a report");
    cr_assert_eq(off.engaged, 0, "disabled: engaged expected 0, got %llu", llu(off.engaged));
}

Test(rguard, fast_or_large_reads_and_disabled_guard_never_start)
{
    struct rguard g;
    guard_init(&g);
    uint64_t t = T0;

    /* took == device_ns is not slower than it. */
    rguard_read_done(&g, 4 * KiB, RGUARD_DEVICE_NS, t);
    rguard_read_done(&g, RGUARD_SMALL, RGUARD_DEVICE_NS, t);
    rguard_read_done(&g, 1, 0, t);
    rguard_read_done(&g, 4 * KiB, 50 * US, t);
    expect_active(&g, t, false, "after fast small reads");
    cr_assert_eq(g.engaged, 0, "fast small reads: engaged expected 0, got %llu", llu(g.engaged));

    /* Large reads, however slow. */
    rguard_read_done(&g, LARGE, 10 * SEC, t);
    rguard_read_done(&g, 1 * MiB, SLOW, t);
    rguard_read_done(&g, 64 * MiB, 1 * SEC, t);
    expect_active(&g, t, false, "after slow large reads");
    cr_assert_eq(g.engaged, 0, "slow large reads: engaged expected 0, got %llu", llu(g.engaged));
    cr_assert_eq(g.until, 0, "until after no start: expected 0, got %llu", llu(g.until));

    /* Disabled: a slow small read does not start it. */
    rguard_enable(&g, false, t);
    cr_assert(!g.enabled, "rguard_enable(false) leaves enabled %d", g.enabled);
    rguard_read_done(&g, 4 * KiB, 10 * MS, t);
    expect_active(&g, t, false, "disabled, after a slow small read");
    cr_assert_eq(g.engaged, 0, "disabled: engaged expected 0, got %llu", llu(g.engaged));
    struct rguard_stats st;
    rguard_stats(&g, t, &st);
    cr_assert(!st.enabled && !st.active, "stats of the disabled guard: enabled %d active %d",
              st.enabled, st.active);

    /* Enabled again it starts; disabling it 10 ms in ends the hold then. */
    t += SEC;
    rguard_enable(&g, true, t);
    rguard_read_done(&g, 4 * KiB, 10 * MS, t);
    expect_active(&g, t, true, "re-enabled, after a slow small read");
    cr_assert_eq(g.engaged, 1, "re-enabled: engaged expected 1, got %llu", llu(g.engaged));
    uint64_t off_at = t + 10 * MS;
    rguard_enable(&g, false, off_at);
    cr_assert_eq(g.until, off_at, "disabled while active: until expected T0%+lld, got T0%+lld",
                 (long long)(off_at - T0), (long long)(g.until - T0));
    expect_active(&g, off_at - 1, true, "1 ns before it was disabled");
    expect_active(&g, off_at, false, "when it was disabled");
    rguard_read_done(&g, 4 * KiB, 10 * MS, off_at + MS);
    expect_active(&g, off_at + MS, false, "disabled again, after a slow small read");
    rguard_tick(&g, off_at);
    cr_assert(!g.guarding, "tick at the disabling time did not let go");
    cr_assert_eq(g.held_ns, 10 * MS, "held_ns after disabling 10 ms in: expected %llu, got %llu",
                 llu(10 * MS), llu(g.held_ns));
    cr_assert_eq(g.engaged, 1, "engaged at the end: expected 1, got %llu", llu(g.engaged));
}

static void expect_admit(const struct rguard *g, size_t size, uint64_t now, bool want,
                         const char *what)
{
    cr_assert_eq(rguard_admit(g, size, now), want,
                 "%s: rguard_admit of %zu bytes with %u large in flight (max %u), guard %s: "
                 "expected %s, got %s", what, size, g->large_inflight, g->large_max,
                 rguard_active(g, now) ? "active" : "inactive", want ? "true" : "false",
                 want ? "false" : "true");
}

/* 3. Admission: small reads always; large ones while inactive, or fewer
 * than large_max in flight while active. */
Test(rguard, admission_of_small_and_large_reads)
{
    struct rguard g;
    guard_init(&g);
    uint64_t t = T0;

    /* Inactive: any number of large reads. */
    expect_admit(&g, RGUARD_SMALL, t, true, "inactive, small");
    expect_admit(&g, LARGE, t, true, "inactive, large, none in flight");
    for (unsigned i = 0; i < 3; i++)
        cr_assert_eq(rguard_dispatch(&g, -1, 0, LARGE, t), 0);
    cr_assert_eq(g.large_inflight, 3, "large in flight: expected 3, got %u", g.large_inflight);
    expect_admit(&g, LARGE, t, true, "inactive, large, 3 in flight");
    for (unsigned i = 0; i < 3; i++)
        rguard_undispatch(&g, LARGE);
    cr_assert_eq(g.large_inflight, 0, "after 3 undispatches: expected 0, got %u",
                 g.large_inflight);

    /* Small dispatches are not counted. */
    rguard_dispatch(&g, -1, 0, RGUARD_SMALL, t);
    cr_assert_eq(g.large_inflight, 0, "small dispatch counted: %u large in flight",
                 g.large_inflight);

    /* Active, large_max 1: the boundary is one in flight. */
    rguard_read_done(&g, 4 * KiB, SLOW, t);
    expect_admit(&g, LARGE, t, true, "active, none in flight");
    rguard_dispatch(&g, -1, 0, LARGE, t);
    expect_admit(&g, LARGE, t, false, "active, large_max in flight");
    expect_admit(&g, 1 * MiB, t, false, "active, large_max in flight, 1 MiB");
    expect_admit(&g, RGUARD_SMALL, t, true, "active, large_max in flight, small");
    expect_admit(&g, 1, t, true, "active, large_max in flight, 1 byte");
    rguard_undispatch(&g, RGUARD_SMALL);      /* a small one leaving frees nothing */
    expect_admit(&g, LARGE, t, false, "active, after a small undispatch");
    rguard_undispatch(&g, LARGE);
    expect_admit(&g, LARGE, t, true, "active, after the large one left");

    /* Undispatch with none in flight does not wrap around. */
    rguard_undispatch(&g, LARGE);
    cr_assert_eq(g.large_inflight, 0, "undispatch with none in flight: got %u",
                 g.large_inflight);
    rguard_dispatch(&g, -1, 0, LARGE, t);
    expect_admit(&g, LARGE, t, false, "active, one in flight after a spare undispatch");

    /* Once the hold has passed, large reads go again whatever is in flight. */
    expect_admit(&g, LARGE, t + RGUARD_HOLD_NS - 1, false, "1 ns before the hold ends");
    expect_admit(&g, LARGE, t + RGUARD_HOLD_NS, true, "at the hold's end");
    rguard_undispatch(&g, LARGE);

    /* large_max 2 (the field, as LANEFS_GUARD_LARGE would set it). */
    g.large_max = 2;
    rguard_dispatch(&g, -1, 0, LARGE, t);
    expect_admit(&g, LARGE, t, true, "active, large_max 2, 1 in flight");
    rguard_dispatch(&g, -1, 0, LARGE, t);
    expect_admit(&g, LARGE, t, false, "active, large_max 2, 2 in flight");
    rguard_undispatch(&g, LARGE);
    expect_admit(&g, LARGE, t, true, "active, large_max 2, back to 1 in flight");

    /* Large reads dispatched before the guard started count too. */
    struct rguard h;
    guard_init(&h);
    rguard_dispatch(&h, -1, 0, LARGE, t);
    rguard_read_done(&h, 4 * KiB, SLOW, t + MS);
    expect_admit(&h, LARGE, t + MS, false, "started with a large read in flight");
}

/* 4. The piece size dispatch asks for, and the pieced count. */
Test(rguard, dispatch_returns_piece_only_for_large_reads_while_active)
{
    struct rguard g;
    guard_init(&g);
    uint64_t t = T0;
    size_t p;

    p = rguard_dispatch(&g, -1, 0, RGUARD_SMALL, t);
    cr_assert_eq(p, 0, "small read, inactive: expected 0, got %zu", p);
    p = rguard_dispatch(&g, -1, 0, LARGE, t);
    cr_assert_eq(p, 0, "large read, inactive: expected 0, got %zu", p);
    p = rguard_dispatch(&g, -1, 0, 8 * MiB, t);
    cr_assert_eq(p, 0, "8 MiB read, inactive: expected 0, got %zu", p);
    cr_assert_eq(g.pieced, 0, "pieced while inactive: expected 0, got %llu", llu(g.pieced));

    rguard_read_done(&g, 4 * KiB, SLOW, t);
    p = rguard_dispatch(&g, -1, 0, RGUARD_SMALL, t);
    cr_assert_eq(p, 0, "small read, active: expected 0, got %zu", p);
    p = rguard_dispatch(&g, -1, 0, 4 * KiB, t);
    cr_assert_eq(p, 0, "4 KiB read, active: expected 0, got %zu", p);
    cr_assert_eq(g.pieced, 0, "pieced after small reads: expected 0, got %llu", llu(g.pieced));
    p = rguard_dispatch(&g, -1, 0, LARGE, t);
    cr_assert_eq(p, RGUARD_PIECE, "large read, active: expected %u, got %zu", RGUARD_PIECE, p);
    cr_assert_eq(g.pieced, 1, "pieced after one: expected 1, got %llu", llu(g.pieced));
    p = rguard_dispatch(&g, -1, 4 * MiB, 4 * MiB, t + RGUARD_HOLD_NS - 1);
    cr_assert_eq(p, RGUARD_PIECE, "4 MiB read, 1 ns before the hold ends: expected %u, got %zu",
                 RGUARD_PIECE, p);
    cr_assert_eq(g.pieced, 2, "pieced after two: expected 2, got %llu", llu(g.pieced));

    p = rguard_dispatch(&g, -1, 0, LARGE, t + RGUARD_HOLD_NS);
    cr_assert_eq(p, 0, "large read at the hold's end: expected 0, got %zu", p);
    cr_assert_eq(g.pieced, 2, "pieced after the hold: expected 2, got %llu", llu(g.pieced));
    cr_assert_eq(g.large_inflight, 5, "large in flight: expected 5, got %u", g.large_inflight);
}

/* ---- 5. Readahead off and the chain cut, on a real file ---- */

#define FSIZE  (64 * MiB)
#define CSIZE  (4 * MiB)                    /* the canary */
#define RD     (1 * MiB)                    /* the dispatched read */

static char tdir[PATH_MAX];
static char tfile[PATH_MAX + 16];           /* the file the guard reads */
static char cfile[PATH_MAX + 16];           /* a canary the guard never sees */
static int gfd = -1;                        /* the descriptor given to the guard */
static long pagesz;

static void make_file(const char *path, uint64_t size)
{
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    cr_assert_geq(fd, 0, "create %s: %m", path);
    char *buf = malloc(RD);
    cr_assert_not_null(buf);
    for (uint64_t off = 0; off < size; off += RD) {
        memset(buf, (int)(off / RD) + 1, RD);
        cr_assert_eq(pwrite(fd, buf, RD, (off_t)off), (ssize_t)RD, "write %s: %m", path);
    }
    free(buf);
    /* Clean pages: POSIX_FADV_DONTNEED leaves dirty ones. */
    cr_assert_eq(fsync(fd), 0, "fsync %s: %m", path);
    close(fd);
}

static void file_setup(void)
{
    pagesz = sysconf(_SC_PAGESIZE);
    cr_assert_not_null(getcwd(tdir, sizeof(tdir) - 40));
    strcat(tdir, "/.rguard-test-XXXXXX");
    cr_assert_not_null(mkdtemp(tdir), "mkdtemp %s: %m", tdir);
    snprintf(tfile, sizeof(tfile), "%s/data", tdir);
    snprintf(cfile, sizeof(cfile), "%s/canary", tdir);
    make_file(tfile, FSIZE);
    make_file(cfile, CSIZE);
}

/* Idempotent: the fini, and before a skip (after which Criterion runs no
 * fini). */
static void file_teardown(void)
{
    if (gfd >= 0)
        close(gfd);
    gfd = -1;
    if (cfile[0] && unlink(cfile) != 0)
        fprintf(stderr, "could not remove %s: %m\n", cfile);
    if (tfile[0] && unlink(tfile) != 0)
        fprintf(stderr, "could not remove %s: %m\n", tfile);
    if (tdir[0] && rmdir(tdir) != 0)
        fprintf(stderr, "could not remove %s: %m\n", tdir);
    cfile[0] = tfile[0] = tdir[0] = '\0';
}

#define skip_test(...) do {                                                \
        char msg_[PATH_MAX + 256];                                                \
        snprintf(msg_, sizeof(msg_), __VA_ARGS__);                           \
        file_teardown();                                                     \
        cr_skip("%s", msg_);                                                 \
    } while (0)

/* Pages of [off, off + len) of the file of size bytes at path in the page
 * cache. */
static uint64_t resident_in(const char *path, uint64_t size, uint64_t off, uint64_t len)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    cr_assert_geq(fd, 0, "open %s: %m", path);
    void *map = mmap(NULL, size, PROT_READ, MAP_SHARED, fd, 0);
    cr_assert_neq(map, MAP_FAILED, "mmap %s: %m", path);
    close(fd);
    size_t npages = (size_t)(size / (uint64_t)pagesz);
    unsigned char *vec = malloc(npages);
    cr_assert_not_null(vec);
    cr_assert_eq(mincore(map, size, vec), 0, "mincore: %m");
    uint64_t n = 0;
    for (uint64_t p = off / (uint64_t)pagesz; p < (off + len) / (uint64_t)pagesz; p++)
        n += vec[p] & 1;
    free(vec);
    munmap(map, size);
    return n;
}

static uint64_t resident(uint64_t off, uint64_t len)
{
    return resident_in(tfile, FSIZE, off, len);
}

static uint64_t pages(uint64_t len)
{
    return len / (uint64_t)pagesz;
}

static void read_all(const char *path, uint64_t size)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    cr_assert_geq(fd, 0, "open %s: %m", path);
    char *buf = malloc(RD);
    cr_assert_not_null(buf);
    for (uint64_t off = 0; off < size; off += RD)
        cr_assert_eq(pread(fd, buf, RD, (off_t)off), (ssize_t)RD, "read %s: %m", path);
    free(buf);
    close(fd);
}

/* Reads the whole file and the canary through descriptors of their own,
 * so that they are all in the page cache; skips the test if the cache
 * does not keep them. */
static void warm(const char *when)
{
    read_all(tfile, FSIZE);
    read_all(cfile, CSIZE);
    uint64_t n = resident(0, FSIZE);
    uint64_t c = resident_in(cfile, CSIZE, 0, CSIZE);
    if (n != pages(FSIZE) || c != pages(CSIZE))
        skip_test("%s: %llu of %llu pages and %llu of %llu of the canary resident after "
                  "reading them: the page cache does not keep them here", when, llu(n),
                  llu(pages(FSIZE)), llu(c), llu(pages(CSIZE)));
}

/* Called after a check of the page cache: if the canary lost pages,
 * something else (drop_caches, as the integration tests do, or memory
 * pressure) evicted pages during it, and what it saw proves nothing. */
static void canary_intact(const char *what)
{
    uint64_t c = resident_in(cfile, CSIZE, 0, CSIZE);
    if (c != pages(CSIZE))
        skip_test("%s: %llu of %llu pages of the canary left in the page cache: something "
                  "else evicted pages during the check", what, llu(c), llu(pages(CSIZE)));
}

/* [from, to) has no page in the cache; the rest of the file has them all. */
static void expect_dropped(uint64_t from, uint64_t to, const char *what)
{
    uint64_t in = resident(from, to - from);
    uint64_t before = resident(0, from);
    uint64_t after = resident(to, FSIZE - to);
    canary_intact(what);
    cr_assert_eq(in, 0, "%s: pages resident in [%llu MiB, %llu MiB): expected 0, got %llu of %llu",
                 what, llu(from / MiB), llu(to / MiB), llu(in), llu(pages(to - from)));
    cr_assert_eq(before, pages(from), "%s: pages resident before %llu MiB: expected all %llu, "
                 "got %llu", what, llu(from / MiB), llu(pages(from)), llu(before));
    cr_assert_eq(after, pages(FSIZE - to), "%s: pages resident from %llu MiB: expected all "
                 "%llu, got %llu", what, llu(to / MiB), llu(pages(FSIZE - to)), llu(after));
}

static void expect_all_resident(const char *what)
{
    uint64_t n = resident(0, FSIZE);
    uint64_t ahead = resident(RD, RGUARD_AHEAD);
    canary_intact(what);
    cr_assert_eq(n, pages(FSIZE), "%s: pages resident: expected all %llu, got %llu (%llu of "
                 "%llu in [1 MiB, %llu MiB))", what, llu(pages(FSIZE)), llu(n), llu(ahead),
                 llu(pages(RGUARD_AHEAD)), llu((RD + RGUARD_AHEAD) / MiB));
}

Test(rguard, readahead_off_and_chain_cut_on_a_real_file, .init = file_setup,
     .fini = file_teardown, .timeout = 120)
{
    struct statfs sf;
    cr_assert_eq(statfs(tdir, &sf), 0, "statfs %s: %m", tdir);
    if (sf.f_type == 0x01021994)            /* TMPFS_MAGIC */
        skip_test("%s is on tmpfs, whose pages POSIX_FADV_DONTNEED cannot drop", tdir);
    cr_assert(RD + RGUARD_AHEAD < FSIZE, "the file must reach past the range dropped");

    struct rguard g;
    guard_init(&g);
    gfd = open(tfile, O_RDONLY | O_CLOEXEC);
    cr_assert_geq(gfd, 0, "open %s: %m", tfile);
    uint64_t t = T0;
    char what[96];

    /* Inactive: a large dispatch leaves readahead and the cache alone. */
    warm("first read");
    cr_assert_eq(rguard_dispatch(&g, gfd, 0, RD, t), 0);
    rguard_undispatch(&g, RD);
    expect_all_resident("large dispatch while inactive");
    cr_assert_eq(g.n_ra_off, 0, "descriptors with readahead off while inactive: expected 0, "
                 "got %u", g.n_ra_off);

    /* Active: the first RGUARD_DROPS large dispatches drop what is ahead.
     * The second is elsewhere in the file: what goes is past that read. */
    rguard_read_done(&g, 4 * KiB, SLOW, t);
    for (unsigned i = 1; i <= RGUARD_DROPS; i++) {
        uint64_t off = i == 2 ? 8 * MiB : 0;
        if (i > 1)
            warm("re-read");
        size_t p = rguard_dispatch(&g, gfd, off, RD, t);
        rguard_undispatch(&g, RD);
        cr_assert_eq(p, RGUARD_PIECE, "dispatch %u: expected piece %u, got %zu", i,
                     RGUARD_PIECE, p);
        snprintf(what, sizeof(what), "guarded dispatch %u of %u at %llu MiB", i, RGUARD_DROPS,
                 llu(off / MiB));
        expect_dropped(off + RD, off + RD + RGUARD_AHEAD, what);
        cr_assert_eq(g.n_ra_off, 1, "%s: descriptors with readahead off: expected 1, got %u",
                     what, g.n_ra_off);
        cr_assert_eq(g.ra_off[0].fd, gfd, "%s: listed descriptor: expected %d, got %d", what,
                     gfd, g.ra_off[0].fd);
        cr_assert_eq(g.ra_off[0].drops, RGUARD_DROPS - i, "%s: drops left: expected %u, got %u",
                     what, RGUARD_DROPS - i, g.ra_off[0].drops);
    }

    /* The next one leaves the cache alone. */
    warm("re-read");
    cr_assert_eq(rguard_dispatch(&g, gfd, 0, RD, t), RGUARD_PIECE);
    rguard_undispatch(&g, RD);
    snprintf(what, sizeof(what), "guarded dispatch %u", RGUARD_DROPS + 1);
    expect_all_resident(what);
    cr_assert_eq(g.n_ra_off, 1, "%s: descriptors with readahead off: expected 1, got %u",
                 what, g.n_ra_off);

    /* Tick lets go only once the hold has passed. */
    rguard_tick(&g, t + RGUARD_HOLD_NS - 1);
    cr_assert_eq(g.n_ra_off, 1, "tick 1 ns before the hold ends: n_ra_off expected 1, got %u",
                 g.n_ra_off);
    cr_assert(g.guarding, "tick 1 ns before the hold ends let go");
    rguard_tick(&g, t + RGUARD_HOLD_NS);
    cr_assert_eq(g.n_ra_off, 0, "tick at the hold's end: n_ra_off expected 0, got %u",
                 g.n_ra_off);
    cr_assert(!g.guarding, "tick at the hold's end did not let go");

    /* Guarding again, the descriptor is new to the list: it drops again. */
    t += 2 * SEC;
    rguard_read_done(&g, 4 * KiB, SLOW, t);
    expect_active(&g, t, true, "second engagement");
    warm("re-read");
    cr_assert_eq(rguard_dispatch(&g, gfd, 0, RD, t), RGUARD_PIECE);
    rguard_undispatch(&g, RD);
    expect_dropped(RD, RD + RGUARD_AHEAD, "first guarded dispatch after the let-go");
    cr_assert_eq(g.n_ra_off, 1, "after the let-go: n_ra_off expected 1, got %u", g.n_ra_off);
    cr_assert_eq(g.ra_off[0].drops, RGUARD_DROPS - 1, "after the let-go: drops left expected "
                 "%u, got %u", RGUARD_DROPS - 1, g.ra_off[0].drops);
}

/* 6. Statistics. */
static void expect_stats(const struct rguard *g, uint64_t now, bool enabled, bool active,
                         uint64_t engaged, uint64_t held_ns, uint64_t pieced, const char *what)
{
    struct rguard_stats st;
    memset(&st, 0xa5, sizeof(st));
    rguard_stats(g, now, &st);
    cr_assert_eq(st.enabled, enabled, "%s: enabled expected %d, got %d", what, enabled,
                 st.enabled);
    cr_assert_eq(st.active, active, "%s: active expected %d, got %d", what, active, st.active);
    cr_assert_eq(st.engaged, engaged, "%s: engaged expected %llu, got %llu", what, llu(engaged),
                 llu(st.engaged));
    cr_assert_eq(st.held_ns, held_ns, "%s: held_ns expected %llu, got %llu", what, llu(held_ns),
                 llu(st.held_ns));
    cr_assert_eq(st.pieced, pieced, "%s: pieced expected %llu, got %llu", what, llu(pieced),
                 llu(st.pieced));
}

Test(rguard, stats_count_hold_time_engagements_and_pieces)
{
    struct rguard g;
    guard_init(&g);
    uint64_t t = T0;
    expect_stats(&g, t, true, false, 0, 0, 0, "new guard");

    rguard_read_done(&g, 4 * KiB, SLOW, t);
    expect_stats(&g, t, true, true, 1, 0, 0, "at the start");
    expect_stats(&g, t + 30 * MS, true, true, 1, 30 * MS, 0, "30 ms in");
    rguard_read_done(&g, 4 * KiB, SLOW, t + 100 * MS);      /* until t + 300 ms */
    rguard_dispatch(&g, -1, 0, 1 * MiB, t + 120 * MS);
    rguard_undispatch(&g, 1 * MiB);
    expect_stats(&g, t + 250 * MS, true, true, 1, 250 * MS, 1, "250 ms in, extended, 1 pieced");
    rguard_tick(&g, t + 250 * MS);                          /* holds: no let-go */
    expect_stats(&g, t + 299 * MS, true, true, 1, 299 * MS, 1, "after a tick that kept on");

    /* Ended, tick not yet run: the whole hold, not the time since. */
    expect_stats(&g, t + 300 * MS, true, false, 1, 300 * MS, 1, "at the end, before tick");
    expect_stats(&g, t + 900 * MS, true, false, 1, 300 * MS, 1, "later, before tick");
    rguard_tick(&g, t + 950 * MS);
    expect_stats(&g, t + 1 * SEC, true, false, 1, 300 * MS, 1, "after tick let go");
    cr_assert_eq(g.held_ns, 300 * MS, "held_ns field after let-go: expected %llu, got %llu",
                 llu(300 * MS), llu(g.held_ns));
    rguard_tick(&g, t + 2 * SEC);                           /* let go once only */
    expect_stats(&g, t + 2 * SEC, true, false, 1, 300 * MS, 1, "after a second tick");

    /* A second engagement adds to it. */
    uint64_t t1 = t + 5 * SEC;
    rguard_read_done(&g, RGUARD_SMALL, 1 * MS, t1);
    expect_stats(&g, t1 + 50 * MS, true, true, 2, 350 * MS, 1, "second engagement, 50 ms in");
    rguard_dispatch(&g, -1, 0, LARGE, t1 + 60 * MS);
    rguard_dispatch(&g, -1, 0, LARGE, t1 + 70 * MS);
    rguard_dispatch(&g, -1, 0, 4 * KiB, t1 + 80 * MS);      /* small: not pieced */
    rguard_tick(&g, t1 + RGUARD_HOLD_NS);
    expect_stats(&g, t1 + 3 * SEC, true, false, 2, 300 * MS + RGUARD_HOLD_NS, 3,
                 "after the second let-go");

    /* A hold that ended with no tick since: the next slow read starts a
     * new one, and the gap between them is not held time. */
    uint64_t t2 = t1 + 10 * SEC;
    rguard_read_done(&g, 4 * KiB, SLOW, t2);
    rguard_read_done(&g, 4 * KiB, SLOW, t2 + 900 * MS);     /* no tick in between */
    expect_stats(&g, t2 + 1 * SEC, true, true, 4, 300 * MS + 2 * RGUARD_HOLD_NS + 100 * MS, 3,
                 "restarted without a tick, 100 ms in");

    /* Disabled: a later read does not count; the stats say so. */
    uint64_t t3 = t2 + 5 * SEC;
    rguard_tick(&g, t3);
    rguard_enable(&g, false, t3);
    rguard_read_done(&g, 4 * KiB, SLOW, t3);
    expect_stats(&g, t3, false, false, 4, 300 * MS + 3 * RGUARD_HOLD_NS, 3, "disabled");

    /* Device requests: one per read put in pieces, one per later piece. */
    struct rguard_stats st;
    rguard_stats(&g, t3, &st);
    cr_assert_eq(st.pieces, 3, "pieces of 3 reads in pieces: expected 3, got %llu",
                 llu(st.pieces));
    rguard_next_piece(&g);
    rguard_next_piece(&g);
    rguard_stats(&g, t3, &st);
    cr_assert_eq(st.pieces, 5, "after 2 more pieces: expected 5, got %llu", llu(st.pieces));
}

/* A guard initialised from the environment has every default (what: the
 * environment given). */
static void expect_defaults(const char *what)
{
    struct rguard g;
    rguard_init(&g);
    cr_assert_eq(g.piece_bytes, RGUARD_PIECE, "%s: piece expected %u, got %zu", what,
                 RGUARD_PIECE, g.piece_bytes);
    cr_assert_eq(g.large_max, RGUARD_LARGE_MAX, "%s: large_max expected %u, got %u", what,
                 RGUARD_LARGE_MAX, g.large_max);
    cr_assert_eq(g.hold_ns, RGUARD_HOLD_NS, "%s: hold expected %llu, got %llu", what,
                 llu(RGUARD_HOLD_NS), llu(g.hold_ns));
    cr_assert_eq(g.device_ns, RGUARD_DEVICE_NS, "%s: device_ns expected %llu, got %llu", what,
                 llu(RGUARD_DEVICE_NS), llu(g.device_ns));
}

/* 7. The environment overrides, and malformed values that leave the
 * defaults. */
Test(rguard, environment_overrides, .fini = unset_env)
{
    struct rguard g;
    unset_env();
    cr_assert_eq(setenv("LANEFS_GUARD_PIECE_KB", "64", 1), 0);
    cr_assert_eq(setenv("LANEFS_GUARD_LARGE", "2", 1), 0);
    cr_assert_eq(setenv("LANEFS_GUARD_HOLD_MS", "50", 1), 0);
    cr_assert_eq(setenv("LANEFS_GUARD_DEVICE_US", "0", 1), 0);
    rguard_init(&g);
    cr_assert_eq(g.piece_bytes, 65536, "LANEFS_GUARD_PIECE_KB=64: expected 65536, got %zu",
                 g.piece_bytes);
    cr_assert_eq(g.large_max, 2, "LANEFS_GUARD_LARGE=2: expected 2, got %u", g.large_max);
    cr_assert_eq(g.hold_ns, 50 * MS, "LANEFS_GUARD_HOLD_MS=50: expected %llu, got %llu",
                 llu(50 * MS), llu(g.hold_ns));
    cr_assert_eq(g.device_ns, 0, "LANEFS_GUARD_DEVICE_US=0: expected 0, got %llu",
                 llu(g.device_ns));
    cr_assert(g.enabled, "enabled with overrides");

    /* They take effect: 1 ns is slower than 0, the hold is 50 ms, pieces
     * are 64 KiB. */
    rguard_read_done(&g, 4 * KiB, 1, T0);
    expect_active(&g, T0 + 50 * MS - 1, true, "overridden hold, 1 ns before its end");
    expect_active(&g, T0 + 50 * MS, false, "overridden hold, at its end");
    size_t p = rguard_dispatch(&g, -1, 0, LARGE, T0);
    cr_assert_eq(p, 65536, "overridden piece: expected 65536, got %zu", p);

    /* Malformed or empty: the defaults. */
    cr_assert_eq(setenv("LANEFS_GUARD_PIECE_KB", "12x", 1), 0);
    cr_assert_eq(setenv("LANEFS_GUARD_LARGE", "3 ", 1), 0);
    cr_assert_eq(setenv("LANEFS_GUARD_HOLD_MS", "ms", 1), 0);
    cr_assert_eq(setenv("LANEFS_GUARD_DEVICE_US", "", 1), 0);
    expect_defaults("PIECE_KB=\"12x\", LARGE=\"3 \", HOLD_MS=\"ms\", DEVICE_US=\"\"");

    /* Negative or too large to scale: the defaults. */
    cr_assert_eq(setenv("LANEFS_GUARD_HOLD_MS", "-1", 1), 0);
    cr_assert_eq(setenv("LANEFS_GUARD_DEVICE_US", "99999999999999999", 1), 0);
    rguard_init(&g);
    cr_assert_eq(g.hold_ns, RGUARD_HOLD_NS, "HOLD_MS=\"-1\": expected %llu, got %llu",
                 llu(RGUARD_HOLD_NS), llu(g.hold_ns));
    cr_assert_eq(g.device_ns, RGUARD_DEVICE_NS, "DEVICE_US too large: expected %llu, got %llu",
                 llu(RGUARD_DEVICE_NS), llu(g.device_ns));

    /* Zero where zero makes no sense: at least one large read, a page. */
    cr_assert_eq(setenv("LANEFS_GUARD_PIECE_KB", "0", 1), 0);
    cr_assert_eq(setenv("LANEFS_GUARD_LARGE", "0", 1), 0);
    rguard_init(&g);
    cr_assert_eq(g.piece_bytes, 4096, "PIECE_KB=0: expected 4096, got %zu", g.piece_bytes);
    cr_assert_eq(g.large_max, 1, "LARGE=0: expected 1, got %u", g.large_max);

    unset_env();
    for (size_t i = 0; i < sizeof(env_names) / sizeof(env_names[0]); i++)
        cr_assert_null(getenv(env_names[i]), "%s still set", env_names[i]);
}
