/* daemon_i.h - internals of the volume daemon: sessions, the request loop,
 * the control socket.
 *
 * Threads (a fixed number, whatever the number of mounts):
 *   loop      epoll over every session's /dev/fuse fd and a signalfd; reads
 *             requests into per-session queues (loop.c)
 *   workers   take requests round-robin across sessions and process them
 *   control   serves STATE/control.sock and ends dead sessions (control.c)
 *
 * Locking: d->lock protects the session list, the dispatch queues and every
 * field marked "d->lock". A session is freed only by the control thread,
 * once it has ended, left the epoll set and has no request in flight.
 */
#ifndef LANEFS_DAEMON_I_H
#define LANEFS_DAEMON_I_H

#include <fuse_lowlevel.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <time.h>

#include "fs/ovl_i.h"
#include "fs/sched.h"
#include "fs/volume.h"

#define DMN_ID_BUCKETS 256     /* sessions by id, for the workers */

struct session {
    struct ovl_fs fs;          /* the view; FUSE userdata */
    struct daemon *d;
    struct fuse_session *se;
    int fd;                    /* the session's /dev/fuse fd */
    uint64_t id;
    char agent[VOL_AGENT_NAME_MAX + 1];
    char *mountpoint;
    bool ephemeral;
    time_t started;
    unsigned long long quota_bytes, quota_inodes;
    struct sched_limits read;

    const char *end_reason;    /* d->lock: why it ends; NULL: not asked */
    unsigned inflight;         /* d->lock: requests being read or processed */
    bool ended;                /* d->lock: no more requests are read */
    bool reaping;              /* d->lock: handed to the control thread */
    struct session *id_next;           /* d->lock: d->by_id chain, live only */
    struct session *next;              /* d->lock: d->sessions */
};

struct daemon {
    struct volume vol;
    int lock_fd;               /* STATE/daemon.lock, flock'ed */
    int epfd;                  /* the loop thread's: signals, wake-ups */
    int sess_epfd;             /* the workers': every live session's fd */
    int exit_fd;               /* eventfd: set, it stops every worker */
    int sig_fd;
    int wake_fd;               /* eventfd: wakes the loop (reaped, stop) */
    int reap_fd;               /* eventfd: wakes the control thread */
    int ctl_fd;                /* listening control socket */
    bool auto_exit;            /* exit when the last session has ended */
    bool ctl_started;
    time_t started;
    unsigned nworkers;
    pthread_t *workers;
    pthread_t ctl_thread;

    pthread_mutex_t lock;
    struct session *sessions;          /* lock */
    struct session *by_id[DMN_ID_BUCKETS];  /* lock: live sessions by id */
    uint64_t next_session;             /* lock */
    unsigned mounting;                 /* lock: mounts under way */
    bool stopping;                     /* lock */
};

/* ---- session.c ---- */
struct sess_opts {
    const char *agent, *mountpoint;
    bool ephemeral;
    unsigned long long quota_bytes, quota_inodes;
    struct sched_limits read;   /* shaping of its shared-data reads */
};
/* Opens the agent's view, mounts it and registers the session (session
 * file, list, epoll). Caller: the control thread. 0 or -errno with a
 * message in err. */
int  sess_start(struct daemon *d, const struct sess_opts *o, struct session **out,
                char *err, size_t errlen);
/* Ends s: unmounts it (lazy: MNT_DETACH) and records why; the loop then
 * sees the connection go. 0 or -errno (-EBUSY: files open, not lazy). */
int  sess_umount(struct session *s, bool lazy, const char *reason);
/* Tears down an ended session with nothing in flight: removes its temp
 * layer (and, if ephemeral, its upper), records the end, frees it. */
void sess_reap(struct session *s);
/* Finds a live session by agent or by mount point. Caller holds d->lock. */
/* Raises the mount's kernel read-ahead; call once its INIT is answered. */
void sess_tune_readahead(struct session *s);

struct session *sess_find(struct daemon *d, const char *agent, const char *mountpoint);

/* ---- loop.c ---- */
/* Starts the workers, which wait on the sessions' fds; 0 or -errno. */
int  loop_start_workers(struct daemon *d);
/* Adds a session's fd to the workers' epoll set. */
int  loop_add(struct daemon *d, struct session *s);
/* Marks s ended: no more reads; once nothing is in flight it is handed to
 * the control thread. Caller holds d->lock. */
void loop_end_locked(struct daemon *d, struct session *s, const char *reason);
/* Runs the loop until the daemon stops and every session is reaped. */
int  loop_run(struct daemon *d);
/* Stops the workers (after loop_run returned). */
void loop_join_workers(struct daemon *d);
/* Wakes the loop (a session was reaped, or the daemon should stop). */
void loop_wake(struct daemon *d);

/* ---- control.c ---- */
int  ctl_listen(struct daemon *d);
int  ctl_start(struct daemon *d);
void ctl_join(struct daemon *d);

#endif
