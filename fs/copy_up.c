/* copy_up.c - moving a lower entry into the agent's private upper.
 *
 * A copy is built under a fresh name in the work dir (same filesystem as the
 * upper) with its data, owner, mode, times and xattrs, then renamed into
 * place: after a crash the agent sees the old lower entry or the complete
 * copy, never a partial one. Data goes by FICLONE when the filesystem can
 * share extents, else by copy_file_range over the data segments only
 * (SEEK_DATA/SEEK_HOLE), so sparse files stay sparse. A large file that
 * cannot be cloned into the private upper is copied lazily instead: an
 * empty sparse file plus a map of the blocks copied so far (cowmap.c). */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <linux/fs.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <sys/xattr.h>
#include <unistd.h>

#include "fs/cowmap.h"
#include "fs/events.h"
#include "fs/ovl_i.h"

#define COPY_CHUNK (8u << 20)

/* Plain read/write fallback for one range. */
static int copy_range_rw(int in, int out, off_t off, off_t len)
{
    char *buf = malloc(1 << 20);
    int rc = 0;
    if (!buf)
        return -ENOMEM;
    while (len > 0) {
        size_t want = len < (1 << 20) ? (size_t)len : (1 << 20);
        ssize_t r = pread(in, buf, want, off);
        if (r < 0) { rc = -errno; goto out; }
        if (r == 0) break;
        for (ssize_t done = 0; done < r;) {
            ssize_t w = pwrite(out, buf + done, (size_t)(r - done), off + done);
            if (w < 0) { rc = -errno; goto out; }
            done += w;
        }
        off += r;
        len -= r;
    }
out:
    free(buf);
    return rc;
}

/* Copies [off, off+len) from in to out at the same offsets. */
static int copy_range(struct ovl_fs *fs, int in, int out, off_t off, off_t len,
                      off_t *copied, off_t half)
{
    while (len > 0) {
        size_t want = len < COPY_CHUNK ? (size_t)len : COPY_CHUNK;
        loff_t ioff = off, ooff = off;
        ssize_t n = copy_file_range(in, &ioff, out, &ooff, want, 0);
        if (n < 0) {
            if (errno != EXDEV && errno != EINVAL && errno != ENOSYS &&
                errno != EOPNOTSUPP)
                return -errno;
            int rc = copy_range_rw(in, out, off, (off_t)want);
            if (rc < 0)
                return rc;
            n = (ssize_t)want;
        } else if (n == 0) {
            return 0; /* source shorter than its stat said */
        }
        off += n;
        len -= n;
        /* Fault hook for the crash tests: stall once, half way through. */
        if (fs->copyup_pause_ms && *copied < half && *copied + n >= half)
            usleep(fs->copyup_pause_ms * 1000u);
        *copied += n;
    }
    return 0;
}

static int copy_data(struct ovl_fs *fs, int in, int out, off_t size)
{
    if (!fs->copyup_pause_ms && ioctl(out, FICLONE, in) == 0)
        return 0;
    off_t pos = 0, copied = 0, half = size / 2;
    while (pos < size) {
        off_t data = lseek(in, pos, SEEK_DATA);
        if (data < 0) {
            if (errno == ENXIO)
                break;          /* only a hole is left */
            data = pos;         /* no SEEK_DATA: copy everything */
        }
        off_t hole = lseek(in, data, SEEK_HOLE);
        if (hole < 0 || hole > size)
            hole = size;
        int rc = copy_range(fs, in, out, data, hole - data, &copied, half);
        if (rc < 0)
            return rc;
        pos = hole;
    }
    return ftruncate(out, size) < 0 ? -errno : 0;
}

/* Copies every xattr of src to dst (both paths; never following a final
 * symlink), leaving lanefs's own out. Unsupported ones are skipped. */
static int copy_xattrs(const char *src, const char *dst)
{
    ssize_t n = llistxattr(src, NULL, 0);
    if (n <= 0)
        return 0;
    char *names = malloc((size_t)n), *val = NULL;
    int rc = 0;
    if (!names)
        return -ENOMEM;
    n = llistxattr(src, names, (size_t)n);
    for (ssize_t i = 0; i < n; i += (ssize_t)strlen(names + i) + 1) {
        const char *name = names + i;
        if (!strncmp(name, OVL_XATTR_PREFIX, strlen(OVL_XATTR_PREFIX)))
            continue;
        ssize_t vl = lgetxattr(src, name, NULL, 0);
        if (vl < 0)
            continue;
        char *v = realloc(val, (size_t)vl + 1);
        if (!v) { rc = -ENOMEM; goto out; }
        val = v;
        vl = lgetxattr(src, name, val, (size_t)vl);
        if (vl < 0)
            continue;
        if (lsetxattr(dst, name, val, (size_t)vl, 0) < 0 &&
            errno != EPERM && errno != ENOTSUP) {
            rc = -errno;
            goto out;
        }
    }
out:
    free(names);
    free(val);
    return rc;
}

/* Owner, mode and times of st onto the entry wname of the work dir wfd. */
static int copy_meta(int wfd, const char *wname, const struct stat *st)
{
    char p[64 + NAME_MAX];
    layer_fdpath(p, sizeof(p), wfd, wname);
    if (fchownat(wfd, wname, st->st_uid, st->st_gid, AT_SYMLINK_NOFOLLOW) < 0)
        return -errno;
    if (!S_ISLNK(st->st_mode) && chmod(p, st->st_mode & 07777) < 0)
        return -errno;
    struct timespec ts[2] = { st->st_atim, st->st_mtim };
    if (utimensat(wfd, wname, ts, AT_SYMLINK_NOFOLLOW) < 0)
        return -errno;
    return 0;
}

static int set_origin(int wfd, const char *wname, ino_t ino)
{
    char p[64 + NAME_MAX];
    uint64_t v = (uint64_t)ino;
    layer_fdpath(p, sizeof(p), wfd, wname);
    return lsetxattr(p, OVL_XATTR_ORIGIN, &v, sizeof(v), 0) < 0 ? -errno : 0;
}

/* Builds the copy of lower rel (stat st) as wname in the work dir wfd.
 * lazy: a large file may be copied lazily (cowmap.h) when it cannot be
 * cloned; *was_lazy tells whether it was. */
static int build_copy(struct ovl_fs *fs, const char *rel, const struct stat *st,
                      int wfd, const char *wname, bool skip_data, bool lazy,
                      bool *was_lazy)
{
    int in = -1, out = -1, rc = 0;
    char prel[PATH_MAX];
    const char *name = ovl_split(rel, prel, sizeof(prel));
    *was_lazy = false;
    int ldfd = layer_dir(fs, OVL_LOWER, prel);
    if (ldfd < 0)
        return ldfd;

    switch (st->st_mode & S_IFMT) {
    case S_IFREG:
        in = layer_open(fs, OVL_LOWER, rel, O_RDONLY | O_NOATIME, 0);
        if (in == -EPERM)
            in = layer_open(fs, OVL_LOWER, rel, O_RDONLY, 0);
        if (in < 0) { rc = in; goto out; }
        out = openat(wfd, wname, O_CREAT | O_EXCL | O_WRONLY | O_CLOEXEC, 0600);
        if (out < 0) { rc = -errno; goto out; }
        /* A large file that cannot be cloned gets its data on demand: an
         * empty file of its size now, its map after its xattrs. (Not with
         * the copy-up pause hook: that one tests whole copies.) */
        *was_lazy = !skip_data && lazy && st->st_size >= COWMAP_MIN_FILE &&
                    !fs->copyup_pause_ms && ioctl(out, FICLONE, in) < 0;
        if (*was_lazy)
            rc = ftruncate(out, st->st_size) < 0 ? -errno : 0;
        else if (!skip_data)
            rc = copy_data(fs, in, out, st->st_size);
        break;
    case S_IFDIR:
        if (mkdirat(wfd, wname, 0700) < 0)
            rc = -errno;
        break;
    case S_IFLNK: {
        char target[PATH_MAX + 1];
        ssize_t n = readlinkat(ldfd, name, target, PATH_MAX);
        if (n < 0) { rc = -errno; break; }
        target[n] = '\0';
        if (symlinkat(target, wfd, wname) < 0)
            rc = -errno;
        break;
    }
    case S_IFIFO:
    case S_IFSOCK:
        if (mknodat(wfd, wname, (st->st_mode & S_IFMT) | 0600, 0) < 0)
            rc = -errno;
        break;
    default:
        rc = -EPERM; /* device nodes never enter an upper */
    }
    if (rc < 0)
        goto out;

    char sp[64 + NAME_MAX], dp[64 + NAME_MAX];
    layer_fdpath(sp, sizeof(sp), ldfd, name);
    layer_fdpath(dp, sizeof(dp), wfd, wname);
    rc = copy_xattrs(sp, dp);
    if (rc == 0 && *was_lazy) {
        rc = cowmap_init_file(out, rel, st);
        if (rc == -ENOSPC || rc == -E2BIG || rc == -ENOTSUP || rc == -ERANGE) {
            /* The map does not fit next to the file's xattrs: copy it. */
            fremovexattr(out, COWMAP_XATTR_SRC);
            *was_lazy = false;
            rc = copy_data(fs, in, out, st->st_size);
        }
    }
    if (rc == 0)
        rc = copy_meta(wfd, wname, st);
    if (rc == 0 && !S_ISLNK(st->st_mode))
        rc = set_origin(wfd, wname, st->st_ino);
out:
    if (in >= 0)
        close(in);
    if (out >= 0)
        close(out);
    close(ldfd);
    return rc;
}

/* One missing parent in layer *l: a dir of l's own class is copied up from
 * the lower (it must be in the view); any other, and every temp-layer
 * parent, is a plain directory that only holds the way down. */
static int parent_make(struct ovl_fs *fs, const char *dir, void *arg)
{
    enum ovl_layer l = *(enum ovl_layer *)arg;
    if (l != OVL_TEMP && ovl_upper_of(pclass_of(fs->cfg, dir)) == l) {
        struct ovl_ent e;
        int rc = ovl_resolve_path(fs, dir, &e);
        if (rc == 0 && !S_ISDIR(e.st.st_mode))
            rc = -ENOTDIR;
        return rc < 0 ? rc : ovl_copy_up(fs, dir, &e, false);
    }
    char pdir[PATH_MAX];
    const char *name = ovl_split(dir, pdir, sizeof(pdir));
    int pfd = layer_dir(fs, l, pdir);
    if (pfd < 0)
        return pfd;
    int rc = mkdirat(pfd, name, 0700) < 0 && errno != EEXIST ? -errno : 0;
    close(pfd);
    return rc;
}

int ovl_make_parents(struct ovl_fs *fs, enum ovl_layer l, const char *rel)
{
    char dir[PATH_MAX];
    ovl_split(rel, dir, sizeof(dir));
    int dfd = layer_dir(fs, l, dir);
    if (dfd >= 0) {
        close(dfd);
        return 0;           /* the common case: the parent is there */
    }
    return ovl_each_prefix(fs, dir, parent_make, &l);
}

int ovl_copy_up(struct ovl_fs *fs, const char *rel, struct ovl_ent *e,
                bool skip_data)
{
    char wname[64], prel[PATH_MAX];
    enum ovl_layer ul = ovl_upper_of(e->cls);
    int rc, udfd = -1, wfd = layer_work_fd(fs, ul);

    if (e->layer != OVL_LOWER)
        return 0;
    rc = ovl_make_parents(fs, ul, rel);
    if (rc < 0)
        return rc;
    /* The copy is the agent's: count it before making it. */
    int64_t qbytes = (S_ISREG(e->st.st_mode) && !skip_data) ? e->st.st_size : 0;
    int64_t qinodes = ovl_is_private(ul) ? 1 : 0;
    if (!ovl_is_private(ul))
        qbytes = 0;
    if ((rc = quota_charge(fs, qbytes, qinodes)) < 0)
        return rc;
    layer_work_name(fs, wname, sizeof(wname));
    bool lazy = false;
    rc = build_copy(fs, rel, &e->st, wfd, wname, skip_data, ul == OVL_UPPER, &lazy);
    if (rc < 0)
        goto fail;

    if (S_ISREG(e->st.st_mode) && e->st.st_nlink > 1) {
        /* Other names of this lower file will link to the same copy. */
        char key[64];
        layer_index_name(key, sizeof(key), &e->st);
        if (linkat(wfd, wname, layer_index_fd(fs, ul), key, 0) < 0 &&
            errno != EEXIST) {
            rc = -errno;
            goto fail;
        }
    }
    const char *name = ovl_split(rel, prel, sizeof(prel));
    udfd = layer_dir(fs, ul, prel);
    if (udfd < 0) { rc = udfd; goto fail; }
    if (renameat2(wfd, wname, udfd, name, RENAME_NOREPLACE) < 0) {
        rc = -errno;
        /* A concurrent reader made this parent dir first: same result. */
        if (rc == -EEXIST && S_ISDIR(e->st.st_mode)) {
            quota_charge(fs, -qbytes, -qinodes);
            layer_rm_tree(wfd, wname);
            rc = fstatat(udfd, name, &e->st, AT_SYMLINK_NOFOLLOW) < 0 ? -errno : 0;
            if (rc == 0)
                e->layer = ul;
            goto out;
        }
        goto fail;
    }
    struct stat lst = e->st;
    if (fstatat(udfd, name, &e->st, AT_SYMLINK_NOFOLLOW) < 0) {
        rc = -errno;
        goto out;
    }
    e->layer = ul;
    ovl_ns_changed(fs);         /* the path's layer changed */
    if (S_ISREG(lst.st_mode))
        handle_copied_up(fs, &lst, ul, rel);
    if (ev_on(fs)) {
        struct journal_event ev = ev_blank("copy_up");
        ev.size = S_ISREG(lst.st_mode) && !skip_data ? lst.st_size : 0;
        ev.detail = ul == OVL_SHARED ? "shared" : lazy ? "private lazy" : "private";
        ev_log(fs, &ev, rel, NULL);
    }
    goto out;
fail:
    quota_charge(fs, -qbytes, -qinodes);
    layer_rm_tree(wfd, wname);
out:
    if (udfd >= 0)
        close(udfd);
    return rc;
}

struct tree_names {
    char **v;
    size_t n;
};

static int tree_cb(void *arg, const char *name, enum ovl_layer l,
                   unsigned char type, uint64_t ino)
{
    struct tree_names *t = arg;
    (void)ino;
    /* Only what still depends on the lower: lower entries, and upper dirs
     * that may merge lower content below them. */
    if (l == OVL_TEMP || (ovl_is_upper(l) && type != DT_DIR))
        return 0;
    char **v = realloc(t->v, (t->n + 1) * sizeof(*v));
    if (!v)
        return -ENOMEM;
    t->v = v;
    if (!(v[t->n] = strdup(name)))
        return -ENOMEM;
    t->n++;
    return 0;
}

int ovl_copy_up_tree(struct ovl_fs *fs, const char *rel, struct ovl_ent *e)
{
    struct tree_names t = { 0 };
    char child[PATH_MAX], p[64 + NAME_MAX], prel[PATH_MAX];
    int rc = ovl_copy_up(fs, rel, e, false);
    if (rc < 0 || !S_ISDIR(e->st.st_mode) || !e->lower_merge)
        return rc;

    rc = ovl_list(fs, rel, true, tree_cb, &t);
    for (size_t i = 0; rc == 0 && i < t.n; i++) {
        struct ovl_ent ce;
        rc = ovl_join(child, sizeof(child), rel, t.v[i]);
        if (rc == 0)
            rc = ovl_resolve_path(fs, child, &ce);
        if (rc == 0)
            rc = S_ISDIR(ce.st.st_mode) ? ovl_copy_up_tree(fs, child, &ce)
                                        : ovl_copy_up(fs, child, &ce, false);
    }
    for (size_t i = 0; i < t.n; i++)
        free(t.v[i]);
    free(t.v);
    if (rc < 0)
        return rc;

    /* Everything is in the upper now: cut the tie to the lower. */
    const char *name = ovl_split(rel, prel, sizeof(prel));
    int dfd = layer_dir(fs, e->layer, prel);
    if (dfd < 0)
        return dfd;
    layer_fdpath(p, sizeof(p), dfd, name);
    rc = lsetxattr(p, OVL_XATTR_OPAQUE, "y", 1, 0) < 0 ? -errno : 0;
    close(dfd);
    e->lower_merge = false;
    ovl_ns_changed(fs);
    return rc;
}
