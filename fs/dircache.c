/* dircache.c - a view's descriptors of the layer directories it used last.
 *
 * Nearly every operation opens the directory that holds its name, by a
 * path walk from the layer root (openat2, fs/layer.c): an untar into a
 * directory walks the same path for every file. The view keeps the last
 * DC_SLOTS of those descriptors and hands out duplicates, which cost no
 * walk and no new open file. A cached descriptor follows its directory,
 * not its path, so it is used only while nothing could have moved a
 * directory: it is stamped with the volume's merge generation, which every
 * rmdir, rename, copy-up and opaque mark bumps (namei.c), and a stamp that
 * is not the current one is a miss. A new directory needs no bump: only
 * directories found are cached. The lower never changes under a mount. */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "fs/ovl_i.h"

static uint64_t hash_rel(enum ovl_layer l, const char *rel)
{
    uint64_t h = 0xcbf29ce484222325ULL ^ (uint64_t)l;
    for (const unsigned char *p = (const unsigned char *)rel; *p; p++)
        h = (h ^ *p) * 0x100000001b3ULL;
    return h;
}

/* The slot holding (l, rel) stamped gen, or NULL. dc->mu held. */
static struct dc_slot *find_locked(struct dircache *dc, enum ovl_layer l, const char *rel,
                                   uint64_t hash, uint64_t gen)
{
    for (unsigned i = 0; i < DC_SLOTS; i++) {
        struct dc_slot *s = &dc->slot[i];
        if (s->rel && s->hash == hash && s->layer == l && s->gen == gen &&
            strcmp(s->rel, rel) == 0)
            return s;
    }
    return NULL;
}

int layer_dir(struct ovl_fs *fs, enum ovl_layer l, const char *rel)
{
    struct dircache *dc = &fs->dcache;
    uint64_t gen = fs->merge_gen ? __atomic_load_n(fs->merge_gen, __ATOMIC_ACQUIRE) : 0;
    uint64_t hash = hash_rel(l, rel);
    int fd;

    pthread_mutex_lock(&dc->mu);
    struct dc_slot *s = find_locked(dc, l, rel, hash, gen);
    if (s) {
        s->used = ++dc->tick;
        fd = fcntl(s->fd, F_DUPFD_CLOEXEC, 0);
        pthread_mutex_unlock(&dc->mu);
        return fd < 0 ? -errno : fd;
    }
    pthread_mutex_unlock(&dc->mu);

    fd = layer_open(fs, l, rel, O_PATH | O_DIRECTORY, 0);
    if (fd < 0 || !fs->merge_gen)
        return fd;
    char *copy = strdup(rel);
    int keep = copy ? fcntl(fd, F_DUPFD_CLOEXEC, 0) : -1;
    if (keep < 0) {
        free(copy);
        return fd;              /* not cached: no harm */
    }
    pthread_mutex_lock(&dc->mu);
    /* The least recently used slot (an empty one first) takes it; a stale
     * stamp makes a slot as good as empty. */
    struct dc_slot *victim = &dc->slot[0];
    for (unsigned i = 0; i < DC_SLOTS; i++) {
        struct dc_slot *c = &dc->slot[i];
        if (!c->rel || c->gen != gen) {
            victim = c;
            break;
        }
        if (c->used < victim->used)
            victim = c;
    }
    int old = victim->rel ? victim->fd : -1;
    free(victim->rel);
    *victim = (struct dc_slot){ .rel = copy, .hash = hash, .layer = l, .gen = gen,
                                .fd = keep, .used = ++dc->tick };
    pthread_mutex_unlock(&dc->mu);
    if (old >= 0)
        close(old);
    return fd;
}

void dircache_clear(struct ovl_fs *fs)
{
    struct dircache *dc = &fs->dcache;
    pthread_mutex_lock(&dc->mu);
    for (unsigned i = 0; i < DC_SLOTS; i++) {
        struct dc_slot *s = &dc->slot[i];
        if (s->rel) {
            close(s->fd);
            free(s->rel);
        }
        memset(s, 0, sizeof(*s));
    }
    pthread_mutex_unlock(&dc->mu);
}
