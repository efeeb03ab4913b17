/* dir.c - namespace changes: creating, removing and renaming entries.
 *
 * All functions here are called with fs->ns_lock held for writing and return
 * 0 or -errno. New entries go to the temp layer for temp-class paths and to
 * the upper otherwise. Replacing an upper whiteout is atomic: the new entry
 * is built in the work dir and renamed over it (directories, which cannot
 * replace a non-directory, are exchanged with it and the whiteout removed).
 * Removing a name that exists in the lower leaves a whiteout, installed by
 * one rename so there is no moment when the lower entry shows again. */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/xattr.h>
#include <unistd.h>

#include "fs/cowmap.h"
#include "fs/dir_i.h"
#include "fs/events.h"

static int set_opaque(int dfd, const char *name)
{
    char p[64 + NAME_MAX];
    layer_fdpath(p, sizeof(p), dfd, name);
    return lsetxattr(p, OVL_XATTR_OPAQUE, "y", 1, 0) < 0 ? -errno : 0;
}

int dir_slot_prepare(struct ovl_fs *fs, struct ovl_node *parent,
                     const char *name, struct dir_slot *s)
{
    struct ovl_ent pe;
    char prel[PATH_MAX];
    int rc;

    memset(s, 0, sizeof(*s));
    s->dfd = -1;
    if (strlen(name) > NAME_MAX)
        return -ENAMETOOLONG;
    rc = ovl_resolve_node(fs, parent, prel, sizeof(prel), &pe);
    if (rc < 0)
        return rc;
    if (!S_ISDIR(pe.st.st_mode))
        return -ENOTDIR;
    s->parent_st = pe.st;
    rc = ovl_resolve_child(fs, parent, prel, name, &s->e);
    if (rc < 0)
        return rc;
    if (s->e.layer != OVL_NONE)
        return -EEXIST;
    rc = ovl_join(s->rel, sizeof(s->rel), prel, name);
    if (rc < 0)
        return rc;
    s->name = name;
    s->layer = ovl_upper_of(s->e.cls);
    s->dfd = layer_dir(fs, s->layer, prel);
    if (s->dfd >= 0)            /* the common case: the parent is there */
        return 0;
    rc = ovl_make_parents(fs, s->layer, s->rel);
    if (rc < 0)
        return rc;
    s->dfd = layer_dir(fs, s->layer, prel);
    return s->dfd < 0 ? s->dfd : 0;
}

/* The owner the kernel gave an entry the daemon just made in a directory
 * of mode pmode and group pgid: the daemon's own, or the set-gid parent's
 * group. */
static void made_owner(mode_t pmode, gid_t pgid, uid_t *uid, gid_t *gid)
{
    static uid_t euid = (uid_t)-1;      /* set last, after egid */
    static gid_t egid = (gid_t)-1;
    uid_t u = __atomic_load_n(&euid, __ATOMIC_ACQUIRE);
    if (u == (uid_t)-1) {
        __atomic_store_n(&egid, getegid(), __ATOMIC_RELAXED);
        u = geteuid();
        __atomic_store_n(&euid, u, __ATOMIC_RELEASE);
    }
    *uid = u;
    *gid = (pmode & S_ISGID) ? pgid : __atomic_load_n(&egid, __ATOMIC_RELAXED);
}

void dir_slot_done(struct dir_slot *s)
{
    if (s->dfd >= 0)
        close(s->dfd);
    s->dfd = -1;
}

int dir_slot_commit(struct ovl_fs *fs, struct dir_slot *s,
                    const struct fuse_ctx *ctx, dir_make_fn make, void *arg)
{
    char wname[64];
    bool via_work = ovl_is_upper(s->layer) && s->e.upper_whiteout;
    int dfd = via_work ? layer_work_fd(fs, s->layer) : s->dfd;
    const char *name = s->name;
    int rc;

    if (via_work) {
        layer_work_name(fs, wname, sizeof(wname));
        name = wname;
    }
    int64_t qinodes = ovl_is_private(s->layer) ? 1 : 0;
    if ((rc = quota_charge(fs, 0, qinodes)) < 0)
        return rc;
    rc = make(dfd, name, arg);
    if (rc < 0) {
        quota_charge(fs, 0, -qinodes);
        return rc;
    }

    /* The daemon creates as root: hand the entry to the caller. A set-gid
     * parent passes its group on, as on any POSIX filesystem. The chown is
     * skipped when the entry already has that owner (a caller running as
     * the daemon's user); the stat below checks the guess. */
    gid_t gid = (s->parent_st.st_mode & S_ISGID) ? s->parent_st.st_gid : ctx->gid;
    uid_t has_uid;
    gid_t has_gid;
    made_owner(s->parent_st.st_mode, s->parent_st.st_gid, &has_uid, &has_gid);
    if ((ctx->uid != has_uid || gid != has_gid) &&
        fchownat(dfd, name, ctx->uid, gid, AT_SYMLINK_NOFOLLOW) < 0) {
        rc = -errno;
        goto fail;
    }
    if (via_work) {
        struct stat st;
        if (fstatat(dfd, name, &st, AT_SYMLINK_NOFOLLOW) < 0) {
            rc = -errno;
            goto fail;
        }
        if (S_ISDIR(st.st_mode)) {
            /* A directory made where a lower one was deleted must not show
             * the lower's old entries: opaque. */
            rc = set_opaque(dfd, name);
            if (rc == 0 && renameat2(dfd, name, s->dfd, s->name,
                                     RENAME_EXCHANGE) < 0)
                rc = -errno;
            if (rc < 0)
                goto fail;
            unlinkat(dfd, name, 0);     /* the whiteout, now in work */
        } else if (renameat(dfd, name, s->dfd, s->name) < 0) {
            rc = -errno;
            goto fail;
        }
    }
    if (fstatat(s->dfd, s->name, &s->e.st, AT_SYMLINK_NOFOLLOW) < 0)
        return -errno;
    if ((s->e.st.st_uid != ctx->uid || s->e.st.st_gid != gid) &&
        (fchownat(s->dfd, s->name, ctx->uid, gid, AT_SYMLINK_NOFOLLOW) < 0 ||
         fstatat(s->dfd, s->name, &s->e.st, AT_SYMLINK_NOFOLLOW) < 0))
        return -errno;      /* the filesystem chose another group (grpid) */
    s->e.layer = s->layer;
    s->e.upper_whiteout = false;
    s->e.lower_merge = false;
    /* No generation bump: a new name changes where no existing node lives
     * (the name had none) nor whether any directory merges. Parents made
     * on the way were copied up, which bumps it. */
    return 0;
fail:
    quota_charge(fs, 0, -qinodes);
    layer_rm_tree(dfd, name);
    return rc;
}

/* What removing the name *e frees of its layer's quota: the name, and the
 * data with the last link. */
static void quota_release(struct ovl_fs *fs, const struct ovl_ent *e)
{
    if (!ovl_is_private(e->layer))
        return;
    int64_t bytes = (S_ISREG(e->st.st_mode) && e->st.st_nlink <= 1) ? e->st.st_size : 0;
    quota_charge(fs, -bytes, -1);
}

/* Replaces the entry name in udfd (a dir of upper layer l) by a whiteout in
 * one rename. */
static int whiteout_over(struct ovl_fs *fs, enum ovl_layer l, int udfd,
                         const char *name, bool dir)
{
    char wname[64];
    int wfd = layer_work_fd(fs, l);
    layer_work_name(fs, wname, sizeof(wname));
    int rc = layer_mkwhiteout(wfd, wname);
    if (rc < 0)
        return rc;
    if (renameat2(wfd, wname, udfd, name, dir ? RENAME_EXCHANGE : 0) < 0) {
        rc = -errno;
        unlinkat(wfd, wname, 0);
        return rc;
    }
    if (dir)
        unlinkat(wfd, wname, AT_REMOVEDIR);
    return 0;
}

/* Resolves (parent, name) for removal: the entry must exist. */
static int resolve_existing(struct ovl_fs *fs, struct ovl_node *parent,
                            const char *name, char *rel, struct ovl_ent *e)
{
    char prel[PATH_MAX];
    int rc = node_path(parent, prel, sizeof(prel));
    if (rc < 0)
        return rc;
    rc = ovl_resolve_child(fs, parent, prel, name, e);
    if (rc < 0)
        return rc;
    if (e->layer == OVL_NONE)
        return -ENOENT;
    return ovl_join(rel, PATH_MAX, prel, name);
}

/* Removes the visible entry rel (resolved as *e) from the view. */
static int remove_entry(struct ovl_fs *fs, const char *rel,
                        const struct ovl_ent *e)
{
    char prel[PATH_MAX];
    const char *name = ovl_split(rel, prel, sizeof(prel));
    bool dir = S_ISDIR(e->st.st_mode);
    enum ovl_layer ul = ovl_upper_of(e->cls);
    bool wh = e->layer == OVL_LOWER || (e->in_lower && ovl_is_upper(e->layer));
    int rc = 0, dfd;

    if (e->layer == OVL_LOWER) {
        rc = ovl_make_parents(fs, ul, rel);
        if (rc < 0)
            return rc;
    }
    dfd = layer_dir(fs, ul, prel);
    if (dfd < 0)
        return dfd;
    if (dir && ovl_is_upper(e->layer)) {
        /* Merged-empty: what is left in the upper dir is whiteouts. */
        int sub = openat(dfd, name, O_PATH | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
        if (sub < 0) { rc = -errno; goto out; }
        rc = layer_empty_dir(sub);
        close(sub);
        if (rc < 0)
            goto out;
    }
    if (e->layer == OVL_LOWER)
        rc = layer_mkwhiteout(dfd, name);
    else if (e->in_lower && ovl_is_upper(e->layer))
        rc = whiteout_over(fs, e->layer, dfd, name, dir);
    else if (unlinkat(dfd, name, dir ? AT_REMOVEDIR : 0) < 0)
        rc = -errno;
out:
    close(dfd);
    if (rc == 0 && wh)
        ev_op(fs, "whiteout", rel, NULL, 0, NULL);
    if (rc == 0 && dir && e->cls != PCLASS_TEMP) {
        /* Drop empty scaffolding the temp layer may hold for this dir. */
        int tfd = layer_dir(fs, OVL_TEMP, prel);
        if (tfd >= 0) {
            layer_rm_tree(tfd, name);
            close(tfd);
        }
    }
    return rc;
}

int dir_unlink(struct ovl_fs *fs, struct ovl_node *parent, const char *name,
               bool want_dir)
{
    char rel[PATH_MAX];
    struct ovl_ent e;
    int rc = resolve_existing(fs, parent, name, rel, &e);
    if (rc < 0)
        return rc;
    if (want_dir) {
        if (!S_ISDIR(e.st.st_mode))
            return -ENOTDIR;
        if (pclass_is_temp_root(fs->cfg, rel))
            return -EBUSY;
        rc = ovl_dir_is_empty(fs, rel, &e);
        if (rc <= 0)
            return rc < 0 ? rc : -ENOTEMPTY;
    } else if (S_ISDIR(e.st.st_mode)) {
        return -EISDIR;
    }
    rc = remove_entry(fs, rel, &e);
    if (rc < 0)
        return rc;
    quota_release(fs, &e);
    node_unhash(fs, parent, name);
    if (want_dir)
        ovl_ns_changed(fs);
    else
        ovl_entries_changed(fs);
    return 0;
}

/* Brings an entry that is about to move into a writable layer. Directories
 * with lower content are copied up whole, so moving them hides nothing. */
static int make_movable(struct ovl_fs *fs, const char *rel, struct ovl_ent *e)
{
    if (S_ISDIR(e->st.st_mode) && (e->layer == OVL_LOWER || e->lower_merge))
        return ovl_copy_up_tree(fs, rel, e);
    return ovl_copy_up(fs, rel, e, false);
}

int dir_rename(struct ovl_fs *fs, struct ovl_node *op, const char *oname,
               struct ovl_node *np, const char *nname, unsigned flags)
{
    char srel[PATH_MAX], drel[PATH_MAX], sprel[PATH_MAX], dprel[PATH_MAX];
    struct ovl_ent s, d;
    bool exchange = flags & RENAME_EXCHANGE;
    int rc, sdfd = -1, ddfd = -1;

    if (flags & ~(unsigned)(RENAME_NOREPLACE | RENAME_EXCHANGE))
        return -EINVAL;
    if (strlen(nname) > NAME_MAX)
        return -ENAMETOOLONG;
    rc = resolve_existing(fs, op, oname, srel, &s);
    if (rc < 0)
        return rc;
    if ((rc = node_path(np, dprel, sizeof(dprel))) < 0 ||
        (rc = ovl_resolve_child(fs, np, dprel, nname, &d)) < 0 ||
        (rc = ovl_join(drel, sizeof(drel), dprel, nname)) < 0)
        return rc;
    if (!strcmp(srel, drel))
        return 0;
    if (pclass_is_temp_root(fs->cfg, srel) || pclass_is_temp_root(fs->cfg, drel))
        return -EBUSY;
    if (exchange && d.layer == OVL_NONE)
        return -ENOENT;
    if ((flags & RENAME_NOREPLACE) && d.layer != OVL_NONE)
        return -EEXIST;
    if (d.layer != OVL_NONE && !exchange) {
        if (S_ISDIR(s.st.st_mode) && !S_ISDIR(d.st.st_mode))
            return -ENOTDIR;
        if (!S_ISDIR(s.st.st_mode) && S_ISDIR(d.st.st_mode))
            return -EISDIR;
        if (S_ISDIR(d.st.st_mode)) {
            rc = ovl_dir_is_empty(fs, drel, &d);
            if (rc <= 0)
                return rc < 0 ? rc : -ENOTEMPTY;
        }
    }

    enum ovl_layer dl = ovl_upper_of(d.cls);
    /* Moving a file from the shared class into this agent's counts. */
    bool q_in = !exchange && !S_ISDIR(s.st.st_mode) && ovl_is_private(dl) &&
                !ovl_is_private(ovl_upper_of(s.cls));
    int64_t q_bytes = S_ISREG(s.st.st_mode) ? s.st.st_size : 0;
    if (q_in && (rc = quota_charge(fs, q_bytes, 1)) < 0)
        return rc;
    rc = make_movable(fs, srel, &s);
    if (rc == 0 && exchange)
        rc = make_movable(fs, drel, &d);
    /* Lazy copies are the agent's own: filled before they become shared. */
    if (rc == 0 && dl == OVL_SHARED && ovl_is_private(s.layer))
        rc = cowmap_fill_path(fs, s.layer, srel);
    if (rc == 0 && exchange && s.layer == OVL_SHARED && ovl_is_private(d.layer))
        rc = cowmap_fill_path(fs, d.layer, drel);
    if (rc == 0)
        rc = ovl_make_parents(fs, dl, drel);
    if (rc < 0)
        goto out;
    ovl_split(srel, sprel, sizeof(sprel));
    sdfd = layer_dir(fs, s.layer, sprel);
    ddfd = layer_dir(fs, dl, dprel);
    if (sdfd < 0 || ddfd < 0) {
        rc = sdfd < 0 ? sdfd : ddfd;
        goto out;
    }

    if (exchange) {
        if (renameat2(sdfd, oname, ddfd, nname, RENAME_EXCHANGE) < 0)
            rc = -errno;
    } else {
        bool need_wh = s.in_lower && ovl_is_upper(s.layer);
        if (d.layer == dl && S_ISDIR(d.st.st_mode)) {
            int sub = openat(ddfd, nname, O_PATH | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
            if (sub >= 0) {
                rc = layer_empty_dir(sub);   /* whiteouts only */
                close(sub);
            }
        }
        if (rc == 0 && d.upper_whiteout && ovl_is_upper(dl) &&
            S_ISDIR(s.st.st_mode)) {
            /* A dir cannot replace the whiteout: swap them, so the
             * whiteout lands on the old name, where it may be needed. */
            if (renameat2(sdfd, oname, ddfd, nname, RENAME_EXCHANGE) < 0)
                rc = -errno;
            else if (!need_wh)
                unlinkat(sdfd, oname, 0);
        } else if (rc == 0) {
            unsigned rf = need_wh ? RENAME_WHITEOUT : 0;
            if (renameat2(sdfd, oname, ddfd, nname, rf) < 0) {
                rc = -errno;
                if (rc == -EINVAL && need_wh) {
                    /* No RENAME_WHITEOUT here: rename, then whiteout. */
                    rc = renameat(sdfd, oname, ddfd, nname) < 0 ? -errno
                         : layer_mkwhiteout(sdfd, oname);
                }
            }
        }
    }
    if (rc < 0)
        goto out;
    /* A moved directory must never merge a lower dir at its new place. */
    if (S_ISDIR(s.st.st_mode) && ovl_is_upper(dl))
        rc = set_opaque(ddfd, nname);
    if (exchange && S_ISDIR(d.st.st_mode) && ovl_is_upper(s.layer) && rc == 0)
        rc = set_opaque(sdfd, oname);
    if (!exchange && d.layer != OVL_NONE)
        quota_release(fs, &d);          /* the replaced name is gone */
    if (!exchange && !S_ISDIR(s.st.st_mode) && ovl_is_private(s.layer) &&
        !ovl_is_private(dl))
        quota_release(fs, &s);          /* moved out to the shared class */
    q_in = false;
    node_move(fs, op, oname, np, nname, exchange);
    ovl_ns_changed(fs);
out:
    if (q_in)
        quota_charge(fs, -q_bytes, -1);
    if (sdfd >= 0)
        close(sdfd);
    if (ddfd >= 0)
        close(ddfd);
    return rc;
}

int dir_link(struct ovl_fs *fs, struct ovl_node *n, struct ovl_node *np,
             const char *nname, const struct fuse_ctx *ctx, struct dir_slot *slot)
{
    char rel[PATH_MAX], prel[PATH_MAX];
    struct ovl_ent e;
    int rc = ovl_resolve_node(fs, n, rel, sizeof(rel), &e);
    if (rc < 0)
        return rc;
    if (S_ISDIR(e.st.st_mode))
        return -EPERM;
    rc = ovl_copy_up(fs, rel, &e, false);
    if (rc < 0)
        return rc;
    rc = dir_slot_prepare(fs, np, nname, slot);
    if (rc < 0)
        return rc;
    const char *name = ovl_split(rel, prel, sizeof(prel));
    struct link_src src = { .dfd = layer_dir(fs, e.layer, prel), .name = name };
    if (src.dfd < 0)
        return src.dfd;
    rc = dir_slot_commit(fs, slot, ctx, dir_make_link, &src);
    close(src.dfd);
    return rc;
}

int dir_make_link(int dfd, const char *name, void *arg)
{
    const struct link_src *src = arg;
    return linkat(src->dfd, src->name, dfd, name, 0) < 0 ? -errno : 0;
}
