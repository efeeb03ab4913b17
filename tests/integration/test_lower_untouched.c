/* test_lower_untouched.c - whatever agents do through their mounts, the lower
 * directory keeps every byte, mode, owner, time (atime included), link and
 * xattr. ctime is part of the fingerprint: nothing can restore it, so any
 * write to the lower, even one undone afterwards, shows. */
#include "harness.h"

#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/xattr.h>
#include <unistd.h>

/* Failures of workload steps are collected, not asserted at once: the
 * fingerprint comparison is the point of the test and must run first. */
static char *werr;

#define W(call) do {                                                       \
        if ((long)(call) < 0)                                              \
            werr = h_str("%s\n  %s: %s", werr, #call, h_errname(errno));   \
    } while (0)
#define W_FAILS(call, e) do {                                              \
        errno = 0;                                                         \
        long rc_ = (long)(call);                                           \
        if (rc_ != -1 || errno != (e))                                     \
            werr = h_str("%s\n  %s: expected -1 %s, got %ld %s", werr,     \
                         #call, h_errname(e), rc_, h_errname(errno));      \
    } while (0)
#define W_CHECK(cond, ...) do {                                            \
        if (!(cond))                                                       \
            werr = h_str("%s\n  %s", werr, h_str(__VA_ARGS__));            \
    } while (0)

static const char *M;   /* agent a's mount point */

static char *m(const char *rel) { return h_str("%s/%s", M, rel); }
static char *lo(const char *rel) { return h_str("%s/%s", H.lower, rel); }

static void build_lower(void)
{
    static char big[1 << 20];
    for (size_t i = 0; i < sizeof big; i++)
        big[i] = (char)(i * 7 + (i >> 9));
    h_put(lo("small.txt"), "small\n", 0644);
    h_put_bytes(lo("big.bin"), big, sizeof big, 0644);
    h_put(lo("ro.txt"), "read only\n", 0444);
    h_put(lo("exec.sh"), "#!/bin/sh\n", 0755);
    h_put(lo("owned.txt"), "owned\n", 0640);
    cr_assert(lchown(lo("owned.txt"), 1000, 1000) == 0);
    h_put(lo("xattr.txt"), "x\n", 0644);
    cr_assert(lsetxattr(lo("xattr.txt"), "user.a", "1", 1, 0) == 0, "%s", strerror(errno));
    cr_assert(lsetxattr(lo("xattr.txt"), "user.b", "two", 3, 0) == 0);
    h_put(lo("app.log"), "line1\n", 0644);
    h_put(lo("trunc.txt"), "0123456789", 0644);
    h_put(lo("grow.txt"), "g", 0644);
    h_put(lo("times.txt"), "t", 0644);
    h_put(lo("chown.txt"), "c", 0644);
    h_put(lo("otrunc.txt"), "to be truncated by open", 0644);
    h_put(lo("hard1"), "hard\n", 0644);
    cr_assert(link(lo("hard1"), lo("hard2")) == 0);
    h_symlink("small.txt", lo("lnk"));
    h_symlink("dir", lo("dlnk"));
    cr_assert(mkfifo(lo("fifo"), 0644) == 0);
    h_mkdir_p(lo("tree/sub/deeper"), 0755);
    h_put(lo("tree/a.txt"), "a\n", 0644);
    h_put(lo("tree/sub/b.txt"), "b\n", 0644);
    h_put(lo("tree/sub/deeper/c.txt"), "c\n", 0644);
    h_mkdir_p(lo("emptydir"), 0755);
    h_mkdir_p(lo("full"), 0755);
    h_put(lo("full/x"), "x\n", 0644);
    h_put(lo("gone.txt"), "gone\n", 0644);
    h_mkdir_p(lo("olddir"), 0755);
    h_put(lo("olddir/k"), "k\n", 0644);
    h_mkdir_p(lo("dir"), 0750);
    cr_assert(lsetxattr(lo("dir"), "user.d", "dv", 2, 0) == 0);
    h_put(lo("dir/f"), "f\n", 0644);
    h_put(lo("rename_me.txt"), "r\n", 0644);
    h_put(lo("del.txt"), "d\n", 0644);
    h_put(lo("swap1"), "one\n", 0644);
    h_put(lo("swap2"), "two\n", 0644);
}

/* atime older than mtime: under relatime any read that does not use
 * O_NOATIME updates the atime, so the fingerprint catches it. */
static int old_times(const char *path, const struct stat *st, int type, struct FTW *f)
{
    (void)st;
    (void)type;
    (void)f;
    struct timespec ts[2] = { { 1000000000, 0 }, { 1100000000, 0 } };
    return utimensat(AT_FDCWD, path, ts, AT_SYMLINK_NOFOLLOW);
}

static int read_one(const char *path, const struct stat *st, int type, struct FTW *f)
{
    (void)f;
    if (type != FTW_F || !S_ISREG(st->st_mode))
        return 0;
    int fd = open(path, O_RDONLY);
    if (fd < 0) {
        werr = h_str("%s\n  read-all open %s: %s", werr, path, h_errname(errno));
        return 0;
    }
    static char buf[1 << 16];
    ssize_t n;
    while ((n = read(fd, buf, sizeof buf)) > 0)
        ;
    if (n < 0)
        werr = h_str("%s\n  read-all read %s: %s", werr, path, h_errname(errno));
    close(fd);
    return 0;
}

static void pwrite_at(const char *path, const char *s, off_t off, int flags)
{
    int fd = open(path, O_WRONLY | flags);
    W(fd);
    if (fd < 0)
        return;
    W(pwrite(fd, s, strlen(s), off));
    W(fsync(fd));
    close(fd);
}

static void workload(void)
{
    nftw(M, read_one, 16, FTW_PHYS);

    pwrite_at(m("small.txt"), "XX", 2, 0);
    pwrite_at(m("app.log"), "line2\n", 0, O_APPEND);
    W(truncate(m("trunc.txt"), 3));
    W(truncate(m("grow.txt"), 100000));
    pwrite_at(m("big.bin"), "overwritten", 0, O_TRUNC);
    pwrite_at(m("otrunc.txt"), "", 0, O_TRUNC);
    W(chmod(m("exec.sh"), 0700));
    W(chmod(m("ro.txt"), 0644));
    pwrite_at(m("ro.txt"), "now writable", 0, 0);
    W(chown(m("chown.txt"), 1234, 1234));
    W(chown(m("owned.txt"), 0, 0));
    struct timespec ts[2] = { { 5, 0 }, { 6, 0 } };
    W(utimensat(AT_FDCWD, m("times.txt"), ts, 0));
    W(utimensat(AT_FDCWD, m("dir"), NULL, 0));
    W(utimensat(AT_FDCWD, m("lnk"), ts, AT_SYMLINK_NOFOLLOW));
    W(setxattr(m("xattr.txt"), "user.c", "3", 1, 0));
    W(removexattr(m("xattr.txt"), "user.a"));
    W(setxattr(m("xattr.txt"), "user.b", "TWO", 3, XATTR_REPLACE));
    W(setxattr(m("dir"), "user.new", "n", 1, 0));
    W(removexattr(m("dir"), "user.d"));

    /* Renames: a file, a whole lower directory, an exchange of lower files. */
    W(rename(m("rename_me.txt"), m("renamed.txt")));
    W(rename(m("tree"), m("tree2")));
    char *c = h_get(m("tree2/sub/deeper/c.txt"));
    W_CHECK(c && strcmp(c, "c\n") == 0, "tree2/sub/deeper/c.txt after dir rename: %s",
            c ? c : h_errname(errno));
    pwrite_at(m("tree2/sub/b.txt"), "B", 0, 0);
    h_put(m("tree2/new.txt"), "new", 0644);
    W(syscall(SYS_renameat2, AT_FDCWD, m("swap1"), AT_FDCWD, m("swap2"), RENAME_EXCHANGE));
    W_FAILS(syscall(SYS_renameat2, AT_FDCWD, m("renamed.txt"), AT_FDCWD, m("small.txt"),
                    RENAME_NOREPLACE), EEXIST);

    /* Deletes: files, a lower hard link, an empty and a non-empty dir. */
    W(unlink(m("del.txt")));
    W(unlink(m("hard1")));
    pwrite_at(m("hard2"), "H", 0, 0);
    W(rmdir(m("emptydir")));
    W_FAILS(rmdir(m("full")), ENOTEMPTY);

    /* Links and symlinks, new and over deleted lower ones. */
    W(link(m("small.txt"), m("small.link")));
    W(link(m("exec.sh"), m("exec.link")));
    W(symlink("small.txt", m("newlink")));
    W(unlink(m("lnk")));
    W(symlink("big.bin", m("lnk")));

    /* New directories over whited-out names: a file and a lower dir. */
    W(unlink(m("gone.txt")));
    W(mkdir(m("gone.txt"), 0755));
    h_put(m("gone.txt/inside"), "in", 0644);
    W(unlink(m("olddir/k")));
    W(rmdir(m("olddir")));
    W(mkdir(m("olddir"), 0700));
    char *ls = h_ls(m("olddir"));
    W_CHECK(strcmp(ls, "") == 0, "olddir recreated over a whiteout lists \"%s\"", ls);
    h_put(m("olddir/new"), "n", 0644);

    /* Through a symlinked lower directory, and new entries in lower dirs. */
    pwrite_at(m("dlnk/f"), "via link", 0, O_TRUNC);
    h_put(m("dir/created"), "c", 0600);
    W(mkfifo(m("dir/newfifo"), 0644));
    W(mknod(m("dir/newreg"), S_IFREG | 0644, 0));
    W(mkdir(m("full/sub"), 0755));
    nftw(M, read_one, 16, FTW_PHYS);
}

Test(lower_untouched, heavy_workload_changes_nothing_in_lower,
     .init = h_setup, .fini = h_teardown, .timeout = H_TIMEOUT)
{
    werr = h_str("%s", "");
    build_lower();
    nftw(H.lower, old_times, 16, FTW_PHYS | FTW_DEPTH);
    char *before = h_snapshot(H.lower);

    h_init(NULL);
    M = h_mount("a");
    const char *b = h_mount("b");
    workload();
    /* A second agent reading everything and writing a little. */
    const char *save = M;
    M = b;
    nftw(M, read_one, 16, FTW_PHYS);
    pwrite_at(m("small.txt"), "b", 0, O_APPEND);
    W(unlink(m("tree/a.txt")));
    M = save;
    h_umount("a");
    h_umount("b");

    h_assert_same_snapshot(before, h_snapshot(H.lower), "lower after the workload");
    cr_assert_str_eq(werr, "", "workload steps failed:%s", werr);
}
