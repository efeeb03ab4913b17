/* test_crash.c - a daemon killed in the middle of a copy-up leaves no partial
 * file: the agent sees the old content or the whole new one, and the lower
 * is unchanged.
 *
 * The daemon's fault hook LANEFS_FAULT_COPYUP_PAUSE_MS makes every copy-up
 * of a regular file stop halfway, with the partial copy in the agent's work
 * dir, so the kill lands mid-copy deterministically instead of by timing. */
#include "harness.h"

#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#define BIG ((size_t)64 << 20)
#define CHUNK ((size_t)1 << 20)

static unsigned char pattern(size_t i)
{
    return (unsigned char)((i * 2654435761u) >> 13);
}

static void make_big(const char *path)
{
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    cr_assert(fd >= 0, "create %s: %s", path, strerror(errno));
    unsigned char *buf = malloc(CHUNK);
    cr_assert(buf != NULL);
    for (size_t off = 0; off < BIG; off += CHUNK) {
        for (size_t i = 0; i < CHUNK; i++)
            buf[i] = pattern(off + i);
        cr_assert_eq(write(fd, buf, CHUNK), (ssize_t)CHUNK);
    }
    free(buf);
    cr_assert_eq(close(fd), 0);
}

/* "old" when path holds exactly the lower content, "new" when it holds the
 * lower content plus the appended 'Z', otherwise a description of what is
 * wrong with it. */
static const char *classify(const char *path)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return h_str("unreadable: %s", h_errname(errno));
    struct stat st;
    cr_assert_eq(fstat(fd, &st), 0);
    if (st.st_size != (off_t)BIG && st.st_size != (off_t)BIG + 1) {
        close(fd);
        return h_str("partial: size %lld, expected %zu or %zu",
                     (long long)st.st_size, BIG, BIG + 1);
    }
    unsigned char *buf = malloc(CHUNK);
    cr_assert(buf != NULL);
    const char *verdict = NULL;
    size_t off = 0;
    ssize_t n = 0;
    while (!verdict && (n = read(fd, buf, CHUNK)) > 0) {
        for (ssize_t i = 0; i < n; i++, off++) {
            unsigned char want = off < BIG ? pattern(off) : 'Z';
            if (buf[i] != want) {
                verdict = h_str("wrong byte at offset %zu: 0x%02x, expected 0x%02x",
                                off, buf[i], want);
                break;
            }
        }
    }
    if (!verdict && n < 0)
        verdict = h_str("read error at offset %zu: %s", off, h_errname(errno));
    free(buf);
    close(fd);
    if (!verdict && off != (size_t)st.st_size)
        verdict = h_str("read %zu bytes of %lld", off, (long long)st.st_size);
    return verdict ? verdict : off == BIG ? "old" : "new";
}

static char found[4096];

static int find_regular(const char *path, const struct stat *st, int type, struct FTW *f)
{
    (void)f;
    if (type == FTW_F && S_ISREG(st->st_mode)) {
        snprintf(found, sizeof found, "%s", path);
        return 1;
    }
    return 0;
}

/* Path of some regular file below dir, or NULL, polling up to ms. */
static const char *wait_for_file(const char *dir, int ms)
{
    for (int waited = 0; waited <= ms; waited += 20) {
        found[0] = '\0';
        nftw(dir, find_regular, 8, FTW_PHYS);
        if (found[0])
            return h_str("%s", found);
        usleep(20 * 1000);
    }
    return NULL;
}

static bool pid_gone(pid_t pid)
{
    if (kill(pid, 0) != 0 && errno == ESRCH)
        return true;
    /* A zombie is dead too; its parent just has not reaped it yet. */
    char *stat = h_get(h_str("/proc/%d/stat", (int)pid));
    char *close_paren = stat ? strrchr(stat, ')') : NULL;
    return !stat || (close_paren && close_paren[1] == ' ' && close_paren[2] == 'Z');
}

static pid_t read_pid(const char *path)
{
    char *s = h_get(path);
    cr_assert_not_null(s, "read %s: %s", path, strerror(errno));
    return (pid_t)atoi(s);
}

Test(crash, kill_during_copy_up_leaves_old_or_complete_file,
     .init = h_setup, .fini = h_teardown, .timeout = H_TIMEOUT)
{
    make_big(h_str("%s/big.bin", H.lower));
    char *lower_before = h_snapshot(H.lower);
    h_init(NULL);
    char *env[] = { "LANEFS_FAULT_COPYUP_PAUSE_MS=120000", NULL };
    const char *mnt = h_mount_env("a", env);
    char *target = h_str("%s/big.bin", mnt);

    /* The writer blocks inside the copy-up triggered by its open/write. */
    pid_t writer = fork();
    cr_assert(writer >= 0);
    if (writer == 0) {
        int fd = open(target, O_WRONLY | O_APPEND | O_CLOEXEC);
        if (fd < 0)
            _exit(10);
        _exit(write(fd, "Z", 1) == 1 ? 0 : 11);
    }

    const char *partial = wait_for_file(h_agent_path("a", "work"), 60000);
    if (!partial) {
        kill(writer, SIGKILL);
        waitpid(writer, NULL, 0);
        cr_assert_fail("no copy-up file appeared in %s within 60 s (is the fault hook "
                       "LANEFS_FAULT_COPYUP_PAUSE_MS honoured?)", h_agent_path("a", "work"));
    }
    /* Let the first half land so the kill hits a really partial copy; not
     * asserted, a kill at any point must be safe. */
    struct stat st;
    for (int waited = 0; waited < 10000; waited += 20) {
        if (stat(partial, &st) == 0 && (size_t)st.st_blocks * 512 >= BIG / 2)
            break;
        usleep(20 * 1000);
    }

    pid_t daemon = read_pid(h_agent_path("a", "daemon.pid"));
    cr_assert(daemon > 1, "bad pid in daemon.pid");
    cr_assert_eq(kill(daemon, SIGKILL), 0, "kill daemon %d: %s", (int)daemon, strerror(errno));
    bool gone = false;
    for (int waited = 0; !gone && waited < 30000; waited += 20) {
        gone = pid_gone(daemon);
        if (!gone)
            usleep(20 * 1000);
    }
    cr_assert(gone, "daemon %d still alive 30 s after SIGKILL", (int)daemon);
    cr_assert_eq(umount2(mnt, MNT_DETACH), 0, "detach dead mount: %s", strerror(errno));
    h_forget_mount("a");

    /* The writer's request dies with the connection. */
    int status = 0;
    pid_t w = 0;
    for (int waited = 0; waited < 30000 && (w = waitpid(writer, &status, WNOHANG)) == 0;
         waited += 20)
        usleep(20 * 1000);
    if (w == 0) {
        kill(writer, SIGKILL);
        waitpid(writer, &status, 0);
    }

    char *up = h_str("%s/big.bin", h_agent_path("a", "upper"));
    const char *in_upper = h_exists(up) ? classify(up) : "absent";
    cr_log_info("killed mid copy-up (partial file %s, writer status 0x%x); upper copy: %s",
                partial, status, in_upper);
    cr_assert(strcmp(in_upper, "absent") == 0 || strcmp(in_upper, "old") == 0
              || strcmp(in_upper, "new") == 0,
              "the killed copy-up left a broken file in the upper: %s", in_upper);
    h_assert_same_snapshot(lower_before, h_snapshot(H.lower), "lower after the crash");

    /* A fresh session over the crashed one: a stale daemon.pid and a work
     * dir leftover must not stop it, and the file is old or whole. */
    mnt = h_mount("a");
    target = h_str("%s/big.bin", mnt);
    const char *v = classify(target);
    cr_assert(strcmp(v, "old") == 0 || strcmp(v, "new") == 0,
              "after remount the agent reads a broken big.bin: %s", v);
    /* Copy-up still works after recovery. */
    cr_assert_eq(stat(target, &st), 0);
    off_t before = st.st_size;
    int fd = open(target, O_WRONLY | O_APPEND | O_CLOEXEC);
    cr_assert(fd >= 0, "open for append after recovery: %s", strerror(errno));
    cr_assert_eq(write(fd, "Y", 1), 1, "append after recovery: %s", strerror(errno));
    cr_assert_eq(close(fd), 0);
    cr_assert_eq(stat(target, &st), 0);
    cr_assert_eq(st.st_size, before + 1);
    h_umount("a");
    h_assert_same_snapshot(lower_before, h_snapshot(H.lower), "lower after recovery");
}
