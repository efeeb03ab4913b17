/* parity_seq.c - the call sequence of the parity tests.
 *
 * Every call is written with the directory fd D or the path helper p(), so
 * its source text - which is what gets logged - is the same whichever
 * directory it runs in. Only portable observations are logged: results,
 * errno, data read back, and of stat the type, permission bits, and for
 * non-directories size and link count. Directory size and link count are
 * filesystem-specific (ext4, tmpfs and btrfs all differ) and inode numbers
 * and unset times differ between any two directories, so none is logged.
 */
#include "harness.h"
#include "parity.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/xattr.h>
#include <unistd.h>

static struct plog *L;
static int D = -1;
static const char *BASE;

static void logf_(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static void logf_(const char *fmt, ...)
{
    va_list ap;
    char *s = NULL;
    va_start(ap, fmt);
    int n = vasprintf(&s, fmt, ap);
    va_end(ap);
    cr_assert(n >= 0);
    if (L->n == L->cap) {
        L->cap = L->cap ? L->cap * 2 : 256;
        L->line = realloc(L->line, L->cap * sizeof *L->line);
        cr_assert(L->line != NULL);
    }
    size_t i = L->n++;
    /* Section headers ("== name") stay unnumbered so they can be found. */
    L->line[i] = strncmp(s, "== ", 3) == 0 ? h_str("%s", s) : h_str("%04zu %s", i + 1, s);
    free(s);
}

/* Logs a call's result: its value when >= 0, else its errno name. */
#define P(call) do {                                                      \
        errno = 0;                                                        \
        long rc_ = (long)(call);                                          \
        int e_ = errno;                                                   \
        if (rc_ < 0)                                                      \
            logf_("%s = -1 %s", #call, h_errname(e_));                    \
        else                                                              \
            logf_("%s = %ld", #call, rc_);                                \
    } while (0)
/* For calls returning a descriptor, whose number is not comparable. */
#define PFD(var, call) do {                                               \
        errno = 0;                                                        \
        (var) = (call);                                                   \
        int e_ = errno;                                                   \
        logf_("%s = %s", #call, (var) >= 0 ? "fd" : h_errname(e_));       \
    } while (0)

static char *p(const char *rel)
{
    return h_str("%s/%s", BASE, rel);
}

static long rn(const char *from, const char *to, unsigned flags)
{
    return syscall(SYS_renameat2, D, from, D, to, flags);
}

/* Data as printable text (\xNN for the rest), at most 200 bytes. */
static char *esc(const char *buf, ssize_t n)
{
    if (n < 0)
        return h_str("%s", "-");
    char out[1024];
    size_t o = 0;
    for (ssize_t i = 0; i < n && i < 200 && o < sizeof out - 8; i++) {
        unsigned char c = (unsigned char)buf[i];
        if (c >= 32 && c < 127 && c != '\\')
            out[o++] = (char)c;
        else
            o += (size_t)sprintf(out + o, "\\x%02x", c);
    }
    out[o] = '\0';
    return h_str("\"%s\"%s", out, n > 200 ? "..." : "");
}

static void pdata(const char *buf, ssize_t n)
{
    logf_("  data %s", esc(buf, n));
}

static char *statline(int rc, int e, const struct stat *st)
{
    if (rc != 0)
        return h_str("%s", h_errname(e));
    const char *t = S_ISREG(st->st_mode) ? "reg" : S_ISDIR(st->st_mode) ? "dir"
                  : S_ISLNK(st->st_mode) ? "lnk" : S_ISFIFO(st->st_mode) ? "fifo" : "other";
    if (S_ISDIR(st->st_mode))
        return h_str("%s %04o", t, (unsigned)(st->st_mode & 07777));
    return h_str("%s %04o size=%lld nlink=%lu", t, (unsigned)(st->st_mode & 07777),
                 (long long)st->st_size, (unsigned long)st->st_nlink);
}

static void pstat(const char *rel)
{
    struct stat st;
    int rc = fstatat(D, rel, &st, AT_SYMLINK_NOFOLLOW);
    logf_("  stat %s: %s", rel, statline(rc, errno, &st));
}

static void pfstat(int fd)
{
    struct stat st;
    int rc = fstat(fd, &st);
    logf_("  fstat: %s", statline(rc, errno, &st));
}

static void ptimes(const char *rel)
{
    struct stat st;
    if (fstatat(D, rel, &st, AT_SYMLINK_NOFOLLOW) != 0)
        logf_("  times %s: %s", rel, h_errname(errno));
    else
        logf_("  times %s: atime=%lld.%09ld mtime=%lld.%09ld", rel,
              (long long)st.st_atim.tv_sec, st.st_atim.tv_nsec,
              (long long)st.st_mtim.tv_sec, st.st_mtim.tv_nsec);
}

static void pcat(const char *rel)
{
    int fd = openat(D, rel, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        logf_("  cat %s: %s", rel, h_errname(errno));
        return;
    }
    char buf[4096];
    ssize_t n = read(fd, buf, sizeof buf);
    int e = errno;
    close(fd);
    logf_("  cat %s: %s", rel, n < 0 ? h_errname(e) : esc(buf, n));
}

/* FNV-1a of the whole content, for data too long to log. */
static void phash(const char *rel)
{
    int fd = openat(D, rel, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        logf_("  hash %s: %s", rel, h_errname(errno));
        return;
    }
    unsigned long long h = 1469598103934665603ULL, len = 0;
    char buf[8192];
    ssize_t n;
    while ((n = read(fd, buf, sizeof buf)) > 0)
        for (ssize_t i = 0; i < n; i++, len++)
            h = (h ^ (unsigned char)buf[i]) * 1099511628211ULL;
    int e = errno;
    close(fd);
    if (n < 0)
        logf_("  hash %s: %s", rel, h_errname(e));
    else
        logf_("  hash %s: len=%llu fnv=%016llx", rel, len, h);
}

static void preadlink(const char *rel)
{
    char t[256];
    ssize_t n = readlinkat(D, rel, t, sizeof t - 1);
    logf_("  readlink %s: %s", rel, n < 0 ? h_errname(errno) : esc(t, n));
}

static void pgetx(const char *rel, const char *name)
{
    char v[256];
    ssize_t n = getxattr(p(rel), name, v, sizeof v);
    logf_("  getxattr %s %s: %s", rel, name, n < 0 ? h_errname(errno) : esc(v, n));
}

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Sorted attribute names. */
static void plistx(const char *rel)
{
    char names[4096];
    ssize_t n = listxattr(p(rel), names, sizeof names);
    if (n < 0) {
        logf_("  listxattr %s: %s", rel, h_errname(errno));
        return;
    }
    char *v[64];
    size_t nv = 0;
    for (ssize_t i = 0; i < n && nv < 64; i += (ssize_t)strlen(names + i) + 1)
        v[nv++] = names + i;
    qsort(v, nv, sizeof *v, cmp_str);
    char *acc = h_str("%s", "");
    for (size_t i = 0; i < nv; i++)
        acc = h_str("%s %s", acc, v[i]);
    logf_("  listxattr %s:%s", rel, acc);
}

/* Sorted listing of rel, then stat of each entry, recursively. */
static void ptree(const char *rel)
{
    int fd = openat(D, rel, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    DIR *d = fd >= 0 ? fdopendir(fd) : NULL;
    if (!d) {
        logf_("  ls %s: %s", rel, h_errname(errno));
        if (fd >= 0)
            close(fd);
        return;
    }
    char *names[512];
    size_t n = 0;
    struct dirent *de;
    while ((de = readdir(d)) != NULL && n < 512)
        if (strcmp(de->d_name, ".") != 0 && strcmp(de->d_name, "..") != 0)
            names[n++] = h_str("%s", de->d_name);
    closedir(d);
    qsort(names, n, sizeof *names, cmp_str);
    char *acc = h_str("%s", "");
    for (size_t i = 0; i < n; i++)
        acc = h_str("%s %s", acc, names[i]);
    logf_("  ls %s:%s", rel, acc);
    for (size_t i = 0; i < n; i++) {
        char *child = strcmp(rel, ".") == 0 ? names[i] : h_str("%s/%s", rel, names[i]);
        pstat(child);
        struct stat st;
        if (fstatat(D, child, &st, AT_SYMLINK_NOFOLLOW) == 0 && S_ISDIR(st.st_mode))
            ptree(child);
    }
}

void parity_build_tree(const char *dir)
{
    char *d = h_str("%s", dir);
    h_put(h_str("%s/f_a", d), "alpha\n", 0644);
    h_put(h_str("%s/f_b", d), "bravo bravo\n", 0600);
    h_put(h_str("%s/f_c", d), "charlie\n", 0644);
    h_put(h_str("%s/f_x", d), "xray\n", 0644);
    cr_assert(setxattr(h_str("%s/f_x", d), "user.orig", "one", 3, 0) == 0,
              "setxattr on the starting tree: %s", strerror(errno));
    h_put(h_str("%s/f_open", d), "still readable\n", 0644);
    h_put(h_str("%s/f_keep", d), "keep\n", 0644);
    h_put(h_str("%s/f_stale", d), "old\n", 0644);
    h_put(h_str("%s/f_h1", d), "hard\n", 0644);
    cr_assert(link(h_str("%s/f_h1", d), h_str("%s/f_h2", d)) == 0,
              "link in the starting tree: %s", strerror(errno));
    h_mkdir_p(h_str("%s/d_full/sub", d), 0755);
    h_put(h_str("%s/d_full/one", d), "1\n", 0644);
    h_put(h_str("%s/d_full/two", d), "2\n", 0644);
    h_put(h_str("%s/d_full/sub/three", d), "3\n", 0644);
    h_mkdir_p(h_str("%s/d_empty", d), 0755);
    h_mkdir_p(h_str("%s/d_gone", d), 0755);
    h_put(h_str("%s/d_gone/k", d), "k\n", 0644);
    h_mkdir_p(h_str("%s/d_mv/deep", d), 0755);
    h_put(h_str("%s/d_mv/a", d), "a\n", 0644);
    h_put(h_str("%s/d_mv/deep/b", d), "b\n", 0644);
    h_symlink("f_a", h_str("%s/l_rel", d));
    h_symlink("nowhere", h_str("%s/l_dang", d));
}

static void seq_files(void)
{
    int fd;
    ssize_t n;
    char buf[64];

    PFD(fd, openat(D, "f_new", O_CREAT | O_EXCL | O_RDWR, 0640));
    P(write(fd, "hello world", 11));
    P(n = pread(fd, buf, 5, 6));
    pdata(buf, n);
    P(ftruncate(fd, 3));
    pfstat(fd);
    P(pwrite(fd, "XY", 2, 10));
    pfstat(fd);
    P(n = pread(fd, buf, sizeof buf, 0));
    pdata(buf, n);
    P(close(fd));
    PFD(fd, openat(D, "f_new", O_CREAT | O_EXCL | O_WRONLY, 0600));

    P(truncate(p("f_a"), 3));
    pcat("f_a");
    P(truncate(p("missing"), 0));
    P(truncate(p("d_full"), 0));
    PFD(fd, openat(D, "missing", O_RDONLY));
    PFD(fd, openat(D, "d_full", O_WRONLY));
    PFD(fd, openat(D, "f_a/x", O_RDONLY));
    PFD(fd, openat(D, "f_a", O_RDONLY | O_DIRECTORY));
    PFD(fd, openat(D, "nodir/x", O_WRONLY | O_CREAT, 0644));

    PFD(fd, openat(D, "f_c", O_WRONLY | O_APPEND));
    P(write(fd, "more\n", 5));
    P(close(fd));
    pcat("f_c");
    PFD(fd, openat(D, "f_b", O_WRONLY | O_TRUNC));
    pfstat(fd);
    P(close(fd));
    pcat("f_b");

    /* An open file stays readable after unlink, and writable across a rename. */
    PFD(fd, openat(D, "f_open", O_RDONLY));
    P(unlinkat(D, "f_open", 0));
    P(n = pread(fd, buf, sizeof buf, 0));
    pdata(buf, n);
    P(close(fd));
    pstat("f_open");
    PFD(fd, openat(D, "f_keep", O_RDWR));
    P(rn("f_keep", "f_kept", 0));
    P(pwrite(fd, "K", 1, 0));
    P(close(fd));
    pcat("f_kept");
    pstat("f_keep");
}

static void seq_renames(void)
{
    P(rn("f_new", "f_ren", 0));
    pstat("f_new");
    pcat("f_ren");
    P(rn("f_ren", "f_a", RENAME_NOREPLACE));
    pcat("f_a");
    pcat("f_ren");
    P(rn("f_ren", "f_ren2", RENAME_NOREPLACE));
    P(rn("f_ren2", "f_c", RENAME_EXCHANGE));
    pcat("f_ren2");
    pcat("f_c");
    P(rn("f_a", "d_empty", RENAME_EXCHANGE));
    pstat("f_a");
    pstat("d_empty");
    P(rn("f_a", "missing", RENAME_EXCHANGE));
    P(rn("f_c", "f_x", RENAME_NOREPLACE | RENAME_EXCHANGE));
    P(rn("f_b", "f_c", 0));
    pcat("f_c");
    pstat("f_b");
    P(rn("d_full", "d_mv", 0));
    P(rn("f_c", "d_gone", 0));
    P(rn("d_gone", "f_c", 0));
    P(rn("d_mv", "d_mv/deep/x", 0));
    P(rn("d_mv", "d_moved", 0));
    pstat("d_mv");
    ptree("d_moved");
    P(rn("d_moved/deep/b", "top_b", 0));
    pcat("top_b");
    ptree("d_moved");
    P(rn("missing", "x", 0));
    P(rn("f_ren2", "f_ren2", 0));
    pcat("f_ren2");
}

static void seq_links(void)
{
    int fd;
    P(linkat(D, "f_c", D, "f_hard", 0));
    pstat("f_c");
    pstat("f_hard");
    PFD(fd, openat(D, "f_hard", O_WRONLY | O_APPEND));
    P(write(fd, "via hard\n", 9));
    P(close(fd));
    pcat("f_c");
    P(linkat(D, "f_c", D, "f_a", 0));
    P(linkat(D, "d_full", D, "d_link", 0));
    P(linkat(D, "missing", D, "x", 0));
    P(unlinkat(D, "f_hard", 0));
    pstat("f_c");

    P(symlinkat("target/path", D, "l_new"));
    preadlink("l_new");
    pstat("l_new");
    preadlink("f_c");
    P(symlinkat("x", D, "f_c"));
    preadlink("l_rel");
    pstat("l_rel");
    PFD(fd, openat(D, "l_dang", O_RDONLY));
    /* O_CREAT through a dangling link creates its target. */
    PFD(fd, openat(D, "l_dang", O_WRONLY | O_CREAT, 0644));
    P(close(fd));
    pstat("nowhere");
}

static void seq_attrs(void)
{
    P(fchmodat(D, "f_c", 0600, 0));
    pstat("f_c");
    P(fchmodat(D, "missing", 0600, 0));
    P(fchmodat(D, "d_full", 0700, 0));
    pstat("d_full");

    struct timespec ts[2] = { { 1000000000, 5 }, { 1100000000, 7 } };
    struct timespec ts2[2] = { { 1300000000, 0 }, { 1400000000, 0 } };
    struct timespec ts3[2] = { { 0, UTIME_OMIT }, { 1200000000, 0 } };
    P(utimensat(D, "f_c", ts, 0));
    ptimes("f_c");
    P(utimensat(D, "l_new", ts2, AT_SYMLINK_NOFOLLOW));
    ptimes("l_new");
    P(utimensat(D, "f_c", ts3, 0));
    ptimes("f_c");
    P(utimensat(D, "missing", ts, 0));

    char buf[64];
    P(setxattr(p("f_c"), "user.k", "v1", 2, 0));
    pgetx("f_c", "user.k");
    P(getxattr(p("f_c"), "user.k", NULL, 0));
    P(getxattr(p("f_c"), "user.none", buf, sizeof buf));
    P(setxattr(p("f_c"), "user.k", "v2", 2, XATTR_CREATE));
    P(setxattr(p("f_c"), "user.none", "v", 1, XATTR_REPLACE));
    P(setxattr(p("f_c"), "user.k", "v333", 4, XATTR_REPLACE));
    pgetx("f_c", "user.k");
    P(getxattr(p("f_c"), "user.k", buf, 1));
    P(setxattr(p("f_c"), "user.e", "", 0, 0));
    pgetx("f_c", "user.e");
    plistx("f_c");
    P(removexattr(p("f_c"), "user.k"));
    P(removexattr(p("f_c"), "user.k"));
    plistx("f_c");
    plistx("f_x");
    pgetx("f_x", "user.orig");
    P(removexattr(p("f_x"), "user.orig"));
    plistx("f_x");
    P(setxattr(p("d_full"), "user.dir", "dv", 2, 0));
    pgetx("d_full", "user.dir");
    plistx("d_full");
    P(lsetxattr(p("l_new"), "user.k", "v", 1, 0));
    P(getxattr(p("missing"), "user.k", buf, sizeof buf));
}

static void seq_dirs(void)
{
    int fd;
    P(unlinkat(D, "f_x", 0));
    P(unlinkat(D, "f_x", 0));
    P(unlinkat(D, "d_full", 0));
    P(unlinkat(D, "d_full", AT_REMOVEDIR));
    P(unlinkat(D, "f_c", AT_REMOVEDIR));
    P(unlinkat(D, "d_full/sub/three", 0));
    P(unlinkat(D, "d_full/sub", AT_REMOVEDIR));
    ptree("d_full");
    P(unlinkat(D, "missing", AT_REMOVEDIR));

    P(mkdirat(D, "d_full", 0755));
    P(mkdirat(D, "f_c", 0755));
    P(mkdirat(D, "nodir/x", 0755));
    P(mkdirat(D, "d_new", 0750));
    pstat("d_new");
    P(mkdirat(D, "d_new2", 0750));
    /* A directory renamed over an empty one replaces it. */
    P(rn("d_moved", "d_new2", 0));
    pstat("d_moved");
    ptree("d_new2");
    P(rn("d_new2", "d_moved", 0));

    /* A name deleted and created again has no trace of the old file. */
    PFD(fd, openat(D, "f_x", O_CREAT | O_EXCL | O_RDWR, 0644));
    pfstat(fd);
    P(close(fd));
    plistx("f_x");
    pcat("f_x");
    /* A directory removed and created again is empty. */
    P(unlinkat(D, "d_gone/k", 0));
    P(unlinkat(D, "d_gone", AT_REMOVEDIR));
    pstat("d_gone");
    P(mkdirat(D, "d_gone", 0755));
    ptree("d_gone");
    PFD(fd, openat(D, "d_gone/new", O_CREAT | O_WRONLY, 0644));
    P(close(fd));
    ptree("d_gone");

    P(mknodat(D, "p_fifo", S_IFIFO | 0644, 0));
    pstat("p_fifo");
    P(mknodat(D, "p_reg", S_IFREG | 0600, 0));
    pstat("p_reg");
}

static void seq_big(void)
{
    int fd;
    ssize_t n;
    char chunk[7000], buf[16];
    for (size_t i = 0; i < sizeof chunk; i++)
        chunk[i] = (char)(i * 13 + 1);
    PFD(fd, openat(D, "f_big", O_CREAT | O_WRONLY, 0644));
    long total = 0;
    for (int i = 0; i < 44; i++)
        total += write(fd, chunk, sizeof chunk);
    logf_("44 x write(fd, chunk, 7000) = %ld", total);
    P(close(fd));
    phash("f_big");
    P(truncate(p("f_big"), 100000));
    phash("f_big");
    PFD(fd, openat(D, "f_big", O_RDONLY));
    P(lseek(fd, 0, SEEK_END));
    P(lseek(fd, 5, SEEK_SET));
    P(n = read(fd, buf, 8));
    pdata(buf, n);
    P(close(fd));
}

/* A descriptor opened for reading before another one writes the file
 * reads the new data: one file, whatever layer it lives in. */
static void seq_open_fds(void)
{
    int rfd, fd;
    ssize_t n;
    char buf[64];
    PFD(rfd, openat(D, "f_stale", O_RDONLY));
    PFD(fd, openat(D, "f_stale", O_WRONLY | O_TRUNC));
    P(write(fd, "new!\n", 5));
    P(close(fd));
    P(n = pread(rfd, buf, sizeof buf, 0));
    pdata(buf, n);
    pfstat(rfd);
    P(close(rfd));
}

/* Two names of one file from the starting tree stay one file when it is
 * written through either name. */
static void seq_hard_links(void)
{
    int fd;
    pstat("f_h1");
    pstat("f_h2");
    PFD(fd, openat(D, "f_h1", O_WRONLY | O_APPEND));
    P(write(fd, "+1\n", 3));
    P(close(fd));
    pcat("f_h2");
    pstat("f_h2");
    P(fchmodat(D, "f_h2", 0600, 0));
    pstat("f_h1");
    P(unlinkat(D, "f_h1", 0));
    pstat("f_h2");
}

void parity_run(const char *base, struct plog *log)
{
    L = log;
    BASE = base;
    D = open(base, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    cr_assert(D >= 0, "open %s: %s", base, strerror(errno));
    logf_("== start");
    ptree(".");
    logf_("== files");
    seq_files();
    logf_("== renames");
    seq_renames();
    logf_("== links");
    seq_links();
    logf_("== attrs");
    seq_attrs();
    logf_("== dirs");
    seq_dirs();
    logf_("== big");
    seq_big();
    logf_("== open fds");
    seq_open_fds();
    logf_("== hard links");
    seq_hard_links();
    logf_("== end");
    ptree(".");
    close(D);
    D = -1;
}
