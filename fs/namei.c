/* namei.c - finding which layer holds a path of the agent's view.
 *
 * For a name in a directory: temp-class paths live only in the temp layer.
 * Otherwise the upper wins; an upper whiteout hides the lower; the lower is
 * consulted only when the parent directory merges it (the parent exists in
 * the lower as a directory and no upper entry above made it opaque). Whether
 * a directory merges is cached per node, and so is where a node's entry
 * lives: while neither can have changed, a node resolves by one open in its
 * layer instead of probing every layer. Every change that can move an
 * existing entry or change a directory's merging (rmdir, rename, copy-up,
 * an opaque mark) bumps two volume-wide generations (ovl_ns_changed),
 * which makes every cached answer stale; removing a non-directory bumps
 * only the one of where entries live (ovl_entries_changed), since no
 * directory's merging depends on it. A new name needs no bump: no node
 * lived there. */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "fs/ovl_i.h"

int ovl_join(char *buf, size_t len, const char *dir, const char *name)
{
    /* Called for every entry listed or looked up: no printf machinery. */
    size_t dl = strlen(dir), nl = strlen(name), need = dl + (dl ? 1 : 0) + nl;
    if (need >= len)
        return -ENAMETOOLONG;
    memcpy(buf, dir, dl);
    if (dl)
        buf[dl++] = '/';
    memcpy(buf + dl, name, nl + 1);
    return 0;
}

const char *ovl_split(const char *rel, char *dir, size_t len)
{
    const char *slash = strrchr(rel, '/');
    if (!slash) {
        dir[0] = '\0';
        return rel;
    }
    size_t l = (size_t)(slash - rel);
    if (l >= len)
        l = len - 1;
    memcpy(dir, rel, l);
    dir[l] = '\0';
    return slash + 1;
}

int ovl_each_prefix(struct ovl_fs *fs, const char *rel, ovl_prefix_fn fn,
                    void *arg)
{
    char buf[PATH_MAX];
    if (snprintf(buf, sizeof(buf), "%s", rel) >= (int)sizeof(buf))
        return -ENAMETOOLONG;
    if (!buf[0])
        return 0;
    for (char *s = buf; ; s++) {
        if (*s != '/' && *s != '\0')
            continue;
        char c = *s;
        *s = '\0';
        int rc = fn(fs, buf, arg);
        *s = c;
        if (rc || !c)
            return rc;
    }
}

void ovl_dirfds_init(struct ovl_dirfds *c)
{
    for (size_t i = 0; i < sizeof(c->fd) / sizeof(c->fd[0]); i++)
        c->fd[i] = -2;
}

void ovl_dirfds_close(struct ovl_dirfds *c)
{
    for (size_t i = 0; i < sizeof(c->fd) / sizeof(c->fd[0]); i++) {
        if (c->fd[i] >= 0)
            close(c->fd[i]);
        c->fd[i] = -2;
    }
}

/* Directory prel of layer l: from c when given (then owned by c), else a
 * new fd the caller closes. Negative when absent. */
static int dir_fd(struct ovl_fs *fs, struct ovl_dirfds *c, enum ovl_layer l,
                  const char *prel)
{
    if (!c)
        return layer_dir(fs, l, prel);
    if (c->fd[l] == -2) {
        int fd = layer_dir(fs, l, prel);
        c->fd[l] = fd < 0 ? -1 : fd;
    }
    return c->fd[l];
}

static void dir_fd_put(struct ovl_dirfds *c, int fd)
{
    if (!c && fd >= 0)
        close(fd);
}

/* fstatat of name in directory prel of layer l; false when absent. The
 * directory's fd goes to *dfd_out when found (release with dir_fd_put). */
static bool layer_stat(struct ovl_fs *fs, struct ovl_dirfds *c, enum ovl_layer l,
                       const char *prel, const char *name, struct stat *st,
                       int *dfd_out)
{
    int dfd = dir_fd(fs, c, l, prel);
    if (dfd < 0)
        return false;
    bool found = fstatat(dfd, name, st, AT_SYMLINK_NOFOLLOW) == 0;
    if (dfd_out && found)
        *dfd_out = dfd;
    else
        dir_fd_put(c, dfd);
    return found;
}

/* A lower file with several links, one of which was copied up, must show
 * the copy under every name: link the indexed copy in under this name.
 * Idempotent, so it is safe for concurrent readers. 0 when it did. */
static int index_link_in(struct ovl_fs *fs, enum ovl_layer ul, const char *prel,
                         const char *name, const struct stat *lst)
{
    char key[64], rel[PATH_MAX];
    struct stat ist;
    int ifd = layer_index_fd(fs, ul);
    layer_index_name(key, sizeof(key), lst);
    if (fstatat(ifd, key, &ist, AT_SYMLINK_NOFOLLOW) < 0)
        return -errno;
    int rc = ovl_join(rel, sizeof(rel), prel, name);
    if (rc == 0)
        rc = ovl_make_parents(fs, ul, rel);
    if (rc < 0)
        return rc;
    int dfd = layer_dir(fs, ul, prel);
    if (dfd < 0)
        return dfd;
    rc = linkat(ifd, key, dfd, name, 0) < 0 && errno != EEXIST ? -errno : 0;
    close(dfd);
    return rc;
}

/* Resolves name in directory prel whose lower merges when parent_merges. */
static int resolve_at(struct ovl_fs *fs, const char *prel, bool parent_merges,
                      const char *name, struct ovl_ent *e, struct ovl_dirfds *c)
{
    char rel[PATH_MAX];
    struct stat ust, lst;
    int rc = ovl_join(rel, sizeof(rel), prel, name);
    if (rc < 0)
        return rc;

    memset(e, 0, sizeof(*e));
    e->cls = pclass_of(fs->cfg, rel);
    if (e->cls == PCLASS_TEMP) {
        if (layer_stat(fs, c, OVL_TEMP, prel, name, &e->st, NULL))
            e->layer = OVL_TEMP;
        return 0;
    }

    enum ovl_layer ul = ovl_upper_of(e->cls);
    int udfd = -1;
    bool in_upper = layer_stat(fs, c, ul, prel, name, &ust, &udfd);
    if (in_upper && layer_is_whiteout(&ust)) {
        e->upper_whiteout = true;
        in_upper = false;
    }
    bool lower_dir = false;
    if (parent_merges) {
        e->in_lower = layer_stat(fs, c, OVL_LOWER, prel, name, &lst, NULL);
        lower_dir = e->in_lower && S_ISDIR(lst.st_mode);
        if (!in_upper && !e->upper_whiteout && e->in_lower &&
            S_ISREG(lst.st_mode) && lst.st_nlink > 1 &&
            index_link_in(fs, ul, prel, name, &lst) == 0) {
            if (c && c->fd[ul] == -1)
                c->fd[ul] = -2;     /* the link-in made the upper dir */
            if (udfd < 0)
                udfd = dir_fd(fs, c, ul, prel);
            in_upper = udfd >= 0 &&
                       fstatat(udfd, name, &ust, AT_SYMLINK_NOFOLLOW) == 0;
        }
    }
    if (in_upper) {
        e->layer = ul;
        e->st = ust;
        if (S_ISDIR(ust.st_mode) && lower_dir)
            e->lower_merge = !layer_is_opaque(udfd, name);
    } else if (e->in_lower && !e->upper_whiteout) {
        e->layer = OVL_LOWER;
        e->st = lst;
        e->lower_merge = lower_dir;
    }
    dir_fd_put(c, udfd);
    return 0;
}

static int resolve_root(struct ovl_fs *fs, struct ovl_ent *e)
{
    memset(e, 0, sizeof(*e));
    if (fstat(fs->upper_fd, &e->st) < 0)
        return -errno;
    e->layer = OVL_UPPER;
    e->in_lower = true;
    e->lower_merge = true;
    e->cls = PCLASS_PRIVATE;
    return 0;
}

void ovl_ns_changed(struct ovl_fs *fs)
{
    atomic_fetch_add((_Atomic uint64_t *)fs->merge_gen, 1);
    atomic_fetch_add((_Atomic uint64_t *)fs->gen, 1);
}

void ovl_entries_changed(struct ovl_fs *fs)
{
    atomic_fetch_add((_Atomic uint64_t *)fs->gen, 1);
}

bool ovl_dir_merges(struct ovl_fs *fs, struct ovl_node *n)
{
    if (n == fs->root)
        return true;
    uint64_t gen = atomic_load((_Atomic uint64_t *)fs->merge_gen) + 1;
    uint64_t c = atomic_load((_Atomic uint64_t *)&n->merge_cache);
    if ((c >> 1) == gen)
        return c & 1;

    char rel[PATH_MAX];
    struct ovl_ent e;
    bool merges = ovl_resolve_node(fs, n, rel, sizeof(rel), &e) == 0 &&
                  S_ISDIR(e.st.st_mode) && e.lower_merge;
    atomic_store((_Atomic uint64_t *)&n->merge_cache, (gen << 1) | merges);
    return merges;
}

int ovl_resolve_child(struct ovl_fs *fs, struct ovl_node *parent,
                      const char *prel, const char *name, struct ovl_ent *e)
{
    return resolve_at(fs, prel, ovl_dir_merges(fs, parent), name, e, NULL);
}

int ovl_resolve_child_at(struct ovl_fs *fs, struct ovl_node *parent,
                         const char *prel, const char *name,
                         struct ovl_ent *e, struct ovl_dirfds *c)
{
    return resolve_at(fs, prel, ovl_dir_merges(fs, parent), name, e, c);
}

/* The node resolution cache word: the generation it holds for (+1, so
 * that 0 never matches) above what resolve_at found. */
#define RES_GEN_SHIFT 16
#define RES_IN_LOWER  (1u << 5)
#define RES_MERGE     (1u << 6)
#define RES_WHITEOUT  (1u << 7)

static uint64_t res_pack(uint64_t gen, const struct ovl_ent *e)
{
    return gen << RES_GEN_SHIFT | (uint64_t)e->layer | (uint64_t)e->cls << 3 |
           (e->in_lower ? RES_IN_LOWER : 0) | (e->lower_merge ? RES_MERGE : 0) |
           (e->upper_whiteout ? RES_WHITEOUT : 0);
}

/* Fills *e from cache word c with a fresh lstat of rel in the cached
 * layer. -errno when that entry is not there: the caller resolves anew. */
static int res_unpack(struct ovl_fs *fs, uint64_t c, const char *rel,
                      struct ovl_ent *e)
{
    memset(e, 0, sizeof(*e));
    e->layer = (enum ovl_layer)(c & 7);
    e->cls = (enum pclass)((c >> 3) & 3);
    e->in_lower = c & RES_IN_LOWER;
    e->lower_merge = c & RES_MERGE;
    e->upper_whiteout = c & RES_WHITEOUT;
    int fd = layer_open(fs, e->layer, rel, O_PATH | O_NOFOLLOW, 0);
    if (fd < 0)
        return fd;
    int rc = fstat(fd, &e->st) < 0 ? -errno : 0;
    close(fd);
    return rc;
}

int ovl_resolve_node(struct ovl_fs *fs, struct ovl_node *n, char *rel,
                     size_t len, struct ovl_ent *e)
{
    int rc = node_path(n, rel, len);
    if (rc < 0)
        return rc;
    if (n == fs->root)
        return resolve_root(fs, e);
    /* Read before resolving: a change meanwhile leaves the word stale. */
    uint64_t gen = (atomic_load((_Atomic uint64_t *)fs->gen) + 1) &
                   (UINT64_MAX >> RES_GEN_SHIFT);
    uint64_t c = atomic_load((_Atomic uint64_t *)&n->res_cache);
    if ((c >> RES_GEN_SHIFT) == gen && res_unpack(fs, c, rel, e) == 0)
        return 0;
    char prel[PATH_MAX];
    const char *name = ovl_split(rel, prel, sizeof(prel));
    rc = resolve_at(fs, prel, ovl_dir_merges(fs, n->parent), name, e, NULL);
    if (rc == 0 && e->layer == OVL_NONE)
        rc = -ENOENT;
    if (rc == 0)
        atomic_store((_Atomic uint64_t *)&n->res_cache, res_pack(gen, e));
    return rc;
}

int ovl_resolve_path(struct ovl_fs *fs, const char *rel, struct ovl_ent *e)
{
    char prefix[PATH_MAX], comp[NAME_MAX + 1];
    const char *p = rel;
    bool merges = true;

    if (!rel[0])
        return resolve_root(fs, e);
    prefix[0] = '\0';
    for (;;) {
        const char *slash = strchr(p, '/');
        size_t l = slash ? (size_t)(slash - p) : strlen(p);
        if (l == 0 || l > NAME_MAX)
            return -EINVAL;
        memcpy(comp, p, l);
        comp[l] = '\0';
        int rc = resolve_at(fs, prefix, merges, comp, e, NULL);
        if (rc < 0)
            return rc;
        if (!slash)
            return e->layer == OVL_NONE ? -ENOENT : 0;
        if (e->layer == OVL_NONE)
            return -ENOENT;
        if (!S_ISDIR(e->st.st_mode))
            return -ENOTDIR;
        merges = e->lower_merge;
        /* The parent of the next component is rel up to this slash. */
        size_t pl = (size_t)(slash - rel);
        if (pl >= sizeof(prefix))
            return -ENAMETOOLONG;
        memcpy(prefix, rel, pl);
        prefix[pl] = '\0';
        p = slash + 1;
    }
}

uint64_t ovl_ent_ino_at(struct ovl_fs *fs, const char *rel,
                        const struct ovl_ent *e, struct ovl_dirfds *c)
{
    if (ovl_is_upper(e->layer) && rel[0] && !e->made) {
        char prel[PATH_MAX];
        const char *name = ovl_split(rel, prel, sizeof(prel));
        int dfd = dir_fd(fs, c, e->layer, prel);
        if (dfd >= 0) {
            uint64_t o = layer_origin(dfd, name);
            dir_fd_put(c, dfd);
            if (o)
                return o;
        }
    }
    return layer_ino(e->layer, e->st.st_ino);
}

uint64_t ovl_ent_ino(struct ovl_fs *fs, const char *rel, const struct ovl_ent *e)
{
    return ovl_ent_ino_at(fs, rel, e, NULL);
}

void ovl_fix_nlink(struct ovl_fs *fs, enum ovl_layer l, uint64_t ino,
                   struct stat *st)
{
    if (!ovl_is_upper(l) || !S_ISREG(st->st_mode) || st->st_nlink < 2 ||
        ino != layer_ino(OVL_LOWER, ino))
        return;
    char key[64];
    struct stat lst = { .st_dev = fs->lower_dev, .st_ino = (ino_t)ino }, ist;
    layer_index_name(key, sizeof(key), &lst);
    if (fstatat(layer_index_fd(fs, l), key, &ist, AT_SYMLINK_NOFOLLOW) == 0 &&
        ist.st_ino == st->st_ino && ist.st_dev == st->st_dev)
        st->st_nlink--;
}
