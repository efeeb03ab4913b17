/* loop.c - a fixed pool of workers serving every session's /dev/fuse fd,
 * and the daemon's loop for signals, wake-ups and lease expiry.
 *
 * The workers wait together on one epoll set of the sessions' fds, each
 * armed one-shot. A worker that gets a session reads one request, re-arms
 * the fd (a still readable fd goes to the tail of epoll's ready list) and
 * processes the request itself: no hand-off between threads on the way.
 * So backlogged agents get workers in turn, one request each, however many
 * requests any one of them sends; what an agent floods waits in its own
 * kernel queue. Events carry the session's id, not a pointer: a worker
 * looks the id up under d->lock and counts itself in flight there, so a
 * session ended meanwhile is never touched after it was freed. */
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
#include "fs/rengine.h"
#include "locks/lease.h"

#define EXIT_TOKEN UINT64_MAX   /* epoll data of exit_fd; no session's id */

static struct session **id_slot_locked(struct daemon *d, uint64_t id)
{
    struct session **pp = &d->by_id[id % DMN_ID_BUCKETS];
    while (*pp && (*pp)->id != id)
        pp = &(*pp)->id_next;
    return pp;
}

/* Re-arms s's fd. Needs no lock: the caller is in flight on s, so its fd
 * stays open; once s has ended the fd is out of the set and this fails
 * with ENOENT, which is no error. */
static void arm(struct daemon *d, struct session *s)
{
    struct epoll_event ev = { .events = EPOLLIN | EPOLLONESHOT, .data.u64 = s->id };
    if (epoll_ctl(d->sess_epfd, EPOLL_CTL_MOD, s->fd, &ev) < 0 && errno != ENOENT)
        log_say("session %llu: cannot re-arm its fd: %s",
                (unsigned long long)s->id, strerror(errno));
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
    epoll_ctl(d->sess_epfd, EPOLL_CTL_DEL, s->fd, NULL);
    struct session **pp = id_slot_locked(d, s->id);
    if (*pp)
        *pp = s->id_next;
    if (s->inflight == 0)
        post_reap_locked(d, s);
}

int loop_add(struct daemon *d, struct session *s)
{
    int fl = fcntl(s->fd, F_GETFL);
    if (fl < 0 || fcntl(s->fd, F_SETFL, fl | O_NONBLOCK) < 0)
        return -errno;
    struct epoll_event ev = { .events = EPOLLIN | EPOLLONESHOT, .data.u64 = s->id };
    pthread_mutex_lock(&d->lock);
    s->id_next = NULL;
    *id_slot_locked(d, s->id) = s;
    int rc = epoll_ctl(d->sess_epfd, EPOLL_CTL_ADD, s->fd, &ev) < 0 ? -errno : 0;
    if (rc < 0)
        *id_slot_locked(d, s->id) = NULL;
    pthread_mutex_unlock(&d->lock);
    return rc;
}

/* Reads one request of s into buf and re-arms s, or ends s when its
 * connection is gone. True when buf holds a request to process. */
static bool read_request(struct daemon *d, struct session *s, struct fuse_buf *buf)
{
    buf->flags = 0;
    int res = fuse_session_receive_buf(s->se, buf);
    bool gone = res == 0 || (res < 0 && res != -EINTR && res != -EAGAIN &&
                             fuse_session_exited(s->se));
    if (res < 0 && !gone && res != -EINTR && res != -EAGAIN)
        log_say("session %llu: reading a request: %s", (unsigned long long)s->id,
                strerror(-res));
    if (gone) {             /* unmounted, or the connection aborted */
        pthread_mutex_lock(&d->lock);
        loop_end_locked(d, s, "external-umount");
        pthread_mutex_unlock(&d->lock);
    } else {
        arm(d, s);          /* its next request goes to the next free worker */
    }
    return res > 0;
}

static void *worker_main(void *arg)
{
    struct daemon *d = arg;
    struct fuse_buf buf = { 0 };     /* libfuse sizes buf.mem on first use */
    struct rlocal *ring = NULL;      /* reads of a lone agent (rlocal.c) */
    if (d->vol.rengine && rlocal_start(d->vol.rengine, &ring) < 0)
        ring = NULL;
    for (;;) {
        struct epoll_event ev;
        int n = rlocal_wait(ring, d->sess_epfd, &ev);
        if (n == -EINTR)
            continue;
        if (n < 0) {
            log_say("worker: waiting for requests: %s", strerror(-n));
            break;
        }
        if (n == 0)
            continue;
        if (ev.data.u64 == EXIT_TOKEN)
            break;
        pthread_mutex_lock(&d->lock);
        struct session *s = *id_slot_locked(d, ev.data.u64);
        if (s)
            s->inflight++;
        pthread_mutex_unlock(&d->lock);
        if (!s)
            continue;       /* ended since the event: its fd is gone */

        if (read_request(d, s, &buf)) {
            fuse_session_process_buf(s->se, &buf);
            if (__atomic_exchange_n(&s->fs.readahead_pending, false, __ATOMIC_ACQ_REL))
                sess_tune_readahead(s);
        }

        pthread_mutex_lock(&d->lock);
        s->inflight--;
        if (s->ended && s->inflight == 0)
            post_reap_locked(d, s);
        pthread_mutex_unlock(&d->lock);
    }
    rlocal_stop(ring);
    free(buf.mem);
    return NULL;
}

int loop_start_workers(struct daemon *d)
{
    struct epoll_event ev = { .events = EPOLLIN, .data.u64 = EXIT_TOKEN };
    d->sess_epfd = epoll_create1(EPOLL_CLOEXEC);
    d->exit_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
    if (d->sess_epfd < 0 || d->exit_fd < 0 ||
        epoll_ctl(d->sess_epfd, EPOLL_CTL_ADD, d->exit_fd, &ev) < 0)
        return -errno;
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
    uint64_t one = 1;
    /* Level-triggered and never read: every worker sees it. */
    if (d->exit_fd >= 0 && write(d->exit_fd, &one, sizeof(one)) < 0) { /* set already */ }
    for (unsigned i = 0; d->workers && i < d->nworkers; i++)
        pthread_join(d->workers[i], NULL);
    free(d->workers);
    d->workers = NULL;
    if (d->exit_fd >= 0)
        close(d->exit_fd);
    if (d->sess_epfd >= 0)
        close(d->sess_epfd);
    d->exit_fd = d->sess_epfd = -1;
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
            }
        }
    }
}
