/* rreply.c - threads that answer the read engine's large reads (rreply.h). */
#include <errno.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdlib.h>

#include "fs/rreply.h"

struct item {
    void *item;
    int res;
    struct item *next;
};

struct rreply {
    rreply_fn *answer;
    unsigned nthreads;
    pthread_t *threads;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    struct item *head, *tail;     /* mu */
    bool stop;                    /* mu */
};

static void *reply_main(void *arg)
{
    struct rreply *p = arg;
    pthread_mutex_lock(&p->mu);
    for (;;) {
        while (!p->head && !p->stop)
            pthread_cond_wait(&p->cv, &p->mu);
        struct item *it = p->head;
        if (!it)
            break;                /* stopping, and nothing left */
        p->head = it->next;
        if (!p->head)
            p->tail = NULL;
        pthread_mutex_unlock(&p->mu);
        p->answer(it->item, it->res);
        free(it);
        pthread_mutex_lock(&p->mu);
    }
    pthread_mutex_unlock(&p->mu);
    return NULL;
}

/* Stops the first n threads, which have drained the queue, and frees p. */
static void stop_threads(struct rreply *p, unsigned n)
{
    pthread_mutex_lock(&p->mu);
    p->stop = true;
    pthread_cond_broadcast(&p->cv);
    pthread_mutex_unlock(&p->mu);
    for (unsigned i = 0; i < n; i++)
        pthread_join(p->threads[i], NULL);
    pthread_mutex_destroy(&p->mu);
    pthread_cond_destroy(&p->cv);
    free(p->threads);
    free(p);
}

int rreply_start(struct rreply **out, unsigned nthreads, rreply_fn *answer)
{
    struct rreply *p = calloc(1, sizeof(*p));
    if (!p)
        return -ENOMEM;
    p->answer = answer;
    p->nthreads = nthreads ? nthreads : 1;
    p->threads = calloc(p->nthreads, sizeof(*p->threads));
    if (!p->threads) {
        free(p);
        return -ENOMEM;
    }
    pthread_mutex_init(&p->mu, NULL);
    pthread_cond_init(&p->cv, NULL);
    for (unsigned i = 0; i < p->nthreads; i++) {
        int rc = pthread_create(&p->threads[i], NULL, reply_main, p);
        if (rc) {
            stop_threads(p, i);
            return -rc;
        }
    }
    *out = p;
    return 0;
}

int rreply_push(struct rreply *p, void *item, int res)
{
    struct item *it = malloc(sizeof(*it));
    if (!it)
        return -ENOMEM;
    it->item = item;
    it->res = res;
    it->next = NULL;
    pthread_mutex_lock(&p->mu);
    if (p->tail)
        p->tail->next = it;
    else
        p->head = it;
    p->tail = it;
    pthread_cond_signal(&p->cv);
    pthread_mutex_unlock(&p->mu);
    return 0;
}

unsigned rreply_threads(const struct rreply *p)
{
    return p ? p->nthreads : 0;
}

void rreply_stop(struct rreply *p)
{
    if (p)
        stop_threads(p, p->nthreads);
}
