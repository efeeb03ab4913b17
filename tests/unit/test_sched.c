/* Unit tests for fs/sched.c: a simulated clock and a simulated device.
 *
 * The harness keeps each "on" agent's reads outstanding (a closed loop, so
 * the agent stays backlogged), asks the scheduler for reads while fewer than
 * `depth` are in flight, and completes them on a fake device: either one
 * that serves reads one after another at a fixed bandwidth, or one that
 * takes a fixed latency per read with `depth` in parallel. The clock jumps
 * to the next completion or to when sched_next said a read would be
 * allowed. Shares and rates are counted at dispatch, which is what the
 * scheduler decides. */
#include <criterion/criterion.h>

#include <errno.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "fs/sched.h"

#define MS   1000000ULL
#define SEC  1000000000ULL
#define KiB  1024ULL
#define MiB  (1024ULL * 1024)
#define GiB  (1024ULL * MiB)

#define MAXA 4
#define NREQ 16                 /* > depth: an "on" agent is always queued */

struct req {
    struct sched_item it;       /* first: the item is the request */
    int ai;
    bool busy;
    uint64_t done;
    uint64_t ready;             /* may be asked again from then (think time) */
};

struct sim_agent {
    uint64_t id;
    uint64_t size;              /* bytes per read */
    bool on;
    int maxout;                 /* reads it keeps outstanding (NREQ unless set) */
    uint64_t think;             /* ns from an answer to its next request */
    int outstanding;
    struct req r[NREQ];
    uint64_t bytes, reads;      /* dispatched */
    uint64_t last_disp, max_gap;
};

struct sim {
    struct sched *s;
    int na;
    struct sim_agent a[MAXA];
    uint64_t bw;                /* bytes/s, serial; 0: latency device */
    uint64_t lat;               /* ns per read */
    int depth;
    struct req *fl[64];
    int nfl;
    uint64_t dev_free;
    uint64_t now;
    uint64_t stalls;            /* NULL from sched_next with reads queued */
    bool pacing;                /* report ends with sched_done */
};

static struct sim S;

static void sim_init(uint64_t volume_rate, uint64_t bw, uint64_t lat, int depth)
{
    memset(&S, 0, sizeof(S));
    S.s = sched_new(volume_rate);
    cr_assert_not_null(S.s);
    S.bw = bw;
    S.lat = lat;
    S.depth = depth;
}

static void sim_fini(void)
{
    sched_free(S.s);
}

static int sim_agent(uint64_t id, uint32_t weight, uint64_t rate, uint64_t iops,
                     uint64_t reserve, uint64_t size)
{
    struct sched_limits l = { weight, rate, iops, reserve };
    cr_assert_eq(sched_agent_add(S.s, id, &l), 0);
    int ai = S.na++;
    S.a[ai].id = id;
    S.a[ai].size = size;
    S.a[ai].on = true;
    S.a[ai].maxout = NREQ;
    for (int i = 0; i < NREQ; i++)
        S.a[ai].r[i].ai = ai;
    return ai;
}

static void top_up(void)
{
    for (int ai = 0; ai < S.na; ai++) {
        struct sim_agent *a = &S.a[ai];
        for (int i = 0; a->on && i < a->maxout && i < NREQ; i++) {
            if (a->r[i].busy || a->r[i].ready > S.now)
                continue;
            a->r[i].busy = true;
            a->r[i].it.bytes = a->size;
            a->outstanding++;
            cr_assert_eq(sched_enqueue(S.s, a->id, &a->r[i].it, S.now), 0);
        }
    }
}

static void sim_run(uint64_t until)
{
    while (S.now < until) {
        top_up();
        uint64_t wait = UINT64_MAX;
        while (S.nfl < S.depth) {
            uint64_t id = UINT64_MAX;
            struct sched_item *it = sched_next(S.s, S.now, &wait, &id);
            if (!it) {
                if (wait != UINT64_MAX)
                    S.stalls++;
                break;
            }
            cr_assert_eq(wait, 0);
            struct req *r = (struct req *)it;
            struct sim_agent *a = &S.a[r->ai];
            cr_assert_eq(id, a->id);
            if (a->reads && S.now - a->last_disp > a->max_gap)
                a->max_gap = S.now - a->last_disp;
            a->last_disp = S.now;
            a->bytes += it->bytes;
            a->reads++;
            if (S.bw) {
                S.dev_free = (S.dev_free > S.now ? S.dev_free : S.now) +
                             it->bytes * SEC / S.bw;
                r->done = S.dev_free;
            } else {
                r->done = S.now + S.lat;
            }
            S.fl[S.nfl++] = r;
        }
        uint64_t next = until;
        for (int i = 0; i < S.nfl; i++)
            if (S.fl[i]->done < next)
                next = S.fl[i]->done;
        if (S.nfl < S.depth && wait != UINT64_MAX && S.now + wait < next)
            next = S.now + wait;
        for (int ai = 0; ai < S.na; ai++)      /* a think time ends */
            for (int i = 0; S.a[ai].on && i < S.a[ai].maxout && i < NREQ; i++)
                if (!S.a[ai].r[i].busy && S.a[ai].r[i].ready > S.now &&
                    S.a[ai].r[i].ready < next)
                    next = S.a[ai].r[i].ready;
        S.now = next > S.now ? next : S.now;
        for (int i = 0; i < S.nfl;) {
            struct req *r = S.fl[i];
            if (r->done > S.now) {
                i++;
                continue;
            }
            r->busy = false;
            r->ready = S.now + S.a[r->ai].think;
            S.a[r->ai].outstanding--;
            if (S.pacing)
                sched_done(S.s, S.a[r->ai].id, S.now);
            S.fl[i] = S.fl[--S.nfl];
        }
    }
}

struct snap {
    uint64_t bytes[MAXA], reads[MAXA];
};

static struct snap snap(void)
{
    struct snap sn;
    for (int i = 0; i < MAXA; i++) {
        sn.bytes[i] = S.a[i].bytes;
        sn.reads[i] = S.a[i].reads;
    }
    return sn;
}

static double rate_between(const struct snap *x, const struct snap *y, int ai,
                           uint64_t ns)
{
    return (double)(y->bytes[ai] - x->bytes[ai]) * SEC / (double)ns;
}

static double ratio(double got, double want)
{
    return got / want;
}

#define assert_near(got, want, tol, what)                                    \
    cr_assert(ratio(got, want) >= 1 - (tol) && ratio(got, want) <= 1 + (tol), \
              "%s: %.1f, want %.1f (within %.1f%%)", what, (double)(got),     \
              (double)(want), (tol) * 100)

/* ---- fairness ---- */

Test(sched, weights_100_200_300)
{
    sim_init(0, 100 * MiB, 0, 4);
    int a = sim_agent(1, 100, 0, 0, 0, 128 * KiB);
    int b = sim_agent(2, 200, 0, 0, 0, 128 * KiB);
    int c = sim_agent(3, 300, 0, 0, 0, 128 * KiB);
    sim_run(1 * SEC);
    struct snap x = snap();
    sim_run(61 * SEC);
    struct snap y = snap();
    double t = 0;
    for (int i = 0; i < 3; i++)
        t += (double)(y.bytes[i] - x.bytes[i]);
    double sa = (y.bytes[a] - x.bytes[a]) / t, sb = (y.bytes[b] - x.bytes[b]) / t,
           sc = (y.bytes[c] - x.bytes[c]) / t;
    fprintf(stderr, "sched weights 100/200/300: shares %.4f %.4f %.4f (want %.4f %.4f %.4f)\n",
            sa, sb, sc, 1 / 6.0, 2 / 6.0, 3 / 6.0);
    assert_near(sa, 1 / 6.0, 0.01, "weight 100 share");
    assert_near(sb, 2 / 6.0, 0.01, "weight 200 share");
    assert_near(sc, 3 / 6.0, 0.01, "weight 300 share");
    /* Work conserving: the device never waited on the scheduler. */
    assert_near(t, 60.0 * 100 * MiB, 0.001, "total bytes");
    cr_assert_eq(S.stalls, 0);
    sim_fini();
}

/* Fair in bytes, not in reads: 4 KiB, 64 KiB and 1 MiB readers at equal
 * weight move the same number of bytes. */
Test(sched, fair_in_bytes_across_read_sizes)
{
    sim_init(0, 100 * MiB, 0, 4);
    sim_agent(1, 100, 0, 0, 0, 4 * KiB);
    sim_agent(2, 100, 0, 0, 0, 64 * KiB);
    sim_agent(3, 100, 0, 0, 0, 1 * MiB);
    sim_run(1 * SEC);
    struct snap x = snap();
    sim_run(31 * SEC);
    struct snap y = snap();
    double t = 0;
    for (int i = 0; i < 3; i++)
        t += (double)(y.bytes[i] - x.bytes[i]);
    for (int i = 0; i < 3; i++) {
        double sh = (y.bytes[i] - x.bytes[i]) / t;
        fprintf(stderr, "sched equal weights, read size %llu: share %.4f\n",
                (unsigned long long)S.a[i].size, sh);
        assert_near(sh, 1 / 3.0, 0.01, "share");
    }
    sim_fini();
}

Test(sched, live_weight_change)
{
    sim_init(0, 100 * MiB, 0, 4);
    sim_agent(1, 100, 0, 0, 0, 128 * KiB);
    sim_agent(2, 100, 0, 0, 0, 128 * KiB);
    sim_run(10 * SEC);
    struct sched_limits l = { .weight = 300 };
    cr_assert_eq(sched_agent_set(S.s, 1, &l), 0);
    sim_run(11 * SEC);
    struct snap x = snap();
    sim_run(41 * SEC);
    struct snap y = snap();
    double a = (double)(y.bytes[0] - x.bytes[0]), b = (double)(y.bytes[1] - x.bytes[1]);
    assert_near(a / (a + b), 0.75, 0.01, "share after weight 300");
    sim_fini();
}

/* An agent idle for 10 s gets no more than its share when it returns. */
Test(sched, idle_agent_banks_no_credit)
{
    sim_init(0, 100 * MiB, 0, 4);
    int a = sim_agent(1, 100, 0, 0, 0, 128 * KiB);
    int b = sim_agent(2, 100, 0, 0, 0, 128 * KiB);
    sim_run(5 * SEC);
    S.a[b].on = false;
    sim_run(15 * SEC);
    struct sched_stats st;
    cr_assert_eq(sched_stats(S.s, 2, &st), 0);
    cr_assert_eq(st.depth, 0);
    S.a[b].on = true;
    struct snap x = snap();
    /* The first 100 reads after its return alternate (one-read slack). */
    while (S.a[a].reads + S.a[b].reads - x.reads[a] - x.reads[b] < 100)
        sim_run(S.now + 1);
    struct snap y = snap();
    uint64_t rb = y.reads[b] - x.reads[b], ra = y.reads[a] - x.reads[a];
    fprintf(stderr, "sched idle return: first %llu reads: returning %llu, other %llu\n",
            (unsigned long long)(ra + rb), (unsigned long long)rb, (unsigned long long)ra);
    cr_assert_leq(rb, (ra + rb) / 2 + 1);
    /* And over its first second back. */
    sim_run(16 * SEC);
    struct snap z = snap();
    double sb = (double)(z.bytes[b] - x.bytes[b]) /
                (double)(z.bytes[a] - x.bytes[a] + z.bytes[b] - x.bytes[b]);
    cr_assert_leq(sb, 0.505, "returning agent's share %.4f", sb);
    cr_assert_geq(sb, 0.495, "returning agent's share %.4f", sb);
    sim_fini();
}

/* A weight-1 agent still progresses next to a weight-10000 one, at its
 * share, and never waits longer than the rounds its read needs. */
Test(sched, no_starvation)
{
    sim_init(0, 1 * GiB, 0, 4);
    int lo = sim_agent(1, 1, 0, 0, 0, 64 * KiB);
    int hi = sim_agent(2, 10000, 0, 0, 0, 64 * KiB);
    sim_run(30 * SEC);
    double total = (double)(S.a[lo].bytes + S.a[hi].bytes);
    double want = total / 10001 / (64 * KiB);
    fprintf(stderr, "sched weight 1 vs 10000: %llu reads (want %.1f), longest gap %.3f s\n",
            (unsigned long long)S.a[lo].reads, want, (double)S.a[lo].max_gap / SEC);
    cr_assert_geq((double)S.a[lo].reads, want - 2);
    cr_assert_leq((double)S.a[lo].reads, want + 2);
    /* A 64 KiB read at 1 KiB a round: 64 rounds of the other's 10000 KiB
     * quantum, about 0.61 s of the device. */
    cr_assert_leq(S.a[lo].max_gap, 650 * MS);
    sim_fini();
}

/* ---- limits ---- */

Test(sched, alone_unlimited_gets_everything)
{
    sim_init(0, 100 * MiB, 0, 4);
    int a = sim_agent(1, 100, 0, 0, 0, 128 * KiB);
    sim_run(10 * SEC);
    cr_assert_eq(S.stalls, 0);
    /* Dispatched = the device's 10 s plus what is in flight. */
    cr_assert_geq(S.a[a].bytes, 10 * 100 * MiB);
    cr_assert_leq(S.a[a].bytes, 10 * 100 * MiB + 4 * 128 * KiB);
    sim_fini();
}

Test(sched, rate_limit_alone_is_exact)
{
    sim_init(0, 100 * MiB, 0, 4);
    int a = sim_agent(1, 100, 10 * MiB, 0, 0, 128 * KiB);
    sim_run(2 * SEC);
    struct snap x = snap();
    sim_run(32 * SEC);
    struct snap y = snap();
    double r = rate_between(&x, &y, a, 30 * SEC);
    fprintf(stderr, "sched rate limit 10 MiB/s alone: %.4f of the limit\n", r / (10 * MiB));
    assert_near(r, 10.0 * MiB, 0.005, "limited rate");
    /* From the start: the limit plus one burst (1 s) plus one read. */
    cr_assert_leq(y.bytes[a], 32 * 10 * MiB + 10 * MiB + 128 * KiB);
    sim_fini();
}

Test(sched, rate_limit_with_competitor_and_work_conserving)
{
    sim_init(0, 100 * MiB, 0, 4);
    int a = sim_agent(1, 100, 20 * MiB, 0, 0, 128 * KiB);
    int b = sim_agent(2, 100, 0, 0, 0, 128 * KiB);
    sim_run(2 * SEC);
    struct snap x = snap();
    sim_run(32 * SEC);
    struct snap y = snap();
    double ra = rate_between(&x, &y, a, 30 * SEC), rb = rate_between(&x, &y, b, 30 * SEC);
    fprintf(stderr, "sched rate limit 20 MiB/s next to a heavy agent: %.4f of the limit; other %.4f of the rest\n",
            ra / (20 * MiB), rb / (80 * MiB));
    assert_near(ra, 20.0 * MiB, 0.01, "limited agent");
    assert_near(rb, 80.0 * MiB, 0.01, "unlimited agent gets the rest");
    sim_fini();
}

Test(sched, iops_limit)
{
    /* 100 us a read, 8 at a time: the device does 80000 reads/s. */
    sim_init(0, 0, 100 * 1000, 8);
    int a = sim_agent(1, 100, 0, 1000, 0, 4 * KiB);
    int b = sim_agent(2, 100, 0, 0, 0, 4 * KiB);
    sim_run(2 * SEC);
    struct snap x = snap();
    sim_run(32 * SEC);
    struct snap y = snap();
    double ia = (double)(y.reads[a] - x.reads[a]) / 30, ib = (double)(y.reads[b] - x.reads[b]) / 30;
    fprintf(stderr, "sched iops limit 1000: %.4f of the limit; other %.0f reads/s\n",
            ia / 1000, ib);
    assert_near(ia, 1000.0, 0.005, "limited reads/s");
    assert_near(ib, 79000.0, 0.01, "the other agent's reads/s");
    sim_fini();
}

/* ---- reservation ---- */

Test(sched, reservation_met_next_to_heavy_agent)
{
    sim_init(0, 100 * MiB, 0, 4);
    int l = sim_agent(1, 100, 0, 0, 30 * MiB, 64 * KiB);
    int h = sim_agent(2, 900, 0, 0, 0, 1 * MiB);
    sim_run(2 * SEC);
    struct snap x = snap();
    sim_run(32 * SEC);
    struct snap y = snap();
    double rl = rate_between(&x, &y, l, 30 * SEC), rh = rate_between(&x, &y, h, 30 * SEC);
    fprintf(stderr, "sched reservation 30 MiB/s at 10%% weight: %.4f of the reservation; heavy %.1f MiB/s\n",
            rl / (30 * MiB), rh / MiB);
    cr_assert_geq(rl, 30.0 * MiB * 0.99, "reserved agent %.1f MiB/s", rl / MiB);
    cr_assert_leq(rl, 30.0 * MiB * 1.02, "reserved agent %.1f MiB/s", rl / MiB);
    assert_near(rh, 70.0 * MiB, 0.02, "heavy agent gets the rest");
    sim_fini();
}

/* A reservation below the fair share changes nothing: the larger of the
 * two, not their sum. */
Test(sched, reservation_below_share_is_not_added)
{
    sim_init(0, 100 * MiB, 0, 4);
    int l = sim_agent(1, 100, 0, 0, 10 * MiB, 128 * KiB);
    int h = sim_agent(2, 100, 0, 0, 0, 128 * KiB);
    sim_run(2 * SEC);
    struct snap x = snap();
    sim_run(32 * SEC);
    struct snap y = snap();
    double rl = rate_between(&x, &y, l, 30 * SEC), rh = rate_between(&x, &y, h, 30 * SEC);
    assert_near(rl / (rl + rh), 0.5, 0.01, "reserved agent's share");
    sim_fini();
}

/* ---- volume cap ---- */

Test(sched, volume_cap_and_live_change)
{
    sim_init(50 * MiB, 100 * MiB, 0, 4);
    int a = sim_agent(1, 100, 0, 0, 0, 128 * KiB);
    int b = sim_agent(2, 100, 0, 0, 0, 128 * KiB);
    sim_run(2 * SEC);
    struct snap x = snap();
    sim_run(22 * SEC);
    struct snap y = snap();
    double ra = rate_between(&x, &y, a, 20 * SEC), rb = rate_between(&x, &y, b, 20 * SEC);
    fprintf(stderr, "sched volume cap 50 MiB/s: %.4f of the cap\n", (ra + rb) / (50 * MiB));
    assert_near(ra + rb, 50.0 * MiB, 0.005, "capped total");
    assert_near(ra, 25.0 * MiB, 0.01, "half of the cap");

    sched_set_volume_rate(S.s, 20 * MiB);
    sim_run(24 * SEC);
    x = snap();
    sim_run(44 * SEC);
    y = snap();
    ra = rate_between(&x, &y, a, 20 * SEC);
    rb = rate_between(&x, &y, b, 20 * SEC);
    assert_near(ra + rb, 20.0 * MiB, 0.005, "lowered cap");

    sched_set_volume_rate(S.s, 0);
    sim_run(45 * SEC);
    x = snap();
    sim_run(55 * SEC);
    y = snap();
    ra = rate_between(&x, &y, a, 10 * SEC);
    rb = rate_between(&x, &y, b, 10 * SEC);
    assert_near(ra + rb, 100.0 * MiB, 0.005, "no cap: the device");
    sim_fini();
}

Test(sched, volume_cap_with_agent_limit)
{
    sim_init(50 * MiB, 100 * MiB, 0, 4);
    int a = sim_agent(1, 100, 10 * MiB, 0, 0, 128 * KiB);
    int b = sim_agent(2, 100, 0, 0, 0, 128 * KiB);
    sim_run(3 * SEC);
    struct snap x = snap();
    sim_run(33 * SEC);
    struct snap y = snap();
    assert_near(rate_between(&x, &y, a, 30 * SEC), 10.0 * MiB, 0.01, "limited agent");
    assert_near(rate_between(&x, &y, b, 30 * SEC), 40.0 * MiB, 0.01, "rest of the cap");
    sim_fini();
}

/* ---- sched_next's wait ---- */

static void must_wait(struct sched *s, uint64_t now, uint64_t want)
{
    uint64_t w = 0, id;
    cr_assert_null(sched_next(s, now, &w, &id));
    cr_assert_eq(w, want, "wait %llu, want %llu", (unsigned long long)w,
                 (unsigned long long)want);
    /* Exact: not a nanosecond early, and on time. */
    cr_assert_null(sched_next(s, now + w - 1, &w, &id));
    cr_assert_not_null(sched_next(s, now + want, &w, &id));
    cr_assert_eq(w, 0);
}

Test(sched, wait_ns_byte_rate)
{
    struct sched *s = sched_new(0);
    struct sched_limits l = { .rate_bps = 1000000 };
    struct sched_item it[20];
    uint64_t w, id;

    cr_assert_null(sched_next(s, 0, &w, &id));
    cr_assert_eq(w, UINT64_MAX);
    cr_assert_eq(sched_agent_add(s, 7, &l), 0);
    for (int i = 0; i < 20; i++) {
        it[i].bytes = 100000;
        cr_assert_eq(sched_enqueue(s, 7, &it[i], 0), 0);
    }
    /* The burst: one second's worth, ten reads. */
    for (int i = 0; i < 10; i++) {
        cr_assert_eq(sched_next(s, 0, &w, &id), &it[i]);
        cr_assert_eq(id, 7);
    }
    must_wait(s, 0, 1000);                 /* one byte at 1 MB/s */
    must_wait(s, 1000, 100000000);         /* then the 100000 bytes it owes */
    /* Idle for an hour: the bucket holds its burst, not more. */
    uint64_t t = 3600 * SEC;
    for (int i = 12; i < 20; i++)
        cr_assert_eq(sched_next(s, t, &w, &id), &it[i]);
    cr_assert_null(sched_next(s, t, &w, &id));
    cr_assert_eq(w, UINT64_MAX);
    struct sched_item more[3] = { { .bytes = 100000 }, { .bytes = 100000 }, { .bytes = 100000 } };
    for (int i = 0; i < 3; i++)
        cr_assert_eq(sched_enqueue(s, 7, &more[i], t), 0);
    cr_assert_eq(sched_next(s, t, &w, &id), &more[0]);
    cr_assert_eq(sched_next(s, t, &w, &id), &more[1]);
    /* 1000000 - 10 * 100000 = 0 left: wait one byte. */
    must_wait(s, t, 1000);
    sched_free(s);
}

Test(sched, wait_ns_iops_volume_and_shortest)
{
    struct sched *s = sched_new(0);
    struct sched_limits li = { .iops = 10 }, lr = { .rate_bps = 1000000 };
    struct sched_item a[12], b[12];
    uint64_t w, id;

    cr_assert_eq(sched_agent_add(s, 1, &li), 0);
    cr_assert_eq(sched_agent_add(s, 2, &lr), 0);
    for (int i = 0; i < 12; i++) {
        a[i].bytes = 4096;
        b[i].bytes = 500000;
        cr_assert_eq(sched_enqueue(s, 1, &a[i], 0), 0);
        cr_assert_eq(sched_enqueue(s, 2, &b[i], 0), 0);
    }
    int na = 0, nb = 0;
    while (sched_next(s, 0, &w, &id))
        id == 1 ? na++ : nb++;
    cr_assert_eq(na, 10);                  /* ten reads of burst */
    cr_assert_eq(nb, 2);                   /* 1000000 bytes of burst */
    /* Agent 1 waits 100 ms for a read, agent 2 1 us for a byte: the
     * shortest. */
    cr_assert_eq(w, 1000);
    cr_assert_not_null(sched_next(s, 1000, &w, &id));
    cr_assert_eq(id, 2);
    /* Now agent 2 owes 500000 bytes (0.5 s); agent 1 is next, at 100 ms. */
    must_wait(s, 1000, 100 * MS - 1000);
    sched_free(s);

    /* The volume cap: 1 MB/s for everyone. */
    s = sched_new(1000000);
    cr_assert_eq(sched_agent_add(s, 1, NULL), 0);
    cr_assert_eq(sched_agent_add(s, 2, NULL), 0);
    for (int i = 0; i < 6; i++) {
        b[i].bytes = 250000;
        cr_assert_eq(sched_enqueue(s, 1 + (i & 1), &b[i], 0), 0);
    }
    for (int i = 0; i < 4; i++)
        cr_assert_not_null(sched_next(s, 0, &w, &id));
    must_wait(s, 0, 1000);
    must_wait(s, 1000, 250 * MS);
    sched_free(s);
}

/* ---- bookkeeping ---- */

Test(sched, stats_and_remove)
{
    struct sched *s = sched_new(0);
    struct sched_item it[4] = { { .bytes = 10 }, { .bytes = 20 }, { .bytes = 30 }, { .bytes = 40 } };
    struct sched_stats st;
    uint64_t w, id;

    cr_assert_eq(sched_agent_add(s, 3, NULL), 0);
    for (int i = 0; i < 4; i++)
        cr_assert_eq(sched_enqueue(s, 3, &it[i], 100), 0);
    cr_assert_eq(sched_stats(s, 3, &st), 0);
    cr_assert_eq(st.depth, 4);
    cr_assert_eq(sched_next(s, 110, &w, &id), &it[0]);
    cr_assert_eq(sched_next(s, 130, &w, &id), &it[1]);
    cr_assert_eq(sched_stats(s, 3, &st), 0);
    cr_assert_eq(st.bytes, 30);
    cr_assert_eq(st.reads, 2);
    cr_assert_eq(st.queued_ns, 10 + 30);
    cr_assert_eq(st.depth, 2);

    /* Removal hands back what was queued, in order. */
    struct sched_item *l = sched_agent_remove(s, 3);
    cr_assert_eq(l, &it[2]);
    cr_assert_eq(l->next, &it[3]);
    cr_assert_null(it[3].next);
    cr_assert_eq(sched_stats(s, 3, &st), -ENOENT);
    cr_assert_null(sched_next(s, 200, &w, &id));
    cr_assert_eq(w, UINT64_MAX);
    cr_assert_null(sched_agent_remove(s, 3));
    /* The number can be used again, from zero. */
    cr_assert_eq(sched_agent_add(s, 3, NULL), 0);
    cr_assert_eq(sched_stats(s, 3, &st), 0);
    cr_assert_eq(st.reads, 0);
    sched_free(s);
}

Test(sched, remove_while_others_run)
{
    sim_init(0, 100 * MiB, 0, 4);
    sim_agent(1, 100, 0, 0, 30 * MiB, 128 * KiB);
    sim_agent(2, 100, 0, 0, 0, 128 * KiB);
    int c = sim_agent(3, 100, 0, 0, 0, 128 * KiB);
    sim_run(1 * SEC);
    S.a[0].on = false;
    /* Its queued reads come back; the in-flight ones finish as usual. */
    for (struct sched_item *it = sched_agent_remove(S.s, 1); it; it = it->next) {
        ((struct req *)it)->busy = false;
        S.a[0].outstanding--;
    }
    struct snap x = snap();
    sim_run(11 * SEC);
    struct snap y = snap();
    cr_assert_eq(y.reads[0], x.reads[0]);
    double rc = rate_between(&x, &y, c, 10 * SEC);
    assert_near(rc, 50.0 * MiB, 0.01, "a remaining agent");
    sim_fini();
}

Test(sched, agent_errors)
{
    struct sched *s = sched_new(0);
    struct sched_limits ok = { .weight = 10000, .rate_bps = 100, .reserve_bps = 100 };
    struct sched_limits heavy = { .weight = 10001 };
    struct sched_limits over = { .rate_bps = 100, .reserve_bps = 101 };
    struct sched_item it = { .bytes = 1 };

    cr_assert_eq(sched_agent_add(s, 1, &ok), 0);
    cr_assert_eq(sched_agent_add(s, 1, NULL), -EEXIST);
    cr_assert_eq(sched_agent_add(s, 2, &heavy), -EINVAL);
    cr_assert_eq(sched_agent_add(s, 2, &over), -EINVAL);
    cr_assert_eq(sched_agent_set(s, 2, &ok), -ENOENT);
    cr_assert_eq(sched_agent_set(s, 1, &heavy), -EINVAL);
    cr_assert_eq(sched_agent_set(s, 1, &over), -EINVAL);
    cr_assert_eq(sched_agent_set(s, 1, NULL), 0);
    cr_assert_eq(sched_enqueue(s, 2, &it, 0), -ENOENT);
    struct sched_stats st;
    cr_assert_eq(sched_stats(s, 2, &st), -ENOENT);
    /* Many agents, added out of order, each found again. */
    for (uint64_t i = 1000; i > 10; i -= 7)
        cr_assert_eq(sched_agent_add(s, i, NULL), 0);
    for (uint64_t i = 1000; i > 10; i -= 7)
        cr_assert_eq(sched_stats(s, i, &st), 0);
    cr_assert_eq(sched_stats(s, 999, &st), -ENOENT);
    sched_free(s);
}

/* ---- pacing (closed-loop agents that are seldom all queued) ----
 *
 * Each agent keeps only a few reads outstanding and asks again a little
 * after each answer, while the engine lets many reads into the device: so
 * the scheduler's queues are mostly empty, as with FUSE readers, and DRR
 * alone has little to order. */

static void closed_loop(int ai, int maxout, uint64_t think)
{
    S.a[ai].maxout = maxout;
    S.a[ai].think = think;
}

static void pacing_on(void)
{
    S.pacing = true;
    sched_set_pacing(S.s, 1 * MiB, 2 * MS);
}

/* Shares over [from, to) of the three first agents. */
static void shares(uint64_t from, uint64_t to, double sh[3], double *total)
{
    sim_run(from);
    struct snap x = snap();
    sim_run(to);
    struct snap y = snap();
    double t = 0;
    for (int i = 0; i < 3; i++)
        t += (double)(y.bytes[i] - x.bytes[i]);
    for (int i = 0; i < 3; i++)
        sh[i] = (double)(y.bytes[i] - x.bytes[i]) / t;
    *total = t;
}

static void three_streams(bool pace, double sh[3], double *total)
{
    sim_init(0, 100 * MiB, 0, 16);
    if (pace)
        pacing_on();
    for (int i = 0; i < 3; i++) {
        int ai = sim_agent((uint64_t)i + 1, (uint32_t)(100 * (i + 1)), 0, 0, 0, 128 * KiB);
        closed_loop(ai, 2, 100000);
    }
    shares(1 * SEC, 31 * SEC, sh, total);
}

/* sched_symmetric: yes for alike streams; no with a light reader among
 * them (until SCHED_RECENT_NS after its last read), a different weight, a
 * limit, a reservation, a volume cap, or pacing off. */
Test(sched, symmetric_only_while_the_agents_reading_are_alike)
{
    sim_init(0, 100 * MiB, 0, 16);
    pacing_on();
    for (int i = 0; i < 2; i++)
        closed_loop(sim_agent((uint64_t)i + 1, 100, 0, 0, 0, 128 * KiB), 2, 100000);
    sim_run(1 * SEC);
    cr_assert(sched_symmetric(S.s, S.now), "two alike streams");

    int light = sim_agent(3, 100, 0, 0, 0, 4 * KiB);   /* one read per 20 ms */
    closed_loop(light, 1, 20 * MS);
    sim_run(2 * SEC);
    cr_assert(S.a[light].reads > 10, "the light reader read %llu times",
              (unsigned long long)S.a[light].reads);
    cr_assert(!sched_symmetric(S.s, S.now), "a light reader among the streams");
    S.a[light].on = false;
    sim_run(2 * SEC + SCHED_RECENT_NS / 2);
    cr_assert(!sched_symmetric(S.s, S.now), "half the window after the light reader stopped");
    sim_run(2 * SEC + SCHED_RECENT_NS + 100 * MS);
    cr_assert(sched_symmetric(S.s, S.now), "a window after the light reader stopped");

    static const struct sched_limits unlike[] = {
        { .weight = 200 }, { .rate_bps = 500 * MiB }, { .iops = 100000 },
        { .reserve_bps = 10 * MiB },
    };
    const struct sched_limits plain = { .weight = 100 };
    for (size_t i = 0; i < sizeof(unlike) / sizeof(unlike[0]); i++) {
        cr_assert_eq(sched_agent_set(S.s, 2, &unlike[i]), 0);
        sim_run(S.now + 10 * MS);
        cr_assert(!sched_symmetric(S.s, S.now), "agent 2 with limits #%zu", i);
        cr_assert_eq(sched_agent_set(S.s, 2, &plain), 0);
        sim_run(S.now + 10 * MS);
        cr_assert(sched_symmetric(S.s, S.now), "agent 2 back to plain after #%zu", i);
    }
    sched_set_volume_rate(S.s, 1 * GiB);
    cr_assert(!sched_symmetric(S.s, S.now), "a volume cap");
    sched_set_volume_rate(S.s, 0);
    cr_assert(sched_symmetric(S.s, S.now), "the cap lifted");
    sched_set_pacing(S.s, 0, 0);
    cr_assert(!sched_symmetric(S.s, S.now), "pacing off");
    sim_fini();
}

/* A stream counts as one while it had two reads outstanding within the
 * last SCHED_RECENT_NS (so also across the pauses that make it rejoin);
 * one that has kept a single read outstanding for longer is a light
 * reader. */
Test(sched, symmetric_counts_a_stream_by_its_recent_reads)
{
    sim_init(0, 100 * MiB, 0, 16);
    pacing_on();
    closed_loop(sim_agent(1, 100, 0, 0, 0, 128 * KiB), 2, 100000);
    int b = sim_agent(2, 100, 0, 0, 0, 128 * KiB);
    closed_loop(b, 2, 100000);
    sim_run(1 * SEC);
    cr_assert(sched_symmetric(S.s, S.now), "two streams");
    closed_loop(b, 1, 100000);
    uint64_t since = S.now, reads = S.a[b].reads;
    sim_run(since + SCHED_RECENT_NS / 3);
    cr_assert(sched_symmetric(S.s, S.now), "a third of the window after its last two at once");
    sim_run(since + SCHED_RECENT_NS + 100 * MS);
    cr_assert(S.a[b].reads > reads + 100, "agent b read %llu times with one outstanding",
              (unsigned long long)(S.a[b].reads - reads));
    cr_assert(!sched_symmetric(S.s, S.now), "one read at a time for a whole window");
    sim_fini();
}

Test(sched, pacing_gives_weights_to_closed_loop_readers)
{
    double sh[3], t, sh0[3], t0;
    three_streams(false, sh0, &t0);
    sim_fini();
    three_streams(true, sh, &t);
    fprintf(stderr, "sched closed loop 100/200/300: DRR alone %.3f %.3f %.3f, "
            "paced %.4f %.4f %.4f (%.1f MiB/s)\n", sh0[0], sh0[1], sh0[2],
            sh[0], sh[1], sh[2], t / 30 / MiB);
    /* Without pacing the weights hardly show (the problem). */
    cr_assert(sh0[2] < 0.40, "DRR alone gave weight 300 %.3f", sh0[2]);
    assert_near(sh[0], 1 / 6.0, 0.02, "weight 100 share");
    assert_near(sh[1], 2 / 6.0, 0.02, "weight 200 share");
    assert_near(sh[2], 3 / 6.0, 0.02, "weight 300 share");
    /* The device stays busy: pacing only reorders while all contend. */
    cr_assert(t >= 0.97 * 30 * 100 * MiB, "paced total %.1f MiB/s", t / 30 / MiB);
    sim_fini();
}

/* A light reader (one 4 KiB read, then 20 ms of nothing) does not hold a
 * stream back: the stream keeps the device. */
static void stream_and_light(bool pace, double *hr, double *lr)
{
    sim_init(0, 100 * MiB, 0, 16);
    if (pace)
        pacing_on();
    int h = sim_agent(1, 100, 0, 0, 0, 128 * KiB);
    closed_loop(h, 4, 100000);
    int l = sim_agent(2, 100, 0, 0, 0, 4 * KiB);
    closed_loop(l, 1, 20 * MS);
    sim_run(1 * SEC);
    struct snap x = snap();
    sim_run(11 * SEC);
    struct snap y = snap();
    *hr = rate_between(&x, &y, h, 10 * SEC);
    *lr = rate_between(&x, &y, l, 10 * SEC);
    sim_fini();
}

Test(sched, pacing_does_not_wait_for_light_readers)
{
    double hr, lr, hr0, lr0;
    stream_and_light(false, &hr0, &lr0);
    stream_and_light(true, &hr, &lr);
    fprintf(stderr, "sched stream next to a light reader: paced %.1f MiB/s, light %.1f KiB/s; "
            "unpaced %.1f MiB/s, light %.1f KiB/s\n", hr / MiB, lr / KiB, hr0 / MiB, lr0 / KiB);
    cr_assert(hr + lr >= 0.98 * 100 * MiB, "stream %.1f MiB/s", hr / MiB);
    cr_assert(lr >= 0.95 * lr0, "light %.1f KiB/s, unpaced %.1f", lr / KiB, lr0 / KiB);
}

/* An agent held by its own rate limit does not hold the others back. */
Test(sched, pacing_and_a_limited_agent)
{
    sim_init(0, 100 * MiB, 0, 16);
    pacing_on();
    int a = sim_agent(1, 100, 10 * MiB, 0, 0, 128 * KiB);
    closed_loop(a, 2, 100000);
    int b = sim_agent(2, 100, 0, 0, 0, 128 * KiB);
    closed_loop(b, 2, 100000);
    sim_run(2 * SEC);
    struct snap x = snap();
    sim_run(22 * SEC);
    struct snap y = snap();
    double ar = rate_between(&x, &y, a, 20 * SEC), br = rate_between(&x, &y, b, 20 * SEC);
    fprintf(stderr, "sched paced, limited 10 MiB/s: %.3f of the limit; other %.1f MiB/s\n",
            ar / (10 * MiB), br / MiB);
    assert_near(ar, 10.0 * MiB, 0.01, "limited agent");
    cr_assert(br >= 0.97 * 90 * MiB, "other agent %.1f MiB/s", br / MiB);
    sim_fini();
}

/* An agent that stops reading stops holding the others within the idle
 * time; one that comes back after idling joins level (no banked credit:
 * its first second is an equal share, not a catch-up). */
Test(sched, pacing_stop_and_return)
{
    sim_init(0, 100 * MiB, 0, 16);
    pacing_on();
    int a = sim_agent(1, 100, 0, 0, 0, 128 * KiB);
    closed_loop(a, 2, 100000);
    int b = sim_agent(2, 100, 0, 0, 0, 128 * KiB);
    closed_loop(b, 2, 100000);
    sim_run(5 * SEC);
    S.a[b].on = false;
    sim_run(6 * SEC);
    struct snap x = snap();
    sim_run(16 * SEC);
    struct snap y = snap();
    double alone = rate_between(&x, &y, a, 10 * SEC);
    S.a[b].on = true;
    sim_run(17 * SEC);
    struct snap z = snap();
    double ra = (double)(z.bytes[a] - y.bytes[a]), rb = (double)(z.bytes[b] - y.bytes[b]);
    fprintf(stderr, "sched paced: alone %.1f MiB/s; first second back %.3f / %.3f\n",
            alone / MiB, ra / (ra + rb), rb / (ra + rb));
    cr_assert(alone >= 0.99 * 100 * MiB, "alone %.1f MiB/s", alone / MiB);
    assert_near(rb / (ra + rb), 0.5, 0.02, "returning agent's first second");
    sim_fini();
}
