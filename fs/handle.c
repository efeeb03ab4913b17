/* handle.c - the open files of a view: listed for status, and moved by a
 * copy-up.
 *
 * A process that opened a lower file read-only and then sees another open
 * write to it must read the new data, as on any filesystem. After a copy-up
 * the tracked handles of that lower file get a descriptor of the copy
 * installed over their old one (dup3 is atomic for concurrent readers).
 * A lazy copy (cowmap.h) is not installed: its upper holds holes where the
 * lower has data. Those handles get its map instead, and read through it;
 * their old descriptor stays, so a read that began before still reads the
 * lower, which is right until a write is answered. */
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <unistd.h>

#include "fs/cowmap.h"
#include "fs/ovl_i.h"

void handle_track(struct ovl_fs *fs, struct ovl_handle *h)
{
    pthread_mutex_lock(&fs->handle_lock);
    h->prev = NULL;
    h->next = fs->handles;
    if (h->next)
        h->next->prev = h;
    fs->handles = h;
    pthread_mutex_unlock(&fs->handle_lock);
}

/* Takes h off the list. Caller holds handle_lock. */
static void unlink_locked(struct ovl_fs *fs, struct ovl_handle *h)
{
    if (h->prev)
        h->prev->next = h->next;
    else
        fs->handles = h->next;
    if (h->next)
        h->next->prev = h->prev;
    h->prev = h->next = NULL;
}

void handle_untrack(struct ovl_fs *fs, struct ovl_handle *h)
{
    pthread_mutex_lock(&fs->handle_lock);
    unlink_locked(fs, h);
    pthread_mutex_unlock(&fs->handle_lock);
}

/* Re-points the matching lower handles of one view. */
static void view_copied_up(struct ovl_fs *fs, const struct stat *lst,
                           enum ovl_layer l, const char *rel)
{
    struct cowmap *cow = NULL;
    int fd = -1;
    pthread_mutex_lock(&fs->handle_lock);
    for (struct ovl_handle *h = fs->handles; h; h = h->next) {
        if (h->layer != OVL_LOWER || h->dev != lst->st_dev || h->ino != lst->st_ino ||
            __atomic_load_n(&h->cow, __ATOMIC_ACQUIRE))
            continue;
        if (fd < 0) {
            fd = layer_open(fs, l, rel, O_RDONLY | O_NOFOLLOW, 0);
            if (fd < 0)
                break;      /* the handles keep reading the lower */
            if (l == OVL_UPPER && cowmap_get(fs, fd, &cow) < 0)
                break;      /* likewise */
        }
        if (cow)
            __atomic_store_n(&h->cow, cowmap_ref(fs, cow), __ATOMIC_RELEASE);
        else if (dup3(fd, h->fd, O_CLOEXEC) >= 0)
            h->layer = l;
    }
    pthread_mutex_unlock(&fs->handle_lock);
    cowmap_put(fs, cow);
    if (fd >= 0)
        close(fd);
}

void handle_copied_up(struct ovl_fs *fs, const struct stat *lst, enum ovl_layer l,
                      const char *rel)
{
    if (l != OVL_SHARED) {
        view_copied_up(fs, lst, l, rel);
        return;
    }
    /* A shared file is one file for every agent. */
    pthread_mutex_lock(&fs->vol->views_lock);
    for (struct ovl_fs *v = fs->vol->views; v; v = v->vnext)
        view_copied_up(v, lst, l, rel);
    pthread_mutex_unlock(&fs->vol->views_lock);
}

int handle_fd(const struct ovl_handle *h, enum ovl_layer *layer)
{
    struct cowmap *cow = __atomic_load_n(&h->cow, __ATOMIC_ACQUIRE);
    if (layer)
        *layer = cow && h->layer == OVL_LOWER ? OVL_UPPER : h->layer;
    return cow ? cowmap_upper_fd(cow) : h->fd;
}

void handle_free(struct ovl_fs *fs, struct ovl_handle *h)
{
    handle_untrack(fs, h);
    cowmap_put(fs, h->cow);
    close(h->fd);
    free(h->path);
    free(h->lk_owners);
    free(h);
}

int handle_note_lock_owner(struct ovl_fs *fs, struct ovl_handle *h, uint64_t owner)
{
    int rc = 0;
    pthread_mutex_lock(&fs->handle_lock);
    for (unsigned i = 0; i < h->n_lk_owners; i++)
        if (h->lk_owners[i] == owner)
            goto out;
    uint64_t *v = realloc(h->lk_owners, (h->n_lk_owners + 1) * sizeof(*v));
    if (!v) {
        rc = -ENOMEM;
        goto out;
    }
    v[h->n_lk_owners++] = owner;
    h->lk_owners = v;
out:
    pthread_mutex_unlock(&fs->handle_lock);
    return rc;
}

int handle_dup_of_node(struct ovl_fs *fs, struct ovl_node *n, enum ovl_layer *layer)
{
    int fd = -ENOENT;
    pthread_mutex_lock(&fs->handle_lock);
    for (struct ovl_handle *h = fs->handles; h; h = h->next)
        if (h->node == n) {
            fd = fcntl(handle_fd(h, layer), F_DUPFD_CLOEXEC, 0);
            fd = fd < 0 ? -errno : fd;
            break;
        }
    pthread_mutex_unlock(&fs->handle_lock);
    return fd;
}
