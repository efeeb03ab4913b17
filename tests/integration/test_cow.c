/* test_cow.c - lazy copy-up of large lower files, through real mounts.
 *
 * A large lower file of pseudo-random data gets a seeded random sequence of
 * writes (block-straddling ones too), truncates (shrinking and extending),
 * appends, hole punches, mmap writes, reopens, a rename and a hard link
 * through the mount; the same operations go to a plain copy of the file in
 * a temp dir. Every byte, the size and st_ino must agree, after the
 * operations, after a remount, and after the daemon is killed (between
 * operations, and by the fault hook LANEFS_FAULT_COW_KILL at each stage of
 * a write). The lower stays unchanged throughout. That the first write
 * copies only what it touches is checked by the upper file's allocated
 * blocks, never by time. */
#include "harness.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/xattr.h>
#include <unistd.h>

#define TEST_COW(name) Test(cow, name, .init = h_setup, .fini = h_teardown, \
                            .timeout = H_TIMEOUT)

#define MIB ((off_t)1 << 20)
#define BLK ((off_t)64 << 10)       /* the map's block for files below 512 MiB */
#define PAGE 4096

/* ---- data ----------------------------------------------------------- */

static uint64_t xs(uint64_t *s)
{
    *s ^= *s << 13;
    *s ^= *s >> 7;
    *s ^= *s << 17;
    return *s;
}

static void fill(unsigned char *buf, size_t len, uint64_t seed)
{
    uint64_t s = seed * 0x9e3779b97f4a7c15ull + 1;
    for (size_t i = 0; i < len; i++)
        buf[i] = (unsigned char)(xs(&s) >> 24);
}

/* A lower file of size bytes of pseudo-random data. */
static void make_lower(const char *path, off_t size, uint64_t seed)
{
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    cr_assert(fd >= 0, "create %s: %s", path, strerror(errno));
    unsigned char *buf = malloc((size_t)MIB);
    for (off_t off = 0; off < size; off += MIB) {
        size_t n = (size_t)(size - off < MIB ? size - off : MIB);
        fill(buf, n, seed + (uint64_t)off);
        cr_assert_eq(write(fd, buf, n), (ssize_t)n);
    }
    free(buf);
    cr_assert_eq(close(fd), 0);
}

static void copy_file(const char *from, const char *to)
{
    int in = open(from, O_RDONLY | O_NOATIME | O_CLOEXEC);
    int out = open(to, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    cr_assert(in >= 0 && out >= 0, "copy %s to %s: %s", from, to, strerror(errno));
    unsigned char *buf = malloc((size_t)MIB);
    ssize_t n;
    while ((n = read(in, buf, (size_t)MIB)) > 0)
        cr_assert_eq(write(out, buf, (size_t)n), n);
    cr_assert_eq(n, 0);
    free(buf);
    close(in);
    cr_assert_eq(close(out), 0);
}

static off_t size_of(const char *path)
{
    struct stat st;
    cr_assert_eq(stat(path, &st), 0, "stat %s: %s", path, strerror(errno));
    return st.st_size;
}

/* NULL when the files hold the same bytes, else what differs. */
static const char *differs(const char *a, const char *b)
{
    off_t sa = size_of(a), sb = size_of(b);
    if (sa != sb)
        return h_str("sizes %lld and %lld", (long long)sa, (long long)sb);
    int fa = open(a, O_RDONLY | O_CLOEXEC), fb = open(b, O_RDONLY | O_CLOEXEC);
    cr_assert(fa >= 0 && fb >= 0);
    unsigned char *ba = malloc((size_t)MIB), *bb = malloc((size_t)MIB);
    const char *what = NULL;
    for (off_t off = 0; !what && off < sa; off += MIB) {
        size_t n = (size_t)(sa - off < MIB ? sa - off : MIB);
        ssize_t ra = pread(fa, ba, n, off), rb = pread(fb, bb, n, off);
        if (ra != (ssize_t)n || rb != (ssize_t)n) {
            what = h_str("short read at %lld: %zd/%zd (%s)", (long long)off, ra, rb,
                         h_errname(errno));
            break;
        }
        for (size_t i = 0; i < n; i++)
            if (ba[i] != bb[i]) {
                what = h_str("byte %lld: 0x%02x, expected 0x%02x", (long long)off + (long long)i,
                             ba[i], bb[i]);
                break;
            }
    }
    free(ba);
    free(bb);
    close(fa);
    close(fb);
    return what;
}

/* ---- operations ------------------------------------------------------ */

enum op_kind { OP_WRITE, OP_TRUNC, OP_APPEND, OP_PUNCH, OP_MMAP, OP_REOPEN };

struct op {
    enum op_kind kind;
    off_t off;
    size_t len;
    uint64_t seed;
};

static const char *op_name(const struct op *o)
{
    static const char *const n[] = { "write", "truncate", "append", "punch", "mmap", "reopen" };
    return h_str("%s off %lld len %zu", n[o->kind], (long long)o->off, o->len);
}

/* A random operation for a file of size bytes. */
static struct op gen_op(uint64_t *s, off_t size)
{
    struct op o = { .seed = xs(s) };
    unsigned r = (unsigned)(xs(s) % 100);
    off_t room = size > 0 ? size : 1;
    if (r < 55) {
        o.kind = OP_WRITE;
        o.len = 1 + (size_t)(xs(s) % (xs(s) % 4 ? 9000 : 200000));
        if (xs(s) % 3 == 0)   /* straddle a block boundary */
            o.off = (off_t)(xs(s) % (uint64_t)(room / BLK + 1)) * BLK - (off_t)(o.len / 2);
        else
            o.off = (off_t)(xs(s) % (uint64_t)(room + BLK));
        if (o.off < 0)
            o.off = 0;
    } else if (r < 65) {
        o.kind = OP_TRUNC;
        /* Mostly shrinking a little, sometimes a lot, sometimes extending. */
        unsigned t = (unsigned)(xs(s) % 4);
        o.off = t == 0 ? (off_t)(xs(s) % (uint64_t)room)
              : t == 1 ? room + (off_t)(xs(s) % (uint64_t)(3 * BLK))
                       : room - (off_t)(xs(s) % (uint64_t)(room < 4 * BLK ? room : 4 * BLK));
    } else if (r < 78) {
        o.kind = OP_APPEND;
        o.len = 1 + (size_t)(xs(s) % 70000);
    } else if (r < 85) {
        o.kind = OP_PUNCH;
        o.off = (off_t)(xs(s) % (uint64_t)room);
        o.len = 1 + (size_t)(xs(s) % 150000);
    } else if (r < 93) {
        o.kind = OP_MMAP;
        o.off = (off_t)(xs(s) % (uint64_t)room);
        o.len = 1 + (size_t)(xs(s) % 20000);
    } else {
        o.kind = OP_REOPEN;
    }
    return o;
}

/* Applies o to the file path, open as *fd (O_RDWR); 0 or -errno. */
static int apply(int *fd, const char *path, const struct op *o)
{
    unsigned char *buf = NULL;
    int rc = 0;
    if (o->len) {
        buf = malloc(o->len);
        fill(buf, o->len, o->seed);
    }
    switch (o->kind) {
    case OP_WRITE: {
        ssize_t n = pwrite(*fd, buf, o->len, o->off);
        rc = n == (ssize_t)o->len ? 0 : n < 0 ? -errno : -EIO;
        break;
    }
    case OP_TRUNC:
        rc = (o->seed & 1 ? ftruncate(*fd, o->off) : truncate(path, o->off)) < 0 ? -errno : 0;
        break;
    case OP_APPEND: {
        int afd = open(path, O_WRONLY | O_APPEND | O_CLOEXEC);
        if (afd < 0) {
            rc = -errno;
            break;
        }
        ssize_t n = write(afd, buf, o->len);
        rc = n == (ssize_t)o->len ? 0 : n < 0 ? -errno : -EIO;
        if (close(afd) < 0 && rc == 0)
            rc = -errno;
        break;
    }
    case OP_PUNCH:
        rc = fallocate(*fd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, o->off,
                       (off_t)o->len) < 0 ? -errno : 0;
        break;
    case OP_MMAP: {
        struct stat st;
        if (fstat(*fd, &st) < 0) {
            rc = -errno;
            break;
        }
        if (o->off >= st.st_size)
            break;
        size_t len = o->len;
        if (o->off + (off_t)len > st.st_size)
            len = (size_t)(st.st_size - o->off);
        off_t base = o->off & ~(off_t)(PAGE - 1);
        size_t maplen = (size_t)(o->off - base) + len;
        unsigned char *p = mmap(NULL, maplen, PROT_READ | PROT_WRITE, MAP_SHARED, *fd, base);
        if (p == MAP_FAILED) {
            rc = -errno;
            break;
        }
        memcpy(p + (o->off - base), buf, len);
        rc = msync(p, maplen, MS_SYNC) < 0 ? -errno : 0;
        munmap(p, maplen);
        break;
    }
    case OP_REOPEN:
        close(*fd);
        *fd = open(path, O_RDWR | O_CLOEXEC);
        rc = *fd < 0 ? -errno : 0;
        break;
    }
    free(buf);
    return rc;
}

static int open_rw(const char *path)
{
    int fd = open(path, O_RDWR | O_CLOEXEC);
    cr_assert(fd >= 0, "open %s: %s", path, strerror(errno));
    return fd;
}

/* Runs n random operations on the view file and the reference file. */
static void run_ops(const char *view, const char *ref, uint64_t *s, int n)
{
    int vfd = open_rw(view), rfd = open_rw(ref);
    for (int i = 0; i < n; i++) {
        struct op o = gen_op(s, size_of(ref));
        int rv = apply(&vfd, view, &o), rr = apply(&rfd, ref, &o);
        cr_assert_eq(rr, 0, "op %d (%s) on the reference: %s", i, op_name(&o), h_errname(-rr));
        cr_assert_eq(rv, 0, "op %d (%s) through the mount: %s", i, op_name(&o), h_errname(-rv));
        if (i % 50 == 49) {
            const char *d = differs(view, ref);
            cr_assert_null(d, "after op %d (%s): %s", i, op_name(&o), d);
        }
    }
    close(vfd);
    close(rfd);
}

static void assert_same(const char *view, const char *ref, const char *when)
{
    const char *d = differs(view, ref);
    cr_assert_null(d, "%s: the view's file differs from a full copy: %s", when, d);
}

static char *up(const char *rel) { return h_str("%s/%s", h_agent_path("a", "upper"), rel); }

static bool has_map(const char *path)
{
    return getxattr(path, "user.lanefs.cowmap", NULL, 0) >= 0;
}

static ino_t ino_of(const char *path)
{
    struct stat st;
    cr_assert_eq(stat(path, &st), 0, "stat %s: %s", path, strerror(errno));
    return st.st_ino;
}

/* ---- tests ----------------------------------------------------------- */

TEST_COW(first_writes_copy_only_what_they_touch)
{
    const off_t size = 64 * MIB;
    make_lower(h_str("%s/big", H.lower), size, 1);
    cr_assert_eq(chmod(h_str("%s/big", H.lower), 0640), 0);
    cr_assert_eq(setxattr(h_str("%s/big", H.lower), "user.note", "kept", 4, 0), 0);
    h_set_times(h_str("%s/big", H.lower), 1000000, 2000000);
    char *lower_before = h_snapshot(H.lower);
    h_init(NULL);
    const char *mnt = h_mount("a");
    char *f = h_str("%s/big", mnt), *ref = h_at("ref");
    copy_file(h_str("%s/big", H.lower), ref);
    ino_t ino = ino_of(f);

    /* Opened for writing: copied up, nothing visible changes. */
    int fd = open(f, O_RDWR | O_CLOEXEC);
    cr_assert(fd >= 0);
    cr_assert_eq(close(fd), 0);
    cr_assert(has_map(up("big")), "a 64 MiB file on ext4 was not copied lazily");
    struct stat st;
    cr_assert_eq(stat(f, &st), 0);
    cr_assert_eq(st.st_size, size);
    cr_assert_eq(st.st_ino, ino);
    cr_assert_eq(st.st_mtim.tv_sec, 2000000, "copy-up changed mtime");
    cr_assert_eq(st.st_mode & 07777, 0640);
    char v[16] = "";
    cr_assert_eq(getxattr(f, "user.note", v, sizeof v), 4);
    cr_assert_str_eq(v, "kept");
    char names[256];
    ssize_t nl = listxattr(f, names, sizeof names);
    cr_assert_eq(nl, 10, "the view lists only user.note, not the map");
    assert_same(f, ref, "after copy-up");

    /* Append one byte. */
    fd = open(f, O_WRONLY | O_APPEND | O_CLOEXEC);
    cr_assert_eq(write(fd, "Z", 1), 1);
    cr_assert_eq(close(fd), 0);
    cr_assert_eq(stat(up("big"), &st), 0);
    cr_assert_eq(st.st_size, size + 1);
    cr_assert_lt(st.st_blocks * 512, (blkcnt_t)MIB,
                 "appending 1 byte made the upper use %lld bytes",
                 (long long)st.st_blocks * 512);

    /* Overwrite 4 KiB in the middle. */
    fd = open(f, O_WRONLY | O_CLOEXEC);
    char page[PAGE];
    memset(page, 'M', sizeof page);
    cr_assert_eq(pwrite(fd, page, sizeof page, size / 2 + 100), (ssize_t)sizeof page);
    cr_assert_eq(close(fd), 0);
    cr_assert_eq(stat(up("big"), &st), 0);
    cr_assert_lt(st.st_blocks * 512, (blkcnt_t)MIB,
                 "a 4 KiB overwrite made the upper use %lld bytes",
                 (long long)st.st_blocks * 512);

    int rfd = open_rw(ref);
    cr_assert_eq(pwrite(rfd, "Z", 1, size), 1);
    cr_assert_eq(pwrite(rfd, page, sizeof page, size / 2 + 100), (ssize_t)sizeof page);
    close(rfd);
    assert_same(f, ref, "after the append and the overwrite");
    cr_assert_eq(ino_of(f), ino, "st_ino changed");

    h_umount("a");
    mnt = h_mount("a");
    f = h_str("%s/big", mnt);
    assert_same(f, ref, "after remount");
    cr_assert_eq(ino_of(f), ino, "st_ino changed across remount");
    h_umount("a");
    h_assert_same_snapshot(lower_before, h_snapshot(H.lower), "lower");
}

TEST_COW(small_files_are_copied_whole)
{
    make_lower(h_str("%s/small", H.lower), 3 * MIB, 2);
    h_init(NULL);
    const char *mnt = h_mount("a");
    int fd = open(h_str("%s/small", mnt), O_WRONLY | O_APPEND | O_CLOEXEC);
    cr_assert(fd >= 0);
    cr_assert_eq(write(fd, "x", 1), 1);
    cr_assert_eq(close(fd), 0);
    cr_assert(h_exists(up("small")));
    cr_assert_not(has_map(up("small")), "a 3 MiB file got a map");
    struct stat st;
    cr_assert_eq(stat(up("small"), &st), 0);
    cr_assert_geq(st.st_blocks * 512, 3 * MIB, "the small copy is not whole");
    h_umount("a");
}

TEST_COW(random_operations_match_a_full_copy)
{
    const off_t size = 24 * MIB + 12345;
    h_mkdir_p(h_str("%s/data", H.lower), 0755);
    make_lower(h_str("%s/data/big", H.lower), size, 3);
    char *lower_before = h_snapshot(H.lower);
    h_init(NULL);
    const char *mnt = h_mount("a");
    char *f = h_str("%s/data/big", mnt), *ref = h_at("ref");
    copy_file(h_str("%s/data/big", H.lower), ref);
    ino_t ino = ino_of(f);
    uint64_t s = 0x5eed0001;

    run_ops(f, ref, &s, 300);
    assert_same(f, ref, "after 300 operations");
    cr_assert_eq(ino_of(f), ino);

    /* The map follows the file: renamed, then hard-linked. */
    cr_assert_eq(mkdir(h_str("%s/moved", mnt), 0755), 0);
    char *g = h_str("%s/moved/big2", mnt);
    cr_assert_eq(rename(f, g), 0, "rename: %s", strerror(errno));
    assert_same(g, ref, "after rename");
    run_ops(g, ref, &s, 100);
    char *l = h_str("%s/moved/link", mnt);
    cr_assert_eq(link(g, l), 0, "link: %s", strerror(errno));
    run_ops(l, ref, &s, 100);
    assert_same(g, ref, "the other name of the hard link");
    cr_assert_eq(ino_of(g), ino, "st_ino changed after rename");

    h_umount("a");
    mnt = h_mount("a");
    g = h_str("%s/moved/big2", mnt);
    assert_same(g, ref, "after remount");
    run_ops(g, ref, &s, 150);
    assert_same(g, ref, "after operations in the second session");
    h_umount("a");
    h_assert_same_snapshot(lower_before, h_snapshot(H.lower), "lower");
}

TEST_COW(shrink_then_extend_reads_zeros)
{
    const off_t size = 8 * MIB;
    make_lower(h_str("%s/big", H.lower), size, 4);
    h_init(NULL);
    const char *mnt = h_mount("a");
    char *f = h_str("%s/big", mnt);
    cr_assert_eq(truncate(f, MIB + 5), 0);
    cr_assert_eq(truncate(f, size), 0);
    int fd = open(f, O_RDONLY | O_CLOEXEC);
    unsigned char *buf = malloc((size_t)size);
    cr_assert_eq(pread(fd, buf, (size_t)size, 0), (ssize_t)size);
    close(fd);
    unsigned char *want = malloc((size_t)MIB);
    fill(want, (size_t)MIB, 4);
    cr_assert_eq(memcmp(buf, want, (size_t)MIB), 0, "the part below the cut changed");
    for (off_t i = MIB + 5; i < size; i++)
        if (buf[i])
            cr_assert_fail("byte %lld past the cut is 0x%02x, not 0", (long long)i, buf[i]);
    free(buf);
    free(want);
    h_umount("a");
}

/* ---- concurrency ----------------------------------------------------- */

struct writer_arg {
    const char *path;
    int parity;
    off_t size;
};

static unsigned char page_byte(off_t page)
{
    return (unsigned char)(page * 7 + 1);
}

/* Writes every other page (by parity) of the file, in a shuffled order, so
 * the two writers fill the same blocks at the same time. */
static void *writer(void *p)
{
    struct writer_arg *a = p;
    int fd = open(a->path, O_WRONLY | O_CLOEXEC);
    if (fd < 0)
        return (void *)(intptr_t)errno;
    off_t pages = a->size / PAGE;
    char buf[PAGE];
    for (off_t k = 0; k < pages; k++) {
        /* A permutation of the pages: k * odd step mod pages (pages is a
         * power of two). */
        off_t pg = (k * 40503) % pages;
        if (pg % 2 != a->parity)
            continue;
        memset(buf, page_byte(pg), sizeof buf);
        if (pwrite(fd, buf, sizeof buf, pg * PAGE) != (ssize_t)sizeof buf) {
            int e = errno;
            close(fd);
            return (void *)(intptr_t)(e ? e : EIO);
        }
    }
    close(fd);
    return NULL;
}

TEST_COW(concurrent_writers_of_one_block_do_not_clobber_each_other)
{
    const off_t size = 8 * MIB;
    make_lower(h_str("%s/big", H.lower), size, 5);
    h_init(NULL);
    const char *mnt = h_mount("a");
    char *f = h_str("%s/big", mnt), *f2 = h_str("%s/big.link", mnt);
    /* Each name is its own kernel inode, whose writes the kernel does not
     * serialise against the other's: the daemon sees them at once. */
    cr_assert_eq(link(f, f2), 0, "link: %s", strerror(errno));
    pthread_t t[2];
    struct writer_arg a[2] = { { f, 0, size }, { f2, 1, size } };
    for (int i = 0; i < 2; i++)
        cr_assert_eq(pthread_create(&t[i], NULL, writer, &a[i]), 0);
    /* A reader meanwhile: every page is the lower's or the new one. */
    unsigned char *lower = malloc((size_t)size), *buf = malloc((size_t)size);
    for (off_t off = 0; off < size; off += MIB)
        fill(lower + off, (size_t)MIB, 5 + (uint64_t)off);
    for (int round = 0; round < 3; round++) {
        int fd = open(f, O_RDONLY | O_CLOEXEC);
        cr_assert(fd >= 0);
        cr_assert_eq(pread(fd, buf, (size_t)size, 0), (ssize_t)size);
        close(fd);
        /* Bytewise: a page may be read while it is being written. */
        for (off_t i = 0; i < size; i++)
            if (buf[i] != lower[i] && buf[i] != page_byte(i / PAGE))
                cr_assert_fail("round %d: byte %lld is neither old nor new", round,
                               (long long)i);
    }
    for (int i = 0; i < 2; i++) {
        void *r;
        cr_assert_eq(pthread_join(t[i], &r), 0);
        cr_assert_null(r, "writer %d: %s", i, h_errname((int)(intptr_t)r));
    }
    int fd = open(f, O_RDONLY | O_CLOEXEC);
    cr_assert_eq(pread(fd, buf, (size_t)size, 0), (ssize_t)size);
    close(fd);
    for (off_t i = 0; i < size; i++)
        if (buf[i] != page_byte(i / PAGE))
            cr_assert_fail("byte %lld is 0x%02x: a write was lost", (long long)i, buf[i]);
    free(lower);
    free(buf);
    h_umount("a");
    /* Every block was written: the file no longer needs the lower. */
    cr_assert_not(has_map(up("big")), "the map outlived the last block");
}

/* ---- crashes --------------------------------------------------------- */

static void kill_daemon_and_detach(const char *mnt)
{
    pid_t pid = h_daemon_pid();
    if (pid > 0 && kill(pid, 0) == 0)
        cr_assert_eq(kill(pid, SIGKILL), 0);
    if (pid > 0)
        cr_assert(h_wait_pid_gone(pid, 30000), "daemon %d still alive", (int)pid);
    cr_assert_eq(umount2(mnt, MNT_DETACH), 0, "detach dead mount: %s", strerror(errno));
    h_forget_mount("a");
}

/* Each 4 KiB page of view equals that page of a or of b (sizes: either). */
static const char *pages_from(const char *view, const char *a, const char *b)
{
    off_t sv = size_of(view), sa = size_of(a), sb = size_of(b);
    if (sv != sa && sv != sb)
        return h_str("size %lld, expected %lld or %lld", (long long)sv, (long long)sa,
                     (long long)sb);
    int fv = open(view, O_RDONLY | O_CLOEXEC), fa = open(a, O_RDONLY | O_CLOEXEC),
        fb = open(b, O_RDONLY | O_CLOEXEC);
    cr_assert(fv >= 0 && fa >= 0 && fb >= 0);
    const char *what = NULL;
    for (off_t off = 0; !what && off < sv; off += PAGE) {
        unsigned char pv[PAGE], pa[PAGE], pb[PAGE];
        size_t n = (size_t)(sv - off < PAGE ? sv - off : PAGE);
        memset(pa, 0, sizeof pa);
        memset(pb, 0, sizeof pb);
        if (pread(fv, pv, n, off) != (ssize_t)n) {
            what = h_str("short read at %lld", (long long)off);
            break;
        }
        /* Past a file's end its page reads as zeros, as a shrink then an
         * extension would leave it. */
        if (pread(fa, pa, n, off) < 0 || pread(fb, pb, n, off) < 0)
            cr_assert_fail("read the references: %s", strerror(errno));
        if (memcmp(pv, pa, n) != 0 && memcmp(pv, pb, n) != 0)
            what = h_str("page at %lld is neither the old nor the new content", (long long)off);
    }
    close(fv);
    close(fa);
    close(fb);
    return what;
}

/* Runs operations until the daemon dies by the fault hook; then checks the
 * file after a remount against the reference before and after the
 * operation that was in flight, and goes on with operations. */
static void crash_at(const char *spec)
{
    const off_t size = 20 * MIB;
    make_lower(h_str("%s/big", H.lower), size, 6);
    char *lower_before = h_snapshot(H.lower);
    h_init(NULL);
    char *env[] = { h_str("LANEFS_FAULT_COW_KILL=%s", spec), NULL };
    const char *mnt = h_mount_env("a", env);
    char *f = h_str("%s/big", mnt), *ref = h_at("ref"), *ref2 = h_at("ref2");
    copy_file(h_str("%s/big", H.lower), ref);
    ino_t ino = ino_of(f);
    uint64_t s = 0xc0ffee;
    int vfd = open_rw(f), rfd = open_rw(ref), i, rv = 0;
    struct op o;
    for (i = 0; i < 2000; i++) {
        o = gen_op(&s, size_of(ref));
        if (o.kind == OP_REOPEN)
            continue;
        rv = apply(&vfd, f, &o);
        if (rv < 0)
            break;
        cr_assert_eq(apply(&rfd, ref, &o), 0);
    }
    cr_assert_lt(i, 2000, "the fault hook (%s) never fired", spec);
    cr_log_info("%s: daemon died in op %d (%s): %s", spec, i, op_name(&o), h_errname(-rv));
    close(vfd);
    kill_daemon_and_detach(mnt);

    /* The operation in flight may or may not have happened; per page. */
    copy_file(ref, ref2);
    int r2 = open_rw(ref2);
    cr_assert_eq(apply(&r2, ref2, &o), 0);
    close(r2);
    mnt = h_mount("a");
    f = h_str("%s/big", mnt);
    const char *d = pages_from(f, ref, ref2);
    cr_assert_null(d, "after the crash (%s): %s", spec, d);
    cr_assert_eq(ino_of(f), ino);
    /* Go on from what the file holds now. */
    copy_file(f, ref);
    run_ops(f, ref, &s, 120);
    assert_same(f, ref, "operations after the crash");
    h_umount("a");
    mnt = h_mount("a");
    assert_same(h_str("%s/big", mnt), ref, "remount after the crash");
    h_umount("a");
    h_assert_same_snapshot(lower_before, h_snapshot(H.lower), "lower");
}

TEST_COW(crash_after_copying_lower_parts) { crash_at("copied:7"); }
TEST_COW(crash_after_the_write_before_the_mark) { crash_at("written:9"); }
TEST_COW(crash_after_the_mark_before_the_answer) { crash_at("marked:11"); }

TEST_COW(kill_between_operations_keeps_every_answered_write)
{
    const off_t size = 20 * MIB;
    make_lower(h_str("%s/big", H.lower), size, 7);
    h_init(NULL);
    const char *mnt = h_mount("a");
    char *f = h_str("%s/big", mnt), *ref = h_at("ref");
    copy_file(h_str("%s/big", H.lower), ref);
    uint64_t s = 0xdead;
    for (int round = 0; round < 2; round++) {
        run_ops(f, ref, &s, 120);
        kill_daemon_and_detach(mnt);
        mnt = h_mount("a");
        f = h_str("%s/big", mnt);
        assert_same(f, ref, h_str("after kill -9 number %d", round + 1));
    }
    h_umount("a");
}

/* ---- other layers ---------------------------------------------------- */

TEST_COW(a_lazy_copy_moved_into_a_shared_path_is_filled_first)
{
    const off_t size = 8 * MIB;
    make_lower(h_str("%s/big", H.lower), size, 8);
    h_mkdir_p(h_str("%s/pub", H.lower), 0755);
    h_init("--shared", "pub", (char *)NULL);
    const char *a = h_mount("a"), *b = h_mount("b");
    char *ref = h_at("ref");
    copy_file(h_str("%s/big", H.lower), ref);
    int fd = open_rw(h_str("%s/big", a)), rfd = open_rw(ref);
    for (off_t off = 100; off < size; off += 3 * MIB + 777) {
        cr_assert_eq(pwrite(fd, "hello", 5, off), 5);
        cr_assert_eq(pwrite(rfd, "hello", 5, off), 5);
    }
    close(fd);
    close(rfd);
    cr_assert(has_map(up("big")));
    cr_assert_eq(rename(h_str("%s/big", a), h_str("%s/pub/big", a)), 0, "rename: %s",
                 strerror(errno));
    char *shared = h_str("%s/shared/upper/pub/big", H.state);
    cr_assert(h_exists(shared));
    cr_assert_not(has_map(shared), "a map went into the shared layer");
    assert_same(h_str("%s/pub/big", a), ref, "the moved file, in its agent");
    assert_same(h_str("%s/pub/big", b), ref, "the moved file, in another agent");
    assert_same(shared, ref, "the shared layer's file itself");
    h_umount("a");
    h_umount("b");
}

TEST_COW(a_lazy_copy_renamed_into_the_temp_layer_and_back)
{
    const off_t size = 6 * MIB;
    make_lower(h_str("%s/big", H.lower), size, 9);
    h_init(NULL);
    const char *mnt = h_mount("a");
    char *f = h_str("%s/big", mnt), *t = h_str("%s/big.tmp", mnt), *ref = h_at("ref");
    copy_file(h_str("%s/big", H.lower), ref);
    uint64_t s = 0x7e3b;
    run_ops(f, ref, &s, 40);
    cr_assert_eq(rename(f, t), 0);
    assert_same(t, ref, "in the temp layer");
    run_ops(t, ref, &s, 40);
    cr_assert_eq(rename(t, f), 0);
    assert_same(f, ref, "back in the upper");
    h_umount("a");
    mnt = h_mount("a");
    assert_same(h_str("%s/big", mnt), ref, "after remount");
    h_umount("a");
}

TEST_COW(a_reader_open_before_the_copy_up_sees_later_writes)
{
    const off_t size = 6 * MIB;
    make_lower(h_str("%s/big", H.lower), size, 10);
    h_init(NULL);
    const char *mnt = h_mount("a");
    char *f = h_str("%s/big", mnt);
    int rd = open(f, O_RDONLY | O_CLOEXEC);
    cr_assert(rd >= 0);
    unsigned char *want = malloc((size_t)size), *got = malloc((size_t)size + 10);
    fill(want, (size_t)MIB, 10);
    cr_assert_eq(pread(rd, got, (size_t)MIB, 0), (ssize_t)MIB);
    cr_assert_eq(memcmp(got, want, (size_t)MIB), 0);
    /* Another open writes: the lazy copy-up happens now. */
    int wr = open_rw(f);
    cr_assert_eq(pwrite(wr, "NEW!", 4, 4 * MIB + 3), 4);
    cr_assert_eq(ftruncate(wr, size + 10), 0);
    close(wr);
    cr_assert(has_map(up("big")));
    for (off_t off = 0; off < size; off += MIB)
        fill(want + off, (size_t)MIB, 10 + (uint64_t)off);
    memcpy(want + 4 * MIB + 3, "NEW!", 4);
    /* The reader's cached pages of the lower are stale by design until it
     * reopens or reads past them; read a range it never read. */
    cr_assert_eq(pread(rd, got, (size_t)MIB, 4 * MIB), (ssize_t)MIB);
    cr_assert_eq(memcmp(got, want + 4 * MIB, (size_t)MIB), 0,
                 "the reader open before the copy-up does not see the write");
    close(rd);
    rd = open(f, O_RDONLY | O_CLOEXEC);
    cr_assert_eq(pread(rd, got, (size_t)size + 10, 0), (ssize_t)size + 10);
    cr_assert_eq(memcmp(got, want, (size_t)size), 0);
    cr_assert_eq(memcmp(got + size, "\0\0\0\0\0\0\0\0\0\0", 10), 0);
    close(rd);
    free(want);
    free(got);
    h_umount("a");
}

TEST_COW(an_unlinked_open_lazy_copy_keeps_working)
{
    const off_t size = 6 * MIB;
    make_lower(h_str("%s/big", H.lower), size, 11);
    h_init(NULL);
    const char *mnt = h_mount("a");
    char *f = h_str("%s/big", mnt), *ref = h_at("ref");
    copy_file(h_str("%s/big", H.lower), ref);
    int fd = open_rw(f), rfd = open_rw(ref);
    cr_assert_eq(pwrite(fd, "abc", 3, MIB), 3);
    cr_assert_eq(pwrite(rfd, "abc", 3, MIB), 3);
    cr_assert_eq(unlink(f), 0);
    cr_assert_eq(ftruncate(fd, 2 * MIB + 1), 0, "ftruncate: %s", strerror(errno));
    cr_assert_eq(ftruncate(fd, size), 0);
    cr_assert_eq(ftruncate(rfd, 2 * MIB + 1), 0);
    cr_assert_eq(ftruncate(rfd, size), 0);
    struct stat st;
    cr_assert_eq(fstat(fd, &st), 0);
    cr_assert_eq(st.st_size, size);
    unsigned char *a = malloc((size_t)size), *b = malloc((size_t)size);
    cr_assert_eq(pread(fd, a, (size_t)size, 0), (ssize_t)size);
    cr_assert_eq(pread(rfd, b, (size_t)size, 0), (ssize_t)size);
    cr_assert_eq(memcmp(a, b, (size_t)size), 0, "an unlinked lazy copy reads wrong data");
    free(a);
    free(b);
    close(fd);
    close(rfd);
    h_umount("a");
}

TEST_COW(zero_range_and_o_trunc_match_a_full_copy)
{
    const off_t size = 6 * MIB;
    make_lower(h_str("%s/big", H.lower), size, 12);
    make_lower(h_str("%s/big2", H.lower), size, 13);
    h_init(NULL);
    const char *mnt = h_mount("a");
    char *f = h_str("%s/big", mnt), *ref = h_at("ref");
    copy_file(h_str("%s/big", H.lower), ref);
    int fd = open_rw(f), rfd = open_rw(ref);
    for (int i = 0; i < 2; i++) {
        int t = i ? rfd : fd;
        cr_assert_eq(pwrite(t, "0123456789", 10, 3 * MIB - 5), 10);
        cr_assert_eq(fallocate(t, FALLOC_FL_ZERO_RANGE, MIB + 100, 70000), 0,
                     "zero range: %s", strerror(errno));
        cr_assert_eq(fallocate(t, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, 4 * MIB - 10,
                               3 * 64 * 1024), 0, "punch hole: %s", strerror(errno));
    }
    close(fd);
    close(rfd);
    assert_same(f, ref, "after zero range and punch hole");

    /* O_TRUNC, then an extension: zeros, not the old lower data. */
    char *g = h_str("%s/big2", mnt);
    fd = open(g, O_WRONLY | O_CLOEXEC);
    cr_assert_eq(pwrite(fd, "x", 1, MIB), 1);   /* lazily copied first */
    close(fd);
    cr_assert(has_map(up("big2")));
    fd = open(g, O_RDWR | O_TRUNC | O_CLOEXEC);
    cr_assert(fd >= 0);
    cr_assert_eq(pwrite(fd, "end", 3, size - 3), 3);
    close(fd);
    unsigned char *buf = malloc((size_t)size);
    fd = open(g, O_RDONLY | O_CLOEXEC);
    cr_assert_eq(pread(fd, buf, (size_t)size, 0), (ssize_t)size);
    close(fd);
    for (off_t i = 0; i < size - 3; i++)
        if (buf[i])
            cr_assert_fail("byte %lld after O_TRUNC and a write at the end is 0x%02x",
                           (long long)i, buf[i]);
    cr_assert_eq(memcmp(buf + size - 3, "end", 3), 0);
    free(buf);
    h_umount("a");
    mnt = h_mount("a");
    cr_assert_eq(size_of(h_str("%s/big2", mnt)), size);
    assert_same(h_str("%s/big", mnt), ref, "after remount");
    h_umount("a");
}

TEST_COW(renaming_a_lower_directory_copies_its_large_files_lazily)
{
    const off_t size = 6 * MIB;
    h_mkdir_p(h_str("%s/dir/sub", H.lower), 0755);
    make_lower(h_str("%s/dir/sub/big", H.lower), size, 14);
    char *lower_before = h_snapshot(H.lower);
    h_init(NULL);
    const char *mnt = h_mount("a");
    char *ref = h_at("ref");
    copy_file(h_str("%s/dir/sub/big", H.lower), ref);
    ino_t ino = ino_of(h_str("%s/dir/sub/big", mnt));
    cr_assert_eq(rename(h_str("%s/dir", mnt), h_str("%s/dir2", mnt)), 0, "rename: %s",
                 strerror(errno));
    char *f = h_str("%s/dir2/sub/big", mnt);
    cr_assert(has_map(up("dir2/sub/big")), "the tree copy was not lazy");
    cr_assert_eq(ino_of(f), ino);
    assert_same(f, ref, "after the directory rename");
    uint64_t s = 0xd1a;
    run_ops(f, ref, &s, 60);
    h_umount("a");
    mnt = h_mount("a");
    assert_same(h_str("%s/dir2/sub/big", mnt), ref, "after remount");
    cr_assert_not(h_exists(h_str("%s/dir/sub/big", mnt)));
    h_umount("a");
    h_assert_same_snapshot(lower_before, h_snapshot(H.lower), "lower");
}
