/* Unit tests for fs/rreply.c, the threads that answer the read engine's
 * spliced reads: every item answered exactly once with its result, never on
 * the thread that pushed it, in push order with one thread; answers run on
 * several threads at once; and stopping answers what is still queued. */
#include <criterion/criterion.h>

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <time.h>
#include <unistd.h>

#include "fs/rreply.h"

#define ITEMS 2000

struct rec {
    pthread_mutex_t mu;
    pthread_cond_t cv;
    int count[ITEMS];             /* answers per item */
    int res[ITEMS];
    int order[ITEMS];             /* items in the order answered */
    int n;
    bool on_pusher;               /* an answer ran on the pushing thread */
    pthread_t pusher;
    /* Gate: answers wait until it opens (the stop test). */
    bool gated, open;
    /* Meeting: answers wait (bounded) until this many run at once. */
    int meet, running, most;
    bool met;
};

static struct rec R;

static void rec_reset(void)
{
    static const struct rec blank;
    R = blank;
    pthread_mutex_init(&R.mu, NULL);
    pthread_cond_init(&R.cv, NULL);
    R.pusher = pthread_self();
}

static void answer(void *item, int res)
{
    int i = (int)(intptr_t)item;
    pthread_mutex_lock(&R.mu);
    if (pthread_equal(pthread_self(), R.pusher))
        R.on_pusher = true;
    while (R.gated && !R.open)
        pthread_cond_wait(&R.cv, &R.mu);
    if (R.meet) {
        if (++R.running > R.most)
            R.most = R.running;
        if (R.running == R.meet)
            R.met = true;
        pthread_cond_broadcast(&R.cv);
        struct timespec until;
        clock_gettime(CLOCK_REALTIME, &until);
        until.tv_sec += 2;        /* a lone thread fails the test, not hangs */
        while (!R.met && pthread_cond_timedwait(&R.cv, &R.mu, &until) == 0)
            ;
        R.running--;
    }
    R.count[i]++;
    R.res[i] = res;
    R.order[R.n++] = i;
    pthread_mutex_unlock(&R.mu);
}

Test(rreply, every_item_answered_once_with_its_result_off_the_pushing_thread)
{
    rec_reset();
    struct rreply *p;
    cr_assert_eq(rreply_start(&p, 3, answer), 0);
    for (int i = 0; i < ITEMS; i++)
        cr_assert_eq(rreply_push(p, (void *)(intptr_t)i, i * 7 + 1), 0);
    rreply_stop(p);
    cr_assert_eq(R.n, ITEMS, "%d of %d answered", R.n, ITEMS);
    for (int i = 0; i < ITEMS; i++) {
        cr_assert_eq(R.count[i], 1, "item %d answered %d times", i, R.count[i]);
        cr_assert_eq(R.res[i], i * 7 + 1, "item %d answered with %d", i, R.res[i]);
    }
    cr_assert(!R.on_pusher, "an item was answered on the thread that pushed it");
}

Test(rreply, one_thread_answers_in_push_order)
{
    rec_reset();
    struct rreply *p;
    cr_assert_eq(rreply_start(&p, 1, answer), 0);
    for (int i = 0; i < ITEMS; i++)
        cr_assert_eq(rreply_push(p, (void *)(intptr_t)i, 0), 0);
    rreply_stop(p);
    cr_assert_eq(R.n, ITEMS);
    for (int i = 0; i < ITEMS; i++)
        cr_assert_eq(R.order[i], i, "answer %d was of item %d", i, R.order[i]);
}

/* The point of the pool: one answer's copy does not wait for another's. */
Test(rreply, answers_run_on_several_threads_at_once)
{
    rec_reset();
    R.meet = 2;
    struct rreply *p;
    cr_assert_eq(rreply_start(&p, 2, answer), 0);
    cr_assert_eq(rreply_push(p, (void *)(intptr_t)0, 0), 0);
    cr_assert_eq(rreply_push(p, (void *)(intptr_t)1, 0), 0);
    rreply_stop(p);
    cr_assert_eq(R.n, 2);
    cr_assert_eq(R.most, 2, "the two answers never ran at once");
}

/* A daemon that stops still answers every read it holds, else a reader
 * would wait on its request forever: stop is asked while both threads are
 * held in an answer and 48 items wait behind them. */
static void *stopper(void *p)
{
    rreply_stop(p);
    return NULL;
}

Test(rreply, stop_answers_what_is_still_queued)
{
    rec_reset();
    R.gated = true;
    struct rreply *p;
    cr_assert_eq(rreply_start(&p, 2, answer), 0);
    for (int i = 0; i < 50; i++)
        cr_assert_eq(rreply_push(p, (void *)(intptr_t)i, 0), 0);
    pthread_t t;
    cr_assert_eq(pthread_create(&t, NULL, stopper, p), 0);
    usleep(100 * 1000);           /* stop has been asked by now */
    pthread_mutex_lock(&R.mu);
    cr_assert_eq(R.n, 0, "answered while the gate was shut");
    R.open = true;
    pthread_cond_broadcast(&R.cv);
    pthread_mutex_unlock(&R.mu);
    pthread_join(t, NULL);
    cr_assert_eq(R.n, 50, "%d of 50 answered by the time stop returned", R.n);
}

Test(rreply, stop_of_null_is_a_no_op)
{
    rreply_stop(NULL);
}
