/* handle.c - the open files of a view: listed for status, and moved by a
 * copy-up.
 *
 * A process that opened a lower file read-only and then sees another open
 * write to it must read the new data, as on any filesystem. After a copy-up
 * the tracked handles of that lower file get a descriptor of the copy
 * installed over their old one (dup3 is atomic for concurrent readers). */
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <unistd.h>

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
    pthread_mutex_lock(&fs->handle_lock);
    for (struct ovl_handle *h = fs->handles; h; h = h->next) {
        if (h->layer != OVL_LOWER || h->dev != lst->st_dev || h->ino != lst->st_ino)
            continue;
        int fd = layer_open(fs, l, rel, O_RDONLY | O_NOFOLLOW, 0);
        if (fd < 0)
            continue;       /* the handle keeps reading the lower */
        if (dup3(fd, h->fd, O_CLOEXEC) >= 0)
            h->layer = l;
        close(fd);
    }
    pthread_mutex_unlock(&fs->handle_lock);
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

void handle_free(struct ovl_fs *fs, struct ovl_handle *h)
{
    handle_untrack(fs, h);
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
            fd = fcntl(h->fd, F_DUPFD_CLOEXEC, 0);
            fd = fd < 0 ? -errno : fd;
            *layer = h->layer;
            break;
        }
    pthread_mutex_unlock(&fs->handle_lock);
    return fd;
}
