/* session.c - one agent's mount, from mount to reaping.
 *
 * A session is numbered for the life of the volume (STATE/next_session),
 * announced by STATE/sessions/N while it lives and recorded in
 * STATE/sessions.log when it ends, so a crashed daemon's sessions can be
 * found and closed by recovery. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <unistd.h>

#include "fs/daemon_i.h"
#include "fs/events.h"
#include "fs/fuseio.h"
#include "fs/lockops.h"
#include "fs/log.h"
#include "fs/mountinfo.h"
#include "fs/ops.h"
#include "fs/rengine.h"
#include "fs/view.h"
#include "locks/lease.h"

/* Appends s to the option string with ',' and '\' escaped for fuse_opt. */
static void opt_escaped(char *buf, size_t len, const char *s)
{
    size_t u = strlen(buf);
    for (; *s && u + 2 < len; s++) {
        if (*s == ',' || *s == '\\')
            buf[u++] = '\\';
        buf[u++] = *s;
    }
    buf[u] = '\0';
}

/* Writes text to STATE/rel atomically (a temp name of its own, then
 * rename), so concurrent writers never clash. */
static int write_state_file(const struct daemon *d, const char *rel, const char *text)
{
    static unsigned long seq;
    char p[PATH_MAX], tmp[PATH_MAX + 48];
    snprintf(p, sizeof(p), "%s/%s", d->vol.state_dir, rel);
    snprintf(tmp, sizeof(tmp), "%s.tmp.%lu", p,
             __atomic_add_fetch(&seq, 1, __ATOMIC_RELAXED));
    int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    FILE *f = fd < 0 ? NULL : fdopen(fd, "w");
    if (!f) {
        int rc = -errno;
        if (fd >= 0)
            close(fd);
        return rc;
    }
    fputs(text, f);
    if (fclose(f) != 0 || rename(tmp, p) < 0) {
        int rc = -errno;
        unlink(tmp);
        return rc;
    }
    return 0;
}

static void remove_state_file(const struct daemon *d, const char *rel)
{
    char p[PATH_MAX];
    snprintf(p, sizeof(p), "%s/%s", d->vol.state_dir, rel);
    unlink(p);
}

struct session *sess_find(struct daemon *d, const char *agent, const char *mountpoint)
{
    for (struct session *s = d->sessions; s; s = s->next) {
        if (agent && !strcmp(s->agent, agent))
            return s;
        if (mountpoint && !strcmp(s->mountpoint, mountpoint))
            return s;
    }
    return NULL;
}

#define SESS_READAHEAD_KB (OVL_MAX_IO / 1024)  /* one maximal FUSE request */

/* The kernel reads ahead 128 KiB on a FUSE mount, so a sequential reader
 * costs a request per 128 KiB where one may carry OVL_MAX_IO. The
 * INIT answer caps the read-ahead at what the kernel offered in INIT, so
 * this runs after it. Where sysfs is read-only the default stays. */
void sess_tune_readahead(struct session *s)
{
    int rc = minfo_set_readahead(s->mountpoint, SESS_READAHEAD_KB);
    if (rc < 0)
        log_say("session %llu: read-ahead of %s stays the kernel's: %s",
                (unsigned long long)s->id, s->mountpoint, strerror(-rc));
}

static struct fuse_session *new_fuse_session(struct daemon *d, struct session *s)
{
    char opts[3 * PATH_MAX];
    snprintf(opts, sizeof(opts),
             "allow_other,default_permissions,nosuid,nodev,subtype=lanefs,"
             "fsname=lanefs@%s:", s->agent);
    opt_escaped(opts, sizeof(opts), d->vol.state_dir);
    char *argv[] = { "lanefs", "-o", opts, NULL };
    struct fuse_args args = FUSE_ARGS_INIT(3, argv);
    struct fuse_session *se = fuse_session_new(&args, &ovl_ops, sizeof(ovl_ops), &s->fs);
    fuse_opt_free_args(&args);
    return se;
}

/* Opens, mounts and registers session id (sess_start's work). */
static int sess_mount(struct daemon *d, const struct sess_opts *o, uint64_t id,
                      struct session **out, char *err, size_t errlen)
{
    struct session *s = NULL;
    char text[PATH_MAX + 128], rel[128];
    int rc;


    snprintf(text, sizeof(text), "%llu\n", (unsigned long long)(id + 1));
    if ((rc = write_state_file(d, "next_session", text)) < 0) {
        snprintf(err, errlen, "cannot record the session number: %s", strerror(-rc));
        return rc;
    }
    if (!(s = calloc(1, sizeof(*s))) || !(s->mountpoint = strdup(o->mountpoint))) {
        free(s);
        snprintf(err, errlen, "out of memory");
        return -ENOMEM;
    }
    s->d = d;
    s->fd = -1;
    s->id = id;
    snprintf(s->agent, sizeof(s->agent), "%s", o->agent);
    s->ephemeral = o->ephemeral;
    s->quota_bytes = o->quota_bytes;
    s->quota_inodes = o->quota_inodes;
    s->read = o->read;
    s->started = time(NULL);

    rc = view_open(&s->fs, &d->vol, s->agent, err, errlen);
    if (rc < 0)
        goto fail_free;
    s->fs.sid = id;
    s->fs.read_unlimited = !o->read.rate_bps && !o->read.iops;
    rc = quota_init(&s->fs, o->quota_bytes, o->quota_inodes);
    if (rc < 0) {
        snprintf(err, errlen, "cannot measure the usage of %s: %s", s->agent,
                 strerror(-rc));
        goto fail_view;
    }
    s->se = new_fuse_session(d, s);
    if (!s->se) {
        snprintf(err, errlen, "cannot create a FUSE session");
        rc = -EIO;
        goto fail_view;
    }
    s->fs.se = s->se;
    if (fuse_session_mount(s->se, s->mountpoint) != 0) {
        snprintf(err, errlen, "cannot mount at %s (is /dev/fuse there, and are "
                 "we root?)", s->mountpoint);
        rc = -EIO;
        goto fail_se;
    }
    s->fd = fuse_session_fd(s->se);
    if ((rc = fuseio_attach(s->se, s->fd)) < 0) {
        snprintf(err, errlen, "cannot set up the FUSE transport: %s", strerror(-rc));
        goto fail_mount;
    }
    if (d->vol.rengine && (rc = rengine_agent_add(d->vol.rengine, id, &s->read)) < 0) {
        snprintf(err, errlen, "bad read shaping for %s: %s", s->agent, strerror(-rc));
        goto fail_mount;
    }

    snprintf(rel, sizeof(rel), "sessions/%llu", (unsigned long long)id);
    snprintf(text, sizeof(text), "agent=%s\nmountpoint=%s\nstarted=%lld\n%s",
             s->agent, s->mountpoint, (long long)s->started,
             s->ephemeral ? "ephemeral=1\n" : "");
    if ((rc = write_state_file(d, rel, text)) < 0) {
        snprintf(err, errlen, "cannot record session %llu: %s",
                 (unsigned long long)id, strerror(-rc));
        goto fail_mount;
    }
    snprintf(text, sizeof(text), "%d\n", (int)getpid());
    snprintf(rel, sizeof(rel), "agents/%s/daemon.pid", s->agent);
    write_state_file(d, rel, text);

    pthread_mutex_lock(&d->lock);
    s->next = d->sessions;
    d->sessions = s;
    pthread_mutex_unlock(&d->lock);
    rc = loop_add(d, s);
    if (rc < 0) {
        /* Registered but unreadable: let it end through the normal path. */
        snprintf(err, errlen, "cannot watch the session: %s", strerror(-rc));
        umount2(s->mountpoint, MNT_DETACH);
        pthread_mutex_lock(&d->lock);
        loop_end_locked(d, s, "error");
        pthread_mutex_unlock(&d->lock);
        return rc;
    }
    log_say("session %llu: agent %s mounted at %s%s", (unsigned long long)id,
            s->agent, s->mountpoint, s->ephemeral ? " (ephemeral)" : "");
    ev_op(&s->fs, "session_start", NULL, NULL, 0, s->mountpoint);
    *out = s;
    return 0;

fail_mount:
    umount2(s->mountpoint, MNT_DETACH);
fail_se:
    fuse_session_destroy(s->se);
fail_view:
    view_close(&s->fs);
fail_free:
    free(s->mountpoint);
    free(s);
    return rc;
}

int sess_start(struct daemon *d, const struct sess_opts *o, struct session **out,
               char *err, size_t errlen)
{
    struct session *other;

    pthread_mutex_lock(&d->lock);
    if (d->stopping) {
        pthread_mutex_unlock(&d->lock);
        snprintf(err, errlen, "the daemon is shutting down");
        return -ESHUTDOWN;
    }
    if ((other = sess_find(d, o->agent, NULL))) {
        snprintf(err, errlen, "agent %s is already mounted at %s", o->agent,
                 other->mountpoint);
        pthread_mutex_unlock(&d->lock);
        return -EEXIST;
    }
    if ((other = sess_find(d, NULL, o->mountpoint))) {
        snprintf(err, errlen, "%s is already the mount of agent %s",
                 o->mountpoint, other->agent);
        pthread_mutex_unlock(&d->lock);
        return -EBUSY;
    }
    uint64_t id = d->next_session++;
    d->mounting++;      /* a daemon about to exit for want of sessions waits */
    pthread_mutex_unlock(&d->lock);

    int rc = sess_mount(d, o, id, out, err, errlen);
    if (rc < 0)
        log_say("mount of agent %s at %s refused: %s", o->agent, o->mountpoint, err);

    pthread_mutex_lock(&d->lock);
    d->mounting--;
    pthread_mutex_unlock(&d->lock);
    loop_wake(d);       /* it may exit now, if this mount failed */
    return rc;
}

int sess_umount(struct session *s, bool lazy, const char *reason)
{
    struct daemon *d = s->d;
    pthread_mutex_lock(&d->lock);
    const char *prev = s->end_reason;
    if (!prev)
        s->end_reason = reason;
    pthread_mutex_unlock(&d->lock);
    if (umount2(s->mountpoint, lazy ? MNT_DETACH : 0) < 0) {
        int rc = -errno;
        pthread_mutex_lock(&d->lock);
        if (!s->ended)
            s->end_reason = prev;       /* it goes on */
        pthread_mutex_unlock(&d->lock);
        return rc;
    }
    return 0;
}

/* Journals what a session leaves behind: every temp file, with its size;
 * every file still open, with the process that held it; the locks and
 * leases it still held. */
static void temp_left(struct ovl_fs *fs, int dirfd, const char *rel)
{
    int fd = openat(dirfd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    DIR *dir = fd < 0 ? NULL : fdopendir(fd);
    struct dirent *de;
    if (!dir) {
        if (fd >= 0)
            close(fd);
        return;
    }
    while ((de = readdir(dir))) {
        char path[PATH_MAX];
        struct stat st;
        if (!strcmp(de->d_name, ".") || !strcmp(de->d_name, "..") ||
            ovl_join(path, sizeof(path), rel, de->d_name) < 0 ||
            fstatat(fd, de->d_name, &st, AT_SYMLINK_NOFOLLOW) < 0)
            continue;
        if (S_ISDIR(st.st_mode)) {
            int sub = openat(fd, de->d_name, O_PATH | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
            if (sub >= 0) {
                temp_left(fs, sub, path);
                close(sub);
            }
            continue;
        }
        struct journal_event ev = ev_blank("temp_left");
        ev.size = st.st_size;
        ev_log(fs, &ev, path, NULL);
    }
    closedir(dir);
}

static void journal_leftovers(struct session *s, unsigned nlocks, unsigned nleases)
{
    struct ovl_fs *fs = &s->fs;
    char detail[64];
    if (!ev_on(fs))
        return;
    temp_left(fs, fs->temp_fd, "");
    pthread_mutex_lock(&fs->handle_lock);
    for (struct ovl_handle *h = fs->handles; h; h = h->next) {
        char comm[32];
        proc_comm(h->pid, comm, sizeof(comm));
        struct journal_event ev = ev_blank("handle_left");
        ev.pid = h->pid;
        ev.comm = comm;
        ev.handle = (int64_t)h->id;
        ev_log(fs, &ev, h->path, NULL);
    }
    pthread_mutex_unlock(&fs->handle_lock);
    if (nlocks) {
        snprintf(detail, sizeof(detail), "%u lock(s)", nlocks);
        ev_op(fs, "lock_left", NULL, NULL, 0, detail);
    }
    if (nleases) {
        snprintf(detail, sizeof(detail), "%u lease(s) at session end", nleases);
        ev_op(fs, "lease_release", NULL, NULL, 0, detail);
    }
}

void sess_reap(struct session *s)
{
    struct daemon *d = s->d;
    char rel[128], line[PATH_MAX];
    time_t now = time(NULL);

    /* Parked lock requests are answered while the session still exists;
     * then closing the fd aborts what is left of the connection. */
    unsigned nlocks = lockops_session_end(&d->vol, s->id);
    if (d->vol.rengine) {
        /* Throttling is journaled summarised, once per session. */
        struct sched_stats ss;
        if (ev_on(&s->fs) && rengine_agent_stats(d->vol.rengine, s->id, &ss) == 0 &&
            ss.reads) {
            char detail[128];
            snprintf(detail, sizeof(detail), "reads=%llu queued_ms=%llu",
                     (unsigned long long)ss.reads,
                     (unsigned long long)(ss.queued_ns / 1000000));
            struct journal_event ev = ev_blank("throttle");
            ev.bytes_read = (int64_t)ss.bytes;
            ev.detail = detail;
            ev_log(&s->fs, &ev, NULL, NULL);
        }
        rengine_agent_remove(d->vol.rengine, s->id);   /* its reads answered */
        /* ...and those on the workers' own rings: they answer every read,
         * error or not, and keep running until the daemon ends. */
        while (__atomic_load_n(&s->fs.in_engine.live, __ATOMIC_ACQUIRE))
            usleep(1000);
    }
    unsigned nl = lease_release_agent(d->vol.leases, s->agent);
    if (nl)
        log_say("session %llu: released %u lease(s) of %s", (unsigned long long)s->id,
                nl, s->agent);
    journal_leftovers(s, nlocks, nl);
    fuse_session_destroy(s->se);
    view_close(&s->fs);
    if (s->ephemeral) {
        int rc = view_wipe_private(d->vol.state_dir, s->agent);
        if (rc < 0)
            log_say("session %llu: cannot remove the ephemeral upper of %s: %s",
                    (unsigned long long)s->id, s->agent, strerror(-rc));
    }
    snprintf(rel, sizeof(rel), "agents/%s/daemon.pid", s->agent);
    remove_state_file(d, rel);
    snprintf(rel, sizeof(rel), "sessions/%llu", (unsigned long long)s->id);
    remove_state_file(d, rel);
    snprintf(line, sizeof(line), "%s/sessions.log", d->vol.state_dir);
    int lfd = open(line, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
    FILE *f = lfd < 0 ? NULL : fdopen(lfd, "a");
    if (f) {
        fprintf(f, "%llu %s %lld %lld %s\n", (unsigned long long)s->id, s->agent,
                (long long)s->started, (long long)now, s->end_reason);
        fclose(f);
    }
    log_say("session %llu: agent %s ended (%s)", (unsigned long long)s->id,
            s->agent, s->end_reason);
    if (d->vol.journal) {
        struct journal_event ev = ev_blank("session_end");
        ev.agent = s->agent;
        ev.session = s->id;
        ev.detail = s->end_reason;
        journal_log(d->vol.journal, &ev);
    }
    free(s->mountpoint);
    free(s);
}
