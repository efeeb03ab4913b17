/* view.c - opening and closing one agent's view of a volume.
 *
 * A session starts with an empty temp layer and work dir (whatever a crash
 * left there is gone), the configured temp roots in place, and an upper
 * root that carries the lower root's metadata. */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/xattr.h>
#include <unistd.h>

#include "fs/cowmap.h"
#include "fs/log.h"
#include "fs/view.h"

static int mkdir_p(const char *path, mode_t mode)
{
    char buf[PATH_MAX];
    if (snprintf(buf, sizeof(buf), "%s", path) >= (int)sizeof(buf))
        return -ENAMETOOLONG;
    for (char *s = buf + 1; ; s++) {
        if (*s != '/' && *s != '\0')
            continue;
        char c = *s;
        *s = '\0';
        if (mkdir(buf, mode) < 0 && errno != EEXIST)
            return -errno;
        *s = c;
        if (!c)
            return 0;
    }
}

static int open_layer_dir(const char *state, const char *agent, const char *leaf)
{
    char p[PATH_MAX];
    snprintf(p, sizeof(p), "%s/agents/%s/%s", state, agent, leaf);
    int rc = mkdir_p(p, 0700);
    if (rc < 0)
        return rc;
    if (!strcmp(leaf, "upper") || !strcmp(leaf, "temp"))
        layer_spread_subdirs(p);
    int fd = open(p, O_PATH | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    return fd < 0 ? -errno : fd;
}

/* Makes the view's directory rel exist (for parents of a nested temp
 * path): nothing to do when the lower or upper has it, else mkdir in the
 * upper. */
static int ensure_view_dir(struct ovl_fs *fs, const char *rel, void *arg)
{
    struct ovl_ent e;
    char prel[PATH_MAX];
    (void)arg;
    int rc = ovl_resolve_path(fs, rel, &e);
    if (rc == 0)
        return S_ISDIR(e.st.st_mode) ? 0 : -ENOTDIR;
    if (rc != -ENOENT)
        return rc;
    rc = ovl_make_parents(fs, OVL_UPPER, rel);
    if (rc < 0)
        return rc;
    const char *name = ovl_split(rel, prel, sizeof(prel));
    int dfd = layer_dir(fs, OVL_UPPER, prel);
    if (dfd < 0)
        return dfd;
    rc = e.upper_whiteout ? -EEXIST : 0;   /* a removed dir stays removed */
    if (rc == 0 && mkdirat(dfd, name, 0755) < 0)
        rc = -errno;
    close(dfd);
    return rc;
}

/* Temp roots exist in every session, empty, world-writable and sticky like
 * /tmp, whatever the lower holds at those paths. */
static int make_temp_roots(struct ovl_fs *fs)
{
    for (size_t i = 0; i < fs->cfg->n_temp_paths; i++) {
        const char *rel = fs->cfg->temp_paths[i];
        char prel[PATH_MAX];
        const char *name = ovl_split(rel, prel, sizeof(prel));
        /* Its parents must be directories of the view to be reachable. */
        int rc = ovl_each_prefix(fs, prel, ensure_view_dir, NULL);
        if (rc < 0) {
            log_say("temp path %s is unreachable (%s); skipped", rel, strerror(-rc));
            continue;
        }
        rc = ovl_make_parents(fs, OVL_TEMP, rel);
        if (rc < 0)
            return rc;
        int dfd = layer_dir(fs, OVL_TEMP, prel);
        if (dfd < 0)
            return dfd;
        if (mkdirat(dfd, name, 01777) < 0 && errno != EEXIST)
            rc = -errno;
        close(dfd);
        if (rc < 0)
            return rc;
    }
    return 0;
}

/* Shared paths always exist in the view: a shared path the lower lacks is
 * made in the shared layer (mode 0777, so any agent's user may write
 * there), with its parents made in the agent's view. */
static int make_shared_roots(struct ovl_fs *fs)
{
    for (size_t i = 0; i < fs->cfg->n_shared_paths; i++) {
        const char *rel = fs->cfg->shared_paths[i];
        char prel[PATH_MAX];
        struct ovl_ent e;
        const char *name = ovl_split(rel, prel, sizeof(prel));
        int rc = ovl_each_prefix(fs, prel, ensure_view_dir, NULL);
        if (rc == 0)
            rc = ovl_resolve_path(fs, rel, &e);
        if (rc == 0 || rc != -ENOENT) {
            if (rc < 0)
                log_say("shared path %s is unreachable (%s); skipped", rel,
                        strerror(-rc));
            continue;
        }
        if (e.upper_whiteout)
            continue;       /* an agent removed it: that is shared too */
        rc = ovl_make_parents(fs, OVL_SHARED, rel);
        if (rc < 0)
            return rc;
        int dfd = layer_dir(fs, OVL_SHARED, prel);
        if (dfd < 0)
            return dfd;
        if (mkdirat(dfd, name, 0777) < 0 && errno != EEXIST)
            rc = -errno;
        close(dfd);
        if (rc < 0)
            return rc;
    }
    return 0;
}

/* A new upper root takes the lower root's owner, mode and times, as a
 * copy-up would, and is marked with its origin so this happens once. */
static int adopt_lower_root(struct ovl_fs *fs)
{
    char p[64];
    struct stat lst;
    uint64_t origin;
    layer_fdpath(p, sizeof(p), fs->upper_fd, ".");
    if (lgetxattr(p, OVL_XATTR_ORIGIN, &origin, sizeof(origin)) == sizeof(origin))
        return 0;
    if (fstat(fs->lower_fd, &lst) < 0)
        return -errno;
    struct timespec ts[2] = { lst.st_atim, lst.st_mtim };
    origin = lst.st_ino;
    if (chown(p, lst.st_uid, lst.st_gid) < 0 ||
        chmod(p, lst.st_mode & 07777 & ~(mode_t)(S_ISUID | S_ISGID)) < 0 ||
        utimensat(AT_FDCWD, p, ts, 0) < 0 ||
        lsetxattr(p, OVL_XATTR_ORIGIN, &origin, sizeof(origin), 0) < 0)
        return -errno;
    return 0;
}

int view_open(struct ovl_fs *fs, struct volume *v, const char *agent,
              char *err, size_t errlen)
{
    int rc;

    memset(fs, 0, sizeof(*fs));
    fs->upper_fd = fs->temp_fd = fs->work_fd = fs->index_fd = -1;
    pthread_rwlock_init(&fs->ns_lock, NULL);
    pthread_mutex_init(&fs->node_lock, NULL);
    pthread_mutex_init(&fs->handle_lock, NULL);
    cowmap_view_init(fs);
    fs->vol = v;
    snprintf(fs->agent, sizeof(fs->agent), "%s", agent);
    fs->cfg = &v->cfg;
    fs->gen = &v->gen;
    fs->merge_gen = &v->merge_gen;
    fs->lower_fd = v->lower_fd;
    fs->lower_dev = v->lower_dev;
    fs->shared_fd = v->shared_fd;
    fs->shared_work_fd = v->shared_work_fd;
    fs->shared_index_fd = v->shared_index_fd;
    /* Only the daemon changes this agent's view, and every change goes
     * through the agent's own kernel mount, which updates its caches: so
     * entries and attributes may be cached long. */
    fs->timeout = 3600.0;
    const char *pause = getenv("LANEFS_FAULT_COPYUP_PAUSE_MS");
    if (pause)
        fs->copyup_pause_ms = (unsigned)strtoul(pause, NULL, 10);

    if ((rc = fs->upper_fd = open_layer_dir(v->state_dir, agent, "upper")) < 0 ||
        (rc = fs->temp_fd = open_layer_dir(v->state_dir, agent, "temp")) < 0 ||
        (rc = fs->work_fd = open_layer_dir(v->state_dir, agent, "work")) < 0 ||
        (rc = fs->index_fd = open_layer_dir(v->state_dir, agent, "index")) < 0) {
        snprintf(err, errlen, "cannot create the layers of agent %s in %s: %s",
                 agent, v->state_dir, strerror(-rc));
        goto fail;
    }
    /* Leftovers of a session that crashed: temp files and half copies. */
    if ((rc = layer_empty_dir(fs->temp_fd)) < 0 ||
        (rc = layer_empty_dir(fs->work_fd)) < 0 ||
        (rc = make_temp_roots(fs)) < 0) {
        snprintf(err, errlen, "cannot reset the temp layer of %s: %s", agent,
                 strerror(-rc));
        goto fail;
    }
    if ((rc = adopt_lower_root(fs)) < 0) {
        snprintf(err, errlen, "cannot prepare the upper of %s: %s", agent,
                 strerror(-rc));
        goto fail;
    }
    if (v->cfg.n_shared_paths) {
        ovl_lock_write(fs);
        rc = make_shared_roots(fs);
        ovl_unlock(fs);
        if (rc < 0) {
            snprintf(err, errlen, "cannot make the shared paths of %s: %s",
                     v->state_dir, strerror(-rc));
            goto fail;
        }
    }
    rc = node_init(fs, layer_ino(OVL_LOWER, v->lower_ino));
    if (rc < 0) {
        snprintf(err, errlen, "out of memory");
        goto fail;
    }
    pthread_mutex_lock(&v->views_lock);
    fs->vnext = v->views;
    v->views = fs;
    pthread_mutex_unlock(&v->views_lock);
    return 0;
fail:
    view_close(fs);
    return rc;
}

void view_close(struct ovl_fs *fs)
{
    if (fs->vol) {
        pthread_mutex_lock(&fs->vol->views_lock);
        for (struct ovl_fs **pp = &fs->vol->views; *pp; pp = &(*pp)->vnext)
            if (*pp == fs) {
                *pp = fs->vnext;
                break;
            }
        pthread_mutex_unlock(&fs->vol->views_lock);
    }
    /* Files still open when the connection went (lazy unmount, abort) get
     * no release: close them here, or their descriptors would stay. */
    while (fs->handles)
        handle_free(fs, fs->handles);
    cowmap_view_destroy(fs);
    dircache_clear(fs);
    /* The temp layer lives for one session only. A failure is logged; the
     * next session of the agent (or recovery) empties it again. */
    int rc = 0;
    if (fs->temp_fd >= 0 && (rc = layer_empty_dir(fs->temp_fd)) < 0)
        log_say("cannot empty a temp layer: %s", strerror(-rc));
    if (fs->work_fd >= 0 && (rc = layer_empty_dir(fs->work_fd)) < 0)
        log_say("cannot empty a work dir: %s", strerror(-rc));
    int *fds[] = { &fs->upper_fd, &fs->temp_fd, &fs->work_fd, &fs->index_fd };
    for (size_t i = 0; i < sizeof(fds) / sizeof(fds[0]); i++)
        if (*fds[i] >= 0) {
            close(*fds[i]);
            *fds[i] = -1;
        }
    if (fs->root)
        node_destroy(fs);
    pthread_rwlock_destroy(&fs->ns_lock);
    pthread_mutex_destroy(&fs->node_lock);
    pthread_mutex_destroy(&fs->handle_lock);
}

int view_wipe_private(const char *state_dir, const char *agent)
{
    const char *leaves[] = { "upper", "index" };
    int rc = 0;
    for (size_t i = 0; i < sizeof(leaves) / sizeof(leaves[0]); i++) {
        char p[PATH_MAX];
        snprintf(p, sizeof(p), "%s/agents/%s/%s", state_dir, agent, leaves[i]);
        int fd = open(p, O_PATH | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
        if (fd < 0) {
            if (errno != ENOENT && rc == 0)
                rc = -errno;
            continue;
        }
        int r = layer_empty_dir(fd);
        close(fd);
        if (r < 0 && rc == 0)
            rc = r;
    }
    return rc;
}
