/* benchtool.c - the timed inner loops of tests/bench/bench.sh.
 *
 * The loops live in C rather than in the shell so that what is measured is
 * the filesystem and not fork/exec of coreutils: one process, plain system
 * calls, a monotonic clock around exactly the part that is being measured.
 * Each subcommand prints one number on stdout (the unit is in the usage).
 *
 *   benchtool seqread FILE              read FILE start to end, 1 MiB at a time: MB/s
 *   benchtool randread FILE COUNT SEED  COUNT aligned 4 KiB preads:             IOPS
 *   benchtool smallfiles DIR COUNT      create+write 4 KiB+close COUNT files in
 *                                       DIR, then unlink them all:              files/s
 *   benchtool append FILE               open O_APPEND, write 1 byte, close:     seconds
 *   benchtool mktree DIR NDIRS NFILES   build NDIRS dirs of NFILES small files  (untimed)
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define BLK 4096

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void die(const char *what, const char *path)
{
    fprintf(stderr, "benchtool: %s %s: %s\n", what, path ? path : "",
            strerror(errno));
    exit(1);
}

/* Full write that survives short writes (FUSE may return them). */
static void write_all(int fd, const char *buf, size_t len, const char *path)
{
    while (len > 0) {
        ssize_t n = write(fd, buf, len);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            die("write", path);
        }
        buf += n;
        len -= (size_t)n;
    }
}

static int cmd_seqread(const char *path)
{
    size_t bufsz = 1 << 20;
    char *buf = malloc(bufsz);
    if (!buf)
        die("malloc", NULL);
    double t0 = now();
    int fd = open(path, O_RDONLY);
    if (fd < 0)
        die("open", path);
    uint64_t total = 0;
    for (;;) {
        ssize_t n = read(fd, buf, bufsz);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            die("read", path);
        }
        if (n == 0)
            break;
        total += (uint64_t)n;
    }
    close(fd);
    double dt = now() - t0;
    free(buf);
    printf("%.1f\n", (double)total / 1e6 / dt);
    return 0;
}

/* xorshift64*: a fixed, seeded offset sequence, so every filesystem gets the
 * very same reads in the same order. */
static uint64_t rng_next(uint64_t *s)
{
    *s ^= *s >> 12;
    *s ^= *s << 25;
    *s ^= *s >> 27;
    return *s * 0x2545F4914F6CDD1DULL;
}

static int cmd_randread(const char *path, long count, uint64_t seed)
{
    char buf[BLK];
    int fd = open(path, O_RDONLY);
    if (fd < 0)
        die("open", path);
    struct stat st;
    if (fstat(fd, &st) < 0)
        die("fstat", path);
    uint64_t blocks = (uint64_t)st.st_size / BLK;
    if (blocks == 0) {
        errno = EINVAL;
        die("file smaller than one block:", path);
    }
    uint64_t s = seed ? seed : 1;
    double t0 = now();
    for (long i = 0; i < count; i++) {
        off_t off = (off_t)((rng_next(&s) % blocks) * BLK);
        ssize_t n = pread(fd, buf, BLK, off);
        if (n < 0) {
            if (errno == EINTR) {
                i--;
                continue;
            }
            die("pread", path);
        }
    }
    double dt = now() - t0;
    close(fd);
    printf("%.0f\n", (double)count / dt);
    return 0;
}

static int cmd_smallfiles(const char *dir, long count)
{
    char buf[BLK];
    char path[4096];
    memset(buf, 'x', sizeof buf);
    double t0 = now();
    for (long i = 0; i < count; i++) {
        snprintf(path, sizeof path, "%s/f%06ld", dir, i);
        int fd = open(path, O_WRONLY | O_CREAT | O_EXCL, 0644);
        if (fd < 0)
            die("create", path);
        write_all(fd, buf, sizeof buf, path);
        if (close(fd) < 0)
            die("close", path);
    }
    for (long i = 0; i < count; i++) {
        snprintf(path, sizeof path, "%s/f%06ld", dir, i);
        if (unlink(path) < 0)
            die("unlink", path);
    }
    double dt = now() - t0;
    printf("%.0f\n", (double)count / dt);
    return 0;
}

static int cmd_append(const char *path)
{
    double t0 = now();
    int fd = open(path, O_WRONLY | O_APPEND);
    if (fd < 0)
        die("open", path);
    write_all(fd, "x", 1, path);
    if (close(fd) < 0)
        die("close", path);
    printf("%.3f\n", now() - t0);
    return 0;
}

static int cmd_mktree(const char *root, long ndirs, long nfiles)
{
    char path[4096];
    for (long d = 0; d < ndirs; d++) {
        snprintf(path, sizeof path, "%s/d%04ld", root, d);
        if (mkdir(path, 0755) < 0 && errno != EEXIST)
            die("mkdir", path);
        for (long f = 0; f < nfiles; f++) {
            snprintf(path, sizeof path, "%s/d%04ld/f%05ld.txt", root, d, f);
            int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
            if (fd < 0)
                die("create", path);
            char line[64];
            int len = snprintf(line, sizeof line, "file %ld of dir %ld\n", f, d);
            write_all(fd, line, (size_t)len, path);
            close(fd);
        }
    }
    return 0;
}

static void usage(void)
{
    fputs("usage: benchtool seqread FILE | randread FILE COUNT SEED |\n"
          "       smallfiles DIR COUNT | append FILE | mktree DIR NDIRS NFILES\n",
          stderr);
    exit(2);
}

int main(int argc, char **argv)
{
    if (argc < 3)
        usage();
    const char *cmd = argv[1];
    if (strcmp(cmd, "seqread") == 0 && argc == 3)
        return cmd_seqread(argv[2]);
    if (strcmp(cmd, "randread") == 0 && argc == 5)
        return cmd_randread(argv[2], atol(argv[3]),
                            strtoull(argv[4], NULL, 10));
    if (strcmp(cmd, "smallfiles") == 0 && argc == 4)
        return cmd_smallfiles(argv[2], atol(argv[3]));
    if (strcmp(cmd, "append") == 0 && argc == 3)
        return cmd_append(argv[2]);
    if (strcmp(cmd, "mktree") == 0 && argc == 5)
        return cmd_mktree(argv[2], atol(argv[3]), atol(argv[4]));
    usage();
    return 2;
}
