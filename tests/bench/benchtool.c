/* benchtool.c - the timed inner loops of tests/bench/bench.sh.
 *
 * The loops live in C rather than in the shell so that what is measured is
 * the filesystem and not fork/exec of coreutils: one process, plain system
 * calls, a monotonic clock around exactly the part that is being measured.
 * Each subcommand prints one number on stdout (the unit is in the usage).
 *
 *   benchtool seqread FILE [OFF LEN]    read FILE start to end (or LEN bytes from
 *                                       OFF), 1 MiB at a time:                  MB/s
 *   benchtool randread FILE COUNT SEED [JOBS]
 *                                       COUNT aligned 4 KiB preads in all, split
 *                                       over JOBS threads (default 1), each with
 *                                       its own descriptor and offsets:         IOPS
 *   benchtool pair randread A B COUNT SEED JOBS SLICES
 *   benchtool pair seqread A B SLICES
 *                                       the same workload on two files (two
 *                                       mounts), in SLICES turns each, taken
 *                                       A B B A A B ...: a disk whose speed
 *                                       drifts slows both alike. Prints the
 *                                       rate of A, then of B (IOPS, MB/s)
 *   benchtool smallfiles DIR COUNT      create+write 4 KiB+close COUNT files in
 *                                       DIR, then unlink them all:              files/s
 *   benchtool append FILE               open O_APPEND, write 1 byte, close:     seconds
 *   benchtool overwrite FILE            open, write 4 KiB of 'x' at the 4 KiB
 *                                       block in the middle, close:             seconds
 *   benchtool mktree DIR NDIRS NFILES   build NDIRS dirs of NFILES small files  (untimed)
 *   benchtool mksrc DIR NDIRS NFILES SEED
 *                                       build a source-like tree: NDIRS dirs
 *                                       two levels deep, NFILES files of mixed
 *                                       sizes spread over them                  (untimed)
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define BLK 4096

/* Every buffer a read lands in is page-aligned, as dd, cp and cat align
 * theirs: on some CPUs (AMD EPYC here) the kernel's copy from the page cache
 * into a buffer 16 bytes off a page, as malloc gives, costs twice the CPU,
 * and that would weigh on whichever system needs the CPU most. */

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

/* Reads up to len bytes (len < 0: to the end) from fd's position, bufsz at
 * a time; the bytes read. */
static uint64_t read_span(int fd, char *buf, size_t bufsz, long long len,
                          const char *path)
{
    uint64_t total = 0;
    for (;;) {
        size_t want = bufsz;
        if (len >= 0) {
            if (total >= (uint64_t)len)
                break;
            if ((uint64_t)len - total < want)
                want = (size_t)((uint64_t)len - total);
        }
        ssize_t n = read(fd, buf, want);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            die("read", path);
        }
        if (n == 0)
            break;
        total += (uint64_t)n;
    }
    return total;
}

#define SEQ_BUF (1u << 20)

/* len < 0: to the end of the file. */
static int cmd_seqread(const char *path, off_t off, long long len)
{
    char *buf = aligned_alloc(4096, SEQ_BUF);
    if (!buf)
        die("malloc", NULL);
    double t0 = now();
    int fd = open(path, O_RDONLY);
    if (fd < 0)
        die("open", path);
    if (off > 0 && lseek(fd, off, SEEK_SET) < 0)
        die("lseek", path);
    uint64_t total = read_span(fd, buf, SEQ_BUF, len, path);
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

struct randjob {
    const char *path;
    long count;
    uint64_t seed;
};

static void *randread_job(void *arg)
{
    struct randjob *j = arg;
    _Alignas(4096) char buf[BLK];
    int fd = open(j->path, O_RDONLY);
    if (fd < 0)
        die("open", j->path);
    struct stat st;
    if (fstat(fd, &st) < 0)
        die("fstat", j->path);
    uint64_t blocks = (uint64_t)st.st_size / BLK;
    if (blocks == 0) {
        errno = EINVAL;
        die("file smaller than one block:", j->path);
    }
    uint64_t s = j->seed ? j->seed : 1;
    for (long i = 0; i < j->count; i++) {
        off_t off = (off_t)((rng_next(&s) % blocks) * BLK);
        ssize_t n = pread(fd, buf, BLK, off);
        if (n < 0) {
            if (errno == EINTR) {
                i--;
                continue;
            }
            die("pread", j->path);
        }
    }
    close(fd);
    return NULL;
}

/* COUNT reads over JOBS threads (checked by the caller); the seconds from
 * the first thread's start to the last one's end. The threads start
 * together, so COUNT over it is the aggregate rate of all jobs. Job k uses
 * seed+k, so one job reads exactly what the single-job run with the same
 * seed reads. */
static double randread_run(const char *path, long count, uint64_t seed, int jobs)
{
    struct randjob job[64];
    pthread_t tid[64];
    double t0 = now();
    for (int k = 0; k < jobs; k++) {
        job[k].path = path;
        job[k].count = count / jobs + (k < count % jobs);
        job[k].seed = seed + (uint64_t)k;
        if (jobs == 1) {
            randread_job(&job[0]);
            break;
        }
        int rc = pthread_create(&tid[k], NULL, randread_job, &job[k]);
        if (rc != 0) {
            errno = rc;
            die("pthread_create", NULL);
        }
    }
    if (jobs > 1)
        for (int k = 0; k < jobs; k++)
            pthread_join(tid[k], NULL);
    return now() - t0;
}

static void check_jobs(const char *path, long count, int jobs)
{
    if (jobs < 1 || jobs > 64 || count < jobs) {
        errno = EINVAL;
        die("bad COUNT or JOBS for", path);
    }
}

static int cmd_randread(const char *path, long count, uint64_t seed, int jobs)
{
    check_jobs(path, count, jobs);
    printf("%.0f\n", (double)count / randread_run(path, count, seed, jobs));
    return 0;
}

/* Turn i goes to A first when i is even: A B, B A, A B, ... so a drift of
 * the disk's speed within two turns falls on both files alike. */
static bool a_first(int turn)
{
    return turn % 2 == 0;
}

/* Each turn reads COUNT/SLICES blocks of each file, at the same offsets in
 * both (seeded per turn), so the two files see the very same reads. */
static int cmd_pair_randread(const char *a, const char *b, long count, uint64_t seed,
                             int jobs, int slices)
{
    long per = slices > 0 ? count / slices : 0;
    if (per < jobs) {
        errno = EINVAL;
        die("COUNT must give each of SLICES turns at least JOBS reads; not so for", a);
    }
    check_jobs(a, per, jobs);
    double ta = 0, tb = 0;
    for (int i = 0; i < slices; i++) {
        uint64_t s = seed + (uint64_t)i * 64;
        if (a_first(i)) {
            ta += randread_run(a, per, s, jobs);
            tb += randread_run(b, per, s, jobs);
        } else {
            tb += randread_run(b, per, s, jobs);
            ta += randread_run(a, per, s, jobs);
        }
    }
    printf("%.0f %.0f\n", (double)(per * slices) / ta, (double)(per * slices) / tb);
    return 0;
}

/* Each file is read start to end through one descriptor (its read-ahead
 * carries on across turns), a SLICES-th of its size per turn. */
static int cmd_pair_seqread(const char *a, const char *b, int slices)
{
    const char *path[2] = { a, b };
    int fd[2];
    struct stat st;
    char *buf = aligned_alloc(4096, SEQ_BUF);
    if (!buf)
        die("malloc", NULL);
    for (int k = 0; k < 2; k++)
        if ((fd[k] = open(path[k], O_RDONLY)) < 0)
            die("open", path[k]);
    if (slices < 1 || fstat(fd[0], &st) < 0) {
        errno = EINVAL;
        die("bad SLICES, or no size of", a);
    }
    long long chunk = (st.st_size + slices - 1) / slices;
    double t[2] = { 0, 0 };
    uint64_t bytes[2] = { 0, 0 };
    for (int i = 0; i < slices; i++) {
        for (int j = 0; j < 2; j++) {
            int k = a_first(i) ? j : 1 - j;
            double t0 = now();
            bytes[k] += read_span(fd[k], buf, SEQ_BUF, chunk, path[k]);
            t[k] += now() - t0;
        }
    }
    close(fd[0]);
    close(fd[1]);
    free(buf);
    printf("%.1f %.1f\n", (double)bytes[0] / 1e6 / t[0], (double)bytes[1] / 1e6 / t[1]);
    return 0;
}

static int cmd_smallfiles(const char *dir, long count)
{
    _Alignas(4096) char buf[BLK];
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
    printf("%.6f\n", now() - t0);
    return 0;
}

/* The first write to a lower file through an overlay is where it pays for
 * copy-up; the 4 KiB block in the middle of the file is far from both ends. */
static int cmd_overwrite(const char *path)
{
    _Alignas(4096) char buf[BLK];
    memset(buf, 'x', sizeof buf);
    double t0 = now();
    int fd = open(path, O_WRONLY);
    if (fd < 0)
        die("open", path);
    struct stat st;
    if (fstat(fd, &st) < 0)
        die("fstat", path);
    off_t off = (off_t)((st.st_size / 2) / BLK * BLK);
    size_t done = 0;
    while (done < sizeof buf) {
        ssize_t n = pwrite(fd, buf + done, sizeof buf - done, off + (off_t)done);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            die("pwrite", path);
        }
        done += (size_t)n;
    }
    if (close(fd) < 0)
        die("close", path);
    printf("%.6f\n", now() - t0);
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

/* A source-like tree, the same for a given seed: NDIRS directories, about a
 * tenth of them at the top and the rest one level below, and NFILES files of
 * source-like names spread over them. Sizes are mostly small: half under
 * 4 KiB, 30% 4-16 KiB, 15% 16-64 KiB, 5% up to 256 KiB (about 18 KiB on
 * average), as in a source checkout.
 * The content is printable text, so the tree is what tar would pack of a
 * real one. */
static int cmd_mksrc(const char *root, long ndirs, long nfiles, uint64_t seed)
{
    static const char *const ext[] = {".c", ".h", ".c", ".h", ".py", ".md",
                                      ".txt", ".json", ".sh", ".rs"};
    char path[4096];
    long ntop = ndirs / 10 > 0 ? ndirs / 10 : 1;
    uint64_t s = seed ? seed : 1;
    char *buf = malloc(256 * 1024);
    if (!buf)
        die("malloc", NULL);
    for (size_t i = 0; i < 256 * 1024; i++) {
        uint64_t r = rng_next(&s) % 64;
        buf[i] = r < 10 ? ' ' : r == 10 ? '\n' : (char)('a' + r % 26);
    }
    for (long d = 0; d < ndirs; d++) {
        if (d < ntop)
            snprintf(path, sizeof path, "%s/mod%03ld", root, d);
        else
            snprintf(path, sizeof path, "%s/mod%03ld/sub%03ld", root, d % ntop, d);
        if (mkdir(path, 0755) < 0 && errno != EEXIST)
            die("mkdir", path);
    }
    for (long f = 0; f < nfiles; f++) {
        long d = f % ndirs;
        uint64_t r = rng_next(&s);
        size_t size;
        switch (r % 20) {
        case 0: case 1: case 2: case 3: case 4: case 5: case 6: case 7: case 8: case 9:
            size = 200 + (size_t)(r >> 8) % 3900; break;          /* < 4 KiB */
        case 10: case 11: case 12: case 13: case 14: case 15:
            size = 4096 + (size_t)(r >> 8) % (12 * 1024); break;  /* 4-16 KiB */
        case 16: case 17: case 18:
            size = 16384 + (size_t)(r >> 8) % (48 * 1024); break; /* 16-64 KiB */
        default:
            size = 65536 + (size_t)(r >> 8) % (192 * 1024); break; /* 64-256 KiB */
        }
        if (d < ntop)
            snprintf(path, sizeof path, "%s/mod%03ld/file%05ld%s", root, d, f,
                     ext[(r >> 4) % 10]);
        else
            snprintf(path, sizeof path, "%s/mod%03ld/sub%03ld/file%05ld%s", root,
                     d % ntop, d, f, ext[(r >> 4) % 10]);
        int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
        if (fd < 0)
            die("create", path);
        size_t start = (size_t)(r >> 20) % (256 * 1024 - size + 1);
        write_all(fd, buf + start, size, path);
        close(fd);
    }
    free(buf);
    return 0;
}

static void usage(void)
{
    fputs("usage: benchtool seqread FILE [OFF LEN] | randread FILE COUNT SEED [JOBS] |\n"
          "       pair randread A B COUNT SEED JOBS SLICES | pair seqread A B SLICES |\n"
          "       smallfiles DIR COUNT | append FILE | overwrite FILE |\n"
          "       mktree DIR NDIRS NFILES | mksrc DIR NDIRS NFILES SEED\n",
          stderr);
    exit(2);
}

int main(int argc, char **argv)
{
    if (argc < 3)
        usage();
    const char *cmd = argv[1];
    if (strcmp(cmd, "seqread") == 0 && argc == 3)
        return cmd_seqread(argv[2], 0, -1);
    if (strcmp(cmd, "seqread") == 0 && argc == 5)
        return cmd_seqread(argv[2], (off_t)atoll(argv[3]), atoll(argv[4]));
    if (strcmp(cmd, "randread") == 0 && (argc == 5 || argc == 6))
        return cmd_randread(argv[2], atol(argv[3]), strtoull(argv[4], NULL, 10),
                            argc == 6 ? atoi(argv[5]) : 1);
    if (strcmp(cmd, "pair") == 0 && argc == 9 && strcmp(argv[2], "randread") == 0)
        return cmd_pair_randread(argv[3], argv[4], atol(argv[5]),
                                 strtoull(argv[6], NULL, 10), atoi(argv[7]), atoi(argv[8]));
    if (strcmp(cmd, "pair") == 0 && argc == 6 && strcmp(argv[2], "seqread") == 0)
        return cmd_pair_seqread(argv[3], argv[4], atoi(argv[5]));
    if (strcmp(cmd, "smallfiles") == 0 && argc == 4)
        return cmd_smallfiles(argv[2], atol(argv[3]));
    if (strcmp(cmd, "append") == 0 && argc == 3)
        return cmd_append(argv[2]);
    if (strcmp(cmd, "overwrite") == 0 && argc == 3)
        return cmd_overwrite(argv[2]);
    if (strcmp(cmd, "mksrc") == 0 && argc == 6)
        return cmd_mksrc(argv[2], atol(argv[3]), atol(argv[4]),
                         strtoull(argv[5], NULL, 10));
    if (strcmp(cmd, "mktree") == 0 && argc == 5)
        return cmd_mktree(argv[2], atol(argv[3]), atol(argv[4]));
    usage();
    return 2;
}
