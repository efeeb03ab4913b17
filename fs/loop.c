/* loop.c - one event loop over every session's /dev/fuse fd, and a fixed
 * pool of workers that serve the sessions round-robin.
 *
 * The loop thread reads requests into a small queue per session (at most
 * DMN_QUEUE_MAX; a full queue leaves the fd disarmed, so an agent that
 * floods requests waits in its own kernel queue). A session with queued
 * requests sits once on the ready list; a worker takes the session at the
 * head, processes one request and puts the session back at the tail if it
 * has more. So backlogged agents get workers in turn, one request each,
 * however many requests any one of them sends. */
#include <errno.h>
#include <limits.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/mount.h>
#include <sys/eventfd.h>
#include <sys/signalfd.h>
#include <unistd.h>

#include "fs/daemon_i.h"
#include "fs/events.h"
#include "fs/leaseops.h"
#include "fs/log.h"
#include "locks/lease.h"

#define POOL_MAX 64            /* request buffers kept for reuse */

static bool workers_exit;      /* d->lock */

static struct dmn_req *req_get_locked(struct daemon *d)
{
    struct dmn_req *r = d->pool;
    if (r) {
        d->pool = r->next;
        d->pool_n--;
        r->next = NULL;
        return r;
    }
    return calloc(1, sizeof(*r));   /* libfuse sizes buf.mem on first use */
}

static void req_put_locked(struct daemon *d, struct dmn_req *r)
{
    if (d->pool_n >= POOL_MAX) {
        free(r->buf.mem);
        free(r);
        return;
    }
    r->next = d->pool;
    d->pool = r;
    d->pool_n++;
}

static void ready_push_locked(struct daemon *d, struct session *s)
{
    if (s->in_ready)
        return;
    s->in_ready = true;
    s->ready_next = NULL;
    if (d->ready_tail)
        d->ready_tail->ready_next = s;
    else
        d->ready_head = s;
    d->ready_tail = s;
    pthread_cond_signal(&d->work_cv);
}

static void ready_remove_locked(struct daemon *d, struct session *s)
{
    struct session **pp = &d->ready_head, *prev = NULL;
    while (*pp && *pp != s) {
        prev = *pp;
        pp = &(*pp)->ready_next;
    }
    if (!*pp)
        return;
    *pp = s->ready_next;
    if (d->ready_tail == s)
        d->ready_tail = prev;
    s->in_ready = false;
}

static void arm_locked(struct daemon *d, struct session *s)
{
    struct epoll_event ev = { .events = EPOLLIN | EPOLLONESHOT, .data.ptr = s };
    s->armed = epoll_ctl(d->epfd, EPOLL_CTL_MOD, s->fd, &ev) == 0;
}

static void post_reap_locked(struct daemon *d, struct session *s)
{
    uint64_t one = 1;
    if (s->reaping)
        return;
    s->reaping = true;
    if (write(d->reap_fd, &one, sizeof(one)) < 0) { /* counter saturated: woken anyway */ }
}

void loop_wake(struct daemon *d)
{
    uint64_t one = 1;
    if (write(d->wake_fd, &one, sizeof(one)) < 0) { /* already pending */ }
}

void loop_end_locked(struct daemon *d, struct session *s, const char *reason)
{
    if (s->ended)
        return;
    s->ended = true;
    if (!s->end_reason)
        s->end_reason = reason;
    epoll_ctl(d->epfd, EPOLL_CTL_DEL, s->fd, NULL);
    s->armed = false;
    ready_remove_locked(d, s);
    while (s->q_head) {        /* the connection is gone: nobody to answer */
        struct dmn_req *r = s->q_head;
        s->q_head = r->next;
        req_put_locked(d, r);
    }
    s->q_tail = NULL;
    s->q_len = 0;
    if (s->inflight == 0)
        post_reap_locked(d, s);
}

int loop_add(struct daemon *d, struct session *s)
{
    int fl = fcntl(s->fd, F_GETFL);
    if (fl < 0 || fcntl(s->fd, F_SETFL, fl | O_NONBLOCK) < 0)
        return -errno;
    struct epoll_event ev = { .events = EPOLLIN | EPOLLONESHOT, .data.ptr = s };
    pthread_mutex_lock(&d->lock);
    int rc = epoll_ctl(d->epfd, EPOLL_CTL_ADD, s->fd, &ev) < 0 ? -errno : 0;
    s->armed = rc == 0;
    pthread_mutex_unlock(&d->lock);
    return rc;
}

/* Reads what s has ready, up to a full queue. Runs on the loop thread. */
static void on_readable(struct daemon *d, struct session *s)
{
    for (;;) {
        pthread_mutex_lock(&d->lock);
        if (s->ended || s->q_len >= DMN_QUEUE_MAX) {
            s->armed = false;   /* a worker re-arms once the queue drains */
            pthread_mutex_unlock(&d->lock);
            return;
        }
        struct dmn_req *r = req_get_locked(d);
        pthread_mutex_unlock(&d->lock);
        if (!r) {
            log_say("out of memory reading a request of %s", s->agent);
            pthread_mutex_lock(&d->lock);
            arm_locked(d, s);
            pthread_mutex_unlock(&d->lock);
            return;
        }
        r->buf.flags = 0;
        int res = fuse_session_receive_buf(s->se, &r->buf);

        pthread_mutex_lock(&d->lock);
        if (res == -EINTR) {
            req_put_locked(d, r);
            pthread_mutex_unlock(&d->lock);
            continue;
        }
        if (res == -EAGAIN || (res < 0 && !fuse_session_exited(s->se))) {
            req_put_locked(d, r);
            if (res != -EAGAIN)
                log_say("session %llu: reading a request: %s",
                        (unsigned long long)s->id, strerror(-res));
            arm_locked(d, s);
            pthread_mutex_unlock(&d->lock);
            return;
        }
        if (res <= 0) {         /* unmounted, or the connection aborted */
            req_put_locked(d, r);
            loop_end_locked(d, s, "external-umount");
            pthread_mutex_unlock(&d->lock);
            return;
        }
        if (s->q_tail)
            s->q_tail->next = r;
        else
            s->q_head = r;
        s->q_tail = r;
        s->q_len++;
        ready_push_locked(d, s);
        pthread_mutex_unlock(&d->lock);
    }
}

static void *worker_main(void *arg)
{
    struct daemon *d = arg;
    pthread_mutex_lock(&d->lock);
    for (;;) {
        while (!d->ready_head && !workers_exit)
            pthread_cond_wait(&d->work_cv, &d->lock);
        if (workers_exit)
            break;
        struct session *s = d->ready_head;
        d->ready_head = s->ready_next;
        if (!d->ready_head)
            d->ready_tail = NULL;
        s->in_ready = false;
        struct dmn_req *r = s->q_head;
        if (!r)
            continue;
        s->q_head = r->next;
        if (!s->q_head)
            s->q_tail = NULL;
        s->q_len--;
        s->inflight++;
        if (s->q_len)
            ready_push_locked(d, s);    /* to the tail: the others go first */
        if (!s->armed && !s->ended && s->q_len < DMN_QUEUE_MAX)
            arm_locked(d, s);
        pthread_mutex_unlock(&d->lock);

        fuse_session_process_buf(s->se, &r->buf);
        if (__atomic_exchange_n(&s->fs.readahead_pending, false, __ATOMIC_ACQ_REL))
            sess_tune_readahead(s);

        pthread_mutex_lock(&d->lock);
        req_put_locked(d, r);
        s->inflight--;
        if (s->ended && s->inflight == 0)
            post_reap_locked(d, s);
    }
    pthread_mutex_unlock(&d->lock);
    return NULL;
}

int loop_start_workers(struct daemon *d)
{
    d->workers = calloc(d->nworkers, sizeof(*d->workers));
    if (!d->workers)
        return -ENOMEM;
    for (unsigned i = 0; i < d->nworkers; i++) {
        int rc = pthread_create(&d->workers[i], NULL, worker_main, d);
        if (rc) {
            d->nworkers = i;
            return -rc;
        }
    }
    return 0;
}

void loop_join_workers(struct daemon *d)
{
    pthread_mutex_lock(&d->lock);
    workers_exit = true;
    pthread_cond_broadcast(&d->work_cv);
    pthread_mutex_unlock(&d->lock);
    for (unsigned i = 0; i < d->nworkers; i++)
        pthread_join(d->workers[i], NULL);
    free(d->workers);
    d->workers = NULL;
    while (d->pool) {
        struct dmn_req *r = d->pool;
        d->pool = r->next;
        free(r->buf.mem);
        free(r);
    }
    d->pool_n = 0;
}

/* Detaches every mount and ends every session (reason "shutdown"). */
static void stop_all_locked(struct daemon *d)
{
    d->stopping = true;
    for (struct session *s = d->sessions; s; s = s->next) {
        if (s->ended)
            continue;
        if (!s->end_reason)
            s->end_reason = "shutdown";
        umount2(s->mountpoint, MNT_DETACH);
        loop_end_locked(d, s, "shutdown");
    }
}

static void log_expired(void *arg, const char *key, const char *agent,
                        enum lease_mode mode, uint64_t epoch, int64_t ms_left)
{
    struct daemon *d = arg;
    char detail[PATH_MAX + 64];
    (void)ms_left;
    log_say("lease: %s lease of agent %s on %s expired (epoch %llu)",
            lease_mode_name(mode), agent, key, (unsigned long long)epoch);
    if (!d->vol.journal)
        return;
    /* An expired lease was not released: the journal counts it a leak. */
    snprintf(detail, sizeof(detail), "%s epoch=%llu key=%s", lease_mode_name(mode),
             (unsigned long long)epoch, key);
    struct journal_event ev = ev_blank("lease_expire");
    ev.agent = agent;
    ev.detail = detail;
    const char *p = strchr(key, '/');
    ev.path = p;                /* the view path in the key */
    journal_log(d->vol.journal, &ev);
}

int loop_run(struct daemon *d)
{
    struct epoll_event evs[64];
    uint64_t next_sweep = 0;
    for (;;) {
        /* Expired leases go within a second of their end. */
        uint64_t now = leaseops_now_ms();
        if (now >= next_sweep) {
            lease_sweep(d->vol.leases, now, log_expired, d);
            next_sweep = now + 1000;
        }
        pthread_mutex_lock(&d->lock);
        if (d->auto_exit && !d->sessions && !d->mounting && !d->stopping) {
            log_say("no session left: stopping");
            d->stopping = true;
        }
        bool done = d->stopping && !d->sessions;
        pthread_mutex_unlock(&d->lock);
        if (done)
            return 0;

        int n = epoll_wait(d->epfd, evs, 64, 1000);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            log_say("epoll_wait: %s", strerror(errno));
            return -errno;
        }
        for (int i = 0; i < n; i++) {
            void *p = evs[i].data.ptr;
            if (p == &d->sig_fd) {
                struct signalfd_siginfo si;
                if (read(d->sig_fd, &si, sizeof(si)) == sizeof(si))
                    log_say("signal %u: unmounting every session", si.ssi_signo);
                pthread_mutex_lock(&d->lock);
                stop_all_locked(d);
                pthread_mutex_unlock(&d->lock);
            } else if (p == &d->wake_fd) {
                uint64_t v;
                if (read(d->wake_fd, &v, sizeof(v)) < 0) { /* spurious */ }
                pthread_mutex_lock(&d->lock);
                if (d->stopping)
                    stop_all_locked(d);   /* a shutdown request */
                pthread_mutex_unlock(&d->lock);
            } else {
                on_readable(d, p);
            }
        }
    }
}
