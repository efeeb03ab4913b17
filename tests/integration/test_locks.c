/* test_locks.c - fcntl, OFD and flock locks taken through two agents'
 * mounts of one shared file exclude each other; a blocked waiter is parked
 * and granted or interrupted; SQLite transactions from two agents on one
 * shared database lose no update. */
#include "harness.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <sqlite3.h>
#include <string.h>
#include <sys/file.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define TEST_L(name) Test(locks, name, .init = h_setup, .fini = h_teardown, \
                          .timeout = H_TIMEOUT)

static const char *A, *B;

static void setup(void)
{
    h_mkdir_p(h_str("%s/db", H.lower), 0777);
    h_init("--shared", "db", (char *)NULL);
    A = h_mount("a");
    B = h_mount("b");
    h_put(h_str("%s/db/f", A), "0123456789", 0666);
}

static int open_in(const char *mnt)
{
    int fd = open(h_str("%s/db/f", mnt), O_RDWR | O_CLOEXEC);
    cr_assert(fd >= 0, "open: %s", strerror(errno));
    return fd;
}

static int setlk(int fd, int cmd, short type, off_t start, off_t len)
{
    struct flock fl = { .l_type = type, .l_whence = SEEK_SET, .l_start = start,
                        .l_len = len };
    return fcntl(fd, cmd, &fl) == 0 ? 0 : errno;
}

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec / 1e9;
}

TEST_L(fcntl_ofd_and_flock_exclude_across_mounts)
{
    setup();
    int fa = open_in(A), fb = open_in(B);
    /* fcntl record locks: ranges, read sharing, write exclusion. */
    cr_assert_eq(setlk(fa, F_SETLK, F_WRLCK, 0, 5), 0);
    cr_assert_eq(setlk(fb, F_SETLK, F_WRLCK, 3, 1), EAGAIN, "overlapping write lock granted");
    cr_assert_eq(setlk(fb, F_SETLK, F_WRLCK, 5, 5), 0, "a disjoint range was refused");
    struct flock q = { .l_type = F_WRLCK, .l_whence = SEEK_SET, .l_start = 0, .l_len = 1 };
    cr_assert_eq(fcntl(fb, F_GETLK, &q), 0);
    cr_assert_eq(q.l_type, F_WRLCK, "F_GETLK through b does not see a's lock");
    cr_assert_eq(q.l_start, 0);
    cr_assert_eq(q.l_len, 5);
    cr_assert_eq(setlk(fa, F_SETLK, F_UNLCK, 0, 0), 0);
    cr_assert_eq(setlk(fb, F_SETLK, F_UNLCK, 0, 0), 0);
    cr_assert_eq(setlk(fa, F_SETLK, F_RDLCK, 0, 0), 0);
    cr_assert_eq(setlk(fb, F_SETLK, F_RDLCK, 0, 0), 0, "read locks do not share");
    cr_assert_eq(setlk(fb, F_SETLK, F_WRLCK, 0, 0), EAGAIN, "upgrade next to a reader");
    cr_assert_eq(setlk(fa, F_SETLK, F_UNLCK, 2, 3), 0);  /* unlock part */
    cr_assert_eq(setlk(fb, F_SETLK, F_WRLCK, 2, 3), 0, "the unlocked part is not free");
    cr_assert_eq(setlk(fb, F_SETLK, F_WRLCK, 0, 1), EAGAIN, "a's remaining part is gone");
    close(fa);                  /* close drops a's fcntl locks */
    cr_assert_eq(setlk(fb, F_SETLK, F_WRLCK, 0, 0), 0, "close did not drop a's locks");
    close(fb);

    /* OFD locks. */
    fa = open_in(A);
    fb = open_in(B);
    cr_assert_eq(setlk(fa, F_OFD_SETLK, F_WRLCK, 0, 0), 0);
    cr_assert_eq(setlk(fb, F_OFD_SETLK, F_RDLCK, 0, 1), EAGAIN, "OFD locks across mounts");
    close(fa);
    /* The kernel tells a FUSE filesystem about the last close of a file
     * (FUSE_RELEASE) after close() has returned: the OFD lock goes then. */
    int err = EAGAIN;
    for (int waited = 0; err == EAGAIN && waited < 5000; waited += 10) {
        err = setlk(fb, F_OFD_SETLK, F_RDLCK, 0, 1);
        if (err == EAGAIN)
            usleep(10 * 1000);
    }
    cr_assert_eq(err, 0, "OFD lock outlived its file by 5 s");
    close(fb);

    /* flock. */
    fa = open_in(A);
    fb = open_in(B);
    cr_assert_eq(flock(fa, LOCK_EX | LOCK_NB), 0);
    cr_assert_eq(flock(fb, LOCK_SH | LOCK_NB), -1);
    cr_assert_eq(errno, EWOULDBLOCK);
    cr_assert_eq(flock(fa, LOCK_UN), 0);
    cr_assert_eq(flock(fb, LOCK_SH | LOCK_NB), 0);
    cr_assert_eq(flock(fa, LOCK_SH | LOCK_NB), 0, "shared flock locks do not share");
    close(fa);
    close(fb);
}

/* A blocked F_SETLKW waiter is granted when the holder unlocks, and a
 * waiter killed with SIGKILL goes at once (its wait holds no worker). */
TEST_L(blocked_waiters_are_granted_or_killed)
{
    setup();
    int fa = open_in(A);
    cr_assert_eq(setlk(fa, F_SETLK, F_WRLCK, 0, 0), 0);

    pid_t granted = fork();
    if (granted == 0) {
        int fd = open(h_str("%s/db/f", B), O_RDWR | O_CLOEXEC);
        _exit(fd >= 0 && setlk(fd, F_SETLKW, F_WRLCK, 0, 0) == 0 ? 0 : 1);
    }
    pid_t killed = fork();
    if (killed == 0) {
        int fd = open(h_str("%s/db/f", B), O_RDWR | O_CLOEXEC);
        setlk(fd, F_SETLKW, F_WRLCK, 0, 0);
        _exit(3);
    }
    usleep(300 * 1000);         /* both are waiting now (or about to) */
    int st;
    cr_assert_eq(waitpid(granted, &st, WNOHANG), 0, "a waiter went past a held lock");
    double t0 = now_s();
    kill(killed, SIGKILL);
    cr_assert_eq(waitpid(killed, &st, 0), killed);
    double took = now_s() - t0;
    cr_assert(WIFSIGNALED(st), "the killed waiter ended otherwise (0x%x)", st);
    cr_assert(took < 5.0, "a SIGKILLed waiter took %.2f s to go", took);
    /* Meanwhile the daemon still serves: a getattr through b answers. */
    cr_assert(h_exists(h_str("%s/db/f", B)));
    cr_assert_eq(setlk(fa, F_SETLK, F_UNLCK, 0, 0), 0);
    cr_assert_eq(waitpid(granted, &st, 0), granted);
    cr_assert(WIFEXITED(st) && WEXITSTATUS(st) == 0, "the waiter was not granted (0x%x)", st);
    close(fa);
}

/* Rollback-journal SQLite from two agents: N increments each, none lost. */
static int sqlite_worker(const char *path, int n)
{
    sqlite3 *db;
    if (sqlite3_open(path, &db) != SQLITE_OK)
        return 10;
    sqlite3_busy_timeout(db, 60000);
    sqlite3_exec(db, "PRAGMA journal_mode=DELETE", NULL, NULL, NULL);
    for (int i = 0; i < n; i++) {
        int rc = sqlite3_exec(db, "BEGIN IMMEDIATE; UPDATE c SET v = v + 1; COMMIT;",
                              NULL, NULL, NULL);
        if (rc != SQLITE_OK) {
            sqlite3_exec(db, "ROLLBACK", NULL, NULL, NULL);
            i--;                /* busy past the timeout: try again */
        }
    }
    sqlite3_close(db);
    return 0;
}

TEST_L(sqlite_from_two_agents_loses_no_update)
{
    enum { N = 1500 };
    setup();
    sqlite3 *db;
    char *pa = h_str("%s/db/count.sqlite", A), *pb = h_str("%s/db/count.sqlite", B);
    cr_assert_eq(sqlite3_open(pa, &db), SQLITE_OK);
    cr_assert_eq(sqlite3_exec(db, "PRAGMA journal_mode=DELETE; CREATE TABLE c(v INTEGER);"
                              "INSERT INTO c VALUES(0);", NULL, NULL, NULL), SQLITE_OK);
    sqlite3_close(db);
    pid_t kids[2];
    const char *paths[2] = { pa, pb };
    for (int i = 0; i < 2; i++) {
        kids[i] = fork();
        if (kids[i] == 0)
            _exit(sqlite_worker(paths[i], N));
    }
    for (int i = 0; i < 2; i++) {
        int st;
        cr_assert_eq(waitpid(kids[i], &st, 0), kids[i]);
        cr_assert(WIFEXITED(st) && WEXITSTATUS(st) == 0, "worker %d: 0x%x", i, st);
    }
    cr_assert_eq(sqlite3_open(pb, &db), SQLITE_OK);
    sqlite3_stmt *s;
    cr_assert_eq(sqlite3_prepare_v2(db, "SELECT v FROM c", -1, &s, NULL), SQLITE_OK);
    cr_assert_eq(sqlite3_step(s), SQLITE_ROW);
    int v = sqlite3_column_int(s, 0);
    sqlite3_finalize(s);
    cr_assert_eq(sqlite3_prepare_v2(db, "PRAGMA integrity_check", -1, &s, NULL), SQLITE_OK);
    cr_assert_eq(sqlite3_step(s), SQLITE_ROW);
    cr_assert_str_eq((const char *)sqlite3_column_text(s, 0), "ok");
    sqlite3_finalize(s);
    sqlite3_close(db);
    cr_assert_eq(v, 2 * N, "lost updates: %d of %d", 2 * N - v, 2 * N);
}
