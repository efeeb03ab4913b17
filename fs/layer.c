/* layer.c - safe access below a layer root.
 *
 * Every path the daemon touches is relative to one of its layer roots and is
 * resolved by openat2(2) with RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS |
 * RESOLVE_NO_MAGICLINKS: a symlink anywhere in a layer (planted in the lower,
 * or made by an agent in its upper) is never followed by the daemon, and ".."
 * can never climb out of a root. */
#include <dirent.h>
#include <errno.h>
#include <linux/fs.h>
#include <fcntl.h>
#include <sys/ioctl.h>
#include <limits.h>
#include <linux/openat2.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/sysmacros.h>
#include <sys/xattr.h>
#include <unistd.h>

#include "fs/ovl_i.h"

#define INO_TAG_SHIFT 61
#define INO_MASK ((UINT64_C(1) << INO_TAG_SHIFT) - 1)

int layer_root_fd(const struct ovl_fs *fs, enum ovl_layer l)
{
    switch (l) {
    case OVL_LOWER: return fs->lower_fd;
    case OVL_UPPER: return fs->upper_fd;
    case OVL_TEMP:  return fs->temp_fd;
    case OVL_SHARED: return fs->shared_fd;
    default:        return -1;
    }
}

int layer_work_fd(const struct ovl_fs *fs, enum ovl_layer l)
{
    return l == OVL_SHARED ? fs->shared_work_fd : fs->work_fd;
}

int layer_index_fd(const struct ovl_fs *fs, enum ovl_layer l)
{
    return l == OVL_SHARED ? fs->shared_index_fd : fs->index_fd;
}

void ovl_lock_read(struct ovl_fs *fs)
{
    pthread_rwlock_rdlock(&fs->ns_lock);
    if (fs->cfg->n_shared_paths)
        pthread_rwlock_rdlock(&fs->vol->shared_lock);
}

void ovl_lock_write(struct ovl_fs *fs)
{
    pthread_rwlock_wrlock(&fs->ns_lock);
    if (fs->cfg->n_shared_paths)
        pthread_rwlock_wrlock(&fs->vol->shared_lock);
}

void ovl_unlock(struct ovl_fs *fs)
{
    if (fs->cfg->n_shared_paths)
        pthread_rwlock_unlock(&fs->vol->shared_lock);
    pthread_rwlock_unlock(&fs->ns_lock);
}

int layer_openat(int root, const char *rel, int flags, mode_t mode)
{
    struct open_how how = {
        .flags = (uint64_t)(flags | O_CLOEXEC),
        .mode = (flags & (O_CREAT | O_TMPFILE)) ? mode : 0,
        .resolve = RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS | RESOLVE_NO_MAGICLINKS,
    };
    if (root < 0)
        return -EINVAL;
    long fd = syscall(SYS_openat2, root, rel[0] ? rel : ".", &how, sizeof(how));
    if (fd < 0) {
        /* A symlink met on the way means "not a directory here" for us. */
        return errno == ELOOP ? -ENOENT : -errno;
    }
    return (int)fd;
}

DIR *layer_opendir(int root, const char *rel, bool noatime, int *rc)
{
    int fd = layer_openat(root, rel, O_RDONLY | O_DIRECTORY | (noatime ? O_NOATIME : 0), 0);
    if (fd == -EPERM && noatime)    /* O_NOATIME on a directory not ours */
        fd = layer_openat(root, rel, O_RDONLY | O_DIRECTORY, 0);
    if (fd < 0) {
        *rc = fd;
        return NULL;
    }
    DIR *d = fdopendir(fd);
    if (!d) {
        *rc = -errno;
        close(fd);
    }
    return d;
}

int layer_open(const struct ovl_fs *fs, enum ovl_layer l, const char *rel,
               int flags, mode_t mode)
{
    return layer_openat(layer_root_fd(fs, l), rel, flags, mode);
}

void layer_spread_subdirs(const char *path)
{
    int fd = open(path, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    int flags;
    if (fd < 0)
        return;
    if (ioctl(fd, FS_IOC_GETFLAGS, &flags) == 0 && !(flags & FS_TOPDIR_FL)) {
        flags |= FS_TOPDIR_FL;
        if (ioctl(fd, FS_IOC_SETFLAGS, &flags) < 0) { /* a hint only */ }
    }
    close(fd);
}

bool layer_is_whiteout(const struct stat *st)
{
    return S_ISCHR(st->st_mode) && st->st_rdev == makedev(0, 0);
}

void layer_fdpath(char *buf, size_t len, int fd, const char *name)
{
    if (name && name[0])
        snprintf(buf, len, "/proc/self/fd/%d/%s", fd, name);
    else
        snprintf(buf, len, "/proc/self/fd/%d", fd);
}

int layer_mkwhiteout(int dirfd, const char *name)
{
    if (mknodat(dirfd, name, S_IFCHR | 0, makedev(0, 0)) < 0)
        return -errno;
    return 0;
}

int layer_empty_dir(int dirfd)
{
    int fd = openat(dirfd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0)
        return -errno;
    DIR *d = fdopendir(fd);
    if (!d) {
        int rc = -errno;
        close(fd);
        return rc;
    }
    int rc = 0;
    struct dirent *de;
    while ((de = readdir(d))) {
        if (!strcmp(de->d_name, ".") || !strcmp(de->d_name, ".."))
            continue;
        int r = layer_rm_tree(fd, de->d_name);
        if (r < 0 && rc == 0)
            rc = r;
    }
    closedir(d);
    return rc;
}

int layer_rm_tree(int dirfd, const char *name)
{
    if (unlinkat(dirfd, name, 0) == 0)
        return 0;
    if (errno != EISDIR && errno != EPERM)
        return errno == ENOENT ? 0 : -errno;
    int fd = openat(dirfd, name, O_PATH | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    if (fd < 0)
        return errno == ENOENT ? 0 : -errno;
    int rc = layer_empty_dir(fd);
    close(fd);
    if (unlinkat(dirfd, name, AT_REMOVEDIR) < 0 && rc == 0 && errno != ENOENT)
        rc = -errno;
    return rc;
}

void layer_work_name(struct ovl_fs *fs, char *buf, size_t len)
{
    uint64_t seq = atomic_fetch_add((_Atomic uint64_t *)&fs->work_seq, 1);
    snprintf(buf, len, "w%d.%llu", (int)getpid(), (unsigned long long)seq);
}

void layer_index_name(char *buf, size_t len, const struct stat *st)
{
    snprintf(buf, len, "%llx-%llx", (unsigned long long)st->st_dev,
             (unsigned long long)st->st_ino);
}

uint64_t layer_ino(enum ovl_layer l, ino_t real)
{
    /* The lower and the state dir may be different filesystems: tag the
     * state layers (upper, shared and temp share one filesystem, so a rename
     * between them keeps the number) to keep the two number spaces apart. */
    uint64_t tag = (l == OVL_LOWER) ? 0 : 1;
    return (tag << INO_TAG_SHIFT) | ((uint64_t)real & INO_MASK);
}

uint64_t layer_origin(int dirfd, const char *name)
{
    char p[64 + NAME_MAX];
    uint64_t v = 0;
    layer_fdpath(p, sizeof(p), dirfd, name);
    if (lgetxattr(p, OVL_XATTR_ORIGIN, &v, sizeof(v)) != sizeof(v))
        return 0;
    return layer_ino(OVL_LOWER, (ino_t)v);
}

bool layer_is_opaque(int dirfd, const char *name)
{
    char p[64 + NAME_MAX];
    char v;
    layer_fdpath(p, sizeof(p), dirfd, name);
    return lgetxattr(p, OVL_XATTR_OPAQUE, &v, 1) >= 0;
}
