/* control.c - the control socket (STATE/control.sock) and the end of
 * sessions.
 *
 * One thread polls the listening socket, its clients and the reap eventfd.
 * Requests are single JSON lines (docs/control.md); every malformed,
 * oversized, truncated or slow request gets an error reply or a closed
 * connection, never anything worse. A umount request is answered once its
 * session has been reaped here, so "lanefs umount" returns after cleanup. */
#include <cJSON.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "fs/daemon_i.h"
#include "fs/events.h"
#include "fs/fuseio.h"
#include "fs/leaseops.h"
#include "fs/log.h"
#include "fs/prefetch.h"
#include "fs/rengine.h"
#include "locks/lease.h"

#define CTL_VERSION   1
#define CTL_LINE_MAX  65536
#define CTL_CONNS_MAX 64
#define CTL_TIMEOUT_S 10

struct conn {
    int fd;
    char *buf;                 /* CTL_LINE_MAX + 1 */
    size_t len;
    time_t deadline;           /* 0: waiting for a session to end */
    uint64_t wait_session;     /* a umount reply owed when it is reaped */
    bool waiting;
};

static struct conn conns[CTL_CONNS_MAX];

int ctl_listen(struct daemon *d)
{
    struct sockaddr_un sa = { .sun_family = AF_UNIX };
    if (snprintf(sa.sun_path, sizeof(sa.sun_path), "%s/control.sock",
                 d->vol.state_dir) >= (int)sizeof(sa.sun_path))
        return -ENAMETOOLONG;
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
    if (fd < 0)
        return -errno;
    unlink(sa.sun_path);       /* stale: we hold the volume lock */
    mode_t old = umask(0177);  /* owner only, from the moment it exists */
    int rc = bind(fd, (struct sockaddr *)&sa, sizeof(sa));
    umask(old);
    if (rc < 0 || chmod(sa.sun_path, 0600) < 0 || listen(fd, 64) < 0) {
        rc = -errno;
        close(fd);
        return rc;
    }
    d->ctl_fd = fd;
    return 0;
}

static void conn_close(struct conn *c)
{
    close(c->fd);
    free(c->buf);
    memset(c, 0, sizeof(*c));
    c->fd = -1;
}

/* Sends obj (consumed) as one line; closes the connection on failure. */
static void reply(struct conn *c, cJSON *obj)
{
    cJSON_AddNumberToObject(obj, "v", CTL_VERSION);
    char *text = cJSON_PrintUnformatted(obj);
    cJSON_Delete(obj);
    if (!text) {
        conn_close(c);
        return;
    }
    size_t len = strlen(text);
    text[len] = '\n';           /* cJSON's terminator becomes the newline */
    /* A client that does not read its reply cannot stall the daemon. */
    struct timeval tv = { .tv_sec = 2 };
    setsockopt(c->fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
    int fl = fcntl(c->fd, F_GETFL);
    fcntl(c->fd, F_SETFL, fl & ~O_NONBLOCK);
    ssize_t n = send(c->fd, text, len + 1, MSG_NOSIGNAL);
    fcntl(c->fd, F_SETFL, fl);
    free(text);
    if (n != (ssize_t)len + 1)
        conn_close(c);
}

static cJSON *ok_obj(void)
{
    cJSON *o = cJSON_CreateObject();
    cJSON_AddBoolToObject(o, "ok", 1);
    return o;
}

static void reply_err(struct conn *c, int err, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static void reply_err(struct conn *c, int err, const char *fmt, ...)
{
    char msg[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    cJSON *o = cJSON_CreateObject();
    cJSON_AddBoolToObject(o, "ok", 0);
    cJSON_AddStringToObject(o, "errno", strerrorname_np(err) ? strerrorname_np(err) : "EIO");
    cJSON_AddStringToObject(o, "error", msg);
    reply(c, o);
}

/* Optional typed fields: false (and an error reply) when present but of the
 * wrong type. */
static bool get_string(struct conn *c, cJSON *req, const char *name,
                       const char **out, bool required)
{
    cJSON *it = cJSON_GetObjectItemCaseSensitive(req, name);
    *out = NULL;
    if (!it) {
        if (required)
            reply_err(c, EINVAL, "missing field \"%s\"", name);
        return !required;
    }
    if (!cJSON_IsString(it) || !it->valuestring) {
        reply_err(c, EINVAL, "field \"%s\" must be a string", name);
        return false;
    }
    *out = it->valuestring;
    return true;
}

static bool get_bool(struct conn *c, cJSON *req, const char *name, bool *out)
{
    cJSON *it = cJSON_GetObjectItemCaseSensitive(req, name);
    *out = false;
    if (!it)
        return true;
    if (!cJSON_IsBool(it)) {
        reply_err(c, EINVAL, "field \"%s\" must be true or false", name);
        return false;
    }
    *out = cJSON_IsTrue(it);
    return true;
}

static bool get_count(struct conn *c, cJSON *req, const char *name,
                      unsigned long long *out)
{
    cJSON *it = cJSON_GetObjectItemCaseSensitive(req, name);
    *out = 0;
    if (!it)
        return true;
    if (!cJSON_IsNumber(it) || it->valuedouble < 0 || it->valuedouble > 9.0e15 ||
        it->valuedouble != (double)(unsigned long long)it->valuedouble) {
        reply_err(c, EINVAL, "field \"%s\" must be a whole number >= 0", name);
        return false;
    }
    *out = (unsigned long long)it->valuedouble;
    return true;
}

/* The read shaping fields of a request (all optional). */
static bool get_limits(struct conn *c, cJSON *req, struct sched_limits *l)
{
    unsigned long long w, rate, iops, reserve;
    if (!get_count(c, req, "weight", &w) || !get_count(c, req, "read_rate", &rate) ||
        !get_count(c, req, "read_iops", &iops) ||
        !get_count(c, req, "read_reserve", &reserve))
        return false;
    if (w > 10000) {
        reply_err(c, EINVAL, "weight must be 1..10000, not %llu", w);
        return false;
    }
    *l = (struct sched_limits){ .weight = (uint32_t)w, .rate_bps = rate,
                                .iops = iops, .reserve_bps = reserve };
    return true;
}

static void op_ping(struct daemon *d, struct conn *c)
{
    cJSON *o = ok_obj();
    cJSON_AddNumberToObject(o, "pid", getpid());
    cJSON_AddNumberToObject(o, "version", CTL_VERSION);
    cJSON_AddStringToObject(o, "state", d->vol.state_dir);
    reply(c, o);
}

static void op_mount(struct daemon *d, struct conn *c, cJSON *req)
{
    struct sess_opts o = { 0 };
    struct session *s;
    char err[512];
    struct stat st;

    if (!get_string(c, req, "agent", &o.agent, true) ||
        !get_string(c, req, "mountpoint", &o.mountpoint, true) ||
        !get_bool(c, req, "ephemeral", &o.ephemeral) ||
        !get_count(c, req, "quota_bytes", &o.quota_bytes) ||
        !get_count(c, req, "quota_inodes", &o.quota_inodes) ||
        !get_limits(c, req, &o.read))
        return;
    if (!vol_agent_name_valid(o.agent)) {
        reply_err(c, EINVAL, "invalid agent name \"%.80s\": it must match "
                  "[a-z0-9][a-z0-9._-]{0,63}", o.agent);
        return;
    }
    if (o.mountpoint[0] != '/' || strlen(o.mountpoint) >= PATH_MAX ||
        stat(o.mountpoint, &st) < 0 || !S_ISDIR(st.st_mode)) {
        reply_err(c, EINVAL, "mount point \"%.200s\" is not an absolute path "
                  "of an existing directory", o.mountpoint);
        return;
    }
    int rc = sess_start(d, &o, &s, err, sizeof(err));
    if (rc < 0) {
        reply_err(c, -rc, "%s", err);
        return;
    }
    cJSON *r = ok_obj();
    cJSON_AddNumberToObject(r, "session", (double)s->id);
    cJSON_AddStringToObject(r, "agent", o.agent);
    cJSON_AddStringToObject(r, "mountpoint", o.mountpoint);
    reply(c, r);
}

static void op_umount(struct daemon *d, struct conn *c, cJSON *req)
{
    const char *agent, *mnt;
    bool lazy;
    if (!get_string(c, req, "agent", &agent, false) ||
        !get_string(c, req, "mountpoint", &mnt, false) ||
        !get_bool(c, req, "lazy", &lazy))
        return;
    if (!agent && !mnt) {
        reply_err(c, EINVAL, "umount needs \"agent\" or \"mountpoint\"");
        return;
    }
    pthread_mutex_lock(&d->lock);
    struct session *s = sess_find(d, agent, mnt);
    pthread_mutex_unlock(&d->lock);
    if (!s) {
        reply_err(c, ENOENT, "no session of %s", agent ? agent : mnt);
        return;
    }
    /* Only this thread frees sessions: s stays valid here. */
    int rc = sess_umount(s, lazy, "umount");
    if (rc == -EBUSY) {
        reply_err(c, EBUSY, "%s is busy (a process has a file or its working "
                  "directory there)", s->mountpoint);
        return;
    }
    if (rc < 0) {
        reply_err(c, -rc, "cannot unmount %s: %s", s->mountpoint, strerror(-rc));
        return;
    }
    if (lazy) {
        pthread_mutex_lock(&d->lock);
        bool pending = !s->ended;
        pthread_mutex_unlock(&d->lock);
        cJSON *r = ok_obj();
        cJSON_AddNumberToObject(r, "session", (double)s->id);
        cJSON_AddStringToObject(r, "agent", s->agent);
        cJSON_AddStringToObject(r, "mountpoint", s->mountpoint);
        cJSON_AddBoolToObject(r, "pending", pending);
        reply(c, r);
        return;
    }
    c->waiting = true;          /* answered when the session is reaped */
    c->wait_session = s->id;
    c->deadline = 0;
}

static cJSON *handles_json(struct session *s)
{
    cJSON *a = cJSON_CreateArray();
    pthread_mutex_lock(&s->fs.handle_lock);
    for (struct ovl_handle *h = s->fs.handles; h; h = h->next) {
        char comm[32];
        proc_comm(h->pid, comm, sizeof(comm));
        cJSON *o = cJSON_CreateObject();
        cJSON_AddNumberToObject(o, "pid", h->pid);
        cJSON_AddStringToObject(o, "comm", comm);
        char path[PATH_MAX + 2];
        snprintf(path, sizeof(path), "/%s", h->path ? h->path : "");
        cJSON_AddStringToObject(o, "path", path);
        cJSON_AddItemToArray(a, o);
    }
    pthread_mutex_unlock(&s->fs.handle_lock);
    return a;
}

/* The lower prefetch's counts (prefetch.h); null when it is off. */
static void status_prefetch(struct daemon *d, cJSON *r)
{
    struct prefetch_stats ps;
    if (!d->vol.prefetch) {
        cJSON_AddNullToObject(r, "prefetch");
        return;
    }
    prefetch_get_stats(d->vol.prefetch, &ps);
    cJSON *o = cJSON_AddObjectToObject(r, "prefetch");
    cJSON_AddNumberToObject(o, "queued", (double)ps.queued);
    cJSON_AddNumberToObject(o, "dirs", (double)ps.dirs);
    cJSON_AddNumberToObject(o, "entries", (double)ps.entries);
    cJSON_AddNumberToObject(o, "followed", (double)ps.followed);
    cJSON_AddNumberToObject(o, "skipped", (double)ps.skipped);
    cJSON_AddNumberToObject(o, "dropped", (double)ps.dropped);
}

/* The read engine's latency guard; null without a read engine. */
static void status_read_guard(struct daemon *d, cJSON *r)
{
    if (!d->vol.rengine) {
        cJSON_AddNullToObject(r, "read_guard");
        return;
    }
    struct rguard_stats gs;
    rengine_guard_stats(d->vol.rengine, &gs);
    cJSON *o = cJSON_AddObjectToObject(r, "read_guard");
    cJSON_AddBoolToObject(o, "enabled", gs.enabled);
    cJSON_AddBoolToObject(o, "active", gs.active);
    cJSON_AddNumberToObject(o, "engaged", (double)gs.engaged);
    cJSON_AddNumberToObject(o, "held_ms", (double)(gs.held_ns / 1000000u));
    cJSON_AddNumberToObject(o, "pieced", (double)gs.pieced);
    cJSON_AddNumberToObject(o, "pieces", (double)gs.pieces);
    cJSON_AddNumberToObject(o, "held", gs.held);
}

static void op_status(struct daemon *d, struct conn *c)
{
    time_t now = time(NULL);
    cJSON *r = ok_obj();
    cJSON_AddNumberToObject(r, "pid", getpid());
    cJSON_AddStringToObject(r, "state", d->vol.state_dir);
    cJSON_AddNumberToObject(r, "started", (double)d->started);
    cJSON_AddNumberToObject(r, "uptime_s", (double)(now - d->started));
    /* loop, control, workers, and the engine's, prefetch and journal threads */
    cJSON_AddNumberToObject(r, "threads", d->nworkers + 2 +
                                          (d->vol.rengine ? rengine_threads(d->vol.rengine) : 0) +
                                          (d->vol.prefetch ? 1 : 0) +
                                          (d->vol.journal ? 1 : 0));
    cJSON *a = cJSON_AddArrayToObject(r, "agents");
    pthread_mutex_lock(&d->lock);
    /* 0: no cap; null: no read engine, so no cap applies */
    if (d->vol.rengine)
        cJSON_AddNumberToObject(r, "volume_read_rate", (double)d->vol.cfg.volume_read_rate);
    else
        cJSON_AddNullToObject(r, "volume_read_rate");
    status_prefetch(d, r);
    status_read_guard(d, r);
    for (struct session *s = d->sessions; s; s = s->next) {
        if (s->ended)
            continue;
        cJSON *o = cJSON_CreateObject();
        cJSON_AddStringToObject(o, "agent", s->agent);
        cJSON_AddStringToObject(o, "mountpoint", s->mountpoint);
        cJSON_AddNumberToObject(o, "session", (double)s->id);
        cJSON_AddNumberToObject(o, "started", (double)s->started);
        cJSON_AddBoolToObject(o, "ephemeral", s->ephemeral);
        cJSON_AddNumberToObject(o, "bytes_read",
            (double)__atomic_load_n(&s->fs.bytes_read, __ATOMIC_RELAXED));
        cJSON_AddNumberToObject(o, "bytes_written",
            (double)__atomic_load_n(&s->fs.bytes_written, __ATOMIC_RELAXED));
        cJSON_AddItemToObject(o, "handles", handles_json(s));
        cJSON_AddBoolToObject(o, "killpriv_v2", fuseio_killpriv_v2(&s->fs.io));
        cJSON_AddNumberToObject(o, "cap_checks",
            (double)__atomic_load_n(&s->fs.cap_checks, __ATOMIC_RELAXED));
        cJSON *rd = cJSON_AddObjectToObject(o, "read");
        cJSON_AddNumberToObject(rd, "weight", s->read.weight ? s->read.weight : 100);
        cJSON_AddNumberToObject(rd, "rate_limit", (double)s->read.rate_bps);
        cJSON_AddNumberToObject(rd, "iops_limit", (double)s->read.iops);
        cJSON_AddNumberToObject(rd, "reserve", (double)s->read.reserve_bps);
        struct sched_stats ss;
        if (d->vol.rengine && rengine_agent_stats(d->vol.rengine, s->id, &ss) == 0) {
            /* Every read of shared data: scheduled, or of a lone agent
             * without limits: answered from the page cache at once
             * (cached_*) or read on a worker's ring (direct_*); both are
             * parts of the totals. */
            uint64_t cb = __atomic_load_n(&s->fs.cached_bytes, __ATOMIC_RELAXED);
            uint64_t cr = __atomic_load_n(&s->fs.cached_reads, __ATOMIC_RELAXED);
            uint64_t db = __atomic_load_n(&s->fs.direct_bytes, __ATOMIC_RELAXED);
            uint64_t dr = __atomic_load_n(&s->fs.direct_reads, __ATOMIC_RELAXED);
            ss.bytes += cb + db;
            ss.reads += cr + dr;
            cJSON_AddNumberToObject(rd, "bytes", (double)ss.bytes);
            cJSON_AddNumberToObject(rd, "reads", (double)ss.reads);
            cJSON_AddNumberToObject(rd, "cached_bytes", (double)cb);
            cJSON_AddNumberToObject(rd, "cached_reads", (double)cr);
            cJSON_AddNumberToObject(rd, "direct_bytes", (double)db);
            cJSON_AddNumberToObject(rd, "direct_reads", (double)dr);
            cJSON_AddNumberToObject(rd, "spliced_bytes", (double)__atomic_load_n(
                &s->fs.in_engine.spliced_bytes, __ATOMIC_RELAXED));
            cJSON_AddNumberToObject(rd, "spliced_reads", (double)__atomic_load_n(
                &s->fs.in_engine.spliced_reads, __ATOMIC_RELAXED));
            cJSON_AddNumberToObject(rd, "queued_ms", (double)(ss.queued_ns / 1000000));
            cJSON_AddNumberToObject(rd, "depth", ss.depth);
            double up = (double)(now - s->started);
            cJSON_AddNumberToObject(rd, "rate", up > 0 ? (double)ss.bytes / up : 0);
        }
        cJSON *q = cJSON_AddObjectToObject(o, "quota");
        cJSON_AddNumberToObject(q, "bytes_limit", (double)s->quota_bytes);
        cJSON_AddNumberToObject(q, "inodes_limit", (double)s->quota_inodes);
        if (quota_on(&s->fs)) {     /* counted only under a limit */
            cJSON_AddNumberToObject(q, "bytes_used", (double)
                __atomic_load_n(&s->fs.quota.bytes_used, __ATOMIC_RELAXED));
            cJSON_AddNumberToObject(q, "inodes_used", (double)
                __atomic_load_n(&s->fs.quota.inodes_used, __ATOMIC_RELAXED));
        }
        cJSON_AddItemToArray(a, o);
    }
    pthread_mutex_unlock(&d->lock);
    reply(c, r);
}

static void op_agents(struct daemon *d, struct conn *c)
{
    char p[PATH_MAX];
    snprintf(p, sizeof(p), "%s/agents", d->vol.state_dir);
    cJSON *r = ok_obj();
    cJSON *a = cJSON_AddArrayToObject(r, "agents");
    DIR *dir = opendir(p);
    struct dirent *de;
    pthread_mutex_lock(&d->lock);
    while (dir && (de = readdir(dir))) {
        if (!vol_agent_name_valid(de->d_name))
            continue;
        struct session *s = sess_find(d, de->d_name, NULL);
        cJSON *o = cJSON_CreateObject();
        cJSON_AddStringToObject(o, "agent", de->d_name);
        cJSON_AddBoolToObject(o, "mounted", s && !s->ended);
        if (s && !s->ended) {
            cJSON_AddStringToObject(o, "mountpoint", s->mountpoint);
            cJSON_AddNumberToObject(o, "session", (double)s->id);
        }
        cJSON_AddItemToArray(a, o);
    }
    pthread_mutex_unlock(&d->lock);
    if (dir)
        closedir(dir);
    reply(c, r);
}

static void lease_json(void *arg, const char *key, const char *agent,
                       enum lease_mode mode, uint64_t epoch, int64_t ms_left)
{
    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "key", key);
    cJSON_AddStringToObject(o, "agent", agent);
    cJSON_AddStringToObject(o, "mode", lease_mode_name(mode));
    cJSON_AddNumberToObject(o, "epoch", (double)epoch);
    cJSON_AddNumberToObject(o, "ms_left", (double)ms_left);
    cJSON_AddItemToArray(arg, o);
}

static void op_leases(struct daemon *d, struct conn *c)
{
    cJSON *r = ok_obj();
    cJSON *a = cJSON_AddArrayToObject(r, "leases");
    lease_foreach(d->vol.leases, leaseops_now_ms(), lease_json, a);
    reply(c, r);
}

/* Changes an agent's read shaping live (only the fields given). */
static void op_agent_set(struct daemon *d, struct conn *c, cJSON *req)
{
    const char *agent;
    struct sched_limits l;
    if (!get_string(c, req, "agent", &agent, true) || !get_limits(c, req, &l))
        return;
    pthread_mutex_lock(&d->lock);
    struct session *s = sess_find(d, agent, NULL);
    if (s && !s->ended) {
        /* Fields left out keep their values. */
        if (cJSON_GetObjectItemCaseSensitive(req, "weight"))
            s->read.weight = l.weight;
        if (cJSON_GetObjectItemCaseSensitive(req, "read_rate"))
            s->read.rate_bps = l.rate_bps;
        if (cJSON_GetObjectItemCaseSensitive(req, "read_iops"))
            s->read.iops = l.iops;
        if (cJSON_GetObjectItemCaseSensitive(req, "read_reserve"))
            s->read.reserve_bps = l.reserve_bps;
        l = s->read;
    }
    uint64_t sid = s ? s->id : 0;
    pthread_mutex_unlock(&d->lock);
    if (!s) {
        reply_err(c, ENOENT, "agent %.64s is not mounted", agent);
        return;
    }
    int rc = d->vol.rengine ? rengine_agent_set(d->vol.rengine, sid, &l) : -ENOTSUP;
    if (rc == 0) {
        pthread_mutex_lock(&d->lock);
        if ((s = sess_find(d, agent, NULL)) && s->id == sid)
            __atomic_store_n(&s->fs.read_unlimited, !l.rate_bps && !l.iops,
                             __ATOMIC_RELAXED);
        pthread_mutex_unlock(&d->lock);
    }
    if (rc < 0) {
        reply_err(c, -rc, "cannot set the read shaping of %s: %s", agent, strerror(-rc));
        return;
    }
    reply(c, ok_obj());
}

/* Changes the volume-wide read cap and the latency guard live (either or
 * both), and keeps them in volume.conf for the next daemon. */
static void op_volume_set(struct daemon *d, struct conn *c, cJSON *req)
{
    unsigned long long rate;
    bool guard;
    bool has_rate = cJSON_GetObjectItemCaseSensitive(req, "volume_read_rate") != NULL;
    bool has_guard = cJSON_GetObjectItemCaseSensitive(req, "read_guard") != NULL;
    if (!has_rate && !has_guard) {
        reply_err(c, EINVAL, "nothing to set: fields \"volume_read_rate\" and "
                  "\"read_guard\" are missing");
        return;
    }
    if (!get_count(c, req, "volume_read_rate", &rate) ||
        !get_bool(c, req, "read_guard", &guard))
        return;
    if (!d->vol.rengine) {
        reply_err(c, ENOTSUP, "the read engine is off (LANEFS_READ_ENGINE=off): "
                  "no volume read cap or read guard");
        return;
    }
    if (has_rate)
        rengine_set_volume_rate(d->vol.rengine, rate);
    if (has_guard)
        rengine_set_guard(d->vol.rengine, guard);
    pthread_mutex_lock(&d->lock);
    if (has_rate)
        d->vol.cfg.volume_read_rate = rate;
    if (has_guard)
        d->vol.cfg.no_read_guard = !guard;
    int rc = vol_config_save(d->vol.state_dir, &d->vol.cfg);
    pthread_mutex_unlock(&d->lock);
    if (rc < 0) {
        log_say("volume settings changed, but %s/%s was not updated: %s",
                d->vol.state_dir, VOL_CONF_NAME, strerror(-rc));
        reply_err(c, -rc, "the new settings hold now, but saving them in %s failed "
                  "(the next daemon gets the old ones): %s", VOL_CONF_NAME, strerror(-rc));
        return;
    }
    reply(c, ok_obj());
}

static void op_shutdown(struct daemon *d, struct conn *c)
{
    reply(c, ok_obj());
    pthread_mutex_lock(&d->lock);
    d->stopping = true;
    pthread_mutex_unlock(&d->lock);
    loop_wake(d);
}

static void handle_line(struct daemon *d, struct conn *c, const char *line, size_t len)
{
    cJSON *req = cJSON_ParseWithLength(line, len);
    if (!req || !cJSON_IsObject(req)) {
        reply_err(c, EINVAL, "malformed request: not a JSON object");
        goto out;
    }
    cJSON *v = cJSON_GetObjectItemCaseSensitive(req, "v");
    if (!cJSON_IsNumber(v) || v->valuedouble != CTL_VERSION) {
        reply_err(c, EPROTO, "unsupported protocol version (this daemon "
                  "speaks version %d)", CTL_VERSION);
        goto out;
    }
    cJSON *op = cJSON_GetObjectItemCaseSensitive(req, "op");
    if (!cJSON_IsString(op)) {
        reply_err(c, EINVAL, "missing field \"op\"");
        goto out;
    }
    const char *o = op->valuestring;
    if (!strcmp(o, "ping"))
        op_ping(d, c);
    else if (!strcmp(o, "mount"))
        op_mount(d, c, req);
    else if (!strcmp(o, "umount"))
        op_umount(d, c, req);
    else if (!strcmp(o, "status"))
        op_status(d, c);
    else if (!strcmp(o, "agents"))
        op_agents(d, c);
    else if (!strcmp(o, "agent_set"))
        op_agent_set(d, c, req);
    else if (!strcmp(o, "volume_set"))
        op_volume_set(d, c, req);
    else if (!strcmp(o, "leases"))
        op_leases(d, c);
    else if (!strcmp(o, "shutdown"))
        op_shutdown(d, c);
    else
        reply_err(c, EINVAL, "unknown op \"%.64s\"", o);
out:
    cJSON_Delete(req);
}

/* Reads what a client sent; handles each complete line. */
static void on_client(struct daemon *d, struct conn *c)
{
    for (;;) {
        ssize_t n = recv(c->fd, c->buf + c->len, CTL_LINE_MAX + 1 - c->len, 0);
        if (n == 0 || (n < 0 && errno != EAGAIN && errno != EINTR)) {
            conn_close(c);      /* gone, possibly mid-request */
            return;
        }
        if (n < 0)
            return;
        c->len += (size_t)n;
        char *nl;
        while (c->fd >= 0 && !c->waiting &&
               (nl = memchr(c->buf, '\n', c->len))) {
            size_t l = (size_t)(nl - c->buf);
            handle_line(d, c, c->buf, l);
            if (c->fd < 0)
                return;
            memmove(c->buf, nl + 1, c->len - l - 1);
            c->len -= l + 1;
            if (!c->waiting)
                c->deadline = time(NULL) + CTL_TIMEOUT_S;
        }
        if (c->fd >= 0 && c->len > CTL_LINE_MAX) {
            reply_err(c, EMSGSIZE, "request too large (limit %d bytes)", CTL_LINE_MAX);
            if (c->fd >= 0)
                conn_close(c);
            return;
        }
        if (c->fd < 0 || c->waiting)
            return;
    }
}

static void on_accept(struct daemon *d)
{
    for (;;) {
        int fd = accept4(d->ctl_fd, NULL, NULL, SOCK_CLOEXEC | SOCK_NONBLOCK);
        if (fd < 0)
            return;
        struct conn *c = NULL;
        for (int i = 0; i < CTL_CONNS_MAX && !c; i++)
            if (conns[i].fd < 0)
                c = &conns[i];
        if (!c || !(c->buf = malloc(CTL_LINE_MAX + 1))) {
            close(fd);          /* full: the client sees the close */
            continue;
        }
        c->fd = fd;
        c->len = 0;
        c->waiting = false;
        c->deadline = time(NULL) + CTL_TIMEOUT_S;
    }
}

/* Reaps every ended session with nothing in flight; answers umount
 * requests waiting for them. */
static void reap(struct daemon *d)
{
    uint64_t v;
    if (read(d->reap_fd, &v, sizeof(v)) < 0) { /* spurious */ }
    for (;;) {
        pthread_mutex_lock(&d->lock);
        struct session **pp = &d->sessions, *s = NULL;
        for (; *pp; pp = &(*pp)->next)
            if ((*pp)->reaping && (*pp)->inflight == 0 && (*pp)->ended) {
                s = *pp;
                *pp = s->next;
                break;
            }
        pthread_mutex_unlock(&d->lock);
        if (!s)
            break;
        uint64_t id = s->id;
        char agent[sizeof(s->agent)], *mnt = strdup(s->mountpoint);
        const char *reason = s->end_reason;
        snprintf(agent, sizeof(agent), "%s", s->agent);
        sess_reap(s);
        pthread_mutex_lock(&d->lock);
        bool exits = d->auto_exit && !d->sessions && !d->mounting;
        pthread_mutex_unlock(&d->lock);
        for (int i = 0; i < CTL_CONNS_MAX; i++) {
            struct conn *c = &conns[i];
            if (c->fd < 0 || !c->waiting || c->wait_session != id)
                continue;
            cJSON *r = ok_obj();
            cJSON_AddNumberToObject(r, "session", (double)id);
            cJSON_AddStringToObject(r, "agent", agent);
            cJSON_AddStringToObject(r, "mountpoint", mnt ? mnt : "");
            cJSON_AddStringToObject(r, "reason", reason);
            /* The last session of a daemon that a mount started: it exits
             * now, and a caller may want to wait for that. */
            cJSON_AddBoolToObject(r, "daemon_exits", exits);
            c->waiting = false;
            c->deadline = time(NULL) + CTL_TIMEOUT_S;
            reply(c, r);
        }
        free(mnt);
    }
    loop_wake(d);               /* the loop checks whether it is done */
}

static void *ctl_main(void *arg)
{
    struct daemon *d = arg;
    struct pollfd pfd[CTL_CONNS_MAX + 2];
    int idx[CTL_CONNS_MAX + 2];

    for (;;) {
        pthread_mutex_lock(&d->lock);
        bool done = d->stopping && !d->sessions;
        pthread_mutex_unlock(&d->lock);
        if (done)
            break;
        int n = 0;
        pfd[n] = (struct pollfd){ .fd = d->reap_fd, .events = POLLIN };
        idx[n++] = -2;
        pfd[n] = (struct pollfd){ .fd = d->ctl_fd, .events = POLLIN };
        idx[n++] = -1;
        time_t now = time(NULL);
        for (int i = 0; i < CTL_CONNS_MAX; i++) {
            if (conns[i].fd < 0)
                continue;
            if (!conns[i].waiting && conns[i].deadline && now > conns[i].deadline) {
                conn_close(&conns[i]);      /* too slow */
                continue;
            }
            /* A client owed a umount reply is only watched for hang-up. */
            pfd[n] = (struct pollfd){ .fd = conns[i].fd,
                                      .events = conns[i].waiting ? 0 : POLLIN };
            idx[n++] = i;
        }
        if (poll(pfd, (nfds_t)n, 1000) < 0)
            continue;
        for (int k = 0; k < n; k++) {
            if (!pfd[k].revents)
                continue;
            if (idx[k] == -2)
                reap(d);
            else if (idx[k] == -1)
                on_accept(d);
            else if (conns[idx[k]].fd >= 0 && !conns[idx[k]].waiting)
                on_client(d, &conns[idx[k]]);
            else if (conns[idx[k]].fd >= 0 && (pfd[k].revents & (POLLHUP | POLLERR)))
                conn_close(&conns[idx[k]]);
        }
    }
    for (int i = 0; i < CTL_CONNS_MAX; i++)
        if (conns[i].fd >= 0)
            conn_close(&conns[i]);
    return NULL;
}

int ctl_start(struct daemon *d)
{
    for (int i = 0; i < CTL_CONNS_MAX; i++)
        conns[i].fd = -1;
    int rc = pthread_create(&d->ctl_thread, NULL, ctl_main, d);
    return -rc;
}

void ctl_join(struct daemon *d)
{
    uint64_t one = 1;
    if (write(d->reap_fd, &one, sizeof(one)) < 0) { /* it polls with a timeout */ }
    pthread_join(d->ctl_thread, NULL);
}
