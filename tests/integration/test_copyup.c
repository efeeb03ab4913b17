/* test_copyup.c - what copy-up keeps (mode, owner, times, xattrs, sparseness,
 * inode number, hard links), merged directory reading under change, and the
 * boundaries on device nodes and setuid bits. */
#include "harness.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/xattr.h>
#include <unistd.h>

#define TEST_CU(name) Test(copyup, name, .init = h_setup, .fini = h_teardown, \
                           .timeout = H_TIMEOUT)

static const char *M;

static char *m(const char *rel) { return h_str("%s/%s", M, rel); }
static char *lo(const char *rel) { return h_str("%s/%s", H.lower, rel); }
static char *up(const char *rel) { return h_str("%s/%s", h_agent_path("a", "upper"), rel); }

static struct stat must_lstat(const char *path)
{
    struct stat st;
    int rc = h_lstat(path, &st);
    cr_assert_eq(rc, 0, "lstat %s: %s", path, h_errname(-rc));
    return st;
}

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Sorted xattr names joined by ' ' ("" when none, "!E..." on error). */
static char *xnames(const char *path)
{
    char buf[4096];
    ssize_t n = llistxattr(path, buf, sizeof buf);
    if (n < 0)
        return h_str("!%s", h_errname(errno));
    char *v[64];
    size_t nv = 0;
    for (ssize_t i = 0; i < n && nv < 64; i += (ssize_t)strlen(buf + i) + 1)
        v[nv++] = buf + i;
    qsort(v, nv, sizeof *v, cmp_str);
    char *acc = h_str("%s", "");
    for (size_t i = 0; i < nv; i++)
        acc = h_str("%s%s%s", acc, i ? " " : "", v[i]);
    return acc;
}

/* Only the user.* names (the upper may carry lanefs's own trusted.* ones). */
static char *user_xnames(const char *path)
{
    char *all = xnames(path), *acc = h_str("%s", "");
    for (char *save = NULL, *t = strtok_r(all, " ", &save); t; t = strtok_r(NULL, " ", &save))
        if (strncmp(t, "user.", 5) == 0 && strncmp(t, "user.lanefs.", 12) != 0)
            acc = h_str("%s%s%s", acc, *acc ? " " : "", t);
    return acc;
}

static char *xget(const char *path, const char *name)
{
    char v[256];
    ssize_t n = lgetxattr(path, name, v, sizeof v - 1);
    if (n < 0)
        return h_str("!%s", h_errname(errno));
    v[n] = '\0';
    return h_str("%s", v);
}

/* A lower entry with distinctive metadata: 0640, 1234:2345, old times,
 * two user xattrs. */
static void distinctive(const char *path)
{
    cr_assert_eq(chmod(path, S_ISDIR(must_lstat(path).st_mode) ? 0750 : 0640), 0);
    cr_assert_eq(lchown(path, 1234, 2345), 0);
    cr_assert_eq(lsetxattr(path, "user.a", "1", 1, 0), 0, "%s", strerror(errno));
    cr_assert_eq(lsetxattr(path, "user.b", "2", 1, 0), 0);
    h_set_times(path, 1000000000, 1100000000);
}

static void assert_kept(const char *path, mode_t mode, bool same_mtime, const char *what)
{
    struct stat st = must_lstat(path);
    cr_assert_eq(st.st_mode & 07777, mode, "%s: mode 0%o, expected 0%o", what,
                 st.st_mode & 07777, mode);
    cr_assert_eq(st.st_uid, 1234, "%s: uid %u", what, st.st_uid);
    cr_assert_eq(st.st_gid, 2345, "%s: gid %u", what, st.st_gid);
    if (same_mtime)
        cr_assert_eq(st.st_mtim.tv_sec, 1100000000, "%s: mtime %lld, expected 1100000000",
                     what, (long long)st.st_mtim.tv_sec);
    cr_assert_str_eq(xget(path, "user.a"), "1", "%s: user.a", what);
    cr_assert_str_eq(xget(path, "user.b"), "2", "%s: user.b", what);
}

TEST_CU(preserves_mode_owner_mtime_xattrs_and_inode)
{
    h_put(lo("f"), "content f\n", 0644);
    h_put(lo("g"), "content g\n", 0644);
    h_mkdir_p(lo("dd"), 0755);
    distinctive(lo("f"));
    distinctive(lo("g"));
    distinctive(lo("dd"));
    h_init(NULL);
    M = h_mount("a");
    ino_t ino_f = must_lstat(m("f")).st_ino;
    ino_t ino_g = must_lstat(m("g")).st_ino;
    ino_t ino_dd = must_lstat(m("dd")).st_ino;

    /* Metadata-only copy-up: nothing but the new xattr may change. */
    cr_assert_eq(setxattr(m("f"), "user.c", "3", 1, 0), 0, "setxattr: %s", strerror(errno));
    assert_kept(m("f"), 0640, true, "f through the mount");
    cr_assert_str_eq(xnames(m("f")), "user.a user.b user.c",
                     "xattrs listed to the agent (user.lanefs.* must never show)");
    cr_assert_str_eq(h_get(m("f")), "content f\n");
    cr_assert_eq(must_lstat(m("f")).st_ino, ino_f, "st_ino of f changed across copy-up");
    assert_kept(up("f"), 0640, true, "f in the upper");
    cr_assert_str_eq(user_xnames(up("f")), "user.a user.b user.c");

    /* Data copy-up: content changes, the rest is kept. */
    int fd = open(m("g"), O_WRONLY | O_CLOEXEC);
    cr_assert(fd >= 0, "open g for write: %s", strerror(errno));
    cr_assert_eq(pwrite(fd, "C", 1, 0), 1);
    cr_assert_eq(close(fd), 0);
    cr_assert_str_eq(h_get(m("g")), "Content g\n");
    assert_kept(m("g"), 0640, false, "g through the mount");
    cr_assert_str_eq(xnames(m("g")), "user.a user.b");
    cr_assert_eq(must_lstat(m("g")).st_ino, ino_g, "st_ino of g changed across copy-up");

    /* Directory copy-up when a child is created in it. */
    h_put(m("dd/child"), "c", 0644);
    assert_kept(m("dd"), 0750, false, "dd through the mount");
    cr_assert_str_eq(xnames(m("dd")), "user.a user.b");
    cr_assert_eq(must_lstat(m("dd")).st_ino, ino_dd, "st_ino of dd changed across copy-up");
    assert_kept(up("dd"), 0750, false, "dd in the upper");
}

TEST_CU(sparse_file_stays_sparse)
{
    const off_t size = (off_t)1 << 30;
    char block[4096];
    int fd = open(lo("sparse"), O_WRONLY | O_CREAT | O_CLOEXEC, 0644);
    cr_assert(fd >= 0);
    cr_assert_eq(ftruncate(fd, size), 0);
    memset(block, 'A', sizeof block);
    cr_assert_eq(pwrite(fd, block, sizeof block, 0), (ssize_t)sizeof block);
    memset(block, 'B', sizeof block);
    cr_assert_eq(pwrite(fd, block, sizeof block, size / 2), (ssize_t)sizeof block);
    memset(block, 'C', sizeof block);
    cr_assert_eq(pwrite(fd, block, sizeof block, size - (off_t)sizeof block),
                 (ssize_t)sizeof block);
    cr_assert_eq(close(fd), 0);
    struct stat st = must_lstat(lo("sparse"));
    cr_assert_lt(st.st_blocks * 512, (blkcnt_t)1 << 20, "the lower fs did not keep the file sparse");

    h_init(NULL);
    M = h_mount("a");
    fd = open(m("sparse"), O_WRONLY | O_CLOEXEC);
    cr_assert(fd >= 0, "open for write: %s", strerror(errno));
    cr_assert_eq(pwrite(fd, "x", 1, 1), 1, "pwrite: %s", strerror(errno));
    cr_assert_eq(close(fd), 0);

    st = must_lstat(up("sparse"));
    cr_assert_eq(st.st_size, size);
    cr_assert_lt(st.st_blocks * 512, (blkcnt_t)1 << 20,
                 "copy-up filled the holes: upper uses %lld bytes for a 1 GiB file with 12 KiB of data",
                 (long long)st.st_blocks * 512);
    st = must_lstat(m("sparse"));
    cr_assert_eq(st.st_size, size);
    cr_assert_lt(st.st_blocks * 512, (blkcnt_t)1 << 20,
                 "the mount reports %lld bytes used for the sparse file",
                 (long long)st.st_blocks * 512);

    fd = open(m("sparse"), O_RDONLY | O_CLOEXEC);
    cr_assert(fd >= 0);
    char b[4];
    const struct { off_t off; const char *want; } probes[] = {
        { 0, "AxAA" }, { size / 4, "\0\0\0\0" }, { size / 2, "BBBB" }, { size - 4, "CCCC" },
    };
    for (size_t i = 0; i < sizeof probes / sizeof *probes; i++) {
        cr_assert_eq(pread(fd, b, 4, probes[i].off), 4, "pread at %lld", (long long)probes[i].off);
        cr_assert(memcmp(b, probes[i].want, 4) == 0, "wrong data at offset %lld",
                  (long long)probes[i].off);
    }
    close(fd);
}

TEST_CU(inode_number_stable_across_copy_up)
{
    h_put(lo("w"), "w", 0644);
    h_put(lo("c"), "c", 0644);
    h_put(lo("r"), "r", 0644);
    h_mkdir_p(lo("d/sub"), 0755);
    h_symlink("w", lo("s"));
    h_init(NULL);
    M = h_mount("a");
    const char *names[] = { "w", "c", "r", "d", "d/sub", "s" };
    ino_t ino[6];
    for (int i = 0; i < 6; i++)
        ino[i] = must_lstat(m(names[i])).st_ino;
    /* An fd opened before the copy-up must report the same inode after it. */
    int rfd = open(m("w"), O_RDONLY | O_CLOEXEC);
    cr_assert(rfd >= 0);

    h_put(m("w"), "written", 0644);
    cr_assert_eq(chmod(m("c"), 0600), 0);
    cr_assert_eq(rename(m("r"), m("r2")), 0, "rename: %s", strerror(errno));
    h_put(m("d/sub/new"), "n", 0644);
    cr_assert_eq(lchown(m("s"), 1, 1), 0, "lchown: %s", strerror(errno));

    const char *after[] = { "w", "c", "r2", "d", "d/sub", "s" };
    for (int i = 0; i < 6; i++)
        cr_assert_eq(must_lstat(m(after[i])).st_ino, ino[i],
                     "st_ino of %s changed across copy-up: %lu -> %lu", names[i],
                     (unsigned long)ino[i], (unsigned long)must_lstat(m(after[i])).st_ino);
    struct stat st;
    cr_assert_eq(fstat(rfd, &st), 0);
    cr_assert_eq(st.st_ino, ino[0], "fd opened before the copy-up reports another inode");
    close(rfd);
}

TEST_CU(hard_links_share_inode_and_count)
{
    h_put(lo("lf"), "lower\n", 0644);
    h_init(NULL);
    M = h_mount("a");

    /* A file created through the mount. */
    h_put(m("h1"), "one\n", 0644);
    cr_assert_eq(link(m("h1"), m("h2")), 0, "link: %s", strerror(errno));
    struct stat s1 = must_lstat(m("h1")), s2 = must_lstat(m("h2"));
    cr_assert_eq(s1.st_nlink, 2, "h1 nlink %lu", (unsigned long)s1.st_nlink);
    cr_assert_eq(s2.st_nlink, 2, "h2 nlink %lu", (unsigned long)s2.st_nlink);
    cr_assert_eq(s1.st_ino, s2.st_ino);
    h_put(m("h2"), "two\n", 0644);
    cr_assert_str_eq(h_get(m("h1")), "two\n");

    /* A lower file: the link needs a copy-up first. */
    ino_t lino = must_lstat(m("lf")).st_ino;
    cr_assert_eq(link(m("lf"), m("lf2")), 0, "link of a lower file: %s", strerror(errno));
    s1 = must_lstat(m("lf"));
    s2 = must_lstat(m("lf2"));
    cr_assert_eq(s1.st_nlink, 2, "lf nlink %lu", (unsigned long)s1.st_nlink);
    cr_assert_eq(s2.st_nlink, 2, "lf2 nlink %lu", (unsigned long)s2.st_nlink);
    cr_assert_eq(s1.st_ino, s2.st_ino);
    cr_assert_eq(s1.st_ino, lino, "linking changed the lower file's st_ino");
    cr_assert_str_eq(h_get(m("lf2")), "lower\n");
    int fd = open(m("lf2"), O_WRONLY | O_APPEND | O_CLOEXEC);
    cr_assert(fd >= 0);
    cr_assert_eq(write(fd, "more\n", 5), 5);
    close(fd);
    cr_assert_str_eq(h_get(m("lf")), "lower\nmore\n");

    cr_assert_eq(unlink(m("h2")), 0);
    cr_assert_eq(must_lstat(m("h1")).st_nlink, 1);
    cr_assert_eq(unlink(m("lf")), 0);
    cr_assert_eq(must_lstat(m("lf2")).st_nlink, 1);
    cr_assert_str_eq(h_get(m("lf2")), "lower\nmore\n");
}

/* ---- merged readdir ------------------------------------------------------ */

#define N_LOWER 100
#define N_UPPER 100
#define N_WHITE 20
/* Long names so one directory needs several FUSE readdir replies. */
#define PAD "-a-fairly-long-name-so-the-listing-spans-several-buffers"

/* Directory "big": lower files l000..l099 of which l000..l019 are deleted
 * through the mount (whiteouts), plus upper files u000..u099. */
static void big_dir(void)
{
    h_mkdir_p(lo("big"), 0755);
    for (int i = 0; i < N_LOWER; i++)
        h_put(lo(h_str("big/l%03d" PAD, i)), "l", 0644);
    h_init(NULL);
    M = h_mount("a");
    for (int i = 0; i < N_UPPER; i++)
        h_put(m(h_str("big/u%03d" PAD, i)), "u", 0644);
    for (int i = 0; i < N_WHITE; i++)
        cr_assert_eq(unlink(m(h_str("big/l%03d" PAD, i))), 0);
}

/* 0: not an entry of big, 1: a live entry, 2: a whited-out lower name. */
static int kind_of(const char *name)
{
    int i;
    char c;
    if (sscanf(name, "%c%3d", &c, &i) != 2 || strcmp(name + 4, PAD) != 0 || i < 0)
        return 0;
    if (c == 'u' && i < N_UPPER)
        return 1;
    if (c == 'l' && i < N_LOWER)
        return i < N_WHITE ? 2 : 1;
    return 0;
}

static int index_of(const char *name)
{
    return (name[0] == 'u' ? N_LOWER : 0) + atoi(name + 1);
}

TEST_CU(readdir_survives_concurrent_unlink)
{
    big_dir();
    const int live = N_LOWER - N_WHITE + N_UPPER;
    DIR *d = opendir(m("big"));
    cr_assert_not_null(d, "opendir: %s", strerror(errno));
    bool seen[N_LOWER + N_UPPER] = { false };
    int got = 0, dots = 0;
    struct dirent *de;
    errno = 0;
    while ((de = readdir(d)) != NULL) {
        if (strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0) {
            dots++;
            continue;
        }
        int k = kind_of(de->d_name);
        cr_assert_neq(k, 0, "readdir returned a stranger: \"%s\"", de->d_name);
        cr_assert_neq(k, 2, "readdir returned whited-out \"%s\"", de->d_name);
        int idx = index_of(de->d_name);
        cr_assert(!seen[idx], "readdir returned \"%s\" twice", de->d_name);
        seen[idx] = true;
        /* After the first 30 entries, delete everything under the reader. */
        if (++got == 30) {
            for (int i = N_WHITE; i < N_LOWER; i++)
                cr_assert_eq(unlink(m(h_str("big/l%03d" PAD, i))), 0);
            for (int i = 0; i < N_UPPER; i++)
                cr_assert_eq(unlink(m(h_str("big/u%03d" PAD, i))), 0);
        }
        errno = 0;
    }
    cr_assert_eq(errno, 0, "readdir ended with %s", h_errname(errno));
    cr_assert_geq(got, 30, "only %d of %d entries before the unlinks", got, live);
    cr_assert_leq(got, live);
    cr_assert_leq(dots, 2);
    rewinddir(d);
    int left = 0;
    while ((de = readdir(d)) != NULL)
        if (strcmp(de->d_name, ".") != 0 && strcmp(de->d_name, "..") != 0)
            left++;
    closedir(d);
    cr_assert_eq(left, 0, "after deleting everything, rewinddir+readdir still lists %d", left);
    cr_assert_str_eq(h_ls(m("big")), "");
    cr_assert_eq(rmdir(m("big")), 0, "rmdir of the emptied merged dir: %s", strerror(errno));
}

TEST_CU(telldir_seekdir_return_to_the_same_entry)
{
    big_dir();
    const int live = N_LOWER - N_WHITE + N_UPPER;
    DIR *d = opendir(m("big"));
    cr_assert_not_null(d);
    enum { MAXE = N_LOWER + N_UPPER + 2 };
    long pos[MAXE];
    char *name[MAXE];
    int n = 0;
    struct dirent *de;
    for (;;) {
        long p = telldir(d);
        errno = 0;
        if ((de = readdir(d)) == NULL)
            break;
        cr_assert_lt(n, MAXE, "readdir returned more than %d entries", MAXE);
        pos[n] = p;
        name[n++] = h_str("%s", de->d_name);
    }
    cr_assert_eq(errno, 0, "readdir: %s", h_errname(errno));
    long end = telldir(d);

    bool seen[N_LOWER + N_UPPER] = { false };
    int entries = 0;
    for (int i = 0; i < n; i++) {
        if (strcmp(name[i], ".") == 0 || strcmp(name[i], "..") == 0)
            continue;
        int k = kind_of(name[i]);
        cr_assert_eq(k, 1, "unexpected entry \"%s\" (%s)", name[i],
                     k == 2 ? "whited out" : "stranger");
        cr_assert(!seen[index_of(name[i])], "\"%s\" listed twice", name[i]);
        seen[index_of(name[i])] = true;
        entries++;
    }
    cr_assert_eq(entries, live, "listed %d entries, expected %d", entries, live);

    const int picks[] = { 0, 1, 2, 57, n / 2, n - 1, 3 };
    for (size_t j = 0; j < sizeof picks / sizeof *picks; j++) {
        int k = picks[j];
        seekdir(d, pos[k]);
        de = readdir(d);
        cr_assert_not_null(de, "readdir after seekdir to entry %d: %s", k, h_errname(errno));
        cr_assert_str_eq(de->d_name, name[k], "seekdir(telldir before entry %d)", k);
        /* The rest of the listing follows from there. */
        int rest = 1;
        while (readdir(d) != NULL)
            rest++;
        cr_assert_eq(rest, n - k, "after seekdir to entry %d read %d entries, expected %d",
                     k, rest, n - k);
    }
    seekdir(d, end);
    errno = 0;
    de = readdir(d);
    cr_assert_null(de, "seekdir to the end then readdir returned \"%s\"", de ? de->d_name : "");
    closedir(d);
}

/* ---- boundaries ------------------------------------------------------------ */

TEST_CU(device_nodes_refused_fifos_and_files_allowed)
{
    h_init(NULL);
    M = h_mount("a");
    errno = 0;
    cr_assert_eq(mknod(m("null"), S_IFCHR | 0666, makedev(1, 3)), -1, "char device created");
    cr_assert_eq(errno, EPERM, "mknod char device: %s, expected EPERM", h_errname(errno));
    errno = 0;
    cr_assert_eq(mknod(m("loop"), S_IFBLK | 0600, makedev(7, 0)), -1, "block device created");
    cr_assert_eq(errno, EPERM, "mknod block device: %s, expected EPERM", h_errname(errno));
    struct stat st;
    cr_assert_eq(h_lstat(m("null"), &st), -ENOENT);
    cr_assert_eq(h_lstat(m("loop"), &st), -ENOENT);
    cr_assert(!h_exists(up("null")) && !h_exists(up("loop")), "a device node reached the upper");

    cr_assert_eq(mknod(m("fifo"), S_IFIFO | 0644, 0), 0, "mknod fifo: %s", strerror(errno));
    cr_assert(S_ISFIFO(must_lstat(m("fifo")).st_mode));
    cr_assert_eq(mknod(m("reg"), S_IFREG | 0600, 0), 0, "mknod regular: %s", strerror(errno));
    st = must_lstat(m("reg"));
    cr_assert(S_ISREG(st.st_mode));
    cr_assert_eq(st.st_mode & 07777, 0600);
}

TEST_CU(setuid_and_setgid_bits_are_stripped)
{
    h_put(lo("tool"), "#!/bin/sh\n", 0755);
    h_init(NULL);
    M = h_mount("a");
    struct { mode_t set, want; } cases[] = {
        { 04755, 0755 }, { 02755, 0755 }, { 06755, 0755 }, { 06700, 0700 },
    };
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        cr_assert_eq(chmod(m("tool"), cases[i].set), 0, "chmod: %s", strerror(errno));
        mode_t got = must_lstat(m("tool")).st_mode & 07777;
        cr_assert_eq(got, cases[i].want, "chmod 0%o on a lower file gave 0%o, expected 0%o",
                     cases[i].set, got, cases[i].want);
    }
    cr_assert_eq(must_lstat(up("tool")).st_mode & 07777, 0700, "mode in the upper");

    /* On create (umask 022 applies first). */
    int fd = open(m("made"), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 06755);
    cr_assert(fd >= 0, "create: %s", strerror(errno));
    mode_t got = must_lstat(m("made")).st_mode & 07777;
    cr_assert_eq(got, 0755, "create with 06755 gave 0%o", got);
    cr_assert_eq(fchmod(fd, 04711), 0, "fchmod: %s", strerror(errno));
    got = must_lstat(m("made")).st_mode & 07777;
    cr_assert_eq(got, 0711, "fchmod 04711 gave 0%o", got);
    close(fd);
    cr_assert_eq(mknod(m("made2"), S_IFREG | 04755, 0), 0, "mknod: %s", strerror(errno));
    got = must_lstat(m("made2")).st_mode & 07777;
    cr_assert_eq(got, 0755, "mknod with 04755 gave 0%o", got);
    cr_assert_eq(must_lstat(up("made")).st_mode & 07777, 0711, "mode in the upper");
}
