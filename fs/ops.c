/* ops.c - the FUSE lowlevel operations of an agent's view.
 *
 * Each op takes the namespace lock it needs, calls a worker that returns 0
 * or -errno, and replies exactly once: `if (rc < 0) fuse_reply_err(...)`.
 * Handles carry the real file descriptor in the layer that was opened. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <sys/uio.h>
#include <sys/xattr.h>
#include <unistd.h>

#include "fs/cowmap.h"
#include "fs/dir_i.h"
#include "fs/events.h"
#include "fs/leaseops.h"
#include "fs/lockops.h"
#include "fs/prefetch.h"
#include "fs/rengine.h"
#include "fs/ops.h"

struct ovl_dirh {
    struct ovl_dir d;
};

#define FS(req) ((struct ovl_fs *)fuse_req_userdata(req))
#define RD(fs)  ovl_lock_read(fs)
#define WR(fs)  ovl_lock_write(fs)
#define UN(fs)  ovl_unlock(fs)

static struct ovl_handle *HANDLE(struct fuse_file_info *fi)
{
    return (struct ovl_handle *)(uintptr_t)fi->fh;
}

/* How long the kernel may cache a name of class c. Shared paths change
 * through every agent's mount, so no mount may cache them. */
static double entry_timeout(const struct ovl_fs *fs, enum pclass c)
{
    return c == PCLASS_SHARED ? 0.0 : fs->timeout;
}

/* How long the kernel may cache attributes of st (class c). A file with
 * several hard links is several kernel inodes here (one per name), so a
 * change through one name must not leave another name's attributes stale. */
static double attr_timeout(const struct ovl_fs *fs, enum pclass c,
                           const struct stat *st)
{
    return (!S_ISDIR(st->st_mode) && st->st_nlink > 1) ? 0.0 : entry_timeout(fs, c);
}

/* Fills a FUSE entry for the child (parent, name) found as *e at rel and
 * takes one lookup on its node; c caches the parent's directory fds. */
static int make_entry_at(struct ovl_fs *fs, struct ovl_node *parent,
                         const char *name, const char *rel,
                         const struct ovl_ent *e, struct fuse_entry_param *out,
                         struct ovl_dirfds *c)
{
    struct ovl_node *n = node_lookup_ref(fs, parent, name, ovl_ent_ino_at(fs, rel, e, c));
    if (!n)
        return -ENOMEM;
    memset(out, 0, sizeof(*out));
    out->ino = node_id(fs, n);
    out->attr = e->st;
    ovl_fix_nlink(fs, e->layer, n->ino, &out->attr);
    out->attr.st_ino = n->ino;
    out->attr_timeout = attr_timeout(fs, e->cls, &e->st);
    out->entry_timeout = entry_timeout(fs, e->cls);
    return 0;
}

static int make_entry(struct ovl_fs *fs, struct ovl_node *parent,
                      const char *name, const char *rel,
                      const struct ovl_ent *e, struct fuse_entry_param *out)
{
    return make_entry_at(fs, parent, name, rel, e, out, NULL);
}

static void ovl_init(void *userdata, struct fuse_conn_info *conn)
{
    struct ovl_fs *fs = userdata;
    /* The session loop tunes the mount once this INIT is answered. */
    __atomic_store_n(&fs->readahead_pending, true, __ATOMIC_RELEASE);
    /* Writes must reach the layer in order; no kernel write-back cache. */
    conn->want &= ~FUSE_CAP_WRITEBACK_CACHE;
    conn->max_write = OVL_MAX_IO;       /* libfuse derives max_pages from it */
    if (conn->capable & FUSE_CAP_SPLICE_WRITE)
        conn->want |= FUSE_CAP_SPLICE_WRITE | FUSE_CAP_SPLICE_MOVE;
    /* Requests arrive by one read(). libfuse's default with write_buf is
     * to splice each request into a pipe and read its header from there:
     * two system calls for every request, to save one copy of large
     * writes' data only (docs/performance.md). */
    conn->want &= ~FUSE_CAP_SPLICE_READ;
}

static void ovl_lookup(fuse_req_t req, fuse_ino_t parent, const char *name)
{
    struct ovl_fs *fs = FS(req);
    struct ovl_node *p = node_get(fs, parent);
    char prel[PATH_MAX], rel[PATH_MAX];
    struct ovl_ent e = { .cls = PCLASS_PRIVATE };
    struct fuse_entry_param ep;
    int rc;

    if (strlen(name) > NAME_MAX) {
        fuse_reply_err(req, ENAMETOOLONG);
        return;
    }
    RD(fs);
    rc = node_path(p, prel, sizeof(prel));
    if (rc == 0)
        rc = ovl_resolve_child(fs, p, prel, name, &e);
    if (rc == 0)
        rc = ovl_join(rel, sizeof(rel), prel, name);
    if (rc == 0 && e.layer == OVL_NONE)
        rc = -ENOENT;
    if (rc == 0)
        rc = make_entry(fs, p, name, rel, &e, &ep);
    UN(fs);
    if (rc == -ENOENT) {
        /* Cache the miss: only this daemon changes this agent's view. */
        memset(&ep, 0, sizeof(ep));
        ep.entry_timeout = entry_timeout(fs, e.cls);
        fuse_reply_entry(req, &ep);
    } else if (rc < 0) {
        fuse_reply_err(req, -rc);
    } else {
        fuse_reply_entry(req, &ep);
    }
}

static void ovl_forget(fuse_req_t req, fuse_ino_t ino, uint64_t nlookup)
{
    struct ovl_fs *fs = FS(req);
    node_forget(fs, node_get(fs, ino), nlookup);
    fuse_reply_none(req);
}

static void ovl_forget_multi(fuse_req_t req, size_t count,
                             struct fuse_forget_data *forgets)
{
    struct ovl_fs *fs = FS(req);
    for (size_t i = 0; i < count; i++)
        node_forget(fs, node_get(fs, forgets[i].ino), forgets[i].nlookup);
    fuse_reply_none(req);
}

/* Stat of node n, from its handle when the name is gone; *cls gets its
 * class. */
static int node_stat(struct ovl_fs *fs, struct ovl_node *n,
                     struct fuse_file_info *fi, struct stat *st, enum pclass *cls)
{
    char rel[PATH_MAX];
    struct ovl_ent e = { .cls = PCLASS_PRIVATE };
    int rc = ovl_resolve_node(fs, n, rel, sizeof(rel), &e);
    if (rc == -ENOENT) {
        /* Unlinked but open: the kernel does not always pass the handle. */
        int fd = (fi && fi->fh) ? fcntl(handle_fd(HANDLE(fi), &e.layer), F_DUPFD_CLOEXEC, 0)
                                : handle_dup_of_node(fs, n, &e.layer);
        if (fd >= 0) {
            rc = fstat(fd, &e.st) < 0 ? -errno : 0;
            close(fd);
        }
    }
    if (rc < 0)
        return rc;
    *st = e.st;
    ovl_fix_nlink(fs, e.layer, n->ino, st);
    st->st_ino = n->ino;
    *cls = e.cls;
    return 0;
}

static void ovl_getattr(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
    struct ovl_fs *fs = FS(req);
    struct stat st;
    enum pclass cls;
    RD(fs);
    int rc = node_stat(fs, node_get(fs, ino), fi, &st, &cls);
    UN(fs);
    if (rc < 0)
        fuse_reply_err(req, -rc);
    else
        fuse_reply_attr(req, &st, attr_timeout(fs, cls, &st));
}

/* Applies the setattr fields to the entry at rel (resolved, writable), or
 * to the open handle fd when the name is gone (rel NULL). */
static int apply_setattr(struct ovl_fs *fs, const char *rel, const struct ovl_ent *e,
                         int fd, const struct stat *attr, int to_set)
{
    char prel[PATH_MAX], p[64 + NAME_MAX];
    int dfd = -1, rc = 0;
    const char *name = NULL;

    if (rel) {
        name = ovl_split(rel, prel, sizeof(prel));
        dfd = layer_dir(fs, e->layer, prel);
        if (dfd < 0)
            return dfd;
        layer_fdpath(p, sizeof(p), dfd, name);
    } else {
        layer_fdpath(p, sizeof(p), fd, NULL);
    }
    bool lnk = rel && S_ISLNK(e->st.st_mode);

    if (to_set & (FUSE_SET_ATTR_UID | FUSE_SET_ATTR_GID)) {
        uid_t u = (to_set & FUSE_SET_ATTR_UID) ? attr->st_uid : (uid_t)-1;
        gid_t g = (to_set & FUSE_SET_ATTR_GID) ? attr->st_gid : (gid_t)-1;
        int r = rel ? fchownat(dfd, name, u, g, AT_SYMLINK_NOFOLLOW)
                    : fchown(fd, u, g);
        if (r < 0) { rc = -errno; goto out; }
    }
    if (to_set & FUSE_SET_ATTR_MODE) {
        /* No set-id programs on a shared volume. */
        mode_t m = attr->st_mode & 07777 & ~(mode_t)(S_ISUID | S_ISGID);
        if (lnk) { rc = -EOPNOTSUPP; goto out; }
        if ((rel ? chmod(p, m) : fchmod(fd, m)) < 0) { rc = -errno; goto out; }
    }
    if (to_set & FUSE_SET_ATTR_SIZE) {
        int r = (fd >= 0) ? ftruncate(fd, attr->st_size) : truncate(p, attr->st_size);
        if (r < 0) { rc = -errno; goto out; }
    }
    if (to_set & (FUSE_SET_ATTR_ATIME | FUSE_SET_ATTR_MTIME)) {
        struct timespec ts[2] = { { .tv_nsec = UTIME_OMIT }, { .tv_nsec = UTIME_OMIT } };
        if (to_set & FUSE_SET_ATTR_ATIME_NOW)
            ts[0].tv_nsec = UTIME_NOW;
        else if (to_set & FUSE_SET_ATTR_ATIME)
            ts[0] = attr->st_atim;
        if (to_set & FUSE_SET_ATTR_MTIME_NOW)
            ts[1].tv_nsec = UTIME_NOW;
        else if (to_set & FUSE_SET_ATTR_MTIME)
            ts[1] = attr->st_mtim;
        int r = rel ? utimensat(dfd, name, ts, AT_SYMLINK_NOFOLLOW)
                    : futimens(fd, ts);
        if (r < 0) { rc = -errno; goto out; }
    }
out:
    if (dfd >= 0)
        close(dfd);
    return rc;
}

static void ovl_setattr(fuse_req_t req, fuse_ino_t ino, struct stat *attr,
                        int to_set, struct fuse_file_info *fi)
{
    struct ovl_fs *fs = FS(req);
    struct ovl_node *n = node_get(fs, ino);
    struct ovl_handle *h = fi ? HANDLE(fi) : NULL;
    char rel[PATH_MAX];
    struct ovl_ent e;
    struct stat st;
    int rc;

    WR(fs);
    rc = ovl_resolve_node(fs, n, rel, sizeof(rel), &e);
    if (rc == 0) {
        bool trunc0 = (to_set & FUSE_SET_ATTR_SIZE) && attr->st_size == 0;
        rc = ovl_copy_up(fs, rel, &e, trunc0);
        /* A handle opened before a copy-up still points at the lower. */
        int fd = (h && h->layer != OVL_LOWER) ? h->fd : -1;
        int64_t grow = 0;
        if (rc == 0 && (to_set & FUSE_SET_ATTR_SIZE) && S_ISREG(e.st.st_mode) &&
            ovl_is_private(e.layer)) {
            grow = attr->st_size - e.st.st_size;
            rc = quota_charge(fs, grow, 0);
        }
        int set = to_set;
        if (rc == 0 && (to_set & FUSE_SET_ATTR_SIZE) && S_ISREG(e.st.st_mode) &&
            ovl_is_private(e.layer)) {
            /* A lazy copy is truncated through its map. */
            struct cowmap *cow = h ? __atomic_load_n(&h->cow, __ATOMIC_ACQUIRE) : NULL;
            int r = cow ? cowmap_truncate(cow, attr->st_size)
                        : cowmap_truncate_path(fs, e.layer, rel, attr->st_size);
            rc = r < 0 ? r : 0;
            if (cow || r > 0)
                set &= ~FUSE_SET_ATTR_SIZE;
        }
        if (rc == 0)
            rc = apply_setattr(fs, rel, &e, fd, attr, set);
        if (rc < 0 && grow)
            quota_charge(fs, -grow, 0);
    } else if (rc == -ENOENT) {
        /* Unlinked but open (fchmod, futimens, ftruncate of such a file). */
        enum ovl_layer l = OVL_NONE;
        struct cowmap *cow = h ? __atomic_load_n(&h->cow, __ATOMIC_ACQUIRE) : NULL;
        int fd = (h && (h->layer != OVL_LOWER || cow))
                     ? fcntl(handle_fd(h, NULL), F_DUPFD_CLOEXEC, 0)
                     : handle_dup_of_node(fs, n, &l);
        if (fd >= 0 && l != OVL_LOWER) {
            int set = to_set;
            rc = 0;
            if (cow && (to_set & FUSE_SET_ATTR_SIZE)) {
                rc = cowmap_truncate(cow, attr->st_size);
                set &= ~FUSE_SET_ATTR_SIZE;
            }
            if (rc == 0)
                rc = apply_setattr(fs, NULL, NULL, fd, attr, set);
        }
        if (fd >= 0)
            close(fd);
    }
    enum pclass cls = PCLASS_PRIVATE;
    if (rc == 0)
        rc = node_stat(fs, n, fi, &st, &cls);
    if (rc == 0 && ev_on(fs)) {
        char what[64];
        pid_t pid = fuse_req_ctx(req)->pid;
        snprintf(what, sizeof(what), "%s%s%s%s%s",
                 (to_set & FUSE_SET_ATTR_MODE) ? "mode " : "",
                 (to_set & (FUSE_SET_ATTR_UID | FUSE_SET_ATTR_GID)) ? "owner " : "",
                 (to_set & FUSE_SET_ATTR_SIZE) ? "size " : "",
                 (to_set & (FUSE_SET_ATTR_ATIME | FUSE_SET_ATTR_MTIME)) ? "times " : "",
                 "");
        ev_op(fs, "setattr", rel, NULL, pid, what);
        if ((to_set & FUSE_SET_ATTR_MODE) && (attr->st_mode & (S_ISUID | S_ISGID)))
            ev_op(fs, "denied", rel, NULL, pid, "set-id bits stripped");
    }
    UN(fs);
    if (rc < 0)
        fuse_reply_err(req, -rc);
    else
        fuse_reply_attr(req, &st, attr_timeout(fs, cls, &st));
}

static void ovl_readlink(fuse_req_t req, fuse_ino_t ino)
{
    struct ovl_fs *fs = FS(req);
    char rel[PATH_MAX], prel[PATH_MAX], buf[PATH_MAX + 1];
    struct ovl_ent e;
    ssize_t n = 0;

    RD(fs);
    int rc = ovl_resolve_node(fs, node_get(fs, ino), rel, sizeof(rel), &e);
    if (rc == 0) {
        const char *name = ovl_split(rel, prel, sizeof(prel));
        int dfd = layer_dir(fs, e.layer, prel);
        if (dfd < 0) {
            rc = dfd;
        } else {
            n = readlinkat(dfd, name, buf, PATH_MAX);
            rc = n < 0 ? -errno : 0;
            close(dfd);
        }
    }
    UN(fs);
    if (rc < 0) {
        fuse_reply_err(req, -rc);
        return;
    }
    buf[n] = '\0';
    fuse_reply_readlink(req, buf);
}

/* ---- creating entries ---- */

struct make_node_arg {
    mode_t mode; dev_t rdev; const char *target; int flags; int fd;
    const char *op;           /* the journal's name of what is made */
};

static int make_mknod(int dfd, const char *name, void *arg)
{
    struct make_node_arg *a = arg;
    return mknodat(dfd, name, a->mode, a->rdev) < 0 ? -errno : 0;
}

static int make_mkdir(int dfd, const char *name, void *arg)
{
    struct make_node_arg *a = arg;
    return mkdirat(dfd, name, a->mode) < 0 ? -errno : 0;
}

static int make_symlink(int dfd, const char *name, void *arg)
{
    struct make_node_arg *a = arg;
    return symlinkat(a->target, dfd, name) < 0 ? -errno : 0;
}

static int make_create(int dfd, const char *name, void *arg)
{
    struct make_node_arg *a = arg;
    a->fd = openat(dfd, name, a->flags | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC,
                   a->mode);
    return a->fd < 0 ? -errno : 0;
}

/* Creates (parent, name) through make and replies with its entry (or, for
 * create, with entry and open handle). */
static void create_common(fuse_req_t req, fuse_ino_t parent, const char *name,
                          dir_make_fn make, struct make_node_arg *a,
                          struct fuse_file_info *fi)
{
    struct ovl_fs *fs = FS(req);
    struct ovl_node *p = node_get(fs, parent);
    struct dir_slot s;
    struct fuse_entry_param ep;
    struct ovl_handle *h = NULL;
    int rc;

    bool setid = a->mode & (S_ISUID | S_ISGID);
    a->mode &= ~(mode_t)(S_ISUID | S_ISGID);
    a->fd = -1;
    if (fi && !(h = calloc(1, sizeof(*h)))) {
        fuse_reply_err(req, ENOMEM);
        return;
    }
    WR(fs);
    rc = dir_slot_prepare(fs, p, name, &s);
    if (rc == 0)
        rc = dir_slot_commit(fs, &s, fuse_req_ctx(req), make, a);
    if (rc == 0) {
        s.e.made = true;        /* a new inode, never copied up: no origin */
        rc = make_entry(fs, p, name, s.rel, &s.e, &ep);
    }
    dir_slot_done(&s);
    UN(fs);
    if (rc < 0) {
        if (a->fd >= 0)
            close(a->fd);
        free(h);
        fuse_reply_err(req, -rc);
        return;
    }
    pid_t pid = fuse_req_ctx(req)->pid;
    if (h) {
        h->id = __atomic_add_fetch(&fs->next_handle, 1, __ATOMIC_RELAXED);
        if (ev_on(fs)) {        /* a create is also an open: name its handle */
            char comm[32];
            struct journal_event ev = ev_blank(a->op);
            ev.pid = pid;
            ev.comm = ev_comm(fs, pid, comm, sizeof(comm));
            ev.handle = (int64_t)h->id;
            ev_log(fs, &ev, s.rel, NULL);
        }
    } else {
        ev_op(fs, a->op, s.rel, NULL, pid, a->target);
    }
    if (setid)
        ev_op(fs, "denied", s.rel, NULL, pid, "set-id bits stripped");
    if (!fi) {
        fuse_reply_entry(req, &ep);
        return;
    }
    h->fd = a->fd;
    h->layer = s.layer;
    h->dev = s.e.st.st_dev;
    h->ino = s.e.st.st_ino;
    h->pid = pid;
    h->path = strdup(s.rel);
    h->node = node_get(fs, ep.ino);
    handle_track(fs, h);
    fi->fh = (uintptr_t)h;
    fi->direct_io = s.layer == OVL_SHARED;
    if (fuse_reply_create(req, &ep, fi) != 0)
        handle_free(fs, h);     /* the caller went away */
}

static void ovl_mknod(fuse_req_t req, fuse_ino_t parent, const char *name,
                      mode_t mode, dev_t rdev)
{
    if (!S_ISREG(mode) && !S_ISFIFO(mode) && !S_ISSOCK(mode)) {
        ev_op(FS(req), "denied", NULL, NULL, fuse_req_ctx(req)->pid, "device node");
        fuse_reply_err(req, EPERM);  /* no device nodes on a shared volume */
        return;
    }
    struct make_node_arg a = { .mode = mode, .rdev = 0, .op = "create" };
    (void)rdev;
    create_common(req, parent, name, make_mknod, &a, NULL);
}

static void ovl_mkdir(fuse_req_t req, fuse_ino_t parent, const char *name,
                      mode_t mode)
{
    struct make_node_arg a = { .mode = mode & 07777, .op = "mkdir" };
    create_common(req, parent, name, make_mkdir, &a, NULL);
}

static void ovl_symlink(fuse_req_t req, const char *link, fuse_ino_t parent,
                        const char *name)
{
    struct make_node_arg a = { .target = link, .op = "symlink" };
    create_common(req, parent, name, make_symlink, &a, NULL);
}

static void ovl_create(fuse_req_t req, fuse_ino_t parent, const char *name,
                       mode_t mode, struct fuse_file_info *fi)
{
    struct make_node_arg a = {
        .mode = mode & 07777,
        .flags = fi->flags & ~(O_CREAT | O_EXCL | O_NOCTTY | O_TRUNC),
        .op = "create",
    };
    create_common(req, parent, name, make_create, &a, fi);
}

static void ovl_link(fuse_req_t req, fuse_ino_t ino, fuse_ino_t newparent,
                     const char *newname)
{
    struct ovl_fs *fs = FS(req);
    struct ovl_node *np = node_get(fs, newparent);
    struct dir_slot s = { .dfd = -1 };
    struct fuse_entry_param ep;

    WR(fs);
    int rc = dir_link(fs, node_get(fs, ino), np, newname, fuse_req_ctx(req), &s);
    if (rc == 0)
        rc = make_entry(fs, np, newname, s.rel, &s.e, &ep);
    dir_slot_done(&s);
    UN(fs);
    if (rc < 0) {
        fuse_reply_err(req, -rc);
        return;
    }
    ev_op(fs, "link", s.rel, NULL, fuse_req_ctx(req)->pid, NULL);
    /* Each name is its own kernel inode here: the source's cached link
     * count is stale now. Attributes only, so no inode lock is needed. */
    fuse_lowlevel_notify_inval_inode(fs->se, ino, -1, 0);
    fuse_reply_entry(req, &ep);
}

/* The view path of (parent, name) into rel (for the journal); "" when it
 * cannot be had. Caller holds the namespace lock. */
static void child_rel(struct ovl_fs *fs, fuse_ino_t parent, const char *name,
                      char *rel, size_t len)
{
    char prel[PATH_MAX];
    if (!ev_on(fs) || node_path(node_get(fs, parent), prel, sizeof(prel)) < 0 ||
        ovl_join(rel, len, prel, name) < 0)
        rel[0] = '\0';
}

static void remove_common(fuse_req_t req, fuse_ino_t parent, const char *name,
                          bool dir)
{
    struct ovl_fs *fs = FS(req);
    char rel[PATH_MAX];
    WR(fs);
    child_rel(fs, parent, name, rel, sizeof(rel));
    int rc = dir_unlink(fs, node_get(fs, parent), name, dir);
    UN(fs);
    if (rc == 0)
        ev_op(fs, dir ? "rmdir" : "unlink", rel, NULL, fuse_req_ctx(req)->pid, NULL);
    fuse_reply_err(req, -rc);
}

static void ovl_unlink(fuse_req_t req, fuse_ino_t parent, const char *name)
{
    remove_common(req, parent, name, false);
}

static void ovl_rmdir(fuse_req_t req, fuse_ino_t parent, const char *name)
{
    remove_common(req, parent, name, true);
}

static void ovl_rename(fuse_req_t req, fuse_ino_t parent, const char *name,
                       fuse_ino_t newparent, const char *newname,
                       unsigned int flags)
{
    struct ovl_fs *fs = FS(req);
    char from[PATH_MAX], to[PATH_MAX];
    WR(fs);
    child_rel(fs, parent, name, from, sizeof(from));
    child_rel(fs, newparent, newname, to, sizeof(to));
    int rc = dir_rename(fs, node_get(fs, parent), name,
                        node_get(fs, newparent), newname, flags);
    UN(fs);
    if (rc == 0)
        ev_op(fs, "rename", from, to, fuse_req_ctx(req)->pid,
              (flags & RENAME_EXCHANGE) ? "exchange" : NULL);
    fuse_reply_err(req, -rc);
}

/* ---- files ---- */

static int open_node(struct ovl_fs *fs, struct ovl_node *n, int flags,
                     struct ovl_handle *h, enum pclass *cls)
{
    char rel[PATH_MAX];
    struct ovl_ent e;
    bool writes = (flags & O_ACCMODE) != O_RDONLY || (flags & O_TRUNC);
    int rc = ovl_resolve_node(fs, n, rel, sizeof(rel), &e);
    if (rc < 0)
        return rc;
    if (writes) {
        leaseops_check_write(fs, rel, &e);   /* advisory: logged, not refused */
        rc = ovl_copy_up(fs, rel, &e, flags & O_TRUNC);
        if (rc < 0)
            return rc;
    }
    flags &= ~(O_CREAT | O_EXCL | O_NOCTTY);
    flags |= O_NOFOLLOW;
    int fd = layer_open(fs, e.layer, rel,
                        flags | (e.layer == OVL_LOWER ? O_NOATIME : 0), 0);
    if (fd == -EPERM && e.layer == OVL_LOWER)
        fd = layer_open(fs, e.layer, rel, flags, 0);
    if (fd < 0)
        return fd;
    if (ovl_is_private(e.layer) && S_ISREG(e.st.st_mode)) {
        /* A lazy copy reads and writes through its map. */
        rc = cowmap_get(fs, fd, &h->cow);
        if (rc == 0 && h->cow && (flags & O_TRUNC))
            rc = cowmap_truncate(h->cow, 0);
        if (rc < 0) {
            cowmap_put(fs, h->cow);
            h->cow = NULL;
            close(fd);
            return rc == -ESTALE ? -EIO : rc;
        }
    }
    h->fd = fd;
    h->layer = e.layer;
    h->dev = e.st.st_dev;
    h->ino = e.st.st_ino;
    h->path = strdup(rel);      /* for status only: no path is no failure */
    h->node = n;
    *cls = e.cls;
    handle_track(fs, h);
    return 0;
}

static void ovl_open(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
    struct ovl_fs *fs = FS(req);
    struct ovl_handle *h = calloc(1, sizeof(*h));
    bool writes = (fi->flags & O_ACCMODE) != O_RDONLY || (fi->flags & O_TRUNC);
    int rc;

    if (!h) {
        fuse_reply_err(req, ENOMEM);
        return;
    }
    h->pid = fuse_req_ctx(req)->pid;
    h->id = __atomic_add_fetch(&fs->next_handle, 1, __ATOMIC_RELAXED);
    /* A write-open may copy up, which changes the namespace. */
    if (writes) WR(fs); else RD(fs);
    enum pclass cls = PCLASS_PRIVATE;
    rc = open_node(fs, node_get(fs, ino), fi->flags, h, &cls);
    UN(fs);
    if (rc < 0) {
        free(h);
        fuse_reply_err(req, -rc);
        return;
    }
    if (ev_on(fs)) {
        char comm[32];
        struct journal_event ev = ev_blank("open");
        ev.pid = h->pid;
        ev.comm = ev_comm(fs, h->pid, comm, sizeof(comm));
        ev.handle = (int64_t)h->id;
        ev.detail = writes ? "write" : "read";
        ev_log(fs, &ev, h->path, NULL);
    }
    fi->fh = (uintptr_t)h;
    /* Each mount has its own page cache: a shared file is read and written
     * past it, so every agent sees the bytes the others wrote. Lower data
     * of other paths never changes: keep its pages across opens. */
    fi->direct_io = cls == PCLASS_SHARED;
    fi->keep_cache = h->layer == OVL_LOWER && cls != PCLASS_SHARED;
    if (fuse_reply_open(req, fi) != 0)
        handle_free(fs, h);     /* the caller went away */
}

/* A read that needs no scheduling (rengine_route): of an agent without
 * limits that reads alone, with no volume cap; or a light one next to other
 * agents' reads (small, few of the agent's unanswered). It goes to this
 * worker's own ring (rengine_read_here), which answers it at once from the
 * page cache, or later from the device without the engine thread's
 * hand-off. A lone agent's concurrent reads too: 4 concurrent random
 * readers got 0.89-0.96 of the engine-off rate this way against 0.77-0.91
 * through the engine thread (make bench-engine, two runs each, and 3 x 20
 * paired bursts by hand: 0.89-0.99 against 0.87-0.89). While several
 * agents read, every other read is scheduled, cached or not: the kernel's
 * readahead of the layer file makes most of a stream's reads page-cache
 * hits, so answering those at once would leave the scheduler nothing to
 * share out. A light read passes the scheduler because it would give an
 * agent with next to nothing queued the next slot anyway; on the worker's
 * ring it saves the two hand-offs through the engine thread, which are
 * what it waits for beside the device while streams keep the CPUs busy
 * (docs/readengine.md). True when taken. */
static bool read_on_worker(struct ovl_fs *fs, struct ovl_handle *h, fuse_req_t req,
                           size_t size, off_t off)
{
    struct rengine *e = fs->vol->rengine;
    enum re_route route = rengine_route(e, fs->sid,
        __atomic_load_n(&fs->read_unlimited, __ATOMIC_RELAXED), size,
        __atomic_load_n(&fs->in_engine.unanswered, __ATOMIC_RELAXED));
    if (route == RE_ROUTE_ENGINE)
        return false;
    int rc = rengine_read_here(e, fs->sid, req, h->fd, off, size, &fs->in_engine,
                               route == RE_ROUTE_HERE_SMALL);
    if (rc < 0)
        return false;
    if (rc == 1) {
        __atomic_add_fetch(&fs->cached_reads, 1, __ATOMIC_RELAXED);
        __atomic_add_fetch(&fs->cached_bytes, size, __ATOMIC_RELAXED);
        rengine_note_cached(e, fs->sid, size);
    } else {
        __atomic_add_fetch(&fs->direct_reads, 1, __ATOMIC_RELAXED);
        __atomic_add_fetch(&fs->direct_bytes, size, __ATOMIC_RELAXED);
    }
    return true;
}

static void ovl_read(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off,
                     struct fuse_file_info *fi)
{
    struct fuse_bufvec buf = FUSE_BUFVEC_INIT(size);
    struct ovl_fs *fs = FS(req);
    struct ovl_handle *h = HANDLE(fi);
    struct cowmap *cow = __atomic_load_n(&h->cow, __ATOMIC_ACQUIRE);
    (void)ino;
    __atomic_add_fetch(&fs->bytes_read, size, __ATOMIC_RELAXED);
    __atomic_add_fetch(&h->bytes_read, size, __ATOMIC_RELAXED);
    if (cow && !cowmap_complete(cow)) {
        /* A lazy copy: each range from the layer that holds it. */
        char *b = malloc(size ? size : 1);
        ssize_t n = b ? cowmap_read(cow, b, size, off) : -ENOMEM;
        if (n < 0)
            fuse_reply_err(req, (int)-n);
        else
            fuse_reply_buf(req, b, (size_t)n);
        free(b);
        return;
    }
    /* Shared data (the lower, the shared layer) is read by the engine, in
     * the order its scheduler gives; the worker goes back at once. */
    if (!cow && fs->vol->rengine && (h->layer == OVL_LOWER || h->layer == OVL_SHARED) &&
        (read_on_worker(fs, h, req, size, off) ||
         rengine_read(fs->vol->rengine, fs->sid, req, h->fd, off, size,
                      &fs->in_engine) == 0))
        return;
    /* Not shared data, or the engine could not take it: read here. */
    buf.buf[0].flags = FUSE_BUF_IS_FD | FUSE_BUF_FD_SEEK;
    buf.buf[0].fd = handle_fd(h, NULL);
    buf.buf[0].pos = off;
    fuse_reply_data(req, &buf, FUSE_BUF_SPLICE_MOVE);
}

static void ovl_write_buf(fuse_req_t req, fuse_ino_t ino,
                          struct fuse_bufvec *in, off_t off,
                          struct fuse_file_info *fi)
{
    struct ovl_fs *fs = FS(req);
    struct ovl_handle *h = HANDLE(fi);
    size_t len = fuse_buf_size(in);
    struct fuse_bufvec out = FUSE_BUFVEC_INIT(len);
    int64_t grow = 0;
    struct stat st;
    (void)ino;

    if (quota_on(fs) && ovl_is_private(h->layer)) {
        /* What the write adds past the end counts against the quota. */
        if (fstat(h->fd, &st) < 0) {
            fuse_reply_err(req, errno);
            return;
        }
        if (off + (off_t)len > st.st_size)
            grow = off + (off_t)len - st.st_size;
        int rc = quota_charge(fs, grow, 0);
        if (rc < 0) {
            fuse_reply_err(req, -rc);
            return;
        }
    }
    out.buf[0].flags = FUSE_BUF_IS_FD | FUSE_BUF_FD_SEEK;
    out.buf[0].fd = h->fd;
    out.buf[0].pos = off;
    /* A lazy copy fills the blocks the write touches first, and marks
     * them once the write is in. */
    struct cowmap *cow = __atomic_load_n(&h->cow, __ATOMIC_ACQUIRE);
    struct cowmap_wr w;
    ssize_t n = cow ? cowmap_write_begin(cow, off, (off_t)len, &w, &fs->cow_fault) : 0;
    if (n == 0) {
        n = fuse_buf_copy(&out, in, 0);
        int rc = cow ? cowmap_write_end(cow, &w, n, &fs->cow_fault) : 0;
        if (rc < 0)
            n = rc;
    }
    if (grow) {
        /* Refund what a short or failed write did not add. */
        off_t end = n > 0 ? off + n : off;
        int64_t grew = end > st.st_size ? end - st.st_size : 0;
        quota_charge(fs, grew - grow, 0);
    }
    if (n < 0) {
        fuse_reply_err(req, (int)-n);
        return;
    }
    __atomic_add_fetch(&fs->bytes_written, (uint64_t)n, __ATOMIC_RELAXED);
    __atomic_add_fetch(&h->bytes_written, (uint64_t)n, __ATOMIC_RELAXED);
    fuse_reply_write(req, (size_t)n);
}

static void ovl_flush(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
    (void)ino;
    /* close() drops the closing process's fcntl locks on the file. */
    lockops_release_owner(FS(req), fi);
    fuse_reply_err(req, 0);
}

static void ovl_release(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
    struct ovl_fs *fs = FS(req);
    struct ovl_handle *h = HANDLE(fi);
    (void)ino;
    if (ev_on(fs)) {
        char comm[32];
        struct journal_event ev = ev_blank("close");
        ev.pid = h->pid;
        ev.comm = ev_comm(fs, h->pid, comm, sizeof(comm));
        ev.handle = (int64_t)h->id;
        ev.bytes_read = (int64_t)__atomic_load_n(&h->bytes_read, __ATOMIC_RELAXED);
        ev.bytes_written = (int64_t)__atomic_load_n(&h->bytes_written, __ATOMIC_RELAXED);
        ev_log(fs, &ev, h->path, NULL);
    }
    lockops_release_handle(fs, fi);
    handle_free(fs, h);
    fuse_reply_err(req, 0);
}

static void ovl_fallocate(fuse_req_t req, fuse_ino_t ino, int mode,
                          off_t off, off_t len, struct fuse_file_info *fi)
{
    struct ovl_fs *fs = FS(req);
    struct ovl_handle *h = HANDLE(fi);
    struct cowmap *cow = __atomic_load_n(&h->cow, __ATOMIC_ACQUIRE);
    struct cowmap_wr w;
    int rc = 0;
    (void)ino;
    if (cow && (mode & (FALLOC_FL_COLLAPSE_RANGE | FALLOC_FL_INSERT_RANGE))) {
        rc = -cowmap_fill(cow);     /* data moves: no lower left below it */
    } else if (cow && (mode & (FALLOC_FL_PUNCH_HOLE | FALLOC_FL_ZERO_RANGE))) {
        /* Zeroes written: like a write of that range. */
        rc = -cowmap_write_begin(cow, off, len, &w, &fs->cow_fault);
        if (rc == 0) {
            rc = fallocate(h->fd, mode, off, len) < 0 ? errno : 0;
            int r = cowmap_write_end(cow, &w, rc ? -1 : (ssize_t)len, &fs->cow_fault);
            rc = rc ? rc : -r;
        }
        fuse_reply_err(req, rc);
        return;
    }
    if (rc == 0)
        rc = fallocate(h->fd, mode, off, len) < 0 ? errno : 0;
    fuse_reply_err(req, rc);
}

static void ovl_fsync(fuse_req_t req, fuse_ino_t ino, int datasync,
                      struct fuse_file_info *fi)
{
    int fd = HANDLE(fi)->fd;
    (void)ino;
    int rc = (datasync ? fdatasync(fd) : fsync(fd)) < 0 ? errno : 0;
    fuse_reply_err(req, rc);
}

/* ---- directories ---- */

static void ovl_opendir(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
    struct ovl_fs *fs = FS(req);
    struct ovl_dirh *dh = calloc(1, sizeof(*dh));
    char rel[PATH_MAX];
    if (!dh) {
        fuse_reply_err(req, ENOMEM);
        return;
    }
    RD(fs);
    int rc = node_path(node_get(fs, ino), rel, sizeof(rel));
    UN(fs);
    if (rc < 0) {
        free(dh);
        fuse_reply_err(req, -rc);
        return;
    }
    /* The listing is taken by the first readdir (offset 0): when the kernel
     * serves the directory from its cache, none is needed at all. */
    pthread_mutex_init(&dh->d.lock, NULL);
    fi->fh = (uintptr_t)dh;
    /* The kernel may keep listings: it drops them itself when an entry of
     * the directory changes through this mount, the only way it changes
     * (shared directories change through every mount: never kept). */
    fi->cache_readdir = pclass_of(fs->cfg, rel) != PCLASS_SHARED;
    fi->keep_cache = fi->cache_readdir;
    if (fuse_reply_open(req, fi) != 0) {
        pthread_mutex_destroy(&dh->d.lock);
        free(dh);
    }
}

/* A listing with attributes is a walker's (find, ls -l, du): the
 * subdirectories it names are warmed in the lower for the walker's next
 * steps (prefetch.h), the first named first, when the directory merges the
 * lower. Only the first PREFETCH_QUEUE subdirectories are asked for: the
 * queue would drop the rest, and a huge directory's listing should not pay
 * for them. */
static void prefetch_subdirs(struct ovl_fs *fs, const char *prel,
                             const struct ovl_dir *d)
{
    char rel[PATH_MAX];
    size_t first = 2, end = first, dirs = 0;    /* after "." and ".." */
    if (!fs->vol->prefetch)
        return;                 /* LANEFS_PREFETCH=off */
    prefetch_listed(fs->vol->prefetch, prel);
    if (!d->lower_merge)
        return;                 /* nothing of the lower below it */
    while (end < d->n && dirs < PREFETCH_QUEUE)
        dirs += d->ents[end++].type == DT_DIR;
    for (size_t i = end; i-- > first;) {
        const struct ovl_dirent *de = &d->ents[i];
        if (de->type != DT_DIR)
            continue;
        if (ovl_join(rel, sizeof(rel), prel, de->name) == 0)
            prefetch_dir(fs->vol->prefetch, rel);
    }
}

static void readdir_common(fuse_req_t req, fuse_ino_t ino, size_t size,
                           off_t off, struct fuse_file_info *fi, bool plus)
{
    struct ovl_fs *fs = FS(req);
    struct ovl_node *n = node_get(fs, ino);
    struct ovl_dirh *dh = (struct ovl_dirh *)(uintptr_t)fi->fh;
    char *buf = malloc(size), prel[PATH_MAX], rel[PATH_MAX];
    struct ovl_dirfds fds;
    size_t used = 0;
    int rc = 0;

    if (!buf) {
        fuse_reply_err(req, ENOMEM);
        return;
    }
    ovl_dirfds_init(&fds);
    pthread_mutex_lock(&dh->d.lock);
    RD(fs);
    if (off == 0)
        rc = ovl_dir_snapshot(fs, n, &dh->d);   /* start or rewinddir */
    if (rc == 0 && plus)
        rc = node_path(n, prel, sizeof(prel));
    if (rc == 0 && plus && off == 0)
        prefetch_subdirs(fs, prel, &dh->d);
    for (size_t i = (size_t)off; rc == 0 && i < dh->d.n; i++) {
        const struct ovl_dirent *de = &dh->d.ents[i];
        struct stat st = { .st_ino = de->ino, .st_mode = (mode_t)de->type << 12 };
        size_t left = size - used, need;
        if (!plus) {
            need = fuse_add_direntry(req, buf + used, left, de->name, &st,
                                     (off_t)i + 1);
        } else {
            struct fuse_entry_param ep = { .attr = st };
            struct ovl_ent e;
            bool dot = !strcmp(de->name, ".") || !strcmp(de->name, "..");
            bool got = !dot &&
                ovl_resolve_child_at(fs, n, prel, de->name, &e, &fds) == 0 &&
                e.layer != OVL_NONE &&
                ovl_join(rel, sizeof(rel), prel, de->name) == 0 &&
                make_entry_at(fs, n, de->name, rel, &e, &ep, &fds) == 0;
            need = fuse_add_direntry_plus(req, buf + used, left, de->name, &ep,
                                          (off_t)i + 1);
            if (got && need > left)   /* not sent: undo the lookup */
                node_forget(fs, node_get(fs, ep.ino), 1);
        }
        if (need > left)
            break;
        used += need;
    }
    ovl_dirfds_close(&fds);
    UN(fs);
    pthread_mutex_unlock(&dh->d.lock);
    if (rc < 0)
        fuse_reply_err(req, -rc);
    else
        fuse_reply_buf(req, buf, used);
    free(buf);
}

static void ovl_readdir(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off,
                        struct fuse_file_info *fi)
{
    readdir_common(req, ino, size, off, fi, false);
}

static void ovl_readdirplus(fuse_req_t req, fuse_ino_t ino, size_t size,
                            off_t off, struct fuse_file_info *fi)
{
    readdir_common(req, ino, size, off, fi, true);
}

static void ovl_releasedir(fuse_req_t req, fuse_ino_t ino,
                           struct fuse_file_info *fi)
{
    struct ovl_dirh *dh = (struct ovl_dirh *)(uintptr_t)fi->fh;
    (void)ino;
    ovl_dir_clear(&dh->d);
    pthread_mutex_destroy(&dh->d.lock);
    free(dh);
    fuse_reply_err(req, 0);
}

static void ovl_fsyncdir(fuse_req_t req, fuse_ino_t ino, int datasync,
                         struct fuse_file_info *fi)
{
    struct ovl_fs *fs = FS(req);
    char rel[PATH_MAX];
    struct ovl_ent e;
    (void)datasync; (void)fi;
    RD(fs);
    int rc = ovl_resolve_node(fs, node_get(fs, ino), rel, sizeof(rel), &e);
    if (rc == 0 && e.layer != OVL_LOWER) {
        int fd = layer_open(fs, e.layer, rel, O_RDONLY | O_DIRECTORY, 0);
        rc = fd < 0 ? fd : (fsync(fd) < 0 ? -errno : 0);
        if (fd >= 0)
            close(fd);
    }
    UN(fs);
    fuse_reply_err(req, -rc);
}

static void ovl_statfs(fuse_req_t req, fuse_ino_t ino)
{
    struct ovl_fs *fs = FS(req);
    struct statvfs sv;
    (void)ino;
    if (fstatvfs(fs->upper_fd, &sv) < 0) {
        fuse_reply_err(req, errno);
        return;
    }
    /* An agent with a quota sees its own limit and use, not the disk's. */
    const struct quota *q = &fs->quota;
    int64_t bused = __atomic_load_n(&q->bytes_used, __ATOMIC_RELAXED);
    int64_t iused = __atomic_load_n(&q->inodes_used, __ATOMIC_RELAXED);
    if (q->bytes_limit && sv.f_frsize) {
        fsblkcnt_t total = q->bytes_limit / sv.f_frsize;
        fsblkcnt_t used = bused > 0 ? (fsblkcnt_t)bused / sv.f_frsize : 0;
        fsblkcnt_t left = used < total ? total - used : 0;
        sv.f_blocks = total;
        sv.f_bfree = left < sv.f_bfree ? left : sv.f_bfree;
        sv.f_bavail = left < sv.f_bavail ? left : sv.f_bavail;
    }
    if (q->inodes_limit) {
        fsfilcnt_t used = iused > 0 ? (fsfilcnt_t)iused : 0;
        fsfilcnt_t left = used < q->inodes_limit ? q->inodes_limit - used : 0;
        sv.f_files = q->inodes_limit;
        sv.f_ffree = left < sv.f_ffree ? left : sv.f_ffree;
        sv.f_favail = left < sv.f_favail ? left : sv.f_favail;
    }
    fuse_reply_statfs(req, &sv);
}

static void ovl_access(fuse_req_t req, fuse_ino_t ino, int mask)
{
    struct ovl_fs *fs = FS(req);
    struct stat st;
    enum pclass cls;
    (void)mask;     /* mode bits are checked by the kernel */
    RD(fs);
    int rc = node_stat(fs, node_get(fs, ino), NULL, &st, &cls);
    UN(fs);
    fuse_reply_err(req, -rc);
}

const struct fuse_lowlevel_ops ovl_ops = {
    .init = ovl_init,
    .lookup = ovl_lookup,
    .forget = ovl_forget,
    .forget_multi = ovl_forget_multi,
    .getattr = ovl_getattr,
    .setattr = ovl_setattr,
    .readlink = ovl_readlink,
    .mknod = ovl_mknod,
    .mkdir = ovl_mkdir,
    .unlink = ovl_unlink,
    .rmdir = ovl_rmdir,
    .symlink = ovl_symlink,
    .rename = ovl_rename,
    .link = ovl_link,
    .open = ovl_open,
    .read = ovl_read,
    .write_buf = ovl_write_buf,
    .flush = ovl_flush,
    .release = ovl_release,
    .fsync = ovl_fsync,
    .fallocate = ovl_fallocate,
    .getlk = lockops_getlk,
    .setlk = lockops_setlk,
    .flock = lockops_flock,
    .opendir = ovl_opendir,
    .readdir = ovl_readdir,
    .readdirplus = ovl_readdirplus,
    .releasedir = ovl_releasedir,
    .fsyncdir = ovl_fsyncdir,
    .statfs = ovl_statfs,
    .setxattr = ovl_setxattr,
    .getxattr = ovl_getxattr,
    .listxattr = ovl_listxattr,
    .removexattr = ovl_removexattr,
    .create = ovl_create,
    .access = ovl_access,
};
