/* lockops.c - fcntl, OFD and flock locks of every mount served by one lock
 * table of the volume (locks/posix.h).
 *
 * A blocking request (F_SETLKW, flock without LOCK_NB) that cannot be
 * granted is parked: the worker returns at once, and the request is answered
 * later by whichever thread releases the lock in the way, or with EINTR when
 * the waiter is interrupted (a signal, SIGKILL) or its session ends.
 *
 * Exactly one reply per request: a parked waiter is answered only by the
 * thread that takes it off the list, under wait_mu. Before answering a
 * granted waiter its interrupt callback is unregistered, which waits for a
 * callback already running (libfuse runs it under the request's lock). */
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>

#include "fs/events.h"
#include "fs/lockops.h"
#include "fs/ovl_i.h"
#include "locks/posix.h"

struct lk_waiter {
    fuse_req_t req;
    struct lk_lock l;
    bool parked;              /* vol->lk_wait_mu: on vol->lk_waiters */
    bool cancelled;           /* vol->lk_wait_mu: interrupted before parking */
    struct volume *vol;
    struct lk_waiter *next;   /* vol->lk_wait_mu */
};

#define FS(req) ((struct ovl_fs *)fuse_req_userdata(req))

static struct ovl_handle *HANDLE(struct fuse_file_info *fi)
{
    return (struct ovl_handle *)(uintptr_t)fi->fh;
}

/* The table's name of the file open as fi. */
static int file_id(struct fuse_file_info *fi, uint64_t *dev, uint64_t *ino)
{
    struct stat st;
    if (fstat(HANDLE(fi)->fd, &st) < 0)
        return -errno;
    *dev = st.st_dev;
    *ino = st.st_ino;
    return 0;
}

static int lock_of(struct ovl_fs *fs, struct fuse_file_info *fi,
                   const struct flock *fl, struct lk_lock *l)
{
    memset(l, 0, sizeof(*l));
    int rc = file_id(fi, &l->dev, &l->ino);
    if (rc < 0)
        return rc;
    if (fl->l_start < 0 || fl->l_len < 0)
        return -EINVAL;
    l->kind = LK_POSIX;
    l->type = fl->l_type;
    l->start = (uint64_t)fl->l_start;
    l->end = fl->l_len == 0 ? LK_EOF : (uint64_t)(fl->l_start + fl->l_len - 1);
    l->session = fs->sid;
    l->owner = fi->lock_owner;
    l->pid = fl->l_pid;
    return 0;
}

static void unlink_waiter_locked(struct volume *v, struct lk_waiter *w)
{
    for (struct lk_waiter **pp = &v->lk_waiters; *pp; pp = &(*pp)->next)
        if (*pp == w) {
            *pp = w->next;
            break;
        }
    w->parked = false;
}

/* Answers waiters taken off the list: the callback goes first (it may be
 * running: unregistering waits for it), then the one reply. */
static void answer_all(struct lk_waiter *list, int err)
{
    while (list) {
        struct lk_waiter *w = list;
        list = w->next;
        fuse_req_interrupt_func(w->req, NULL, NULL);
        fuse_reply_err(w->req, err);
        free(w);
    }
}

void lockops_wake(struct volume *v)
{
    struct lk_waiter *granted = NULL, **tail = &granted;
    pthread_mutex_lock(&v->lk_wait_mu);
    for (struct lk_waiter **pp = &v->lk_waiters; *pp;) {
        struct lk_waiter *w = *pp;
        if (lk_set(v->locks, &w->l) != 0) {
            pp = &w->next;
            continue;
        }
        *pp = w->next;          /* first come, first served */
        w->parked = false;
        w->next = NULL;
        *tail = w;
        tail = &w->next;
    }
    pthread_mutex_unlock(&v->lk_wait_mu);
    answer_all(granted, 0);
}

/* A waiter's request was interrupted (the caller got a signal). */
static void on_interrupt(fuse_req_t req, void *data)
{
    struct lk_waiter *w = data;
    struct volume *v = w->vol;
    (void)req;
    pthread_mutex_lock(&v->lk_wait_mu);
    if (!w->parked) {
        w->cancelled = true;    /* not parked yet, or already answered */
        pthread_mutex_unlock(&v->lk_wait_mu);
        return;
    }
    unlink_waiter_locked(v, w);
    pthread_mutex_unlock(&v->lk_wait_mu);
    fuse_reply_err(w->req, EINTR);
    free(w);
}

/* Sets l for req: answers at once, or parks the request when it must
 * wait. */
static void set_or_park(fuse_req_t req, struct ovl_fs *fs, const struct lk_lock *l,
                        bool sleep)
{
    struct volume *v = fs->vol;
    pid_t pid = fuse_req_ctx(req)->pid;     /* req may be gone once parked */
    struct lk_waiter *w = NULL;
    if (sleep && l->type != F_UNLCK) {
        if (!(w = calloc(1, sizeof(*w)))) {
            fuse_reply_err(req, ENOMEM);
            return;
        }
        w->req = req;
        w->l = *l;
        w->vol = v;
        fuse_req_interrupt_func(req, on_interrupt, w);
    }
    pthread_mutex_lock(&v->lk_wait_mu);
    int rc = (w && w->cancelled) ? -EINTR : lk_set(v->locks, l);
    if (rc == -EAGAIN && w) {
        w->parked = true;       /* answered by lockops_wake or on_interrupt */
        w->next = NULL;
        struct lk_waiter **pp = &v->lk_waiters;
        while (*pp)
            pp = &(*pp)->next;
        *pp = w;
        pthread_mutex_unlock(&v->lk_wait_mu);
        ev_op(fs, "lock_wait", NULL, NULL, pid, l->kind == LK_FLOCK ? "flock" : "fcntl");
        return;
    }
    pthread_mutex_unlock(&v->lk_wait_mu);
    if (w) {
        fuse_req_interrupt_func(req, NULL, NULL);
        free(w);
    }
    fuse_reply_err(req, -rc);
    if (rc == 0 && l->type == F_UNLCK)
        lockops_wake(v);
}

void lockops_getlk(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi,
                   struct flock *fl)
{
    struct ovl_fs *fs = FS(req);
    struct lk_lock l, c;
    (void)ino;
    int rc = lock_of(fs, fi, fl, &l);
    if (rc < 0) {
        fuse_reply_err(req, -rc);
        return;
    }
    if (lk_test(fs->vol->locks, &l, &c)) {
        fl->l_type = (short)c.type;
        fl->l_whence = SEEK_SET;
        fl->l_start = (off_t)c.start;
        fl->l_len = c.end == LK_EOF ? 0 : (off_t)(c.end - c.start + 1);
        fl->l_pid = c.pid;
    } else {
        fl->l_type = F_UNLCK;
    }
    fuse_reply_lock(req, fl);
}

void lockops_setlk(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi,
                   struct flock *fl, int sleep)
{
    struct ovl_fs *fs = FS(req);
    struct lk_lock l;
    (void)ino;
    int rc = lock_of(fs, fi, fl, &l);
    if (rc == 0 && l.type != F_UNLCK)
        rc = handle_note_lock_owner(fs, HANDLE(fi), l.owner);
    if (rc < 0) {
        fuse_reply_err(req, -rc);
        return;
    }
    set_or_park(req, fs, &l, sleep);
}

void lockops_flock(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi, int op)
{
    struct ovl_fs *fs = FS(req);
    struct lk_lock l = { .kind = LK_FLOCK, .start = 0, .end = LK_EOF,
                         .session = fs->sid, .owner = fi->lock_owner };
    (void)ino;
    int rc = file_id(fi, &l.dev, &l.ino);
    if (rc < 0) {
        fuse_reply_err(req, -rc);
        return;
    }
    switch (op & ~LOCK_NB) {
    case LOCK_SH: l.type = F_RDLCK; break;
    case LOCK_EX: l.type = F_WRLCK; break;
    case LOCK_UN: l.type = F_UNLCK; break;
    default:
        fuse_reply_err(req, EINVAL);
        return;
    }
    set_or_park(req, fs, &l, !(op & LOCK_NB));
}

void lockops_release_owner(struct ovl_fs *fs, struct fuse_file_info *fi)
{
    uint64_t dev, ino;
    /* Every close() flushes: with no lock anywhere on the volume there is
     * nothing to drop, and no fstat to pay for it. */
    if (lk_count(fs->vol->locks) == 0 || file_id(fi, &dev, &ino) < 0)
        return;
    if (lk_release_owner(fs->vol->locks, dev, ino, LK_POSIX, fs->sid, fi->lock_owner))
        lockops_wake(fs->vol);
}

void lockops_release_handle(struct ovl_fs *fs, struct fuse_file_info *fi)
{
    struct ovl_handle *h = HANDLE(fi);
    uint64_t dev, ino;
    unsigned n = 0;
    if (!h->n_lk_owners || file_id(fi, &dev, &ino) < 0)
        return;
    /* The last reference to the open file: its OFD locks go (an fcntl
     * lock of a process went already at its close). */
    for (unsigned i = 0; i < h->n_lk_owners; i++)
        n += lk_release_owner(fs->vol->locks, dev, ino, LK_POSIX, fs->sid,
                              h->lk_owners[i]);
    if (fi->flock_release)
        n += lk_release_owner(fs->vol->locks, dev, ino, LK_FLOCK, fs->sid,
                              fi->lock_owner);
    if (n)
        lockops_wake(fs->vol);
}

unsigned lockops_session_end(struct volume *v, uint64_t sid)
{
    struct lk_waiter *gone = NULL;
    pthread_mutex_lock(&v->lk_wait_mu);
    for (struct lk_waiter **pp = &v->lk_waiters; *pp;) {
        struct lk_waiter *w = *pp;
        if (w->l.session != sid) {
            pp = &w->next;
            continue;
        }
        *pp = w->next;
        w->parked = false;
        w->next = gone;
        gone = w;
    }
    pthread_mutex_unlock(&v->lk_wait_mu);
    answer_all(gone, EINTR);    /* the connection is gone: this frees them */
    unsigned n = lk_release_session(v->locks, sid);
    if (n)
        lockops_wake(v);
    return n;
}
