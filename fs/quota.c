/* quota.c - counting an agent's private usage against its limits. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdatomic.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "fs/events.h"
#include "fs/ovl_i.h"
#include "fs/quota.h"

bool quota_on(const struct ovl_fs *fs)
{
    return fs->quota.bytes_limit || fs->quota.inodes_limit;
}

/* Adds what directory dirfd holds, recursively, never following symlinks. */
static int measure(int dirfd, int64_t *bytes, int64_t *inodes)
{
    int fd = openat(dirfd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0)
        return -errno;
    DIR *d = fdopendir(fd);
    if (!d) {
        close(fd);
        return -errno;
    }
    int rc = 0;
    struct dirent *de;
    while (rc == 0 && (de = readdir(d))) {
        struct stat st;
        if (!strcmp(de->d_name, ".") || !strcmp(de->d_name, ".."))
            continue;
        if (fstatat(fd, de->d_name, &st, AT_SYMLINK_NOFOLLOW) < 0 ||
            layer_is_whiteout(&st))
            continue;
        (*inodes)++;            /* names: a hard link counts too */
        if (S_ISREG(st.st_mode)) {
            /* Hard links share one size: count it once in all. */
            *bytes += st.st_size / (st.st_nlink ? (off_t)st.st_nlink : 1);
            continue;
        }
        if (!S_ISDIR(st.st_mode))
            continue;
        int sub = openat(fd, de->d_name, O_PATH | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
        if (sub < 0)
            continue;
        rc = measure(sub, bytes, inodes);
        close(sub);
    }
    closedir(d);
    return rc;
}

int quota_init(struct ovl_fs *fs, unsigned long long bytes_limit,
               unsigned long long inodes_limit)
{
    int64_t bytes = 0, inodes = 0;
    fs->quota.bytes_limit = bytes_limit;
    fs->quota.inodes_limit = inodes_limit;
    if (!quota_on(fs))
        return 0;
    int rc = measure(fs->upper_fd, &bytes, &inodes);
    if (rc == 0)
        rc = measure(fs->temp_fd, &bytes, &inodes);
    atomic_store((_Atomic int64_t *)&fs->quota.bytes_used, bytes);
    atomic_store((_Atomic int64_t *)&fs->quota.inodes_used, inodes);
    return rc;
}

/* Adds delta to *used unless growth passes limit (0: none). */
static bool add_within(int64_t *used, int64_t delta, unsigned long long limit)
{
    _Atomic int64_t *u = (_Atomic int64_t *)used;
    int64_t cur = atomic_load(u);
    do {
        if (delta > 0 && limit && cur + delta > (int64_t)limit)
            return false;
    } while (!atomic_compare_exchange_weak(u, &cur, cur + delta));
    return true;
}

int quota_charge(struct ovl_fs *fs, int64_t bytes, int64_t inodes)
{
    if (!quota_on(fs))
        return 0;
    if (!add_within(&fs->quota.inodes_used, inodes, fs->quota.inodes_limit)) {
        ev_op(fs, "quota_hit", NULL, NULL, 0, "inodes");
        return -EDQUOT;
    }
    if (!add_within(&fs->quota.bytes_used, bytes, fs->quota.bytes_limit)) {
        add_within(&fs->quota.inodes_used, -inodes, 0);
        ev_op(fs, "quota_hit", NULL, NULL, 0, "bytes");
        return -EDQUOT;
    }
    return 0;
}
