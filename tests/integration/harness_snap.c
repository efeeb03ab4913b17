/* harness_snap.c - a complete fingerprint of a directory tree, used to prove
 * that the lower directory is never modified. */
#include "harness.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <openssl/evp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/xattr.h>
#include <unistd.h>

struct lines { char **v; size_t n, cap; };

static void push(struct lines *l, char *s)
{
    if (l->n == l->cap) {
        l->cap = l->cap ? l->cap * 2 : 256;
        l->v = realloc(l->v, l->cap * sizeof *l->v);
        cr_assert(l->v != NULL);
    }
    l->v[l->n++] = s;
}

static void hex(char *out, const unsigned char *in, size_t n)
{
    for (size_t i = 0; i < n; i++)
        sprintf(out + 2 * i, "%02x", in[i]);
}

/* SHA-256 of an open file's content. */
static void hash_fd(int fd, char out[65])
{
    EVP_MD_CTX *ctx = EVP_MD_CTX_new();
    cr_assert(ctx && EVP_DigestInit_ex(ctx, EVP_sha256(), NULL) == 1);
    static char buf[1 << 16];
    ssize_t n;
    while ((n = read(fd, buf, sizeof buf)) > 0)
        EVP_DigestUpdate(ctx, buf, (size_t)n);
    cr_assert(n == 0, "read for hashing: %s", strerror(errno));
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned len = 0;
    EVP_DigestFinal_ex(ctx, md, &len);
    EVP_MD_CTX_free(ctx);
    hex(out, md, len);
}

/* "name=hexvalue;..." for every xattr of path (sorted by name). */
static char *xattrs_of(const char *path)
{
    char names[8192];
    ssize_t n = llistxattr(path, names, sizeof names);
    if (n < 0)
        return h_str("!%s", h_errname(errno));
    const char *v[256];
    size_t nv = 0;
    for (ssize_t i = 0; i < n && nv < 256; i += (ssize_t)strlen(names + i) + 1)
        v[nv++] = names + i;
    for (size_t i = 1; i < nv; i++)
        for (size_t j = i; j > 0 && strcmp(v[j - 1], v[j]) > 0; j--) {
            const char *t = v[j];
            v[j] = v[j - 1];
            v[j - 1] = t;
        }
    char *acc = h_str("%s", "");
    for (size_t i = 0; i < nv; i++) {
        unsigned char val[4096];
        char hx[2 * sizeof val + 1] = "";
        ssize_t vl = lgetxattr(path, v[i], val, sizeof val);
        if (vl >= 0)
            hex(hx, val, (size_t)vl);
        else
            snprintf(hx, sizeof hx, "!%s", h_errname(errno));
        acc = h_str("%s%s=%s;", acc, v[i], hx);
    }
    return acc;
}

static const char *type_of(mode_t m)
{
    switch (m & S_IFMT) {
    case S_IFREG: return "reg";
    case S_IFDIR: return "dir";
    case S_IFLNK: return "lnk";
    case S_IFIFO: return "fifo";
    case S_IFSOCK: return "sock";
    case S_IFCHR: return "chr";
    case S_IFBLK: return "blk";
    default: return "?";
    }
}

/* Records entry name of directory dfd (abs: its full path, rel: its path
 * relative to the snapshot root) and, for a directory, all below it. */
static void walk(int dfd, const char *name, const char *abs, const char *rel,
                 struct lines *out)
{
    struct stat st;
    cr_assert(fstatat(dfd, name, &st, AT_SYMLINK_NOFOLLOW) == 0,
              "snapshot stat %s: %s", abs, strerror(errno));
    char content[70] = "-";
    if (S_ISREG(st.st_mode)) {
        /* O_NOATIME: hashing must not itself change the atime it records. */
        int fd = openat(dfd, name, O_RDONLY | O_NOFOLLOW | O_NOATIME | O_CLOEXEC);
        cr_assert(fd >= 0, "snapshot open %s: %s", abs, strerror(errno));
        hash_fd(fd, content);
        close(fd);
    }
    char *target = h_str("%s", "-");
    if (S_ISLNK(st.st_mode)) {
        char t[PATH_MAX];
        ssize_t n = readlinkat(dfd, name, t, sizeof t - 1);
        cr_assert(n >= 0, "snapshot readlink %s: %s", abs, strerror(errno));
        t[n] = '\0';
        target = h_str("%s", t);
    }
    /* A symlink's atime is left out: reading a link (readlink, or the
     * kernel following it) updates it under relatime and no flag like
     * O_NOATIME exists for it, so neither this walk nor any daemon can
     * keep it. Everything else about the link is compared. */
    char *atime = S_ISLNK(st.st_mode) ? h_str("%s", "-")
                : h_str("%lld.%09ld", (long long)st.st_atim.tv_sec, st.st_atim.tv_nsec);
    push(out, h_str("%s %s mode=%04o uid=%u gid=%u size=%lld nlink=%lu ino=%lu "
                    "atime=%s mtime=%lld.%09ld ctime=%lld.%09ld "
                    "sha=%s link=%s xattr=%s",
                    rel, type_of(st.st_mode), (unsigned)(st.st_mode & 07777),
                    (unsigned)st.st_uid, (unsigned)st.st_gid, (long long)st.st_size,
                    (unsigned long)st.st_nlink, (unsigned long)st.st_ino,
                    atime, (long long)st.st_mtim.tv_sec, st.st_mtim.tv_nsec,
                    (long long)st.st_ctim.tv_sec, st.st_ctim.tv_nsec,
                    content, target, xattrs_of(abs)));
    if (!S_ISDIR(st.st_mode))
        return;
    int fd = openat(dfd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_NOATIME | O_CLOEXEC);
    cr_assert(fd >= 0, "snapshot opendir %s: %s", abs, strerror(errno));
    DIR *d = fdopendir(fd);
    cr_assert(d != NULL);
    struct dirent *de;
    while ((de = readdir(d)) != NULL) {
        if (strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0)
            continue;
        walk(fd, de->d_name, h_str("%s/%s", abs, de->d_name),
             h_str("%s/%s", rel, de->d_name), out);
    }
    closedir(d);
}

static int cmp_line(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

char *h_snapshot(const char *dir)
{
    struct lines l = { 0 };
    /* The root is looked up by name in its parent and recorded as ".". */
    char *base = h_str("%s", dir);
    char *slash = strrchr(base, '/');
    cr_assert(slash != NULL, "snapshot needs an absolute path");
    *slash = '\0';
    int pfd = open(*base ? base : "/", O_RDONLY | O_DIRECTORY | O_NOATIME | O_CLOEXEC);
    cr_assert(pfd >= 0, "open %s: %s", base, strerror(errno));
    walk(pfd, slash + 1, dir, ".", &l);
    close(pfd);
    qsort(l.v, l.n, sizeof *l.v, cmp_line);
    size_t total = 1;
    for (size_t i = 0; i < l.n; i++)
        total += strlen(l.v[i]) + 1;
    char *buf = calloc(1, total), *p = buf;
    cr_assert(buf != NULL);
    for (size_t i = 0; i < l.n; i++)
        p += sprintf(p, "%s\n", l.v[i]);
    free(l.v);
    char *s = h_str("%s", buf);
    free(buf);
    return s;
}

void h_assert_same_snapshot(const char *before, const char *after, const char *what)
{
    if (strcmp(before, after) == 0)
        return;
    /* Find the first differing line to show it. */
    const char *a = before, *b = after;
    int line = 1;
    for (;;) {
        const char *ea = strchr(a, '\n'), *eb = strchr(b, '\n');
        size_t la = ea ? (size_t)(ea - a) : strlen(a);
        size_t lb = eb ? (size_t)(eb - b) : strlen(b);
        if (la != lb || memcmp(a, b, la) != 0 || !ea || !eb) {
            cr_assert_fail("%s changed; first difference at line %d:\n"
                           "  before: %.*s\n  after:  %.*s",
                           what, line, (int)la, a, (int)lb, b);
        }
        a = ea + 1;
        b = eb + 1;
        line++;
    }
}
