/* test_lease.c - advisory leases through the attribute user.lanefs.lease of
 * files in two and three agents' mounts of one volume: conflicts and read
 * sharing, the value shown, release errors, malformed values, expiry (also
 * of a holder killed with SIGKILL), release when the holder's mount ends,
 * epochs across a daemon restart, and the lease, claim and leases
 * commands, with `lanefs claim` as a work queue for three agents. */
#include "harness.h"

#include <cJSON.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/wait.h>
#include <sys/xattr.h>
#include <time.h>
#include <unistd.h>

#define TEST_LS(name) Test(lease, name, .init = h_setup, .fini = h_teardown, \
                           .timeout = H_TIMEOUT)

#define NAME "user.lanefs.lease"
/* What setxattr reports for a conflict: the daemon answers EBUSY, as Linux
 * turns a FUSE filesystem's EWOULDBLOCK from setxattr into EOPNOTSUPP. */
#define CONFLICT EBUSY

static const char *A, *B, *C;

/* A volume whose "in" is shared, with lower files in/f1..f3 and a private
 * lower file doc; agents a and b (and c when three) mounted. */
static void setup(bool three)
{
    h_mkdir_p(h_str("%s/in", H.lower), 0777);
    for (int i = 1; i <= 3; i++)
        h_put(h_str("%s/in/f%d", H.lower, i), "data\n", 0666);
    h_put(h_str("%s/doc", H.lower), "doc\n", 0644);
    h_init("--shared", "in", (char *)NULL);
    A = h_mount("a");
    B = h_mount("b");
    C = three ? h_mount("c") : NULL;
}

static const char *at(const char *mnt, const char *rel)
{
    return h_str("%s/%s", mnt, rel);
}

/* setxattr of the lease: 0 or errno. */
static int lset(const char *path, const char *val)
{
    return setxattr(path, NAME, val, strlen(val), 0) == 0 ? 0 : errno;
}

static int lset_n(const char *path, const void *val, size_t n)
{
    return setxattr(path, NAME, val, n, 0) == 0 ? 0 : errno;
}

static int lrm(const char *path)
{
    return removexattr(path, NAME) == 0 ? 0 : errno;
}

/* The lease as shown, or "!ENAME". */
static char *lget(const char *path)
{
    char buf[4096];
    ssize_t n = getxattr(path, NAME, buf, sizeof(buf) - 1);
    if (n < 0)
        return h_str("!%s", h_errname(errno));
    buf[n] = '\0';
    cr_assert_eq(strlen(buf), (size_t)n, "NUL inside the shown value");
    return h_str("%s", buf);
}

/* Field name ("holder", "mode", "ttl", "epoch") of a shown lease. */
static char *field(const char *shown, const char *name)
{
    size_t nl = strlen(name);
    for (const char *p = shown; *p; ) {
        size_t wl = strcspn(p, " ");
        if (wl > nl && p[nl] == '=' && strncmp(p, name, nl) == 0)
            return h_str("%.*s", (int)(wl - nl - 1), p + nl + 1);
        p += wl;
        p += strspn(p, " ");
    }
    return NULL;
}

/* Asserts path shows a lease of mode held by holders, and returns its
 * epoch. */
static unsigned long long held(const char *path, const char *mode,
                               const char *holders)
{
    char *v = lget(path);
    char *m = field(v, "mode"), *h = field(v, "holder"), *t = field(v, "ttl"),
         *e = field(v, "epoch");
    cr_assert(m && h && t && e, "%s shows '%s'", path, v);
    cr_assert_str_eq(m, mode, "%s shows '%s'", path, v);
    cr_assert_str_eq(h, holders, "%s shows '%s'", path, v);
    cr_assert_str_eq(v, h_str("mode=%s holder=%s ttl=%s epoch=%s", m, h, t, e),
                     "unexpected form '%s'", v);
    int ttl = atoi(t);
    cr_assert(ttl >= 1 && ttl <= 300, "ttl %d in '%s'", ttl, v);
    return strtoull(e, NULL, 10);
}

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec / 1e9;
}

/* Polls until agent's setxattr of val on path succeeds, up to limit_s;
 * returns the seconds it took, or -1. */
static double wait_grant(const char *path, const char *val, double limit_s)
{
    double t0 = now_s();
    for (;;) {
        int rc = lset(path, val);
        if (rc == 0)
            return now_s() - t0;
        cr_assert_eq(rc, CONFLICT, "setxattr %s: %s", path, h_errname(rc));
        if (now_s() - t0 > limit_s)
            return -1;
        usleep(50 * 1000);
    }
}

/* ---- the attribute ---------------------------------------------------- */

TEST_LS(write_conflicts_and_reads_share)
{
    setup(true);
    const char *fa = at(A, "in/f1"), *fb = at(B, "in/f1"), *fc = at(C, "in/f1");
    cr_assert_str_eq(lget(fb), "free");
    cr_assert_eq(lset(fa, "write"), 0);
    unsigned long long e1 = held(fb, "write", "a");
    cr_assert_eq(lset(fb, "write"), CONFLICT);
    cr_assert_eq(lset(fb, "read"), CONFLICT);
    cr_assert_eq(lset(fc, "read,ttl=10"), CONFLICT);
    cr_assert_eq(held(fc, "write", "a"), e1, "a refused request changed it");
    /* Renewing takes a new, greater epoch. */
    cr_assert_eq(lset(fa, "write,ttl=60"), 0);
    unsigned long long e2 = held(fc, "write", "a");
    cr_assert_gt(e2, e1);
    /* Downgrade: now readers join. */
    cr_assert_eq(lset(fa, "read"), 0);
    cr_assert_eq(lset(fb, "read"), 0);
    cr_assert_eq(lset(fc, "read,ttl=100"), 0);
    unsigned long long e3 = held(fa, "read", "a,b,c");
    cr_assert_gt(e3, e2);
    cr_assert_eq(lset(fa, "write"), CONFLICT, "upgrade with other readers");
    cr_assert_eq(lrm(fb), 0);
    cr_assert_eq(lrm(fc), 0);
    held(fb, "read", "a");
    cr_assert_eq(lset(fa, "write"), 0, "upgrade as the only reader");
    held(fc, "write", "a");
    /* Another file is independent. */
    cr_assert_eq(lset(at(B, "in/f2"), "write"), 0);
    held(at(A, "in/f2"), "write", "b");
    cr_assert_str_eq(lget(at(C, "in/f3")), "free");
}

TEST_LS(lower_file_lease_is_seen_by_every_agent)
{
    setup(false);
    /* doc is a private-class path, but no agent copied it up: one file. */
    cr_assert_eq(lset(at(A, "doc"), "write"), 0);
    held(at(B, "doc"), "write", "a");
    cr_assert_eq(lset(at(B, "doc"), "read"), CONFLICT);
    /* Taking a lease writes nothing: no copy-up, no attribute stored. */
    cr_assert(!h_exists(h_str("%s/doc", h_agent_path("a", "upper"))));
    cr_assert(!h_exists(h_str("%s/in/f1", h_str("%s/shared/upper", H.state))));
    char names[1024];
    ssize_t n = listxattr(at(A, "doc"), names, sizeof(names));
    cr_assert_geq(n, 0);
    for (ssize_t i = 0; i < n; i += (ssize_t)strlen(names + i) + 1)
        cr_assert(strncmp(names + i, "user.lanefs.", 12) != 0,
                  "listxattr shows %s", names + i);
    cr_assert_str_eq(h_get(h_str("%s/doc", H.lower)), "doc\n");
}

TEST_LS(private_copy_has_its_own_leases)
{
    setup(false);
    /* a edits doc: its copy is its own file, leased apart from the lower
     * doc that b still sees. */
    h_put(at(A, "doc"), "a's doc\n", 0644);
    cr_assert_eq(lset(at(A, "doc"), "write"), 0);
    cr_assert_str_eq(lget(at(B, "doc")), "free");
    cr_assert_eq(lset(at(B, "doc"), "write"), 0);
    held(at(A, "doc"), "write", "a");
    held(at(B, "doc"), "write", "b");
}

TEST_LS(getfattr_shows_the_lease)
{
    setup(false);
    const char *f = at(A, "in/f1");
    char *cmd = h_str("getfattr --absolute-names -n " NAME " --only-values "
                      "'%s' 2>&1", f);
    char out[512];
    FILE *p = popen(cmd, "r");
    cr_assert_not_null(p);
    size_t n = fread(out, 1, sizeof(out) - 1, p);
    out[n] = '\0';
    cr_assert_eq(pclose(p), 0, "getfattr: %s", out);
    cr_assert_str_eq(out, "free");

    cmd = h_str("setfattr -n " NAME " -v write,ttl=45 '%s' 2>&1", at(B, "in/f1"));
    cr_assert_eq(system(cmd), 0);
    cmd = h_str("getfattr --absolute-names -n " NAME " '%s' 2>&1", f);
    p = popen(cmd, "r");
    cr_assert_not_null(p);
    n = fread(out, 1, sizeof(out) - 1, p);
    out[n] = '\0';
    cr_assert_eq(pclose(p), 0, "getfattr: %s", out);
    cr_assert(strstr(out, NAME "=\"mode=write holder=b ttl=4"), "%s", out);
    cr_assert(strstr(out, " epoch="), "%s", out);
    /* setfattr reports the conflict. */
    cmd = h_str("setfattr -n " NAME " -v write '%s' 2>/dev/null", f);
    cr_assert_neq(system(cmd), 0);
    cmd = h_str("setfattr -x " NAME " '%s'", at(B, "in/f1"));
    cr_assert_eq(system(cmd), 0);
    cr_assert_str_eq(lget(f), "free");
}

TEST_LS(release_errors)
{
    setup(false);
    const char *fa = at(A, "in/f1"), *fb = at(B, "in/f1");
    cr_assert_eq(lrm(fa), ENODATA, "release of a free file");
    cr_assert_eq(lset(fa, "write"), 0);
    unsigned long long e = held(fa, "write", "a");
    cr_assert_eq(lrm(fb), ENODATA, "b released a's lease");
    cr_assert_eq(held(fb, "write", "a"), e);
    cr_assert_eq(lrm(fa), 0);
    cr_assert_eq(lrm(fa), ENODATA, "second release");
    cr_assert_str_eq(lget(fb), "free");
    /* A reader releasing leaves the other reader. */
    cr_assert_eq(lset(fa, "read"), 0);
    cr_assert_eq(lset(fb, "read"), 0);
    cr_assert_eq(lrm(fa), 0);
    held(fa, "read", "b");
}

TEST_LS(malformed_values_change_nothing)
{
    setup(false);
    static const char *const bad[] = {
        "writ", "wr", "WRITE", "Write", "lock", "free", "read,write",
        "write,ttl=-1", "write,ttl=0", "write,", "write,ttl=", "write,ttl=5x",
        "write,ttl=x", "write,ttl=5,ttl=6", "write ", " write", "write\n",
        "write;ttl=5", "write,TTL=5", "write,ttl=1.5", ",ttl=5",
    };
    const char *f = at(A, "in/f1"), *g = at(B, "in/f1");
    for (int round = 0; round < 2; round++) {
        /* Round 0 on a free file, round 1 on one b holds for reading. */
        const char *before = lget(f);
        for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
            cr_assert_eq(lset(f, bad[i]), EINVAL, "'%s' accepted", bad[i]);
            cr_assert_str_eq(lget(g), before, "'%s' changed the lease", bad[i]);
        }
        cr_assert_eq(lset_n(f, "", 0), EINVAL, "empty value");
        cr_assert_eq(lset_n(f, "wri\0te", 6), EINVAL, "NUL inside");
        cr_assert_eq(lset_n(f, "write\xff", 6), EINVAL, "non-UTF-8");
        cr_assert_eq(lset_n(f, "\xc3\x28", 2), EINVAL, "non-UTF-8");
        cr_assert_eq(lset_n(f, "wr\xc3\xa9te", 7), EINVAL, "non-ASCII");
        char big[300];
        memset(big, '0', sizeof(big));
        memcpy(big, "write,ttl=", 10);
        big[sizeof(big) - 1] = '5';
        cr_assert_eq(lset_n(f, big, sizeof(big)), EINVAL, "overlong");
        memset(big, 'w', sizeof(big));
        cr_assert_eq(lset_n(f, big, 65), EINVAL, "overlong");
        cr_assert_str_eq(lget(g), before);
        if (round == 0)
            cr_assert_eq(lset(g, "read,ttl=200"), 0);
    }
    held(f, "read", "b");
    /* Good edge values: clamped, and a C string's NUL. */
    cr_assert_eq(lset(at(A, "in/f2"), "write,ttl=1"), 0);
    cr_assert_eq(lset(at(A, "in/f3"), "read,ttl=100000"), 0);
    char *t = field(lget(at(B, "in/f3")), "ttl");
    cr_assert(t && atoi(t) > 200 && atoi(t) <= 300, "ttl %s", t ? t : "-");
    cr_assert_eq(lset_n(at(A, "doc"), "write", 6), 0);
    held(at(B, "doc"), "write", "a");
}

TEST_LS(write_without_the_lease_is_allowed_and_logged)
{
    setup(false);
    const char *log = h_str("%s/lanefs.log", H.state);
    cr_assert_eq(lset(at(A, "in/f1"), "write"), 0);
    /* The holder itself writes: no conflict. */
    h_put(at(A, "in/f1"), "by a\n", 0666);
    /* b writes without the lease: advisory, so it works, and is logged
     * with both agents named. */
    int fd = open(at(B, "in/f1"), O_WRONLY | O_TRUNC | O_CLOEXEC);
    cr_assert(fd >= 0, "open for writing: %s", strerror(errno));
    cr_assert_eq(write(fd, "by b\n", 5), 5);
    close(fd);
    cr_assert_str_eq(h_get(at(A, "in/f1")), "by b\n");
    cr_assert(h_wait_file_has(log, "lease conflict: agent b opened /in/f1 for "
                              "writing while agent a holds its write lease",
                              5000), "no conflict logged: %s", h_get(log));
    char *text = h_get(log);
    cr_assert(!strstr(text, "lease conflict: agent a"), "%s", text);
    /* Reading is no conflict. */
    cr_assert_str_eq(h_get(at(B, "in/f2")), "data\n");
    cr_assert(!strstr(h_get(log), "/in/f2"), "%s", h_get(log));
}

/* ---- expiry and the end of a session ---------------------------------- */

TEST_LS(short_ttl_frees_within_ttl_plus_a_sweep)
{
    setup(false);
    const char *fa = at(A, "in/f1"), *fb = at(B, "in/f1");
    double t0 = now_s();
    cr_assert_eq(lset(fa, "write,ttl=3"), 0);
    int rc = lset(fb, "write");
    if (now_s() - t0 < 2.5)
        cr_assert_eq(rc, CONFLICT, "granted while a's lease runs");
    double took = wait_grant(fb, "write", 60);
    cr_assert_geq(took, 0, "a's 3 s lease never expired");
    double total = now_s() - t0;
    /* TTL + one sweep second, with room for a noisy machine. */
    cr_assert_lt(total, 3 + 1 + 15, "freed after %.1f s", total);
    cr_assert_gt(total, 2.5, "freed after %.1f s, before its TTL", total);
    held(fa, "write", "b");
    /* The log tells of the expiry. */
    cr_assert(h_wait_file_has(h_str("%s/lanefs.log", H.state), "expire", 5000),
              "no expiry in the log");
}

TEST_LS(holder_killed_lease_frees_within_ttl)
{
    setup(false);
    const char *fa = at(A, "in/f1"), *fb = at(B, "in/f1");
    int p[2];
    cr_assert_eq(pipe(p), 0);
    double t0 = now_s();
    pid_t pid = fork();
    cr_assert(pid >= 0);
    if (pid == 0) {
        char c = setxattr(fa, NAME, "write,ttl=3", 11, 0) == 0 ? 'y' : 'n';
        if (write(p[1], &c, 1) != 1)
            _exit(1);
        for (;;)
            pause();
    }
    close(p[1]);
    char c = 0;
    cr_assert_eq(read(p[0], &c, 1), 1);
    close(p[0]);
    cr_assert_eq(c, 'y', "the child could not take the lease");
    held(fb, "write", "a");
    kill(pid, SIGKILL);
    waitpid(pid, NULL, 0);
    int rc = lset(fb, "write");
    if (now_s() - t0 < 2.5)
        cr_assert_eq(rc, CONFLICT, "the kill released the lease at once");
    double took = wait_grant(fb, "write", 60);
    double total = now_s() - t0;
    cr_assert_geq(took, 0, "the dead holder's lease never expired");
    cr_assert_lt(total, 3 + 1 + 15, "freed after %.1f s", total);
    held(fa, "write", "b");
}

TEST_LS(umount_releases_at_once)
{
    setup(true);
    cr_assert_eq(lset(at(A, "in/f1"), "write,ttl=300"), 0);
    cr_assert_eq(lset(at(A, "in/f2"), "read,ttl=300"), 0);
    cr_assert_eq(lset(at(C, "in/f2"), "read,ttl=300"), 0);
    cr_assert_eq(lset(at(B, "in/f1"), "write"), CONFLICT);
    h_umount("a");
    /* No waiting: the session's end released them. */
    cr_assert_eq(lset(at(B, "in/f1"), "write"), 0);
    held(at(C, "in/f2"), "read", "c");
    cr_assert_eq(lset(at(B, "in/f2"), "write"), CONFLICT, "c's lease went too");
    /* The other agents' leases live on. */
    held(at(C, "in/f1"), "write", "b");
}

TEST_LS(external_umount_releases)
{
    setup(false);
    cr_assert_eq(lset(at(A, "in/f1"), "write,ttl=300"), 0);
    cr_assert_eq(umount2(A, MNT_DETACH), 0);
    h_forget_mount("a");
    double took = wait_grant(at(B, "in/f1"), "write", 30);
    cr_assert_geq(took, 0, "a's lease outlived its mount");
    held(at(B, "in/f1"), "write", "b");
}

TEST_LS(epochs_grow_across_a_daemon_restart)
{
    setup(false);
    cr_assert_eq(lset(at(A, "in/f1"), "write"), 0);
    cr_assert_eq(lset(at(B, "in/f2"), "write"), 0);
    unsigned long long e1 = held(at(A, "in/f2"), "write", "b");
    pid_t old = h_daemon_pid();
    h_umount("a");
    h_umount("b");
    if (old)
        cr_assert(h_wait_pid_gone(old, 10000), "the daemon did not exit");
    A = h_mount("a");
    cr_assert_str_eq(lget(at(A, "in/f1")), "free", "a lease outlived its daemon");
    cr_assert_eq(lset(at(A, "in/f1"), "write"), 0);
    unsigned long long e2 = held(at(A, "in/f1"), "write", "a");
    cr_assert_gt(e2, e1, "epoch %llu after a restart, %llu before", e2, e1);
}

/* ---- commands --------------------------------------------------------- */

TEST_LS(lease_commands)
{
    setup(false);
    struct h_res r;
    const char *fa = at(A, "in/f1"), *fb = at(B, "in/f1");
    cr_assert_eq(h_lanefs(&r, NULL, "lease", "show", fa, (char *)NULL), 0,
                 "%s", r.err);
    cr_assert_str_eq(r.out, "free\n");
    cr_assert_eq(h_lanefs(&r, NULL, "lease", "acquire", fa, "--ttl", "60",
                          (char *)NULL), 0, "%s", r.err);
    cr_assert(strncmp(r.out, "mode=write holder=a ttl=", 24) == 0, "%s", r.out);
    /* Conflict: exit 1, naming the holder. */
    cr_assert_eq(h_lanefs(&r, NULL, "lease", "acquire", fb, "--mode", "read",
                          (char *)NULL), 1);
    cr_assert(strstr(r.err, "is leased by a (write) until "), "%s", r.err);
    cr_assert_eq(h_lanefs(&r, NULL, "lease", "release", fb, (char *)NULL), 1);
    cr_assert(strstr(r.err, "you hold no lease on "), "%s", r.err);
    cr_assert_eq(h_lanefs(&r, NULL, "lease", "show", fb, (char *)NULL), 0);
    cr_assert(strncmp(r.out, "mode=write holder=a ttl=", 24) == 0, "%s", r.out);
    /* --wait that times out. */
    double t0 = now_s();
    cr_assert_eq(h_lanefs(&r, NULL, "lease", "acquire", fb, "--wait", "1",
                          (char *)NULL), 1);
    cr_assert_geq(now_s() - t0, 0.9);
    cr_assert(strstr(r.err, "gave up after 1 s"), "%s", r.err);
    /* --wait that succeeds when the holder lets go. */
    pid_t pid = fork();
    cr_assert(pid >= 0);
    if (pid == 0) {
        usleep(700 * 1000);
        _exit(removexattr(fa, NAME) == 0 ? 0 : 1);
    }
    cr_assert_eq(h_lanefs(&r, NULL, "lease", "acquire", fb, "--wait", "30",
                          "--mode", "read", (char *)NULL), 0, "%s", r.err);
    cr_assert(strncmp(r.out, "mode=read holder=b ttl=", 23) == 0, "%s", r.out);
    int st;
    waitpid(pid, &st, 0);
    cr_assert(WIFEXITED(st) && WEXITSTATUS(st) == 0, "release in the child");
    cr_assert_eq(h_lanefs(&r, NULL, "lease", "release", fb, (char *)NULL), 0,
                 "%s", r.err);
    cr_assert_str_eq(lget(fa), "free");
    /* Outside a lanefs mount. */
    cr_assert_eq(h_lanefs(&r, NULL, "lease", "acquire",
                          h_str("%s/in/f1", H.lower), (char *)NULL), 1);
    cr_assert(strstr(r.err, "is not in a lanefs mount"), "%s", r.err);
    cr_assert_eq(h_lanefs(&r, NULL, "lease", "show", at(A, "in/none"),
                          (char *)NULL), 1);
    cr_assert(strstr(r.err, "No such file"), "%s", r.err);
}

TEST_LS(leases_lists_every_lease)
{
    setup(false);
    struct h_res r;
    cr_assert_eq(h_lanefs(&r, NULL, "leases", H.state, (char *)NULL), 0,
                 "%s", r.err);
    cr_assert_str_eq(r.out, "no leases\n");
    cr_assert_eq(lset(at(A, "in/f1"), "write,ttl=100"), 0);
    cr_assert_eq(lset(at(A, "in/f2"), "read"), 0);
    cr_assert_eq(lset(at(B, "in/f2"), "read"), 0);
    cr_assert_eq(h_lanefs(&r, NULL, "leases", H.state, (char *)NULL), 0,
                 "%s", r.err);
    cr_assert(strncmp(r.out, "KEY", 3) == 0, "%s", r.out);
    int lines = 0;
    for (const char *p = r.out; (p = strchr(p, '\n')); p++)
        lines++;
    cr_assert_eq(lines, 4, "%s", r.out);
    cr_assert(strstr(r.out, " write "), "%s", r.out);
    cr_assert_eq(h_lanefs(&r, NULL, "leases", H.state, "--json", (char *)NULL),
                 0, "%s", r.err);
    cJSON *j = cJSON_Parse(r.out);
    cr_assert_not_null(j, "%s", r.out);
    cJSON *list = cJSON_GetObjectItem(j, "leases");
    cr_assert(cJSON_IsArray(list), "%s", r.out);
    cr_assert_eq(cJSON_GetArraySize(list), 3, "%s", r.out);
    cr_assert_null(cJSON_GetObjectItem(j, "v"));
    int writes = 0, reads = 0;
    cJSON *l;
    cJSON_ArrayForEach(l, list) {
        const char *mode = cJSON_GetStringValue(cJSON_GetObjectItem(l, "mode"));
        const char *agent = cJSON_GetStringValue(cJSON_GetObjectItem(l, "agent"));
        cr_assert(cJSON_IsString(cJSON_GetObjectItem(l, "key")));
        cr_assert(cJSON_IsNumber(cJSON_GetObjectItem(l, "epoch")));
        double ms = cJSON_GetNumberValue(cJSON_GetObjectItem(l, "ms_left"));
        cr_assert(ms > 0 && ms <= 300000, "ms_left %f", ms);
        cr_assert(mode && agent);
        if (strcmp(mode, "write") == 0) {
            writes++;
            cr_assert_str_eq(agent, "a");
            cr_assert(ms > 30000, "ttl=100 shows %f ms", ms);
        } else {
            reads++;
        }
    }
    cr_assert(writes == 1 && reads == 2, "%s", r.out);
    cJSON_Delete(j);
}

/* Runs `lanefs claim dir --ttl 300`; the path it printed goes to out.
 * Returns the exit status, or -1. No assertions: runs in children. */
static int run_claim(const char *dir, char *out, size_t cap)
{
    int p[2];
    if (pipe2(p, O_CLOEXEC) < 0)
        return -1;
    pid_t pid = fork();
    if (pid < 0)
        return -1;
    if (pid == 0) {
        int nfd = open("/dev/null", O_RDWR | O_CLOEXEC);
        dup2(p[1], 1);
        if (nfd >= 0) {
            dup2(nfd, 0);
            dup2(nfd, 2);
        }
        execl(H.lanefs, H.lanefs, "claim", dir, "--ttl", "300", (char *)NULL);
        _exit(127);
    }
    close(p[1]);
    size_t len = 0;
    ssize_t n;
    while (len < cap - 1 && (n = read(p[0], out + len, cap - 1 - len)) > 0)
        len += (size_t)n;
    out[len] = '\0';
    close(p[0]);
    int st;
    if (waitpid(pid, &st, 0) < 0)
        return -1;
    return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

#define CLAIM_FILES 30

TEST_LS(claim_hands_out_each_file_once)
{
    h_mkdir_p(h_str("%s/in", H.lower), 0777);
    for (int i = 0; i < CLAIM_FILES; i++)
        h_put(h_str("%s/in/job%02d", H.lower, i), "job\n", 0644);
    h_mkdir_p(h_str("%s/in/subdir", H.lower), 0755);
    h_symlink("job00", h_str("%s/in/zlink", H.lower));
    h_init("--shared", "in", (char *)NULL);
    const char *agents[3] = { "a", "b", "c" };
    const char *mnts[3];
    for (int i = 0; i < 3; i++)
        mnts[i] = h_mount(agents[i]);

    /* Each agent claims until none is left, all three at once; each
     * child writes the names it got to a pipe. */
    int pipes[3][2];
    pid_t pids[3];
    for (int i = 0; i < 3; i++) {
        cr_assert_eq(pipe(pipes[i]), 0);
        pids[i] = fork();
        cr_assert(pids[i] >= 0);
        if (pids[i] == 0) {
            char dir[4096], got[4096];
            snprintf(dir, sizeof(dir), "%s/in", mnts[i]);
            int rc;
            while ((rc = run_claim(dir, got, sizeof(got))) == 0) {
                if (write(pipes[i][1], got, strlen(got)) < 0)
                    _exit(3);
            }
            _exit(rc == 1 ? 0 : 2);
        }
        close(pipes[i][1]);
    }
    int count[CLAIM_FILES] = { 0 };
    int per_agent[3] = { 0 };
    for (int i = 0; i < 3; i++) {
        char buf[16384];
        size_t len = 0;
        ssize_t n;
        while (len < sizeof(buf) - 1 &&
               (n = read(pipes[i][0], buf + len, sizeof(buf) - 1 - len)) > 0)
            len += (size_t)n;
        buf[len] = '\0';
        close(pipes[i][0]);
        int st;
        waitpid(pids[i], &st, 0);
        cr_assert(WIFEXITED(st) && WEXITSTATUS(st) == 0,
                  "agent %s's claims ended badly (status %d)", agents[i], st);
        char *save = NULL;
        for (char *line = strtok_r(buf, "\n", &save); line;
             line = strtok_r(NULL, "\n", &save)) {
            const char *prefix = h_str("%s/in/job", mnts[i]);
            cr_assert(strncmp(line, prefix, strlen(prefix)) == 0,
                      "agent %s claimed '%s'", agents[i], line);
            int k = atoi(line + strlen(prefix));
            cr_assert(k >= 0 && k < CLAIM_FILES, "claimed '%s'", line);
            count[k]++;
            per_agent[i]++;
        }
    }
    for (int k = 0; k < CLAIM_FILES; k++)
        cr_assert_eq(count[k], 1, "job%02d handed out %d times", k, count[k]);
    cr_assert_eq(per_agent[0] + per_agent[1] + per_agent[2], CLAIM_FILES);
    /* Every file is held by whoever claimed it; none is left. */
    struct h_res r;
    cr_assert_eq(h_lanefs(&r, NULL, "claim", at(mnts[0], "in"), (char *)NULL), 1);
    cr_assert(strstr(r.err, "no free file in "), "%s", r.err);
    cr_assert_eq(h_lanefs(&r, NULL, "leases", H.state, "--json", (char *)NULL),
                 0, "%s", r.err);
    cJSON *j = cJSON_Parse(r.out);
    cr_assert_not_null(j);
    cr_assert_eq(cJSON_GetArraySize(cJSON_GetObjectItem(j, "leases")),
                 CLAIM_FILES, "%s", r.out);
    cJSON_Delete(j);
    /* A released file is handed out again. */
    cr_assert_eq(lrm(at(mnts[0], "in/job07")) == 0 ||
                 lrm(at(mnts[1], "in/job07")) == 0 ||
                 lrm(at(mnts[2], "in/job07")) == 0, 1);
    cr_assert_eq(h_lanefs(&r, NULL, "claim", at(mnts[2], "in"), (char *)NULL),
                 0, "%s", r.err);
    cr_assert_str_eq(r.out, h_str("%s/in/job07\n", mnts[2]));
}

/* ---- bad command lines ------------------------------------------------ */

TEST_LS(bad_arguments)
{
    static const char *const cases[][8] = {
        { "lease", NULL },
        { "lease", "grab", "f", NULL },
        { "lease", "acquire", NULL },
        { "lease", "release", NULL },
        { "lease", "show", NULL },
        { "lease", "acquire", "f", "--mode", "writ", NULL },
        { "lease", "acquire", "f", "--mode", "", NULL },
        { "lease", "acquire", "f", "--mode", NULL },
        { "lease", "acquire", "f", "--ttl", "1", NULL },
        { "lease", "acquire", "f", "--ttl", "301", NULL },
        { "lease", "acquire", "f", "--ttl", "-1", NULL },
        { "lease", "acquire", "f", "--ttl", "5x", NULL },
        { "lease", "acquire", "f", "--ttl", "", NULL },
        { "lease", "acquire", "f", "--wait", "-1", NULL },
        { "lease", "acquire", "f", "--wait", "soon", NULL },
        { "lease", "acquire", "f", "--wait", "1e3", NULL },
        { "lease", "acquire", "f", "--ttl", "5", "--ttl", "6", NULL },
        { "lease", "acquire", "f", "g", NULL },
        { "lease", "acquire", "f", "--bogus", NULL },
        { "lease", "release", "f", "--mode", "read", NULL },
        { "lease", "show", "f", "--ttl", "5", NULL },
        { "claim", NULL },
        { "claim", "d", "e", NULL },
        { "claim", "d", "--ttl", "0", NULL },
        { "claim", "d", "--ttl", "x", NULL },
        { "claim", "d", "--mode", "read", NULL },
        { "leases", NULL },
        { "leases", "s", "t", NULL },
        { "leases", "s", "--yaml", NULL },
    };
    static const char *const expect[] = {
        "missing what to do", "unknown lease command 'grab'", "missing FILE",
        "missing FILE", "missing FILE", "bad --mode 'writ'", "bad --mode ''",
        "'--mode' needs a value", "bad --ttl '1'", "bad --ttl '301'",
        "bad --ttl '-1'", "bad --ttl '5x'", "bad --ttl ''", "bad --wait '-1'",
        "bad --wait 'soon'", "bad --wait '1e3'", "--ttl given twice",
        "unexpected argument 'g'", "'--bogus'", "--mode is an option of",
        "--ttl is an option of", "missing DIR", "unexpected argument 'e'",
        "bad --ttl '0'", "bad --ttl 'x'", "'--mode'", "missing STATE",
        "unexpected argument 't'", "'--yaml'",
    };
    cr_assert_eq(sizeof(cases) / sizeof(cases[0]),
                 sizeof(expect) / sizeof(expect[0]));
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        const char *const *c = cases[i];
        struct h_res r;
        h_lanefs(&r, NULL, c[0], c[1], c[2], c[3], c[4], c[5], c[6],
                 (char *)NULL);
        cr_assert_eq(r.code, 2, "case %zu (%s %s ...): exit %d: %s", i, c[0],
                     c[1] ? c[1] : "", r.code, r.err);
        cr_assert(strncmp(r.err, "lanefs: ", 8) == 0, "case %zu: %s", i, r.err);
        cr_assert(strstr(r.err, expect[i]), "case %zu: '%s' lacks '%s'", i,
                  r.err, expect[i]);
        cr_assert_str_eq(r.out, "");
    }
    struct h_res r;
    h_init(NULL);
    cr_assert_eq(h_lanefs(&r, NULL, "leases", H.state, (char *)NULL), 1);
    cr_assert(strstr(r.err, "no daemon serves"), "%s", r.err);
}
