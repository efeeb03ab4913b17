/* volume.c - a volume's configuration and lower, shared by all its views.
 *
 * The lower is opened as a private, detached, read-only bind mount
 * (open_tree + mount_setattr) when the kernel allows it, so the kernel
 * itself refuses any write to the lower and no read updates its atimes;
 * otherwise it is opened plainly and every open uses O_NOATIME. */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "fs/log.h"
#include "fs/ovl_i.h"
#include "fs/volume.h"
#include "locks/lease.h"
#include "locks/posix.h"

static int open_lower(const char *lower)
{
    int fd = (int)syscall(SYS_open_tree, AT_FDCWD, lower,
                          OPEN_TREE_CLONE | OPEN_TREE_CLOEXEC | AT_RECURSIVE);
    if (fd >= 0) {
        struct mount_attr attr = {
            .attr_set = MOUNT_ATTR_RDONLY | MOUNT_ATTR_NOSUID |
                        MOUNT_ATTR_NODEV | MOUNT_ATTR_NOATIME,
            .attr_clr = MOUNT_ATTR__ATIME,
        };
        if (syscall(SYS_mount_setattr, fd, "", AT_EMPTY_PATH | AT_RECURSIVE,
                    &attr, sizeof(attr)) == 0)
            return fd;
        log_say("lower: read-only bind refused (%s); using O_NOATIME opens",
                strerror(errno));
        close(fd);
    }
    fd = open(lower, O_PATH | O_DIRECTORY | O_CLOEXEC);
    return fd < 0 ? -errno : fd;
}

/* Opens (creating it if needed) the directory STATE/shared/leaf. */
static int open_shared_dir(const char *state, const char *leaf)
{
    char p[PATH_MAX];
    snprintf(p, sizeof(p), "%s/shared", state);
    if (mkdir(p, 0700) < 0 && errno != EEXIST)
        return -errno;
    snprintf(p, sizeof(p), "%s/shared/%s", state, leaf);
    if (mkdir(p, 0700) < 0 && errno != EEXIST)
        return -errno;
    if (!strcmp(leaf, "upper"))
        layer_spread_subdirs(p);
    int fd = open(p, O_PATH | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    return fd < 0 ? -errno : fd;
}

int volume_open(struct volume *v, const char *state_dir, char *err, size_t errlen)
{
    struct stat st;
    int rc;

    memset(v, 0, sizeof(*v));
    v->lower_fd = v->shared_fd = v->shared_work_fd = v->shared_index_fd = -1;
    pthread_rwlock_init(&v->shared_lock, NULL);
    pthread_mutex_init(&v->views_lock, NULL);
    pthread_mutex_init(&v->lk_wait_mu, NULL);
    if (!(v->locks = lk_table_new())) {
        snprintf(err, errlen, "out of memory");
        return -ENOMEM;
    }
    char ep[PATH_MAX];
    snprintf(ep, sizeof(ep), "%s/%s", state_dir, LEASE_EPOCH_FILE);
    if (!(v->leases = lease_table_new(ep))) {
        rc = -errno;
        snprintf(err, errlen, "cannot open the lease table (%s): %s", ep, strerror(errno));
        lk_table_free(v->locks);
        v->locks = NULL;
        return rc;
    }
    rc = vol_config_load(state_dir, &v->cfg, err, errlen);
    if (rc < 0)
        return rc;
    if (!(v->state_dir = strdup(state_dir))) {
        rc = -ENOMEM;
        snprintf(err, errlen, "out of memory");
        goto fail;
    }
    rc = v->lower_fd = open_lower(v->cfg.lower);
    if (rc < 0 || fstat(v->lower_fd, &st) < 0) {
        rc = rc < 0 ? rc : -errno;
        snprintf(err, errlen, "cannot open lower %s: %s", v->cfg.lower,
                 strerror(-rc));
        goto fail;
    }
    v->lower_dev = st.st_dev;
    v->lower_ino = st.st_ino;
    if ((rc = v->shared_fd = open_shared_dir(state_dir, "upper")) < 0 ||
        (rc = v->shared_work_fd = open_shared_dir(state_dir, "work")) < 0 ||
        (rc = v->shared_index_fd = open_shared_dir(state_dir, "index")) < 0) {
        snprintf(err, errlen, "cannot open the shared layer in %s/shared: %s",
                 state_dir, strerror(-rc));
        goto fail;
    }
    return 0;
fail:
    volume_close(v);
    return rc;
}

void volume_close(struct volume *v)
{
    int *fds[] = { &v->lower_fd, &v->shared_fd, &v->shared_work_fd,
                   &v->shared_index_fd };
    for (size_t i = 0; i < sizeof(fds) / sizeof(fds[0]); i++)
        if (*fds[i] >= 0) {
            close(*fds[i]);
            *fds[i] = -1;
        }
    pthread_rwlock_destroy(&v->shared_lock);
    pthread_mutex_destroy(&v->views_lock);
    pthread_mutex_destroy(&v->lk_wait_mu);
    lk_table_free(v->locks);
    v->locks = NULL;
    lease_table_free(v->leases);
    v->leases = NULL;
    vol_config_free(&v->cfg);
    free(v->state_dir);
    v->state_dir = NULL;
}
