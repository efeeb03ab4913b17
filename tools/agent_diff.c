/* agent_diff.c - an agent's changes, from its upper and the lower. */
#include "tools/agent_diff.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/xattr.h>
#include <unistd.h>

#define ADIFF_XATTR_OPAQUE "user.lanefs.opaque"
#define ADIFF_XATTR_OWN    "user.lanefs."
#define ADIFF_XATTR_USER   "user."

/* Names of one directory, sorted, for lookups while walking it. */
struct adiff_names {
    char **v;
    size_t n;
};

static void adiff_names_free(struct adiff_names *nm)
{
    for (size_t i = 0; i < nm->n; i++)
        free(nm->v[i]);
    free(nm->v);
    nm->v = NULL;
    nm->n = 0;
}

static int adiff_strcmp(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

static int adiff_change_cmp(const void *a, const void *b)
{
    const struct adiff_change *x = a, *y = b;
    return strcmp(x->path, y->path);
}

void adiff_free(struct adiff_list *l)
{
    for (size_t i = 0; i < l->n; i++)
        free(l->v[i].path);
    free(l->v);
    memset(l, 0, sizeof(*l));
}

static int adiff_add(struct adiff_list *l, char kind, const char *path)
{
    if (l->n == l->cap) {
        size_t cap = l->cap ? l->cap * 2 : 64;
        struct adiff_change *v = realloc(l->v, cap * sizeof(*v));
        if (!v)
            return -ENOMEM;
        l->v = v;
        l->cap = cap;
    }
    char *p = strdup(path);
    if (!p)
        return -ENOMEM;
    l->v[l->n].kind = kind;
    l->v[l->n].path = p;
    l->n++;
    return 0;
}

/* A directory of one of the trees, opened to be read, never through a
 * symlink; lower reads leave access times alone where allowed. */
static int adiff_open_dir(int dirfd, const char *name, bool lower)
{
    int flags = O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC;
    int fd = openat(dirfd, name, flags | (lower ? O_NOATIME : 0));
    if (fd < 0 && lower && errno == EPERM)
        fd = openat(dirfd, name, flags);
    return fd < 0 ? -errno : fd;
}

static int adiff_read_names(int dirfd, struct adiff_names *nm)
{
    size_t cap = 0;
    int rc = 0;

    memset(nm, 0, sizeof(*nm));
    int fd = openat(dirfd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0)
        return -errno;
    DIR *d = fdopendir(fd);
    if (!d) {
        rc = -errno;
        close(fd);
        return rc;
    }
    struct dirent *de;
    errno = 0;
    while ((de = readdir(d))) {
        if (!strcmp(de->d_name, ".") || !strcmp(de->d_name, ".."))
            continue;
        if (nm->n == cap) {
            size_t ncap = cap ? cap * 2 : 32;
            char **v = realloc(nm->v, ncap * sizeof(*v));
            if (!v) {
                rc = -ENOMEM;
                goto out;
            }
            nm->v = v;
            cap = ncap;
        }
        if (!(nm->v[nm->n] = strdup(de->d_name))) {
            rc = -ENOMEM;
            goto out;
        }
        nm->n++;
        errno = 0;
    }
    if (errno)
        rc = -errno;
out:
    closedir(d);
    if (rc < 0)
        adiff_names_free(nm);
    else if (nm->n)
        qsort(nm->v, nm->n, sizeof(*nm->v), adiff_strcmp);
    return rc;
}

static bool adiff_has_name(const struct adiff_names *nm, const char *name)
{
    return nm->n && bsearch(&name, nm->v, nm->n, sizeof(*nm->v),
                            adiff_strcmp) != NULL;
}

static bool adiff_is_whiteout(const struct stat *st)
{
    return S_ISCHR(st->st_mode) && st->st_rdev == makedev(0, 0);
}

static void adiff_fdpath(char *buf, size_t len, int dirfd, const char *name)
{
    snprintf(buf, len, "/proc/self/fd/%d/%s", dirfd, name);
}

static bool adiff_opaque(int dirfd, const char *name)
{
    char p[64 + NAME_MAX];
    char v;
    adiff_fdpath(p, sizeof(p), dirfd, name);
    return lgetxattr(p, ADIFF_XATTR_OPAQUE, &v, 1) >= 0 || errno == ERANGE;
}

/* The user.* xattr names of dirfd/name, lanefs's own left out: a buffer of
 * NUL-terminated names in *buf (caller frees), count in *n. */
static int adiff_xattr_names(int dirfd, const char *name, char **buf,
                             size_t *len, size_t *n)
{
    char p[64 + NAME_MAX];
    adiff_fdpath(p, sizeof(p), dirfd, name);
    *buf = NULL;
    *len = *n = 0;
    ssize_t sz = llistxattr(p, NULL, 0);
    if (sz < 0)
        return (errno == ENOTSUP) ? 0 : -errno;
    if (sz == 0)
        return 0;
    char *all = malloc((size_t)sz), *keep = malloc((size_t)sz);
    if (!all || !keep) {
        free(all);
        free(keep);
        return -ENOMEM;
    }
    sz = llistxattr(p, all, (size_t)sz);
    if (sz < 0) {
        int rc = -errno;
        free(all);
        free(keep);
        return rc;
    }
    size_t w = 0;
    for (size_t i = 0; i < (size_t)sz; i += strlen(all + i) + 1) {
        const char *x = all + i;
        if (strncmp(x, ADIFF_XATTR_USER, strlen(ADIFF_XATTR_USER)) != 0 ||
            strncmp(x, ADIFF_XATTR_OWN, strlen(ADIFF_XATTR_OWN)) == 0)
            continue;
        memcpy(keep + w, x, strlen(x) + 1);
        w += strlen(x) + 1;
        (*n)++;
    }
    free(all);
    *buf = keep;
    *len = w;
    return 0;
}

/* The value of one xattr in a new buffer; -errno when it has none. */
static ssize_t adiff_xattr_value(int dirfd, const char *name, const char *x,
                                 char **val)
{
    char p[64 + NAME_MAX];
    adiff_fdpath(p, sizeof(p), dirfd, name);
    *val = NULL;
    ssize_t sz = lgetxattr(p, x, NULL, 0);
    if (sz < 0)
        return -errno;
    *val = malloc(sz ? (size_t)sz : 1);
    if (!*val)
        return -ENOMEM;
    sz = lgetxattr(p, x, *val, (size_t)sz);
    if (sz < 0) {
        sz = -errno;
        free(*val);
        *val = NULL;
    }
    return sz;
}

/* True when the user xattrs (lanefs's own left out) of the two entries
 * differ in names or values. Unreadable counts as different. */
static bool adiff_xattrs_differ(int ufd, int lfd, const char *name)
{
    char *un = NULL, *ln = NULL;
    size_t ulen, llen, ucount, lcount;
    bool differ = true;

    if (adiff_xattr_names(ufd, name, &un, &ulen, &ucount) < 0 ||
        adiff_xattr_names(lfd, name, &ln, &llen, &lcount) < 0)
        goto out;
    if (ucount != lcount)
        goto out;
    for (size_t i = 0; i < ulen; i += strlen(un + i) + 1) {
        char *uv = NULL, *lv = NULL;
        ssize_t us = adiff_xattr_value(ufd, name, un + i, &uv);
        ssize_t ls = adiff_xattr_value(lfd, name, un + i, &lv);
        bool same = us >= 0 && us == ls && memcmp(uv, lv, (size_t)us) == 0;
        free(uv);
        free(lv);
        if (!same)
            goto out;
    }
    differ = false;
out:
    free(un);
    free(ln);
    return differ;
}

struct adiff_walk {
    struct adiff_list *out;
    char path[PATH_MAX];    /* "" for the root, else "/a/b" */
};

static int adiff_dir(struct adiff_walk *w, int ufd, int lfd, bool hidden);

/* Appends "/name" to w->path for the length of one call. */
static int adiff_push(struct adiff_walk *w, const char *name, size_t *saved)
{
    *saved = strlen(w->path);
    int n = snprintf(w->path + *saved, sizeof(w->path) - *saved, "/%s", name);
    if (n < 0 || (size_t)n >= sizeof(w->path) - *saved) {
        w->path[*saved] = '\0';
        return -ENAMETOOLONG;
    }
    return 0;
}

/* One upper entry that is not a whiteout; lfd is the lower directory at
 * the same place (-1 when none is visible). */
static int adiff_entry(struct adiff_walk *w, int ufd, int lfd, bool hidden,
                       const char *name, const struct stat *ust)
{
    struct stat lst;
    bool have_lower = lfd >= 0 &&
                      fstatat(lfd, name, &lst, AT_SYMLINK_NOFOLLOW) == 0;
    size_t saved;
    int rc = adiff_push(w, name, &saved);
    if (rc < 0)
        return rc;

    if (!have_lower) {
        rc = adiff_add(w->out, 'A', w->path);
    } else if (!S_ISDIR(ust->st_mode) || !S_ISDIR(lst.st_mode)) {
        rc = adiff_add(w->out, 'C', w->path);
    } else {
        bool opaque = hidden || adiff_opaque(ufd, name);
        if (opaque || (ust->st_mode & 07777) != (lst.st_mode & 07777) ||
            ust->st_uid != lst.st_uid || ust->st_gid != lst.st_gid ||
            adiff_xattrs_differ(ufd, lfd, name))
            rc = adiff_add(w->out, 'C', w->path);
        if (rc == 0) {
            int cu = adiff_open_dir(ufd, name, false);
            int cl = adiff_open_dir(lfd, name, true);
            if (cu < 0)
                rc = cu;
            else
                rc = adiff_dir(w, cu, cl, opaque);
            if (cu >= 0)
                close(cu);
            if (cl >= 0)
                close(cl);
        }
        w->path[saved] = '\0';
        return rc;
    }
    /* Below a directory that has no directory under it in the lower, all
     * is new. */
    if (rc == 0 && S_ISDIR(ust->st_mode)) {
        int cu = adiff_open_dir(ufd, name, false);
        rc = cu < 0 ? cu : adiff_dir(w, cu, -1, false);
        if (cu >= 0)
            close(cu);
    }
    w->path[saved] = '\0';
    return rc;
}

static int adiff_dir(struct adiff_walk *w, int ufd, int lfd, bool hidden)
{
    struct adiff_names un, ln = { 0 };
    int rc = adiff_read_names(ufd, &un);
    if (rc < 0)
        return rc;
    /* Names the view holds from the upper (whiteouts are not held). */
    struct adiff_names held = { 0 };
    if (hidden && lfd >= 0) {
        held.v = calloc(un.n ? un.n : 1, sizeof(*held.v));
        if (!held.v) {
            rc = -ENOMEM;
            goto out;
        }
    }
    for (size_t i = 0; i < un.n && rc == 0; i++) {
        struct stat st;
        if (fstatat(ufd, un.v[i], &st, AT_SYMLINK_NOFOLLOW) < 0) {
            if (errno == ENOENT)
                continue;       /* gone while we walk */
            rc = -errno;
            break;
        }
        if (adiff_is_whiteout(&st)) {
            struct stat lst;
            size_t saved;
            /* Under an opaque directory, hidden lower names are listed
             * below, whiteout or not. */
            if (hidden || lfd < 0 ||
                fstatat(lfd, un.v[i], &lst, AT_SYMLINK_NOFOLLOW) < 0)
                continue;
            if ((rc = adiff_push(w, un.v[i], &saved)) < 0)
                break;
            rc = adiff_add(w->out, 'D', w->path);
            w->path[saved] = '\0';
            continue;
        }
        if (held.v)
            held.v[held.n++] = un.v[i];     /* borrowed, already sorted */
        rc = adiff_entry(w, ufd, lfd, hidden, un.v[i], &st);
    }
    if (rc == 0 && held.v) {
        rc = adiff_read_names(lfd, &ln);
        for (size_t i = 0; i < ln.n && rc == 0; i++) {
            size_t saved;
            if (adiff_has_name(&held, ln.v[i]))
                continue;
            if ((rc = adiff_push(w, ln.v[i], &saved)) < 0)
                break;
            rc = adiff_add(w->out, 'D', w->path);
            w->path[saved] = '\0';
        }
    }
out:
    free(held.v);
    adiff_names_free(&ln);
    adiff_names_free(&un);
    return rc;
}

int adiff_collect(int upper_fd, int lower_fd, struct adiff_list *out)
{
    struct adiff_walk *w = calloc(1, sizeof(*w));
    int ufd = -1, lfd = -1, rc;

    memset(out, 0, sizeof(*out));
    if (!w)
        return -ENOMEM;
    w->out = out;
    ufd = adiff_open_dir(upper_fd, ".", false);
    if (ufd < 0) {
        rc = ufd;
        goto out;
    }
    if (lower_fd >= 0) {
        lfd = adiff_open_dir(lower_fd, ".", true);
        if (lfd < 0) {
            rc = lfd;
            goto out;
        }
    }
    /* The root's own opaque mark lives on the upper root itself. */
    char v;
    bool hidden = fgetxattr(ufd, ADIFF_XATTR_OPAQUE, &v, 1) >= 0 ||
                  errno == ERANGE;
    rc = adiff_dir(w, ufd, lfd, hidden);
out:
    if (ufd >= 0)
        close(ufd);
    if (lfd >= 0)
        close(lfd);
    free(w);
    if (rc < 0)
        adiff_free(out);
    else if (out->n)
        qsort(out->v, out->n, sizeof(*out->v), adiff_change_cmp);
    return rc;
}
