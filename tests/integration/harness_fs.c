/* harness_fs.c - small file helpers for building fixtures and probing views. */
#include "harness.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

void h_put_bytes(const char *path, const void *buf, size_t len, mode_t mode)
{
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, mode);
    cr_assert(fd >= 0, "create %s: %s", path, strerror(errno));
    const char *p = buf;
    while (len > 0) {
        ssize_t n = write(fd, p, len);
        cr_assert(n > 0, "write %s: %s", path, strerror(errno));
        p += n;
        len -= (size_t)n;
    }
    cr_assert(close(fd) == 0, "close %s: %s", path, strerror(errno));
    /* open() honours the umask; fixtures want the exact mode asked for. */
    cr_assert(chmod(path, mode) == 0, "chmod %s: %s", path, strerror(errno));
}

void h_put(const char *path, const char *content, mode_t mode)
{
    h_put_bytes(path, content, strlen(content), mode);
}

char *h_get(const char *path)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return NULL;
    size_t cap = 4096, len = 0;
    char *buf = malloc(cap);
    ssize_t n;
    while (buf && (n = read(fd, buf + len, cap - len - 1)) != 0) {
        if (n < 0) {
            int e = errno;
            free(buf);
            close(fd);
            errno = e;
            return NULL;
        }
        len += (size_t)n;
        if (cap - len < 2) {
            char *b = realloc(buf, cap * 2);
            if (!b)
                free(buf);
            buf = b;
            cap *= 2;
        }
    }
    close(fd);
    cr_assert(buf != NULL, "out of memory");
    buf[len] = '\0';
    char *s = h_str("%s", buf);
    free(buf);
    return s;
}

void h_mkdir_p(const char *path, mode_t mode)
{
    char buf[PATH_MAX];
    snprintf(buf, sizeof buf, "%s", path);
    for (char *p = buf + 1; *p; p++) {
        if (*p != '/')
            continue;
        *p = '\0';
        if (mkdir(buf, 0755) != 0)
            cr_assert_eq(errno, EEXIST, "mkdir %s: %s", buf, strerror(errno));
        *p = '/';
    }
    if (mkdir(buf, mode) != 0)
        cr_assert_eq(errno, EEXIST, "mkdir %s: %s", buf, strerror(errno));
    else
        cr_assert(chmod(buf, mode) == 0);
}

void h_symlink(const char *target, const char *linkpath)
{
    cr_assert(symlink(target, linkpath) == 0, "symlink %s -> %s: %s",
              linkpath, target, strerror(errno));
}

int h_lstat(const char *path, struct stat *st)
{
    return lstat(path, st) == 0 ? 0 : -errno;
}

bool h_exists(const char *path)
{
    struct stat st;
    return lstat(path, &st) == 0;
}

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

char *h_ls(const char *path)
{
    DIR *d = opendir(path);
    if (!d)
        return h_str("!%s", h_errname(errno));
    char **names = NULL;
    size_t n = 0, cap = 0, total = 1;
    struct dirent *de;
    errno = 0;
    while ((de = readdir(d)) != NULL) {
        if (strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0)
            continue;
        if (n == cap) {
            cap = cap ? cap * 2 : 32;
            names = realloc(names, cap * sizeof *names);
            cr_assert(names != NULL);
        }
        names[n] = strdup(de->d_name);
        total += strlen(de->d_name) + 1;
        n++;
        errno = 0;
    }
    int e = errno;
    closedir(d);
    char *out = calloc(1, total);
    cr_assert(out != NULL);
    if (n > 1)
        qsort(names, n, sizeof *names, cmp_str);
    for (size_t i = 0; i < n; i++) {
        if (i)
            strcat(out, " ");
        strcat(out, names[i]);
        free(names[i]);
    }
    free(names);
    char *s = e ? h_str("!%s", h_errname(e)) : h_str("%s", out);
    free(out);
    return s;
}

void h_set_times(const char *path, time_t atime, time_t mtime)
{
    struct timespec ts[2] = { { atime, 0 }, { mtime, 0 } };
    cr_assert(utimensat(AT_FDCWD, path, ts, AT_SYMLINK_NOFOLLOW) == 0,
              "utimensat %s: %s", path, strerror(errno));
}

static int rm_one(const char *path, const struct stat *st, int type, struct FTW *f)
{
    (void)st;
    (void)f;
    if (type == FTW_DP)
        rmdir(path);
    else
        unlink(path);
    return 0;
}

void h_rm_rf(const char *path)
{
    /* FTW_MOUNT: a mount that could not be detached is left alone rather
     * than emptied through the filesystem under test. */
    nftw(path, rm_one, 32, FTW_DEPTH | FTW_PHYS | FTW_MOUNT);
}
