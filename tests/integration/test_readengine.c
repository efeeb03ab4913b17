/* test_readengine.c - reads of shared data (lower and shared layer) through
 * the io_uring read engine: the bytes are right, status counts them and
 * shows the shaping, `lanefs agent set` changes it live and refuses bad
 * values, a throttled agent still finishes and its metadata operations still
 * answer, and an unmount while reads are queued ends cleanly.
 *
 * Reads go through the engine only when the kernel asks the daemon, so the
 * tests drop the page cache before reading (system wide: harmless to the
 * other tests, which only get slower). */
#include "harness.h"

#include <cJSON.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define TEST_R(name) Test(readengine, name, .init = h_setup, .fini = h_teardown, \
                          .timeout = H_TIMEOUT)

#define MIB (1024 * 1024)

/* ---- helpers ----------------------------------------------------------- */

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* Deterministic content: byte i of a file with seed s. Not periodic over any
 * power of two, so a read from a wrong offset shows. */
static void fill(unsigned char *buf, size_t len, uint32_t seed)
{
    uint64_t x = 0x9e3779b97f4a7c15ULL ^ seed;
    for (size_t i = 0; i < len; i++) {
        x ^= x << 13; x ^= x >> 7; x ^= x << 17;
        buf[i] = (unsigned char)(x >> 24);
    }
}

/* FNV-1a 64: a checksum to name in messages. */
static uint64_t fnv(const unsigned char *p, size_t n)
{
    uint64_t h = 0xcbf29ce484222325ULL;
    for (size_t i = 0; i < n; i++)
        h = (h ^ p[i]) * 0x100000001b3ULL;
    return h;
}

static unsigned char *make_file(const char *path, size_t len, uint32_t seed)
{
    unsigned char *buf = malloc(len ? len : 1);
    cr_assert_not_null(buf);
    fill(buf, len, seed);
    h_put_bytes(path, buf, len, 0644);
    return buf;
}

static void drop_caches(void)
{
    sync();
    int fd = open("/proc/sys/vm/drop_caches", O_WRONLY | O_CLOEXEC);
    cr_assert(fd >= 0, "cannot open drop_caches: %s", strerror(errno));
    cr_assert_eq(write(fd, "3\n", 2), 2);
    close(fd);
}

/* Reads the whole file with large read() calls into a fresh buffer. */
static unsigned char *read_all(const char *path, size_t *len)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    cr_assert(fd >= 0, "open %s: %s", path, strerror(errno));
    size_t cap = 8 * MIB + 1, n = 0;
    unsigned char *buf = malloc(cap);
    cr_assert_not_null(buf);
    for (;;) {
        ssize_t r = read(fd, buf + n, cap - n);
        cr_assert(r >= 0, "read %s at %zu: %s", path, n, strerror(errno));
        if (r == 0)
            break;
        n += (size_t)r;
        cr_assert(n < cap, "%s is larger than expected", path);
    }
    close(fd);
    *len = n;
    return buf;
}

static void check_whole(const char *path, const unsigned char *want, size_t len)
{
    size_t got_len;
    unsigned char *got = read_all(path, &got_len);
    cr_assert_eq(got_len, len, "%s: read %zu bytes, want %zu", path, got_len, len);
    cr_assert(memcmp(got, want, len) == 0,
              "%s: checksum %016llx, want %016llx", path,
              (unsigned long long)fnv(got, len), (unsigned long long)fnv(want, len));
    free(got);
}

/* count random preads (offsets and lengths, some past the end). */
static void check_preads(const char *path, const unsigned char *want, size_t len,
                         int count, unsigned seed)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    cr_assert(fd >= 0, "open %s: %s", path, strerror(errno));
    static unsigned char buf[300 * 1024];
    srand(seed);
    for (int i = 0; i < count; i++) {
        size_t off = len ? (size_t)rand() % (len + 100) : 0;
        size_t n = (size_t)rand() % sizeof buf;
        if (i % 4 == 0)
            n = 4096, off &= ~(size_t)4095;
        ssize_t r = pread(fd, buf, n, (off_t)off);
        size_t exp = off >= len ? 0 : (len - off < n ? len - off : n);
        cr_assert(r >= 0, "pread %s %zu@%zu: %s", path, n, off, strerror(errno));
        cr_assert_eq((size_t)r, exp, "pread %s %zu@%zu returned %zd, want %zu",
                     path, n, off, r, exp);
        cr_assert(memcmp(buf, want + (exp ? off : 0), exp) == 0,
                  "pread %s %zu@%zu: checksum %016llx, want %016llx", path, n, off,
                  (unsigned long long)fnv(buf, exp),
                  (unsigned long long)fnv(want + (exp ? off : 0), exp));
    }
    close(fd);
}

/* Mounts agent with extra `lanefs mount` options (NULL-terminated, at most
 * 8), registered with the harness so teardown unmounts it. */
static const char *mount_opts(const char *agent, ...)
{
    cr_assert(H.n_mounts < H_MAX_MOUNTS);
    struct h_mount *m = &H.mounts[H.n_mounts++];
    snprintf(m->agent, sizeof m->agent, "%s", agent);
    m->mnt = (char *)h_mnt(agent);
    h_mkdir_p(m->mnt, 0755);
    char *o[8] = { NULL };
    va_list ap;
    va_start(ap, agent);
    for (int i = 0; i < 8; i++)
        if (!(o[i] = va_arg(ap, char *)))
            break;
    va_end(ap);
    struct h_res r;
    h_lanefs(&r, NULL, "mount", H.state, "--agent", agent, m->mnt,
             o[0], o[1], o[2], o[3], o[4], o[5], o[6], o[7], (char *)NULL);
    cr_assert_eq(r.code, 0, "lanefs mount --agent %s failed (exit %d): %s",
                 agent, r.code, r.err);
    cr_assert(h_wait_mount(m->mnt, true, H_MOUNT_WAIT_MS));
    m->live = true;
    return m->mnt;
}

/* "read".FIELD of agent in status st, or -1 when it is not there. */
static double read_field_of(cJSON *st, const char *agent, const char *field)
{
    cJSON *f = cJSON_GetObjectItemCaseSensitive(
        cJSON_GetObjectItemCaseSensitive(h_status_agent(st, agent), "read"), field);
    return cJSON_IsNumber(f) ? f->valuedouble : -1;
}

/* "read".FIELD of agent in a fresh status, or -1 when it is not there. */
static double read_field(const char *agent, const char *field)
{
    cJSON *st = h_status();
    double v = read_field_of(st, agent, field);
    cJSON_Delete(st);
    return v;
}

static void assert_read(const char *agent, const char *field, double want)
{
    double got = read_field(agent, field);
    cr_assert(got == want, "agent %s: read.%s is %.0f, want %.0f", agent, field, got, want);
}

/* ---- data --------------------------------------------------------------- */

TEST_R(data_read_through_the_engine_is_right)
{
    static const size_t sizes[] = { 0, 1, 4095, 4096, 4097, 131072 + 3,
                                    1 * MIB + 7, 5 * MIB };
    enum { N = sizeof sizes / sizeof sizes[0] };
    unsigned char *want[N];
    h_mkdir_p(h_str("%s/d", H.lower), 0755);
    h_mkdir_p(h_str("%s/out", H.lower), 0777);
    for (int i = 0; i < N; i++)
        want[i] = make_file(h_str("%s/d/f%d", H.lower, i), sizes[i], (uint32_t)i + 1);
    h_init("--shared", "out", (char *)NULL);
    const char *a = h_mount("a");
    const char *b = h_mount("b");
    /* A shared-layer file written by another agent. */
    size_t slen = 3 * MIB + 333;
    unsigned char *swant = make_file(h_str("%s/out/s.bin", b), slen, 99);

    /* Cold random preads first, then whole reads after another drop: each
     * pattern must reach the daemon rather than the page cache. */
    drop_caches();
    for (int i = 0; i < N; i++)
        check_preads(h_str("%s/d/f%d", a, i), want[i], sizes[i], 60, (unsigned)i);
    check_preads(h_str("%s/out/s.bin", a), swant, slen, 200, 7);
    drop_caches();
    for (int i = 0; i < N; i++)
        check_whole(h_str("%s/d/f%d", a, i), want[i], sizes[i]);
    check_whole(h_str("%s/out/s.bin", a), swant, slen);
    /* The other agent sees the same bytes of the lower too. */
    drop_caches();
    check_whole(h_str("%s/d/f%d", b, N - 1), want[N - 1], sizes[N - 1]);
    /* a's reads of shared data are all counted: those the engine read and
     * those answered from the page cache at once. (Which path a read takes
     * depends on timing: the layer file's readahead makes later reads of a
     * stream page-cache hits when it finishes first.) */
    double bytes = read_field("a", "bytes"), cached = read_field("a", "cached_bytes");
    cr_assert(bytes >= (double)(5 * MIB + slen),
              "agent a: read.bytes %.0f (cached_bytes %.0f) after reading more than "
              "%zu shared bytes", bytes, cached, 5 * MIB + slen);
    cr_assert(cached >= 0 && cached <= bytes, "agent a: read.cached_bytes %.0f of %.0f",
              cached, bytes);
    for (int i = 0; i < N; i++)
        free(want[i]);
    free(swant);
}

/* ---- status and live control --------------------------------------------- */

/* The volume-wide read cap: set at init, shown by status, changed live
 * (also kept in volume.conf) and without a daemon; bad values refused.
 * Whether it holds the rate is measured by the noisy-neighbour benchmark,
 * not here (no timing in pass/fail tests). */
static double status_volume_rate(void)
{
    cJSON *st = h_status();
    cJSON *v = cJSON_GetObjectItemCaseSensitive(st, "volume_read_rate");
    double r = cJSON_IsNumber(v) ? v->valuedouble : -1;
    cJSON_Delete(st);
    return r;
}

/* `lanefs init` with option set to a bad value: refused (exit 2), with a
 * message that starts with want. */
static void init_refuses(const char *option, const char *value, const char *want)
{
    struct h_res r;
    cr_assert_eq(h_lanefs(&r, NULL, "init", H.state, "--lower", H.lower, option, value,
                          (char *)NULL), 2, "init took %s %s", option, value);
    cr_assert(strstr(r.err, want), "message: %s", r.err);
}

static const char *status_human(void)
{
    struct h_res r;
    cr_assert_eq(h_lanefs(&r, NULL, "status", H.state, (char *)NULL), 0, "status: %s", r.err);
    return h_str("%s", r.out);
}

TEST_R(volume_read_rate_at_init_live_and_refused)
{
    struct h_res r;
    const char *conf = h_str("%s/volume.conf", H.state);

    init_refuses("--volume-read-rate", "12Q", "bad --volume-read-rate '12Q'");
    unsigned char *want = make_file(h_str("%s/big", H.lower), 6 * MIB, 11);
    h_init("--volume-read-rate", "50M", (char *)NULL);
    cr_assert(strstr(h_get(conf), "volume_read_rate = 52428800\n"), "volume.conf: %s",
              h_get(conf));
    const char *a = h_mount("a");
    cr_assert(status_volume_rate() == 50.0 * MIB, "status volume_read_rate %.0f",
              status_volume_rate());
    cr_assert(strstr(status_human(), "volume read cap: 50M/s"), "status: %s", status_human());

    /* Live, with a human size; kept for the next daemon. */
    cr_assert_eq(h_lanefs(&r, NULL, "volume", "set", H.state, "--volume-read-rate", "1.5G",
                          (char *)NULL), 0, "volume set: %s", r.err);
    cr_assert(status_volume_rate() == 1.5 * 1024 * MIB, "status volume_read_rate %.0f",
              status_volume_rate());
    cr_assert(strstr(h_get(conf), "volume_read_rate = 1610612736\n"), "volume.conf: %s",
              h_get(conf));

    /* Reads under a cap are whole and right. */
    cr_assert_eq(h_lanefs(&r, NULL, "volume", "set", H.state, "--volume-read-rate", "8M",
                          (char *)NULL), 0, "volume set: %s", r.err);
    drop_caches();
    check_whole(h_str("%s/big", a), want, 6 * MIB);

    /* Refusals leave the cap as it was. */
    const char *bad[] = { "-5M", "1.5", "12Q", "", "1.5.2", "18446744073709551616" };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        cr_assert_eq(h_lanefs(&r, NULL, "volume", "set", H.state, "--volume-read-rate",
                              bad[i], (char *)NULL), 2, "volume set took '%s'", bad[i]);
        cr_assert(strstr(r.err, "bad --volume-read-rate"), "message for '%s': %s", bad[i],
                  r.err);
    }
    cr_assert_eq(h_lanefs(&r, NULL, "volume", "set", H.state, (char *)NULL), 2);
    cr_assert(strstr(r.err, "--volume-read-rate"), "message: %s", r.err);
    cr_assert(status_volume_rate() == 8.0 * MIB, "status volume_read_rate %.0f",
              status_volume_rate());

    /* 0 removes the cap. */
    cr_assert_eq(h_lanefs(&r, NULL, "volume", "set", H.state, "--volume-read-rate", "0",
                          (char *)NULL), 0, "volume set: %s", r.err);
    cr_assert(status_volume_rate() == 0, "status volume_read_rate %.0f", status_volume_rate());
    cr_assert(strstr(status_human(), "volume read cap: none"), "status: %s", status_human());

    /* Without a daemon the setting goes to volume.conf for the next one. */
    h_umount("a");
    cr_assert_eq(h_lanefs(&r, NULL, "volume", "set", H.state, "--volume-read-rate", "20M",
                          (char *)NULL), 0, "volume set without a daemon: %s", r.err);
    cr_assert(strstr(h_get(conf), "volume_read_rate = 20971520\n"), "volume.conf: %s",
              h_get(conf));
    h_mount("a");
    cr_assert(status_volume_rate() == 20.0 * MIB, "status volume_read_rate %.0f",
              status_volume_rate());
    free(want);
}

TEST_R(status_counts_reads_and_shows_mount_limits)
{
    unsigned char *want = make_file(h_str("%s/big", H.lower), 5 * MIB, 5);
    h_init(NULL);
    const char *a = mount_opts("a", "--weight", "300", "--read-rate", "50M",
                               "--read-iops", "1000", "--read-reserve", "10M",
                               (char *)NULL);
    h_mount("b");
    assert_read("a", "weight", 300);
    assert_read("a", "rate_limit", 50.0 * MIB);
    assert_read("a", "iops_limit", 1000);
    assert_read("a", "reserve", 10.0 * MIB);
    assert_read("b", "weight", 100);
    assert_read("b", "rate_limit", 0);
    assert_read("b", "iops_limit", 0);
    assert_read("b", "reserve", 0);

    double bytes0 = read_field("a", "bytes"), reads0 = read_field("a", "reads");
    cr_assert(bytes0 >= 0 && reads0 >= 0, "status has no read.bytes/read.reads for a");
    drop_caches();
    check_whole(h_str("%s/big", a), want, 5 * MIB);
    double bytes1 = read_field("a", "bytes"), reads1 = read_field("a", "reads");
    cr_assert(bytes1 - bytes0 >= 5.0 * MIB, "read.bytes grew by %.0f for a 5 MiB read",
              bytes1 - bytes0);
    cr_assert(reads1 > reads0 && reads1 > 0, "read.reads %.0f -> %.0f", reads0, reads1);
    /* b read nothing. */
    cr_assert(read_field("b", "bytes") == 0, "b: read.bytes %.0f", read_field("b", "bytes"));
    cr_assert(read_field("a", "depth") >= 0 && read_field("a", "queued_ms") >= 0 &&
              read_field("a", "rate") >= 0, "status lacks depth/queued_ms/rate");
    free(want);
}

TEST_R(agent_set_changes_shaping_live_and_refuses_bad_values)
{
    h_init(NULL);
    h_mount("a");
    struct h_res r;
    cr_assert_eq(h_lanefs(&r, NULL, "agent", "set", H.state, "a", "--weight", "500",
                          "--read-rate", "2M", "--read-iops", "300", (char *)NULL), 0,
                 "agent set: %s", r.err);
    assert_read("a", "weight", 500);
    assert_read("a", "rate_limit", 2.0 * MIB);
    assert_read("a", "iops_limit", 300);
    /* Only the options given change; 0 removes a limit. */
    cr_assert_eq(h_lanefs(&r, NULL, "agent", "set", H.state, "a", "--read-rate", "0",
                          "--read-reserve", "1.5M", (char *)NULL), 0, "%s", r.err);
    assert_read("a", "weight", 500);
    assert_read("a", "rate_limit", 0);
    assert_read("a", "iops_limit", 300);
    assert_read("a", "reserve", 1.5 * MIB);

    static const char *bad[][2] = {
        { "--weight", "0" }, { "--weight", "20000" }, { "--read-rate", "12Q" },
        { "--read-iops", "-1" }, { "--read-rate", "1.5" },
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        int code = h_lanefs(&r, NULL, "agent", "set", H.state, "a",
                            bad[i][0], bad[i][1], (char *)NULL);
        cr_assert_eq(code, 2, "agent set %s %s: exit %d, want 2 (%s)",
                     bad[i][0], bad[i][1], code, r.err);
        cr_assert(strncmp(r.err, "lanefs: ", 8) == 0, "message: %s", r.err);
    }
    /* Refused values changed nothing. */
    assert_read("a", "weight", 500);
    assert_read("a", "rate_limit", 0);
    cr_assert_eq(h_lanefs(&r, NULL, "agent", "set", H.state, "a", (char *)NULL), 2,
                 "agent set without options: %s", r.err);
    cr_assert_eq(h_lanefs(&r, NULL, "agent", "set", H.state, "nobody", "--weight", "5",
                          (char *)NULL), 1, "unknown agent: exit %d (%s)", r.code, r.err);
    cr_assert(strstr(r.err, "nobody"), "the message names the agent: %s", r.err);
}

/* ---- throttling ---------------------------------------------------------- */

struct reader {
    const char *path;
    const unsigned char *want;
    size_t len;
    double secs;
    bool ok;
};

static void *reader_main(void *arg)
{
    struct reader *rd = arg;
    double t0 = now_s();
    int fd = open(rd->path, O_RDONLY | O_CLOEXEC);
    unsigned char *buf = malloc(rd->len + 1);
    size_t n = 0;
    if (fd >= 0 && buf) {
        ssize_t r;
        while ((r = read(fd, buf + n, rd->len + 1 - n)) > 0)
            n += (size_t)r;
        rd->ok = r == 0 && n == rd->len && memcmp(buf, rd->want, n) == 0;
    }
    if (fd >= 0)
        close(fd);
    free(buf);
    rd->secs = now_s() - t0;
    __atomic_store_n(&rd->path, NULL, __ATOMIC_RELEASE);   /* done */
    return NULL;
}

TEST_R(throttled_agent_finishes_and_its_metadata_answers)
{
    h_mkdir_p(h_str("%s/dir", H.lower), 0755);
    for (int i = 0; i < 20; i++)
        h_put(h_str("%s/dir/e%02d", H.lower, i), "x", 0644);
    unsigned char *want = make_file(h_str("%s/big", H.lower), 3 * MIB, 3);
    h_init(NULL);
    const char *a = mount_opts("a", "--read-rate", "1M", (char *)NULL);
    drop_caches();
    struct reader rd = { .path = h_str("%s/big", a), .want = want, .len = 3 * MIB };
    pthread_t t;
    cr_assert_eq(pthread_create(&t, NULL, reader_main, &rd), 0);

    /* While the read is throttled: stat and ls of the same agent answer. A
     * metadata operation is no shared-data read, so it must not wait for
     * the read bucket; 5 s is a bound only a blocked worker would exceed. */
    int probes = 0;
    double worst = 0;
    while (__atomic_load_n(&rd.path, __ATOMIC_ACQUIRE) != NULL) {
        double t0 = now_s();
        struct stat st;
        cr_assert_eq(h_lstat(h_str("%s/dir/e%02d", a, probes % 20), &st), 0);
        cr_assert_eq(h_lstat(h_str("%s/big", a), &st), 0);
        cr_assert_eq(st.st_size, 3 * MIB);
        char *ls = h_ls(h_str("%s/dir", a));
        cr_assert(strncmp(ls, "e00 e01", 7) == 0, "ls: %s", ls);
        double dt = now_s() - t0;
        worst = dt > worst ? dt : worst;
        cr_assert(dt < 5.0, "stat+ls took %.2f s while the agent was throttled", dt);
        probes++;
        usleep(50 * 1000);
    }
    pthread_join(t, NULL);
    cr_assert(rd.ok, "the throttled read of 3 MiB returned wrong data");
    /* 3 MiB at 1 MiB/s with a burst of about one second takes about 2 s;
     * under 1 s would mean the limit was not applied, over 60 s a stall. */
    cr_assert(rd.secs >= 1.0 && rd.secs < 60.0, "3 MiB at --read-rate 1M took %.2f s",
              rd.secs);
    cr_assert(probes >= 5, "only %d metadata probes ran during the read", probes);
    cr_assert(read_field("a", "queued_ms") > 0, "a throttled agent shows no queued_ms");
    cr_log_info("3 MiB at 1M/s: %.2f s; %d stat+ls probes meanwhile, slowest %.3f s",
                rd.secs, probes, worst);
    free(want);
}

/* ---- unmount with reads queued -------------------------------------------- */

/* A child process with 4 threads reading disjoint quarters of path; exits
 * 0 when all data came back right, 1 when a read failed or was wrong. */
struct quarter { const char *path; const unsigned char *want; size_t off, len; int bad; };

static void *quarter_main(void *arg)
{
    struct quarter *q = arg;
    int fd = open(q->path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) { q->bad = 1; return NULL; }
    unsigned char buf[128 * 1024];
    for (size_t done = 0; done < q->len;) {
        size_t n = q->len - done < sizeof buf ? q->len - done : sizeof buf;
        ssize_t r = pread(fd, buf, n, (off_t)(q->off + done));
        if (r <= 0 || memcmp(buf, q->want + q->off + done, (size_t)r) != 0) {
            q->bad = 1;
            break;
        }
        done += (size_t)r;
    }
    close(fd);
    return NULL;
}

static pid_t spawn_readers(const char *path, const unsigned char *want, size_t len)
{
    pid_t pid = fork();
    cr_assert(pid >= 0);
    if (pid > 0)
        return pid;
    struct quarter q[4];
    pthread_t t[4];
    for (int i = 0; i < 4; i++) {
        q[i] = (struct quarter){ path, want, len / 4 * (size_t)i, len / 4, 0 };
        if (pthread_create(&t[i], NULL, quarter_main, &q[i]) != 0)
            _exit(3);
    }
    int bad = 0;
    for (int i = 0; i < 4; i++) {
        pthread_join(t[i], NULL);
        bad |= q[i].bad;
    }
    _exit(bad);
}

/* Waits up to ms for child pid; its exit status, or -1 on timeout. */
static int wait_child(pid_t pid, int ms)
{
    for (int i = 0; i < ms / 20; i++) {
        int st;
        if (waitpid(pid, &st, WNOHANG) == pid)
            return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
        usleep(20 * 1000);
    }
    return -1;
}

/* Polls status until agent has reads queued in the engine. */
static bool wait_queued(const char *agent, int ms)
{
    for (int i = 0; i < ms / 100; i++) {
        if (read_field(agent, "depth") > 0)
            return true;
        usleep(100 * 1000);
    }
    return false;
}

TEST_R(lazy_umount_with_reads_queued_ends_cleanly)
{
    unsigned char *want = make_file(h_str("%s/big", H.lower), 5 * MIB, 11);
    h_init(NULL);
    const char *a = mount_opts("a", "--read-rate", "256K", (char *)NULL);
    pid_t dpid = h_daemon_pid();
    drop_caches();
    pid_t child = spawn_readers(h_str("%s/big", a), want, 5 * MIB);
    bool queued = wait_queued("a", 10000);
    if (!queued)
        kill(child, SIGKILL);
    cr_assert(queued, "no reads of the throttled agent ever showed as queued");
    struct h_res r;
    cr_assert_eq(h_lanefs(&r, NULL, "umount", "--lazy", a, (char *)NULL), 0,
                 "umount --lazy with reads queued: exit %d (%s)", r.code, r.err);
    h_forget_mount("a");
    cr_assert(h_wait_mount(a, false, H_MOUNT_WAIT_MS), "%s is still mounted", a);
    /* The queued reads are still answered (the files are open, so the
     * session goes on until they close): 5 MiB at 256 KiB/s is about 20 s. */
    int code = wait_child(child, 120000);
    if (code < 0)
        kill(child, SIGKILL), waitpid(child, NULL, 0);
    cr_assert_neq(code, -1, "readers still blocked 120 s after a lazy umount");
    cr_assert_eq(code, 0, "readers across the lazy umount failed (status %d)", code);
    /* Then the session ends and the daemon, whose last it was, exits. */
    cr_assert(h_wait_pid_gone(dpid, 30000), "daemon %d did not exit after the last "
              "file of its last session closed", (int)dpid);
    free(want);
}

TEST_R(daemon_shutdown_with_reads_queued_ends_cleanly)
{
    unsigned char *want = make_file(h_str("%s/big", H.lower), 5 * MIB, 12);
    h_init(NULL);
    const char *a = mount_opts("a", "--read-rate", "64K", (char *)NULL);
    h_mount("b");
    pid_t dpid = h_daemon_pid();
    drop_caches();
    pid_t child = spawn_readers(h_str("%s/big", a), want, 5 * MIB);
    bool queued = wait_queued("a", 10000);
    if (!queued)
        kill(child, SIGKILL);
    cr_assert(queued, "no reads of the throttled agent ever showed as queued");
    /* SIGTERM ends every session and unmounts every agent; the queued reads
     * (80 s of them at 64 KiB/s) must be answered or failed, not left. */
    cr_assert_eq(kill(dpid, SIGTERM), 0);
    bool gone = h_wait_pid_gone(dpid, 60000);
    int code = wait_child(child, gone ? 60000 : 1000);
    if (code < 0)
        kill(child, SIGKILL), waitpid(child, NULL, 0);
    cr_assert(gone, "daemon %d still runs 60 s after SIGTERM with reads queued", (int)dpid);
    cr_assert_neq(code, -1, "readers still blocked 60 s after the daemon exited");
    cr_assert(h_wait_mount(a, false, H_MOUNT_WAIT_MS), "%s is still mounted", a);
    cr_assert(h_wait_mount(h_mnt("b"), false, H_MOUNT_WAIT_MS));
    h_forget_mount("a");
    h_forget_mount("b");
    free(want);
}

/* A read the page cache holds is answered at once for a lone agent with no
 * limits, unless a volume-wide cap is set: then it counts against the cap
 * like any other, so it goes through the scheduler. */
TEST_R(volume_cap_schedules_cached_reads_too)
{
    struct h_res r;
    unsigned char *c1 = make_file(h_str("%s/c1", H.lower), 4 * MIB, 21);
    unsigned char *c2 = make_file(h_str("%s/c2", H.lower), 4 * MIB, 22);
    h_init((char *)NULL);
    const char *a = h_mount("a");
    size_t len;

    /* No cap: the lower's pages are cached (read on the host), the mount's
     * are not, so the daemon gets the reads and answers them at once. */
    drop_caches();
    free(read_all(h_str("%s/c1", H.lower), &len));
    check_whole(h_str("%s/c1", a), c1, 4 * MIB);
    double before = read_field("a", "cached_reads");
    cr_assert(before > 0, "no read was answered from the cache without a cap");

    cr_assert_eq(h_lanefs(&r, NULL, "volume", "set", H.state, "--volume-read-rate", "1G",
                          (char *)NULL), 0, "volume set: %s", r.err);
    free(read_all(h_str("%s/c2", H.lower), &len));
    check_whole(h_str("%s/c2", a), c2, 4 * MIB);
    cr_assert(read_field("a", "cached_reads") == before,
              "under a volume cap %.0f reads skipped the scheduler",
              read_field("a", "cached_reads") - before);
    free(c1);
    free(c2);
}

/* ---- a lone agent: reads on the workers' own rings ------------------------ */

/* An agent's reads so far (*all) and those of the engine's scheduler
 * (*sched: all but those answered at once from the page cache and those a
 * worker read on its own ring), from one status. */
static void read_counts(const char *agent, double *all, double *sched)
{
    cJSON *st = h_status();
    *all = read_field_of(st, agent, "reads");
    *sched = *all - read_field_of(st, agent, "cached_reads") -
             read_field_of(st, agent, "direct_reads");
    cJSON_Delete(st);
}

static double scheduled_reads(const char *agent)
{
    double all, sched;
    read_counts(agent, &all, &sched);
    return sched;
}

/* An agent with no limits that reads alone needs no scheduling: its reads
 * go to the workers' own rings (no hand-off to the engine thread); the
 * bytes are the same as through the engine. */
TEST_R(lone_agent_reads_on_worker_rings_are_right)
{
    static const size_t sizes[] = { 0, 1, 4095, 4097, 131072 + 3, 1 * MIB + 7, 5 * MIB };
    enum { N = sizeof sizes / sizeof sizes[0] };
    unsigned char *want[N];
    for (int i = 0; i < N; i++)
        want[i] = make_file(h_str("%s/f%d", H.lower, i), sizes[i], (uint32_t)i + 40);
    h_init(NULL);
    const char *a = h_mount("a");
    drop_caches();
    for (int i = 0; i < N; i++)
        check_preads(h_str("%s/f%d", a, i), want[i], sizes[i], 60, (unsigned)i + 40);
    drop_caches();
    for (int i = 0; i < N; i++)
        check_whole(h_str("%s/f%d", a, i), want[i], sizes[i]);
    double direct = read_field("a", "direct_reads");
    cr_assert(direct > 0, "no read of a lone agent went to a worker's ring");
    cr_assert(read_field("a", "direct_bytes") >= direct,
              "direct_bytes %.0f for %.0f direct reads", read_field("a", "direct_bytes"), direct);
    cr_assert_eq(scheduled_reads("a"), 0, "%.0f reads of a lone agent were scheduled "
                 "(%.0f on the workers' rings)", scheduled_reads("a"), direct);
    /* The whole reads of the two large files, to their odd ends, were
     * spliced (fs/rpipe.h) on the rings. */
    cr_assert(read_field("a", "spliced_reads") > 0,
              "no large read of a lone agent was spliced (%.0f direct reads)", direct);
    for (int i = 0; i < N; i++)
        free(want[i]);
}

/* A lone agent's reads in flight together go to the workers' rings too:
 * four readers of one cold file at once, none scheduled, bytes right. */
TEST_R(lone_agent_concurrent_reads_stay_on_worker_rings)
{
    unsigned char *want = make_file(h_str("%s/big", H.lower), 16 * MIB, 61);
    h_init(NULL);
    const char *a = h_mount("a");
    drop_caches();
    pid_t c = spawn_readers(h_str("%s/big", a), want, 16 * MIB);
    int code = wait_child(c, 120000);
    if (code < 0)
        kill(c, SIGKILL), waitpid(c, NULL, 0);
    cr_assert_eq(code, 0, "the readers: status %d", code);
    double direct = read_field("a", "direct_reads");
    cr_assert(direct > 0, "no read went to a worker's ring");
    cr_assert_eq(scheduled_reads("a"), 0, "%.0f reads of a lone agent's four readers were "
                 "scheduled (%.0f on the workers' rings)", scheduled_reads("a"), direct);
    free(want);
}

/* Agents a and b each read their own 24 MiB lower file at once, cold, and
 * get the right bytes. Their reads must overlap for the engine to see two
 * agents: on a loaded machine one child may be done before the other
 * starts, so the pair is read again (up to 3 times, cache dropped each
 * time) until each agent had a read scheduled; the callers' assertions
 * tell when that never happened. env (may be NULL) is added to the
 * daemon's environment. */
static void two_agents_read_at_once_env(char *const *env)
{
    unsigned char *wa = make_file(h_str("%s/ba", H.lower), 24 * MIB, 51);
    unsigned char *wb = make_file(h_str("%s/bb", H.lower), 24 * MIB, 52);
    h_init(NULL);
    const char *a = h_mount_env("a", env);
    const char *b = h_mount("b");
    for (int round = 0; round < 3; round++) {
        drop_caches();
        pid_t ca = spawn_readers(h_str("%s/ba", a), wa, 24 * MIB);
        pid_t cb = spawn_readers(h_str("%s/bb", b), wb, 24 * MIB);
        int code_a = wait_child(ca, 120000), code_b = wait_child(cb, 120000);
        if (code_a < 0)
            kill(ca, SIGKILL), waitpid(ca, NULL, 0);
        if (code_b < 0)
            kill(cb, SIGKILL), waitpid(cb, NULL, 0);
        cr_assert_eq(code_a, 0, "agent a's readers: status %d", code_a);
        cr_assert_eq(code_b, 0, "agent b's readers: status %d", code_b);
        if (scheduled_reads("a") > 0 && scheduled_reads("b") > 0)
            break;
    }
    free(wa);
    free(wb);
}

static void two_agents_read_at_once(void)
{
    two_agents_read_at_once_env(NULL);
}

/* Two agents reading at once share the volume: their reads are scheduled,
 * not read on the workers' rings. */
TEST_R(two_agents_reading_at_once_are_scheduled)
{
    two_agents_read_at_once();
    cr_assert(scheduled_reads("a") > 0 && scheduled_reads("b") > 0,
              "reading at once, a had %.0f and b %.0f scheduled reads (direct: %.0f, %.0f)",
              scheduled_reads("a"), scheduled_reads("b"), read_field("a", "direct_reads"),
              read_field("b", "direct_reads"));
}

/* Threads of process pid whose name starts with prefix. */
static int threads_named(pid_t pid, const char *prefix)
{
    char *dir = h_str("/proc/%d/task", (int)pid);
    DIR *d = opendir(dir);
    cr_assert_not_null(d, "cannot list %s: %s", dir, strerror(errno));
    int n = 0;
    for (struct dirent *de; (de = readdir(d));) {
        if (de->d_name[0] == '.')
            continue;
        char comm[64] = "";
        FILE *f = fopen(h_str("%s/%s/comm", dir, de->d_name), "re");
        if (f) {
            if (!fgets(comm, sizeof(comm), f))
                comm[0] = '\0';
            fclose(f);
        }
        n += strncmp(comm, prefix, strlen(prefix)) == 0;
    }
    closedir(d);
    return n;
}

/* Large scheduled reads are done by io_uring's workers (IOSQE_ASYNC), not
 * copied by the engine thread at submission: the daemon has io-wq threads
 * right after (idle ones outlive the reads by a while). */
TEST_R(large_scheduled_reads_go_to_io_uring_workers)
{
    two_agents_read_at_once();
    pid_t dpid = h_daemon_pid();
    cr_assert(dpid > 0, "no daemon pid");
    cr_assert(scheduled_reads("a") > 0, "no read of agent a was scheduled");
    int n = threads_named(dpid, "iou-wrk-");
    cr_assert(n > 0, "the daemon has no io_uring worker after %.0f scheduled reads",
              scheduled_reads("a") + scheduled_reads("b"));
}

/* Large scheduled reads are spliced from the layer file through a pipe into
 * /dev/fuse (fs/rpipe.h), and the bytes are right; with
 * LANEFS_READ_SPLICE=off none is, and the bytes are right too. */
TEST_R(large_scheduled_reads_are_spliced_and_right)
{
    two_agents_read_at_once();
    double sa = read_field("a", "spliced_reads"), sb = read_field("b", "spliced_reads");
    cr_assert(sa + sb > 0, "none of %.0f scheduled reads was spliced",
              scheduled_reads("a") + scheduled_reads("b"));
    cr_assert(read_field("a", "spliced_bytes") >= sa * 128 * 1024,
              "agent a's %.0f spliced reads carried %.0f bytes", sa,
              read_field("a", "spliced_bytes"));
}

TEST_R(splice_off_reads_through_memory_and_right)
{
    char *env[] = { "LANEFS_READ_SPLICE=off", NULL };
    two_agents_read_at_once_env(env);
    cr_assert(scheduled_reads("a") + scheduled_reads("b") > 0, "no read was scheduled");
    cr_assert(read_field("a", "spliced_reads") == 0 && read_field("b", "spliced_reads") == 0,
              "splicing is off, yet %.0f and %.0f reads were spliced",
              read_field("a", "spliced_reads"), read_field("b", "spliced_reads"));
}

/* A lazy unmount while a lone agent's reads are on the workers' rings: the
 * reads are answered, the session ends after them and the daemon exits. */
TEST_R(lazy_umount_with_reads_on_worker_rings_ends_cleanly)
{
    unsigned char *want = make_file(h_str("%s/big", H.lower), 64 * MIB, 61);
    h_init(NULL);
    const char *a = h_mount("a");
    pid_t dpid = h_daemon_pid();
    drop_caches();
    pid_t child = spawn_readers(h_str("%s/big", a), want, 64 * MIB);
    /* The first read finds none in flight, so it goes on a worker's ring. */
    bool direct = false;
    for (int i = 0; i < 200 && !(direct = read_field("a", "direct_reads") > 0); i++)
        usleep(10 * 1000);
    if (!direct)
        kill(child, SIGKILL), waitpid(child, NULL, 0);
    cr_assert(direct, "no read of the lone agent went to a worker's ring");
    struct h_res r;
    cr_assert_eq(h_lanefs(&r, NULL, "umount", "--lazy", a, (char *)NULL), 0,
                 "umount --lazy with reads in flight: exit %d (%s)", r.code, r.err);
    h_forget_mount("a");
    int code = wait_child(child, 120000);
    if (code < 0)
        kill(child, SIGKILL), waitpid(child, NULL, 0);
    cr_assert_eq(code, 0, "readers across the lazy umount failed (status %d)", code);
    cr_assert(h_wait_pid_gone(dpid, 30000), "daemon %d did not exit after its last "
              "session ended", (int)dpid);
    free(want);
}

/* ---- the latency guard (fs/rguard.h) ------------------------------------ */

/* Starts a child that does 4 KiB reads of path (a file of len bytes in
 * an agent's view) over and over, each past the view's page cache, so each
 * is a request to the daemon, and returns once it has done 20 (-1 when it
 * failed before). It dies of SIGALRM after 60 s if nobody kills it. */
static pid_t start_small_reader(const char *path, size_t len)
{
    int ready[2];
    cr_assert_eq(pipe(ready), 0);
    pid_t pid = fork();
    cr_assert(pid >= 0, "fork: %s", strerror(errno));
    if (pid == 0) {
        alarm(60);
        int fd = open(path, O_RDONLY | O_CLOEXEC);
        if (fd < 0)
            _exit(2);
        char buf[4096];
        for (unsigned i = 0;; i++) {
            off_t off = (off_t)((i * 7919u) % (len / 4096)) * 4096;
            posix_fadvise(fd, off, 4096, POSIX_FADV_DONTNEED);
            if (pread(fd, buf, sizeof buf, off) != (ssize_t)sizeof buf)
                _exit(3);
            if (i == 20 && write(ready[1], "r", 1) != 1)
                _exit(4);
        }
    }
    close(ready[1]);
    char c;
    ssize_t got = read(ready[0], &c, 1);
    close(ready[0]);
    if (got == 1)
        return pid;
    kill(pid, SIGKILL);
    waitpid(pid, NULL, 0);
    return -1;
}

static void stop_child(pid_t pid)
{
    kill(pid, SIGKILL);
    waitpid(pid, NULL, 0);
}

/* "read_guard".FIELD of a fresh status (booleans as 0/1), -1 when absent. */
static double guard_field(const char *field)
{
    cJSON *st = h_status();
    cJSON *f = cJSON_GetObjectItemCaseSensitive(
        cJSON_GetObjectItemCaseSensitive(st, "read_guard"), field);
    double v = cJSON_IsNumber(f) ? f->valuedouble : cJSON_IsBool(f) ? cJSON_IsTrue(f) : -1;
    cJSON_Delete(st);
    return v;
}

/* Reads big (8 MiB in an agent's view, cache dropped first) while a small
 * reader goes on small (1 MiB in another agent's view), and checks the
 * bytes against want. round names the pass in the messages. */
static void stream_next_to_small_reader(const char *big, const unsigned char *want,
                                        const char *small, int round)
{
    drop_caches();
    pid_t child = start_small_reader(small, 1 * MIB);
    cr_assert(child > 0, "the small reader did not get going");
    size_t len;
    unsigned char *data = read_all(big, &len);
    stop_child(child);
    cr_assert_eq(len, 8 * MIB, "round %d: read %zu bytes of 8 MiB", round, len);
    cr_assert(memcmp(data, want, len) == 0, "round %d: checksum %016llx, want %016llx",
              round, (unsigned long long)fnv(data, len), (unsigned long long)fnv(want, len));
    free(data);
}

/* Agent b reads small pieces while agent a streams a cold file: b's small
 * reads start the guard, so a's large reads are read in pieces, and a gets
 * the right bytes. With the guard turned off live, a's reads are whole
 * again. LANEFS_GUARD_DEVICE_US=0 lets every small read count as one that
 * went to the device, so the test does not depend on the disk's speed. */
TEST_R(guard_pieces_streams_next_to_small_reads_and_bytes_are_right)
{
    unsigned char *want = make_file(h_str("%s/big", H.lower), 8 * MIB, 71);
    free(make_file(h_str("%s/small", H.lower), 1 * MIB, 72));
    h_init(NULL);
    char *env[] = { "LANEFS_GUARD_DEVICE_US=0", NULL };
    const char *a = h_mount_env("a", env);
    const char *b = h_mount("b");
    cr_assert_eq(guard_field("enabled"), 1, "the guard is not on by default");

    for (int round = 0; round < 2; round++) {
        double pieced = guard_field("pieced"), engaged = guard_field("engaged");
        stream_next_to_small_reader(h_str("%s/big", a), want, h_str("%s/small", b), round);
        if (round == 0) {
            cr_assert(guard_field("engaged") > engaged, "small reads next to a stream did "
                      "not start the guard (engaged %.0f)", guard_field("engaged"));
            cr_assert(guard_field("pieced") > pieced, "no large read was read in pieces "
                      "while the guard held (%.0f)", guard_field("pieced"));
            /* Reads of 128 KiB-1 MiB in 128 KiB pieces: more requests than reads. */
            cr_assert(guard_field("pieces") > guard_field("pieced"), "%.0f reads in pieces "
                      "took %.0f device requests", guard_field("pieced"),
                      guard_field("pieces"));
            struct h_res r;
            cr_assert_eq(h_lanefs(&r, NULL, "volume", "set", H.state, "--read-guard", "off",
                                  (char *)NULL), 0, "volume set: %s", r.err);
            cr_assert_eq(guard_field("enabled"), 0, "the guard is still on");
            cr_assert_eq(guard_field("active"), 0, "the guard still holds after it was "
                         "turned off");
        } else {
            cr_assert_eq(guard_field("pieced"), pieced, "with the guard off, %.0f large "
                         "reads were read in pieces", guard_field("pieced") - pieced);
            cr_assert_eq(guard_field("engaged"), engaged, "the guard started while off");
        }
    }
    free(want);
}

/* Agent b's small reads, one at a time, while agent a streams: the
 * scheduler would give them the next slot anyway, so they go on the
 * workers' rings (few are scheduled) and, timed there, still start the
 * guard. Once b has a limit, its reads are scheduled again.
 * LANEFS_GUARD_DEVICE_US=0 counts every timed read as one that went to
 * the device. */
TEST_R(light_reads_next_to_a_stream_pass_the_scheduler_and_start_the_guard)
{
    unsigned char *want = make_file(h_str("%s/big", H.lower), 8 * MIB, 73);
    free(make_file(h_str("%s/small", H.lower), 1 * MIB, 74));
    h_init(NULL);
    char *env[] = { "LANEFS_GUARD_DEVICE_US=0", NULL };
    const char *a = h_mount_env("a", env);
    const char *b = h_mount("b");
    for (int limited = 0; limited < 2; limited++) {
        double engaged = guard_field("engaged"), reads_b, sched_b;
        read_counts("b", &reads_b, &sched_b);
        stream_next_to_small_reader(h_str("%s/big", a), want, h_str("%s/small", b), limited);
        double all, sched;
        read_counts("b", &all, &sched);
        all -= reads_b;
        sched -= sched_b;
        if (!limited) {
            cr_assert(guard_field("engaged") > engaged, "b's reads on the workers' rings "
                      "did not start the guard (engaged %.0f)", guard_field("engaged"));
            /* Not none: the kernel's readahead on b's mount sends several
             * of its reads at once now and then, and past 4 they queue. */
            cr_assert(all > 0 && sched < all / 4, "%.0f of b's %.0f small reads next to a's "
                      "stream were scheduled", sched, all);
            struct h_res r;
            cr_assert_eq(h_lanefs(&r, NULL, "agent", "set", H.state, "b", "--read-iops",
                                  "1000000", (char *)NULL), 0, "agent set: %s", r.err);
        } else {
            cr_assert(all > 0 && sched == all, "b has an IOPS limit, yet only %.0f of its "
                      "%.0f reads were scheduled", sched, all);
        }
    }
    free(want);
}

/* Large reads held back by the guard when the daemon stops: every agent's
 * session ends, the held reads are answered (with EIO, like queued ones)
 * and the daemon exits; no reader is left blocked. */
TEST_R(guard_held_reads_answered_when_the_daemon_stops)
{
    unsigned char *want = make_file(h_str("%s/big", H.lower), 64 * MIB, 81);
    free(make_file(h_str("%s/small", H.lower), 1 * MIB, 82));
    h_init(NULL);
    /* b's small reads never pause, so pacing would keep a (weight 100) in
     * the scheduler's queue, level with b; at weight 10000 its reads leave
     * the scheduler and wait for the guard instead. */
    char *env[] = { "LANEFS_GUARD_DEVICE_US=0", NULL };
    const char *b = h_mount_env("b", env);
    const char *a = mount_opts("a", "--weight", "10000", (char *)NULL);
    pid_t dpid = h_daemon_pid();
    drop_caches();
    pid_t small = start_small_reader(h_str("%s/small", b), 1 * MIB);
    cr_assert(small > 0, "the small reader did not get going");
    pid_t readers = spawn_readers(h_str("%s/big", a), want, 64 * MIB);
    bool held = false;
    for (int i = 0; i < 200 && !held; i++) {
        held = guard_field("held") > 0;
        if (!held)
            usleep(50 * 1000);
    }
    if (held)
        kill(dpid, SIGTERM);
    bool gone = held && h_wait_pid_gone(dpid, 60000);
    int code = wait_child(readers, gone ? 60000 : 1000);
    if (code < 0)
        kill(readers, SIGKILL), waitpid(readers, NULL, 0);
    stop_child(small);
    cr_assert(held, "no large read was ever held by the guard (pieced %.0f)",
              guard_field("pieced"));
    cr_assert(gone, "daemon %d still runs 60 s after SIGTERM with reads held", (int)dpid);
    cr_assert_neq(code, -1, "readers still blocked 60 s after the daemon exited");
    cr_assert(h_wait_mount(a, false, H_MOUNT_WAIT_MS), "%s is still mounted", a);
    cr_assert(h_wait_mount(b, false, H_MOUNT_WAIT_MS), "%s is still mounted", b);
    h_forget_mount("a");
    h_forget_mount("b");
    free(want);
}

/* The guard's setting: at init, in volume.conf, shown by status, changed
 * live and without a daemon; bad values and an empty `volume set` are
 * refused with what was wrong. */
TEST_R(read_guard_at_init_live_and_refused)
{
    struct h_res r;
    const char *conf = h_str("%s/volume.conf", H.state);

    init_refuses("--read-guard", "maybe", "bad --read-guard 'maybe': expected on or off");
    h_init("--read-guard", "off", (char *)NULL);
    cr_assert(strstr(h_get(conf), "read_guard = off\n"), "volume.conf: %s", h_get(conf));
    h_mount("a");
    cr_assert_eq(guard_field("enabled"), 0, "init --read-guard off, but status says on");
    cr_assert(strstr(status_human(), "read guard: off"), "status: %s", status_human());

    cr_assert_eq(h_lanefs(&r, NULL, "volume", "set", H.state, "--read-guard", "on",
                          (char *)NULL), 0, "volume set: %s", r.err);
    cr_assert_eq(guard_field("enabled"), 1, "volume set --read-guard on did not hold");
    cr_assert(strstr(h_get(conf), "read_guard = on\n"), "volume.conf: %s", h_get(conf));
    cr_assert(strstr(status_human(), "read guard: on"), "status: %s", status_human());

    cr_assert_eq(h_lanefs(&r, NULL, "volume", "set", H.state, "--read-guard", "1",
                          (char *)NULL), 2, "volume set took --read-guard 1");
    cr_assert(strstr(r.err, "bad --read-guard '1': expected on or off"), "message: %s", r.err);
    cr_assert_eq(h_lanefs(&r, NULL, "volume", "set", H.state, (char *)NULL), 2,
                 "volume set took no setting");
    cr_assert(strstr(r.err, "set needs --volume-read-rate or --read-guard"), "message: %s",
              r.err);
    cr_assert_eq(guard_field("enabled"), 1, "a refused set changed the guard");

    /* Without a daemon: volume.conf, for the next one. The read cap is left. */
    cr_assert_eq(h_lanefs(&r, NULL, "volume", "set", H.state, "--volume-read-rate", "7M",
                          (char *)NULL), 0, "volume set: %s", r.err);
    h_umount("a");
    cr_assert(h_wait_mount(h_mnt("a"), false, H_MOUNT_WAIT_MS));
    cr_assert_eq(h_lanefs(&r, NULL, "volume", "set", H.state, "--read-guard", "off",
                          (char *)NULL), 0, "volume set without a daemon: %s", r.err);
    cr_assert(strstr(h_get(conf), "read_guard = off\n"), "volume.conf: %s", h_get(conf));
    cr_assert(strstr(h_get(conf), "volume_read_rate = 7340032\n"), "volume.conf: %s",
              h_get(conf));
    h_mount("a");
    cr_assert_eq(guard_field("enabled"), 0, "the next daemon has the guard on");
}
