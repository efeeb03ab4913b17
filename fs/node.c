/* node.c - the kernel-visible inodes of one mount.
 *
 * A node is one name of the agent's view: (parent node, name). Nodes are kept
 * while the kernel holds lookups on them or while they have children, and
 * are found again by (parent, name) through a tsearch(3) index. A node's
 * FUSE nodeid is its address; the root is FUSE_ROOT_ID. */
#include <errno.h>
#include <fuse_lowlevel.h>
#include <limits.h>
#include <search.h>
#include <stdlib.h>
#include <string.h>

#include "fs/ovl_i.h"

static int node_cmp(const void *a, const void *b)
{
    const struct ovl_node *x = a, *y = b;
    if (x->parent != y->parent)
        return x->parent < y->parent ? -1 : 1;
    return strcmp(x->name, y->name);
}

int node_init(struct ovl_fs *fs, uint64_t root_ino)
{
    struct ovl_node *r = calloc(1, sizeof(*r));
    if (!r || !(r->name = strdup(""))) {
        free(r);
        return -ENOMEM;
    }
    r->ino = root_ino;
    r->nlookup = 1;
    fs->root = r;
    fs->node_index = NULL;
    return 0;
}

static void node_free(struct ovl_node *n)
{
    free(n->name);
    free(n);
}

static void node_free_any(void *p) { node_free(p); }

void node_destroy(struct ovl_fs *fs)
{
    /* At unmount the kernel's references are gone with the connection: free
     * every indexed node. Unhashed nodes still referenced by the kernel were
     * released by its forgets before the session ended. */
    tdestroy(fs->node_index, node_free_any);
    fs->node_index = NULL;
    node_free(fs->root);
    fs->root = NULL;
}

struct ovl_node *node_get(struct ovl_fs *fs, uint64_t nodeid)
{
    if (nodeid == FUSE_ROOT_ID)
        return fs->root;
    return (struct ovl_node *)(uintptr_t)nodeid;
}

uint64_t node_id(struct ovl_fs *fs, struct ovl_node *n)
{
    return n == fs->root ? FUSE_ROOT_ID : (uint64_t)(uintptr_t)n;
}

struct ovl_node *node_lookup_ref(struct ovl_fs *fs, struct ovl_node *parent,
                                 const char *name, uint64_t ino)
{
    struct ovl_node key = { .parent = parent, .name = (char *)name };
    struct ovl_node *n = NULL;

    pthread_mutex_lock(&fs->node_lock);
    void **slot = tfind(&key, &fs->node_index, node_cmp);
    if (slot) {
        n = *slot;
        n->nlookup++;
        goto out;
    }
    n = calloc(1, sizeof(*n));
    if (!n || !(n->name = strdup(name))) {
        free(n);
        n = NULL;
        goto out;
    }
    n->parent = parent;
    n->ino = ino;
    n->nlookup = 1;
    n->hashed = true;
    if (!tsearch(n, &fs->node_index, node_cmp)) {
        node_free(n);
        n = NULL;
        goto out;
    }
    parent->nchildren++;
out:
    pthread_mutex_unlock(&fs->node_lock);
    return n;
}

/* Frees n and, transitively, parents left without references.
 * Caller holds node_lock. */
static void node_release_locked(struct ovl_fs *fs, struct ovl_node *n)
{
    while (n && n != fs->root && n->nlookup == 0 && n->nchildren == 0) {
        struct ovl_node *p = n->parent;
        if (n->hashed)
            tdelete(n, &fs->node_index, node_cmp);
        node_free(n);
        p->nchildren--;
        n = p;
    }
}

void node_forget(struct ovl_fs *fs, struct ovl_node *n, uint64_t nlookup)
{
    if (n == fs->root)
        return;
    pthread_mutex_lock(&fs->node_lock);
    n->nlookup = nlookup > n->nlookup ? 0 : n->nlookup - nlookup;
    node_release_locked(fs, n);
    pthread_mutex_unlock(&fs->node_lock);
}

int node_path(struct ovl_node *n, char *buf, size_t len)
{
    const struct ovl_node *chain[PATH_MAX / 2];
    size_t depth = 0, used = 0;

    for (const struct ovl_node *x = n; x->parent; x = x->parent) {
        if (!x->hashed)
            return -ENOENT;
        if (depth == sizeof(chain) / sizeof(chain[0]))
            return -ENAMETOOLONG;
        chain[depth++] = x;
    }
    if (len == 0)
        return -ENAMETOOLONG;
    buf[0] = '\0';
    while (depth--) {
        size_t l = strlen(chain[depth]->name);
        if (used + l + 2 > len)
            return -ENAMETOOLONG;
        if (used)
            buf[used++] = '/';
        memcpy(buf + used, chain[depth]->name, l + 1);
        used += l;
    }
    return 0;
}

void node_unhash(struct ovl_fs *fs, struct ovl_node *parent, const char *name)
{
    struct ovl_node key = { .parent = parent, .name = (char *)name };
    pthread_mutex_lock(&fs->node_lock);
    void **slot = tfind(&key, &fs->node_index, node_cmp);
    if (slot) {
        struct ovl_node *n = *slot;
        tdelete(n, &fs->node_index, node_cmp);
        n->hashed = false;
        node_release_locked(fs, n);
    }
    pthread_mutex_unlock(&fs->node_lock);
}

/* Re-keys n to (np, nname). Caller holds node_lock; n is not in the index. */
static int node_rekey(struct ovl_fs *fs, struct ovl_node *n,
                      struct ovl_node *np, const char *nname)
{
    char *nn = strdup(nname);
    if (!nn) {
        n->hashed = false;
        return -ENOMEM;
    }
    free(n->name);
    n->name = nn;
    if (n->parent != np) {
        np->nchildren++;
        n->parent->nchildren--;
        /* The old parent cannot drop to zero references here: the kernel
         * holds a lookup on it while it is the source of the rename. */
        n->parent = np;
    }
    if (!tsearch(n, &fs->node_index, node_cmp)) {
        n->hashed = false;
        return -ENOMEM;
    }
    n->hashed = true;
    return 0;
}

int node_move(struct ovl_fs *fs, struct ovl_node *op, const char *oname,
              struct ovl_node *np, const char *nname, bool exchange)
{
    struct ovl_node ko = { .parent = op, .name = (char *)oname };
    struct ovl_node kn = { .parent = np, .name = (char *)nname };
    int rc = 0;

    pthread_mutex_lock(&fs->node_lock);
    void **so = tfind(&ko, &fs->node_index, node_cmp);
    struct ovl_node *src = so ? *so : NULL;
    void **sn = tfind(&kn, &fs->node_index, node_cmp);
    struct ovl_node *dst = sn ? *sn : NULL;

    if (src)
        tdelete(src, &fs->node_index, node_cmp);
    if (dst)
        tdelete(dst, &fs->node_index, node_cmp);
    if (src)
        rc = node_rekey(fs, src, np, nname);
    if (dst) {
        if (exchange) {
            int r = node_rekey(fs, dst, op, oname);
            rc = rc ? rc : r;
        } else {
            dst->hashed = false;
            node_release_locked(fs, dst);
        }
    }
    pthread_mutex_unlock(&fs->node_lock);
    return rc;
}
