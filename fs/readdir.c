/* readdir.c - merged directory listings.
 *
 * A listing is the union of the temp layer (temp-class names only), the
 * upper (whiteouts hide names) and, when the directory merges it, the lower;
 * the highest layer wins a name. Directory handles keep a sorted snapshot so
 * offsets are indexes: stable across telldir/seekdir and unaffected by
 * entries removed while a listing is in progress. Offset 0 (rewinddir)
 * takes a fresh snapshot. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "fs/ovl_i.h"

struct raw_ent {
    char *name;
    uint64_t ino;
    unsigned char type;
    unsigned char prio;       /* 0 temp, 1 upper or shared, 2 lower */
    enum ovl_layer layer;
    bool whiteout;
};

struct raw_list {
    struct raw_ent *v;
    size_t n, cap;
};

static int raw_push(struct raw_list *l, const char *name, uint64_t ino,
                    unsigned char type, enum ovl_layer layer, bool wh)
{
    if (l->n == l->cap) {
        size_t cap = l->cap ? l->cap * 2 : 32;
        struct raw_ent *v = realloc(l->v, cap * sizeof(*v));
        if (!v)
            return -ENOMEM;
        l->v = v;
        l->cap = cap;
    }
    char *s = strdup(name);
    if (!s)
        return -ENOMEM;
    unsigned char prio = layer == OVL_TEMP ? 0 : layer == OVL_LOWER ? 2 : 1;
    l->v[l->n++] = (struct raw_ent){ s, ino, type, prio, layer, wh };
    return 0;
}

static void raw_free(struct raw_list *l)
{
    for (size_t i = 0; i < l->n; i++)
        free(l->v[i].name);
    free(l->v);
}

static int raw_cmp(const void *a, const void *b)
{
    const struct raw_ent *x = a, *y = b;
    int c = strcmp(x->name, y->name);
    return c ? c : (int)x->prio - (int)y->prio;
}

static unsigned char mode_dtype(mode_t m)
{
    return (unsigned char)((m & S_IFMT) >> 12);
}

/* Whether a name of class c can come from layer l: each class is written
 * to one layer (what else that layer holds only leads the way down); the
 * lower shows everything but temp names. */
static bool layer_serves(enum ovl_layer l, enum pclass c)
{
    return l == OVL_LOWER ? c != PCLASS_TEMP : ovl_upper_of(c) == l;
}

/* Reads directory rel of layer l into the raw list. */
static int read_layer(struct ovl_fs *fs, enum ovl_layer l, const char *rel,
                      struct raw_list *out)
{
    int rc = 0;
    DIR *d = layer_opendir(layer_root_fd(fs, l), rel, l == OVL_LOWER, &rc);
    if (rc == -ENOENT || rc == -ENOTDIR)
        return 0;               /* nothing of this dir in that layer */
    if (!d)
        return rc;
    int fd = dirfd(d);
    struct dirent *de;
    char path[PATH_MAX];
    while ((de = readdir(d))) {
        const char *name = de->d_name;
        if (!strcmp(name, ".") || !strcmp(name, ".."))
            continue;
        if (ovl_join(path, sizeof(path), rel, name) < 0)
            continue;
        if (!layer_serves(l, pclass_of(fs->cfg, path)))
            continue;
        unsigned char type = de->d_type;
        bool wh = false;
        uint64_t ino = layer_ino(l, de->d_ino);
        if (type == DT_UNKNOWN || (ovl_is_upper(l) && type == DT_CHR)) {
            struct stat st;
            if (fstatat(fd, name, &st, AT_SYMLINK_NOFOLLOW) < 0)
                continue;
            type = mode_dtype(st.st_mode);
            wh = ovl_is_upper(l) && layer_is_whiteout(&st);
        }
        if (ovl_is_upper(l) && !wh) {
            uint64_t o = layer_origin(fd, name);
            if (o)
                ino = o;
        }
        rc = raw_push(out, name, ino, type, l, wh);
        if (rc < 0)
            break;
    }
    closedir(d);
    return rc;
}

int ovl_list(struct ovl_fs *fs, const char *rel, bool merges,
             ovl_list_cb cb, void *arg)
{
    struct raw_list l = { 0 };
    bool temp_dir = pclass_of(fs->cfg, rel) == PCLASS_TEMP;
    int rc;

    rc = read_layer(fs, OVL_TEMP, rel, &l);
    if (rc == 0 && !temp_dir)
        rc = read_layer(fs, OVL_UPPER, rel, &l);
    if (rc == 0 && !temp_dir && fs->cfg->n_shared_paths)
        rc = read_layer(fs, OVL_SHARED, rel, &l);
    if (rc == 0 && !temp_dir && merges)
        rc = read_layer(fs, OVL_LOWER, rel, &l);
    if (rc < 0)
        goto out;

    if (l.n)
        qsort(l.v, l.n, sizeof(*l.v), raw_cmp);
    for (size_t i = 0; i < l.n; i++) {
        if (i > 0 && !strcmp(l.v[i].name, l.v[i - 1].name))
            continue;           /* a higher layer already had this name */
        if (l.v[i].whiteout)
            continue;
        rc = cb(arg, l.v[i].name, l.v[i].layer, l.v[i].type, l.v[i].ino);
        if (rc != 0)
            break;
    }
out:
    raw_free(&l);
    return rc < 0 ? rc : 0;
}

static int snap_add(struct ovl_dir *d, const char *name, uint64_t ino,
                    unsigned char type)
{
    struct ovl_dirent *v = realloc(d->ents, (d->n + 1) * sizeof(*v));
    if (!v)
        return -ENOMEM;
    d->ents = v;
    if (!(v[d->n].name = strdup(name)))
        return -ENOMEM;
    v[d->n].ino = ino;
    v[d->n].type = type;
    d->n++;
    return 0;
}

static int snap_cb(void *arg, const char *name, enum ovl_layer l,
                   unsigned char type, uint64_t ino)
{
    (void)l;
    return snap_add(arg, name, ino, type);
}

void ovl_dir_clear(struct ovl_dir *d)
{
    for (size_t i = 0; i < d->n; i++)
        free(d->ents[i].name);
    free(d->ents);
    d->ents = NULL;
    d->n = 0;
}

int ovl_dir_snapshot(struct ovl_fs *fs, struct ovl_node *n, struct ovl_dir *d)
{
    char rel[PATH_MAX];
    struct ovl_ent e;
    int rc = ovl_resolve_node(fs, n, rel, sizeof(rel), &e);
    if (rc < 0)
        return rc;
    if (!S_ISDIR(e.st.st_mode))
        return -ENOTDIR;
    ovl_dir_clear(d);
    d->lower_merge = e.lower_merge;
    rc = snap_add(d, ".", n->ino, DT_DIR);
    if (rc == 0)
        rc = snap_add(d, "..", n->parent ? n->parent->ino : n->ino, DT_DIR);
    if (rc == 0)
        rc = ovl_list(fs, rel, e.lower_merge, snap_cb, d);
    if (rc < 0)
        ovl_dir_clear(d);
    return rc;
}

static int count_cb(void *arg, const char *name, enum ovl_layer l,
                    unsigned char type, uint64_t ino)
{
    (void)name; (void)l; (void)type; (void)ino;
    (*(size_t *)arg)++;
    return 1;                   /* one entry is enough to know */
}

int ovl_dir_is_empty(struct ovl_fs *fs, const char *rel, const struct ovl_ent *e)
{
    size_t n = 0;
    int rc = ovl_list(fs, rel, e->lower_merge, count_cb, &n);
    if (rc < 0)
        return rc;
    return n == 0;
}
