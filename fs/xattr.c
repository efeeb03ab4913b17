/* xattr.c - extended attributes of an agent's view.
 *
 * Only the user.* namespace is served. Names under user.lanefs. belong to
 * lanefs's own bookkeeping (opaque marks, origins): they are never listed or
 * returned to agents, and agents cannot set or remove them; the one
 * exception is user.lanefs.lease, the lease interface (leaseops.c), which
 * is not stored and not listed. Changing an
 * attribute of a lower entry copies it up first. */
#include <errno.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <sys/xattr.h>
#include <unistd.h>

#include "fs/leaseops.h"
#include "fs/ops.h"
#include "fs/ovl_i.h"

#define FS(req) ((struct ovl_fs *)fuse_req_userdata(req))

static bool is_user(const char *name)
{
    return !strncmp(name, "user.", 5);
}

static bool is_ours(const char *name)
{
    return !strncmp(name, OVL_XATTR_PREFIX, strlen(OVL_XATTR_PREFIX));
}

/* Resolves ino (copying it up when for_write) and writes the path that the
 * l*xattr calls take into p. Caller holds ns_lock (write if for_write). */
static int xattr_path(struct ovl_fs *fs, fuse_ino_t ino, bool for_write,
                      char *p, size_t plen, int *dfd)
{
    char rel[PATH_MAX], prel[PATH_MAX];
    struct ovl_ent e;
    int rc = ovl_resolve_node(fs, node_get(fs, ino), rel, sizeof(rel), &e);
    if (rc == 0 && for_write)
        rc = ovl_copy_up(fs, rel, &e, false);
    if (rc < 0)
        return rc;
    const char *name = ovl_split(rel, prel, sizeof(prel));
    *dfd = layer_dir(fs, e.layer, rel[0] ? prel : "");
    if (*dfd < 0)
        return *dfd;
    /* The root has no name in its parent: address the dir itself (the l*
     * calls must not act on the /proc magic link). */
    layer_fdpath(p, plen, *dfd, rel[0] ? name : ".");
    return 0;
}

/* The lease attribute: stored nowhere, served by the lease table. op 'g'
 * reads it into (buf, size), 's' acquires with (value, size), 'r'
 * releases. Returns a length ('g') or 0, or -errno. */
static int lease_attr(struct ovl_fs *fs, fuse_ino_t ino, char op, const char *value,
                      char *buf, size_t size)
{
    char rel[PATH_MAX];
    struct ovl_ent e;
    ovl_lock_read(fs);
    int rc = ovl_resolve_node(fs, node_get(fs, ino), rel, sizeof(rel), &e);
    if (rc == 0)
        rc = op == 'g' ? leaseops_get(fs, rel, &e, buf, size)
                       : leaseops_set(fs, rel, &e, op == 's' ? value : NULL, size);
    ovl_unlock(fs);
    return rc;
}

static void xattr_change(fuse_req_t req, fuse_ino_t ino, const char *name,
                         const char *value, size_t size, int flags, bool remove)
{
    struct ovl_fs *fs = FS(req);
    char p[64 + NAME_MAX];
    int dfd = -1, rc;

    if (!strcmp(name, LEASE_XATTR)) {
        (void)flags;
        rc = lease_attr(fs, ino, remove ? 'r' : 's', value, NULL, size);
        /* The kernel turns an EAGAIN (EWOULDBLOCK) answer to setxattr into
         * EOPNOTSUPP, which would read as "no leases here": a conflict is
         * reported as EBUSY instead (docs/leases.md). */
        if (rc == -EWOULDBLOCK)
            rc = -EBUSY;
        fuse_reply_err(req, -rc);
        return;
    }
    if (is_ours(name)) {
        fuse_reply_err(req, EPERM);
        return;
    }
    if (!is_user(name)) {
        fuse_reply_err(req, ENOTSUP);
        return;
    }
    ovl_lock_write(fs);
    rc = xattr_path(fs, ino, true, p, sizeof(p), &dfd);
    if (rc == 0) {
        int r = remove ? lremovexattr(p, name)
                       : lsetxattr(p, name, value, size, flags);
        rc = r < 0 ? -errno : 0;
    }
    if (dfd >= 0)
        close(dfd);
    ovl_unlock(fs);
    fuse_reply_err(req, -rc);
}

void ovl_setxattr(fuse_req_t req, fuse_ino_t ino, const char *name,
                  const char *value, size_t size, int flags)
{
    xattr_change(req, ino, name, value, size, flags, false);
}

void ovl_removexattr(fuse_req_t req, fuse_ino_t ino, const char *name)
{
    xattr_change(req, ino, name, NULL, 0, 0, true);
}

void ovl_getxattr(fuse_req_t req, fuse_ino_t ino, const char *name, size_t size)
{
    struct ovl_fs *fs = FS(req);
    char p[64 + NAME_MAX], *buf = NULL;
    int dfd = -1, rc;
    ssize_t n = 0;

    if (!is_user(name) || (is_ours(name) && strcmp(name, LEASE_XATTR))) {
        /* The kernel's check before a write (fuseio.h says how rare). */
        if (!strcmp(name, "security.capability"))
            __atomic_add_fetch(&fs->cap_checks, 1, __ATOMIC_RELAXED);
        fuse_reply_err(req, ENODATA);
        return;
    }
    if (size && !(buf = malloc(size))) {
        fuse_reply_err(req, ENOMEM);
        return;
    }
    if (!strcmp(name, LEASE_XATTR)) {
        rc = lease_attr(fs, ino, 'g', NULL, buf, size);
        if (rc < 0)
            fuse_reply_err(req, -rc);
        else if (size == 0)
            fuse_reply_xattr(req, (size_t)rc);
        else
            fuse_reply_buf(req, buf, (size_t)rc);
        free(buf);
        return;
    }
    ovl_lock_read(fs);
    rc = xattr_path(fs, ino, false, p, sizeof(p), &dfd);
    if (rc == 0) {
        n = lgetxattr(p, name, buf, size);
        rc = n < 0 ? -errno : 0;
    }
    if (dfd >= 0)
        close(dfd);
    ovl_unlock(fs);
    if (rc < 0)
        fuse_reply_err(req, -rc);
    else if (size == 0)
        fuse_reply_xattr(req, (size_t)n);
    else
        fuse_reply_buf(req, buf, (size_t)n);
    free(buf);
}

void ovl_listxattr(fuse_req_t req, fuse_ino_t ino, size_t size)
{
    struct ovl_fs *fs = FS(req);
    char p[64 + NAME_MAX], *all = NULL, *out = NULL;
    int dfd = -1, rc;
    ssize_t n = 0;
    size_t used = 0;

    ovl_lock_read(fs);
    rc = xattr_path(fs, ino, false, p, sizeof(p), &dfd);
    if (rc == 0 && (n = llistxattr(p, NULL, 0)) < 0)
        rc = -errno;
    if (rc == 0 && n > 0) {
        all = malloc((size_t)n);
        out = malloc((size_t)n);
        if (!all || !out)
            rc = -ENOMEM;
        else if ((n = llistxattr(p, all, (size_t)n)) < 0)
            rc = -errno;
    }
    if (dfd >= 0)
        close(dfd);
    ovl_unlock(fs);

    for (ssize_t i = 0; rc == 0 && i < n; i += (ssize_t)strlen(all + i) + 1) {
        size_t l = strlen(all + i) + 1;
        if (is_user(all + i) && !is_ours(all + i)) {
            memcpy(out + used, all + i, l);
            used += l;
        }
    }
    if (rc < 0)
        fuse_reply_err(req, -rc);
    else if (size == 0)
        fuse_reply_xattr(req, used);
    else if (used > size)
        fuse_reply_err(req, ERANGE);
    else
        fuse_reply_buf(req, out, used);
    free(all);
    free(out);
}
