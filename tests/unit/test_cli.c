/* Unit tests for the path and pid helpers in tools/cli.c. */
#include <criterion/criterion.h>

#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "tools/cli.h"

static char tdir[64];
static char *real;      /* canonical tdir (/tmp may be a symlink) */

static int rm_entry(const char *path, const struct stat *st, int flag,
                    struct FTW *ftw)
{
    (void)st; (void)flag; (void)ftw;
    return remove(path);
}

static void setup(void)
{
    strcpy(tdir, "/tmp/lanefs-cli-XXXXXX");
    cr_assert_not_null(mkdtemp(tdir));
    real = realpath(tdir, NULL);
    cr_assert_not_null(real);
}

static void teardown(void)
{
    nftw(tdir, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
    free(real);
}

static char *tpath(const char *rel)
{
    static char buf[4][256];
    static int i;
    char *b = buf[i++ % 4];
    snprintf(b, sizeof(buf[0]), "%s/%s", tdir, rel);
    return b;
}

static char *rpath(const char *rel)
{
    static char buf[4][256];
    static int i;
    char *b = buf[i++ % 4];
    snprintf(b, sizeof(buf[0]), "%s/%s", real, rel);
    return b;
}

Test(cli_path, within_by_components)
{
    cr_assert(cli_path_within("/a/b", "/a"));
    cr_assert(cli_path_within("/a", "/a"));
    cr_assert(cli_path_within("/a/b/c", "/a/b"));
    cr_assert(cli_path_within("/anything", "/"));
    cr_assert(cli_path_within("/", "/"));
    cr_assert_not(cli_path_within("/ab", "/a"));
    cr_assert_not(cli_path_within("/a/bc", "/a/b"));
    cr_assert_not(cli_path_within("/a", "/a/b"));
    cr_assert_not(cli_path_within("/", "/a"));
    cr_assert_not(cli_path_within("/b/a", "/a"));
}

TestSuite(cli_fs, .init = setup, .fini = teardown);

Test(cli_fs, canon_missing)
{
    char *out;
    cr_assert_eq(mkdir(tpath("real"), 0755), 0);
    cr_assert_eq(symlink(rpath("real"), tpath("link")), 0);

    cr_assert_eq(cli_canon_missing(tdir, &out), 0);
    cr_assert_str_eq(out, real);
    free(out);
    cr_assert_eq(cli_canon_missing(tpath("x/y/"), &out), 0);
    cr_assert_str_eq(out, rpath("x/y"));
    free(out);
    cr_assert_eq(cli_canon_missing(tpath("link/new"), &out), 0);
    cr_assert_str_eq(out, rpath("real/new"));
    free(out);
    cr_assert_eq(cli_canon_missing(tpath("x/./y"), &out), 0);
    cr_assert_str_eq(out, rpath("x/y"));
    free(out);
    cr_assert_eq(cli_canon_missing(tpath("real/../x"), &out), 0);
    cr_assert_str_eq(out, rpath("x"));
    free(out);
    cr_assert_eq(cli_canon_missing(tpath("x/../y"), &out), -EINVAL);
    cr_assert_null(out);

    cr_assert_eq(close(creat(tpath("file"), 0644)), 0);
    cr_assert_eq(cli_canon_missing(tpath("file/sub"), &out), -ENOTDIR);
    cr_assert_eq(cli_canon_missing("", &out), -ENOENT);
}

Test(cli_fs, canon_lenient)
{
    char *out;
    cr_assert_eq(mkdir(tpath("d"), 0755), 0);
    cr_assert_eq(cli_canon_lenient(tpath("d/"), &out), 0);
    cr_assert_str_eq(out, rpath("d"));
    free(out);
    cr_assert_eq(cli_canon_lenient(tpath("missing"), &out), -ENOENT);
    cr_assert_null(out);
}

Test(cli_fs, mkdir_p)
{
    struct stat st;
    mode_t old = umask(022);

    cr_assert_eq(cli_mkdir_p(tpath("a/b/c"), 0700), 0);
    cr_assert_eq(stat(tpath("a/b/c"), &st), 0);
    cr_assert_eq(st.st_mode & 0777, 0700);
    cr_assert_eq(stat(tpath("a/b"), &st), 0);
    cr_assert_eq(st.st_mode & 0777, 0755);
    cr_assert_eq(cli_mkdir_p(tpath("a/b/c/"), 0700), 0);   /* exists: fine */
    cr_assert_eq(close(creat(tpath("f"), 0644)), 0);
    cr_assert_eq(cli_mkdir_p(tpath("f"), 0700), -ENOTDIR);
    cr_assert_eq(cli_mkdir_p(tpath("f/g"), 0700), -ENOTDIR);
    umask(old);
}

static void write_file(const char *path, const char *text)
{
    FILE *f = fopen(path, "w");
    cr_assert_not_null(f);
    fputs(text, f);
    fclose(f);
}

Test(cli_fs, pid_read)
{
    pid_t pid = 0;
    write_file(tpath("p"), "1234\n");
    cr_assert_eq(cli_pid_read(tpath("p"), &pid), 0);
    cr_assert_eq(pid, 1234);
    write_file(tpath("p"), "77");
    cr_assert_eq(cli_pid_read(tpath("p"), &pid), 0);
    cr_assert_eq(pid, 77);

    const char *bad[] = { "", "abc\n", "12x\n", "-5\n", "0\n", "1\n",
                          "99999999999999\n" };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        write_file(tpath("p"), bad[i]);
        cr_assert_eq(cli_pid_read(tpath("p"), &pid), -EINVAL, "'%s'", bad[i]);
    }
    cr_assert_eq(cli_pid_read(tpath("none"), &pid), -ENOENT);
}

Test(cli_fs, pid_file_path)
{
    char *p = cli_pid_file("/srv/st", "a1");
    cr_assert_str_eq(p, "/srv/st/agents/a1/daemon.pid");
    free(p);
}

/* Waits until the child's state letter in /proc is `want`. */
static void wait_state(pid_t pid, char want)
{
    char path[64], buf[256];
    snprintf(path, sizeof(path), "/proc/%d/stat", (int)pid);
    for (int i = 0; i < 400; i++) {
        FILE *f = fopen(path, "r");
        if (f) {
            size_t n = fread(buf, 1, sizeof(buf) - 1, f);
            fclose(f);
            buf[n] = '\0';
            char *close = strrchr(buf, ')');
            if (close && close[2] == want)
                return;
        }
        nanosleep(&(struct timespec){ 0, 5000000 }, NULL);
    }
    cr_assert_fail("pid %d never reached state %c", (int)pid, want);
}

static pid_t children[2];
static int n_children;

/* Runs even when an assertion failed, so no child outlives the test. */
static void kill_children(void)
{
    for (int i = 0; i < n_children; i++) {
        if (children[i] <= 0)
            continue;           /* reaped by the test already */
        kill(children[i], SIGKILL);
        waitpid(children[i], NULL, 0);
    }
    n_children = 0;
}

static pid_t spawn_named(const char *name)
{
    int fds[2];
    cr_assert_eq(pipe(fds), 0);
    pid_t pid = fork();
    cr_assert_neq(pid, -1);
    if (pid == 0) {
        prctl(PR_SET_NAME, name);
        close(fds[0]);
        close(fds[1]);          /* tells the parent the name is set */
        /* Drop the test runner's descriptors and bound our life, so a
         * failing test never waits on us. */
        close_range(3, ~0U, 0);
        alarm(30);
        for (;;)
            pause();
    }
    children[n_children++] = pid;
    close(fds[1]);
    char c;
    cr_assert_eq(read(fds[0], &c, 1), 0);
    close(fds[0]);
    return pid;
}

Test(cli_pid, alive_only_for_live_lanefs, .fini = kill_children)
{
    pid_t named = spawn_named("lanefs-test");
    pid_t other = spawn_named("someone-else");

    cr_assert(cli_pid_lanefs_alive(named));
    cr_assert_not(cli_pid_lanefs_alive(other));    /* reused pid */
    cr_assert_not(cli_pid_lanefs_alive(1));
    cr_assert_not(cli_pid_lanefs_alive(0));

    kill(named, SIGKILL);
    wait_state(named, 'Z');
    cr_assert_not(cli_pid_lanefs_alive(named));    /* zombie: exited */
    waitpid(named, NULL, 0);
    children[0] = -1;
    cr_assert_not(cli_pid_lanefs_alive(named));    /* gone */
}
