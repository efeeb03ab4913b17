/* Unit tests for fs/cowmap.c: the block map of lazy copy-up, on real files
 * in a temp dir (marking, reading across present and absent blocks,
 * persisting and reloading, truncation and the lower limit, filling, the
 * checks a load makes), and a seeded random run against a model. */
#include <criterion/criterion.h>

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/xattr.h>
#include <unistd.h>

#include "fs/cowmap.h"

#define SIZE ((off_t)5 << 20)        /* 80 blocks of 64 KiB */
#define BLK  ((off_t)64 << 10)

static char dir[] = "/tmp/lanefs-cowmap-XXXXXX";
static char lpath[64], upath[64];

static unsigned char lbyte(off_t i)
{
    return (unsigned char)((i * 2654435761u) >> 11);
}

static void setup(void)
{
    cr_assert_not_null(mkdtemp(dir));
    snprintf(lpath, sizeof lpath, "%s/lower", dir);
    snprintf(upath, sizeof upath, "%s/upper", dir);
    int fd = open(lpath, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    cr_assert(fd >= 0);
    unsigned char *buf = malloc((size_t)SIZE);
    for (off_t i = 0; i < SIZE; i++)
        buf[i] = lbyte(i);
    cr_assert_eq(write(fd, buf, (size_t)SIZE), (ssize_t)SIZE);
    free(buf);
    close(fd);
}

static void teardown(void)
{
    unlink(lpath);
    unlink(upath);
    rmdir(dir);
}

/* Makes the lazy upper of the lower file, as copy-up does. */
static void make_upper(void)
{
    struct stat lst;
    cr_assert_eq(stat(lpath, &lst), 0);
    int fd = open(upath, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    cr_assert(fd >= 0);
    cr_assert_eq(ftruncate(fd, lst.st_size), 0);
    int rc = cowmap_init_file(fd, "lower", &lst);
    cr_assert_eq(rc, 0, "cowmap_init_file: %s", strerror(-rc));
    close(fd);
}

static struct cowmap *load(void)
{
    int ufd = open(upath, O_RDWR | O_CLOEXEC), lfd = open(lpath, O_RDONLY | O_CLOEXEC);
    cr_assert(ufd >= 0 && lfd >= 0);
    struct cowmap *m = NULL;
    int rc = cowmap_load(ufd, lfd, &m);
    cr_assert_eq(rc, 0, "cowmap_load: %s", strerror(-rc));
    return m;
}

static int try_load(void)
{
    int ufd = open(upath, O_RDWR | O_CLOEXEC), lfd = open(lpath, O_RDONLY | O_CLOEXEC);
    struct cowmap *m = NULL;
    int rc = cowmap_load(ufd, lfd, &m);
    if (rc == 0) {
        cowmap_free(m);
    } else {
        close(ufd);
        close(lfd);
    }
    return rc;
}

static void put(struct cowmap *m, const void *data, size_t len, off_t off)
{
    struct cowmap_wr w;
    int rc = cowmap_write_begin(m, off, (off_t)len, &w, NULL);
    cr_assert_eq(rc, 0, "begin: %s", strerror(-rc));
    int fd = open(upath, O_WRONLY | O_CLOEXEC);
    ssize_t n = pwrite(fd, data, len, off);
    close(fd);
    rc = cowmap_write_end(m, &w, n, NULL);
    cr_assert_eq(rc, 0, "end: %s", strerror(-rc));
}

/* Reads [off, off+len) through the map and compares with want. */
static void check(struct cowmap *m, const unsigned char *want, off_t off, size_t len)
{
    unsigned char *got = malloc(len + 1);
    ssize_t n = cowmap_read(m, got, len, off);
    cr_assert_eq(n, (ssize_t)len, "read %zu at %lld: %zd", len, (long long)off, n);
    for (size_t i = 0; i < len; i++)
        if (got[i] != want[i])
            cr_assert_fail("byte %lld: 0x%02x, expected 0x%02x", (long long)off + (long long)i,
                           got[i], want[i]);
    free(got);
}

static off_t upper_size(void)
{
    struct stat st;
    cr_assert_eq(stat(upath, &st), 0);
    return st.st_size;
}

TestSuite(cowmap, .init = setup, .fini = teardown);

Test(cowmap, block_size_keeps_the_bitmap_small)
{
    cr_assert_eq(cowmap_shift_for(0), COWMAP_MIN_SHIFT);
    cr_assert_eq(cowmap_shift_for((uint64_t)512 << 20), 16);   /* 8192 blocks */
    cr_assert_eq(cowmap_shift_for(((uint64_t)512 << 20) + 1), 17);
    cr_assert_eq(cowmap_shift_for((uint64_t)1 << 30), 17);
    for (uint64_t sz = 1; sz < ((uint64_t)1 << 50); sz = sz * 3 + 7) {
        unsigned s = cowmap_shift_for(sz);
        cr_assert_leq((sz + ((uint64_t)1 << s) - 1) >> s, COWMAP_MAX_BITS);
    }
}

Test(cowmap, fault_spec_parses)
{
    struct cowmap_fault f;
    cr_assert_eq(cowmap_fault_parse("written:3", &f), 0);
    cr_assert_eq(f.stage, COWMAP_AT_WRITTEN);
    cr_assert_eq(f.nth, 3);
    cr_assert_eq(cowmap_fault_parse("marked:1", &f), 0);
    cr_assert_eq(f.stage, COWMAP_AT_MARKED);
    cr_assert_eq(cowmap_fault_parse("copied:0", &f), -EINVAL);
    cr_assert_eq(cowmap_fault_parse("copy:2", &f), -EINVAL);
    cr_assert_eq(cowmap_fault_parse("marked", &f), -EINVAL);
    cr_assert_eq(cowmap_fault_parse("marked:2x", &f), -EINVAL);
}

Test(cowmap, new_map_has_no_block_and_reads_the_lower)
{
    make_upper();
    struct cowmap *m = load();
    cr_assert_eq(cowmap_limit(m), (uint64_t)SIZE);
    cr_assert_eq(cowmap_block_size(m), (uint64_t)BLK);
    cr_assert_not(cowmap_complete(m));
    for (off_t off = 0; off < SIZE; off += BLK / 2)
        cr_assert_not(cowmap_present(m, (uint64_t)off));
    cr_assert(cowmap_present(m, (uint64_t)SIZE), "bytes past the limit are the upper's");
    unsigned char *want = malloc((size_t)SIZE);
    for (off_t i = 0; i < SIZE; i++)
        want[i] = lbyte(i);
    check(m, want, 0, (size_t)SIZE);
    check(m, want + 12345, 12345, 300000);
    unsigned char b[8];
    cr_assert_eq(cowmap_read(m, b, sizeof b, SIZE - 3), 3, "a read stops at the end");
    cr_assert_eq(cowmap_read(m, b, sizeof b, SIZE + 10), 0);
    free(want);
    cowmap_free(m);
}

Test(cowmap, a_write_fills_and_marks_only_its_blocks)
{
    make_upper();
    struct cowmap *m = load();
    unsigned char *want = malloc((size_t)SIZE);
    for (off_t i = 0; i < SIZE; i++)
        want[i] = lbyte(i);
    /* Straddles the boundary of blocks 1 and 2. */
    off_t off = 2 * BLK - 100;
    unsigned char data[300];
    memset(data, 0xA5, sizeof data);
    put(m, data, sizeof data, off);
    memcpy(want + off, data, sizeof data);
    cr_assert_not(cowmap_present(m, 0));
    cr_assert(cowmap_present(m, (uint64_t)BLK));
    cr_assert(cowmap_present(m, (uint64_t)(3 * BLK - 1)));
    cr_assert_not(cowmap_present(m, (uint64_t)(3 * BLK)));
    check(m, want, 0, (size_t)SIZE);

    /* The upper itself holds the whole of both blocks, and nothing else. */
    int fd = open(upath, O_RDONLY | O_CLOEXEC);
    unsigned char *u = malloc((size_t)(2 * BLK));
    cr_assert_eq(pread(fd, u, (size_t)(2 * BLK), BLK), (ssize_t)(2 * BLK));
    cr_assert_eq(memcmp(u, want + BLK, (size_t)(2 * BLK)), 0);
    struct stat st;
    cr_assert_eq(fstat(fd, &st), 0);
    cr_assert_leq(st.st_blocks * 512, 4 * BLK, "upper uses %lld bytes", (long long)st.st_blocks * 512);
    close(fd);
    free(u);
    free(want);
    cowmap_free(m);
}

Test(cowmap, marks_persist_and_reload)
{
    make_upper();
    struct cowmap *m = load();
    unsigned char x = 'x';
    put(m, &x, 1, 7 * BLK + 5);
    put(m, &x, 1, SIZE - 1);
    cowmap_free(m);
    m = load();
    cr_assert(cowmap_present(m, (uint64_t)(7 * BLK)));
    cr_assert(cowmap_present(m, (uint64_t)(SIZE - 1)));
    cr_assert_not(cowmap_present(m, (uint64_t)(8 * BLK)));
    cr_assert_not(cowmap_present(m, (uint64_t)(6 * BLK)));
    unsigned char b[3];
    cr_assert_eq(cowmap_read(m, b, 3, 7 * BLK + 4), 3);
    cr_assert_eq(b[0], lbyte(7 * BLK + 4));
    cr_assert_eq(b[1], 'x');
    cr_assert_eq(b[2], lbyte(7 * BLK + 6));
    cowmap_free(m);
}

Test(cowmap, a_short_write_marks_nothing_it_left_unwritten)
{
    make_upper();
    struct cowmap *m = load();
    struct cowmap_wr w;
    off_t off = 3 * BLK + 10;
    cr_assert_eq(cowmap_write_begin(m, off, 2 * BLK, &w, NULL), 0);
    int fd = open(upath, O_WRONLY | O_CLOEXEC);
    unsigned char *data = calloc(1, (size_t)BLK);
    /* Only the rest of block 3 got written. */
    cr_assert_eq(pwrite(fd, data, (size_t)(BLK - 10), off), (ssize_t)(BLK - 10));
    close(fd);
    cr_assert_eq(cowmap_write_end(m, &w, BLK - 10, NULL), 0);
    cr_assert(cowmap_present(m, (uint64_t)(3 * BLK)));
    cr_assert_not(cowmap_present(m, (uint64_t)(4 * BLK)));
    cr_assert_not(cowmap_present(m, (uint64_t)(5 * BLK)));
    /* A failed write marks nothing. */
    cr_assert_eq(cowmap_write_begin(m, 9 * BLK, 10, &w, NULL), 0);
    cr_assert_eq(cowmap_write_end(m, &w, -EIO, NULL), 0);
    cr_assert_not(cowmap_present(m, (uint64_t)(9 * BLK)));
    unsigned char b;
    cr_assert_eq(cowmap_read(m, &b, 1, 9 * BLK), 1);
    cr_assert_eq(b, lbyte(9 * BLK));
    free(data);
    cowmap_free(m);
}

Test(cowmap, truncate_lowers_the_limit_so_an_extension_reads_zeros)
{
    make_upper();
    struct cowmap *m = load();
    off_t cut = 10 * BLK + 1000;
    cr_assert_eq(cowmap_truncate(m, cut), 0);
    cr_assert_eq(cowmap_limit(m), (uint64_t)cut);
    cr_assert_eq(upper_size(), cut);
    cr_assert_eq(cowmap_truncate(m, SIZE), 0, "extend");
    cr_assert_eq(cowmap_limit(m), (uint64_t)cut, "an extension never raises the limit");
    unsigned char *got = malloc((size_t)SIZE);
    cr_assert_eq(cowmap_read(m, got, (size_t)SIZE, 0), (ssize_t)SIZE);
    for (off_t i = 0; i < SIZE; i++)
        if (got[i] != (i < cut ? lbyte(i) : 0))
            cr_assert_fail("byte %lld is 0x%02x", (long long)i, got[i]);
    cowmap_free(m);
    m = load();
    cr_assert_eq(cowmap_limit(m), (uint64_t)cut, "the limit persists");
    cr_assert_eq(cowmap_read(m, got, (size_t)SIZE, 0), (ssize_t)SIZE);
    cr_assert_eq(got[cut], 0);
    cr_assert_eq(got[cut - 1], lbyte(cut - 1));
    free(got);
    cowmap_free(m);
}

Test(cowmap, load_lowers_a_limit_above_the_size_after_a_crash)
{
    make_upper();
    /* A truncate whose new limit never got persisted. */
    cr_assert_eq(truncate(upath, 3 * BLK), 0);
    struct cowmap *m = load();
    cr_assert_eq(cowmap_limit(m), (uint64_t)(3 * BLK));
    cowmap_free(m);
    /* Extended afterwards: the extension must stay zeros. */
    cr_assert_eq(truncate(upath, SIZE), 0);
    m = load();
    cr_assert_eq(cowmap_limit(m), (uint64_t)(3 * BLK), "the lowered limit was persisted");
    unsigned char b;
    cr_assert_eq(cowmap_read(m, &b, 1, 5 * BLK), 1);
    cr_assert_eq(b, 0);
    cowmap_free(m);
}

Test(cowmap, marking_every_block_drops_the_map)
{
    make_upper();
    struct cowmap *m = load();
    cr_assert_eq(cowmap_truncate(m, 2 * BLK + 7), 0);
    unsigned char x = 'y';
    put(m, &x, 1, 0);
    cr_assert(cowmap_has_map(cowmap_upper_fd(m)));
    put(m, &x, 1, BLK);
    cr_assert(cowmap_has_map(cowmap_upper_fd(m)));
    put(m, &x, 1, 2 * BLK + 3);
    cr_assert(cowmap_complete(m));
    cr_assert_not(cowmap_has_map(cowmap_upper_fd(m)), "the map is gone");
    cr_assert_eq(getxattr(upath, COWMAP_XATTR_SRC, NULL, 0), -1);
    cowmap_free(m);
    cr_assert_eq(try_load(), -ENODATA, "an ordinary file now");
}

Test(cowmap, fill_copies_everything_and_keeps_times)
{
    make_upper();
    struct timespec ts[2] = { { 1000000, 5 }, { 2000000, 7 } };
    cr_assert_eq(utimensat(AT_FDCWD, upath, ts, 0), 0);
    struct cowmap *m = load();
    unsigned char x = 'z';
    put(m, &x, 1, 4 * BLK);
    cr_assert_eq(utimensat(AT_FDCWD, upath, ts, 0), 0);
    cr_assert_eq(cowmap_fill(m), 0);
    cr_assert(cowmap_complete(m));
    cowmap_free(m);
    struct stat st;
    cr_assert_eq(stat(upath, &st), 0);
    cr_assert_eq(st.st_mtim.tv_sec, 2000000);
    cr_assert_eq(st.st_mtim.tv_nsec, 7);
    int fd = open(upath, O_RDONLY | O_CLOEXEC);
    unsigned char *u = malloc((size_t)SIZE);
    cr_assert_eq(read(fd, u, (size_t)SIZE), (ssize_t)SIZE);
    close(fd);
    for (off_t i = 0; i < SIZE; i++)
        if (u[i] != (i == 4 * BLK ? 'z' : lbyte(i)))
            cr_assert_fail("upper byte %lld is 0x%02x", (long long)i, u[i]);
    free(u);
    cr_assert_eq(try_load(), -ENODATA);
}

Test(cowmap, a_changed_lower_is_refused)
{
    make_upper();
    struct timespec ts[2] = { { 0, UTIME_OMIT }, { 12345, 0 } };
    cr_assert_eq(utimensat(AT_FDCWD, lpath, ts, 0), 0);
    cr_assert_eq(try_load(), -ESTALE);
}

Test(cowmap, a_malformed_map_is_refused)
{
    make_upper();
    cr_assert_eq(setxattr(upath, COWMAP_XATTR, "garbage-garbage-garbage-garbage-garbage-garbage!", 48, 0), 0);
    cr_assert_eq(try_load(), -EINVAL);
    cr_assert_eq(removexattr(upath, COWMAP_XATTR), 0);
    cr_assert_eq(try_load(), -ENODATA);
}

static uint64_t rnd_state;
static uint64_t rnd(void)
{
    rnd_state ^= rnd_state << 13;
    rnd_state ^= rnd_state >> 7;
    rnd_state ^= rnd_state << 17;
    return rnd_state;
}

Test(cowmap, random_writes_and_truncates_match_a_model)
{
    make_upper();
    size_t cap = (size_t)SIZE * 2;
    unsigned char *model = calloc(1, cap), *buf = malloc(cap);
    off_t size = SIZE;
    for (off_t i = 0; i < SIZE; i++)
        model[i] = lbyte(i);
    rnd_state = 0x9e3779b97f4a7c15ull;
    struct cowmap *m = load();
    for (int step = 0; step < 400; step++) {
        uint64_t r = rnd() % 100;
        if (r < 8) {
            off_t ns = (off_t)(rnd() % (uint64_t)(cap - BLK));
            cr_assert_eq(cowmap_truncate(m, ns), 0);
            if (ns > size)
                memset(model + size, 0, (size_t)(ns - size));
            size = ns;
        } else if (r < 12 && !cowmap_complete(m)) {
            cowmap_free(m);           /* reload: what persisted must do */
            m = load();
        } else {
            size_t len = 1 + (size_t)(rnd() % (uint64_t)(3 * BLK));
            off_t off = (off_t)(rnd() % (uint64_t)(size + BLK));
            if ((size_t)off + len > cap)
                len = cap - (size_t)off;
            for (size_t i = 0; i < len; i++)
                buf[i] = (unsigned char)rnd();
            put(m, buf, len, off);
            if (off > size)
                memset(model + size, 0, (size_t)(off - size));
            memcpy(model + off, buf, len);
            if (off + (off_t)len > size)
                size = off + (off_t)len;
        }
        cr_assert_eq(upper_size(), size, "step %d", step);
        if (step % 25 == 0 || step == 399)
            check(m, model, 0, (size_t)size);
    }
    cowmap_free(m);
    free(model);
    free(buf);
}

Test(cowmap, after_enough_syncing_fills_the_rest_is_filled_at_once)
{
    make_upper();
    struct cowmap *m = load();
    cowmap_set_fill_after(m, 3);
    unsigned char x = 'q';
    /* Block-covering writes need no sync and do not count. */
    unsigned char *whole = calloc(1, (size_t)BLK);
    put(m, whole, (size_t)BLK, 20 * BLK);
    for (int i = 0; i < 3; i++) {
        put(m, &x, 1, (off_t)(2 * i + 1) * BLK + 7);
        cr_assert_not(cowmap_complete(m), "filled after %d", i + 1);
    }
    put(m, &x, 1, 30 * BLK);
    cr_assert(cowmap_complete(m), "the fourth syncing fill did not fill the file");
    cr_assert_not(cowmap_has_map(cowmap_upper_fd(m)));
    cowmap_free(m);
    int fd = open(upath, O_RDONLY | O_CLOEXEC);
    unsigned char *u = malloc((size_t)SIZE);
    cr_assert_eq(read(fd, u, (size_t)SIZE), (ssize_t)SIZE);
    close(fd);
    for (off_t i = 0; i < SIZE; i++) {
        unsigned char want = lbyte(i);
        if (i >= 20 * BLK && i < 21 * BLK)
            want = 0;
        if (i == BLK + 7 || i == 3 * BLK + 7 || i == 5 * BLK + 7 || i == 30 * BLK)
            want = 'q';
        if (u[i] != want)
            cr_assert_fail("upper byte %lld is 0x%02x, expected 0x%02x", (long long)i, u[i], want);
    }
    free(u);
    free(whole);
}
