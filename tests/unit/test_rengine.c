/* Unit tests for the read engine's routing (fs/rengine.c): which reads go
 * to a worker's own ring and which to the scheduler (rengine_route), and
 * how a light read timed on a worker's ring reaches the latency guard
 * (re_small_done). Both run against a real engine thread with its ring;
 * no read is submitted. The routing depends on time only through "two
 * agents read within 10 ms", which back-to-back calls always are. */
#include <criterion/criterion.h>

#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <time.h>

#include "fs/rengine_i.h"

#define AGENT_A 1u
#define AGENT_B 2u

static struct rengine *engine;

static void start(void)
{
    cr_assert_eq(rengine_start(&engine, 8), 0, "the engine did not start");
}

static void stop(void)
{
    rengine_stop(engine);
    engine = NULL;
}

static const char *route_name(enum re_route r)
{
    return r == RE_ROUTE_ENGINE ? "engine" : r == RE_ROUTE_HERE ? "here" : "here, small";
}

static void expect_route(uint64_t agent, bool unlimited, size_t size, uint64_t busy,
                         enum re_route want, const char *what)
{
    enum re_route got = rengine_route(engine, agent, unlimited, size, busy);
    cr_assert_eq(got, want, "%s: routed %s, want %s", what, route_name(got), route_name(want));
}

/* Makes the volume shared: b reads right after a. */
static void share(void)
{
    (void)rengine_route(engine, AGENT_A, true, 4096, 0);
    (void)rengine_route(engine, AGENT_B, true, 4096, 0);
}

Test(rengine, route_by_sharing_size_unanswered_limits_and_cap,
     .init = start, .fini = stop)
{
    /* Alone: every read of an agent without limits, whatever its size. */
    expect_route(AGENT_A, true, 4096, 0, RE_ROUTE_HERE, "a alone, small");
    expect_route(AGENT_A, true, 1 << 20, 7, RE_ROUTE_HERE, "a alone, large, 7 unanswered");
    expect_route(AGENT_A, false, 4096, 0, RE_ROUTE_ENGINE, "a alone with a limit");

    /* Shared: only light reads pass. */
    share();
    expect_route(AGENT_A, true, 4096, 0, RE_ROUTE_HERE_SMALL, "shared, 4 KiB, none unanswered");
    expect_route(AGENT_B, true, RGUARD_SMALL, 3, RE_ROUTE_HERE_SMALL,
                 "shared, RGUARD_SMALL bytes, 3 unanswered");
    expect_route(AGENT_A, true, RGUARD_SMALL, 4, RE_ROUTE_ENGINE, "shared, 4 unanswered");
    expect_route(AGENT_B, true, RGUARD_SMALL + 1, 0, RE_ROUTE_ENGINE,
                 "shared, one byte over RGUARD_SMALL");
    expect_route(AGENT_A, false, 4096, 0, RE_ROUTE_ENGINE, "shared, with a limit");

    /* A volume cap: everything is scheduled, shared or not. */
    rengine_set_volume_rate(engine, 100u << 20);
    share();
    expect_route(AGENT_A, true, 4096, 0, RE_ROUTE_ENGINE, "capped, shared, small");
    rengine_set_volume_rate(engine, 0);
    share();
    expect_route(AGENT_B, true, 4096, 0, RE_ROUTE_HERE_SMALL, "cap lifted, shared, small");

    /* 100 ms after the last read of another agent, a is alone again. */
    (void)rengine_route(engine, AGENT_A, true, 4096, 0);
    struct timespec pause = { 0, 150 * 1000 * 1000 };
    nanosleep(&pause, NULL);
    expect_route(AGENT_A, true, 4096, 0, RE_ROUTE_HERE, "a alone again after 150 ms");
}

/* The guard's counters, after the engine thread has had its next round:
 * a command (the stats) is carried out at the start of a round. */
static struct rguard_stats guard_now(void)
{
    struct rguard_stats st;
    rengine_guard_stats(engine, &st);     /* this round takes the report */
    rengine_guard_stats(engine, &st);     /* and this one shows it */
    return st;
}

Test(rengine, light_read_on_a_ring_starts_the_guard_only_from_the_device,
     .init = start, .fini = stop)
{
    struct re_read r = { .size = 4096 };

    /* Answered in microseconds: from the page cache. */
    r.sub_ns = re_now_ns();
    re_small_done(engine, &r);
    struct rguard_stats st = guard_now();
    cr_assert_eq(st.engaged, 0, "a read answered at once started the guard");

    /* 5 ms from submission: it went to the device. */
    r.sub_ns = re_now_ns() - 5000000u;
    re_small_done(engine, &r);
    st = guard_now();
    cr_assert_eq(st.engaged, 1, "a device read on a worker's ring: engaged %llu, want 1",
                 (unsigned long long)st.engaged);
    cr_assert(st.active, "the guard does not hold right after a device read");

    /* Turned off: reports are ignored. */
    rengine_set_guard(engine, false);
    struct timespec pause = { 0, 250 * 1000 * 1000 };   /* past the 200 ms hold */
    nanosleep(&pause, NULL);
    r.sub_ns = re_now_ns() - 5000000u;
    re_small_done(engine, &r);
    st = guard_now();
    cr_assert_eq(st.engaged, 1, "the guard started while off (engaged %llu)",
                 (unsigned long long)st.engaged);
    cr_assert(!st.active, "the guard holds while off");
}

/* A spliced read whose splice the layer's filesystem refuses (EINVAL
 * before any byte) is queued again as a read into memory; a read that got
 * bytes, or a small one, is not spliced or not turned back. The read is
 * put on a ring of the test's own and never submitted. */
Test(rengine, refused_splice_becomes_a_read_into_memory, .init = start, .fini = stop)
{
    struct io_uring ring;
    cr_assert_eq(io_uring_queue_init(4, &ring, 0), 0);
    struct re_count mine = { 0 };
    struct re_read *r = re_read_new(engine, NULL, AGENT_A, 0, 0, 256 * 1024, &mine, true);
    cr_assert_not_null(r);
    cr_assert(r->pipe[0] >= 0 && !r->buf, "a 256 KiB read was not given a pipe");
    cr_assert(re_read_submit(&ring, r));
    struct io_uring_sqe *sqe = &ring.sq.sqes[0];
    cr_assert_eq(sqe->opcode, IORING_OP_SPLICE);

    cr_assert_not(re_read_progress(&ring, r, -EINVAL), "the refused splice ended the read");
    cr_assert(r->pipe[0] == -1 && r->buf, "the read still has a pipe, or no buffer");
    cr_assert_eq(ring.sq.sqes[1].opcode, IORING_OP_READ, "the read was not queued again");
    /* Refused again, now as a read: that is the read's error. */
    cr_assert(re_read_progress(&ring, r, -EINVAL));

    struct re_read *small = re_read_new(engine, NULL, AGENT_A, 0, 0, 4096, &mine, true);
    cr_assert(small->pipe[0] == -1 && small->buf, "a 4 KiB read was given a pipe");
    free(r->buf);
    free(r);
    free(small->buf);
    free(small);
    io_uring_queue_exit(&ring);
}
