/* noisy_load.c - load generator of the noisy-neighbour benchmark (noisy.sh).
 *
 *   noisy_load seq  SECS JOBS LOWER VIEW FILE...
 *       JOBS threads read whole files from VIEW flat out with 1 MiB reads,
 *       taking the next FILE of the list in turn (wrapping); job j starts
 *       its first file j/JOBS of the way in (see seq_job). Prints
 *       "bytes N", "secs S" and one "sec I BYTES" line per whole second.
 *   noisy_load rand SECS RATE LOWER VIEW FILE...
 *       4 KiB aligned random preads over the FILEs at RATE per second on a
 *       fixed schedule (open loop: a slow read does not lower the offered
 *       rate). Prints "reads N", "p50_us X", "p99_us X", "max_us X", then
 *       one "lat_us X" line per read, in the order they were made (so
 *       several runs' samples can be pooled).
 *
 * Both keep the data cold, so every read costs a device read: after each
 * file (seq) or each read (rand) the pages are dropped with
 * POSIX_FADV_DONTNEED from the view's page cache and from the page cache of
 * the same file in LOWER (FILE names are relative to both). rand also sets
 * POSIX_FADV_RANDOM so no readahead turns a 4 KiB read into a large one.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define MAX_SECS 600
#define CHUNK (1 << 20)

static const char *lower, *view;
static char **files;
static int nfiles;
static double t_start, t_end;
static unsigned njobs;
static uint64_t per_sec[MAX_SECS + 1];   /* bytes finished in each second */

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void die(const char *what, const char *path)
{
    fprintf(stderr, "noisy_load: %s %s: %s\n", what, path, strerror(errno));
    exit(1);
}

static int open_at(const char *dir, const char *rel)
{
    char p[4096];
    snprintf(p, sizeof p, "%s/%s", dir, rel);
    int fd = open(p, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        die("open", p);
    return fd;
}

/* Drops [off, off+len) of rel from both page caches (len 0: all). */
static void evict(int view_fd, const char *rel, off_t off, off_t len)
{
    posix_fadvise(view_fd, off, len, POSIX_FADV_DONTNEED);
    int fd = open_at(lower, rel);
    posix_fadvise(fd, off, len, POSIX_FADV_DONTNEED);
    close(fd);
}

/* Where job j (of njobs) starts its first file: j/njobs of its size,
 * rounded down to a whole read. */
static off_t stagger(int fd, unsigned job)
{
    off_t size = lseek(fd, 0, SEEK_END);
    if (size < 0)
        return -1;
    return size / (off_t)njobs * (off_t)job / CHUNK * CHUNK;
}

/* Job j reads files j, j + jobs, j + 2 jobs, ... (modulo the count): no
 * two jobs read one file at once while there are at least as many files as
 * jobs, so no job is served from the page cache that another job's reads
 * filled (bytes that would never reach the filesystem's daemon). */
static void *seq_job(void *arg)
{
    unsigned job = (unsigned)(uintptr_t)arg;
    char *buf = aligned_alloc(4096, CHUNK);   /* page-aligned, as dd's */
    if (!buf)
        exit(1);
    for (unsigned k = 0; now() < t_end; k++) {
        unsigned i = (job + k * njobs) % (unsigned)nfiles;
        int fd = open_at(view, files[i]);
        /* Job j starts its first file j/JOBS of the way in, so an agent's
         * jobs reach the ends of their files at different times: jobs that
         * all dropped and reopened their files at once left the agent with
         * nothing to read for a moment, and the worst second's fairness
         * index measured that pause, not the filesystem's sharing. */
        if (k == 0 && job && lseek(fd, stagger(fd, job), SEEK_SET) < 0)
            die("lseek", files[i]);
        ssize_t r;
        while (now() < t_end && (r = read(fd, buf, CHUNK)) > 0) {
            double t = now();
            if (t < t_end)
                __atomic_fetch_add(&per_sec[(int)(t - t_start)], (uint64_t)r,
                                   __ATOMIC_RELAXED);
        }
        evict(fd, files[i], 0, 0);
        close(fd);
    }
    free(buf);
    return NULL;
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

static int run_seq(int secs, int jobs)
{
    pthread_t t[64];
    njobs = (unsigned)jobs;
    for (int i = 0; i < jobs; i++)
        if (pthread_create(&t[i], NULL, seq_job, (void *)(uintptr_t)i) != 0)
            return 1;
    for (int i = 0; i < jobs; i++)
        pthread_join(t[i], NULL);
    uint64_t total = 0;
    for (int s = 0; s < secs; s++)
        total += per_sec[s];
    printf("bytes %llu\nsecs %d\n", (unsigned long long)total, secs);
    for (int s = 0; s < secs; s++)
        printf("sec %d %llu\n", s, (unsigned long long)per_sec[s]);
    return 0;
}

static int run_rand(int secs, double rate)
{
    int *fds = calloc((size_t)nfiles, sizeof *fds);
    off_t *blocks = calloc((size_t)nfiles, sizeof *blocks);
    size_t cap = (size_t)(secs * rate) + 16, n = 0;
    double *lat = calloc(cap, sizeof *lat);
    if (!fds || !blocks || !lat)
        return 1;
    for (int i = 0; i < nfiles; i++) {
        fds[i] = open_at(view, files[i]);
        off_t size = lseek(fds[i], 0, SEEK_END);
        blocks[i] = size / 4096;
        if (blocks[i] < 1)
            die("empty file", files[i]);
        posix_fadvise(fds[i], 0, 0, POSIX_FADV_RANDOM);
    }
    char *buf = aligned_alloc(4096, 4096);
    unsigned seed = (unsigned)getpid() ^ (unsigned)time(NULL);
    for (uint64_t k = 0;; k++) {
        double due = t_start + (double)k / rate;
        if (due >= t_end || n == cap)
            break;
        double w = due - now();
        if (w > 0)
            usleep((useconds_t)(w * 1e6));
        int f = rand_r(&seed) % nfiles;
        off_t off = (off_t)(rand_r(&seed) % blocks[f]) * 4096;
        double t0 = now();
        if (pread(fds[f], buf, 4096, off) != 4096)
            die("pread", files[f]);
        lat[n++] = now() - t0;
        evict(fds[f], files[f], off, 4096);
    }
    double *sorted = malloc((n ? n : 1) * sizeof *sorted);
    if (!sorted)
        return 1;
    memcpy(sorted, lat, n * sizeof *lat);
    qsort(sorted, n, sizeof *sorted, cmp_double);
    printf("reads %zu\n", n);
    if (n) {
        printf("p50_us %.0f\n", sorted[(n - 1) / 2] * 1e6);
        printf("p99_us %.0f\n", sorted[(size_t)((double)(n - 1) * 0.99)] * 1e6);
        printf("max_us %.0f\n", sorted[n - 1] * 1e6);
    }
    free(sorted);
    for (size_t i = 0; i < n; i++)
        printf("lat_us %.0f\n", lat[i] * 1e6);
    return 0;
}

int main(int argc, char **argv)
{
    if (argc < 7 || (strcmp(argv[1], "seq") && strcmp(argv[1], "rand"))) {
        fprintf(stderr, "usage: noisy_load seq SECS JOBS LOWER VIEW FILE...\n"
                        "       noisy_load rand SECS RATE LOWER VIEW FILE...\n");
        return 2;
    }
    int secs = atoi(argv[2]);
    if (secs < 1 || secs > MAX_SECS)
        return 2;
    lower = argv[4];
    view = argv[5];
    files = argv + 6;
    nfiles = argc - 6;
    t_start = now();
    t_end = t_start + secs;
    if (!strcmp(argv[1], "seq")) {
        int jobs = atoi(argv[3]);
        return jobs >= 1 && jobs <= 64 ? run_seq(secs, jobs) : 2;
    }
    double rate = atof(argv[3]);
    return rate > 0 ? run_rand(secs, rate) : 2;
}
