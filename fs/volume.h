/* volume.h - what all agents' views of one volume share: its configuration
 * and its lower. */
#ifndef LANEFS_VOLUME_H
#define LANEFS_VOLUME_H

#include <pthread.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "fs/config.h"

struct ovl_fs;
struct lk_table;
struct lk_waiter;
struct lease_table;
struct journal;
struct rengine;
struct prefetch;

struct volume {
    char *state_dir;          /* absolute */
    struct vol_config cfg;
    int lower_fd;             /* read-only detached mount when possible */
    dev_t lower_dev;
    ino_t lower_ino;
    int shared_fd;            /* STATE/shared/upper: the layer of shared paths */
    int shared_work_fd;       /* STATE/shared/work */
    int shared_index_fd;      /* STATE/shared/index */
    pthread_rwlock_t shared_lock;   /* namespace of the shared upper */
    uint64_t gen;             /* atomic: generation of where entries live */
    uint64_t merge_gen;       /* atomic: generation of directories' merging */
    pthread_mutex_t views_lock;
    struct ovl_fs *views;     /* views_lock: every open view */
    struct lk_table *locks;   /* fcntl/OFD/flock locks of every view */
    struct lease_table *leases;     /* advisory leases of every view */
    struct journal *journal;  /* the daemon's event journal; NULL: none */
    struct rengine *rengine;  /* reads of shared data; NULL: read directly */
    struct prefetch *prefetch;      /* warms lower directories; NULL: none */
    pthread_mutex_t lk_wait_mu;
    struct lk_waiter *lk_waiters;   /* lk_wait_mu: parked lock requests */
};

/* Loads STATE's configuration, opens its lower and its shared layer. On error err holds a
 * one-line message and *v holds nothing to free. 0 or -errno. */
int  volume_open(struct volume *v, const char *state_dir, char *err, size_t errlen);
void volume_close(struct volume *v);

#endif
