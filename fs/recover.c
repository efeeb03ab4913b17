/* recover.c - ending the sessions of a daemon that died. */
#include "fs/ovl_i.h"
#include "fs/recover.h"
#include "journal/journal.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "fs/config.h"
#include "fs/mountinfo.h"

/* Detaching stacked mounts at one place, or many mounts of one volume,
 * stops after this many rounds so a mount that cannot go never loops. */
#define RECOVER_MAX_ROUNDS 64

struct recover_ctx {
    const char *state;      /* as given */
    char *canon;            /* realpath of state, or NULL */
    recover_note_fn note;
    void *arg;
    int rc;                 /* first error met */
    struct journal *journal;   /* opened at the first session, unless off */
    bool journal_tried;
};

struct recover_session {
    unsigned long long id;
    char agent[VOL_AGENT_NAME_MAX + 1];   /* "" when missing or invalid */
    char *mountpoint;                     /* NULL when missing */
    unsigned long long started;
    bool ephemeral;
};

static void recover_say(struct recover_ctx *c, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

static void recover_say(struct recover_ctx *c, const char *fmt, ...)
{
    va_list ap;
    if (!c->note)
        return;
    va_start(ap, fmt);
    c->note(c->arg, fmt, ap);
    va_end(ap);
}

static void recover_fail(struct recover_ctx *c, int rc)
{
    if (c->rc == 0)
        c->rc = rc;
}

/* ---- removing trees ------------------------------------------------- */

int recover_empty_dir(int dirfd)
{
    /* The daemon's own remover: openat(O_NOFOLLOW) and unlinkat, so a
     * symlink is removed, never followed. */
    return layer_empty_dir(dirfd);
}

int recover_open_agent_dir(const char *state_dir, const char *agent,
                           const char *sub)
{
    const char *parts[] = { "agents", agent, sub };
    int fd = open(state_dir, O_PATH | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0)
        return -errno;
    for (size_t i = 0; i < sizeof(parts) / sizeof(parts[0]); i++) {
        int next = openat(fd, parts[i],
                          O_PATH | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
        int err = errno;
        close(fd);
        if (next < 0)
            return err == ELOOP ? -ENOTDIR : -err;
        fd = next;
    }
    return fd;
}

/* Empties STATE/agents/NAME/SUB; a missing one is fine. */
static int recover_empty_agent_dir(struct recover_ctx *c, const char *agent,
                                   const char *sub)
{
    int fd = recover_open_agent_dir(c->state, agent, sub);
    if (fd == -ENOENT)
        return 0;
    if (fd < 0) {
        recover_say(c, "cannot open %s/agents/%s/%s: %s", c->state, agent,
                    sub, strerror(-fd));
        return fd;
    }
    int rc = recover_empty_dir(fd);
    close(fd);
    if (rc < 0)
        recover_say(c, "cannot empty %s/agents/%s/%s: %s", c->state, agent,
                    sub, strerror(-rc));
    return rc;
}

/* ---- mounts ----------------------------------------------------------- */

/* True when state (from a mount source) names this volume. */
static bool recover_is_our_state(const struct recover_ctx *c,
                                 const char *state)
{
    return strcmp(state, c->state) == 0 ||
           (c->canon && strcmp(state, c->canon) == 0);
}

/* True when e is a lanefs mount of this volume; *agent (may be NULL) gets
 * a copy of its agent name. */
static bool recover_is_ours(const struct recover_ctx *c,
                            const struct minfo_entry *e, char **agent)
{
    char *a = NULL, *s = NULL;
    bool ours = false;

    if (strcmp(e->fstype, MINFO_LANEFS_FSTYPE) != 0)
        return false;
    if (minfo_lanefs_source_split(e->source, &a, &s) == 0)
        ours = recover_is_our_state(c, s);
    if (ours && agent)
        *agent = a;
    else
        free(a);
    free(s);
    return ours;
}

/* Detaches what is mounted at mp while it is a lanefs mount of agent of
 * this volume. Returns how many mounts were detached, or -errno. */
static int recover_detach_session_mount(struct recover_ctx *c,
                                        const char *agent, const char *mp)
{
    int n = 0;
    for (int round = 0; round < RECOVER_MAX_ROUNDS; round++) {
        struct minfo_table mt;
        char *a = NULL;
        int rc = minfo_load(&mt);
        if (rc < 0)
            return rc;
        const struct minfo_entry *e = minfo_find_mountpoint(&mt, mp);
        bool ours = e && recover_is_ours(c, e, &a) && strcmp(a, agent) == 0;
        free(a);
        minfo_free(&mt);
        if (!ours)
            return n;
        if (umount2(mp, MNT_DETACH) < 0)
            return -errno;
        n++;
    }
    return n;
}

/* Detaches every remaining lanefs mount of this volume. */
static void recover_detach_orphans(struct recover_ctx *c)
{
    for (int round = 0; round < RECOVER_MAX_ROUNDS; round++) {
        struct minfo_table mt;
        int rc = minfo_load(&mt), found = 0, detached = 0;
        if (rc < 0) {
            recover_say(c, "cannot read %s: %s", MINFO_PATH, strerror(-rc));
            recover_fail(c, rc);
            return;
        }
        /* Last first: the top of a stack of mounts at one place. */
        for (size_t i = mt.n; i-- > 0;) {
            char *agent = NULL;
            if (!recover_is_ours(c, &mt.v[i], &agent))
                continue;
            found++;
            if (umount2(mt.v[i].mountpoint, MNT_DETACH) == 0) {
                detached++;
                recover_say(c, "detached %s (agent %s; no session file)",
                            mt.v[i].mountpoint, agent);
            } else if (errno != EINVAL && errno != ENOENT) {
                recover_say(c, "cannot detach %s (agent %s): %s",
                            mt.v[i].mountpoint, agent, strerror(errno));
                recover_fail(c, -errno);
            }
            free(agent);
        }
        minfo_free(&mt);
        if (!found || !detached)
            return;
    }
}

/* ---- session files ---------------------------------------------------- */

static bool recover_parse_ull(const char *s, unsigned long long *v)
{
    char *end;
    if (*s < '0' || *s > '9')
        return false;
    errno = 0;
    *v = strtoull(s, &end, 10);
    return errno == 0 && *end == '\0';
}

/* Reads STATE/sessions/NAME into *s. Unknown keys are ignored; a missing
 * or invalid agent leaves s->agent empty. */
static int recover_read_session(int dirfd, const char *name,
                                struct recover_session *s)
{
    char *line = NULL;
    size_t cap = 0;
    ssize_t len;

    int fd = openat(dirfd, name, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
    if (fd < 0)
        return -errno;
    FILE *f = fdopen(fd, "r");
    if (!f) {
        int rc = -errno;
        close(fd);
        return rc;
    }
    while ((len = getline(&line, &cap, f)) >= 0) {
        if (len > 0 && line[len - 1] == '\n')
            line[--len] = '\0';
        char *eq = strchr(line, '=');
        if (!eq)
            continue;
        *eq = '\0';
        const char *key = line, *val = eq + 1;
        if (!strcmp(key, "agent") && vol_agent_name_valid(val)) {
            snprintf(s->agent, sizeof(s->agent), "%s", val);
        } else if (!strcmp(key, "mountpoint") && val[0] == '/') {
            free(s->mountpoint);
            s->mountpoint = strdup(val);
        } else if (!strcmp(key, "started")) {
            if (!recover_parse_ull(val, &s->started))
                s->started = 0;
        } else if (!strcmp(key, "ephemeral")) {
            s->ephemeral = !strcmp(val, "1") || !strcmp(val, "true");
        }
    }
    free(line);
    fclose(f);
    return 0;
}

/* Records the crash end in the journal too (it has the session's start). */
static void recover_journal_end(struct recover_ctx *c, const struct recover_session *s)
{
    if (!c->journal_tried) {
        struct vol_config cfg;
        char err[256];
        c->journal_tried = true;
        if (vol_config_load(c->state, &cfg, err, sizeof(err)) == 0) {
            if (!cfg.no_journal && journal_open(c->state, 0, &c->journal) < 0)
                c->journal = NULL;
            vol_config_free(&cfg);
        }
    }
    if (!c->journal)
        return;
    struct journal_event ev = { .op = "session_end", .agent = s->agent[0] ? s->agent : NULL,
                                .session = s->id, .pid = -1, .handle = -1,
                                .bytes_read = -1, .bytes_written = -1, .size = -1,
                                .detail = "crash" };
    journal_log(c->journal, &ev);
}

static int recover_log_end(struct recover_ctx *c,
                           const struct recover_session *s)
{
    recover_journal_end(c, s);
    char path[PATH_MAX], line[256];
    if (snprintf(path, sizeof(path), "%s/sessions.log", c->state) >=
        (int)sizeof(path))
        return -ENAMETOOLONG;
    int n = snprintf(line, sizeof(line), "%llu %s %llu %llu crash\n", s->id,
                     s->agent[0] ? s->agent : "-", s->started,
                     (unsigned long long)time(NULL));
    int fd = open(path, O_WRONLY | O_APPEND | O_CREAT | O_NOFOLLOW | O_CLOEXEC,
                  0600);
    if (fd < 0)
        return -errno;
    int rc = 0;
    if (write(fd, line, (size_t)n) != n)
        rc = errno ? -errno : -EIO;
    if (close(fd) < 0 && rc == 0)
        rc = -errno;
    return rc;
}

/* Ends one session. Returns 0 once its file is gone, or -errno. */
static int recover_session(struct recover_ctx *c, int dirfd, const char *name,
                           unsigned long long id)
{
    struct recover_session s = { .id = id };
    int rc = recover_read_session(dirfd, name, &s);
    if (rc < 0) {
        recover_say(c, "cannot read session file %s/sessions/%s: %s",
                    c->state, name, strerror(-rc));
        goto out;
    }
    if (!s.agent[0]) {
        recover_say(c, "session %llu: no valid agent in its file; only the "
                    "file is removed", id);
    } else {
        if (s.mountpoint) {
            int n = recover_detach_session_mount(c, s.agent, s.mountpoint);
            if (n < 0) {
                recover_say(c, "session %llu: cannot detach %s: %s", id,
                            s.mountpoint, strerror(-n));
                rc = n;
                goto out;
            }
            if (n > 0)
                recover_say(c, "session %llu: detached %s", id,
                            s.mountpoint);
        }
        const char *subs[] = { "temp", "work", "upper", "index" };
        size_t n_subs = s.ephemeral ? 4 : 2;
        for (size_t i = 0; i < n_subs; i++) {
            int r = recover_empty_agent_dir(c, s.agent, subs[i]);
            if (r < 0 && rc == 0)
                rc = r;
        }
        if (rc < 0)
            goto out;
    }
    rc = recover_log_end(c, &s);
    if (rc < 0) {
        recover_say(c, "cannot append to %s/sessions.log: %s", c->state,
                    strerror(-rc));
        goto out;
    }
    if (unlinkat(dirfd, name, 0) < 0 && errno != ENOENT) {
        rc = -errno;
        recover_say(c, "cannot remove %s/sessions/%s: %s", c->state, name,
                    strerror(errno));
        goto out;
    }
    recover_say(c, "session %llu of agent %s%s%s ended (crash)%s", id,
                s.agent[0] ? s.agent : "-",
                s.mountpoint ? " at " : "", s.mountpoint ? s.mountpoint : "",
                s.ephemeral ? "; ephemeral: its upper is emptied" : "");
out:
    free(s.mountpoint);
    return rc;
}

/* Recovers every STATE/sessions/N; non-numeric names are left alone. */
static void recover_sessions(struct recover_ctx *c, unsigned *n)
{
    char path[PATH_MAX];
    snprintf(path, sizeof(path), "%s/sessions", c->state);
    int fd = open(path, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    if (fd < 0) {
        if (errno != ENOENT) {
            recover_say(c, "cannot open %s: %s", path, strerror(errno));
            recover_fail(c, -errno);
        }
        return;
    }
    DIR *d = fdopendir(fd);
    if (!d) {
        recover_fail(c, -errno);
        close(fd);
        return;
    }
    struct dirent *de;
    while ((de = readdir(d))) {
        unsigned long long id;
        if (!recover_parse_ull(de->d_name, &id))
            continue;
        int rc = recover_session(c, dirfd(d), de->d_name, id);
        if (rc < 0)
            recover_fail(c, rc);
        else
            (*n)++;
    }
    closedir(d);
}

static void recover_unlink_stale(struct recover_ctx *c, const char *name)
{
    char path[PATH_MAX];
    snprintf(path, sizeof(path), "%s/%s", c->state, name);
    if (unlink(path) == 0) {
        recover_say(c, "removed stale %s", path);
    } else if (errno != ENOENT) {
        recover_say(c, "cannot remove %s: %s", path, strerror(errno));
        recover_fail(c, -errno);
    }
}

int recover_run(const char *state_dir, recover_note_fn note, void *arg,
                unsigned *n_recovered)
{
    struct recover_ctx c = { .state = state_dir, .note = note, .arg = arg };
    unsigned n = 0;

    if (n_recovered)
        *n_recovered = 0;
    if (state_dir[0] != '/')
        return -EINVAL;
    c.canon = realpath(state_dir, NULL);
    if (!c.canon && errno != ENOMEM)
        return -errno;
    recover_sessions(&c, &n);
    recover_detach_orphans(&c);
    recover_unlink_stale(&c, "control.sock");
    recover_unlink_stale(&c, "daemon.pid");
    journal_close(c.journal);
    free(c.canon);
    if (n_recovered)
        *n_recovered = n;
    return c.rc;
}

int lanefsd_recover(const char *state_dir, unsigned *n_recovered)
{
    return recover_run(state_dir, NULL, NULL, n_recovered);
}
